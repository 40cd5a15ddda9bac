"""Root-cause ranking over the dependency graph."""
