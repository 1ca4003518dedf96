"""The commands: one module per verb of `ftcli` (docs/ARCHITECTURE.md); none imports another."""
