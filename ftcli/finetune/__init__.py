"""What trains and when: the freeze strategies (a registry), their phases resolved against a network,
and the freeze plan (requires_grad, BatchNorm policy, per-block learning-rate multipliers, param groups)."""
