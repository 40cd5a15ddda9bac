"""NovaCron Autonomous."""
