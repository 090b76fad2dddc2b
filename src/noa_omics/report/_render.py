"""Render a results directory (manifest, tables, figures) as one self-contained HTML file."""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path
from collections.abc import Callable
from typing import Any

import pandas as pd

from .._version import __version__
from ._template import PAGE
from .._io import write_text

#: Rows shown per table in the report (the CSV file holds all rows).
MAX_ROWS = 25
#: Columns shown per table (wider tables wrap their cells; the CSV file holds every column).
MAX_COLUMNS = 24


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def load_manifest(results_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``manifest.json`` from a results directory.

    Raises
    ------
    FileNotFoundError
        If ``results_dir`` does not exist or holds no manifest.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"results directory {str(results_dir)!r} not found; check the path.")
    path = results_dir / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{str(results_dir)!r} holds no manifest.json, so it is not a noa-omics results directory; "
            "point to the --out directory of `noa-omics demo` or `noa-omics run`."
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{str(path)!r} is not valid JSON ({err.msg}); re-run the pipeline.") from err


def _entries(results_dir: Path, manifest: dict[str, Any], kind: str, suffix: str) -> list[dict[str, Any]]:
    """The manifest's ``kind`` entries ("figures"/"tables") whose file exists, then any other
    ``*suffix`` file of the ``kind`` folder (titled from its name)."""
    entries = [dict(e) for e in manifest.get(kind, []) if (results_dir / e["path"]).is_file()]
    known = {e["path"] for e in entries}
    folder = results_dir / kind
    for file in sorted(folder.glob(f"*{suffix}")) if folder.is_dir() else []:
        rel = file.relative_to(results_dir).as_posix()
        if rel not in known:
            entries.append({"path": rel, "title": file.stem.replace("_", " ").capitalize(), "caption": ""})
    return entries


def _anchor(path: str) -> str:
    return "x-" + "".join(c if c.isalnum() else "-" for c in path)


def _render_figure(results_dir: Path, entry: dict[str, Any]) -> str:
    data = base64.b64encode((results_dir / entry["path"]).read_bytes()).decode("ascii")
    return (
        f'<figure id="{_anchor(entry["path"])}"><h3>{_esc(entry.get("title", entry["path"]))}</h3>\n'
        f'<img alt="{_esc(entry.get("title", entry["path"]))}" src="data:image/png;base64,{data}">\n'
        f'<figcaption>{_esc(entry.get("caption", ""))} <code>{_esc(entry["path"])}</code></figcaption></figure>'
    )


def _format_frame(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].map(lambda v: "" if pd.isna(v) else f"{v:.3g}")
        elif out[col].dtype == object:
            out[col] = out[col].map(lambda v: v if not isinstance(v, str) or len(v) <= 90 else v[:87] + "...")
    return out


def _render_table(results_dir: Path, entry: dict[str, Any], max_rows: int) -> str:
    path = results_dir / entry["path"]
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame()
    n_rows, n_cols = frame.shape
    sort_by = entry.get("sort_by")
    if sort_by and sort_by in frame.columns:
        frame = frame.sort_values(sort_by, kind="stable", na_position="last")
    shown = _format_frame(frame.iloc[:max_rows, :MAX_COLUMNS])
    note = f"{n_rows} rows x {n_cols} columns"
    if n_rows > max_rows or n_cols > MAX_COLUMNS:
        order = f", sorted by {sort_by}" if sort_by and sort_by in frame.columns else ""
        note += f"; showing the first {min(n_rows, max_rows)} rows and {min(n_cols, MAX_COLUMNS)} columns{order}"
    body = shown.to_html(index=False, escape=True, border=0, na_rep="") if n_cols else "<p>(empty table)</p>"
    return (
        f'<section id="{_anchor(entry["path"])}"><h3>{_esc(entry.get("title", entry["path"]))}</h3>\n'
        f'<p class="note">{_esc(entry.get("caption", ""))} {_esc(note)}. Full table: '
        f'<code>{_esc(entry["path"])}</code>.</p>\n<div class="tablewrap">{body}</div></section>'
    )


