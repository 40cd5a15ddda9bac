"""Where actions land: the Actuator protocol, routing by target kind, and the local-process actuator."""
