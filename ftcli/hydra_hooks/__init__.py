"""Hydra at run time: callbacks and helpers Hydra calls while it runs (the run-folder guard, the
search-space check, sweep jobs and the sweep report) and the check of sweeper/launcher plugins."""
