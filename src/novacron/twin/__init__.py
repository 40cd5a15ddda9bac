"""The digital twin: a vectorised fleet simulator with an event heap, physics models and what-if."""
