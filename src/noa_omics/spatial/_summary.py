"""Per-sample summary of tubule histology, niche collapse and cell-class neighbourhoods: ``niche_summary``."""

from __future__ import annotations

import itertools
import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._validation import check_adata, check_frame_columns, check_obs_key, check_spatial, renamed_arguments
from .._vocabulary import CELL_CLASSES, CELL_TYPE_TO_CLASS, HISTOLOGIES
from ._metrics import tubule_metrics
from ._utils import cell_types, sections

__all__ = ["niche_summary", "focal_spermatogenesis", "FOCAL_COLUMNS"]

#: Cell classes whose pairwise neighbourhood enrichment is reported.
NHOOD_CLASSES: tuple[str, ...] = ("germ", "sertoli", "leydig", "immune")

#: Severity order used to break ties of the predominant histology.
_SEVERITY = {h: k for k, h in enumerate(HISTOLOGIES)}


@renamed_arguments(n_perms="n_permutations", seed="random_state")
def niche_summary(
    adata: AnnData,
    *,
    sample_key: str,
    tubule_key: str = "noa_tubule",
    cell_type_key: str = "noa_cell_type",
    spatial_key: str = "spatial",
    section_key: str | None = None,
    metrics: pd.DataFrame | None = None,
    score_key: str | None = None,
    nhood_classes: Sequence[str] = NHOOD_CLASSES,
    n_neighs: int = 6,
    n_permutations: int = 200,
    random_state: int = 0,
    microns_per_unit: float = 1.0,
    section_area: Mapping[str, float] | None = None,
    confidence: float = 0.95,
    **metric_kwargs: Any,
) -> pd.DataFrame:
    r"""Per-sample tubule histology, niche collapse and cell-class neighbourhood enrichment.

    Parameters
    ----------
    adata
        Cells with tubule ids (:func:`~noa_omics.spatial.assign_tubules` run with the same
        ``sample_key``), cell types and coordinates.
    sample_key
        ``obs`` column with the sample (one row per sample).
    tubule_key, cell_type_key, spatial_key
        As in :func:`~noa_omics.spatial.tubule_metrics`.
    section_key
        ``obs`` column with the section (library) when a sample has several; neighbourhood
        statistics are computed per section and averaged per sample. Default: one section per
        sample.
    metrics
        Output of :func:`~noa_omics.spatial.tubule_metrics` (with its ``sample`` column); computed
        here (with ``score_key`` and ``metric_kwargs``) when None.
    score_key
        ``obsm`` key of gene-set scores, passed to ``tubule_metrics`` (germ apoptosis, Sertoli
        term of the NCI).
    nhood_classes
        Cell classes (``noa_cell_class`` vocabulary) whose pairwise enrichment is reported.
    n_neighs
        Neighbours per cell of the spatial k-nearest-neighbour graph
        (:func:`squidpy.gr.spatial_neighbors_knn`; ``spatial_neighbors(coord_type="generic")`` on
        squidpy < 1.8).
    n_permutations
        Label permutations of :func:`squidpy.gr.nhood_enrichment` (``n_perms=``, the old name,
        still works with a FutureWarning).
    random_state
        Permutation seed (``seed=`` is the old name).
    microns_per_unit
        Length of one coordinate unit in micrometres (default 1: coordinates in µm, as in
        Slide-seq / Stereo-seq / Xenium exports; pass e.g. the µm per pixel of a Visium
        full-resolution image). Only the spermatid-tubule density depends on it.
    section_area
        Section area in mm² per sample (e.g. measured on the H&E), used instead of the convex
        hull of the sample's cells.
    confidence
        Level of the intervals of the focal-spermatogenesis columns.
    **metric_kwargs
        Passed to :func:`~noa_omics.spatial.tubule_metrics`.

    Returns
    -------
    pandas.DataFrame
        Index: sample. Columns: ``n_cells``, ``n_sections``, ``n_tubules``, ``frac_<histology>`` for
        the four histologies, ``histology`` (predominant tubule histology; ties go to the more
        severe class), ``mean_johnsen_like``, ``median_niche_collapse_index`` (the per-sample NCI),
        ``mean_niche_collapse_index``, ``mean_germ_apoptosis`` (when scores are given), and
        ``nhood_<a>_<b>``: neighbourhood-enrichment z-score of cell classes *a* and *b*, and the
        focal-spermatogenesis columns (see Notes): ``n_complete_tubules``,
        ``frac_complete_tubules`` with ``frac_complete_tubules_low`` / ``_high``,
        ``best_johnsen_like`` with ``johnsen_like_p10`` / ``johnsen_like_p90``,
        ``n_spermatid_tubules``, ``section_area_mm2``, ``spermatid_tubules_per_mm2`` with
        ``spermatid_tubules_per_mm2_low`` / ``_high``.

    Notes
    -----
    **Focal spermatogenesis.** Micro-TESE finds sperm in the few tubules that still make them, so
    means over tubules (mean NCI, mean Johnsen) hide what matters: a section with a few normal
    tubules among Sertoli-cell-only ones has the same mean as a uniformly damaged one. Per sample,
    over its :math:`T` tubules:

    - ``frac_complete_tubules`` :math:`= c/T`, :math:`c` = tubules whose most advanced stage is
      the elongating spermatid (complete spermatogenesis), with the Wilson score interval
      (Wilson 1927) over tubules;
    - ``best_johnsen_like``: the highest Johnsen-like score of any tubule, and the 10th and 90th
      percentiles over tubules as its spread;
    - ``spermatid_tubules_per_mm2`` :math:`= k / A`, :math:`k` = tubules with round or
      elongating spermatids, :math:`A` the section area in mm² (convex hull of each section's
      cells, summed over sections, times ``microns_per_unit``² / 10⁶, unless ``section_area``
      gives it), with the exact Poisson (Garwood 1936) interval of :math:`k` divided by
      :math:`A`. The convex hull over-estimates the tissue area of a concave or torn section;
      pass ``section_area`` when it is known.

    The enrichment z-score of classes :math:`a, b` is
    :math:`z_{ab} = (N_{ab} - \mu_{ab}) / \sigma_{ab}`, with :math:`N_{ab}` the number of
    graph edges between cells of class *a* and *b* and :math:`\mu, \sigma` its mean and standard
    deviation over random permutations of the class labels (squidpy; Palla et al. 2022). It is
    computed **per section** on that section's own graph, never on pooled libraries, because
    coordinates of different sections are unrelated; a class absent from a section gives NaN.

    References
    ----------
    Palla G et al. (2022) Squidpy: a scalable framework for spatial omics analysis. Nat Methods
    19:171-178. doi:10.1038/s41592-021-01358-2
    """
    check_adata(adata, min_vars=0)
    check_obs_key(adata, sample_key, what="sample column")
    if section_key is not None:
        check_obs_key(adata, section_key, what="section column")
    check_spatial(adata, spatial_key)
    types = cell_types(adata, cell_type_key)
    unknown = set(nhood_classes) - set(CELL_CLASSES)
    if unknown:
        raise ValueError(f"unknown cell class(es) {sorted(unknown)}; use {list(CELL_CLASSES)}.")
    if n_neighs < 1 or n_permutations < 10:
        raise ValueError("`n_neighs` must be >= 1 and `n_permutations` >= 10.")
    if not (isinstance(microns_per_unit, (int, float)) and np.isfinite(microns_per_unit) and microns_per_unit > 0):
        raise ValueError(f"`microns_per_unit` must be a positive number, got {microns_per_unit!r}.")
    if not 0 < float(confidence) < 1:
        raise ValueError(f"`confidence` must be in (0, 1), got {confidence!r}.")

    if metrics is None:
        metrics = tubule_metrics(
            adata,
            tubule_key=tubule_key,
            cell_type_key=cell_type_key,
            spatial_key=spatial_key,
            sample_key=sample_key,
            score_key=score_key,
            **metric_kwargs,
        )
    check_frame_columns(metrics, ["histology", "johnsen_like", "niche_collapse_index"], name="metrics")
    if "sample" not in metrics.columns:
        metrics = metrics.assign(sample=_sample_of_tubules(adata, metrics.index, tubule_key, sample_key))

    sample_cells = sections(adata, sample_key)
    samples = [name for name, _ in sample_cells]
    summary = pd.DataFrame(index=pd.Index(samples, name=sample_key))
    summary["n_cells"] = [len(pos) for _, pos in sample_cells]
    grouped = metrics.groupby(metrics["sample"].astype(str), observed=True)
    summary["n_tubules"] = grouped.size().reindex(samples).fillna(0).astype(int).to_numpy()
    hist_counts = pd.crosstab(metrics["sample"].astype(str), metrics["histology"].astype(str))
    hist_counts = hist_counts.reindex(index=samples, columns=list(HISTOLOGIES), fill_value=0)
    totals = hist_counts.sum(axis=1).replace(0, np.nan)
    for h in HISTOLOGIES:
        summary[f"frac_{h}"] = (hist_counts[h] / totals).to_numpy()
    summary["histology"] = [_predominant(hist_counts.loc[s]) for s in samples]
    summary["mean_johnsen_like"] = grouped["johnsen_like"].mean().reindex(samples).to_numpy()
    summary["median_niche_collapse_index"] = grouped["niche_collapse_index"].median().reindex(samples).to_numpy()
    summary["mean_niche_collapse_index"] = grouped["niche_collapse_index"].mean().reindex(samples).to_numpy()
    if "germ_apoptosis" in metrics.columns:
        summary["mean_germ_apoptosis"] = grouped["germ_apoptosis"].mean().reindex(samples).to_numpy()

    # neighbourhood enrichment, one section (library) at a time
    classes = np.array([CELL_TYPE_TO_CLASS.get(t, "other") for t in types], dtype=object)
    section_col = sample_key if section_key is None else section_key
    pairs = list(itertools.combinations_with_replacement(list(nhood_classes), 2))
    per_section = []
    n_sections = {}
    hull_area = {}
    coords = np.asarray(adata.obsm[spatial_key], dtype=float)[:, :2]
    for name, pos in sample_cells:
        sec_values = adata.obs[section_col].astype(str).to_numpy()[pos]
        secs = sorted(set(sec_values))
        n_sections[name] = len(secs)
        hull_area[name] = 0.0
        for sec in secs:
            idx = pos[sec_values == sec]
            hull_area[name] += _hull_area(coords[idx])
            z = _nhood_z(adata, idx, classes[idx], spatial_key, n_neighs, n_permutations, random_state)
            row = {"sample": name}
            for a, b in pairs:
                row[f"nhood_{a}_{b}"] = z.get((a, b), np.nan)
            per_section.append(row)
    summary.insert(1, "n_sections", pd.Series(n_sections).reindex(samples).to_numpy())
    nhood = pd.DataFrame(per_section).groupby("sample").mean().reindex(samples)
    for col in nhood.columns:
        summary[col] = nhood[col].to_numpy()
    areas = pd.Series(hull_area, dtype=float).reindex(samples) * (float(microns_per_unit) ** 2) / 1e6
    if section_area is not None:
        given = pd.Series(dict(section_area), dtype=float)
        given.index = given.index.astype(str)
        unknown = sorted(set(given.index) - set(samples))
        if unknown:
            raise KeyError(f"`section_area` names sample(s) {unknown[:5]} not in {sample_key!r}.")
        if not (given > 0).all():
            raise ValueError("`section_area` values must be positive areas in mm².")
        areas.loc[given.index] = given
    focal = focal_spermatogenesis(metrics, samples, areas, confidence=float(confidence))
    for col in focal.columns:
        summary[col] = focal[col].to_numpy()
    summary.attrs["params"] = {
        "sample_key": sample_key,
        "section_key": section_key,
        "n_neighs": int(n_neighs),
        "n_permutations": int(n_permutations),
        "random_state": int(random_state),
        "microns_per_unit": float(microns_per_unit),
        "section_area_source": "given" if section_area is not None else "convex_hull",
        "confidence": float(confidence),
        "metrics": dict(metrics.attrs.get("params", {})),
    }
    return summary


