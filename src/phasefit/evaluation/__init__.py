"""Metrics (paper 000 §4.3) and embedding diagnostics (k-NN accuracy, silhouette)."""
