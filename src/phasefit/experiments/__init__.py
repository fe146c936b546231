"""Experiments over runs: recipe comparisons, grids, protocols."""
