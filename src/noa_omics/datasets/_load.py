"""Download (pooch) and harmonise a public testis dataset: :func:`load`."""

from __future__ import annotations

import os
import re
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import anndata
import numpy as np
import pandas as pd
from anndata import AnnData

from .._validation import is_count_matrix
from .._vocabulary import CELL_TYPES
from .._identifiers import known_symbol_column, looks_like_ensembl
from ._readers import _READ_ERRORS, read
from ._registry import get_entry

#: Environment variable overriding the download cache folder.
CACHE_ENV = "NOA_OMICS_DATA"
_STANDARD_MTX = {"matrix": "matrix.mtx", "genes": "genes.tsv", "barcodes": "barcodes.tsv"}


def cache_path(cache_dir: str | os.PathLike | None = None) -> Path:
    """Folder of downloaded datasets: ``cache_dir``, else ``$NOA_OMICS_DATA``, else
    ``pooch.os_cache("noa-omics")``."""
    import pooch

    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path(pooch.os_cache("noa-omics"))


def _file_name(item: dict[str, Any], fmt: str) -> str:
    if item.get("fname"):
        return str(item["fname"])
    name = Path(urlparse(item["url"]).path).name
    if not name:
        raise ValueError(f"cannot derive a file name from {item['url']!r}; give the files item an `fname`.")
    if fmt == "10x_mtx" and item["role"] in _STANDARD_MTX:  # stored per sample under Cell Ranger names
        sample = item.get("sample") or "sample"
        suffix = ".gz" if name.endswith(".gz") else ""
        stem = _STANDARD_MTX[item["role"]]
        if item["role"] == "genes" and "features" in name:
            stem = "features.tsv"
        return f"{sample}/{stem}{suffix}"
    return name


def _fetch(item: dict[str, Any], folder: Path, fmt: str, progress: bool) -> Path:
    """Download one file into ``folder`` with pooch, checking its sha256 when known."""
    import pooch

    fname = _file_name(item, fmt)
    target = folder / fname
    known_hash = f"sha256:{item['sha256']}" if item.get("sha256") else None
    try:
        path = pooch.retrieve(
            url=item["url"],
            known_hash=known_hash,
            fname=Path(fname).name,
            path=target.parent,
            progressbar=progress,
        )
    except ValueError as err:
        if "hash" not in str(err).lower():
            raise
        if target.exists():  # a stale cached copy that fails the check must not be reused
            target.unlink()
        raise ValueError(
            f"checksum mismatch for {item['url']}: expected sha256 {item['sha256']}. The download was "
            f"discarded and nothing was kept in {target.parent}. The file on the server changed or the "
            "transfer was corrupted; retry, or update the checksum in the registry if the source "
            f"really changed. ({err})"
        ) from None
    except Exception as err:
        import requests

        if isinstance(err, requests.exceptions.RequestException):
            raise ConnectionError(
                f"could not download {item['url']} ({err}); check the network or download the file "
                "yourself and pass path=."
            ) from None
        raise
    return Path(path)


def _symbols_as_var_names(adata: AnnData, notes: list[str]) -> None:
    names = adata.var_names.astype(str)
    if not looks_like_ensembl(names):
        return
    column = known_symbol_column(adata.var)  # the package's one list of symbol columns
    if column is not None:
        symbols = adata.var[column].astype(str)
        adata.var["gene_ids"] = names.to_numpy()
        adata.var_names = pd.Index(symbols.to_numpy())
        adata.var_names_make_unique()
        notes.append(f"var_names were Ensembl ids; symbols taken from var[{column!r}], ids kept in var['gene_ids'].")
        return
    notes.append("var_names are Ensembl ids and no symbol column was found; gene-set scoring needs symbols.")


def _set_counts(adata: AnnData, entry: dict[str, Any], notes: list[str]) -> None:
    if entry["value_type"] != "counts":
        adata.layers[entry["value_type"]] = adata.X.copy()
        notes.append(f"values are {entry['value_type']}, not counts: no layers['counts'] (count-based methods do not apply).")
        return
    raw = adata.raw
    if raw is not None and not is_count_matrix(adata.X, empty=True) and is_count_matrix(raw.X, empty=True) and adata.var_names.isin(raw.var_names).all():
        adata.layers["counts"] = raw[:, adata.var_names].X.copy()
        notes.append("counts taken from .raw.X (X holds normalised values).")
        return
    if not is_count_matrix(adata.X, empty=True):
        notes.append("X is not integer-valued although the registry says counts; layers['counts'] holds X as is.")
    adata.layers["counts"] = adata.X.copy()


