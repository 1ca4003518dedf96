"""The frozen-prefix feature cache (what is eligible, its key, compute/save/load) and the datamodules
that train on it. Works on any modality: it sees a network run block by block and its batches."""
