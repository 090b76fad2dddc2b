"""Map published testis cell-type labels onto the noa-omics vocabulary.

The alias table is data (``label_aliases.yaml`` next to this file): published vocabularies
(Liqianglab scAzoo, GSE235321 stages, HISTA, Guo 2018, Green 2018, Chen 2021 NMFreg, Wang 2025,
Rajachandran 2023, Cell Ontology names and ids) -> one of
:data:`noa_omics._vocabulary.CELL_TYPES`.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from collections.abc import Iterable, Mapping
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
import yaml

from .._vocabulary import CELL_TYPES

ALIASES_FILE = "label_aliases.yaml"
_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def normalize_label(label: Any) -> str:
    """Lookup key of a label: lower case, accents stripped, only letters and digits kept.

    Integral floats (``7.0``, as produced by pandas for integer codes with missing values)
    become ``"7"``.

    Examples
    --------
    >>> normalize_label("Early_primary_SPCs")
    'earlyprimaryspcs'
    >>> normalize_label("CL:0000216")
    'cl0000216'
    """
    if isinstance(label, (float, np.floating)) and np.isfinite(label) and float(label).is_integer():
        label = int(label)
    text = unicodedata.normalize("NFKD", str(label))
    text = "".join(c for c in text if not unicodedata.combining(c))
    return _NON_ALNUM.sub("", text.lower())


def _check_target(target: Any, *, where: str) -> str:
    if target not in CELL_TYPES:
        raise ValueError(f"{where}: {target!r} is not a noa-omics cell type; use one of {list(CELL_TYPES)}.")
    return str(target)


def _add(table: dict[str, tuple[str, str]], label: Any, target: str, *, where: str) -> None:
    key = normalize_label(label)
    if not key:
        raise ValueError(f"{where}: label {label!r} has no letters or digits.")
    if key in table and table[key][0] != target:
        raise ValueError(
            f"{where}: label {label!r} maps to {target!r} but {table[key][1]!r} (same lookup key {key!r}) "
            f"maps to {table[key][0]!r}; move one of them to a `sources:` entry."
        )
    table[key] = (target, str(label))


@lru_cache(maxsize=1)
def label_table() -> dict[str, Any]:
    """The parsed and checked alias table.

    Returns
    -------
    dict
        ``version``; ``aliases`` (key -> (cell type, label as written)); ``sources`` (normalised
        source name -> {"name", "description", "labels": key -> cell type}); ``ambiguous``
        (key -> {"default", "note"}); ``cell_ontology`` (id -> record).
    """
    raw = yaml.safe_load(resources.files(__package__).joinpath(ALIASES_FILE).read_text(encoding="utf-8"))
    aliases: dict[str, tuple[str, str]] = {}
    for cell_type in CELL_TYPES:
        _add(aliases, cell_type, cell_type, where="vocabulary")
    for target, labels in raw["aliases"].items():
        target = _check_target(target, where=f"{ALIASES_FILE} aliases")
        for label in labels:
            _add(aliases, label, target, where=f"{ALIASES_FILE} aliases[{target}]")
    ontology = {}
    for cl_id, record in raw.get("cell_ontology", {}).items():
        target = _check_target(record["type"], where=f"{ALIASES_FILE} cell_ontology[{cl_id}]")
        _add(aliases, cl_id, target, where=f"{ALIASES_FILE} cell_ontology")
        _add(aliases, record["name"], target, where=f"{ALIASES_FILE} cell_ontology[{cl_id}]")
        ontology[cl_id] = dict(record)
    sources = {}
    for name, entry in raw.get("sources", {}).items():
        table: dict[str, tuple[str, str]] = {}
        for label, target in entry["labels"].items():
            _check_target(target, where=f"{ALIASES_FILE} sources[{name}]")
            _add(table, label, target, where=f"{ALIASES_FILE} sources[{name}]")
        sources[normalize_label(name)] = {
            "name": name,
            "description": entry.get("description", ""),
            "labels": {k: v[0] for k, v in table.items()},
        }
    ambiguous = {}
    for label, entry in raw.get("ambiguous", {}).items():
        _check_target(entry["default"], where=f"{ALIASES_FILE} ambiguous[{label}]")
        ambiguous[normalize_label(label)] = {"label": label, **entry}
    return {
        "version": str(raw.get("version", "")),
        "aliases": aliases,
        "sources": sources,
        "ambiguous": ambiguous,
        "cell_ontology": ontology,
    }


def label_sources() -> list[str]:
    """Names accepted by ``harmonize_labels(..., source=...)``."""
    return [entry["name"] for entry in label_table()["sources"].values()]


def _as_series(labels: Any) -> pd.Series:
    if isinstance(labels, pd.Series):
        return labels
    if isinstance(labels, (pd.Index, pd.Categorical, np.ndarray, list, tuple)):
        return pd.Series(np.asarray(labels, dtype=object))
    if isinstance(labels, str) or not isinstance(labels, Iterable):
        raise TypeError(
            f"`labels` must be a list, array or pandas Series of labels, got {type(labels).__name__}; "
            "for one label write harmonize_labels([label])."
        )
    return pd.Series(list(labels), dtype=object)


def harmonize_labels(
    labels: Any,
    *,
    mapping: Mapping[str, str] | None = None,
    source: str | None = None,
    warn_unknown: bool = True,
) -> pd.Series:
    """Map published cell-type labels onto the noa-omics fine cell types.

    Lookup is case-, space- and punctuation-insensitive (``"Sertoli cells"``,
    ``"sertoli_cells"`` and ``"SERTOLI-CELLS"`` are one key); a key that is not found is tried
    again without a trailing ``s``. The order of precedence is ``mapping`` > ``source``'s own
    labels > the shared aliases > Cell Ontology names and ids.

    Parameters
    ----------
    labels
        Labels (list, array, :class:`pandas.Series` or categorical); integer cluster codes are
        accepted with a ``source`` that defines them (``Guo2018``, ``Green2018``, ``Chen2021``).
    mapping
        Extra ``{label: cell type}`` entries that override the table (targets must be
        cell types of the vocabulary).
    source
        Dataset whose conventions apply (see :func:`label_sources`). Needed for labels whose
        meaning differs between datasets: ``"ST"`` is a Sertoli cell in the Liqianglab and
        GSE149512 re-annotations (the default) but a round-spermatid stage in GSE235321
        (``source="GSE235321"``); integer codes need their dataset.
    warn_unknown
        Emit one :class:`UserWarning` listing every label that was not recognised (they become
        ``"other"``) and one listing ambiguous labels resolved by their default.

    Returns
    -------
    pandas.Series
        Categorical with categories :data:`~noa_omics._vocabulary.CELL_TYPES`, same index and
        length as ``labels``, named ``noa_cell_type``. Missing labels (NaN/None) become
        ``"other"`` and are reported as unknown.

    Examples
    --------
    >>> harmonize_labels(["Sertoli cells", "SPCs", "Round_Spermatids"]).tolist()
    ['sertoli', 'spermatocyte', 'round_spermatid']
    >>> harmonize_labels(["ST"], source="GSE235321").tolist()
    ['round_spermatid']
    """
    series = _as_series(labels)
    table = label_table()
    source_labels: dict[str, str] = {}
    if source is not None:
        key = normalize_label(source)
        if key not in table["sources"]:
            raise ValueError(f"unknown label source {source!r}; use one of {label_sources()} or None.")
        source_labels = table["sources"][key]["labels"]
    overrides: dict[str, str] = {}
    if mapping is not None:
        if not isinstance(mapping, Mapping):
            raise TypeError(f"`mapping` must be a dict label -> cell type, got {type(mapping).__name__}.")
        for label, target in mapping.items():
            overrides[normalize_label(label)] = _check_target(target, where="`mapping`")

    codes = pd.Series(pd.Categorical(series.to_numpy(dtype=object, na_value=None)))
    unknown: list[str] = []
    ambiguous_used: list[str] = []
    resolved: dict[Any, str] = {}
    for label in codes.cat.categories:
        resolved[label] = _lookup(label, overrides, source_labels, table, unknown, ambiguous_used)
    out = codes.map(resolved).astype(object)
    if codes.isna().any():
        out[codes.isna().to_numpy()] = "other"
        unknown.append("<missing>")
    result = pd.Series(
        pd.Categorical(out.to_numpy(), categories=list(CELL_TYPES)), index=series.index, name="noa_cell_type"
    )
    if warn_unknown and ambiguous_used:
        notes = "; ".join(table["ambiguous"][normalize_label(lab)]["note"] for lab in ambiguous_used)
        warnings.warn(
            f"ambiguous label(s) {ambiguous_used} resolved by their default without `source=`: {notes}",
            UserWarning,
            stacklevel=2,
        )
    if warn_unknown and unknown:
        warnings.warn(
            f"{len(unknown)} unrecognised label(s) mapped to 'other': {unknown}. Pass `mapping={{label: cell_type}}` "
            f"(cell types: {list(CELL_TYPES)}) or `source=` (one of {label_sources()}).",
            UserWarning,
            stacklevel=2,
        )
    return result


def _lookup(
    label: Any,
    overrides: Mapping[str, str],
    source_labels: Mapping[str, str],
    table: Mapping[str, Any],
    unknown: list[str],
    ambiguous_used: list[str],
) -> str:
    key = normalize_label(label)
    candidates = [key]
    if key.endswith("s") and len(key) > 2:
        candidates.append(key[:-1])
    for candidate in candidates:
        if candidate in overrides:
            return overrides[candidate]
        if candidate in source_labels:
            return source_labels[candidate]
        if candidate in table["ambiguous"]:
            ambiguous_used.append(str(label))
            return table["ambiguous"][candidate]["default"]
        if candidate in table["aliases"]:
            return table["aliases"][candidate][0]
    unknown.append(str(label))
    return "other"
