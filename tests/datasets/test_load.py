"""noa.datasets.load: download over a local HTTP server, checksums, cache reuse and every reader.

Fixture files are written here, in the layouts of the real sources (10x v3 HDF5, Cell Ranger and
GEO-style Matrix Market, loom, gzipped CSV with a quoted header, DGE with an attributes table).
"""

from __future__ import annotations

import gzip
import io

import anndata
import h5py
import numpy as np
import pandas as pd
import pooch
import pytest
import scipy.io
import scipy.sparse as sp

from noa_omics.datasets import load, read, register, unregister
from noa_omics.datasets._readers import detect_orientation

GENES = ["ACTB", "GAPDH", "SOX9", "DDX4", "CYP17A1", "PRM1", "SYCP3", "CD68", "VWF", "ACTA2", "B2M", "MT-CO1"]
IDS = [f"ENSG{i:011d}" for i in range(len(GENES))]
N_CELLS = 15


def _counts(seed=0):
    rng = np.random.default_rng(seed)
    return rng.poisson(3.0, size=(N_CELLS, len(GENES))).astype(np.float32)


def _cells(prefix=""):
    rng = np.random.default_rng(1)
    return [prefix + "".join(rng.choice(list("ACGT"), 16)) + "-1" for _ in range(N_CELLS)]


def _entry(name, files, fmt, **kw):
    return {"name": name, "species": "human", "technology": "scRNA-seq", "format": fmt,
            "citation": "test fixture", "url": ["http://127.0.0.1/"], "files": files, **kw}


def _cache_files(cache):
    return sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file())


# --- writers of fixture files ----------------------------------------------------------------------


def write_h5ad(path, counts, *, var_names=GENES, obs=None):
    ad = anndata.AnnData(X=sp.csr_matrix(counts), obs=obs if obs is not None else pd.DataFrame(index=_cells()),
                         var=pd.DataFrame(index=var_names))
    ad.write_h5ad(path)


def write_10x_h5(path, counts):
    m = sp.csr_matrix(counts.astype(np.int32))  # cells x genes CSR == genes x cells CSC (10x layout)
    with h5py.File(path, "w") as f:
        g = f.create_group("matrix")
        g["barcodes"] = np.array(_cells(), dtype="S")
        g["data"] = m.data
        g["indices"] = m.indices.astype(np.int64)
        g["indptr"] = m.indptr.astype(np.int64)
        g["shape"] = np.array([len(GENES), N_CELLS], dtype=np.int32)
        feat = g.create_group("features")
        feat["id"] = np.array(IDS, dtype="S")
        feat["name"] = np.array(GENES, dtype="S")
        feat["feature_type"] = np.array(["Gene Expression"] * len(GENES), dtype="S")
        feat["genome"] = np.array(["GRCh38"] * len(GENES), dtype="S")
        feat["_all_tag_keys"] = np.array(["genome"], dtype="S")


def _gz(path, data: bytes):
    with gzip.open(path, "wb") as fh:
        fh.write(data)


def write_mtx(folder, counts, *, prefix="", v3=True):
    buf = io.BytesIO()
    scipy.io.mmwrite(buf, sp.coo_matrix(counts.T.astype(np.int64)))
    _gz(folder / f"{prefix}matrix.mtx.gz", buf.getvalue())
    if v3:
        rows = [f"{i}\t{g}\tGene Expression" for i, g in zip(IDS, GENES)]
        _gz(folder / f"{prefix}features.tsv.gz", ("\n".join(rows) + "\n").encode())
    else:
        rows = [f"{i}\t{g}" for i, g in zip(IDS, GENES)]
        _gz(folder / f"{prefix}genes.tsv.gz", ("\n".join(rows) + "\n").encode())
    _gz(folder / f"{prefix}barcodes.tsv.gz", ("\n".join(_cells()) + "\n").encode())


def write_loom(path, counts):
    with h5py.File(path, "w") as f:
        f["matrix"] = counts.T.astype(np.float32)
        f.create_group("layers")
        f.create_group("row_attrs")["Gene"] = np.array(GENES, dtype="S")
        f.create_group("col_attrs")["CellID"] = np.array(_cells(), dtype="S")
        f.create_group("col_graphs")
        f.create_group("row_graphs")
        f.attrs["LOOM_SPEC_VERSION"] = "3.0.0"


