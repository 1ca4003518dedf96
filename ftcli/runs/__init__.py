"""What a run leaves behind, read back: checkpoint schema, trained models, resume, summaries, plots."""
