"""recsearch: neural-architecture search for CTR models on TorchRec."""

__version__ = "0.1.0"