def _assign_samples(adata: AnnData, entry: dict[str, Any], notes: list[str]) -> None:
    if "sample" in adata.obs and adata.obs["sample"].notna().all():
        pass
    elif entry.get("sample_key") and entry["sample_key"] in adata.obs:
        adata.obs["sample"] = adata.obs[entry["sample_key"]].astype(str)
    elif entry.get("sample_pattern"):
        pattern = re.compile(entry["sample_pattern"])
        found = [m.group(1) if (m := pattern.search(c)) else None for c in adata.obs_names]
        adata.obs["sample"] = found
        if any(f is None for f in found):
            notes.append(f"some cell ids do not match sample_pattern {entry['sample_pattern']!r}; their sample is NA.")
    else:
        adata.obs["sample"] = entry["name"]
        notes.append("no per-sample information: obs['sample'] is the dataset name.")
    adata.obs["sample"] = adata.obs["sample"].astype("category")


def _assign_conditions(adata: AnnData, entry: dict[str, Any], notes: list[str]) -> None:
    key = entry.get("condition_key")
    if key and key in adata.obs:
        adata.obs["condition"] = adata.obs[key].astype(str).astype("category")
        return
    mapping = entry.get("condition_map")
    if mapping:
        adata.obs["condition"] = adata.obs["sample"].astype(str).map(mapping).astype("category")
        unmapped = sorted(set(adata.obs["sample"].astype(str)) - set(mapping))
        if unmapped:
            notes.append(f"no condition for sample(s) {unmapped} in the registry: NA.")
    else:
        adata.obs["condition"] = pd.Categorical([pd.NA] * adata.n_obs, categories=[])
        notes.append("the registry has no per-sample condition map: obs['condition'] is NA.")


def _harmonise_labels(adata: AnnData, entry: dict[str, Any], notes: list[str]) -> None:
    key = entry.get("label_key")
    categories = list(CELL_TYPES)
    if not key or key not in adata.obs:
        adata.obs["noa_cell_type"] = pd.Categorical([np.nan] * adata.n_obs, categories=categories)
        reason = "the source has no published labels" if not key else f"label column {key!r} is absent"
        notes.append(f"{reason}: obs['noa_cell_type'] is NA; annotate with noa.tl.annotate_testis.")
        return
    labels = adata.obs[key]
    if entry.get("label_map"):
        def code(value: Any) -> str:
            if isinstance(value, (float, np.floating)) and float(value).is_integer():
                value = int(value)
            return str(value)

        mapping = entry["label_map"]
        labels = labels.map(lambda v: mapping.get(code(v), v) if pd.notna(v) else v)
        adata.obs[f"{key}_name"] = labels.astype("category")
    from ..celltypes import harmonize_labels

    harmonised = harmonize_labels(
        pd.Series(labels.to_numpy(), index=adata.obs_names, dtype=object), source=entry.get("label_source")
    )
    adata.obs["noa_cell_type"] = pd.Categorical(pd.Series(harmonised).reindex(adata.obs_names).to_numpy(),
                                                categories=categories)


def _merge_annotation(adata: AnnData, table: pd.DataFrame, notes: list[str], source: str) -> None:
    table = table.copy()
    table.index = table.index.astype(str)
    if table.index.duplicated().any():
        table = table[~table.index.duplicated()]
    shared = adata.obs_names.intersection(table.index)
    if len(shared) == 0:
        raise ValueError(
            f"none of the {adata.n_obs} cell ids matches the index of the annotation table {source}; "
            f"cell ids look like {list(adata.obs_names[:3])}, table ids like {list(table.index[:3])}."
        )
    if len(shared) < adata.n_obs:
        notes.append(f"{adata.n_obs - len(shared)} cells have no row in {source}: NA labels.")
    for column in table.columns:
        if column in adata.obs:
            continue
        adata.obs[column] = table[column].reindex(adata.obs_names).to_numpy()


def _read_annotation(path: Path, options: dict[str, Any]) -> pd.DataFrame:
    options = {"sep": "\t", "index_col": 0, **options}
    try:
        return pd.read_csv(path, **options)
    except _READ_ERRORS as err:
        raise ValueError(
            f"could not read the annotation table {path} ({type(err).__name__}: {err}); expected a delimited "
            f"text table readable with pandas.read_csv(**{options})."
        ) from None


