"""Encoders (offline resolution, pooling), heads and the trained classifier."""