def write_csv_gz(path, counts):
    """genes x cells, quoted header with an empty first field (the GSE149512 layout)."""
    frame = pd.DataFrame(counts.T.astype(int), index=GENES, columns=_cells())
    _gz(path, frame.to_csv(quoting=1).encode())


# --- download, checksum, cache ----------------------------------------------------------------------


def test_h5ad_download_checksum_and_harmonised_obs(server, cache):
    counts = _counts()
    obs = pd.DataFrame({"donor": ["P1"] * 8 + ["P2"] * 7}, index=_cells())
    write_h5ad(server.root / "x.h5ad", counts, obs=obs)
    sha = pooch.file_hash(str(server.root / "x.h5ad"))
    entry = _entry("fx_h5ad", [{"url": server.url("x.h5ad"), "sha256": sha}], "h5ad",
                   sample_key="donor", condition_map={"P1": "control", "P2": "NOA"})
    ad = load("fx_h5ad", registry=entry, cache_dir=cache, progress=False)
    np.testing.assert_array_equal(ad.layers["counts"].toarray(), counts)
    assert list(ad.var_names) == GENES
    assert list(ad.obs["sample"].astype(str)) == ["P1"] * 8 + ["P2"] * 7
    assert list(ad.obs["condition"].astype(str)) == ["control"] * 8 + ["NOA"] * 7
    assert ad.obs["noa_cell_type"].isna().all()
    assert ad.uns["noa_dataset"]["name"] == "fx_h5ad"
    assert any("no published labels" in n for n in ad.uns["noa_dataset"]["notes"])
    assert _cache_files(cache) == ["fx_h5ad/x.h5ad"]


def test_cache_reuse_makes_no_request(server, cache):
    write_h5ad(server.root / "x.h5ad", _counts())
    entry = _entry("fx_cache", [{"url": server.url("x.h5ad")}], "h5ad")
    load("fx_cache", registry=entry, cache_dir=cache, progress=True)
    assert len(server.requests) == 1
    load("fx_cache", registry=entry, cache_dir=cache, progress=False)
    assert len(server.requests) == 1


def test_env_var_sets_cache(server, tmp_path, monkeypatch):
    write_h5ad(server.root / "x.h5ad", _counts())
    monkeypatch.setenv("NOA_OMICS_DATA", str(tmp_path / "env_cache"))
    load("fx_env", registry=_entry("fx_env", [{"url": server.url("x.h5ad")}], "h5ad"), progress=False)
    assert (tmp_path / "env_cache" / "fx_env" / "x.h5ad").is_file()


def test_checksum_mismatch_leaves_nothing_in_cache(server, cache):
    write_h5ad(server.root / "x.h5ad", _counts())
    entry = _entry("fx_bad", [{"url": server.url("x.h5ad"), "sha256": "0" * 64}], "h5ad")
    with pytest.raises(ValueError, match="checksum mismatch.*x.h5ad"):
        load("fx_bad", registry=entry, cache_dir=cache, progress=False)
    assert _cache_files(cache) == []  # neither the file nor a temporary part of it


def test_corrupted_cached_copy_is_replaced(server, cache):
    write_h5ad(server.root / "x.h5ad", _counts())
    sha = pooch.file_hash(str(server.root / "x.h5ad"))
    entry = _entry("fx_stale", [{"url": server.url("x.h5ad"), "sha256": sha}], "h5ad")
    (cache / "fx_stale").mkdir()
    (cache / "fx_stale" / "x.h5ad").write_bytes(b"corrupt")
    ad = load("fx_stale", registry=entry, cache_dir=cache, progress=False)
    assert ad.n_obs == N_CELLS and len(server.requests) == 1


