"""Losses, each an ``nn.Module`` documenting the equation it implements."""
