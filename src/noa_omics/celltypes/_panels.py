"""Marker coverage of a gene panel (:func:`panel_coverage`): can each cell type be called?

Imaging panels (Xenium, MERFISH, CosMx) hold 300-500 genes. ``panel_markers.yaml`` lists per cell
type the core markers a typical testis panel needs (an assumption about a testis-oriented panel,
not the 10x Xenium multi-tissue gene list); a type with fewer than ``min_present`` of them, or
fewer than ``min_genes`` genes of its curated ``marker_<type>`` set, is flagged.
"""

from __future__ import annotations

import importlib.resources
import warnings
from collections.abc import Iterable
from functools import lru_cache

import pandas as pd
import yaml

PANEL_FILE = "panel_markers.yaml"
#: Fewer genes than this in ``var_names`` is treated as a targeted panel by :func:`warn_panel`.
PANEL_MAX_GENES = 2000


@lru_cache(maxsize=1)
def _panel_spec() -> dict:
    text = importlib.resources.files("noa_omics.celltypes").joinpath(PANEL_FILE).read_text(encoding="utf-8")
    return yaml.safe_load(text)


def panel_coverage(var_names: Iterable[str], *, species: str | None = None, min_genes: int = 3) -> pd.DataFrame:
    """Per cell type: which core and curated markers a gene panel holds, and whether that is enough.

    Parameters
    ----------
    var_names
        Gene symbols of the panel (e.g. ``adata.var_names``).
    species
        ``"human"`` or ``"mouse"``; detected from the symbols when None.
    min_genes
        Genes of the curated ``marker_<type>`` set needed (as in :func:`annotate_testis`).

    Returns
    -------
    pandas.DataFrame
        Indexed by cell type: ``n_core``, ``n_core_present``, ``core_present``, ``core_missing``
        (``;``-joined), ``n_markers``, ``n_markers_present``, ``sufficient`` (at least
        ``min_present`` core markers and ``min_genes`` curated markers present).
    """
    from .._validation import check_species
    from ..genesets import detect_species, load

    genes = [str(g) for g in var_names]
    species = check_species(species) or detect_species(genes) or "human"
    library = load(species)
    spec = _panel_spec()
    present_upper = {g.upper() for g in genes}
    rows = {}
    for cell_type, core in spec["core"].items():
        marker_set = library[f"marker_{cell_type}"].genes
        by_upper = {g.upper(): g for g in marker_set}
        core_names = [by_upper.get(g.upper(), g if species == "human" else g.capitalize()) for g in core]
        have = [g for g in core_names if g.upper() in present_upper]
        missing = [g for g in core_names if g.upper() not in present_upper]
        n_present = sum(g.upper() in present_upper for g in marker_set)
        rows[cell_type] = {
            "n_core": len(core_names),
            "n_core_present": len(have),
            "core_present": ";".join(have),
            "core_missing": ";".join(missing),
            "n_markers": len(marker_set),
            "n_markers_present": n_present,
            "sufficient": len(have) >= int(spec["min_present"]) and n_present >= min_genes,
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def warn_panel(var_names: Iterable[str], species: str, coverage: dict) -> None:
    """Warn once, naming the types and missing core markers, when a targeted panel cannot call a type."""
    genes = list(var_names)
    if len(genes) > PANEL_MAX_GENES:
        return
    table = panel_coverage(genes, species=species)
    weak = table[~table["sufficient"]]
    if len(weak):
        detail = "; ".join(
            f"{t}: {r.n_core_present}/{r.n_core} core markers (missing {r.core_missing or '-'})" for t, r in weak.iterrows()
        )
        warnings.warn(
            f"this {len(genes)}-gene panel lacks markers for {len(weak)} cell type(s), which will be called poorly or "
            f"not at all (need >= {_panel_spec()['min_present']} core markers each): {detail}. See "
            "noa.tl.panel_coverage(var_names).",
            UserWarning,
            stacklevel=4,
        )
