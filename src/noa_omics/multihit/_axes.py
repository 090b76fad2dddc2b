"""Axis ingredients of the multi-hit model: loading ``axes.yaml`` and evaluating it per donor.

An *ingredient* is one per-donor signal (a gene-set score averaged over the donor's cells of
the right type, one gene's expression, a cell-type proportion, or a column of a per-sample
spatial table). Each ingredient is standardised against the reference donors with a robust z
(:func:`robust_z`) and an axis combines its signed ingredient z-scores: their weighted mean by
default, or the largest of them (``combine: max``, the genetic axis).
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy import sparse

from .._validation import is_count_matrix
from .._vocabulary import AXES, CELL_CLASSES, CELL_TYPE_TO_CLASS, CELL_TYPES

DEFAULT_AXES_PATH = Path(__file__).with_name("axes.yaml")

SIGNALS: tuple[str, ...] = ("score", "gene", "composition", "spatial")
AGGREGATIONS: dict[str, tuple[str, ...]] = {
    "score": ("mean", "median", "fraction_high"),
    "gene": ("mean", "median", "fraction_expressing"),
    "composition": ("fraction",),
    "spatial": ("value",),
}
COMBINE: tuple[str, ...] = ("mean", "max")
#: Consistency constant that makes the MAD estimate the standard deviation of a normal law.
MAD_TO_SD = 1.4826


# --------------------------------------------------------------------------------------------
# Configuration files
# --------------------------------------------------------------------------------------------


def read_config(source: str | os.PathLike | Mapping | None, default_path: Path, *, what: str) -> dict:
    """Default YAML file merged with ``source`` (a path to a YAML file or a mapping).

    Mappings are merged key by key (recursively); any other value, lists included, replaces the
    default; a key set to ``None`` removes that entry.
    """
    base = _parsed_default(str(default_path), default_path.stat().st_mtime_ns)
    if source is None:
        return base
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"{what} file {str(path)!r} not found; pass an existing YAML file or a dict.")
        try:
            override = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise ValueError(f"{what} file {str(path)!r} is not valid YAML: {err}") from None
    elif isinstance(source, Mapping):
        override = copy.deepcopy(dict(source))
    else:
        raise TypeError(f"`{what}` must be a path to a YAML file, a dict or None, got {type(source).__name__}.")
    if not isinstance(override, Mapping):
        raise ValueError(f"{what} must be a mapping at the top level (got {type(override).__name__}).")
    return deep_merge(base, override)


def _parsed_default(path: str, mtime_ns: int) -> dict:
    """Deep copy of a parsed shipped YAML file; parsed once per file version (pure-Python YAML
    parsing dominated repeated multihit calls, e.g. the resamples of ``multihit_stability``)."""
    return copy.deepcopy(_parse_yaml_file(path, mtime_ns))


@functools.lru_cache(maxsize=8)
def _parse_yaml_file(path: str, mtime_ns: int) -> dict:
    return yaml.safe_load(Path(path).read_text())


def deep_merge(base: Mapping, override: Mapping) -> dict:
    """Recursive merge of ``override`` into a copy of ``base`` (``None`` deletes a key)."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass(frozen=True)
class Ingredient:
    """One per-donor signal of an axis (or of a derived column such as ``germ_apoptosis``)."""

    block: str
    name: str
    signal: str
    gene_sets: tuple[tuple[str, float], ...] = ()
    gene: str | None = None
    cell_types: tuple[str, ...] = ("all",)
    numerator: tuple[str, ...] = ()
    denominator: tuple[str, ...] = ("all",)
    columns: tuple[str, ...] = ()
    aggregation: str = "mean"
    quantile: float = 0.9
    sign: float | str = 1.0
    weight: float = 1.0
    adjust: bool = False
    rationale: str = ""

    @property
    def label(self) -> str:
        return f"{self.block}.{self.name}"


