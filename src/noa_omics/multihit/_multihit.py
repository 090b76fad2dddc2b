"""``noa.tl.multihit``: the multi-hit model per donor.

Each donor (sample) gets one robust z-score per multi-hit axis (genetic, endocrine, oxidative,
epigenetic, inflammation, niche) built from cell-type-appropriate ingredients (``axes.yaml``),
a germ-cell apoptosis level, a histology call from germ-cell composition, and an apoptosis
context (protective, irreversible, potentially_reversible, not_elevated, indeterminate) from an ordered rule
table (``context_rules.yaml``), with a sentence naming the values behind the call.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import yaml
from anndata import AnnData

from .._identifiers import looks_like_ensembl, symbol_view
from .._validation import _preview, check_adata, check_no_infinite, check_obs_key, check_score_table, check_species
from ..genesets import detect_species
from ..genesets import load as load_genesets
from ..scoring import score
from .._vocabulary import AXES, CELL_TYPE_TO_CLASS, CELL_TYPES, GERM_STAGES, HISTOLOGIES
from ..spatial._summary import FOCAL_COLUMNS
from ._axes import CellContext, cell_classes, evaluate_block, load_axes
from ._context import apply_rules, call_histology, evidence_sentence, load_rules

#: Columns of the spatial per-sample table read as a histology call, in order of preference.
SPATIAL_HISTOLOGY_COLUMNS: tuple[str, ...] = ("histology", "majority_histology", "dominant_histology")


def _detect_species(names: pd.Index) -> str:
    species = detect_species(names)
    if species is None:
        raise ValueError(
            "could not tell the species from the gene names (`adata.var_names`, or the `gene_symbols` column); "
            "pass species='human' or species='mouse'."
        )
    return species


def _sample_conditions(obs: pd.DataFrame, sample: pd.Series, condition_key: str) -> pd.Series:
    pairs = pd.DataFrame({"sample": sample.to_numpy(), "condition": obs[condition_key].astype(str).to_numpy()})
    per_sample = pairs.groupby("sample", sort=False)["condition"].unique()
    mixed = per_sample[per_sample.map(len) > 1]
    if len(mixed):
        raise ValueError(
            f"sample(s) {list(mixed.index[:5])} have more than one value of `obs[{condition_key!r}]` "
            f"(e.g. {list(mixed.iloc[0])}); every cell of a sample must share one condition."
        )
    return per_sample.map(lambda v: v[0])


def _resolve_reference(
    reference: Any, samples: pd.Index, conditions: pd.Series | None, condition_key: str | None
) -> list[str]:
    """Reference sample ids from a condition value, a list of samples, or None (all samples)."""
    if reference is None:
        refs = list(samples)
    elif isinstance(reference, str):
        if condition_key is not None:
            available = sorted(set(conditions))
            if reference not in available:
                raise ValueError(
                    f"reference condition {reference!r} not found in `obs[{condition_key!r}]`; "
                    f"available values: {available}. Pass one of them, or a list of sample ids."
                )
            refs = list(conditions.index[conditions == reference])
        elif reference in samples:
            refs = [reference]
        else:
            raise ValueError(
                f"reference {reference!r} is not a sample id (available sample ids: {_preview(samples)}); "
                "to use a condition value as the reference, also pass condition_key=."
            )
    elif isinstance(reference, Sequence) or isinstance(reference, (pd.Index, np.ndarray, set)):
        refs = [str(r) for r in reference]
        missing = [r for r in refs if r not in samples]
        if missing:
            raise ValueError(
                f"reference sample(s) {missing} not found in the sample column; "
                f"available sample ids: {_preview(samples)}."
            )
    else:
        raise TypeError(
            f"`reference` must be None, a condition value (with condition_key) or a list of sample ids, "
            f"got {type(reference).__name__}."
        )
    if len(refs) < 2:
        raise ValueError(
            f"reference {reference!r} selects {len(refs)} sample(s) ({refs}); at least 2 reference samples "
            "are needed for the median/MAD standardisation (3 or more recommended)."
        )
    return refs


def _per_cell_scores(
    adata: AnnData,
    view: AnnData,
    needed: list[str],
    *,
    score_key: str | None,
    method: str,
    species: str,
    collection: Any,
) -> pd.DataFrame:
    """Per-cell scores of the ``needed`` sets: from ``obsm[score_key]``, the sets absent from it
    scored here from expression (``view``: symbol-named, see :mod:`noa_omics._identifiers`)."""
    to_score = list(needed)
    scores = None
    if score_key is not None:
        table = check_score_table(adata, score_key)
        have = [s for s in needed if s in table.columns]
        to_score = [s for s in needed if s not in table.columns]
        absent = [s for s in to_score if s not in collection]
        if absent:
            check_score_table(adata, score_key, sets=needed)  # raises, naming the sets
        scores = table[have].astype(float)
        check_no_infinite(scores, name=f"`adata.obsm[{score_key!r}]`")
        if to_score:
            warnings.warn(
                f"gene set(s) {to_score} of the multi-hit axes are not in `adata.obsm[{score_key!r}]`; they are "
                f"scored here from the expression with method={method!r}.",
                UserWarning,
                stacklevel=3,
            )
    if to_score:
        gene_sets = {name: list(collection[name].genes) for name in to_score}
        try:
            computed = score(view, gene_sets, method=method, species=species, inplace=False)
        except ValueError as err:
            if score_key is None:
                raise
            try:  # not in the table and not scorable here: the KeyError names the sets
                check_score_table(adata, score_key, sets=needed)
            except KeyError as missing:
                raise KeyError(f"{missing.args[0]} Scoring them from the expression failed too: {err}") from None
            raise
        computed = pd.DataFrame(computed, index=adata.obs_names).reindex(columns=to_score)
        scores = computed if scores is None else pd.concat([scores, computed], axis=1)
    return scores.reindex(columns=needed).astype(float)


def _warn_unavailable(unavailable: list[str], ids: Any) -> None:
    """One warning naming every ingredient left out of its axis for all donors, and why."""
    if not unavailable:
        return
    hint = ""
    if ids.column is None and looks_like_ensembl(ids.names):
        hint = (" The gene names are Ensembl ids: pass gene_symbols='<var column with symbols>' so that gene "
                "ingredients (e.g. XIST) can be read.")
    warnings.warn(
        f"{len(unavailable)} multi-hit ingredient(s) could not be measured in any donor and are left out of their "
        f"axes: {'; '.join(unavailable)}.{hint}",
        UserWarning,
        stacklevel=3,
    )


def _spatial_table(spatial: Any, sample_key: str) -> pd.DataFrame | None:
    if spatial is None:
        return None
    table = spatial.set_index(sample_key) if sample_key in spatial.columns else spatial
    table = table.copy()
    table.index = table.index.astype(str)
    if not table.index.is_unique:
        raise ValueError(
            "`spatial` must have one row per sample (duplicated sample ids in its index); "
            "pass the per-sample table from noa.spatial.niche_summary, not the per-tubule metrics."
        )
    return table


def _settings_types(tokens: Sequence[str]) -> list[str]:
    """Fine cell types named by tokens (fine types, broad classes or "all")."""
    out = []
    for t in tokens:
        if t == "all":
            out.extend(CELL_TYPES)
        elif t in CELL_TYPES:
            out.append(t)
        else:
            out.extend(k for k, v in CELL_TYPE_TO_CLASS.items() if v == t)
    return out


def _uns_safe(value: Any) -> Any:
    """Replace None (not writable to h5ad) by the string "None", recursively."""
    if value is None:
        return "None"
    if isinstance(value, Mapping):
        return {str(k): _uns_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_uns_safe(v) for v in value]
    return value


def multihit(
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
    key_added: str = "noa_multihit",
    inplace: bool = True,
) -> pd.DataFrame:
    r"""Multi-hit profile, germ-cell apoptosis and apoptosis context per donor.

    For every sample (``obs[sample_key]``; one sample = one donor) and every ingredient of
    ``axes.yaml`` (a gene-set score averaged over the donor's cells of the right type, a gene's
    expression, a cell-type proportion or a spatial metric), the per-donor value :math:`x_{id}`
    is standardised against the reference donors :math:`R`:

    .. math::

        z_{id} = \frac{x_{id} - \operatorname{median}_{r\in R} x_{ir}}{s_i},\quad
        s_i = \max\!\left(1.4826\,\operatorname{MAD}_{r\in R}(x_{ir}),\;
              \beta\,\operatorname{SD}_{r\in R}(x_{ir}),\;
              \alpha\,\operatorname{SD}_d(x_{id}),\;\varepsilon\right)

    (:math:`\beta` = 0.5, :math:`\alpha` = ``settings.mad_floor`` = 0.1, :math:`\varepsilon` =
    ``settings.min_scale``); each donor's scale is further floored by the standard error of its own
    value over its cells, :math:`\max(s_i, \mathrm{SE}_{id})`, so a donor with few cells cannot
    look extreme by chance. Each axis combines the signed ingredient z-scores that are available
    for the donor: the weighted mean :math:`A_d = \sum_i w_i\,\sigma_i z_{id} / \sum_i w_i`
    (:math:`\sigma_i` = +1, -1 or :math:`|\cdot|`) by default, or the largest signed z
    (``combine: max``, used by the genetic axis, where one hit such as an AZF deletion or an extra
    X suffices). Per-cell scores are first centred per fine cell type on the reference
    donors' cells (``adjust: true``), so a donor's cell-type composition does not move its value.

    Parameters
    ----------
    adata
        Cells x genes; ``obs`` holds the sample and cell-type columns.
    sample_key
        ``obs`` column with the sample (donor) id; one output row per value (ids used as strings).
    reference
        Reference donors: a condition value (needs ``condition_key``), a list of sample ids, or
        None to standardise against all samples (then a z-score says how unusual a donor is within
        the cohort, not relative to controls).
    condition_key
        ``obs`` column with the condition (copied to the output as ``condition``).
    cell_type_key
        ``obs`` column with fine cell types of the vocabulary (``noa.tl.annotate_testis``).
    score_key
        ``obsm`` key of precomputed per-cell scores (``noa.tl.score``); None scores the needed
        gene sets here with ``method``. Sets absent from the table are scored here (with a
        warning); gene ingredients (e.g. XIST) are always read from the expression.
    method
        Scoring method passed to ``noa.tl.score`` (``score_genes``, ``aucell``, ``ucell``, ``zmean``).
    spatial
        Per-sample spatial table (``noa.spatial.niche_summary``), indexed by sample or with a
        ``sample_key`` column: its niche-collapse column joins the niche axis and its
        ``histology`` column, when present, replaces the composition-based histology call.
    axes, rules
        Overrides of ``axes.yaml`` / ``context_rules.yaml``: a YAML path or a dict merged into the
        shipped file (mappings key by key; lists replaced; ``None`` removes an entry).
    species
        ``human`` or ``mouse``; detected from ``var_names`` when None.
    layer
        Layer to score and read gene expression from (default ``X``; ``"raw"``: ``adata.raw.X``).
    gene_symbols
        ``var`` column with gene symbols (None: ``var_names``, or the well-known symbol column
        when they are Ensembl ids, e.g. CELLxGENE's ``feature_name``; :mod:`noa_omics._identifiers`).
        An ingredient that cannot be measured in any donor (a gene or gene set absent, too few
        cells) is left out of its axis with one warning naming it and why.
    allow_missing_axes
        If False (default), an axis that no ingredient can measure in any donor raises a
        ValueError naming the ingredients and why; if True it is NaN.
    key_added
        ``adata.uns`` key of the result.
    inplace
        Store the table, the parameters, both configurations, the per-ingredient values and the
        gene-set library version in ``adata.uns[key_added]``.

    Returns
    -------
    DataFrame indexed by sample with one column per axis (:data:`~noa_omics._vocabulary.AXES`),
    ``germ_apoptosis`` and ``meiotic_checkpoint`` (robust z), ``germ_fraction`` (germ / (germ +
    Sertoli)), ``most_advanced_stage``, ``histology``, ``histology_source``, ``apoptosis_context``,
    ``rule``, ``evidence``, ``missing_ingredients``, ``n_cells``, ``is_reference``, with
    ``condition_key`` ``condition``, and, when ``spatial`` carries them, the focal-spermatogenesis
    columns of :func:`noa_omics.spatial.niche_summary` (``frac_complete_tubules``,
    ``best_johnsen_like``, ``spermatid_tubules_per_mm2`` and their intervals), which
    :func:`noa_omics.tl.retrieval_model` then uses as features.

    References
    ----------
    Robust z: Iglewicz B & Hoaglin DC (1993), *How to Detect and Handle Outliers* (MAD scaled by
    1.4826). Rule basis: see ``docs/multihit.md``.
    """
    check_adata(adata)
    check_obs_key(adata, sample_key, what="sample_key column")
    check_obs_key(adata, cell_type_key, what="cell_type_key column")
    check_obs_key(adata, condition_key, what="condition_key column", allow_none=True)
    if spatial is not None and not isinstance(spatial, pd.DataFrame):
        raise TypeError(
            f"`spatial` must be a per-sample DataFrame (e.g. noa.spatial.niche_summary(...)), got {type(spatial).__name__}."
        )
    obs = adata.obs
    if obs[sample_key].isna().any():
        raise ValueError(
            f"`obs[{sample_key!r}]` has {int(obs[sample_key].isna().sum())} missing value(s); "
            "give every cell a sample id (or subset to the cells that have one)."
        )
    sample = obs[sample_key].astype(str)
    cell_type = obs[cell_type_key].astype(str)
    if not cell_type.isin(CELL_TYPES).any():
        raise ValueError(
            f"`obs[{cell_type_key!r}]` holds no cell type of the vocabulary {list(CELL_TYPES)} "
            f"(found e.g. {list(pd.unique(cell_type)[:5])}); run `noa.tl.annotate_testis(adata)` or "
            "`noa.tl.harmonize_labels(...)` first."
        )
    samples = pd.Index(sorted(pd.unique(sample)), name=sample_key)
    conditions = _sample_conditions(obs, sample, condition_key).reindex(samples) if condition_key else None
    refs = _resolve_reference(reference, samples, conditions, condition_key)
    view, ids, _ = symbol_view(adata, layer=layer, gene_symbols=gene_symbols)
    species = check_species(species) or _detect_species(ids.names)

    cfg = load_axes(axes, species=species)
    fields = set(AXES) | set(cfg.derived) | {"germ_fraction", "germ_per_sertoli", "histology", "most_advanced_stage"}
    rule_table = load_rules(rules, fields=fields)

    collection = load_genesets(species)
    needed = cfg.gene_sets()
    if score_key is None:
        missing = [s for s in needed if s not in collection]
        if missing:
            raise KeyError(
                f"gene set(s) {missing} named in the multi-hit axes are not in the {species} library "
                f"(version {collection.version}); available: {_preview(collection.names, 40)}. "
                "Fix the names in `axes=` or add the sets."
            )
    scores = _per_cell_scores(
        adata, view, needed, score_key=score_key, method=method, species=species, collection=collection
    )
    spatial_table = _spatial_table(spatial, sample_key)

    ctx = CellContext(
        sample=sample,
        cell_type=cell_type,
        cell_class=cell_classes(cell_type),
        samples=samples,
        reference=refs,
        min_cells=cfg.settings["min_cells"],
        scores=scores,
        adata=view,  # symbol-named view of the chosen matrix: gene ingredients by symbol
        layer=None,
        spatial=spatial_table,
    )
    blocks = {
        name: evaluate_block(name, ings, ctx, cfg.settings, cfg.combine.get(name, "mean"))
        for name, ings in cfg.blocks.items()
    }

    unmeasured = [a for a in AXES if blocks[a].value.isna().all()]
    if unmeasured and not allow_missing_axes:
        lines = []
        for a in unmeasured:
            why = [f"{r.ingredient.name}: {r.unavailable or 'no donor with a value'}" for r in blocks[a].ingredients]
            lines.append(f"{a} <- " + ("; ".join(why) if why else "no ingredients configured"))
        raise ValueError(
            "no ingredient of axis/axes " + ", ".join(unmeasured) + " could be measured in any donor: "
            + " | ".join(lines)
            + ". Add the missing gene sets/genes/cell types, change the ingredients with `axes=`, "
            "or pass allow_missing_axes=True to get NaN."
        )

    # histology from germ-cell composition (or from the spatial tubule calls)
    germ_types = _settings_types(cfg.settings["germ_types"])
    somatic_types = _settings_types(cfg.settings["tubule_somatic_types"])
    stage_counts = (
        pd.crosstab(sample, cell_type).reindex(index=samples, columns=list(GERM_STAGES), fill_value=0)
    )
    stage_counts = stage_counts[[s for s in GERM_STAGES if s in germ_types]]
    n_tubule = (
        pd.Series(cell_type.isin(germ_types + somatic_types).to_numpy(), index=sample.to_numpy())
        .groupby(level=0)
        .sum()
        .reindex(samples, fill_value=0)
    )
    histo = call_histology(stage_counts, n_tubule, refs, rule_table.histology)
    histo["histology_source"] = "composition"
    if spatial_table is not None:
        col = next((c for c in SPATIAL_HISTOLOGY_COLUMNS if c in spatial_table.columns), None)
        if col is not None:
            sp = spatial_table[col].reindex(samples)
            ok = sp.isin(HISTOLOGIES)
            histo.loc[ok, "histology"] = sp[ok]
            histo.loc[ok, "histology_source"] = "spatial"

    table = pd.DataFrame(index=samples)
    for a in AXES:
        table[a] = blocks[a].value
    for d in cfg.derived:
        table[d] = blocks[d].value
    table = table.join(histo)

    # missing ingredients per donor (cells absent) and evidence
    notes: dict[str, list[tuple[str, str]]] = {s: [] for s in samples}
    for name, block in blocks.items():
        for res in block.ingredients:
            if res.unavailable is not None:
                continue
            for s, why in res.reasons.items():
                notes[s].append((f"{name}.{res.ingredient.name}", why))
    unavailable = [
        f"{name}.{res.ingredient.name}: {res.unavailable}"
        for name, block in blocks.items()
        for res in block.ingredients
        if res.unavailable is not None
    ]
    _warn_unavailable(unavailable, ids)
    z_fields = set(AXES) | set(cfg.derived)
    contexts, rule_ids, evidence = [], [], []
    for s in samples:
        row = table.loc[s].to_dict()
        rule, facts = apply_rules(rule_table, row)
        contexts.append(rule["context"])
        rule_ids.append(str(rule.get("id")))
        evidence.append(evidence_sentence(s, rule, facts, row, z_fields=z_fields, axes=AXES, notes=notes[s]))
    table["apoptosis_context"] = contexts
    table["rule"] = rule_ids
    table["evidence"] = evidence
    table["missing_ingredients"] = ["; ".join(f"{label} ({why})" for label, why in notes[s]) for s in samples]
    table["n_cells"] = sample.value_counts().reindex(samples).astype(int)
    table["is_reference"] = samples.isin(refs)
    if conditions is not None:
        table["condition"] = conditions.astype(str)
    focal = [c for c in FOCAL_COLUMNS if spatial_table is not None and c in spatial_table.columns]
    for col in focal:
        # focal spermatogenesis (niche_summary): the tubules micro-TESE looks for; retrieval features
        table[col] = pd.to_numeric(spatial_table[col].reindex(samples), errors="coerce").to_numpy()
    ordered = list(AXES) + list(cfg.derived) + [
        "germ_fraction", "germ_per_sertoli", "most_advanced_stage", "histology", "histology_source", "apoptosis_context", "rule",
        "evidence", "missing_ingredients", "n_cells", "is_reference",
    ] + (["condition"] if conditions is not None else []) + focal
    table = table[ordered]

    if inplace:
        detail = []
        for name, block in blocks.items():
            for res in block.ingredients:
                ing = res.ingredient
                n = res.n_cells.reindex(samples) if res.n_cells is not None else pd.Series(np.nan, index=samples)
                for s in samples:
                    detail.append(
                        {
                            "sample": s,
                            "block": name,
                            "ingredient": ing.name,
                            "raw": float(res.raw[s]),
                            "z": float(block.z.loc[s, ing.name]),
                            "weight": ing.weight,
                            "n_cells": float(n[s]),
                            "reference_median": float(block.centers[ing.name]),
                            "reference_scale": float(block.scales[ing.name]),
                        }
                    )
        adata.uns[key_added] = {
            "table": table.reset_index(),
            "ingredients": pd.DataFrame(detail),
            "params": _uns_safe(
                {
                    "sample_key": sample_key,
                    "reference": refs,
                    "reference_arg": reference if isinstance(reference, (str, type(None))) else list(map(str, reference)),
                    "condition_key": condition_key,
                    "cell_type_key": cell_type_key,
                    "score_key": score_key,
                    "method": method,
                    "species": species,
                    "layer": layer,
                    "gene_symbols": ids.column,
                    "spatial_given": spatial is not None,
                    "allow_missing_axes": allow_missing_axes,
                }
            ),
            "unavailable_ingredients": unavailable or ["None"],
            "axes_config": yaml.safe_dump(cfg.raw, sort_keys=False),
            "rules": yaml.safe_dump(rule_table.raw, sort_keys=False),
            "geneset_version": str(collection.version),
        }
    return table
