"""``recsearch compare``: every registered search method and the baselines on the same data."""