@dataclass
class AxesConfig:
    """Validated content of ``axes.yaml`` (after overrides)."""

    raw: dict
    settings: dict
    axes: dict[str, list[Ingredient]]
    derived: dict[str, list[Ingredient]]
    descriptions: dict[str, str] = field(default_factory=dict)
    combine: dict[str, str] = field(default_factory=dict)

    @property
    def blocks(self) -> dict[str, list[Ingredient]]:
        return {**self.axes, **self.derived}

    def gene_sets(self) -> list[str]:
        names: list[str] = []
        for ingredients in self.blocks.values():
            for ing in ingredients:
                for name, _ in ing.gene_sets:
                    if name not in names:
                        names.append(name)
        return names


_SETTINGS_DEFAULTS = {
    "min_cells": 5,
    "sd_floor": 0.5,
    "mad_floor": 0.1,
    "min_scale": 1e-6,
    "se_floor": True,
    "germ_types": ["germ"],
    "tubule_somatic_types": ["sertoli"],
}


def _as_tokens(value: Any, *, where: str) -> tuple[str, ...]:
    if value is None:
        return ("all",)
    tokens = (value,) if isinstance(value, str) else tuple(value)
    for token in tokens:
        if not isinstance(token, str):
            raise ValueError(f"{where}: cell types must be strings, got {token!r}.")
        if token != "all" and token not in CELL_TYPES and token not in CELL_CLASSES:
            raise ValueError(
                f"{where}: unknown cell type or class {token!r}; use 'all', a fine type {list(CELL_TYPES)} "
                f"or a broad class {list(CELL_CLASSES)}."
            )
    return tokens


def _parse_ingredient(block: str, name: str, spec: Any, species: str | None) -> Ingredient:
    where = f"ingredient {block}.{name}"
    if not isinstance(spec, Mapping):
        raise ValueError(f"{where}: expected a mapping of fields, got {spec!r}.")
    signal = spec.get("signal")
    if signal not in SIGNALS:
        raise ValueError(f"{where}: unknown signal {signal!r}; use one of {list(SIGNALS)}.")
    sign = spec.get("sign", 1)
    if sign != "abs":
        try:
            sign = float(sign)
        except (TypeError, ValueError):
            sign = None
        if sign not in (1.0, -1.0):
            raise ValueError(f"{where}: sign must be 1, -1 or 'abs', got {spec.get('sign')!r}.")
    weight = spec.get("weight", 1.0)
    if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not np.isfinite(weight) or weight < 0:
        raise ValueError(f"{where}: weight must be a finite number >= 0, got {weight!r}.")
    aggregation = spec.get("aggregation", AGGREGATIONS[signal][0])  # first listed = default
    if aggregation not in AGGREGATIONS[signal]:
        raise ValueError(
            f"{where}: aggregation {aggregation!r} does not apply to signal {signal!r}; "
            f"use one of {list(AGGREGATIONS[signal])}."
        )
    kwargs: dict[str, Any] = {}
    quantile = spec.get("quantile", 0.9)
    if not isinstance(quantile, (int, float)) or isinstance(quantile, bool) or not 0 < quantile < 1:
        raise ValueError(f"{where}: quantile must be a number in (0, 1), got {quantile!r}.")
    kwargs["quantile"] = float(quantile)
    if signal == "score":
        if "gene_sets" in spec:
            sets = spec["gene_sets"]
            if not isinstance(sets, Mapping) or not sets:
                raise ValueError(f"{where}: gene_sets must be a non-empty mapping set -> weight.")
            pairs = tuple((str(k), float(v)) for k, v in sets.items())
        elif "gene_set" in spec:
            pairs = ((str(spec["gene_set"]), 1.0),)
        else:
            raise ValueError(f"{where}: a score ingredient needs `gene_set` (or `gene_sets`).")
        if not any(w != 0 for _, w in pairs):
            raise ValueError(f"{where}: all gene-set weights are 0.")
        kwargs["gene_sets"] = pairs
    elif signal == "gene":
        gene = spec.get("gene")
        if isinstance(gene, Mapping):
            key = species or "human"
            if key not in gene:
                raise ValueError(f"{where}: no gene symbol for species {key!r} (given: {dict(gene)}).")
            gene = gene[key]
        if not isinstance(gene, str) or not gene:
            raise ValueError(f"{where}: a gene ingredient needs `gene` (a symbol or {{human: .., mouse: ..}}).")
        kwargs["gene"] = gene
    elif signal == "composition":
        if "numerator" not in spec:
            raise ValueError(f"{where}: a composition ingredient needs `numerator` (cell types).")
        kwargs["numerator"] = _as_tokens(spec["numerator"], where=where)
        kwargs["denominator"] = _as_tokens(spec.get("denominator", "all"), where=where)
    elif signal == "spatial":
        cols = spec.get("columns", spec.get("column"))
        cols = (cols,) if isinstance(cols, str) else tuple(cols or ())
        if not cols:
            raise ValueError(f"{where}: a spatial ingredient needs `columns` (candidate column names).")
        kwargs["columns"] = cols
    return Ingredient(
        block=block,
        name=name,
        signal=signal,
        cell_types=_as_tokens(spec.get("cell_types", "all"), where=where),
        aggregation=aggregation,
        sign=sign,
        weight=float(weight),
        adjust=bool(spec.get("adjust", False)),
        rationale=str(spec.get("rationale", "")),
        **kwargs,
    )


