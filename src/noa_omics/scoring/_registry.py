"""Registry of the scoring methods: adding a method is adding a file that declares a ``META``
(:class:`~noa_omics.scoring._base.MethodMeta`) and listing it here."""

from __future__ import annotations

import pandas as pd

from . import _aucell, _score_genes, _ucell, _zmean
from ._base import MethodMeta

METHODS: dict[str, MethodMeta] = {m.name: m for m in (_score_genes.META, _aucell.META, _ucell.META, _zmean.META)}


def get_method(name: str) -> MethodMeta:
    """The declaration of method ``name``; the error lists the registered methods."""
    if not isinstance(name, str) or name not in METHODS:
        raise ValueError(f"unknown scoring method {name!r}; use one of {list(METHODS)}.")
    return METHODS[name]


def methods() -> pd.DataFrame:
    """One row per scoring method: ``name``, ``description``, ``input``, ``defaults``, ``reference``.

    Examples
    --------
    >>> from noa_omics.scoring import methods
    >>> list(methods()["name"])
    ['score_genes', 'aucell', 'ucell', 'zmean']
    """
    return pd.DataFrame(
        [
            {
                "name": m.name,
                "description": m.description,
                "input": m.input,
                "defaults": dict(m.defaults),
                "reference": m.reference,
            }
            for m in METHODS.values()
        ]
    )
