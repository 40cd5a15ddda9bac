"""Where observations come from: process exits, active probes, heartbeats, metrics."""