def _parse_blocks(section: Any, *, what: str, species: str | None) -> tuple[dict, dict, dict]:
    if not isinstance(section, Mapping):
        raise ValueError(f"axes config: `{what}` must be a mapping of name -> {{ingredients: ...}}.")
    blocks: dict[str, list[Ingredient]] = {}
    descriptions: dict[str, str] = {}
    combine: dict[str, str] = {}
    for block, body in section.items():
        if not isinstance(body, Mapping) or not isinstance(body.get("ingredients", {}), Mapping):
            raise ValueError(f"axes config: {what}.{block} must be a mapping with an `ingredients` mapping.")
        combine[block] = body.get("combine", "mean")
        if combine[block] not in COMBINE:
            raise ValueError(f"axes config: {what}.{block}.combine must be one of {list(COMBINE)}, got {combine[block]!r}.")
        ingredients = [
            _parse_ingredient(block, name, spec, species)
            for name, spec in (body.get("ingredients") or {}).items()
            if spec is not None
        ]
        blocks[block] = ingredients
        descriptions[block] = str(body.get("description", ""))
    return blocks, descriptions, combine


def load_axes(axes: str | os.PathLike | Mapping | None = None, *, species: str | None = None) -> AxesConfig:
    """Load and validate ``axes.yaml``, merged with the user's override ``axes``.

    Parameters
    ----------
    axes
        None (the shipped ``axes.yaml``), a path to a YAML file or a dict, merged into the default
        (mappings key by key, lists replaced, ``None`` removes an entry).
    species
        Species used to pick per-species gene symbols (``gene: {human: XIST, mouse: Xist}``).
    """
    raw = read_config(axes, DEFAULT_AXES_PATH, what="axes")
    settings = {**_SETTINGS_DEFAULTS, **(raw.get("settings") or {})}
    for key in ("min_cells",):
        if not isinstance(settings[key], int) or settings[key] < 1:
            raise ValueError(f"axes settings: {key} must be an integer >= 1, got {settings[key]!r}.")
    for key in ("sd_floor", "mad_floor", "min_scale"):
        if not isinstance(settings[key], (int, float)) or settings[key] < 0:
            raise ValueError(f"axes settings: {key} must be a number >= 0, got {settings[key]!r}.")
    settings["germ_types"] = _as_tokens(settings["germ_types"], where="settings.germ_types")
    settings["tubule_somatic_types"] = _as_tokens(settings["tubule_somatic_types"], where="settings.tubule_somatic_types")
    axes_blocks, desc, comb = _parse_blocks(raw.get("axes", {}), what="axes", species=species)
    unknown = [a for a in axes_blocks if a not in AXES]
    if unknown:
        raise ValueError(f"axes config: unknown axis {unknown}; the multi-hit axes are {list(AXES)}.")
    absent = [a for a in AXES if a not in axes_blocks]
    if absent:
        raise ValueError(f"axes config: axis {absent} not defined; every axis of {list(AXES)} needs ingredients.")
    derived, desc2, comb2 = _parse_blocks(raw.get("derived", {}) or {}, what="derived", species=species)
    clash = [d for d in derived if d in AXES]
    if clash:
        raise ValueError(f"axes config: derived column(s) {clash} clash with axis names.")
    return AxesConfig(
        raw=raw,
        settings=settings,
        axes=axes_blocks,
        derived=derived,
        descriptions={**desc, **desc2},
        combine={**comb, **comb2},
    )


