"""One home for config validation: the typed schema of the composed config (types, enums, ranges,
finiteness, sizes). Imports no torch; every key is checked here or, where a key needs the network or the
data to judge it, by the one module that owns it (docs/ARCHITECTURE.md lists which)."""
