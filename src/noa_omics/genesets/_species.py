"""Guess the species and the identifier type of a list of gene identifiers.

Human HGNC symbols are upper case (``TP53``, ``HLA-A``); mouse MGI symbols are capitalised
(``Trp53``, ``Hsd3b6``); Ensembl gene ids start with ``ENSG`` (human) or ``ENSMUSG`` (mouse).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: Fraction of the informative identifiers that must agree for a species call.
MIN_AGREEMENT = 0.75

_ENSEMBL = re.compile(r"^ENS([A-Z]{0,6})G\d{6,}(\.\d+)?$")
_HUMAN_ORF = re.compile(r"^C(\d+|X|Y)orf\d+[A-Z]?$")  # C14orf39: the only lower-case human symbols
_MOUSE_MITO = re.compile(r"^mt-[A-Z][a-z0-9]+$")  # mt-Co1
_MOUSE_H2 = re.compile(r"^H2-[A-Z]")  # H2-K1, H2-Ab1: mouse MHC (human uses HLA-)


def _as_strings(symbols: Iterable[str], *, name: str) -> list[str]:
    if isinstance(symbols, str) or not isinstance(symbols, Iterable):
        raise TypeError(
            f"`{name}` must be an iterable of gene identifiers (e.g. adata.var_names), got {type(symbols).__name__}."
        )
    return [str(s).strip() for s in symbols if s is not None]


def _vote(symbol: str) -> str | None:
    """``"human"``, ``"mouse"`` or None (uninformative) for one identifier."""
    m = _ENSEMBL.match(symbol)
    if m:
        return {"": "human", "MUS": "mouse"}.get(m.group(1))
    if _HUMAN_ORF.match(symbol):
        return "human"
    if _MOUSE_MITO.match(symbol) or _MOUSE_H2.match(symbol):
        return "mouse"
    letters = [c for c in symbol if c.isalpha()]
    if len(letters) < 2:  # H19, 5S: the same in both species
        return None
    if all(c.isupper() for c in letters):
        return "human"
    if letters[0].isupper() and any(c.islower() for c in letters[1:]):
        return "mouse"
    return None


def detect_species(symbols: Iterable[str]) -> str | None:
    """Guess ``"human"`` or ``"mouse"`` from the style of gene identifiers.

    Each identifier votes: Ensembl ``ENSG…`` -> human, ``ENSMUSG…`` -> mouse; a symbol whose
    letters are all upper case (``TP53``) -> human; a capitalised symbol with lower-case letters
    (``Trp53``, ``1700001C19Rik``) -> mouse; ``C14orf39``-style symbols -> human; ``mt-Co1`` and
    ``H2-K1`` -> mouse. Identifiers with fewer than two letters (``H19``) do not vote.

    Parameters
    ----------
    symbols
        Gene identifiers, e.g. ``adata.var_names``.

    Returns
    -------
    str or None
        The species chosen by at least ``MIN_AGREEMENT`` (75%) of the voting identifiers, or None
        when nothing votes or the vote is split (ambiguous).

    Examples
    --------
    >>> detect_species(["TP53", "BAX", "CASP3"])
    'human'
    >>> detect_species(["Trp53", "Bax", "Casp3"])
    'mouse'
    """
    votes = [v for v in map(_vote, _as_strings(symbols, name="symbols")) if v is not None]
    if not votes:
        return None
    n_human = votes.count("human")
    n_mouse = len(votes) - n_human
    if n_human >= MIN_AGREEMENT * len(votes):
        return "human"
    if n_mouse >= MIN_AGREEMENT * len(votes):
        return "mouse"
    return None


def detect_id_type(symbols: Iterable[str]) -> str:
    """``"ensembl"`` when most identifiers are Ensembl gene ids (``ENSG…``, ``ENSMUSG…``), else ``"symbol"``.

    Examples
    --------
    >>> detect_id_type(["ENSG00000141510", "ENSG00000087088.21"])
    'ensembl'
    """
    ids = [s for s in _as_strings(symbols, name="symbols") if s]
    if not ids:
        return "symbol"
    n_ensembl = sum(bool(_ENSEMBL.match(s)) for s in ids)
    return "ensembl" if n_ensembl > len(ids) / 2 else "symbol"
