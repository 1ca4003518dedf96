"""What a run leaves behind and reading it back: checkpoint schema, trained models, resume, summaries, plots."""
