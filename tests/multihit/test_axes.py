"""Known-answer tests of ``multihit/_axes.py`` at the level of one ingredient or one block.

Each test names the mutant it was written to kill (mutation testing, docs/mutation.md): the
per-donor values are built by hand (a spatial table, a handful of cells) so that the expected
robust z and the combined axis can be computed on paper.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from noa_omics.multihit import load_axes, robust_z
from noa_omics.multihit._axes import (
    CellContext,
    Ingredient,
    _reference_quantile_exceeded,
    evaluate_block,
    evaluate_ingredient,
    gene_expression,
)

SETTINGS = {"sd_floor": 0.0, "mad_floor": 0.0, "min_scale": 1e-6, "se_floor": True}
DONORS = pd.Index(["R1", "R2", "R3", "R4", "X"])
REFERENCE = ["R1", "R2", "R3", "R4"]


def _spatial_ctx(table: dict) -> CellContext:
    """A context whose only per-donor input is a spatial table (no cells needed)."""
    cells = pd.Series(list(DONORS))
    return CellContext(sample=cells, cell_type=pd.Series(["sertoli"] * len(cells)),
                       cell_class=pd.Series(["somatic"] * len(cells)), samples=DONORS,
                       reference=REFERENCE, min_cells=1, spatial=pd.DataFrame(table, index=DONORS))


def _spatial(name: str, column: str, weight: float = 1.0) -> Ingredient:
    return Ingredient(block="niche", name=name, signal="spatial", columns=(column,), aggregation="value",
                      weight=weight)


# reference values 1, 2, 4, 10: median 3, MAD 1.5 -> scale 1.4826 * 1.5 (floors off)
SCALE = 1.4826 * 1.5


def test_block_mean_leaves_a_missing_ingredient_out():
    """A donor without a value for one ingredient gets the weighted mean of the others (kills
    ``z.fillna(1.0)``: the missing z must add 0 to the numerator and 0 weight to the denominator)."""
    ctx = _spatial_ctx({"a": [1.0, 2.0, 4.0, 10.0, 7.0], "b": [1.0, 2.0, 4.0, 10.0, np.nan]})
    res = evaluate_block("niche", [_spatial("a", "a", 2.0), _spatial("b", "b", 1.0)], ctx, SETTINGS)
    assert res.value["X"] == pytest.approx((7.0 - 3.0) / SCALE)
    # R1 has both: (2 z_a + 1 z_b) / 3 with z_a = z_b = (1 - 3) / scale
    assert res.value["R1"] == pytest.approx(-2.0 / SCALE)


def test_block_max_ignores_zero_weight_ingredients():
    """``combine="max"`` takes the largest z over the ingredients with weight > 0 (kills
    ``weights >= 0``): a weight-0 ingredient with the highest z is not the axis value."""
    ctx = _spatial_ctx({"a": [1.0, 2.0, 4.0, 10.0, 7.0], "off": [1.0, 2.0, 4.0, 10.0, 100.0]})
    ings = [_spatial("a", "a", 1.0), _spatial("off", "off", 0.0)]
    res = evaluate_block("genetic", ings, ctx, SETTINGS, combine="max")
    assert res.z.loc["X", "off"] == pytest.approx(97.0 / SCALE)  # computed, but carries no weight
    assert res.value["X"] == pytest.approx(4.0 / SCALE)


def test_combine_is_read_from_the_config():
    """Each block's ``combine`` comes from its own entry (kills a parser that always says mean):
    the shipped axes.yaml makes the genetic axis ``max``; an override changes another axis."""
    config = load_axes()
    assert config.combine["genetic"] == "max"
    assert config.combine["endocrine"] == "mean"
    assert load_axes({"axes": {"endocrine": {"combine": "max"}}}).combine["endocrine"] == "max"
    with pytest.raises(ValueError, match="combine must be one of"):
        load_axes({"axes": {"endocrine": {"combine": "sum"}}})


def test_unavailable_ingredients_keep_their_identity_and_donor_index():
    """An ingredient that cannot be evaluated returns itself, an all-NaN value per donor and a
    reason naming what is missing (kills ``IngredientResult(None, ...)``, ``raw=None`` and a
    reason built from ``list(None)``); the block around it still evaluates."""
    adata = ad.AnnData(np.ones((5, 1), dtype=np.float32))
    adata.var_names = ["XIST"]
    ctx = _spatial_ctx({"a": [1.0, 2.0, 4.0, 10.0, 7.0]})
    ctx.adata = adata
    ctx.scores = pd.DataFrame({"set_a": np.zeros(5)})
    cases = {
        Ingredient(block="genetic", name="tsix", signal="gene", gene="TSIX"): "gene 'TSIX' not in adata.var_names",
        Ingredient(block="oxidative", name="ros", signal="score", gene_sets=(("set_b", 1.0),)):
            "no score for gene set(s) ['set_b']",
        Ingredient(block="niche", name="bt", signal="spatial", columns=("bt_barrier", "barrier")):
            "spatial table has none of the columns ['bt_barrier', 'barrier']",
    }
    for ing, reason in cases.items():
        res = evaluate_ingredient(ing, ctx)
        assert res.ingredient is ing
        assert res.unavailable == reason
        pd.testing.assert_index_equal(res.raw.index, DONORS)
        assert res.raw.isna().all()
        block = evaluate_block(ing.block, [ing, _spatial("a", "a")], ctx, SETTINGS)
        assert block.value["X"] == pytest.approx(4.0 / SCALE)


def test_robust_z_without_two_reference_values_keeps_the_donor_index():
    """Fewer than two reference donors with a value: NaN z for every donor, on the donors'
    own index (kills ``pd.Series(np.nan, index=None)``)."""
    x = pd.Series({"a": 1.0, "b": np.nan, "c": 3.0})
    z, center, scale = robust_z(x, ["a", "b"])
    pd.testing.assert_index_equal(z.index, x.index)
    assert z.isna().all() and np.isnan(center) and np.isnan(scale)


def test_fraction_expressing_counts_single_molecules():
    """``fraction_expressing`` counts a cell as expressing from one count on (kills
    ``values > 1``): 3 of 5 cells of donor A with 1, 1, 2 counts -> 0.6; donor B 1 of 5 -> 0.2."""
    counts = np.array([1, 1, 2, 0, 0, 1, 0, 0, 0, 0], dtype=np.float32)[:, None]
    adata = ad.AnnData(np.hstack([counts, np.full_like(counts, 3)]))
    adata.var_names = ["XIST", "ACTB"]
    donors = pd.Index(["A", "B"])
    ctx = CellContext(sample=pd.Series(["A"] * 5 + ["B"] * 5), cell_type=pd.Series(["sertoli"] * 10),
                      cell_class=pd.Series(["somatic"] * 10), samples=donors, reference=["B"],
                      min_cells=1, adata=adata)
    ing = Ingredient(block="genetic", name="xist", signal="gene", gene="XIST", aggregation="fraction_expressing")
    res = evaluate_ingredient(ing, ctx)
    np.testing.assert_allclose(res.raw.to_numpy(), [0.6, 0.2])


def test_fraction_high_is_strictly_above_the_reference_quantile():
    """``fraction_high`` marks cells strictly above the reference quantile (kills ``>=``): with
    the reference cells 0, 0, 0, 1 the 0.5 quantile is 0, so cells at 0 are not high."""
    values = np.array([0.0, 0.0, 0.0, 1.0, 0.0, 0.5, 2.0])
    ctx = CellContext(sample=pd.Series(["R"] * 4 + ["X"] * 3), cell_type=pd.Series(["sertoli"] * 7),
                      cell_class=pd.Series(["somatic"] * 7), samples=pd.Index(["R", "X"]), reference=["R"],
                      min_cells=1)
    np.testing.assert_array_equal(_reference_quantile_exceeded(values, ctx, 0.5), [0, 0, 0, 1, 0, 1, 1])


def test_gene_expression_of_a_cell_without_counts_is_zero():
    """A cell with no counts at all has expression log1p(0) = 0, not 0 / 0 (kills the empty-cell
    guard ``totals == 1``); the other cell is log1p(10^4 x / total) by hand."""
    adata = ad.AnnData(sparse.csr_matrix(np.array([[0, 0, 0], [3, 1, 0]], dtype=np.float32)))
    adata.var_names = ["XIST", "A", "B"]
    np.testing.assert_allclose(gene_expression(adata, "XIST"), [0.0, np.log1p(3 / 4 * 1e4)])


def test_bad_settings_cell_types_name_the_setting():
    """The error for an unknown germ type names the setting to fix (kills a misspelt location)."""
    with pytest.raises(ValueError, match=r"^settings\.germ_types: unknown cell type or class 'gonocyte'"):
        load_axes({"settings": {"germ_types": ["gonocyte"]}})
    with pytest.raises(ValueError, match=r"^settings\.tubule_somatic_types: cell types must be strings"):
        load_axes({"settings": {"tubule_somatic_types": [3]}})
