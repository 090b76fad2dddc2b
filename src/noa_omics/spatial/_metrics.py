r"""Per-tubule spermatogenesis and niche metrics: ``tubule_metrics``."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
import numpy as np
import pandas as pd
from anndata import AnnData
from scipy.spatial import ConvexHull, QhullError
from scipy.stats import rankdata

from .._validation import check_adata, check_no_infinite, check_obs_key, check_score_table, check_spatial
from .._vocabulary import GERM_STAGES, HISTOLOGIES
from ._shapes import tubule_sizes
from ._utils import cell_types, check_tubule_key

__all__ = ["tubule_metrics", "NCI_WEIGHTS"]

#: Default weights of the niche-collapse-index terms (re-normalised over the available terms).
NCI_WEIGHTS: Mapping[str, float] = {
    "incompleteness": 0.3,
    "germ_depletion": 0.3,
    "radial_disorder": 0.2,
    "sertoli_dysfunction": 0.2,
}

_STAGE_RANK = {stage: k for k, stage in enumerate(GERM_STAGES)}
_ROUND = _STAGE_RANK["round_spermatid"]
_SPERMATOCYTE = _STAGE_RANK["spermatocyte"]
_ELONGATING = _STAGE_RANK["elongating_spermatid"]
#: Fewest reference tubules (complete spermatogenesis) needed to estimate a threshold from data.
_MIN_REFERENCE_TUBULES = 5


def tubule_metrics(
    adata: AnnData,
    *,
    tubule_key: str = "noa_tubule",
    cell_type_key: str = "noa_cell_type",
    spatial_key: str = "spatial",
    sample_key: str | None = None,
    score_key: str | None = None,
    obs_keys: Sequence[str] = (),
    min_stage_cells: int = 3,
    min_germ_cells: int = 3,
    hypo_ratio: float | None = None,
    hypo_fraction: float = 0.4,
    expected_germ_fraction: float | None = None,
    organised_order: float = 0.5,
    weights: Mapping[str, float] | None = None,
    apoptosis_set: str = "apoptosis_intrinsic",
    sizes: bool = True,
) -> pd.DataFrame:
    r"""One row of spermatogenesis and niche metrics per seminiferous tubule.

    Parameters
    ----------
    adata
        Cells with tubule ids (:func:`noa_omics.spatial.assign_tubules`), cell types and
        coordinates.
    tubule_key
        ``obs`` column with the tubule id per cell (NA = interstitial).
    cell_type_key
        ``obs`` column with the fine cell types.
    spatial_key
        ``obsm`` key of the coordinates (used for the radial order).
    sample_key
        ``obs`` column with the sample/section; adds a ``sample`` column. Tubule ids must then
        not span samples (run ``assign_tubules`` with the same ``sample_key``).
    score_key
        ``obsm`` key of a cells x gene-set score DataFrame (e.g. from ``noa.tl.score``). When it
        has ``niche_btb`` and/or ``sertoli_immaturity`` the Sertoli term enters the niche collapse
        index; with ``apoptosis_set`` the mean germ-cell apoptosis score is reported.
    obs_keys
        Further ``obs`` columns to carry per tubule (most frequent value), e.g. donor, condition.
    min_stage_cells
        Cells a germ stage needs to count as present in a tubule.
    min_germ_cells
        Fewer germ cells than this make a tubule Sertoli-cell-only.
    hypo_ratio
        Germ cells per Sertoli cell below which a tubule with spermatids is hypospermatogenic.
        None: ``hypo_fraction`` times the reference ratio, the 90th percentile of the ratio over
        tubules with elongating spermatids and at least 3 Sertoli cells (all samples pooled;
        when fewer than 5 such tubules exist, no tubule is called hypospermatogenic and a warning
        is given). Pass a value estimated on control tissue for small or uniformly affected data.
    hypo_fraction
        See ``hypo_ratio``.
    expected_germ_fraction
        Germ fraction of an intact tubule (germ-depletion term). None: the 90th percentile of
        ``germ_fraction`` over tubules with elongating spermatids (1.0 when there are fewer than 5).
    organised_order
        Radial order below which an epithelium with elongating spermatids scores Johnsen 9
        (disorganised) instead of 10.
    weights
        Weights of the niche-collapse-index terms (keys of :data:`NCI_WEIGHTS`).
    apoptosis_set
        Score column averaged over germ cells into ``germ_apoptosis``.
    sizes
        Add ``area`` and ``diameter`` from the tubule outlines
        (:func:`~noa_omics.spatial.tubule_shapes`); False skips the outlines.

    Returns
    -------
    pandas.DataFrame
        Index: tubule id. Columns: ``sample`` (with ``sample_key``), ``obs_keys``, ``n_cells``,
        ``n_germ``, ``n_sertoli``, ``n_peritubular_myoid``, ``n_<stage>`` and ``frac_<stage>``
        (fraction of the tubule's germ cells, NaN without germ cells) for the five germ stages,
        ``germ_fraction`` (germ cells / all cells of the tubule, wall included),
        ``germ_per_sertoli`` (germ cells / max(1, Sertoli cells)), ``most_advanced_stage``,
        ``stage_completeness``, ``radial_order``, ``johnsen_like``, ``histology``,
        ``germ_apoptosis`` and ``sertoli_dysfunction`` (with scores), the NCI terms
        ``nci_<term>`` and ``niche_collapse_index``, and the centroid ``x``, ``y``. The thresholds
        used are in ``DataFrame.attrs["params"]``. ``area`` and ``diameter`` (equivalent
        diameter :math:`2\sqrt{A/\pi}`) of the epithelium outline
        (:func:`~noa_omics.spatial.tubule_shapes`), in coordinate units.

    Notes
    -----
    **Stages.** A stage is present when at least ``min_stage_cells`` cells of the tubule have it;
    ``most_advanced_stage`` is the latest present stage (NA when none) and
    ``stage_completeness`` the fraction of the five stages (SSC, spermatogonia, spermatocyte,
    round and elongating spermatid) present.

    **Radial order.** The basement membrane is approximated by the convex hull of the tubule's
    cells (wall cells included); the depth :math:`d_i` of germ cell :math:`i` is its distance to
    the nearest hull edge. ``radial_order`` is Spearman's :math:`\rho` between the stage rank
    (SSC = 0 .. elongating spermatid = 4) and :math:`d_i`: +1 when spermatogonia line the wall and
    spermatids face the lumen, about 0 for a disordered epithelium, negative when inverted. It is
    NaN with fewer than 2 stages or 3 germ cells (no layering to order).

    **Histology** (rules in this order): fewer than ``min_germ_cells`` germ cells or no stage
    present -> ``sertoli_cell_only``; most advanced stage before round spermatid ->
    ``maturation_arrest``; germ cells per Sertoli cell below the hypospermatogenesis threshold ->
    ``hypospermatogenesis``; otherwise ``normal``.

    **Johnsen-like score** (1-10), after Johnsen's tubule scoring (Johnsen 1970): 1 no
    epithelium (no Sertoli or germ cell); 2 Sertoli cells only; 3 spermatogonia (SSC or
    spermatogonia) as most advanced stage; 4/5 spermatocytes; 6/7 round spermatids; 8
    elongating spermatids with few germ cells; 9 elongating spermatids, many germ cells but a
    disorganised epithelium (``radial_order`` < ``organised_order`` or NaN); 10 complete,
    organised spermatogenesis. Within a pair the lower score means *few* germ cells: germ cells
    per Sertoli cell below the hypospermatogenesis threshold (Johnsen counted "fewer than 5-10"
    cells of the stage in a tubule cross-section; a density relative to the Sertoli cells does
    not depend on section thickness or cell segmentation).

    **Niche collapse index** (0 intact .. 1 collapsed), a weighted mean of terms in [0, 1]:

    .. math::

        \mathrm{NCI} = \frac{\sum_k w_k t_k}{\sum_k w_k}, \quad
        t_\mathrm{incompleteness} = 1 - c, \quad
        t_\mathrm{germ\_depletion} = 1 - \min\left(1, \frac{g}{g_\mathrm{exp}}\right), \quad
        t_\mathrm{radial\_disorder} = \frac{1 - r}{2}, \quad
        t_\mathrm{sertoli\_dysfunction} = \sigma\left(\overline{z_\mathrm{imm} - z_\mathrm{btb}}\right)

    with :math:`c` the stage completeness, :math:`g` the germ fraction, :math:`g_\mathrm{exp}` the
    expected germ fraction, :math:`r` the radial order (:math:`t = 1` when NaN: there is no
    layered epithelium), :math:`\sigma` the logistic function and :math:`z` robust z-scores
    (median/MAD over all Sertoli cells of the data) of the ``sertoli_immaturity`` and
    ``niche_btb`` scores averaged over the tubule's Sertoli cells (one of the two alone when only
    one is scored). Default weights 0.3, 0.3, 0.2, 0.2: stage completeness and germ depletion are
    the histological core of tubule scoring (Johnsen 1970; McLachlan et al. 2007), radial order
    measures the architecture of the epithelium, and Sertoli barrier loss and immaturity
    (Sertoli cells of idiopathic NOA testes are immature; Zhao et al. 2020) is functional
    support for a collapsed niche. Terms that are NaN (no scores, no
    Sertoli cell) are left out and the weights re-normalised over the rest.

    References
    ----------
    Johnsen SG (1970) Testicular biopsy score count - a method for registration of
    spermatogenesis in human testes: normal values and results in 335 hypogonadal males.
    Hormones 1:2-25. doi:10.1159/000178170

    McLachlan RI, Rajpert-De Meyts E, Hoei-Hansen CE, de Kretser DM, Skakkebaek NE (2007)
    Histological evaluation of the human testis - approaches to optimizing the clinical value
    of the assessment. Hum Reprod 22:2-16. doi:10.1093/humrep/del279

    Zhao L et al. (2020) Single-cell analysis of developing and azoospermia human testicles
    reveals central role of Sertoli cells. Nat Commun 11:5683. doi:10.1038/s41467-020-19414-4

    Examples
    --------
    >>> import noa_omics as noa
    >>> adata = noa.datasets.demo_spatial(seed=0, n_tubules=20, expression=False)
    >>> _ = noa.spatial.assign_tubules(adata)
    >>> metrics = noa.spatial.tubule_metrics(adata)
    >>> float(metrics["niche_collapse_index"].between(0, 1).mean())
    1.0
    """
    check_adata(adata, min_vars=0)
    check_tubule_key(adata, tubule_key)
    types = cell_types(adata, cell_type_key)
    coords = check_spatial(adata, spatial_key)
    for key in obs_keys:
        check_obs_key(adata, key, what="obs column")
    if sample_key is not None:
        check_obs_key(adata, sample_key, what="sample column")
    weights = _check_weights(weights)
    if min_stage_cells < 1 or min_germ_cells < 1:
        raise ValueError("`min_stage_cells` and `min_germ_cells` must be >= 1.")
    if hypo_ratio is not None and not hypo_ratio > 0:
        raise ValueError(f"`hypo_ratio` must be positive, got {hypo_ratio}.")
    if expected_germ_fraction is not None and not 0 < expected_germ_fraction <= 1:
        raise ValueError(f"`expected_germ_fraction` must be in (0, 1], got {expected_germ_fraction}.")
    scores = _scores(adata, score_key)

    tubule = adata.obs[tubule_key]
    assigned = tubule.notna().to_numpy()
    if not assigned.any():
        raise ValueError(
            f"no cell has a tubule in `adata.obs[{tubule_key!r}]`; check the segmentation "
            "(`noa.spatial.assign_tubules`) and the cell types."
        )
    codes, ids = pd.factorize(tubule[assigned].astype(str))
    n_tub = len(ids)
    cell_pos = np.flatnonzero(assigned)
    tub_types = types[assigned]

    table = pd.DataFrame(index=pd.Index(ids, name="tubule"))
    if sample_key is not None:
        samples = adata.obs[sample_key].astype(str).to_numpy()[assigned]
        per = pd.DataFrame({"t": codes, "s": samples}).drop_duplicates()
        if per["t"].duplicated().any():
            bad = ids[per.loc[per["t"].duplicated(), "t"].iloc[0]]
            raise ValueError(
                f"tubule {bad!r} spans several samples of {sample_key!r}; run "
                f"`noa.spatial.assign_tubules(adata, sample_key={sample_key!r})` so that each "
                "section is segmented on its own."
            )
        table["sample"] = per.sort_values("t")["s"].to_numpy()
    for key in obs_keys:
        values = adata.obs[key].astype(object).to_numpy()[assigned]
        table[key] = (
            pd.DataFrame({"t": codes, "v": values}).groupby("t")["v"]
            .agg(lambda v: v.mode().iloc[0] if v.notna().any() else None).to_numpy()
        )

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(codes[mask], minlength=n_tub)

    stage_counts = np.column_stack([count(tub_types == s) for s in GERM_STAGES])
    n_cells = np.bincount(codes, minlength=n_tub)
    n_germ = stage_counts.sum(axis=1)
    n_sertoli = count(tub_types == "sertoli")
    table["n_cells"] = n_cells
    table["n_germ"] = n_germ
    table["n_sertoli"] = n_sertoli
    table["n_peritubular_myoid"] = count(tub_types == "peritubular_myoid")
    with np.errstate(invalid="ignore", divide="ignore"):
        for k, stage in enumerate(GERM_STAGES):
            table[f"n_{stage}"] = stage_counts[:, k]
        for k, stage in enumerate(GERM_STAGES):
            table[f"frac_{stage}"] = np.where(n_germ > 0, stage_counts[:, k] / np.maximum(n_germ, 1), np.nan)
    germ_fraction = n_germ / n_cells
    germ_per_sertoli = n_germ / np.maximum(n_sertoli, 1)
    table["germ_fraction"] = germ_fraction
    table["germ_per_sertoli"] = germ_per_sertoli

    present = stage_counts >= min_stage_cells
    completeness = present.sum(axis=1) / len(GERM_STAGES)
    any_present = present.any(axis=1)
    advanced = np.where(any_present, len(GERM_STAGES) - 1 - np.argmax(present[:, ::-1], axis=1), -1)
    no_germ = (n_germ < min_germ_cells) | ~any_present
    table["most_advanced_stage"] = pd.Categorical(
        [GERM_STAGES[a] if a >= 0 else None for a in advanced], categories=list(GERM_STAGES)
    )
    table["stage_completeness"] = completeness

    radial = _radial_order(coords[cell_pos], tub_types, codes, n_tub)
    table["radial_order"] = radial

    # thresholds from tubules with complete spermatogenesis (all samples pooled)
    complete = (advanced == _ELONGATING) & ~no_germ
    hypo_threshold, hypo_source = _hypo_threshold(
        hypo_ratio, hypo_fraction, germ_per_sertoli[complete & (n_sertoli >= 3)]
    )
    if expected_germ_fraction is None:
        ref = germ_fraction[complete]
        expected = float(np.quantile(ref, 0.9)) if ref.size >= _MIN_REFERENCE_TUBULES else 1.0
        expected = expected if expected > 0 else 1.0
        expected_source = "estimated" if ref.size >= _MIN_REFERENCE_TUBULES else "default"
    else:
        expected, expected_source = float(expected_germ_fraction), "given"

    few = germ_per_sertoli < hypo_threshold  # False everywhere when the threshold is NaN
    histology = np.where(
        no_germ,
        "sertoli_cell_only",
        np.where(advanced < _ROUND, "maturation_arrest", np.where(few, "hypospermatogenesis", "normal")),
    )
    table["johnsen_like"] = _johnsen(advanced, no_germ, few, radial, n_sertoli, organised_order)
    table["histology"] = pd.Categorical(histology, categories=list(HISTOLOGIES))

    # expression terms
    sertoli_term = np.full(n_tub, np.nan)
    if scores is not None:
        cols = list(scores.columns)
        if apoptosis_set in cols:
            vals = np.asarray(scores[apoptosis_set], dtype=float)[cell_pos]
            germ = np.isin(tub_types, GERM_STAGES)
            table["germ_apoptosis"] = _group_mean(vals[germ], codes[germ], n_tub)
        sertoli_term = _sertoli_dysfunction(scores, types, cell_pos, tub_types, codes, n_tub)
        if {"niche_btb", "sertoli_immaturity"} & set(cols):  # the term is all-NaN otherwise
            table["sertoli_dysfunction"] = sertoli_term

    terms = {
        "incompleteness": 1.0 - completeness,
        "germ_depletion": 1.0 - np.minimum(1.0, germ_fraction / expected),
        "radial_disorder": np.where(np.isfinite(radial), (1.0 - radial) / 2.0, 1.0),
        "sertoli_dysfunction": sertoli_term,
    }
    num = np.zeros(n_tub)
    den = np.zeros(n_tub)
    for name, values in terms.items():
        table[f"nci_{name}"] = values
        ok = np.isfinite(values)
        num[ok] += weights[name] * values[ok]
        den[ok] += weights[name]
    table["niche_collapse_index"] = np.clip(num / den, 0.0, 1.0)

    if sizes:  # the outline of every tubule (about twice the segmentation time)
        size_table = tubule_sizes(adata, tubule_key=tubule_key, spatial_key=spatial_key,
                                  cell_type_key=cell_type_key, sample_key=sample_key)
        table["area"] = size_table["area"].reindex(table.index).to_numpy()
        table["diameter"] = size_table["equivalent_diameter"].reindex(table.index).to_numpy()
    xy = coords[cell_pos]
    table["x"] = _group_mean(xy[:, 0], codes, n_tub)
    table["y"] = _group_mean(xy[:, 1], codes, n_tub)
    table.attrs["params"] = {
        "tubule_key": tubule_key,
        "cell_type_key": cell_type_key,
        "score_key": score_key,
        "min_stage_cells": int(min_stage_cells),
        "min_germ_cells": int(min_germ_cells),
        "hypo_ratio": float(hypo_threshold),
        "hypo_ratio_source": hypo_source,
        "expected_germ_fraction": float(expected),
        "expected_germ_fraction_source": expected_source,
        "organised_order": float(organised_order),
        "weights": dict(weights),
        "sizes": bool(sizes),
    }
    return table


# --------------------------------------------------------------------------------------------


def _check_weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    if weights is None:
        return dict(NCI_WEIGHTS)
    unknown = set(weights) - set(NCI_WEIGHTS)
    if unknown:
        raise ValueError(f"unknown NCI term(s) {sorted(unknown)} in `weights`; use {list(NCI_WEIGHTS)}.")
    merged = {k: float(weights.get(k, 0.0)) for k in NCI_WEIGHTS}
    if any(w < 0 or not np.isfinite(w) for w in merged.values()) or sum(merged.values()) <= 0:
        raise ValueError("`weights` must be non-negative with a positive sum.")
    return merged


def _scores(adata: AnnData, score_key: str | None) -> pd.DataFrame | None:
    if score_key is None:
        return None
    scores = check_score_table(adata, score_key)
    check_no_infinite(scores.select_dtypes("number"), name=f"`adata.obsm[{score_key!r}]`")
    return scores


def _group_mean(values: np.ndarray, codes: np.ndarray, n: int) -> np.ndarray:
    ok = np.isfinite(values)
    sums = np.bincount(codes[ok], weights=values[ok], minlength=n)
    counts = np.bincount(codes[ok], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _hypo_threshold(hypo_ratio, hypo_fraction, reference) -> tuple[float, str]:
    if hypo_ratio is not None:
        return float(hypo_ratio), "given"
    if not 0 < hypo_fraction < 1:
        raise ValueError(f"`hypo_fraction` must be in (0, 1), got {hypo_fraction}.")
    if reference.size < _MIN_REFERENCE_TUBULES:
        warnings.warn(
            f"only {reference.size} tubules with complete spermatogenesis to estimate the "
            "hypospermatogenesis threshold; no tubule is called hypospermatogenic. Pass "
            "`hypo_ratio` (germ cells per Sertoli cell) estimated on control tissue.",
            UserWarning,
            stacklevel=3,
        )
        return float("nan"), "unavailable"
    return float(hypo_fraction * np.quantile(reference, 0.9)), "estimated"


def _johnsen(advanced, no_germ, few, radial, n_sertoli, organised_order) -> np.ndarray:
    score = np.full(len(advanced), 3, dtype=np.int64)
    score[advanced == _SPERMATOCYTE] = np.where(few, 4, 5)[advanced == _SPERMATOCYTE]
    score[advanced == _ROUND] = np.where(few, 6, 7)[advanced == _ROUND]
    organised = np.isfinite(radial) & (radial >= organised_order)
    late = np.where(few, 8, np.where(organised, 10, 9))
    score[advanced == _ELONGATING] = late[advanced == _ELONGATING]
    score[no_germ] = np.where(n_sertoli > 0, 2, 1)[no_germ]
    return score


def _radial_order(xy: np.ndarray, tub_types: np.ndarray, codes: np.ndarray, n_tub: int) -> np.ndarray:
    """Spearman correlation of germ stage rank with depth from the hull of each tubule."""
    out = np.full(n_tub, np.nan)
    rank = np.array([_STAGE_RANK.get(t, -1) for t in tub_types])
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n_tub + 1))
    for t in range(n_tub):
        idx = order[bounds[t] : bounds[t + 1]]
        stage = rank[idx]
        germ = stage >= 0
        if germ.sum() < 3 or np.unique(stage[germ]).size < 2 or idx.size < 4:
            continue
        pts = xy[idx]
        try:
            hull = ConvexHull(pts)
        except QhullError:
            continue
        normals, offsets = hull.equations[:, :2], hull.equations[:, 2]
        depth = -(pts[germ] @ normals.T + offsets).max(axis=1)  # distance to the nearest edge
        # equal depths up to rounding error must tie in the ranking
        extent = float(np.ptp(pts, axis=0).max())
        depth = np.round(depth / extent, 9) if extent > 0 else depth
        out[t] = _spearman(stage[germ].astype(float), depth)
    return out


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = rankdata(a), rankdata(b)
    ra -= ra.mean()
    rb -= rb.mean()
    den = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / den) if den > 0 else float("nan")


def _robust_z(values: np.ndarray) -> np.ndarray:
    ok = np.isfinite(values)
    if not ok.any():
        return np.full_like(values, np.nan, dtype=float)
    med = np.median(values[ok])
    mad = 1.4826 * np.median(np.abs(values[ok] - med))
    scale = mad if mad > 0 else np.std(values[ok])
    return (values - med) / scale if scale > 0 else np.zeros_like(values, dtype=float)


def _sertoli_dysfunction(scores: pd.DataFrame, types, cell_pos, tub_types, codes, n_tub) -> np.ndarray:
    cols = list(scores.columns)
    parts: list[np.ndarray] = []
    sertoli_all = types == "sertoli"
    if not sertoli_all.any():
        return np.full(n_tub, np.nan)
    for name, sign in (("sertoli_immaturity", 1.0), ("niche_btb", -1.0)):
        if name not in cols:
            continue
        values = np.asarray(scores[name], dtype=float)
        z = np.full(len(values), np.nan)
        z[sertoli_all] = _robust_z(values[sertoli_all])
        parts.append(sign * z)
    if not parts:
        return np.full(n_tub, np.nan)
    per_cell = np.sum(parts, axis=0)[cell_pos]
    sertoli = tub_types == "sertoli"
    mean = _group_mean(per_cell[sertoli], codes[sertoli], n_tub)
    return 1.0 / (1.0 + np.exp(-mean))