def _concat(parts: list[AnnData]) -> AnnData:
    if len(parts) == 1:
        return parts[0]
    names = pd.Index(np.concatenate([p.obs_names.to_numpy() for p in parts]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if names.duplicated().any():
            for p in parts:
                p.obs_names = [f"{s}_{c}" for s, c in zip(p.obs["sample"].astype(str), p.obs_names)]
        return anndata.concat(parts, join="outer", fill_value=0, merge="same")


def load(
    name: str,
    path: str | os.PathLike | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    registry: Any = None,
    labels: str | os.PathLike | pd.DataFrame | None = None,
    format: str | None = None,
    orientation: str | None = None,
) -> AnnData:
    """Load a public testis dataset as a harmonised AnnData.

    Files are downloaded once with :mod:`pooch` into a cache folder (``cache_dir``, else the
    ``NOA_OMICS_DATA`` environment variable, else ``pooch.os_cache("noa-omics")``), written under a
    temporary name and renamed only when complete and, where the registry knows it, when the sha256
    checksum matches. A file that fails the check is removed.

    Parameters
    ----------
    name
        Dataset name (see :func:`registry`).
    path
        Local file or 10x directory to read instead of downloading (needed for datasets that are
        only available as archives or R objects, ``downloadable == False``).
    cache_dir
        Download folder (overrides ``NOA_OMICS_DATA``).
    progress
        Show a download progress bar (tqdm).
    registry
        Alternative registry: an entry dict, a list of entries or a YAML path (default: the built-in
        registry plus entries added with :func:`register`).
    labels
        Per-cell published labels to merge into ``obs`` (CSV/TSV path or DataFrame indexed by cell
        id), for sources that publish them outside the matrix (e.g. a supplementary table).
    format, orientation
        Override the registry's format / text-table orientation (``path`` only).

    Returns
    -------
    AnnData
        Gene symbols as ``var_names`` (Ensembl ids kept in ``var["gene_ids"]``), counts in
        ``layers["counts"]`` (when the source holds counts), ``obs["sample"]``,
        ``obs["condition"]`` (from the registry's per-sample map, NA when unknown) and
        ``obs["noa_cell_type"]`` harmonised from the published labels with
        :func:`noa_omics.tl.harmonize_labels` (NA when the source publishes none);
        ``uns["noa_dataset"]``: the registry entry's name, accession, citation, url, verification
        and the notes collected while loading.

    Raises
    ------
    ValueError
        Unknown dataset (the message lists the known ones), checksum mismatch, or a truncated or
        wrong-format file (the message names the file and the expected format).
    """
    entry = get_entry(name, registry)
    notes: list[str] = []
    fmt = format or entry["format"]
    orient = orientation or entry.get("orientation") or "auto"
    annotations: list[tuple[Path, dict[str, Any], str | None]] = []
    downloaded: list[Path] = []

    if path is not None:
        parts = [read(Path(path), fmt, orientation=orient)]
    else:
        if not entry["downloadable"]:
            raise ValueError(
                f"dataset {name!r} has no direct download ({entry.get('notes') or 'see the registry'}). "
                f"Get the data from {entry['url'][0]} and pass path= to a local file in a supported format."
            )
        folder = cache_path(cache_dir) / entry["name"]
        by_sample: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for item in entry["files"]:
            local = _fetch(item, folder, fmt, progress)
            if item["role"] == "annotation":
                annotations.append((local, item.get("read") or {}, item.get("sample")))
            else:
                downloaded.append(local)
                by_sample[item.get("sample")].append({**item, "local": local})
        jobs = []
        for sample, items in by_sample.items():
            targets = [items[0]["local"].parent] if fmt == "10x_mtx" else [i["local"] for i in items]
            jobs.extend((sample, target, items) for target in targets)
        parts = []
        for sample, target, items in jobs:
            try:
                part = read(target, fmt, orientation=orient)
            except ValueError as err:
                if "pass orientation=" not in str(err):
                    for i in items:  # an unreadable download must not be reused from the cache
                        if i["local"].exists() and not i.get("sha256"):
                            i["local"].unlink()
                raise
            if sample is not None:
                part.obs["sample"] = str(sample)
            elif len(jobs) > 1:  # several files without sample ids: the file name stands in
                part.obs["sample"] = target.name.split(".")[0]
            parts.append(part)

    for part in parts:
        part.uns.pop("noa_read", None)
    adata = _concat(parts)

    for local, options, sample in annotations:
        table = _read_annotation(local, options)
        if sample is not None and "sample" in adata.obs:
            sel = adata.obs["sample"].astype(str) == str(sample)
            sub = adata.obs_names[sel]
            table.index = table.index.astype(str)
            if not sub.intersection(table.index).size and sel.any():
                table.index = [f"{sample}_{c}" for c in table.index]
        _merge_annotation(adata, table, notes, local.name)
    if labels is not None:
        table = labels if isinstance(labels, pd.DataFrame) else _read_annotation(Path(labels), {"sep": None, "engine": "python"})
        _merge_annotation(adata, table, notes, "labels")

    _set_counts(adata, entry, notes)
    _symbols_as_var_names(adata, notes)
    _assign_samples(adata, entry, notes)
    _assign_conditions(adata, entry, notes)
    _harmonise_labels(adata, entry, notes)
    adata.uns["noa_dataset"] = {
        "name": entry["name"],
        "accession": entry.get("accession") or "",
        "citation": entry["citation"],
        "url": list(entry["url"]),
        "format": fmt,
        "value_type": entry["value_type"],
        "label_key": entry.get("label_key") or "",
        "verification": dict(entry["verification"]),
        "source": str(path) if path is not None else "download",
        "notes": notes + ([entry["notes"]] if entry.get("notes") else []),
    }
    return adata
