"""Streaming anomaly detectors (learn_one / score_one), the decision wrapper, ensembles and the NAB runner and scorer."""
