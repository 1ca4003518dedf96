"""The data layer: image sources as LightningDataModules, splits, checks and preprocessing."""
