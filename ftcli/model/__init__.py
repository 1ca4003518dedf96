"""The model layer: backbones cut into blocks, head surgery and weights. Knows nothing of data or training."""
