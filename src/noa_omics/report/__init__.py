"""Self-contained HTML report of a results directory (figures as base64 PNG, tables, provenance)."""

from ._render import load_manifest, render_report, write_report

__all__ = ["render_report", "write_report", "load_manifest"]
