"""tubule_agreement / tubule_recovery against hand-computed answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import noa_omics as noa


def test_perfect_and_relabelled():
    ref = pd.Series(["a"] * 5 + ["b"] * 5 + [None] * 3)
    pred = pd.Series(["x"] * 5 + ["y"] * 5 + [None] * 3)
    out = noa.spatial.tubule_agreement(pred, ref)
    assert out["recovered_fraction"] == 1.0
    assert out["ari"] == pytest.approx(1.0)
    assert (out["n_split"], out["n_merged"], out["n_missed"]) == (0, 0, 0)
    assert out["interstitial_assigned"] == 0.0


def test_split_merge_missed_counts():
    # a: split 5/5 ; b + c merged into one predicted tubule ; d missed ; e recovered at 9/10 coverage
    ref = ["a"] * 10 + ["b"] * 10 + ["c"] * 10 + ["d"] * 10 + ["e"] * 10 + [None] * 4
    pred = (["p1"] * 5 + ["p2"] * 5 + ["m"] * 20 + [None] * 10 + ["e"] * 9 + [None]
            + ["e", None, None, None])
    out = noa.spatial.tubule_agreement(np.array(pred, dtype=object), np.array(ref, dtype=object))
    table = noa.spatial.tubule_recovery(np.array(pred, dtype=object), np.array(ref, dtype=object)).set_index("tubule")
    assert table.loc["e", "recovered"]  # coverage 0.9, purity 9/10
    assert table.loc["e", "purity"] == pytest.approx(0.9)
    assert table.loc["a", "split"] and table.loc["d", "missed"]
    assert table.loc["b", "merged"] and table.loc["c", "merged"]
    assert out["recovered_fraction"] == pytest.approx(1 / 5)
    assert (out["n_split"], out["n_merged"], out["n_missed"]) == (1, 2, 1)
    assert out["interstitial_assigned"] == pytest.approx(1 / 4)


def test_cells_mask_and_errors():
    ref = pd.Series(["a", "a", "b", "b"])
    pred = pd.Series(["x", "y", "z", "z"])
    masked = noa.spatial.tubule_agreement(pred, ref, cells=np.array([True, False, True, True]))
    assert masked["recovered_fraction"] == 1.0
    with pytest.raises(ValueError, match="no cell"):
        noa.spatial.tubule_agreement(pred, pd.Series([None] * 4))
    with pytest.raises(ValueError, match="one label per cell"):
        noa.spatial.tubule_agreement(np.array(["x"]), np.array(["a", "b"], dtype=object))
    with pytest.raises(ValueError, match="min_purity"):
        noa.spatial.tubule_agreement(pred, ref, min_purity=0)
