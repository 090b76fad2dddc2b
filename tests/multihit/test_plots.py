"""Plots of the multi-hit model render (Agg backend) and show what the table holds."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import noa_omics as noa  # noqa: E402
from noa_omics._vocabulary import AXES  # noqa: E402


@pytest.fixture
def table(handmade):
    return noa.tl.multihit(handmade, sample_key="sample", reference="control", condition_key="condition",
                           score_key="scores")


def test_heatmap(table, handmade, tmp_path):
    path = tmp_path / "heatmap.png"
    ax = noa.pl.multihit_heatmap(table, save=str(path))
    assert path.stat().st_size > 0
    image = ax.images[0].get_array()
    assert image.shape == (len(table), len(AXES) + 1)
    # NaN cells (germ apoptosis of the SCO donor) stay masked, not drawn as 0
    assert image.mask[list(table.index).index("P6"), -1]
    # rows name the donor and its condition (issue 17 item 17)
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        f"{i} ({str(c).replace('_', ' ')})" for i, c in zip(table.index, table["condition"])]
    plt.close("all")
    # the AnnData holding uns["noa_multihit"] works too
    ax2 = noa.pl.multihit_heatmap(handmade, annotate=False)
    np.testing.assert_allclose(ax2.images[0].get_array().filled(np.nan), image.filled(np.nan))
    plt.close("all")


def test_profile_bar_and_radar(table):
    ax = noa.pl.multihit_profile(table, "P5")
    assert len(ax.patches) == len(AXES) + 1
    assert "P5" in ax.get_title() and table.loc["P5", "apoptosis_context"].replace("_", " ") in ax.get_title()
    plt.close("all")
    ax = noa.pl.multihit_profile(table, "P5", kind="radar")
    assert ax.name == "polar"
    plt.close("all")
    with pytest.raises(KeyError, match="sample 'nope' not in the table"):
        noa.pl.multihit_profile(table, "nope")
    with pytest.raises(ValueError, match="unknown kind"):
        noa.pl.multihit_profile(table, "P5", kind="pie")


def test_heatmap_and_profile_show_stability(handmade):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stab = noa.tl.multihit_stability(handmade, sample_key="sample", reference="control",
                                         condition_key="condition", score_key="scores", n_boot=2, key_added=None)
    stab.loc["P5", "unstable"] = True
    ax = noa.pl.multihit_heatmap(stab)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert any(lbl.startswith("P5") and "unstable" in lbl for lbl in labels)
    hatched = [p for p in ax.patches if p.get_hatch()]
    assert len(hatched) == 1
    ax = noa.pl.multihit_profile(stab, "P5")
    assert "of resamples" in ax.get_title()
    assert len(ax.collections) == 1  # the interval bars
    plt.close("all")