# --------------------------------------------------------------------------------------------
# Standardisation
# --------------------------------------------------------------------------------------------


def robust_z(
    values: pd.Series,
    reference: Iterable,
    *,
    sd_floor: float = 0.5,
    mad_floor: float = 0.1,
    min_scale: float = 1e-6,
    se: pd.Series | None = None,
) -> tuple[pd.Series, float, float]:
    r"""Robust z-score of per-donor values against the reference donors.

    .. math::

        z_d = \frac{x_d - \operatorname{median}_{r \in R} x_r}{s}, \qquad
        s = \max\left(1.4826\,\operatorname{MAD}_{r \in R}(x_r),\;
                      \kappa\,\operatorname{SD}_{r \in R}(x_r),\;
                      \alpha\,\operatorname{SD}_{\text{all}}(x),\; \varepsilon\right)

    with :math:`R` the reference donors, :math:`\kappa` = ``sd_floor`` (0.5),
    :math:`\alpha` = ``mad_floor`` (0.1) and :math:`\varepsilon` = ``min_scale``. When the
    standard errors ``se`` of the donors' values are given, donor :math:`d` is scaled by
    :math:`\max(s, \mathrm{SE}_d)`: a donor measured on few cells is not called more extreme than
    its own sampling error allows.

    The floors only bind when the MAD is degenerate. With few reference donors (three controls
    is common) two of them can agree by chance, which makes the MAD close to 0 and every other
    donor look extreme; for normal data :math:`0.5\,\mathrm{SD} < 1.4826\,\mathrm{MAD}`, so the
    SD floor does not change well-behaved references. The pooled floor keeps the scale positive
    when the reference donors agree exactly (e.g. no XIST-positive cell in any control), and
    with all values equal every z is 0.

    Returns
    -------
    z, center, scale
        NaN z for every donor when fewer than two reference donors have a value.
    """
    x = pd.to_numeric(values, errors="coerce").astype(float)
    ref = x.reindex(pd.Index(list(reference))).dropna()
    if len(ref) < 2:
        return pd.Series(np.nan, index=x.index), np.nan, np.nan
    center = float(np.median(ref))
    mad = float(np.median(np.abs(ref - center)))
    sd_ref = float(ref.std(ddof=1))
    finite = x.dropna()
    sd_all = float(finite.std(ddof=1)) if len(finite) > 1 else 0.0
    scale = max(MAD_TO_SD * mad, sd_floor * sd_ref, mad_floor * sd_all, min_scale)
    if se is None:
        return (x - center) / scale, center, scale
    per_donor = np.maximum(scale, pd.to_numeric(se, errors="coerce").reindex(x.index).fillna(0.0).to_numpy())
    return (x - center) / per_donor, center, scale


def signed(z: pd.Series, sign: float | str) -> pd.Series:
    """Orient a z-score so that higher means more affected (``abs``: either direction)."""
    return z.abs() if sign == "abs" else z * float(sign)


# --------------------------------------------------------------------------------------------
# Cells and expression
# --------------------------------------------------------------------------------------------


def type_mask(cell_type: pd.Series, cell_class: pd.Series, tokens: Iterable[str]) -> np.ndarray:
    """Boolean mask of the cells whose fine type or broad class is among ``tokens`` (``all``: every cell)."""
    tokens = tuple(tokens)
    if "all" in tokens:
        return np.ones(len(cell_type), dtype=bool)
    fine = [t for t in tokens if t in CELL_TYPES]
    broad = [t for t in tokens if t in CELL_CLASSES]
    return (cell_type.isin(fine) | cell_class.isin(broad)).to_numpy()


def cell_classes(cell_type: pd.Series) -> pd.Series:
    """Broad class per cell from its fine type (labels outside the vocabulary -> ``other``)."""
    return cell_type.astype(str).map(lambda t: CELL_TYPE_TO_CLASS.get(t, "other"))


