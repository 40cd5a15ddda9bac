"""Incident lifecycle: deduplication of faults into episodes, timelines, priority."""
