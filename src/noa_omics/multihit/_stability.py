r"""Stability of the multi-hit calls: ``noa.tl.multihit_stability``.

A donor near a threshold can flip context between seeds. Each call is given a stability by
re-running the axes and the rules on resampled data:

- **cell bootstrap**: within every donor, its cells are drawn with replacement (as many as it
  has), ``n_boot`` times;
- **reference leave-one-out**: each reference donor in turn is dropped from the reference set
  (needs at least three reference donors, so two remain).

Cost is bounded: the per-cell gene-set scores and the few single-gene ingredients are computed
once on the full data; every resample re-runs :func:`~noa_omics.tl.multihit` on a light AnnData
holding only the per-cell scores, those genes and the obs columns it needs (no copy of the
expression matrix).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._identifiers import symbol_view
from .._validation import check_adata, check_obs_key, check_species
from .._vocabulary import APOPTOSIS_CONTEXTS, AXES
from ..genesets import load as load_genesets
from ..scoring import score
from ._axes import gene_expression, load_axes
from ._multihit import _detect_species, multihit

#: Columns whose percentile intervals are reported.
INTERVAL_COLUMNS: tuple[str, ...] = (*AXES, "germ_apoptosis", "meiotic_checkpoint")
_SCORES_KEY = "noa_stability_scores"


def multihit_stability(
    adata: AnnData,
    *,
    sample_key: str,
    reference: str | Sequence[str] | None = None,
    condition_key: str | None = None,
    cell_type_key: str = "noa_cell_type",
    score_key: str | None = None,
    method: str = "score_genes",
    spatial: pd.DataFrame | None = None,
    axes: str | os.PathLike | Mapping | None = None,
    rules: str | os.PathLike | Mapping | None = None,
    species: str | None = None,
    layer: str | None = None,
    gene_symbols: str | None = None,
    allow_missing_axes: bool = False,
    n_boot: int = 20,
    leave_one_out: bool = True,
    unstable_below: float = 0.8,
    interval: float = 0.95,
    random_state: int = 0,
    key_added: str | None = "noa_multihit_stability",
) -> pd.DataFrame:
    r"""Multi-hit table with the stability of each donor's apoptosis-context call.

    Parameters
    ----------
    adata, sample_key, reference, condition_key, cell_type_key, score_key, method, spatial, axes, rules, species, layer, gene_symbols, allow_missing_axes
        As in :func:`~noa_omics.tl.multihit`.
    n_boot
        Cell-bootstrap resamples (0 = none).
    leave_one_out
        Also re-run once per reference donor with that donor left out of the reference set
        (skipped, with a warning, with fewer than three reference donors).
    unstable_below
        A call is ``unstable`` when the fraction of resamples giving the donor's modal context is
        below this, or when the modal context differs from the call on the full data.
    interval
        Central coverage of the percentile intervals of the z-scores.
    random_state
        Seed of the bootstrap; the same seed gives the same table.
    key_added
        ``adata.uns`` key for the long table of per-resample calls and the parameters (None: not
        stored).

    Returns
    -------
    pandas.DataFrame
        The :func:`~noa_omics.tl.multihit` table of the full data plus, per donor:
        ``context_stability`` (fraction of resamples giving the modal context),
        ``context_modal``, ``frac_<context>`` for every context of the vocabulary,
        ``unstable`` (bool), ``n_resamples``, and ``<column>_low`` / ``<column>_high`` for the six
        axes, ``germ_apoptosis`` and ``meiotic_checkpoint``.

    Notes
    -----
    With :math:`B` resamples (``n_boot`` bootstrap + one per left-out reference donor) and calls
    :math:`c_{db}`, :math:`\mathrm{frac}_k(d) = \#\{b: c_{db} = k\}/B`; the modal context
    maximises it. A z-score interval is the :math:`(1-\gamma)/2` and :math:`(1+\gamma)/2`
    percentiles (:math:`\gamma` = ``interval``) of the donor's z over the same :math:`B`
    resamples (percentile bootstrap, Efron & Tibshirani 1993); it shows cell-sampling noise and
    the dependence on which donors form the reference, not biological variation between
    biopsies of the same donor. The bootstrap resamples cells, never donors: a donor's value is
    re-estimated, the reference distribution changes only through the leave-one-out runs.
    """
    check_adata(adata)
    for key, what in ((sample_key, "sample_key column"), (cell_type_key, "cell_type_key column")):
        check_obs_key(adata, key, what=what)
    check_obs_key(adata, condition_key, what="condition_key column", allow_none=True)
    if not isinstance(n_boot, (int, np.integer)) or isinstance(n_boot, bool) or n_boot < 0:
        raise ValueError(f"`n_boot` must be a non-negative integer, got {n_boot!r}.")
    if not 0 < float(unstable_below) <= 1:
        raise ValueError(f"`unstable_below` must be in (0, 1], got {unstable_below!r}.")
    if not 0 < float(interval) < 1:
        raise ValueError(f"`interval` must be in (0, 1), got {interval!r}.")
    # genes by the package rule (noa_omics._identifiers): a symbol-named view of the chosen matrix
    symbols, _, _ = symbol_view(adata, layer=layer, gene_symbols=gene_symbols)
    species = check_species(species) or _detect_species(symbols.var_names)
    kw = dict(sample_key=sample_key, condition_key=condition_key, cell_type_key=cell_type_key, spatial=spatial,
              axes=axes, rules=rules, species=species, allow_missing_axes=allow_missing_axes)
    full = multihit(adata, reference=reference, score_key=score_key, method=method, layer=layer,
                    gene_symbols=gene_symbols, inplace=False, **kw)
    refs = list(full.index[full["is_reference"]])

    light = _light_adata(adata, symbols, sample_key=sample_key, condition_key=condition_key,
                         cell_type_key=cell_type_key, score_key=score_key, method=method, layer=layer,
                         gene_symbols=gene_symbols, axes=axes, species=species)
    light_kw = dict(kw, score_key=_SCORES_KEY, inplace=False)
    runs: list[tuple[str, pd.DataFrame]] = []
    rng = np.random.default_rng(random_state)
    groups = [np.flatnonzero(codes) for codes in _donor_masks(light.obs[sample_key])]
    for b in range(int(n_boot)):
        idx = np.sort(np.concatenate([g[rng.integers(0, len(g), len(g))] for g in groups]))
        runs.append((f"boot{b}", _quiet(multihit, _take(light, idx), reference=refs, **light_kw)))
    if leave_one_out:
        if len(refs) < 3:
            warnings.warn(
                f"leave-one-out of reference donors skipped: {len(refs)} reference donor(s), at least 3 needed.",
                UserWarning,
                stacklevel=2,
            )
        else:
            for r in refs:
                runs.append((f"loo_{r}", _quiet(multihit, light, reference=[x for x in refs if x != r], **light_kw)))
    return _summarise(full, runs, unstable_below=float(unstable_below), interval=float(interval),
                      adata=adata, key_added=key_added,
                      params={"n_boot": int(n_boot), "leave_one_out": bool(leave_one_out),
                              "unstable_below": float(unstable_below), "interval": float(interval),
                              "random_state": random_state, "reference": refs})


def _take(light: AnnData, idx: np.ndarray) -> AnnData:
    """Rows ``idx`` (with repeats) of the light AnnData, with fresh unique cell names."""
    names = pd.Index([f"c{i}" for i in range(len(idx))])
    sub = AnnData(X=light.X[idx], obs=light.obs.iloc[idx].set_axis(names), var=light.var.copy())
    sub.obsm[_SCORES_KEY] = light.obsm[_SCORES_KEY].iloc[idx].set_axis(names)
    return sub


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _donor_masks(samples: pd.Series):
    values = samples.astype(str).to_numpy()
    for s in sorted(set(values)):
        yield values == s


def _light_adata(
    adata: AnnData,
    symbols: AnnData,
    *,
    sample_key: str,
    condition_key: str | None,
    cell_type_key: str,
    score_key: str | None,
    method: str,
    layer: str | None,
    gene_symbols: str | None,
    axes: Any,
    species: str,
) -> AnnData:
    """Per-cell scores, single-gene ingredients (log-normalised) and obs columns, nothing else."""
    cfg = load_axes(axes, species=species)
    needed = cfg.gene_sets()
    if score_key is not None:
        scores = pd.DataFrame(adata.obsm[score_key], index=adata.obs_names)[needed].astype(float)
    else:
        collection = load_genesets(species)
        sets = {name: list(collection[name].genes) for name in needed if name in collection}
        scores = pd.DataFrame(score(adata, sets, method=method, layer=layer, species=species,
                                    gene_symbols=gene_symbols, inplace=False),
                              index=adata.obs_names).reindex(columns=needed).astype(float)
    genes = sorted({ing.gene for block in cfg.blocks.values() for ing in block if ing.signal == "gene"})
    columns = {g: gene_expression(symbols, g) for g in genes}  # the view holds the chosen layer
    columns = {g: v for g, v in columns.items() if v is not None}
    X = np.column_stack([np.asarray(v, dtype=np.float32) for v in columns.values()]) if columns else np.zeros(
        (adata.n_obs, 0), dtype=np.float32)
    obs_cols = [c for c in dict.fromkeys([sample_key, cell_type_key, condition_key]) if c is not None]
    light = AnnData(X=X, obs=adata.obs[obs_cols].copy(), var=pd.DataFrame(index=list(columns)))
    light.obsm[_SCORES_KEY] = scores.set_axis(light.obs_names)
    return light


def _summarise(
    full: pd.DataFrame,
    runs: list[tuple[str, pd.DataFrame]],
    *,
    unstable_below: float,
    interval: float,
    adata: AnnData,
    key_added: str | None,
    params: dict,
) -> pd.DataFrame:
    table = full.copy()
    samples = table.index
    if not runs:
        raise ValueError("no resample to summarise: set n_boot > 0 or leave_one_out=True with >= 3 reference donors.")
    calls = pd.DataFrame({name: run["apoptosis_context"].reindex(samples) for name, run in runs})
    fractions = pd.DataFrame({c: (calls == c).mean(axis=1) for c in APOPTOSIS_CONTEXTS}, index=samples)
    modal = fractions.idxmax(axis=1)
    table["context_stability"] = fractions.max(axis=1).to_numpy()
    table["context_modal"] = modal.to_numpy()
    for c in APOPTOSIS_CONTEXTS:
        table[f"frac_{c}"] = fractions[c].to_numpy()
    table["unstable"] = ((table["context_stability"] < unstable_below) | (modal != full["apoptosis_context"])).to_numpy()
    table["n_resamples"] = len(runs)
    lo, hi = (1 - interval) / 2, (1 + interval) / 2
    for col in INTERVAL_COLUMNS:
        if col not in full.columns:
            continue
        values = pd.DataFrame({name: run[col].reindex(samples).astype(float) for name, run in runs})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN donors (no germ cells)
            table[f"{col}_low"] = np.nanquantile(values.to_numpy(), lo, axis=1)
            table[f"{col}_high"] = np.nanquantile(values.to_numpy(), hi, axis=1)
    table.attrs["params"] = params
    if key_added is not None:
        long = pd.concat(
            [run[["apoptosis_context", *[c for c in INTERVAL_COLUMNS if c in run.columns]]]
             .rename_axis("sample").reset_index().assign(resample=name) for name, run in runs],
            ignore_index=True,
        )
        adata.uns[key_added] = {"resamples": long, "params": {k: (list(map(str, v)) if isinstance(v, list) else v)
                                                              for k, v in params.items()}}
    return table
