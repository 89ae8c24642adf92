"""FLOPs, parameter counts and latency of models."""
