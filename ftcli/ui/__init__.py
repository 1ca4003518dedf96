"""The command line and the terminal: config groups, argument parsing, the error boundary, sweep jobs."""
