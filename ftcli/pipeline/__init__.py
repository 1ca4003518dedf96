"""The one path from a composed config to a fitted model: ``plan(cfg)`` builds what a run needs
(inspect shows it), ``run(cfg)`` fits, tests and writes the run folder. See docs/ARCHITECTURE.md."""