def _kv_table(rows: list[tuple[str, Any]]) -> str:
    body = "\n".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _render_provenance(manifest: dict[str, Any]) -> str:
    prov = manifest.get("provenance", {})
    parts = []
    rows = [
        ("noa-omics", manifest.get("noa_omics_version", "?")),
        ("created", manifest.get("created", "?")),
        ("command", manifest.get("command", "")),
        ("python", prov.get("python", "?")),
        ("platform", prov.get("platform", "?")),
    ]
    for lib in prov.get("genesets", []):
        rows.append((f"gene-set library ({lib.get('species', '?')})", lib.get("version", "?")))
    parts.append("<h3>Run</h3>" + _kv_table(rows))
    packages = prov.get("packages", {})
    if packages:
        parts.append("<h3>Dependency versions</h3>" + _kv_table(sorted(packages.items())))
    inputs = manifest.get("inputs", [])
    if inputs:
        rows_in = []
        for item in inputs:
            if "sha256" in item:
                rows_in.append((item.get("path", "?"), f"sha256 {item['sha256']} ({item.get('bytes', '?')} bytes)"))
            else:
                rows_in.append((item.get("name", "input"), item.get("description", "")))
        parts.append("<h3>Inputs</h3>" + _kv_table(rows_in))
    params = manifest.get("parameters")
    if params is not None:
        parts.append("<h3>Parameters</h3><pre>" + _esc(json.dumps(params, indent=2, default=str)) + "</pre>")
    files = [f for f in manifest.get("files", []) if f.get("path") not in ("report.html", "manifest.json")]
    if files:
        parts.append(
            "<h3>Output files</h3>" + _kv_table([(f["path"], f"sha256 {f['sha256']}") for f in files])
        )
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# Findings first: one row per donor, before any figure
# ---------------------------------------------------------------------------------------------

#: |z| from which an axis counts as a donor's hit in the summary (the rules' "raised" level).
HIT_Z = 2.0
#: Axes and scores named as hits, in the order of the multi-hit model.
HIT_COLUMNS = ("genetic", "endocrine", "oxidative", "epigenetic", "inflammation", "niche", "germ_apoptosis")


def _main_hits(row: pd.Series, *, top: int = 3) -> str:
    hits = []
    for col in HIT_COLUMNS:
        value = pd.to_numeric(row.get(col), errors="coerce")
        if pd.notna(value) and abs(float(value)) >= HIT_Z:
            hits.append((abs(float(value)), f"{col.replace('_', ' ')} z={float(value):+.1f}"))
    hits.sort(key=lambda h: -h[0])
    return ", ".join(text for _, text in hits[:top]) or f"none (all |z| < {HIT_Z:g})"


def donor_summary(results_dir: str | os.PathLike[str]) -> pd.DataFrame | None:
    """Per-donor findings of a results directory: condition, histology, apoptosis context with its
    evidence sentence and the main hits (axes with :math:`|z| \\ge 2`, largest first).

    Read from ``tables/multihit.csv``; None when the run has no multi-hit table.
    """
    path = Path(results_dir) / "tables" / "multihit.csv"
    if not path.is_file():
        return None
    table = pd.read_csv(path)
    if table.empty:
        return None
    sample = table.columns[0]
    out = pd.DataFrame({"donor": table[sample].astype(str)})
    for col in ("condition", "histology", "apoptosis_context"):
        if col in table.columns:
            out[col] = table[col].astype(str).str.replace("_", " ")
    out["main hits"] = [_main_hits(row) for _, row in table.iterrows()]
    if "evidence" in table.columns:
        out["evidence"] = table["evidence"].fillna("").astype(str)
    return out


def _section_donors(ctx: dict[str, Any]) -> str:
    frame = donor_summary(ctx["results_dir"])
    if frame is None:
        return ""
    body = frame.rename(columns=lambda c: c.replace("_", " ")).to_html(index=False, escape=True, border=0,
                                                                        classes="donors")
    return (
        '<p class="note">One row per donor, from the multi-hit model (<code>tables/multihit.csv</code>): '
        f"the condition, the tubule histology, the apoptosis context with the sentence that explains it, "
        f"and the main hits (axes with |z| &ge; {HIT_Z:g} against the reference donors, largest first).</p>\n"
        f'<div class="tablewrap">{body}</div>'
    )


def _section_summary(ctx: dict[str, Any]) -> str:
    summary = ctx["manifest"].get("summary", {})
    items = "\n".join(
        f"<div>{_esc(k.replace('_', ' '))}<b class=\"list\">{_esc(', '.join(map(str, v)))}</b></div>"
        if isinstance(v, list) else f"<div>{_esc(k.replace('_', ' '))}<b>{_esc(v)}</b></div>"
        for k, v in summary.items()
    ) or "<div>no summary<b>-</b></div>"
    return f'<div class="summary">\n{items}\n</div>'