#: Per-sample focal-spermatogenesis columns of :func:`niche_summary` (also read by the multi-hit table).
FOCAL_COLUMNS: tuple[str, ...] = (
    "n_complete_tubules",
    "frac_complete_tubules",
    "frac_complete_tubules_low",
    "frac_complete_tubules_high",
    "best_johnsen_like",
    "johnsen_like_p10",
    "johnsen_like_p90",
    "n_spermatid_tubules",
    "section_area_mm2",
    "spermatid_tubules_per_mm2",
    "spermatid_tubules_per_mm2_low",
    "spermatid_tubules_per_mm2_high",
)


def focal_spermatogenesis(
    metrics: pd.DataFrame, samples: Sequence[str], area_mm2: pd.Series, *, confidence: float = 0.95
) -> pd.DataFrame:
    r"""Focal-spermatogenesis columns per sample from a per-tubule table (see :func:`niche_summary`).

    ``metrics`` needs ``sample``, ``most_advanced_stage`` and ``johnsen_like``; ``area_mm2`` is
    the section area per sample in mm².
    """
    from scipy import stats

    check_frame_columns(metrics, ["sample", "most_advanced_stage", "johnsen_like"], name="metrics")
    stage = metrics["most_advanced_stage"].astype(object)
    table = pd.DataFrame(
        {
            "sample": metrics["sample"].astype(str).to_numpy(),
            "complete": (stage == "elongating_spermatid").to_numpy(),
            "spermatid": stage.isin(["round_spermatid", "elongating_spermatid"]).to_numpy(),
            "johnsen": pd.to_numeric(metrics["johnsen_like"], errors="coerce").to_numpy(dtype=float),
        }
    )
    grouped = table.groupby("sample")
    n = grouped.size().reindex(samples).fillna(0).astype(int)
    c = grouped["complete"].sum().reindex(samples).fillna(0).astype(int)
    k = grouped["spermatid"].sum().reindex(samples).fillna(0).astype(int)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    out = pd.DataFrame(index=pd.Index(list(samples)))
    out["n_complete_tubules"] = c.to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = (c / n.where(n > 0)).to_numpy(dtype=float)
        # Wilson score interval of a binomial proportion (over tubules)
        nn = n.to_numpy(dtype=float)
        centre = (frac + z**2 / (2 * nn)) / (1 + z**2 / nn)
        half = z * np.sqrt(frac * (1 - frac) / nn + z**2 / (4 * nn**2)) / (1 + z**2 / nn)
    out["frac_complete_tubules"] = frac
    out["frac_complete_tubules_low"] = np.clip(centre - half, 0, 1)
    out["frac_complete_tubules_high"] = np.clip(centre + half, 0, 1)
    out["best_johnsen_like"] = grouped["johnsen"].max().reindex(samples).to_numpy(dtype=float)
    out["johnsen_like_p10"] = grouped["johnsen"].quantile(0.1).reindex(samples).to_numpy(dtype=float)
    out["johnsen_like_p90"] = grouped["johnsen"].quantile(0.9).reindex(samples).to_numpy(dtype=float)
    out["n_spermatid_tubules"] = k.to_numpy()
    area = pd.Series(area_mm2, dtype=float).reindex(samples).to_numpy()
    area = np.where(area > 0, area, np.nan)
    out["section_area_mm2"] = area
    kk = k.to_numpy(dtype=float)
    alpha = 1 - confidence
    # exact (Garwood) Poisson interval of the count, divided by the area
    low = np.where(kk > 0, stats.chi2.ppf(alpha / 2, 2 * kk) / 2, 0.0)
    high = stats.chi2.ppf(1 - alpha / 2, 2 * (kk + 1)) / 2
    out["spermatid_tubules_per_mm2"] = kk / area
    out["spermatid_tubules_per_mm2_low"] = low / area
    out["spermatid_tubules_per_mm2_high"] = high / area
    return out