def _column(matrix: Any, j: int) -> np.ndarray:
    col = matrix[:, j]
    if sparse.issparse(col):
        return np.asarray(col.toarray()).ravel().astype(float)
    if hasattr(col, "compute"):
        col = col.compute()
    return np.asarray(col, dtype=float).ravel()


def _row_sums(matrix: Any) -> np.ndarray:
    sums = matrix.sum(axis=1)
    if hasattr(sums, "compute"):
        sums = sums.compute()
    return np.asarray(sums, dtype=float).ravel()


def gene_expression(adata: Any, gene: str, *, layer: str | None = None, normalise: bool = True) -> np.ndarray | None:
    r"""Per-cell expression of one gene, log-normalised when the matrix holds raw counts.

    Integer-valued matrices are read as counts and transformed as
    :math:`\log(1 + 10^4\,x_{cg} / \sum_g x_{cg})`; other matrices are used as they are
    (assumed log-normalised); ``normalise=False`` returns the stored values (enough to tell
    expressed from not expressed). Returns None when the gene is not in ``adata.var_names``.
    """
    if gene not in adata.var_names:
        return None
    matrix = adata.layers[layer] if layer is not None else adata.X
    j = int(adata.var_names.get_loc(gene))
    values = _column(matrix, j)
    if normalise and is_count_matrix(matrix, empty=False):
        totals = _row_sums(matrix)
        totals[totals == 0] = 1.0
        values = np.log1p(values / totals * 1e4)
    return values


# --------------------------------------------------------------------------------------------
# Evaluating one ingredient
# --------------------------------------------------------------------------------------------


@dataclass
class CellContext:
    """Per-cell inputs shared by all ingredients of one :func:`~noa_omics.tl.multihit` call."""

    sample: pd.Series  # per cell
    cell_type: pd.Series  # per cell, fine
    cell_class: pd.Series  # per cell, broad
    samples: pd.Index  # output order
    reference: list  # reference sample ids
    min_cells: int
    scores: pd.DataFrame | None = None  # cells x sets
    adata: Any = None
    layer: str | None = None
    spatial: pd.DataFrame | None = None

    @functools.cached_property
    def in_reference(self) -> np.ndarray:
        """Per cell: whether its sample is a reference sample (computed once per call)."""
        return self.sample.isin(self.reference).to_numpy()

    @functools.cached_property
    def type_masks(self) -> list[tuple[str, np.ndarray]]:
        """(fine type, cell mask) per type present, in sorted order (computed once per call: every
        ingredient adjusted to the reference reuses them)."""
        codes, names = pd.factorize(self.cell_type.astype(str).to_numpy())
        order = np.argsort(names.astype(str), kind="stable")
        return [(str(names[k]), codes == k) for k in order]


@dataclass
class IngredientResult:
    """Raw per-donor values of one ingredient and why some are missing."""

    ingredient: Ingredient
    raw: pd.Series
    n_cells: pd.Series | None = None
    se: pd.Series | None = None  # standard error of the donor's value (sampling over cells)
    unavailable: str | None = None  # reason when NaN for every donor
    reasons: dict = field(default_factory=dict)  # sample -> reason for NaN


def _reference_pools(values: np.ndarray, ctx: CellContext) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per fine cell type: its cell mask and the finite values of the reference donors' cells of that
    type (all its cells when no reference donor has one); types without any finite value are skipped."""
    in_ref = ctx.in_reference
    finite = np.isfinite(values)
    for _, is_t in ctx.type_masks:
        pool = values[is_t & in_ref & finite]
        if pool.size == 0:
            pool = values[is_t & finite]
        if pool.size:
            yield is_t, pool


def _reference_adjusted(values: np.ndarray, ctx: CellContext) -> np.ndarray:
    """Subtract per fine cell type the median over the reference donors' cells of that type."""
    out = values.copy()
    for is_t, pool in _reference_pools(values, ctx):
        out[is_t] = values[is_t] - np.median(pool)
    return out


def _reference_quantile_exceeded(values: np.ndarray, ctx: CellContext, q: float) -> np.ndarray:
    """1.0 where a cell's value exceeds the ``q`` quantile of the reference donors' cells of its type."""
    out = np.full(values.shape, np.nan)
    finite = np.isfinite(values)
    for is_t, pool in _reference_pools(values, ctx):
        sel = is_t & finite
        out[sel] = (values[sel] > np.quantile(pool, q)).astype(float)
    return out


