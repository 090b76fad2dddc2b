"""Readers for the file formats of public single-cell data (one function per format).

Every reader returns an AnnData (cells x genes) and turns a failure to parse (truncated file,
wrong format) into a :class:`ValueError` that names the file and the expected format.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import scipy.io
import scipy.sparse as sp
from anndata import AnnData

from .._vocabulary import SPECIES
from ._registry import FORMATS, ORIENTATIONS

_ENSEMBL = re.compile(r"^ENS[A-Z]{0,6}G\d{6,}(\.\d+)?$")
_BARCODE = re.compile(r"[ACGTN]{8,}")

_EXPECTED = {
    "10x_h5": "a Cell Ranger HDF5 feature-barcode matrix (.h5, v3 layout with /matrix)",
    "10x_mtx": "a directory with matrix.mtx[.gz], features.tsv[.gz] or genes.tsv[.gz] and barcodes.tsv[.gz]",
    "h5ad": "an AnnData .h5ad file",
    "loom": "a .loom HDF5 file (/matrix genes x cells, /row_attrs, /col_attrs)",
    "csv": "a comma-separated numeric table (genes x cells or cells x genes; gzip allowed)",
    "tsv": "a tab-separated numeric table (genes x cells or cells x genes; gzip allowed)",
    "dge_txt": "a tab-separated digital gene expression table, genes x cells (gzip allowed)",
}


def infer_format(path: str | Path) -> str:
    """Format of a local file from its name (``.h5ad``, ``.loom``, ``.h5``, a directory -> ``10x_mtx``,
    ``.csv[.gz]``, ``.tsv``/``.txt[.gz]``)."""
    path = Path(path)
    if path.is_dir():
        return "10x_mtx"
    name = path.name.lower().removesuffix(".gz")
    for suffix, fmt in ((".h5ad", "h5ad"), (".loom", "loom"), (".h5", "10x_h5"), (".csv", "csv"),
                        (".tsv", "tsv"), (".txt", "tsv")):
        if name.endswith(suffix):
            return fmt
    raise ValueError(
        f"cannot tell the format of {path} from its name; pass format= one of {list(FORMATS)}."
    )


def _bad_file(path: Path, fmt: str, err: BaseException) -> ValueError:
    return ValueError(
        f"could not read {path} as {fmt}: {type(err).__name__}: {err}. The file is truncated, corrupt or "
        f"of another format; expected {_EXPECTED[fmt]}. Delete it and download it again, or pass the "
        "right format."
    )


_READ_ERRORS = (OSError, ValueError, EOFError, zlib.error, KeyError, UnicodeDecodeError, IndexError,
                TypeError, pd.errors.ParserError, pd.errors.EmptyDataError)


# --- individual formats -------------------------------------------------------------------------


def read_10x_h5(path: Path) -> AnnData:
    """Cell Ranger HDF5 matrix via :func:`scanpy.read_10x_h5` (symbols as var_names)."""
    import scanpy as sc

    adata = sc.read_10x_h5(path)
    adata.var_names_make_unique()
    return adata


def _find(directory: Path, stems: Iterable[str]) -> Path | None:
    for stem in stems:
        for suffix in ("", ".gz"):
            candidate = directory / f"{stem}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def read_10x_mtx(path: Path) -> AnnData:
    """Matrix Market directory: :func:`scanpy.read_10x_mtx` for the Cell Ranger layouts, otherwise
    (e.g. gzipped v2 files from GEO) assembled from ``scipy.io.mmread`` and the gene/barcode tables."""
    import scanpy as sc

    if not path.is_dir():
        raise NotADirectoryError(f"{path} is not a directory")
    matrix = _find(path, ["matrix.mtx"])
    genes = _find(path, ["features.tsv", "genes.tsv"])
    barcodes = _find(path, ["barcodes.tsv"])
    missing = [n for n, p in (("matrix.mtx", matrix), ("features.tsv/genes.tsv", genes), ("barcodes.tsv", barcodes))
               if p is None]
    if missing:
        raise FileNotFoundError(f"missing {missing} in {path}")
    v3 = all(p.name.endswith(".gz") for p in (matrix, genes, barcodes)) and genes.name.startswith("features")
    legacy = all(not p.name.endswith(".gz") for p in (matrix, genes, barcodes)) and genes.name.startswith("genes")
    if v3 or legacy:
        return sc.read_10x_mtx(path, var_names="gene_symbols", make_unique=True)
    with (gzip.open(matrix, "rb") if matrix.name.endswith(".gz") else open(matrix, "rb")) as fh:
        X = sp.csr_matrix(scipy.io.mmread(fh).T, dtype=np.float32)
    table = pd.read_csv(genes, sep="\t", header=None, dtype=str)
    cells = pd.read_csv(barcodes, sep="\t", header=None, dtype=str)[0].to_numpy()
    symbols = table[1] if table.shape[1] > 1 else table[0]
    var = pd.DataFrame({"gene_ids": table[0].to_numpy()}, index=pd.Index(symbols.to_numpy(), dtype=str))
    if X.shape != (len(cells), len(var)):
        raise ValueError(f"matrix shape {X.shape[::-1]} does not match {len(var)} genes x {len(cells)} barcodes")
    adata = AnnData(X=X, obs=pd.DataFrame(index=pd.Index(cells, dtype=str)), var=var)
    adata.var_names_make_unique()
    return adata


def read_h5ad(path: Path) -> AnnData:
    """AnnData file via :func:`anndata.read_h5ad`."""
    return anndata.read_h5ad(path)


def _read_loom_h5py(path: Path) -> AnnData:
    """Minimal loom reader used when ``loompy`` (needed by :func:`anndata.io.read_loom`) is absent."""
    import h5py

    with h5py.File(path, "r") as f:
        X = sp.csr_matrix(np.asarray(f["matrix"][()]).T, dtype=np.float32)

        def attrs(group: str) -> pd.DataFrame:
            out = {}
            for key, ds in f.get(group, {}).items():
                values = ds[()]
                if values.ndim != 1:
                    continue
                if values.dtype.kind in "SO":
                    values = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values])
                out[key] = values
            return pd.DataFrame(out)

        var, obs = attrs("row_attrs"), attrs("col_attrs")
        layers = {k: sp.csr_matrix(np.asarray(v[()]).T) for k, v in f.get("layers", {}).items()}
    if "Gene" in var:
        var = var.set_index("Gene")
    if "CellID" in obs:
        obs = obs.set_index("CellID")
    var.index = var.index.astype(str)
    obs.index = obs.index.astype(str)
    return AnnData(X=X, obs=obs, var=var, layers=layers or None)


def read_loom(path: Path) -> AnnData:
    """Loom file via :func:`anndata.io.read_loom` (``loompy``), or a minimal h5py reader without it."""
    try:
        import loompy  # noqa: F401
    except ImportError:
        adata = _read_loom_h5py(path)
    else:
        adata = anndata.io.read_loom(path, sparse=True)
    adata.var_names_make_unique()
    return adata


@lru_cache(maxsize=1)
def _known_symbols() -> frozenset[str]:
    """Gene symbols the package knows (curated library and housekeeping genes, both species)."""
    from ._programmes import housekeeping, load_programmes, mitochondrial

    known: set[str] = set()
    for species in SPECIES:
        for genes in load_programmes(species).sets.values():
            known.update(genes)
        known.update(housekeeping(species))
        known.update(mitochondrial(species))
    return frozenset(known)


def _gene_score(labels: Iterable[str]) -> float:
    labels = [str(x) for x in labels]
    if not labels:
        return 0.0
    known = _known_symbols()
    return float(np.mean([bool(_ENSEMBL.match(x)) or x in known or x.upper() in known for x in labels]))


def _barcode_score(labels: Iterable[str]) -> float:
    labels = [str(x) for x in labels]
    if not labels:
        return 0.0
    return float(np.mean([bool(_BARCODE.search(x)) for x in labels]))


def detect_orientation(index: Iterable[str], columns: Iterable[str]) -> str:
    """``"genes_x_cells"`` or ``"cells_x_genes"`` from the row and column labels of a table.

    The axis whose labels are more often known gene symbols or Ensembl ids holds the genes; on a
    tie, the axis whose labels look more like cell barcodes (runs of >= 8 A/C/G/T/N) holds the cells.
    """
    index, columns = list(index), list(columns)
    gi, gc = _gene_score(index), _gene_score(columns)
    if abs(gi - gc) > 0.01:
        return "genes_x_cells" if gi > gc else "cells_x_genes"
    bi, bc = _barcode_score(index), _barcode_score(columns)
    if abs(bi - bc) > 0.01:
        return "cells_x_genes" if bi > bc else "genes_x_cells"
    raise ValueError(
        "cannot tell whether the table is genes x cells or cells x genes (no known gene symbols or cell "
        "barcodes among its labels); pass orientation='genes_x_cells' or 'cells_x_genes'."
    )


def _open_text(path: Path):
    return gzip.open(path, "rt") if _is_gzip(path) else open(path, encoding="utf-8")


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def read_table(path: Path, *, sep: str, orientation: str = "auto", chunksize: int = 2000) -> AnnData:
    """Numeric text table (csv/tsv, optionally gzipped) with labels in the first column and header.

    Read in row chunks into a sparse matrix, so large count tables never sit in memory as dense
    float64. A header one field shorter than the rows (R ``write.table`` style) is accepted.
    """
    with _open_text(path) as fh:
        header = fh.readline().rstrip("\r\n")
        first = fh.readline().rstrip("\r\n")
    if not header or not first:
        raise ValueError("the table has no data rows")
    n_header, n_first = len(header.split(sep)), len(first.split(sep))
    if n_header == n_first - 1:
        index_col = None  # pandas then uses the first column as the index
    elif n_header == n_first:
        index_col = 0
    else:
        raise ValueError(f"the header has {n_header} fields but the first row {n_first}")
    compression = "gzip" if _is_gzip(path) else None
    reader = pd.read_csv(path, sep=sep, index_col=index_col, chunksize=chunksize, compression=compression)
    blocks, index, columns = [], [], None
    for chunk in reader:
        if columns is None:
            columns = chunk.columns.astype(str)
        try:
            values = chunk.to_numpy(dtype=np.float32)
        except (ValueError, TypeError) as err:
            raise ValueError(f"non-numeric values in the table body ({err})") from None
        if np.isnan(values).any():
            raise ValueError("missing values in the table body (ragged or truncated rows)")
        blocks.append(sp.csr_matrix(values))
        index.extend(chunk.index.astype(str))
    if not blocks:
        raise ValueError("the table has no data rows")
    M = sp.vstack(blocks, format="csr")
    if orientation == "auto":
        orientation = detect_orientation(index, columns)
    if orientation == "genes_x_cells":
        X, obs_names, var_names = M.T.tocsr(), columns, pd.Index(index)
    else:
        X, obs_names, var_names = M, pd.Index(index), columns
    adata = AnnData(X=X, obs=pd.DataFrame(index=pd.Index(obs_names, dtype=str)),
                    var=pd.DataFrame(index=pd.Index(var_names, dtype=str)))
    adata.var_names_make_unique()
    adata.uns["noa_read"] = {"orientation": orientation}
    return adata


def _text_reader(sep: str) -> Callable[..., AnnData]:
    def reader(path: Path, *, orientation: str = "auto") -> AnnData:
        return read_table(path, sep=sep, orientation=orientation)

    return reader


READERS: dict[str, Callable[..., AnnData]] = {
    "10x_h5": read_10x_h5,
    "10x_mtx": read_10x_mtx,
    "h5ad": read_h5ad,
    "loom": read_loom,
    "csv": _text_reader(","),
    "tsv": _text_reader("\t"),
    "dge_txt": _text_reader("\t"),
}


def read(path: str | Path, format: str | None = None, *, orientation: str = "auto") -> AnnData:
    """Read one local file (or 10x directory) into a cells x genes AnnData.

    Parameters
    ----------
    path
        File or, for ``10x_mtx``, directory.
    format
        One of ``10x_h5``, ``10x_mtx``, ``h5ad``, ``loom``, ``csv``, ``tsv``, ``dge_txt``; None
        infers it from the name.
    orientation
        For text tables: ``genes_x_cells``, ``cells_x_genes`` or ``auto`` (detected from the labels).

    Raises
    ------
    ValueError
        Naming the file and the expected format when it cannot be parsed (truncated, corrupt or
        another format).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; check the path.")
    fmt = format or infer_format(path)
    if fmt not in READERS:
        raise ValueError(f"unknown format {fmt!r}; use one of {list(READERS)}.")
    if orientation not in ORIENTATIONS:
        raise ValueError(f"unknown orientation {orientation!r}; use 'auto', 'genes_x_cells' or 'cells_x_genes'.")
    reader = READERS[fmt]
    try:
        if fmt in ("csv", "tsv", "dge_txt"):
            return reader(path, orientation=orientation)
        return reader(path)
    except _READ_ERRORS as err:
        if isinstance(err, ValueError) and "pass orientation=" in str(err):
            raise ValueError(f"{path}: {err}") from None
        raise _bad_file(path, fmt, err) from None
    except Exception as err:  # h5py and scipy raise their own error types on corrupt files
        if type(err).__module__.split(".")[0] in ("h5py", "scipy", "anndata", "scanpy"):
            raise _bad_file(path, fmt, err) from None
        raise
