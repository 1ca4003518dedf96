"""The advisor (``ftcli advise``, ``strategy=auto``): the four-regime rule measured on the user's data.

``measure`` probes every block of the starting network on the training split, ``rule`` turns the
numbers into a regime and a strategy (its thresholds named in one place), ``advisor`` runs both for
a composed config and rewrites the config for ``strategy=auto``.
"""
