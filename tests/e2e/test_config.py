"""Config schema and validation; atomic writers (fast)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from noa_omics.pipeline import ConfigError, config_from_dict, load_config, validate_inputs
from noa_omics.pipeline import _io

from .conftest import REPO

EXAMPLE = REPO / "workflows" / "config.example.yaml"
SCHEMA = REPO / "workflows" / "config.schema.yaml"


def _sc_config(path: Path, **overrides) -> dict:
    section = {"path": str(path), "sample_key": "sample", "condition_key": "condition", "reference": "control"}
    section.update(overrides)
    return {"output": "out", "singlecell": section}


def test_example_config_is_valid_for_python_and_json_schema():
    import jsonschema

    data = yaml.safe_load(EXAMPLE.read_text())
    cfg = config_from_dict(data)
    assert cfg.demo is not None and cfg.has_singlecell and cfg.has_spatial
    assert cfg.scoring.methods == ["score_genes"]
    jsonschema.validate(data, yaml.safe_load(SCHEMA.read_text()))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"output": "x", "demo": {}, "colour": "red"}, "unknown key 'colour'"),
        ({"output": "x", "demo": {"n_cell": 10}}, "unknown key 'n_cell' in section 'demo'"),
        ({"output": "x", "demo": {"n_cells": "many"}}, "must be of type int"),
        ({"output": "x", "demo": {}, "scoring": {"methods": ["gsva"]}}, "unknown scoring method 'gsva'"),
        ({"output": "x", "demo": {}, "species": "rat"}, "unknown species 'rat'"),
        ({"output": "x"}, "names no input"),
        ({"output": "x", "singlecell": {"sample_key": "s"}}, "has no 'path'"),
    ],
)
def test_bad_configs_fail_with_one_readable_message(data, message):
    import jsonschema

    with pytest.raises(ConfigError, match=message) as info:
        config_from_dict(data)
    assert "\n" not in str(info.value)
    # the JSON schema used by the workflow refuses the same configs (except cross-field rules)
    if message not in ("names no input", "has no 'path'"):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(data, yaml.safe_load(SCHEMA.read_text()))


def test_load_config_reports_missing_and_invalid_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("output: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_validate_inputs_checks_files_columns_layers_and_reference(tmp_path, small_h5ad):
    validate_inputs(config_from_dict(_sc_config(small_h5ad)))  # the good config passes
    not_h5ad = tmp_path / "table.h5ad"
    not_h5ad.write_text("gene,count\n")
    cases = [
        (_sc_config(tmp_path / "missing.h5ad"), "not found"),
        (_sc_config(not_h5ad), "not an .h5ad"),
        (_sc_config(small_h5ad, sample_key="patient"), "column 'patient'"),
        (_sc_config(small_h5ad, reference="healthy"), "reference condition 'healthy' not found"),
        (_sc_config(small_h5ad, counts_layer="raw"), "layer 'raw'"),
    ]
    for data, message in cases:
        with pytest.raises(ConfigError, match=message):
            validate_inputs(config_from_dict(data))


def test_atomic_write_leaves_old_file_on_error(tmp_path):
    target = tmp_path / "table.csv"
    _io.write_text(target, "old\n")
    with pytest.raises(RuntimeError):
        with _io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]


def test_staged_directory_is_all_or_nothing(tmp_path):
    out = tmp_path / "results"
    with pytest.raises(RuntimeError):
        with _io.staged_directory(out) as stage:
            (stage / "a.txt").write_text("a")
            raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []
    with _io.staged_directory(out) as stage:
        (stage / "a.txt").write_text("a")
        (stage / _io.MANIFEST_NAME).write_text("{}")
    assert (out / "a.txt").read_text() == "a"
    # a results directory is replaced as a whole; a foreign directory is refused
    with _io.staged_directory(out) as stage:
        (stage / "b.txt").write_text("b")
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_text("meow")
    with pytest.raises(FileExistsError, match="not a noa-omics results"):
        with _io.staged_directory(foreign):
            pass
    assert (foreign / "cat.jpg").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos", "results"]


def test_file_records_checksums(tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "x.csv").write_text("a\n")
    (tmp_path / ".hidden.tmp-1").write_text("skip")
    records = _io.file_records(tmp_path)
    assert [r["path"] for r in records] == ["t/x.csv"]
    # sha256 of "a\n"
    assert records[0]["sha256"] == "87428fc522803d31065e7bce3cf03fe475096631e5e07bbd7a0fde60c4cf25c7"
    assert records[0]["bytes"] == os.path.getsize(tmp_path / "t" / "x.csv")


# --------------------------------------------------------------------------------------------
# one schema (issue 17 item 14)


def _schema_defaults(schema: dict) -> dict:
    out = {}
    for key, prop in schema.get("properties", {}).items():
        if "properties" in prop:
            out[key] = _schema_defaults(prop)
        else:
            out[key] = prop.get("default")
    return out


def test_schema_and_dataclasses_have_the_same_keys_and_defaults():
    import dataclasses

    from noa_omics.pipeline._config import _SECTIONS, PipelineConfig
    from noa_omics.pipeline._workflow import config_schema

    schema = config_schema()
    defaults = _schema_defaults(schema)
    top = {f.name: f for f in dataclasses.fields(PipelineConfig)}
    assert set(top) == set(schema["properties"])
    for name, cls in _SECTIONS.items():
        fields = {f.name: f for f in dataclasses.fields(cls)}
        assert set(fields) == set(defaults[name]), name
        instance = cls()
        for key, value in defaults[name].items():
            assert getattr(instance, key) == value, f"{name}.{key}: dataclass {getattr(instance, key)!r} != schema {value!r}"
    for key in ("output", "seed"):
        assert getattr(PipelineConfig(), key) == defaults[key]
    # the identifier options of the pipeline are part of the one schema
    singlecell = schema["properties"]["singlecell"]["properties"]
    assert {"gene_symbols", "counts_layer"} <= set(singlecell)
    assert "raw" in singlecell["counts_layer"]["description"]


def test_the_schema_file_is_what_the_python_path_validates(monkeypatch):
    """A rule stated only in the schema (output: minLength 1) is enforced by config_from_dict."""
    from noa_omics.pipeline import _workflow

    with pytest.raises(ConfigError, match="'output' is empty"):
        config_from_dict({"output": "", "demo": {}})
    # change the schema and the Python path follows: no second copy of the rules
    schema = yaml.safe_load(SCHEMA.read_text())
    schema["properties"]["demo"]["properties"]["n_cells"]["minimum"] = 5000
    monkeypatch.setattr(_workflow, "config_schema", lambda: schema)
    with pytest.raises(ConfigError, match="demo.n_cells is 4000; use at least 5000"):
        config_from_dict({"output": "x", "demo": {"n_cells": 4000}})


def test_snakefile_validates_with_the_same_schema_file():
    snakefile = (REPO / "workflows" / "Snakefile").read_text()
    assert 'validate(config, schema="config.schema.yaml")' in snakefile
    from noa_omics.pipeline._workflow import schema_path

    assert schema_path().read_bytes() == SCHEMA.read_bytes()


def test_one_demo_size_everywhere():
    import inspect

    import noa_omics as noa
    from noa_omics.pipeline._config import DemoSection
    from noa_omics.pipeline._workflow import config_schema

    default = inspect.signature(noa.datasets.demo_testis).parameters["n_cells"].default
    assert default == DemoSection().n_cells == config_schema()["properties"]["demo"]["properties"]["n_cells"]["default"]
    assert yaml.safe_load(EXAMPLE.read_text())["demo"]["n_cells"] == default
