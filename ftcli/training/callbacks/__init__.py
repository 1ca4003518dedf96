"""Lightning callbacks of a run: best/last checkpoints, stopping on NaN, early stopping, EMA,
BatchNorm recalibration and throughput."""
