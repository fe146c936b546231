"""Tables and plots from result rows and run directories; imports neither the training phases nor experiment code."""
