"""Small helpers shared by the spatial functions (cell-type groups, scale estimate, validation)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy.spatial import cKDTree

from .._validation import check_obs_key
from .._vocabulary import CELL_TYPES, GERM_STAGES

#: Cell types of the seminiferous epithelium (the tubule content used for segmentation).
EPITHELIAL_TYPES: tuple[str, ...] = GERM_STAGES + ("sertoli",)
#: Cell types lining the tubule wall (assigned to the nearest tubule within a wall distance).
WALL_TYPES: tuple[str, ...] = ("peritubular_myoid",)


def check_tubule_key(adata: AnnData, tubule_key: str) -> None:
    """Refuse a missing tubule column with the fix (run :func:`~noa_omics.spatial.assign_tubules`)."""
    if tubule_key not in adata.obs.columns:
        raise KeyError(
            f"tubule column {tubule_key!r} not found in `adata.obs`; run "
            f"`noa.spatial.assign_tubules(adata, key_added={tubule_key!r})` first."
        )


def cell_types(adata: AnnData, cell_type_key: str) -> np.ndarray:
    """Cell-type labels as an object array of str (NA -> ``""``) after checking the column."""
    check_obs_key(adata, cell_type_key, what="cell-type column")
    labels = adata.obs[cell_type_key]
    values = labels.astype(object).where(labels.notna(), "").astype(str).to_numpy()
    known = np.isin(values, CELL_TYPES)
    if not known.any():
        examples = list(pd.unique(values))[:5]
        raise ValueError(
            f"`adata.obs[{cell_type_key!r}]` holds none of the vocabulary cell types "
            f"{list(CELL_TYPES)} (e.g. {examples}); map your labels first with "
            "`noa.tl.harmonize_labels` or `noa.tl.annotate_testis`."
        )
    return values


def sections(adata: AnnData, sample_key: str | None) -> list[tuple[str | None, np.ndarray]]:
    """``(section name, integer positions)`` per section; one unnamed section without ``sample_key``."""
    if sample_key is None:
        return [(None, np.arange(adata.n_obs))]
    check_obs_key(adata, sample_key, what="sample column")
    values = adata.obs[sample_key]
    if values.isna().any():
        raise ValueError(
            f"`adata.obs[{sample_key!r}]` has {int(values.isna().sum())} missing value(s); "
            "every cell needs its sample/section."
        )
    codes, uniques = pd.factorize(values.astype(str), sort=True)
    return [(str(name), np.flatnonzero(codes == k)) for k, name in enumerate(uniques)]


def nn_spacing(coords: np.ndarray) -> float:
    """Median nearest-neighbour distance, the natural length unit of a section."""
    if len(coords) < 2:
        raise ValueError("a section needs at least 2 cells to estimate the cell spacing.")
    dist, _ = cKDTree(coords).query(coords, k=2)
    nn = dist[:, 1]
    spacing = float(np.median(nn))
    if spacing <= 0:
        positive = nn[nn > 0]
        if positive.size == 0:
            raise ValueError("all cells of a section share the same coordinates; check `obsm['spatial']`.")
        spacing = float(np.median(positive))
    return spacing


def isin(values: np.ndarray, groups: Iterable[str]) -> np.ndarray:
    return np.isin(values, list(groups))
