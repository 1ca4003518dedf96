"""Terminal output: one console for output and one for errors (rank 0 only), and the tables a run shows.
Imports no torch."""