def _hull_area(points: np.ndarray) -> float:
    """Area of the convex hull of 2-D points (0 for fewer than 3 points or collinear ones)."""
    from scipy.spatial import ConvexHull, QhullError

    points = points[np.isfinite(points).all(axis=1)]
    if len(points) < 3:
        return 0.0
    try:
        return float(ConvexHull(points).volume)  # in 2-D, "volume" is the area
    except QhullError:
        return 0.0


def _sample_of_tubules(adata: AnnData, tubules: pd.Index, tubule_key: str, sample_key: str) -> np.ndarray:
    """Sample of each tubule id of ``metrics`` (from the cells), for tables without a sample column."""
    check_obs_key(adata, tubule_key, what="tubule column")
    obs = adata.obs[[tubule_key, sample_key]].dropna()
    pairs = obs.astype(str).drop_duplicates()
    if pairs[tubule_key].duplicated().any():
        raise ValueError(
            f"tubule ids of {tubule_key!r} span several samples; run "
            f"`noa.spatial.assign_tubules(adata, sample_key={sample_key!r})` and "
            f"`tubule_metrics(..., sample_key={sample_key!r})`."
        )
    mapping = pairs.set_index(tubule_key)[sample_key]
    missing = tubules.astype(str).difference(mapping.index)
    if len(missing):
        raise KeyError(f"tubule(s) {list(missing[:5])} of `metrics` not found in `adata.obs[{tubule_key!r}]`.")
    return mapping.reindex(tubules.astype(str)).to_numpy()


