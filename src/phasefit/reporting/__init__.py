"""Tables and plots. Reads run directories and arrays only; never imports the training phases."""
