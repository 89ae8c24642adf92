"""Export trained models for serving."""