def _predominant(counts: pd.Series) -> str | None:
    if counts.sum() == 0:
        return None
    best = counts.max()
    tied = [h for h in HISTOLOGIES if counts[h] == best]
    return max(tied, key=_SEVERITY.__getitem__)


def _nhood_z(adata, idx, classes, spatial_key, n_neighs, n_perms, seed) -> dict[tuple[str, str], float]:
    """Symmetric class-pair z-scores of one section (squidpy)."""
    import squidpy as sq  # heavy import, only needed here

    present = pd.unique(classes)
    if len(idx) <= n_neighs or present.size < 2:
        return {}
    sub = AnnData(obs=pd.DataFrame({"cell_class": pd.Categorical(classes)}, index=adata.obs_names[idx]))
    sub.obsm["spatial"] = np.asarray(adata.obsm[spatial_key])[idx]
    # squidpy logs every graph it builds at INFO level; keep the user's console quiet
    squidpy_logger = logging.getLogger("spatialdata._logging")
    level = squidpy_logger.level
    squidpy_logger.setLevel(logging.WARNING)
    try:
        knn = getattr(sq.gr, "spatial_neighbors_knn", None)  # squidpy >= 1.8
        if knn is not None:
            knn(sub, n_neighs=n_neighs, spatial_key="spatial")
        else:  # pragma: no cover - older squidpy
            sq.gr.spatial_neighbors(sub, coord_type="generic", n_neighs=n_neighs, spatial_key="spatial")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sq.gr.nhood_enrichment(
                sub, cluster_key="cell_class", n_perms=n_perms, seed=seed, show_progress_bar=False
            )
    finally:
        squidpy_logger.setLevel(level)
    z = np.asarray(sub.uns["cell_class_nhood_enrichment"]["zscore"], dtype=float)
    cats = list(sub.obs["cell_class"].cat.categories)
    out = {}
    for i, a in enumerate(cats):
        for j, b in enumerate(cats):
            out[(a, b)] = float(z[i, j])
    return out
