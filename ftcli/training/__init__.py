"""The training layer: the Lightning module, loss, mixing, the Trainer with its callbacks, optimizers,
schedulers and loggers."""
