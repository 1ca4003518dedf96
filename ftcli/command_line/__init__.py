"""Argument handling: config groups and where configs live, Hydra argument order, key=value
parsing, Hydra's usage errors, and the one error boundary every command ends in. Imports no torch."""
