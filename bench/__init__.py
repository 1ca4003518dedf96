"""ftcli's benchmarks and studies, run from the repository root as modules.

``python -m bench`` (``make bench``): training speed against a raw PyTorch loop, per strategy.
``python -m bench.regime_study`` (``make study``): which strategy wins, per data regime.
``python -m bench.probe_study``: converged linear probes on frozen features (the demo's analysis).

A package, not loose scripts, so that its parts can be imported by the tests by name.
"""
