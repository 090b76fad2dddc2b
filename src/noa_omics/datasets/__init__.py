"""Datasets (work in progress)."""