def test_truncated_file_is_reported_and_removed(server, cache):
    write_csv_gz(server.root / "m.csv.gz", _counts())
    data = (server.root / "m.csv.gz").read_bytes()
    (server.root / "m.csv.gz").write_bytes(data[: len(data) // 2])
    entry = _entry("fx_trunc", [{"url": server.url("m.csv.gz")}], "csv")
    with pytest.raises(ValueError, match=r"m\.csv\.gz as csv.*truncated"):
        load("fx_trunc", registry=entry, cache_dir=cache, progress=False)
    assert _cache_files(cache) == []


def test_wrong_format_is_reported(server, cache):
    (server.root / "y.h5ad").write_text("this is not HDF5\n")
    entry = _entry("fx_wrong", [{"url": server.url("y.h5ad")}], "h5ad")
    with pytest.raises(ValueError, match=r"y\.h5ad as h5ad.*expected an AnnData"):
        load("fx_wrong", registry=entry, cache_dir=cache, progress=False)


def test_unknown_dataset_lists_known_names():
    with pytest.raises(ValueError, match="unknown dataset 'nope'.*guo2018_adult"):
        load("nope")


def test_not_downloadable_asks_for_path(cache):
    with pytest.raises(ValueError, match="path="):
        load("chen2021_slideseq", cache_dir=cache)


# --- readers ----------------------------------------------------------------------------------------


def test_10x_h5(server, cache):
    counts = _counts()
    write_10x_h5(server.root / "f.h5", counts)
    ad = load("fx_h5", registry=_entry("fx_h5", [{"url": server.url("f.h5")}], "10x_h5"), cache_dir=cache,
              progress=False)
    assert list(ad.var_names) == GENES
    assert list(ad.var["gene_ids"]) == IDS
    np.testing.assert_array_equal(ad.layers["counts"].toarray(), counts)


def test_10x_mtx_v3_directory(server, cache):
    counts = _counts()
    write_mtx(server.root, counts, v3=True)
    files = [{"url": server.url(f), "role": r} for f, r in
             (("matrix.mtx.gz", "matrix"), ("features.tsv.gz", "genes"), ("barcodes.tsv.gz", "barcodes"))]
    ad = load("fx_mtx", registry=_entry("fx_mtx", files, "10x_mtx"), cache_dir=cache, progress=False)
    assert list(ad.var_names) == GENES
    assert list(ad.obs_names) == _cells()
    np.testing.assert_array_equal(ad.layers["counts"].toarray(), counts)
    assert set(ad.obs["sample"]) == {"fx_mtx"}  # one sample: the dataset name


def test_10x_mtx_geo_style_two_samples(server, cache):
    """Gzipped Cell Ranger v2 files with GSM prefixes, two samples concatenated."""
    a, b = _counts(0), _counts(1)
    write_mtx(server.root, a, prefix="GSM1_A_", v3=False)
    write_mtx(server.root, b, prefix="GSM2_B_", v3=False)
    files = [{"url": server.url(f"{p}{f}"), "role": r, "sample": s}
             for p, s in (("GSM1_A_", "A"), ("GSM2_B_", "B"))
             for f, r in (("matrix.mtx.gz", "matrix"), ("genes.tsv.gz", "genes"), ("barcodes.tsv.gz", "barcodes"))]
    entry = _entry("fx_geo", files, "10x_mtx", condition_map={"A": "neonatal", "B": "adult"})
    ad = load("fx_geo", registry=entry, cache_dir=cache, progress=False)
    assert ad.n_obs == 2 * N_CELLS and ad.obs_names.is_unique
    assert list(ad.var_names) == GENES
    np.testing.assert_array_equal(ad.layers["counts"].toarray(), np.vstack([a, b]))
    assert list(ad.obs["condition"].astype(str)) == ["neonatal"] * N_CELLS + ["adult"] * N_CELLS


def test_loom(server, cache):
    counts = _counts()
    write_loom(server.root / "f.loom", counts)
    ad = load("fx_loom", registry=_entry("fx_loom", [{"url": server.url("f.loom")}], "loom"), cache_dir=cache,
              progress=False)
    assert list(ad.var_names) == GENES and list(ad.obs_names) == _cells()
    np.testing.assert_array_equal(ad.layers["counts"].toarray(), counts)


def test_csv_gz_genes_by_cells_per_sample(server, cache):
    a, b = _counts(0), _counts(2)
    write_csv_gz(server.root / "GSM1_LZ001matrix.csv.gz", a)
    write_csv_gz(server.root / "GSM2_LZ002matrix.csv.gz", b)
    files = [{"url": server.url("GSM1_LZ001matrix.csv.gz"), "sample": "LZ001"},
             {"url": server.url("GSM2_LZ002matrix.csv.gz"), "sample": "LZ002"}]
    entry = _entry("fx_csv", files, "csv", orientation="genes_x_cells",
                   condition_map={"LZ001": "adult_normal", "LZ002": "iNOA"})
    ad = load("fx_csv", registry=entry, cache_dir=cache, progress=False)
    assert ad.n_obs == 2 * N_CELLS and ad.obs_names.is_unique  # same barcodes -> sample-prefixed
    np.testing.assert_array_equal(ad.layers["counts"].toarray(), np.vstack([a, b]))
    assert ad.obs["condition"].astype(str).value_counts().to_dict() == {"adult_normal": N_CELLS, "iNOA": N_CELLS}


@pytest.mark.parametrize("transpose", [False, True])
def test_text_orientation_is_detected(tmp_path, transpose):
    counts = _counts()
    frame = pd.DataFrame(counts.astype(int), index=_cells(), columns=GENES)
    if transpose:
        frame = frame.T
    path = tmp_path / "t.tsv"
    frame.to_csv(path, sep="\t")
    ad = read(path)
    assert list(ad.var_names) == GENES
    np.testing.assert_array_equal(ad.X.toarray(), counts)


def test_orientation_ambiguous_needs_argument():
    with pytest.raises(ValueError, match="orientation="):
        detect_orientation(["a1", "a2"], ["b1", "b2"])


def test_local_path_and_ensembl_var_names(tmp_path):
    counts = _counts()
    ad0 = anndata.AnnData(X=sp.csr_matrix(counts), obs=pd.DataFrame(index=_cells()),
                          var=pd.DataFrame({"feature_name": GENES}, index=IDS))
    ad0.write_h5ad(tmp_path / "cxg.h5ad")
    ad = load("tabula_sapiens_testis", path=tmp_path / "cxg.h5ad")
    assert list(ad.var_names) == GENES and list(ad.var["gene_ids"]) == IDS
    assert ad.uns["noa_dataset"]["source"].endswith("cxg.h5ad")


def test_log2tpm_is_not_put_in_counts(tmp_path):
    values = np.log2(_counts() + 1)
    frame = pd.DataFrame(values.T, index=GENES, columns=_cells())
    frame.to_csv(tmp_path / "exp.log2TPM.tsv", sep="\t")
    entry = _entry("fx_tpm", [], "tsv", value_type="log2tpm", downloadable=False)
    ad = load("fx_tpm", path=tmp_path / "exp.log2TPM.tsv", registry=entry)
    assert "counts" not in ad.layers and "log2tpm" in ad.layers


def test_annotation_file_and_label_codes(server, cache):
    """GSE112393 layout: DGE genes x cells + attributes table with 3 comment lines and integer codes."""
    counts = _counts()
    frame = pd.DataFrame(counts.T.astype(int), index=GENES, columns=_cells())
    _gz(server.root / "dge.txt.gz", frame.to_csv(sep="\t").encode())
    codes = [6] * 5 + [5] * 5 + [7] * 5
    attrs = "# c1\n# c2\n# c3\n#CellBarcode\tCellType\n" + "".join(f"{c}\t{k}\n" for c, k in zip(_cells(), codes))
    _gz(server.root / "attrs.txt.gz", attrs.encode())
    entry = _entry(
        "fx_dge",
        [{"url": server.url("dge.txt.gz")},
         {"url": server.url("attrs.txt.gz"), "role": "annotation", "read": {"sep": "\t", "skiprows": 3, "index_col": 0}}],
        "dge_txt", orientation="genes_x_cells", label_key="CellType",
        label_map={5: "Leydig", 6: "Sertoli", 7: "Unknown"},
    )
    # harmonize_labels is implemented: a regression raising NotImplementedError must fail, not skip
    ad = load("fx_dge", registry=entry, cache_dir=cache, progress=False)
    assert list(ad.obs["CellType_name"].astype(str)) == ["Sertoli"] * 5 + ["Leydig"] * 5 + ["Unknown"] * 5
    assert list(ad.obs["noa_cell_type"].astype(str)) == ["sertoli"] * 5 + ["leydig"] * 5 + ["other"] * 5


def test_register_and_unregister(server, cache):
    write_h5ad(server.root / "x.h5ad", _counts())
    register(_entry("fx_registered", [{"url": server.url("x.h5ad")}], "h5ad"))
    try:
        with pytest.raises(ValueError, match="already registered"):
            register(_entry("fx_registered", [{"url": server.url("x.h5ad")}], "h5ad"))
        ad = load("fx_registered", cache_dir=cache, progress=False)
        assert ad.n_obs == N_CELLS
    finally:
        unregister("fx_registered")
    with pytest.raises(ValueError, match="unknown dataset"):
        load("fx_registered", cache_dir=cache)