def _aggregate(values: np.ndarray, mask: np.ndarray, ctx: CellContext, how: str, what: str) -> tuple:
    finite = np.isfinite(values)
    use = mask & finite
    if how == "fraction_expressing":
        values = (values > 0).astype(float)
    frame = pd.DataFrame({"sample": ctx.sample.to_numpy()[use], "v": values[use]})
    grouped = frame.groupby("sample", observed=True, sort=False)["v"]
    counts = grouped.size().reindex(ctx.samples, fill_value=0)
    n = counts.where(counts > 0).astype(float)
    if how in ("mean", "median"):
        agg = (grouped.mean() if how == "mean" else grouped.median()).reindex(ctx.samples)
        # standard error of a mean (x 1.2533 for a median, its asymptotic efficiency for normal data)
        se = grouped.std(ddof=1).reindex(ctx.samples) / np.sqrt(n) * (1.2533 if how == "median" else 1.0)
    else:  # fraction_high / fraction_expressing: values are 0/1 indicators
        k = grouped.sum().reindex(ctx.samples)
        agg = k / n
        p = (k + 1.0) / (n + 2.0)  # Agresti-Coull-style shrinkage so that 0 and 1 keep a positive SE
        se = np.sqrt(p * (1.0 - p) / n)
    low = (counts < ctx.min_cells).to_numpy()
    agg = agg.astype(float)
    agg[low] = np.nan
    reasons = {s: f"{int(counts[s])} {what} cell(s), < {ctx.min_cells}" for s in ctx.samples[low]}
    return agg, counts, se.astype(float), reasons


def _types_text(tokens: tuple[str, ...]) -> str:
    return "/".join(tokens)


def evaluate_ingredient(ing: Ingredient, ctx: CellContext) -> IngredientResult:
    """Per-donor raw value of one ingredient (before standardisation)."""
    empty = pd.Series(np.nan, index=ctx.samples, dtype=float)
    if ing.signal == "spatial":
        if ctx.spatial is None:
            return IngredientResult(ing, empty, unavailable="no spatial table given (spatial=None)")
        col = next((c for c in ing.columns if c in ctx.spatial.columns), None)
        if col is None:
            return IngredientResult(
                ing, empty, unavailable=f"spatial table has none of the columns {list(ing.columns)}"
            )
        raw = pd.to_numeric(ctx.spatial[col], errors="coerce").reindex(ctx.samples).astype(float)
        reasons = {s: "sample absent from the spatial table" for s in ctx.samples[raw.isna().to_numpy()]}
        if raw.isna().all():
            return IngredientResult(ing, raw, unavailable="no sample of the spatial table matches sample_key")
        return IngredientResult(ing, raw, reasons=reasons)

    if ing.signal == "composition":
        den = type_mask(ctx.cell_type, ctx.cell_class, ing.denominator)
        num = type_mask(ctx.cell_type, ctx.cell_class, ing.numerator) & den
        sample = ctx.sample.to_numpy()
        n_den = pd.Series(den, index=sample).groupby(level=0, sort=False).sum().reindex(ctx.samples, fill_value=0)
        n_num = pd.Series(num, index=sample).groupby(level=0, sort=False).sum().reindex(ctx.samples, fill_value=0)
        raw = (n_num / n_den.where(n_den > 0)).astype(float)
        p = (n_num + 1.0) / (n_den + 2.0)
        se = np.sqrt(p * (1.0 - p) / n_den.where(n_den > 0)).astype(float)
        low = (n_den < ctx.min_cells).to_numpy()
        raw[low] = np.nan
        reasons = {
            s: f"{int(n_den[s])} {_types_text(ing.denominator)} cell(s), < {ctx.min_cells}" for s in ctx.samples[low]
        }
        unavailable = None if raw.notna().any() else f"fewer than {ctx.min_cells} {_types_text(ing.denominator)} cells in every donor"
        return IngredientResult(ing, raw, n_cells=n_den, se=se, unavailable=unavailable, reasons=reasons)

    mask = type_mask(ctx.cell_type, ctx.cell_class, ing.cell_types)
    what = _types_text(ing.cell_types)
    if ing.signal == "gene":
        values = gene_expression(
            ctx.adata, ing.gene, layer=ctx.layer, normalise=ing.aggregation != "fraction_expressing"
        )
        if values is None:
            return IngredientResult(ing, empty, unavailable=f"gene {ing.gene!r} not in adata.var_names")
    else:  # score
        missing = [s for s, _ in ing.gene_sets if s not in ctx.scores.columns]
        if missing:
            return IngredientResult(ing, empty, unavailable=f"no score for gene set(s) {missing}")
        used = [(s, w) for s, w in ing.gene_sets if w != 0]
        all_nan = [s for s, _ in used if not np.isfinite(ctx.scores[s].to_numpy(dtype=float)).any()]
        if all_nan:
            return IngredientResult(
                ing, empty, unavailable=f"gene set(s) {all_nan} could not be scored (too few genes present)"
            )
        total = sum(abs(w) for _, w in used)
        values = sum(w * ctx.scores[s].to_numpy(dtype=float) for s, w in used) / total
    if ing.adjust:
        values = _reference_adjusted(values, ctx)
    if ing.aggregation == "fraction_high":
        values = _reference_quantile_exceeded(values, ctx, ing.quantile)
    raw, counts, se, reasons = _aggregate(values, mask, ctx, ing.aggregation, what)
    unavailable = None if raw.notna().any() else f"fewer than {ctx.min_cells} {what} cells in every donor"
    return IngredientResult(ing, raw, n_cells=counts, se=se, unavailable=unavailable, reasons=reasons)


