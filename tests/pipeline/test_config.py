"""Config: defaults, env overrides, and one clear line for every kind of mistake (also under fuzzing)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facestream.errors import FacestreamError
from facestream.pipeline.config import PipelineConfig, config_markdown, load_config

from .helpers import REPO


def _load_text(tmp_path, text: str, environ=None) -> PipelineConfig:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return load_config(p, environ=environ or {})


def test_embedded_default_is_the_demo_on_the_cpu():
    cfg = load_config(None, environ={})
    assert [s.uri for s in cfg.sources] == ["demo"]
    assert cfg.inference.detector.type == "hog" and cfg.metrics.host == "127.0.0.1"
    assert cfg.hop_encoding("preprocess") == "shm"


def test_env_overrides_keys_with_yaml_typed_values(tmp_path):
    cfg = _load_text(tmp_path, "sink: {out_dir: a}\n", {"FACESTREAM__SINK__OUT_DIR": "/x/y",
                                                        "FACESTREAM__SINK__VIDEO": "true",
                                                        "FACESTREAM__PREPROCESS__BATCH_SIZE": "7"})
    assert cfg.sink.out_dir == "/x/y" and cfg.sink.video is True and cfg.preprocess.batch_size == 7


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("sink: {outdir: x}\n", "sink.outdir: unknown key"),
        ("inference: {detector: yolo}\n", "inference.detector: Input tag 'yolo'"),
        ("preprocess: {batch_size: 0}\n", "preprocess.batch_size"),
        ("sources: [{id: a, uri: demo}, {id: a, uri: demo}]\n", "duplicate stream id"),
        ("sources: [{id: 'bad id', uri: demo}]\n", "sources[0].id"),
        ("metrics: {ports: {camera: 1}}\n", "unknown stage 'camera'"),
        ("sink: [1, 2\n", "invalid YAML at line"),
        ("- just\n- a list\n", "top level must be a mapping"),
    ],
)
def test_each_mistake_gives_one_line_naming_the_key(tmp_path, text, expect):
    with pytest.raises(FacestreamError) as e:
        _load_text(tmp_path, text)
    msg = str(e.value)
    assert expect in msg and "\n" not in msg, msg


def test_cli_reports_a_bad_config_in_one_line_without_traceback(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("inference: {backend: cuda}\n")
    r = subprocess.run([sys.executable, "-m", "facestream.pipeline.cli", "config", str(p)], cwd=REPO, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "inference.backend" in lines[0] and "Traceback" not in r.stderr, r.stderr


def test_missing_config_file_is_one_line(tmp_path):
    with pytest.raises(FacestreamError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_docs_config_md_is_generated_from_the_models():
    md = config_markdown()
    for key in ("sink.out_dir", "transport.curve.enabled", "inference.detector", "privacy.retention_days"):
        assert f"`{key}`" in md
    doc = (REPO / "docs" / "config.md").read_text()
    assert doc.strip() == md.strip(), "docs/config.md is stale: python -m facestream.pipeline.config --markdown > docs/config.md"


_values = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False),
                    st.text(max_size=12), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))
_sections = ["sources", "transport", "preprocess", "inference", "sink", "privacy", "metrics", "supervisor", "bogus"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.dictionaries(st.sampled_from(_sections),
                            st.dictionaries(st.text(min_size=1, max_size=12), _values, max_size=3) | _values,
                            max_size=3))
def test_fuzzed_configs_either_load_or_give_one_line(tmp_path, data):
    try:
        _load_text(tmp_path, yaml.safe_dump(data))
    except FacestreamError as e:
        assert "\n" not in str(e) and str(e).startswith("config error")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=60))
def test_fuzzed_yaml_text_either_loads_or_gives_one_line(tmp_path, text):
    try:
        _load_text(tmp_path, text)
    except FacestreamError as e:
        assert "\n" not in str(e)
