"""Scores as scanpy sees them: an AnnData of scores, or chosen score columns copied to ``obs``.

:func:`noa_omics.tl.score` stores a cells x gene-sets DataFrame in ``adata.obsm["noa_<method>"]``
(one table per method, with its parameters in ``uns``). Scanpy's plots read ``obs`` columns and
``var_names``, so ``sc.pl.umap(adata, color="apoptosis_intrinsic")`` cannot see an ``obsm``
table. Two small accessors bridge the gap, in the manner of decoupler's ``pp.get_obsm``:

- :func:`get_scores` builds an AnnData whose ``X`` is the score table (sets are ``var_names``),
  sharing ``obs`` and the embeddings, so every scanpy plot takes a set name as a gene name.
- :func:`scores_to_obs` copies chosen score columns into ``adata.obs``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

from .._validation import check_adata

__all__ = ["get_scores", "scores_to_obs"]

#: Score table looked up first when ``key`` is None.
DEFAULT_KEY = "noa_score_genes"


def _score_keys(adata: AnnData) -> list[str]:
    return [k for k in adata.obsm.keys() if k.startswith("noa_") and isinstance(adata.obsm[k], pd.DataFrame)]


def _score_table(adata: AnnData, key: str | None) -> tuple[str, pd.DataFrame]:
    check_adata(adata)
    available = _score_keys(adata)
    if key is None:
        if not available:
            raise KeyError("no score table in adata.obsm (keys noa_<method>); run noa.tl.score(adata) first.")
        key = DEFAULT_KEY if DEFAULT_KEY in available else available[0]
    if key not in adata.obsm.keys():
        raise KeyError(
            f"no score table adata.obsm[{key!r}]; available score tables: {available or 'none'} "
            "(run noa.tl.score(adata, method=...) first)."
        )
    table = adata.obsm[key]
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"adata.obsm[{key!r}] is not a DataFrame of scores; pass a key written by noa.tl.score.")
    return key, table


def _columns(table: pd.DataFrame, columns: str | Sequence[str] | None, key: str) -> list[str]:
    if columns is None:
        return [str(c) for c in table.columns]
    wanted = [columns] if isinstance(columns, str) else list(columns)
    missing = [c for c in wanted if c not in table.columns]
    if missing:
        shown = ", ".join(map(str, list(table.columns)[:12]))
        raise KeyError(f"gene set(s) {missing} not in adata.obsm[{key!r}]; its sets are: {shown}"
                       f"{' ...' if table.shape[1] > 12 else ''}.")
    return wanted


def get_scores(adata: AnnData, key: str | None = None, *, columns: str | Sequence[str] | None = None) -> AnnData:
    """An AnnData of scores: cells x gene sets, ready for any scanpy plot.

    Parameters
    ----------
    adata
        AnnData scored by :func:`noa_omics.tl.score`.
    key
        ``obsm`` key of the score table (e.g. ``"noa_ucell"``); None takes ``noa_score_genes``,
        else the first ``noa_*`` table.
    columns
        Gene sets to keep (default: all).

    Returns
    -------
    AnnData
        ``X``: the scores (float64, dense), ``var_names``: the gene sets, ``obs``: a copy of
        ``adata.obs``, ``obsm``: the embeddings and other matrices of ``adata`` (not the score
        tables), ``uns``: a copy (colour palettes, the score parameters under ``uns[key]``).
        ``adata`` is not modified.

    Examples
    --------
    >>> scores = noa.tl.get_scores(adata)                     # doctest: +SKIP
    >>> sc.pl.umap(scores, color=["apoptosis_intrinsic", "noa_cell_type"])  # doctest: +SKIP
    >>> sc.pl.dotplot(scores, scores.var_names, groupby="noa_cell_type")   # doctest: +SKIP
    """
    key, table = _score_table(adata, key)
    cols = _columns(table, columns, key)
    obsm = {k: v for k, v in adata.obsm.items() if k not in _score_keys(adata)}
    out = AnnData(
        X=np.asarray(table[cols].to_numpy(), dtype=np.float64),
        obs=adata.obs.copy(),
        var=pd.DataFrame(index=pd.Index(cols, name="gene_set")),
        obsm=obsm,
        uns=dict(adata.uns),
    )
    out.uns["noa_scores_from"] = key
    return out


def scores_to_obs(
    adata: AnnData,
    columns: str | Sequence[str] | None = None,
    *,
    key: str | None = None,
    prefix: str = "",
    overwrite: bool = False,
) -> list[str]:
    """Copy score columns of ``adata.obsm[key]`` into ``adata.obs`` (in place).

    Then ``sc.pl.umap(adata, color="apoptosis_intrinsic")`` works on the original object.

    Parameters
    ----------
    adata
        AnnData scored by :func:`noa_omics.tl.score`; its ``obs`` gains the columns.
    columns
        Gene sets to copy (default: all sets of the table).
    key
        ``obsm`` key of the score table; None as in :func:`get_scores`.
    prefix
        Prepended to each obs column name (e.g. ``"ucell_"`` to keep two methods apart).
    overwrite
        Replace existing ``obs`` columns of the same names; otherwise they are an error.

    Returns
    -------
    list of str
        The ``obs`` columns written.

    Raises
    ------
    KeyError
        If the table or a set is missing.
    ValueError
        If an ``obs`` column of that name exists and ``overwrite`` is false.
    """
    key, table = _score_table(adata, key)
    cols = _columns(table, columns, key)
    names = [f"{prefix}{c}" for c in cols]
    clash = [n for n in names if n in adata.obs.columns]
    if clash and not overwrite:
        raise ValueError(
            f"adata.obs already has column(s) {clash[:5]}; pass overwrite=True to replace them or a prefix= "
            "to keep both."
        )
    for col, name in zip(cols, names):
        adata.obs[name] = table[col].to_numpy()
    return names
