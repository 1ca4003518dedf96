"""ftcli's Hydra plugins. Hydra instantiates plugins only from the ``hydra_plugins`` namespace package,
so the classes here are thin: the work is in ``ftcli.hydra_hooks`` (docs/ARCHITECTURE.md)."""