# --------------------------------------------------------------------------------------------
# Combining ingredients into an axis
# --------------------------------------------------------------------------------------------


@dataclass
class BlockResult:
    """An axis (or derived column): value per donor, ingredient z-scores and notes."""

    name: str
    value: pd.Series
    ingredients: list[IngredientResult]
    z: pd.DataFrame  # samples x ingredient (signed z)
    centers: dict
    scales: dict


def evaluate_block(
    name: str, ingredients: list[Ingredient], ctx: CellContext, settings: Mapping, combine: str = "mean"
) -> BlockResult:
    r"""Combine the signed robust z-scores of a block's ingredients.

    ``combine="mean"`` (default): weighted mean

    .. math:: A_d = \frac{\sum_i w_i\, \sigma_i(z_{id})}{\sum_i w_i\,[z_{id}\ \text{available}]}

    ``combine="max"``: :math:`A_d = \max_i \sigma_i(z_{id})` over the ingredients with
    :math:`w_i > 0`, for axes whose ingredients are alternative lesions (one suffices).
    Ingredients missing for a donor are left out; a donor with none is NaN.
    """
    results = [evaluate_ingredient(ing, ctx) for ing in ingredients]
    zs, centers, scales = {}, {}, {}
    for res in results:
        z, c, s = robust_z(
            res.raw,
            ctx.reference,
            sd_floor=settings["sd_floor"],
            mad_floor=settings["mad_floor"],
            min_scale=settings["min_scale"],
            se=res.se if settings.get("se_floor", True) else None,
        )
        if res.unavailable is None and z.isna().all():
            res.unavailable = "fewer than 2 reference donors have a value"
        zs[res.ingredient.name] = signed(z, res.ingredient.sign)
        centers[res.ingredient.name], scales[res.ingredient.name] = c, s
    z = pd.DataFrame(zs, index=ctx.samples, dtype=float)
    if z.shape[1] == 0:
        return BlockResult(name, pd.Series(np.nan, index=ctx.samples), results, z, centers, scales)
    weights = pd.Series({ing.name: ing.weight for ing in ingredients}, dtype=float)[z.columns]
    if combine == "max":
        value = z.loc[:, weights > 0].max(axis=1, skipna=True).astype(float)
        return BlockResult(name, value, results, z, centers, scales)
    available = z.notna()
    num = (z.fillna(0.0) * weights).sum(axis=1)
    den = (available * weights).sum(axis=1)
    value = (num / den.where(den > 0)).astype(float)
    return BlockResult(name, value, results, z, centers, scales)
