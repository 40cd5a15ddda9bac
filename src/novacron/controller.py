"""The controller: wires the flow on one asyncio loop."""
