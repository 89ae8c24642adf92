"""Neural-architecture-search methods; each one emits the shared architecture JSON."""
