"""Apoptosis-context rule table (``context_rules.yaml``) and the per-sample histology call.

The rules are data: an ordered list of conditions on the donor's axis z-scores,
``germ_apoptosis``, ``histology`` and friends; the first rule that holds gives the donor's
``apoptosis_context``. Evaluation also returns the facts that made the rule hold, which become
the donor's ``evidence`` sentence.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._vocabulary import APOPTOSIS_CONTEXTS, GERM_STAGES
from ._axes import read_config

DEFAULT_RULES_PATH = Path(__file__).with_name("context_rules.yaml")

OPERATORS: tuple[str, ...] = ("gt", "ge", "lt", "le", "eq", "ne", "in", "not_in", "missing")
_OP_TEXT = {"gt": ">", "ge": ">=", "lt": "<", "le": "<=", "eq": "=", "ne": "!=", "in": "in", "not_in": "not in"}
_HISTOLOGY_DEFAULTS = {
    "sco_max_germ_fraction": 0.03,
    "stage_min_fraction": 0.02,
    "stage_min_cells": 3,
    "arrest_before": "round_spermatid",
    "hypo_max_ratio": 0.5,
}


@dataclass
class Rules:
    """Validated rule table."""

    raw: dict
    thresholds: dict[str, float]
    histology: dict[str, Any]
    rules: list[dict]


def _walk(cond: Any, where: str, thresholds: Mapping, fields: set | None) -> None:
    """Validate a condition tree (raises ValueError naming the rule and the problem)."""
    if not isinstance(cond, Mapping):
        raise ValueError(f"{where}: a condition must be a mapping, got {cond!r}.")
    for key, value in cond.items():
        if key in ("any", "all"):
            items = value if isinstance(value, list) else [value]
            for item in items:
                _walk(item, f"{where}.{key}", thresholds, fields)
        elif key == "not":
            _walk(value, f"{where}.not", thresholds, fields)
        else:
            if fields is not None and key not in fields:
                raise ValueError(f"{where}: unknown field {key!r}; fields are {sorted(fields)}.")
            if not isinstance(value, Mapping) or not value:
                raise ValueError(f"{where}: field {key!r} needs {{operator: value}}, e.g. {{ge: 2.0}}; got {value!r}.")
            for op, operand in value.items():
                if op not in OPERATORS:
                    raise ValueError(f"{where}: unknown operator {op!r} for {key!r}; use one of {list(OPERATORS)}.")
                if isinstance(operand, str) and operand.startswith("$") and operand[1:] not in thresholds:
                    raise ValueError(
                        f"{where}: threshold {operand!r} is not defined; thresholds are {sorted(thresholds)}."
                    )


def load_rules(rules: str | os.PathLike | Mapping | None = None, *, fields: set | None = None) -> Rules:
    """Load and validate ``context_rules.yaml`` merged with the user's override ``rules``.

    Parameters
    ----------
    rules
        None (the shipped file), a YAML path or a dict; ``thresholds`` and ``histology`` are merged
        key by key, a given ``rules`` list replaces the default list.
    fields
        Names a condition may test (validated when given).
    """
    raw = read_config(rules, DEFAULT_RULES_PATH, what="rules")
    thresholds = dict(raw.get("thresholds") or {})
    for name, value in thresholds.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ValueError(f"rules: threshold {name!r} must be a number, got {value!r}.")
    histology = {**_HISTOLOGY_DEFAULTS, **(raw.get("histology") or {})}
    if histology["arrest_before"] not in GERM_STAGES:
        raise ValueError(
            f"rules: histology.arrest_before must be a germ stage {list(GERM_STAGES)}, got {histology['arrest_before']!r}."
        )
    for key in ("sco_max_germ_fraction", "stage_min_fraction", "hypo_max_ratio"):
        if not isinstance(histology[key], (int, float)) or not 0 <= histology[key] <= 1:
            raise ValueError(f"rules: histology.{key} must be a number in [0, 1], got {histology[key]!r}.")
    rule_list = raw.get("rules")
    if not isinstance(rule_list, list) or not rule_list:
        raise ValueError("rules: `rules` must be a non-empty list of {id, context, when}.")
    ids = set()
    for i, rule in enumerate(rule_list):
        if not isinstance(rule, Mapping):
            raise ValueError(f"rules[{i}] must be a mapping with id, context and when.")
        rid = rule.get("id", f"rule_{i}")
        if rid in ids:
            raise ValueError(f"rules: duplicated rule id {rid!r}.")
        ids.add(rid)
        if rule.get("context") not in APOPTOSIS_CONTEXTS:
            raise ValueError(
                f"rules[{rid}]: context must be one of {list(APOPTOSIS_CONTEXTS)}, got {rule.get('context')!r}."
            )
        _walk(rule.get("when") or {}, f"rules[{rid}].when", thresholds, fields)
    return Rules(raw=raw, thresholds=thresholds, histology=histology, rules=[dict(r) for r in rule_list])


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def _is_missing(x: Any) -> bool:
    if x is None:
        return True
    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def _compare(value: Any, op: str, operand: Any) -> bool:
    if op == "missing":
        return _is_missing(value) == bool(operand)
    if _is_missing(value):
        return False
    if op in ("in", "not_in"):
        operand = list(operand) if isinstance(operand, (list, tuple, set)) else [operand]
        return (value in operand) == (op == "in")
    if op in ("eq", "ne"):
        return (value == operand) == (op == "eq")
    try:
        v, o = float(value), float(operand)
    except (TypeError, ValueError):
        return False
    return {"gt": v > o, "ge": v >= o, "lt": v < o, "le": v <= o}[op]


def _resolve(operand: Any, thresholds: Mapping) -> Any:
    if isinstance(operand, str) and operand.startswith("$"):
        return thresholds[operand[1:]]
    return operand


def evaluate(cond: Mapping, row: Mapping, thresholds: Mapping) -> tuple[bool, list[tuple]]:
    """Whether ``cond`` holds for ``row``, with the facts ``(field, op, operand, value)`` behind it."""
    facts: list[tuple] = []
    for key, value in cond.items():
        if key in ("all", "any"):
            items = value if isinstance(value, list) else [value]
            results = [evaluate(item, row, thresholds) for item in items]
            if key == "all":
                ok = all(r[0] for r in results)
                sub = [f for r in results for f in r[1]]
            else:
                # `any` given as one mapping means "any of its entries".
                if not isinstance(value, list):
                    results = [evaluate({k: v}, row, thresholds) for k, v in value.items()]
                ok = any(r[0] for r in results)
                sub = [f for r in results if r[0] for f in r[1]]
            if not ok:
                return False, []
            facts.extend(sub)
        elif key == "not":
            ok, _ = evaluate(value, row, thresholds)
            if ok:
                return False, []
        else:
            x = row.get(key, np.nan)
            for op, operand in value.items():
                operand = _resolve(operand, thresholds)
                if not _compare(x, op, operand):
                    return False, []
                facts.append((key, op, operand, x))
    return True, facts


def apply_rules(rules: Rules, row: Mapping) -> tuple[dict, list[tuple]]:
    """First rule whose condition holds for ``row`` and its facts (the last rule should be a catch-all)."""
    for rule in rules.rules:
        ok, facts = evaluate(rule.get("when") or {}, row, rules.thresholds)
        if ok:
            return rule, facts
    return {"id": "no_rule", "context": "indeterminate", "reason": "no rule matched"}, []


# --------------------------------------------------------------------------------------------
# Evidence sentence
# --------------------------------------------------------------------------------------------

_LABELS = {
    "germ_apoptosis": "germ apoptosis",
    "meiotic_checkpoint": "meiotic checkpoint",
    "germ_fraction": "germ fraction",
    "most_advanced_stage": "most advanced stage",
}


def _fmt_fact(field: str, op: str, operand: Any, value: Any, z_fields: set) -> str:
    label = _LABELS.get(field, field)
    if field in z_fields:
        return f"{label} z={float(value):+.1f} ({_OP_TEXT.get(op, op)} {operand:g})"
    if isinstance(value, (float, np.floating)):
        return f"{label} {float(value):.2f} ({_OP_TEXT.get(op, op)} {operand})"
    return f"{label} {value}"


def evidence_sentence(
    sample: str,
    rule: Mapping,
    facts: list[tuple],
    row: Mapping,
    *,
    z_fields: set,
    axes: tuple,
    notes: list[tuple[str, str]],
) -> str:
    """One readable sentence naming the values behind a donor's call.

    ``notes`` are ``(ingredient, reason)`` pairs of ingredients that could not be evaluated for
    this donor; they are summarised per reason.
    """
    context = rule["context"]
    shown = [f for f in facts if f[0] != "histology"]
    parts = [_fmt_fact(*f, z_fields=z_fields) for f in shown]
    if not parts and facts:
        gf = row.get("germ_fraction", np.nan)
        if not _is_missing(gf):
            parts.append(f"germ fraction {float(gf):.2f}")
    if not parts or not facts:
        # catch-all: show what fell short
        parts = []
        ga = row.get("germ_apoptosis", np.nan)
        top = [(a, row.get(a, np.nan)) for a in axes if not _is_missing(row.get(a, np.nan))]
        top.sort(key=lambda t: -t[1])
        bits = []
        bits.append(
            "germ apoptosis not evaluable" if _is_missing(ga) else f"germ apoptosis z={float(ga):+.1f}"
        )
        if top:
            bits.append(f"highest axis {top[0][0]} z={top[0][1]:+.1f}")
        parts = bits
    text = f"{sample}: {context} ({rule.get('reason', rule.get('id'))}) — " + ", ".join(parts)
    text += f"; histology {row.get('histology', 'unknown')}"
    if notes:
        by_reason: dict[str, int] = {}
        for _, reason in notes:
            by_reason[reason] = by_reason.get(reason, 0) + 1
        text += "; not evaluable: " + ", ".join(
            f"{n} ingredient{'s' if n > 1 else ''} ({reason})" for reason, n in by_reason.items()
        )
    return text + "."


# --------------------------------------------------------------------------------------------
# Histology from germ-cell composition
# --------------------------------------------------------------------------------------------


def call_histology(
    stage_counts: pd.DataFrame,
    n_tubule: pd.Series,
    reference: list,
    settings: Mapping,
) -> pd.DataFrame:
    r"""Per-sample histology from the germ-cell composition.

    Parameters
    ----------
    stage_counts
        samples x germ stages (:data:`GERM_STAGES`), cell counts.
    n_tubule
        Germ + Sertoli (tubule) cells per sample.
    reference
        Reference samples (their median germ cells per Sertoli cell is the yardstick of
        hypospermatogenesis).
    settings
        ``histology`` block of the rules.

    Returns
    -------
    DataFrame with ``germ_fraction`` (:math:`g` = germ / (germ + Sertoli)), ``germ_per_sertoli``,
    ``most_advanced_stage`` and ``histology``.

    Notes
    -----
    ``sertoli_cell_only`` when :math:`g \le` ``sco_max_germ_fraction`` or no stage is present;
    else ``maturation_arrest`` when the most advanced stage present (>= ``stage_min_fraction``
    of germ cells and >= ``stage_min_cells`` cells) comes before ``arrest_before``; else
    ``hypospermatogenesis`` when germ cells per Sertoli cell fall below ``hypo_max_ratio`` x the
    reference median; else ``normal``. A sample without germ and Sertoli cells is ``unknown``.
    Germ cells per Sertoli cell is used for the hypospermatogenesis call because :math:`g`
    saturates near 1 in normal testis, so halving the germ cells moves :math:`g` little.
    """
    stage_counts = stage_counts.reindex(columns=list(GERM_STAGES), fill_value=0)
    n_germ = stage_counts.sum(axis=1)
    n_somatic = n_tubule - n_germ
    germ_fraction = (n_germ / n_tubule.where(n_tubule > 0)).astype(float)
    per_sertoli = (n_germ / n_somatic.where(n_somatic > 0)).astype(float)
    frac = stage_counts.div(n_germ.where(n_germ > 0), axis=0)
    present = (frac >= settings["stage_min_fraction"]) & (stage_counts >= settings["stage_min_cells"])
    order = list(GERM_STAGES)
    most_advanced = pd.Series(
        [next((s for s in reversed(order) if present.loc[i, s]), "none") for i in present.index],
        index=present.index,
    )
    ref_ps = per_sertoli.reindex(reference).dropna()
    if not len(ref_ps):
        ref_ps = per_sertoli.dropna()
    ref_median = float(np.median(ref_ps)) if len(ref_ps) else np.nan  # NaN: no hypospermatogenesis call
    arrest_idx = order.index(settings["arrest_before"])
    calls = []
    for s in stage_counts.index:
        g, stage = germ_fraction[s], most_advanced[s]
        if math.isnan(g):
            calls.append("unknown")  # no germ or Sertoli cell: nothing to call from
        elif g <= settings["sco_max_germ_fraction"] or stage == "none":
            calls.append("sertoli_cell_only")
        elif order.index(stage) < arrest_idx:
            calls.append("maturation_arrest")
        elif per_sertoli[s] < settings["hypo_max_ratio"] * ref_median:
            calls.append("hypospermatogenesis")
        else:
            calls.append("normal")
    return pd.DataFrame(
        {
            "germ_fraction": germ_fraction,
            "germ_per_sertoli": per_sertoli,
            "most_advanced_stage": most_advanced,
            "histology": calls,
        },
        index=stage_counts.index,
    )
