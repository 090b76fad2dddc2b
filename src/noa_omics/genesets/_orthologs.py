"""Human -> mouse ortholog table of the curated library.

The table (``genesets/orthologs_human_mouse.tsv``) lists every human gene used by a curated set.
A gene maps only to a one-to-one mouse ortholog; genes without one have an empty ``mouse`` column
and a ``note`` saying why, and are dropped from mouse sets (mouse-specific genes are added per set
in the set's YAML file). Symbols are never guessed by capitalisation.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from functools import lru_cache

import pandas as pd

from ._library import data_dir

ORTHOLOG_FILE = "orthologs_human_mouse.tsv"
ORTHOLOG_COLUMNS = ("human", "mouse", "relation", "confidence", "note")
RELATIONS = ("one2one", "one2many", "many2many", "none")


@lru_cache(maxsize=1)
def _table() -> pd.DataFrame:
    path = data_dir() / ORTHOLOG_FILE
    text = path.read_text(encoding="utf-8")
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    df = pd.read_csv(io.StringIO(body), sep="\t", dtype=str, keep_default_na=False)
    if tuple(df.columns) != ORTHOLOG_COLUMNS:
        raise ValueError(f"{path}: expected columns {list(ORTHOLOG_COLUMNS)}, found {list(df.columns)}.")
    dup = df["human"][df["human"].duplicated()].tolist()
    if dup:
        raise ValueError(f"{path}: human genes listed more than once: {dup}.")
    bad = sorted(set(df["relation"]) - set(RELATIONS))
    if bad:
        raise ValueError(f"{path}: unknown relation(s) {bad}; use one of {list(RELATIONS)}.")
    mapped = df["mouse"] != ""
    if (df.loc[mapped, "relation"] != "one2one").any():
        rows = df.loc[mapped & (df["relation"] != "one2one"), "human"].tolist()
        raise ValueError(f"{path}: only one2one rows may have a mouse symbol; fix {rows}.")
    if (df.loc[~mapped, "note"] == "").any():
        rows = df.loc[~mapped & (df["note"] == ""), "human"].tolist()
        raise ValueError(f"{path}: dropped genes need a note saying why: {rows}.")
    return df


def orthologs() -> pd.DataFrame:
    """The curated human -> mouse ortholog table.

    Returns
    -------
    pandas.DataFrame
        Columns ``human``, ``mouse`` (empty string when there is no one-to-one ortholog),
        ``relation`` (``one2one``, ``one2many``, ``many2many``, ``none``), ``confidence``
        (``high`` or ``uncertain``) and ``note``. A copy: editing it does not change the library.

    Notes
    -----
    Curated by hand from MGI/HGNC orthology knowledge (the content of MGI's
    ``HOM_MouseHumanSequence.rpt``) without network access; it was not machine-checked against
    that file. Rows with ``confidence == "uncertain"`` should be checked first.
    """
    return _table().copy()


def to_mouse(genes: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Map human symbols to their one-to-one mouse orthologs.

    Parameters
    ----------
    genes
        Human HGNC symbols.

    Returns
    -------
    mapped, dropped
        ``mapped``: mouse symbols (input order, duplicates removed); ``dropped``: the human genes
        without a one-to-one ortholog, including genes absent from the table.

    Examples
    --------
    >>> to_mouse(["TP53", "FASLG", "DAZ1"])
    (('Trp53', 'Fasl'), ('DAZ1',))
    """
    if isinstance(genes, str) or not isinstance(genes, Iterable):
        raise TypeError(f"`genes` must be an iterable of human symbols, got {type(genes).__name__}.")
    table = _table()
    lookup = dict(zip(table["human"], table["mouse"]))
    mapped: dict[str, None] = {}
    dropped: dict[str, None] = {}
    for gene in genes:
        mouse = lookup.get(gene, "")
        if mouse:
            mapped[mouse] = None
        else:
            dropped[gene] = None
    return tuple(mapped), tuple(dropped)
