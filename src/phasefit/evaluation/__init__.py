"""Metrics (paper 000 §4.3), embedding diagnostics (k-NN accuracy, silhouette) and paired statistics over seeds."""
