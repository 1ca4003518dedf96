"""The training layer: from a composed config to a fitted model (build, strategies and phases, Lightning)."""
