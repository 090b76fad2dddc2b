"""Gene identifiers and matrix layouts of real atlases: the one rule every public function uses.

Public atlases do not look like the demo data. A CELLxGENE file has Ensembl ids as ``var_names``
(``ENSG00000141510``, sometimes with a version suffix ``.17``), the symbols in a categorical
``var["feature_name"]``, log-normalised values in ``X`` and the raw counts in ``raw.X``; a Cell
Ranger file has symbols as ``var_names`` and the Ensembl ids in ``var["gene_ids"]``. Gene sets use
symbols (HGNC for human, MGI for mouse). Every function that reads expression by gene resolves
identifiers here, by one rule (:func:`resolve_genes`):

1. ``gene_symbols="<column>"`` given: the symbols are that ``var`` column (``raw.var`` when the
   matrix is ``raw.X``; ``var`` when ``raw.var`` lacks the column but has the same genes).
2. Otherwise, when ``var_names`` look like Ensembl gene ids (``ENSG…``/``ENSMUSG…``, with or
   without a version) and ``var`` has a column with one of the well-known names
   :data:`SYMBOL_COLUMNS` (``feature_name`` first) holding symbols, that column is used and a
   :class:`GeneIdentifierWarning` says so (once per call).
3. Otherwise ``var_names`` are the identifiers (the 10x layout needs nothing). Ensembl ids with no
   symbol column are refused with a :class:`ValueError` naming the column to pass.

**Duplicated symbols after mapping** (several Ensembl ids with one symbol, e.g. ``TBCE`` or the
PAR genes on X and Y): for per-cell reading (scoring, annotation, single-gene ingredients) the
*first* column of a symbol is used and the later ones are ignored; for pseudobulk sums
(:func:`noa.tl.enrichment`) the counts of all columns of a symbol are *summed*. Either way one
warning says how many symbols were duplicated, with examples.

**Matrix layouts** (:func:`expression_layout`, :func:`counts_layout`): ``layer=None`` is ``X``,
``layer="<name>"`` a layer, and ``layer="raw"`` (or ``use_raw=True``) is ``adata.raw.X`` (a layer
literally named ``"raw"`` wins when it exists). :func:`counts_layout` checks the matrix holds raw
counts (:func:`noa_omics._validation.is_count_matrix`) and, when it does not, names where counts
were found.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from ._validation import _preview, is_count_matrix

#: Columns of ``var`` that hold gene symbols when ``var_names`` are Ensembl ids, in order of
#: preference (CELLxGENE's ``feature_name`` first).
SYMBOL_COLUMNS: tuple[str, ...] = (
    "feature_name", "gene_symbols", "gene_symbol", "gene_name", "gene_names", "symbol", "symbols",
    "hgnc_symbol", "mgi_symbol", "external_gene_name", "Gene", "gene", "name",
)
#: ``layer=`` value that means ``adata.raw.X``.
RAW = "raw"
#: Marker appended to later duplicates of a symbol so that they match no gene set.
_DUPLICATE_TAG = "__noa_duplicate"


class GeneIdentifierWarning(UserWarning):
    """Gene identifiers were mapped or collapsed: symbols taken from a ``var`` column, duplicates."""


# ---------------------------------------------------------------------------------------------
# Identifier style
# ---------------------------------------------------------------------------------------------


def _sample(names: Any, n: int = 2000) -> list[str]:
    """Up to ``n`` identifiers spread over the list (style detection does not need 60,000)."""
    names = pd.Index(names)
    if len(names) <= n:
        return [str(g) for g in names]
    return [str(names[i]) for i in np.linspace(0, len(names) - 1, n).astype(int)]


def looks_like_ensembl(names: Any) -> bool:
    """True when most identifiers are Ensembl gene ids (see :func:`noa_omics.genesets.detect_id_type`)."""
    from .genesets import detect_id_type

    return detect_id_type(_sample(names)) == "ensembl"


def _is_text(series: pd.Series) -> bool:
    return (
        pd.api.types.is_object_dtype(series)
        or pd.api.types.is_string_dtype(series)
        or isinstance(series.dtype, pd.CategoricalDtype)
    )


def _holds_symbols(series: pd.Series) -> bool:
    from .genesets import detect_id_type, detect_species

    if not _is_text(series):
        return False
    sample = _sample(series.dropna().astype(str).to_numpy())
    return bool(sample) and detect_id_type(sample) == "symbol" and detect_species(sample) is not None


def known_symbol_column(var: pd.DataFrame) -> str | None:
    """The first column of :data:`SYMBOL_COLUMNS` in ``var`` whose values look like gene symbols."""
    for column in SYMBOL_COLUMNS:
        if column in var.columns and _holds_symbols(var[column]):
            return column
    return None


def suggest_symbol_column(var: pd.DataFrame) -> str | None:
    """Any ``var`` column that looks like gene symbols (for error messages); names with
    "symbol"/"name" preferred."""
    candidates = [c for c in var.columns if _holds_symbols(var[c])]
    if not candidates:
        return None
    preferred = [c for c in candidates if any(k in str(c).lower() for k in ("symbol", "name"))]
    return (preferred or candidates)[0]


# ---------------------------------------------------------------------------------------------
# The rule
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GeneIds:
    """Identifiers genes are matched on, one per column of the matrix.

    Attributes
    ----------
    names
        Identifiers to match gene sets on. With a symbol column, later duplicates of a symbol
        carry a tag so that only the first column of a symbol matches (first-occurrence rule).
    symbols
        The symbols as mapped, duplicates kept (for summing counts per symbol).
    column
        The ``var`` column the symbols came from, None for ``var_names``.
    auto
        True when the column was chosen here (``gene_symbols=None`` and Ensembl ``var_names``).
    n_duplicated
        Columns whose symbol repeats an earlier column's.
    """

    names: pd.Index
    symbols: pd.Index
    column: str | None
    auto: bool = False
    n_duplicated: int = 0

    @property
    def source(self) -> str:
        """Where the identifiers come from, for messages: ``var_names`` or ``var['<column>']``."""
        return "var_names" if self.column is None else f"var[{self.column!r}]"


def _symbols_from(var: pd.DataFrame, var_names: pd.Index, column: str, fallback_var: pd.DataFrame | None,
                  where: str) -> pd.Series:
    if column in var.columns:
        values = var[column]
    elif fallback_var is not None and column in fallback_var.columns and pd.Index(var_names).isin(fallback_var.index).all():
        values = fallback_var[column].reindex(pd.Index(var_names))  # raw.var without the column
    else:
        var_where = "adata.raw.var" if where == "adata.raw.X" else "adata.var"
        raise KeyError(
            f"gene_symbols={column!r} is not a column of `{var_where}`; available columns: "
            f"{_preview(var.columns)}. Pass the column holding gene symbols, or gene_symbols=None to use var_names."
        )
    values = pd.Series(np.asarray(values.astype(object)), index=pd.Index(var_names))
    if values.isna().any():
        raise ValueError(
            f"`var[{column!r}]` has {int(values.isna().sum())} missing value(s); fill them "
            "(e.g. with the var_names) before scoring."
        )
    return values.astype(str)


def _first_occurrence(symbols: pd.Index) -> tuple[pd.Index, int, list[str]]:
    dup = symbols.duplicated(keep="first")
    if not dup.any():
        return symbols, 0, []
    examples = list(dict.fromkeys(symbols[dup]))
    names = np.asarray(symbols, dtype=object).copy()
    for i in np.flatnonzero(dup):
        names[i] = f"{names[i]}{_DUPLICATE_TAG}{i}"
    return pd.Index(names), int(dup.sum()), examples


def resolve_genes(
    var: pd.DataFrame,
    var_names: Any,
    gene_symbols: str | None = None,
    *,
    where: str = "adata.X",
    fallback_var: pd.DataFrame | None = None,
    require_symbols: bool = True,
    duplicates: str = "first",
    warn: bool = True,
    stacklevel: int = 3,
) -> GeneIds:
    """Identifiers to match gene sets on, by the package's one rule (see the module docstring).

    Parameters
    ----------
    var, var_names
        Gene annotation and names of the matrix (``raw.var`` for ``raw.X``).
    gene_symbols
        ``var`` column with gene symbols; None applies the automatic rule.
    where
        The matrix, for messages (``adata.raw.X`` selects the ``raw.var`` wording).
    fallback_var
        ``adata.var``, used when ``raw.var`` lacks the ``gene_symbols`` column.
    require_symbols
        Refuse Ensembl ids that cannot be mapped to symbols.
    duplicates
        Wording of the duplicate warning: ``"first"`` (first occurrence used) or ``"sum"``
        (counts summed per symbol by the caller).
    warn
        Emit the :class:`GeneIdentifierWarning` s (one per kind, per call).

    Returns
    -------
    GeneIds

    Raises
    ------
    KeyError
        ``gene_symbols`` is not a column.
    ValueError
        Missing symbols, or Ensembl ids without a symbol column (with ``require_symbols``).
    """
    var_names = pd.Index(var_names).astype(str)
    auto = False
    column = gene_symbols
    if column is None and looks_like_ensembl(var_names):
        column = known_symbol_column(var)
        if column is None and fallback_var is not None and pd.Index(var_names).isin(fallback_var.index).all():
            column = known_symbol_column(fallback_var)
        auto = column is not None
        if column is None and require_symbols:
            hint_var = fallback_var if fallback_var is not None and suggest_symbol_column(var) is None else var
            raise ValueError(ensembl_message(var_names, hint_var))
        if auto and warn:
            warnings.warn(
                f"var_names look like Ensembl gene ids (e.g. {list(var_names[:2])}); gene symbols are taken from "
                f"`var[{column!r}]`. Pass gene_symbols={column!r} to make this explicit, or gene_symbols='<column>' "
                "to choose another column.",
                GeneIdentifierWarning,
                stacklevel=stacklevel,
            )
    if column is None:
        return GeneIds(names=var_names, symbols=var_names, column=None)
    symbols = pd.Index(_symbols_from(var, var_names, column, fallback_var, where).to_numpy())
    names, n_dup, examples = _first_occurrence(symbols)
    if n_dup and warn:
        rule = (
            "their counts are summed per symbol"
            if duplicates == "sum"
            else "the first column of each symbol is used and the others are ignored"
        )
        warnings.warn(
            f"{n_dup} column(s) of `{where}` repeat a gene symbol of `var[{column!r}]` ({len(examples)} symbol(s), "
            f"e.g. {examples[:5]}); {rule}.",
            GeneIdentifierWarning,
            stacklevel=stacklevel,
        )
    return GeneIds(names=names, symbols=symbols, column=column, auto=auto, n_duplicated=n_dup)


def ensembl_message(names: pd.Index, var: pd.DataFrame) -> str:
    """The error for Ensembl ids without a usable symbol column, naming the fix."""
    column = suggest_symbol_column(var)
    hint = (
        f"pass gene_symbols={column!r} (that var column looks like gene symbols)"
        if column is not None
        else "add a column of gene symbols to `adata.var` (e.g. var['feature_name']) and pass gene_symbols='<column>'"
    )
    return f"the gene identifiers look like Ensembl ids (e.g. {list(names[:2])}) but gene sets use symbols; {hint}."


# ---------------------------------------------------------------------------------------------
# Layouts
# ---------------------------------------------------------------------------------------------


@dataclass
class Layout:
    """A matrix of an AnnData and its gene annotation."""

    matrix: Any
    var: pd.DataFrame
    where: str  #: for messages: ``adata.X``, ``adata.layers['counts']``, ``adata.raw.X``
    use_raw: bool

    @property
    def var_names(self) -> pd.Index:
        return pd.Index(self.var.index)


def _raw_var(adata: AnnData) -> pd.DataFrame:
    var = adata.raw.var
    if not isinstance(var, pd.DataFrame) and hasattr(var, "to_memory"):
        var = var.to_memory()
    return var


def wants_raw(adata: AnnData, layer: str | None) -> bool:
    """True when ``layer`` names ``adata.raw.X`` (``"raw"`` and no layer of that name)."""
    return layer == RAW and RAW not in adata.layers


def expression_layout(adata: AnnData, layer: str | None = None, use_raw: bool = False) -> Layout:
    """The matrix of ``layer`` (None: ``X``; ``"raw"``: ``raw.X``) or of ``raw.X`` with ``use_raw``.

    Raises
    ------
    KeyError
        Unknown layer.
    ValueError
        ``raw.X`` asked for without ``adata.raw``, ``layer`` together with ``use_raw``, or an
        empty ``X``.
    """
    if wants_raw(adata, layer):
        layer, use_raw = None, True
    if use_raw:
        if layer is not None:
            raise ValueError(
                f"`layer={layer!r}` and `use_raw=True` were both given; pass only one "
                "(use_raw=False to use the layer)."
            )
        if adata.raw is None:
            raise ValueError(
                "use_raw=True (or layer='raw') but `adata.raw` is None; pass use_raw=False to use `adata.X` "
                f"(or a layer with layer='<name>', one of {_preview(adata.layers.keys())})."
            )
        return Layout(adata.raw.X, _raw_var(adata), "adata.raw.X", True)
    if layer is not None:
        if layer not in adata.layers:
            raise KeyError(
                f"layer {layer!r} not found in `adata.layers`; available layers: {_preview(adata.layers.keys())}. "
                f"Pass one of them, layer='raw' for `adata.raw.X`{' (present)' if adata.raw is not None else ''}, "
                "or layer=None to use `adata.X`."
            )
        return Layout(adata.layers[layer], adata.var, f"adata.layers[{layer!r}]", False)
    if adata.X is None:
        raise ValueError(f"`adata.X` is None; pass layer='<name>' with one of {_preview(adata.layers.keys())}.")
    return Layout(adata.X, adata.var, "adata.X", False)


def count_locations(adata: AnnData) -> list[str]:
    """``layer=`` values whose matrix holds raw counts (``"raw"`` for ``raw.X``, None for ``X``)."""
    found: list[Any] = []
    for name in adata.layers.keys():
        if is_count_matrix(adata.layers[name], empty=False):
            found.append(name)
    if adata.raw is not None and RAW not in adata.layers and is_count_matrix(adata.raw.X, empty=False):
        found.append(RAW)
    if adata.X is not None and is_count_matrix(adata.X, empty=False):
        found.append(None)
    return found


def _where_to_layer(value: Any) -> str:
    return "layer=None (adata.X)" if value is None else (
        "layer='raw' (adata.raw.X)" if value == RAW else f"layer={value!r}")


def counts_layout(adata: AnnData, layer: str | None, *, option: str = "layer") -> Layout:
    """The raw-count matrix named by ``layer`` (None: ``X``; ``"raw"``: ``raw.X``).

    Raises a ``KeyError``/``ValueError`` that names where raw counts *are* when the named matrix
    is absent or not counts (log-normalised ``X`` of a CELLxGENE file: ``layer='raw'``).
    """
    try:
        layout = expression_layout(adata, layer)
    except (KeyError, ValueError) as err:
        found = count_locations(adata)
        if not found:
            raise
        fix = " or ".join(_where_to_layer(f).replace("layer=", f"{option}=") for f in found)
        raise type(err)(f"{err.args[0]} Raw counts were found: pass {fix}.") from None
    if not is_count_matrix(layout.matrix, empty=True):
        found = [f for f in count_locations(adata) if f != layer and not (f == RAW and layout.use_raw)]
        fix = (
            "pass " + " or ".join(_where_to_layer(f).replace("layer=", f"{option}=") for f in found)
            if found
            else "add the raw counts (e.g. adata.layers['counts']) and pass it"
        )
        raise ValueError(
            f"`{layout.where}` does not hold raw counts (non-negative integers; it looks normalised); {fix}."
        )
    return layout


# ---------------------------------------------------------------------------------------------
# A symbol-named view
# ---------------------------------------------------------------------------------------------


def symbol_view(
    adata: AnnData,
    *,
    layer: str | None = None,
    use_raw: bool = False,
    gene_symbols: str | None = None,
    require_symbols: bool = False,
    stacklevel: int = 4,
) -> tuple[AnnData, GeneIds, Layout]:
    """A light AnnData on the chosen matrix (shared, not copied) with the resolved symbols as
    ``var_names``; ``adata`` is not modified. Returns the view, its :class:`GeneIds` and the
    :class:`Layout` it reads."""
    layout = expression_layout(adata, layer, use_raw)
    ids = resolve_genes(
        layout.var, layout.var_names, gene_symbols, where=layout.where,
        fallback_var=adata.var if layout.use_raw else None, require_symbols=require_symbols,
        stacklevel=stacklevel,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # duplicated var_names: refused by the scorer
        view = AnnData(X=layout.matrix, obs=pd.DataFrame(index=adata.obs_names), var=pd.DataFrame(index=ids.names))
    return view, ids, layout
