"""Registry of public testis datasets: the YAML data file, validation, table and markdown views.

The registry is data (``registry.yaml`` next to this module, squidpy style); a dataset is added by
adding an entry there, or at run time with :func:`register` (e.g. a local mirror or a test fixture).
"""

from __future__ import annotations

import copy
import importlib.resources
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .._vocabulary import SPECIES

REGISTRY_FILE = "registry.yaml"
FORMATS = ("10x_h5", "10x_mtx", "h5ad", "loom", "csv", "tsv", "dge_txt")
TECHNOLOGIES = ("scRNA-seq", "snRNA-seq", "spatial")
ORIENTATIONS = ("genes_x_cells", "cells_x_genes", "auto")
ROLES = ("matrix", "genes", "barcodes", "annotation")
VERIFICATION = ("verified", "third_party", "unverified")
_REQUIRED = ("name", "species", "technology", "format", "citation", "url")
_KEYS = {
    "name", "accession", "species", "technology", "assay", "n_cells", "conditions", "citation", "doi",
    "url", "downloadable", "format", "orientation", "value_type", "files", "label_key", "label_map", "label_source",
    "sample_key", "sample_pattern", "condition_key", "condition_map", "verification", "notes",
}
_FILE_KEYS = {"url", "sha256", "sample", "role", "fname", "read"}
#: Columns of :func:`registry`, in order.
COLUMNS = (
    "name", "accession", "species", "technology", "assay", "n_cells", "conditions", "citation", "url", "format",
    "label_key", "label_map", "label_source", "checksum", "downloadable", "value_type", "verification", "notes",
)

_CUSTOM: dict[str, dict[str, Any]] = {}


def _fail(name: Any, message: str) -> None:
    raise ValueError(f"registry entry {name!r}: {message}")


def validate_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    """Check one registry entry and fill defaults; returns a normalised deep copy.

    Raises
    ------
    ValueError
        Naming the entry, the bad field and what is allowed.
    """
    if not isinstance(entry, Mapping):
        raise TypeError(f"a registry entry must be a dict, got {type(entry).__name__}.")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"every registry entry needs a non-empty string `name`; got {name!r}.")
    missing = [k for k in _REQUIRED if entry.get(k) in (None, "", [])]
    if missing:
        _fail(name, f"missing required field(s) {missing}.")
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        _fail(name, f"unknown field(s) {unknown}; allowed: {sorted(_KEYS)}.")
    out = copy.deepcopy(dict(entry))
    species = out["species"]
    species = [species] if isinstance(species, str) else list(species)
    if not species or any(s not in SPECIES for s in species):
        _fail(name, f"`species` must be 'human', 'mouse' or a list of them, got {out['species']!r}.")
    out["species"] = species[0] if len(species) == 1 else species
    if out["technology"] not in TECHNOLOGIES:
        _fail(name, f"unknown technology {out['technology']!r}; use one of {list(TECHNOLOGIES)}.")
    if out["format"] not in FORMATS:
        _fail(name, f"unknown format {out['format']!r}; use one of {list(FORMATS)}.")
    out.setdefault("orientation", "auto")
    if out["orientation"] not in ORIENTATIONS:
        _fail(name, f"unknown orientation {out['orientation']!r}; use one of {list(ORIENTATIONS)}.")
    out["url"] = [out["url"]] if isinstance(out["url"], str) else list(out["url"])
    out.setdefault("value_type", "counts")
    out.setdefault("conditions", [])
    for key in ("accession", "assay", "doi", "n_cells", "label_key", "label_map", "label_source", "sample_key",
                "sample_pattern", "condition_key", "condition_map", "notes"):
        out.setdefault(key, None)
    files = out.get("files") or []
    if not isinstance(files, list):
        _fail(name, "`files` must be a list of {url, sha256, sample, role} dicts.")
    clean = []
    for f in files:
        f = {"url": f} if isinstance(f, str) else dict(f)
        bad = sorted(set(f) - _FILE_KEYS)
        if bad:
            _fail(name, f"unknown key(s) {bad} in a `files` item; allowed: {sorted(_FILE_KEYS)}.")
        if not isinstance(f.get("url"), str) or not f["url"]:
            _fail(name, f"every `files` item needs a `url`, got {f!r}.")
        f.setdefault("sha256", None)
        f.setdefault("sample", None)
        f.setdefault("role", "matrix")
        f.setdefault("read", {})
        if f["role"] not in ROLES:
            _fail(name, f"unknown file role {f['role']!r}; use one of {list(ROLES)}.")
        sha = f["sha256"]
        if sha is not None:
            sha = str(sha).lower().removeprefix("sha256:")
            if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
                _fail(name, f"`sha256` of {f['url']} must be 64 hex digits or null, got {f['sha256']!r}.")
            f["sha256"] = sha
        clean.append(f)
    out["files"] = clean
    out.setdefault("downloadable", bool(clean))
    if out["downloadable"] and not any(f["role"] == "matrix" for f in clean):
        _fail(name, "`downloadable: true` needs at least one `files` item with role 'matrix'.")
    if out["label_map"] is not None:
        if not isinstance(out["label_map"], Mapping):
            _fail(name, "`label_map` must be a mapping code -> published name.")
        out["label_map"] = {str(k): str(v) for k, v in out["label_map"].items()}
    if out["condition_map"] is not None:
        out["condition_map"] = {str(k): str(v) for k, v in out["condition_map"].items()}
    verification = out.get("verification") or {}
    bad = {k: v for k, v in verification.items() if v not in VERIFICATION}
    if bad:
        _fail(name, f"verification values must be one of {list(VERIFICATION)}; got {bad}.")
    out["verification"] = dict(verification)
    return out


