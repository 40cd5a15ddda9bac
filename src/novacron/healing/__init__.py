"""The action catalog, planner, safety gate and the one executor (plan, gate, apply, verify, roll back or escalate)."""
