"""Composition plots render (Agg) and draw what the compare_composition table holds."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import noa_omics as noa  # noqa: E402


@pytest.fixture(scope="module")
def result():
    cells = noa.datasets.composition_cohort((3, 3), shift={"spermatocyte": 0.3}, seed=0)
    return noa.tl.compare_composition(cells, sample_key="donor", condition_key="condition", reference="control",
                                      level="broad")


def test_bars_stack_to_one_per_donor(result, tmp_path):
    path = tmp_path / "bars.png"
    conditions = {f"case_{i}": "case" for i in (1, 2, 3)} | {f"control_{i}": "control" for i in (1, 2, 3)}
    ax = noa.pl.composition_bars(result, conditions=conditions, save=str(path))
    assert path.stat().st_size > 0
    heights = np.zeros(6)
    for patch in ax.patches:
        heights[int(round(patch.get_x() + patch.get_width() / 2))] += patch.get_height()
    np.testing.assert_allclose(heights, 1.0)
    assert ax.get_xticklabels()[0].get_text().startswith("case_1")
    plt.close("all")


def test_effects_forest_draws_intervals(result):
    ax = noa.pl.composition_effects(result)
    segments = ax.collections[0].get_segments()
    assert len(segments) == len(result)
    germ = result.set_index("cell_type").loc["germ"]
    ys = [s[0][1] for s in segments]
    seg = segments[int(np.argmin(np.abs(np.array(ys) - 0)))]
    assert seg[0][0] == pytest.approx(germ["ci_low"]) and seg[1][0] == pytest.approx(germ["ci_high"])
    with pytest.raises(ValueError, match="no row"):
        noa.pl.composition_effects(result, condition="other")
    bare = result.copy()
    bare.attrs = {}
    with pytest.raises(ValueError, match="counts"):
        noa.pl.composition_bars(bare)
    plt.close("all")
