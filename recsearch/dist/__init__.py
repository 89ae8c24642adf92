"""Distributed execution: process groups, sharding plans, torchx launch helpers."""
