"""Raw click logs -> per-day binary shards -> TorchRec batches."""
