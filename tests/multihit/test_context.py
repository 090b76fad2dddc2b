"""Known-answer tests of ``multihit/_context.py``: rule operators, rule validation, the evidence
sentence and the histology call, each on a hand-made row or count table.

Each test names the mutant it was written to kill (mutation testing, docs/mutation.md).
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from noa_omics.multihit import load_rules
from noa_omics.multihit._context import _compare, _fmt_fact, call_histology, evaluate, evidence_sentence

SETTINGS = {"sco_max_germ_fraction": 0.03, "stage_min_fraction": 0.02, "stage_min_cells": 3,
            "arrest_before": "round_spermatid", "hypo_max_ratio": 0.5}
STAGES = ["SSC", "spermatogonia", "spermatocyte", "round_spermatid", "elongating_spermatid"]


def test_every_operator_by_hand():
    """Each operator of the rule language on values it must accept and reject (kills a
    misspelt ``in`` branch, ``in`` read as ``not_in``, and a lost ``le``)."""
    assert _compare("sertoli_cell_only", "in", ["sertoli_cell_only", "maturation_arrest"])
    assert not _compare("normal", "in", ["sertoli_cell_only", "maturation_arrest"])
    assert _compare("normal", "not_in", ["sertoli_cell_only"])
    assert not _compare("sertoli_cell_only", "not_in", "sertoli_cell_only")
    assert _compare(3.0, "le", 3.0) and not _compare(3.1, "le", 3.0)
    assert _compare(3.0, "ge", 3.0) and not _compare(3.0, "gt", 3.0) and _compare(2.9, "lt", 3.0)
    assert _compare("normal", "eq", "normal") and _compare("normal", "ne", "sco")
    assert not _compare(float("nan"), "le", 3.0)  # a missing value fails every comparison
    assert _compare(float("nan"), "missing", True) and _compare(1.0, "missing", False)


def test_field_absent_from_the_row_reads_as_nan():
    """A field the row does not have is NaN (kills ``row.get(key)`` -> None): ``missing: true``
    holds with the value NaN in its fact, and the evidence sentence formats it as a z."""
    ok, facts = evaluate({"germ_apoptosis": {"missing": True}}, {}, {})
    assert ok and len(facts) == 1 and facts[0][:3] == ("germ_apoptosis", "missing", True)
    assert math.isnan(facts[0][3])
    text = _fmt_fact(*facts[0], z_fields={"germ_apoptosis"})
    assert text.startswith("germ apoptosis z=+nan")


def test_fact_of_an_operator_without_a_symbol_names_the_operator():
    """``missing`` has no symbol: the fact shows the operator's own name (kills
    ``_OP_TEXT.get(op, None)``, which prints "None")."""
    text = _fmt_fact("germ_apoptosis", "missing", False, 1.23, {"germ_apoptosis"})
    assert text == "germ apoptosis z=+1.2 (missing 0)"
    assert _fmt_fact("genetic", "ge", 3.0, 3.46, {"genetic"}) == "genetic z=+3.5 (>= 3)"


@pytest.mark.parametrize("when", [{"germ_apoptosis": 2.0}, {"germ_apoptosis": {}}])
def test_field_without_operator_is_rejected(when):
    """A field must map to ``{operator: value}``; a bare number or an empty mapping is an error
    naming the field (kills the ``or`` -> ``and`` of that check)."""
    rules = {"rules": [{"id": "r", "context": "indeterminate", "when": when}]}
    with pytest.raises(ValueError, match=r"rules\[r\]\.when: field 'germ_apoptosis' needs \{operator: value\}"):
        load_rules(rules)


def test_bad_context_names_the_given_value():
    """The error for an unknown context shows the value that was given (kills a misspelt key)."""
    with pytest.raises(ValueError, match=r"rules\[r1\]: context must be one of .* got 'apoptotic'\."):
        load_rules({"rules": [{"id": "r1", "context": "apoptotic", "when": {}}]})


ROW = {"germ_apoptosis": 4.2, "genetic": 0.5, "endocrine": 3.3, "histology": "maturation_arrest"}
AXES = ("genetic", "endocrine")


def test_evidence_sentence_of_a_matched_rule():
    """The sentence quotes the rule's reason, the facts, the histology, and counts the
    unevaluable ingredients per reason with singular/plural by hand (kills the reason key,
    the "; not evaluable: " text and both plural mutants)."""
    rule = {"id": "stressor", "context": "potentially_reversible", "reason": "correctable stressor"}
    facts = [("germ_apoptosis", "ge", 3.0, 4.2), ("endocrine", "ge", 3.0, 3.3)]
    notes = [("niche.bt", "no spatial table"), ("genetic.xist", "gene absent"), ("genetic.y", "gene absent")]
    text = evidence_sentence("D1", rule, facts, ROW, z_fields={"germ_apoptosis", "endocrine"}, axes=AXES,
                             notes=notes)
    assert text == ("D1: potentially_reversible (correctable stressor) — germ apoptosis z=+4.2 (>= 3), "
                    "endocrine z=+3.3 (>= 3); histology maturation_arrest; not evaluable: "
                    "1 ingredient (no spatial table), 2 ingredients (gene absent).")
    no_reason = evidence_sentence("D1", {"id": "stressor", "context": "indeterminate"}, facts, {},
                                  z_fields={"germ_apoptosis", "endocrine"}, axes=AXES, notes=[])
    assert no_reason.startswith("D1: indeterminate (stressor) — ")
    assert no_reason.endswith("; histology unknown.")  # no histology in the row


def test_evidence_sentence_falls_back_to_what_fell_short():
    """With only a histology fact and no germ fraction, the sentence shows germ apoptosis and the
    highest axis instead (kills ``not parts and not facts`` and the always-"not evaluable"
    mutant)."""
    rule = {"id": "sco", "context": "irreversible", "reason": "Sertoli-cell-only"}
    facts = [("histology", "eq", "sertoli_cell_only", "sertoli_cell_only")]
    text = evidence_sentence("D2", rule, facts, ROW, z_fields=set(AXES), axes=AXES, notes=[])
    assert text == ("D2: irreversible (Sertoli-cell-only) — germ apoptosis z=+4.2, highest axis endocrine "
                    "z=+3.3; histology maturation_arrest.")
    row = {"genetic": 0.5}
    text = evidence_sentence("D3", rule, [], row, z_fields=set(AXES), axes=AXES, notes=[])
    assert "germ apoptosis not evaluable, highest axis genetic z=+0.5" in text


def _counts(rows: dict) -> pd.DataFrame:
    return pd.DataFrame(rows, index=STAGES).T


def test_histology_calls_by_hand():
    """One sample per call, from counts chosen by hand (kills misspelt call names, the "none"
    stage, and a result index taken from the Series instead of the count table):

    - N: all five stages, 100 germ / 20 Sertoli = 5 per Sertoli cell -> normal (the reference);
    - H: all stages, 40 germ / 20 Sertoli = 2 < 0.5 x 5 -> hypospermatogenesis;
    - M: nothing beyond spermatocytes -> maturation_arrest;
    - S: 10 germ cells, 2 per stage (< 3 cells each: no stage present) -> sertoli_cell_only, stage "none";
    - Z: 1 germ cell of 101 tubule cells (<= 3 %) -> sertoli_cell_only.

    The tubule counts are given in another sample order than the count table.
    """
    counts = _counts({
        "N": [20, 20, 20, 20, 20], "H": [8, 8, 8, 8, 8], "M": [30, 30, 40, 0, 0],
        "S": [2, 2, 2, 2, 2], "Z": [0, 1, 0, 0, 0],
    })
    germ = counts.sum(axis=1)
    n_tubule = (germ + pd.Series({"N": 20, "H": 20, "M": 20, "S": 20, "Z": 100})).loc[["Z", "S", "M", "H", "N"]]
    out = call_histology(counts, n_tubule, ["N"], SETTINGS)
    assert list(out.index) == ["N", "H", "M", "S", "Z"]
    assert out["histology"].to_dict() == {"N": "normal", "H": "hypospermatogenesis", "M": "maturation_arrest",
                                          "S": "sertoli_cell_only", "Z": "sertoli_cell_only"}
    assert out["most_advanced_stage"].to_dict() == {"N": "elongating_spermatid", "H": "elongating_spermatid",
                                                    "M": "spermatocyte", "S": "none", "Z": "none"}
    assert out.loc["H", "germ_per_sertoli"] == pytest.approx(2.0)
    assert out.loc["Z", "germ_fraction"] == pytest.approx(1 / 101)
