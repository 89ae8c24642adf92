"""The one trainer: DMP-sharded training, metrics, checkpoints."""
