"""Tests of ``scoring/_base.py``, the contract every scoring method shares.

Each test names the mutant it was written to kill (mutation testing, docs/mutation.md).
"""

from __future__ import annotations

import pytest

import noa_omics as noa
from noa_omics.scoring._base import unknown_params


@pytest.mark.parametrize("method", ["score_genes", "aucell", "ucell", "zmean"])
def test_every_method_refuses_unknown_keywords(lognorm, gene_sets, method):
    """A misspelt keyword is an error naming it and the method's own keywords, never silently
    ignored (kills ``unknown = None``, which accepts anything)."""
    with pytest.raises(ValueError, match=rf"method '{method}' got unexpected keyword argument\(s\) \['ctrl_sise'\]"):
        noa.tl.score(lognorm, {"set0": gene_sets["set0"]}, method=method, ctrl_sise=10, inplace=False)


def test_unknown_params_lists_what_the_method_takes():
    """Hand-made case: two unknown names, sorted, and the sorted known ones; nothing for none."""
    with pytest.raises(ValueError, match=r"\['b', 'z'\]; it takes \['a', 'c'\]"):
        unknown_params({"z": 1, "a": 2, "b": 3}, {"c": 0, "a": 0}, "m")
    with pytest.raises(ValueError, match="it takes none"):
        unknown_params({"x": 1}, {}, "m")
    unknown_params({"a": 1}, {"a": 0, "c": 0}, "m")  # known keywords pass
