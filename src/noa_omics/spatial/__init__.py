"""Spatial niche analysis (work in progress)."""