def _section_figures(ctx: dict[str, Any]) -> str:
    return "\n".join(_render_figure(ctx["results_dir"], e) for e in ctx["figures"]) or "<p>No figures.</p>"


def _section_tables(ctx: dict[str, Any]) -> str:
    return "\n".join(_render_table(ctx["results_dir"], e, ctx["max_rows"]) for e in ctx["tables"]) or "<p>No tables.</p>"


def _section_provenance(ctx: dict[str, Any]) -> str:
    return _render_provenance(ctx["manifest"])


#: The report's sections in page order: (anchor id, heading, renderer). A renderer takes the
#: context (``results_dir``, ``manifest``, ``figures``, ``tables``, ``max_rows``) and returns
#: HTML, or "" to leave the section out. Adding a section is adding one entry.
SECTIONS: list[tuple[str, str, Callable[[dict[str, Any]], str]]] = [
    ("summary", "Summary", _section_summary),
    ("donors", "Donors at a glance", _section_donors),
    ("figures", "Figures", _section_figures),
    ("tables", "Tables", _section_tables),
    ("provenance", "Provenance", _section_provenance),
]


def render_report(results_dir: str | os.PathLike[str], *, manifest: dict[str, Any] | None = None,
                  max_rows: int = MAX_ROWS, title: str | None = None) -> str:
    """Render the HTML report of a results directory.

    The page opens with the run summary and the per-donor findings (condition, histology,
    apoptosis context with its evidence sentence, main hits), then the figures, the tables and
    the provenance (with the list of output files and their checksums); see :data:`SECTIONS`.

    Parameters
    ----------
    results_dir
        Directory written by ``noa-omics demo``/``run`` (or the workflow): ``manifest.json``,
        ``tables/*.csv`` and ``figures/*.png``.
    manifest
        Use this manifest instead of reading ``manifest.json`` (the pipeline renders the
        report before it writes its final manifest).
    max_rows
        Rows shown per table; the CSV files keep every row.
    title
        Page title; defaults to the one in the manifest.

    Returns
    -------
    str
        One self-contained HTML document: figures embedded as base64 PNG, inline CSS, no
        script and no external resource.
    """
    results_dir = Path(results_dir)
    if manifest is None:
        manifest = load_manifest(results_dir)
    figures = _entries(results_dir, manifest, "figures", ".png")
    tables = _entries(results_dir, manifest, "tables", ".csv")
    ctx = {"results_dir": results_dir, "manifest": manifest, "figures": figures, "tables": tables,
           "max_rows": max_rows}
    rendered = [(anchor, heading, render(ctx)) for anchor, heading, render in SECTIONS]
    rendered = [(anchor, heading, html_) for anchor, heading, html_ in rendered if html_]
    toc = []
    for anchor, heading, _ in rendered:
        toc.append(f'<li><a href="#{anchor}">{_esc(heading)}</a></li>')
        if anchor == "figures":
            toc += [f'<li class="sub"><a href="#{_anchor(e["path"])}">{_esc(e.get("title", e["path"]))}</a></li>'
                    for e in figures]
        if anchor == "tables":
            toc += [f'<li class="sub"><a href="#{_anchor(e["path"])}">{_esc(e.get("title", e["path"]))}</a></li>'
                    for e in tables]
    nav = '<nav><h3>Contents</h3><ol>\n' + "\n".join(toc) + "\n</ol></nav>"
    parts = []
    for anchor, heading, html_ in rendered:
        if anchor == "figures":
            parts.append(nav)  # findings first, then the contents of the rest
        parts.append(f'<h2 id="{anchor}">{_esc(heading)}</h2>\n{html_}')
    if nav not in parts:
        parts.insert(0, nav)
    body = "\n".join(parts)
    warnings = manifest.get("warnings", [])
    warnings_html = (
        '<div class="warn"><b>Warnings</b><ul>' + "".join(f"<li>{_esc(w)}</li>" for w in warnings) + "</ul></div>"
        if warnings else ""
    )
    return PAGE.substitute(
        title=_esc(title or manifest.get("title", "noa-omics report")),
        version=_esc(manifest.get("noa_omics_version", __version__)),
        created=_esc(manifest.get("created", "?")),
        warnings=warnings_html,
        body=body,
    )


def write_report(results_dir: str | os.PathLike[str], out: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Render :func:`render_report` and write it atomically to ``out``; returns the path."""

    return write_text(out, render_report(results_dir, **kwargs))