def _registry_path() -> Path:
    return Path(str(importlib.resources.files("noa_omics.datasets").joinpath(REGISTRY_FILE)))


@lru_cache(maxsize=1)
def _builtin() -> tuple[dict[str, Any], ...]:
    path = _registry_path()
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    entries = tuple(validate_entry(e) for e in data["datasets"])
    names = [e["name"] for e in entries]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"{path}: dataset names must be unique; repeated: {dup}.")
    return entries


def read_registry(path: str | Path) -> list[dict[str, Any]]:
    """Read and validate a registry YAML file (same layout as the built-in ``registry.yaml``)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: invalid YAML ({err}).") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("datasets"), list):
        raise ValueError(f"{path}: expected a mapping with a `datasets:` list.")
    return [validate_entry(e) for e in data["datasets"]]


def _entries() -> dict[str, dict[str, Any]]:
    out = {e["name"]: e for e in _builtin()}
    out.update(_CUSTOM)
    return out


def register(entry: Mapping[str, Any], *, overwrite: bool = False) -> dict[str, Any]:
    """Add a dataset entry to the registry of this Python session.

    Parameters
    ----------
    entry
        A dict with the fields of ``registry.yaml`` (at least ``name``, ``species``,
        ``technology``, ``format``, ``citation``, ``url`` and, to download, ``files``).
    overwrite
        Replace an entry of the same name (built-in or registered).

    Returns
    -------
    dict
        The validated entry.
    """
    clean = validate_entry(entry)
    if clean["name"] in _entries() and not overwrite:
        raise ValueError(
            f"a dataset named {clean['name']!r} is already registered; pass overwrite=True to replace it."
        )
    _CUSTOM[clean["name"]] = clean
    return copy.deepcopy(clean)


def unregister(name: str) -> None:
    """Remove a dataset added with :func:`register` (built-in entries cannot be removed)."""
    if name not in _CUSTOM:
        raise KeyError(f"{name!r} was not added with register(); registered: {sorted(_CUSTOM)}.")
    del _CUSTOM[name]


def get_entry(name: str, registry: Any = None) -> dict[str, Any]:
    """The validated entry ``name`` from ``registry`` (None: built-in + registered; a dict entry,
    a list of entries or a YAML path)."""
    if registry is None:
        entries = _entries()
    elif isinstance(registry, (str, Path)):
        entries = {e["name"]: e for e in read_registry(registry)}
    elif isinstance(registry, Mapping):
        entry = validate_entry(registry)
        entries = {entry["name"]: entry}
    elif isinstance(registry, Iterable):
        entries = {e["name"]: e for e in (validate_entry(x) for x in registry)}
    else:
        raise TypeError("`registry` must be None, a registry entry (dict), a list of entries or a YAML path.")
    if not isinstance(name, str) or name not in entries:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {sorted(entries)}.")
    return copy.deepcopy(entries[name])


def registry() -> pd.DataFrame:
    """Public testis datasets known to :func:`noa_omics.datasets.load`, one row per dataset.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``name``, with columns ``name``, ``accession``, ``species``, ``technology``,
        ``assay``, ``n_cells`` (nullable integer), ``conditions`` (list), ``citation``, ``url`` (list),
        ``format``, ``label_key``, ``label_map``, ``label_source``, ``checksum`` (list of per-file sha256, None when
        unknown), ``downloadable``, ``value_type``, ``verification`` (field -> ``verified`` |
        ``third_party`` | ``unverified``) and ``notes``.

    Notes
    -----
    Facts tagged ``unverified`` in ``verification`` were not confirmed in a primary source; treat
    them as leads, not as facts.
    """
    rows = []
    for entry in _entries().values():
        row = {k: entry.get(k) for k in COLUMNS if k != "checksum"}
        row["checksum"] = [f["sha256"] for f in entry["files"]]
        rows.append(row)
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    df["n_cells"] = df["n_cells"].astype("Int64")
    return df.set_index("name", drop=False).rename_axis(None)


_TAG = {"verified": "", "third_party": " [TP]", "unverified": " [U]"}


def _cell(entry: Mapping[str, Any], field: str, text: str) -> str:
    tag = _TAG.get(entry["verification"].get(field, "verified"), "")
    text = text.replace("|", "\\|").replace("\n", " ")
    return f"{text}{tag}" if text else ("n/a" + tag if tag else "n/a")


def registry_markdown() -> str:
    """The registry as a markdown table (rendered into ``docs/datasets.md``).

    Values tagged ``[TP]`` come from third-party code or aggregators; ``[U]`` are unverified.
    """
    header = (
        "| name | accession | species | technology | cells | conditions | format | labels | downloadable | citation |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for e in _builtin():
        species = e["species"] if isinstance(e["species"], str) else ", ".join(e["species"])
        n_cells = f"{e['n_cells']:,}" if e["n_cells"] is not None else ""
        labels = e["label_key"] or ""
        if e["label_map"]:
            labels += " (+ code map)"
        cells = [
            f"`{e['name']}`",
            _cell(e, "accession", str(e["accession"] or "")),
            _cell(e, "species", species),
            _cell(e, "technology", e["technology"]),
            _cell(e, "n_cells", n_cells),
            _cell(e, "conditions", ", ".join(e["conditions"])),
            _cell(e, "format", e["format"] + ("" if e["value_type"] == "counts" else f" ({e['value_type']})")),
            _cell(e, "label_key", labels),
            "yes" if e["downloadable"] else "no (path=)",
            _cell(e, "citation", e["citation"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return header + "\n".join(lines) + "\n"
