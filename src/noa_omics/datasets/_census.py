r"""Testis cells from the CZ CELLxGENE Census or any TileDB-SOMA experiment, streamed in row blocks.

- :func:`open_soma` opens a TileDB-SOMA experiment (a local URI, or an ``Experiment`` already open,
  such as ``census["census_data"]["homo_sapiens"]``), runs an ``obs`` query and returns a
  :class:`SomaCells` view: ``obs`` and ``var`` in memory, the matrix read block by block. Scoring
  (:func:`noa.tl.score`) streams it; :meth:`SomaCells.to_anndata` keeps a gene subset in memory for
  the downstream steps and :meth:`SomaCells.pseudobulk` sums counts per donor and cell type.
- :func:`census_testis` is the only function that needs the network: it opens the Census
  (``cellxgene_census.open_soma``) and queries ``tissue_general == "testis"`` with optional filters.

The Census layout is read as it is: symbols in ``var["feature_name"]``, Ensembl ids in
``var["feature_id"]``, raw counts in the ``"raw"`` X layer, donors in ``obs["donor_id"]`` and
harmonised cell types in ``obs["cell_type"]`` with Cell Ontology ids in
``obs["cell_type_ontology_term_id"]``; the ontology id is mapped onto the noa-omics vocabulary
first, the name where the id is not known (:func:`noa.tl.harmonize_labels`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._stream import DEFAULT_CHUNK_SIZE, RowBlockMatrix, StreamedCells, log1p_cp10k

#: ``obs`` columns of the Census read by default (those missing from an experiment are skipped).
CENSUS_OBS_COLUMNS = (
    "dataset_id", "donor_id", "disease", "disease_ontology_term_id", "cell_type",
    "cell_type_ontology_term_id", "tissue", "tissue_general", "development_stage", "sex", "assay",
    "is_primary_data",
)
#: Census organism names accepted by :func:`census_testis`, by noa-omics species.
CENSUS_ORGANISMS = {"human": "homo_sapiens", "mouse": "mus_musculus"}
TRANSFORMS = {"log1p": log1p_cp10k, None: None, "none": None}


def _require_tiledbsoma():
    try:
        import tiledbsoma
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "reading TileDB-SOMA experiments needs the census extra: pip install 'noa-omics[census]' "
            "(tiledbsoma and cellxgene-census)."
        ) from err
    return tiledbsoma


class SomaMatrix(RowBlockMatrix):
    """Rows of a SOMA sparse X layer for the cells of a query, read by ``soma_joinid`` ranges."""

    def __init__(self, array, obs_joinids: np.ndarray, var_joinids: np.ndarray, *, transform=None):
        super().__init__((obs_joinids.size, var_joinids.size), dtype=np.float32, transform=transform)
        self._array = array
        self._obs = np.asarray(obs_joinids, dtype=np.int64)
        self._var = np.asarray(var_joinids, dtype=np.int64)
        self._var_is_range = bool(self._var.size == 0 or np.array_equal(self._var, np.arange(self._var.size)))

    def read_rows(self, start: int, stop: int) -> sp.csr_matrix:
        n_rows = stop - start
        if n_rows <= 0:
            return sp.csr_matrix((0, self.shape[1]), dtype=np.float32)
        joinids = self._obs[start:stop]
        contiguous = joinids[-1] - joinids[0] == n_rows - 1
        coords = (slice(int(joinids[0]), int(joinids[-1])),) if contiguous else (joinids,)
        table = self._array.read(coords=coords).tables().concat()
        dim0 = table["soma_dim_0"].to_numpy()
        dim1 = table["soma_dim_1"].to_numpy()
        data = table["soma_data"].to_numpy().astype(np.float32, copy=False)
        rows = dim0 - joinids[0] if contiguous else np.searchsorted(joinids, dim0)
        if self._var_is_range:
            keep = dim1 < self.shape[1]
            cols = dim1
        else:
            cols = np.searchsorted(self._var, dim1)
            cols = np.minimum(cols, self._var.size - 1)
            keep = self._var[cols] == dim1
        if not keep.all():
            rows, cols, data = rows[keep], cols[keep], data[keep]
        block = sp.csr_matrix((data, (rows, cols)), shape=(n_rows, self.shape[1]), dtype=np.float32)
        block.sum_duplicates()
        return block


class SomaCells(StreamedCells):
    """A streamed view of the cells of a TileDB-SOMA query (see :func:`open_soma`)."""

    def __init__(self, experiment, X, counts, obs, var, *, uns, chunk_size, owns):
        super().__init__(X, counts, obs, var, uns=uns, chunk_size=chunk_size)
        self._experiment = experiment
        self._owns = owns

    def close(self) -> None:
        """Close the experiment when this view opened it."""
        if self._owns and self._experiment is not None:
            self._experiment.close()
            self._experiment = None

    def __enter__(self) -> SomaCells:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_soma(
    experiment: Any,
    *,
    measurement: str = "RNA",
    X_name: str = "raw",
    obs_value_filter: str | None = None,
    var_value_filter: str | None = None,
    obs_columns: Sequence[str] | None = CENSUS_OBS_COLUMNS,
    obs_id: str | None = None,
    transform: str | None = "log1p",
    harmonize: bool = True,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> SomaCells:
    r"""Open a TileDB-SOMA experiment query as a streamed, AnnData-like view.

    Parameters
    ----------
    experiment
        URI of a local or remote experiment, or an open ``tiledbsoma.Experiment``
        (e.g. ``census["census_data"]["homo_sapiens"]``).
    measurement, X_name
        Measurement and X layer holding raw counts (the Census: ``"RNA"``, ``"raw"``).
    obs_value_filter, var_value_filter
        SOMA value filters, e.g. ``"tissue_general == 'testis' and disease == 'normal'"``.
    obs_columns
        ``obs`` columns to read (absent ones are skipped); None reads all.
    obs_id
        ``obs`` column to use as cell names; default the ``obs_id`` column when present, else the
        ``soma_joinid`` as a string.
    transform
        Per-cell transform applied to every block that scoring reads (``X``): ``"log1p"`` =
        :math:`\log(1 + 10^4 x / \text{total})`, the log-normalisation ``score_genes`` and ``zmean``
        expect; None scores the raw counts. :meth:`SomaCells.to_anndata` and ``pseudobulk`` always
        return raw counts.
    harmonize
        Add ``obs["noa_cell_type"]`` and ``obs["noa_cell_class"]``: ``cell_type_ontology_term_id``
        (Cell Ontology) mapped onto the vocabulary, the ``cell_type`` name where the id is unknown.
    chunk_size
        Cells per block (memory: about ``chunk_size`` x stored values per cell x 8 bytes).

    Returns
    -------
    SomaCells
        With ``uns["noa_soma"]`` recording the experiment, measurement, layer, filters and
        transform. Close it (or use it as a context manager) when this call opened the URI.
    """
    soma = _require_tiledbsoma()
    if transform not in TRANSFORMS:
        raise ValueError(f"transform={transform!r} is not one of 'log1p' or None.")
    if not isinstance(chunk_size, (int, np.integer)) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise ValueError(f"`chunk_size` must be a positive integer, got {chunk_size!r}.")
    owns = isinstance(experiment, (str, bytes)) or hasattr(experiment, "__fspath__")
    uri = str(experiment) if owns else getattr(experiment, "uri", repr(experiment))
    exp = soma.Experiment.open(str(experiment)) if owns else experiment
    try:
        if measurement not in exp.ms:
            raise KeyError(f"measurement {measurement!r} not in the experiment; it has {list(exp.ms.keys())}.")
        ms = exp.ms[measurement]
        if X_name not in ms.X:
            raise KeyError(f"X layer {X_name!r} not in measurement {measurement!r}; it has {list(ms.X.keys())}.")
        obs = _read_frame(exp.obs, obs_value_filter, obs_columns, "obs")
        var = _read_frame(ms.var, var_value_filter, None, "var")
    except Exception:
        if owns:
            exp.close()
        raise
    if len(obs) == 0:
        if owns:
            exp.close()
        raise ValueError(
            f"the obs query {obs_value_filter!r} matched no cells in {uri}; check the filter's column "
            "names and values (e.g. tissue_general == 'testis')."
        )
    obs_joinids = obs.pop("soma_joinid").to_numpy()
    var_joinids = var.pop("soma_joinid").to_numpy()
    obs.index = _names(obs, obs_id, obs_joinids)
    var.index = _names(var, "var_id" if "var_id" in var.columns else "feature_id", var_joinids)
    if harmonize:
        _harmonize(obs)
    array = ms.X[X_name]
    cells = SomaCells(
        exp,
        SomaMatrix(array, obs_joinids, var_joinids, transform=TRANSFORMS[transform]),
        SomaMatrix(array, obs_joinids, var_joinids),
        obs, var,
        uns={"noa_soma": {"experiment": uri, "measurement": measurement, "X_name": X_name,
                          "obs_value_filter": obs_value_filter, "var_value_filter": var_value_filter,
                          "transform": transform}},
        chunk_size=int(chunk_size), owns=owns,
    )
    return cells


def _read_frame(frame, value_filter, columns, what: str) -> pd.DataFrame:
    names = frame.schema.names
    if columns is not None:
        unknown = [c for c in columns if c not in names]
        cols = ["soma_joinid", *[c for c in columns if c in names and c != "soma_joinid"]]
        if what == "obs" and "obs_id" in names and "obs_id" not in cols:
            cols.append("obs_id")
        if unknown and columns is not CENSUS_OBS_COLUMNS:
            warnings.warn(f"{what} columns not in the experiment, skipped: {unknown}.", UserWarning, stacklevel=3)
    else:
        cols = None
    table = frame.read(value_filter=value_filter, column_names=cols).concat().to_pandas()
    table = table.sort_values("soma_joinid", kind="stable").reset_index(drop=True)
    for col in table.columns:
        if table[col].dtype == object:
            table[col] = table[col].astype("category")
    return table


def _names(frame: pd.DataFrame, column: str | None, joinids: np.ndarray) -> pd.Index:
    if column is None:
        column = "obs_id" if "obs_id" in frame.columns else None
    if column is not None:
        if column not in frame.columns:
            raise KeyError(f"column {column!r} not found; available: {list(frame.columns)[:10]}.")
        names = pd.Index(frame.pop(column).astype(str).to_numpy())
        if names.is_unique:
            return names
        warnings.warn(f"column {column!r} has duplicated names; using soma_joinid instead.", UserWarning,
                      stacklevel=3)
    return pd.Index(joinids.astype(str))


def _harmonize(obs: pd.DataFrame) -> None:
    """``noa_cell_type``/``noa_cell_class`` from Census cell-type ids (names where ids are unknown)."""
    from .._vocabulary import CELL_CLASSES, CELL_TYPE_TO_CLASS, CELL_TYPES
    from ..celltypes import harmonize_labels

    if "cell_type" not in obs.columns and "cell_type_ontology_term_id" not in obs.columns:
        return
    if "cell_type_ontology_term_id" in obs.columns:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ids unknown to the table fall back to the names below
            labels = harmonize_labels(obs["cell_type_ontology_term_id"].astype(str)).astype(str)
    else:
        labels = pd.Series("other", index=obs.index)
    fallback = labels.eq("other").to_numpy()
    if "cell_type" in obs.columns and fallback.any():
        # one warning from harmonize_labels lists the names it does not know (they stay 'other')
        by_name = harmonize_labels(obs.loc[fallback, "cell_type"].astype(str)).astype(str)
        labels = labels.copy()
        labels[fallback] = by_name.to_numpy()
    obs["noa_cell_type"] = pd.Categorical(labels.to_numpy(), categories=list(CELL_TYPES))
    obs["noa_cell_class"] = pd.Categorical(
        [CELL_TYPE_TO_CLASS[t] for t in labels.to_numpy()], categories=list(CELL_CLASSES)
    )


def census_testis(
    *,
    species: str = "human",
    disease: str | Sequence[str] | None = None,
    assay: str | Sequence[str] | None = None,
    dataset_id: str | Sequence[str] | None = None,
    census_version: str = "stable",
    stream: bool = True,
    extra_filter: str | None = None,
    **kwargs: Any,
):
    """Query the CZ CELLxGENE Census for testis cells (needs the network and ``noa-omics[census]``).

    The query is ``tissue_general == 'testis'`` and, when given, ``disease``, ``assay`` and
    ``dataset_id`` (a value or a list of values) and ``extra_filter`` (a SOMA value filter, e.g.
    ``"is_primary_data == True"``), on the ``homo_sapiens`` or ``mus_musculus`` experiment.

    Parameters
    ----------
    species
        ``"human"`` or ``"mouse"``.
    census_version
        Census release (``"stable"``, ``"latest"`` or a date such as ``"2025-01-30"``); record a
        dated release for reproducible results.
    stream
        True: a :class:`SomaCells` view streamed in blocks (large queries). False: the whole query
        as an in-memory AnnData (raw counts in ``X``) with ``noa_cell_type`` harmonised.
    **kwargs
        Passed to :func:`open_soma` (``obs_columns``, ``transform``, ``chunk_size``...).

    Returns
    -------
    SomaCells or anndata.AnnData
        ``uns["noa_census"]`` records the Census version and the query.
    """
    if species not in CENSUS_ORGANISMS:
        raise ValueError(f"species={species!r} is not one of {sorted(CENSUS_ORGANISMS)}.")
    value_filter = census_filter(disease=disease, assay=assay, dataset_id=dataset_id, extra_filter=extra_filter)
    try:
        import cellxgene_census
    except ImportError as err:
        raise ImportError(
            "census_testis needs the census extra: pip install 'noa-omics[census]'; or query a local "
            "TileDB-SOMA experiment with noa.datasets.open_soma(uri)."
        ) from err
    census = cellxgene_census.open_soma(census_version=census_version)
    experiment = census["census_data"][CENSUS_ORGANISMS[species]]
    cells = open_soma(experiment, obs_value_filter=value_filter, **kwargs)
    record = {"census_version": census_version, "organism": CENSUS_ORGANISMS[species], "obs_value_filter": value_filter}
    try:
        summary = census["census_info"]["summary"].read().concat().to_pandas()
        record["census_build"] = dict(zip(summary["label"], summary["value"]))
    except Exception:  # the summary table is informative only
        pass
    cells.uns["noa_census"] = record
    if stream:
        return cells
    adata = cells.to_anndata()
    census.close()
    return adata


def census_filter(*, disease=None, assay=None, dataset_id=None, extra_filter: str | None = None,
                  tissue: str = "testis") -> str:
    """The SOMA ``obs`` value filter of a testis query (see :func:`census_testis`)."""
    terms = [f"tissue_general == {_quote(tissue)}"]
    for column, value in (("disease", disease), ("assay", assay), ("dataset_id", dataset_id)):
        if value is None:
            continue
        values = [value] if isinstance(value, str) else list(value)
        if not values or not all(isinstance(v, str) and v for v in values):
            raise ValueError(f"`{column}` must be a non-empty string or list of strings, got {value!r}.")
        terms.append(f"{column} == {_quote(values[0])}" if len(values) == 1
                     else f"{column} in [{', '.join(_quote(v) for v in values)}]")
    if extra_filter:
        terms.append(f"({extra_filter})")
    return " and ".join(terms)


def _quote(value: str) -> str:
    if "'" in value:
        raise ValueError(f"filter value {value!r} contains a quote; pass it through extra_filter instead.")
    return f"'{value}'"
