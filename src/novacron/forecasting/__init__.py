"""Time-to-exhaustion and leak detection, capacity forecasts, and component-failure prediction."""
