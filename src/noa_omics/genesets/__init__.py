"""Gene-set library (work in progress)."""
