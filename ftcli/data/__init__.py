"""The data layer: a modality-neutral core (splits, checks, the datamodule base, the source registry)
and one sub-package per modality (``images``, ``text``)."""
