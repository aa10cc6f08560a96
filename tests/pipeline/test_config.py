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
        ("inference: {detector: {type: yolo, min_face: 40}}\n", "inference.detector: Input tag 'yolo'"),
        ("inference: {detector: {type: cnn, upsample: 1}}\n", "inference.detector.upsample (detector type cnn): unknown key"),
        ("inference: {detector: {min_face: 2}}\n", "inference.detector.min_face (detector type hog)"),
        ("inference: {min_face: 30, detector: {min_face: 40}}\n", "inference.min_face is the old name"),
        ("recognition: {scheduler: {max_interval_s: 0}}\n", "recognition.scheduler.max_interval_s"),
        ("engines: {cuda_graph: true}\n", "engines.cuda_graph: unknown key"),
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
    for key in ("sink.out_dir", "transport.curve.enabled", "inference.detector", "privacy.retention_days",
                "inference.detector.upsample", "recognition.n_init", "recognition.scheduler.drift_threshold",
                "engines.cuda_graphs", "engines.max_batch", "crop_dir"):
        assert f"`{key}`" in md
    doc = (REPO / "docs" / "config.md").read_text()
    assert doc.strip() == md.strip(), "docs/config.md is stale: python -m facestream.pipeline.config --markdown > docs/config.md"


_values = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False),
                    st.text(max_size=12), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))
_sections = ["sources", "transport", "preprocess", "inference", "recognition", "engines", "sink", "privacy", "metrics",
             "supervisor", "bogus"]


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


# --- recognition and engines sections, the detector union, the stages' derived view ------------------------


def test_recognition_section_from_yaml_reaches_the_stream_recognizer(tmp_path):
    from facestream.pipeline.recognition.gallery import Gallery
    from facestream.pipeline.recognition.stream_recognizer import StreamRecognizer

    cfg = _load_text(tmp_path, "recognition:\n  n_init: 5\n  match_threshold: 0.8\n  top_k: 1\n"
                               "  scheduler: {max_interval_s: 7.5, drift_recheck_frames: 4}\n"
                               "privacy: {blur_unknown: true}\n")
    rcfg = cfg.recognition.runtime(crops_for_unknown=cfg.inference_view().crops_for_unknown)
    with Gallery(tmp_path / "g.db") as gallery:
        rec = StreamRecognizer(gallery, config=rcfg)
        assert rec.config.n_init == 5 and rec.config.threshold == 0.8 and rec.config.top_k == 1
        assert rec.scheduler.config.max_interval_s == 7.5 and rec.scheduler.config.drift_recheck_frames == 4
        assert rec.config.crops_for_unknown is False
        assert rec.matcher is None or rec.matcher.threshold == 0.8


def test_recognition_defaults_are_the_runtime_defaults():
    from facestream.pipeline.config import RecognitionConfig
    from facestream.pipeline.recognition.stream_recognizer import RecognizerConfig

    assert RecognitionConfig().runtime() == RecognizerConfig()


def test_old_match_threshold_maps_to_recognition(tmp_path):
    assert _load_text(tmp_path, "inference: {match_threshold: 0.85}\n").recognition.match_threshold == 0.85
    assert _load_text(tmp_path, "inference: {match_threshold: 0}\n").recognition.match_threshold == 0.92


def test_engine_options_go_only_to_a_backend_that_takes_them(tmp_path):
    from facestream.engines.backends.onnxruntime_backend import OnnxRuntimeBackend
    from facestream.engines.runtime import _check_options

    cfg = _load_text(tmp_path, "engines: {engine_dir: /tmp/e, cuda_graphs: true, max_batch: 8}\n")
    assert cfg.engines.engine_dir == "/tmp/e" and cfg.engines.cuda_graphs is True
    opts = cfg.engines.backend_options("onnxruntime")
    assert opts == {"max_batch": 8}
    _check_options(OnnxRuntimeBackend, "onnxruntime", opts)  # accepted as it is
    assert load_config(None, environ={}).engines.backend_options("auto") == {}


@pytest.mark.parametrize(
    ("inference", "expect"),
    [
        ({}, {"type": "hog", "upsample": 1, "min_face": 32, "score_threshold": 0.0, "regions": True, "threads": 2, "track_margin": 0.4, "luma": True}),
        ({"detector": "cnn"}, {"type": "cnn", "min_face": 40, "score_threshold": 0.0}),
        ({"detector": {"type": "cnn", "min_face": 60}}, {"type": "cnn", "min_face": 60, "score_threshold": 0.0}),
        ({"detector": {"upsample": 0}}, {"type": "hog", "upsample": 0, "min_face": 32, "score_threshold": 0.0, "regions": True, "threads": 2, "track_margin": 0.4, "luma": True}),
        # the old keys, as deploy files and `facestream config` output of earlier versions have them
        ({"detector": "hog", "hog_upsample": 0, "min_face": 20, "score_threshold": 0.5},
         {"type": "hog", "upsample": 0, "min_face": 20, "score_threshold": 0.5, "regions": True, "threads": 2, "track_margin": 0.4, "luma": True}),
        ({"detector": "cnn", "hog_upsample": 1, "min_face": 80},
         {"type": "cnn", "min_face": 80, "score_threshold": 0.0}),
    ],
)
def test_detector_union_and_its_old_forms(tmp_path, inference, expect):
    cfg = _load_text(tmp_path, yaml.safe_dump({"inference": inference}))
    assert cfg.inference.detector.model_dump() == {**expect, "low_light": True}  # dark frames enhanced by default


def test_env_and_set_layers_merge_into_the_detector(tmp_path):
    env = {"FACESTREAM__INFERENCE__DETECTOR__MIN_FACE": "60", "FACESTREAM__INFERENCE__DETECTOR": "cnn"}
    assert load_config(None, environ=env).inference.detector.model_dump() == {
        "type": "cnn", "min_face": 60, "score_threshold": 0.0, "low_light": True}
    p = tmp_path / "c.yaml"
    p.write_text("inference: {detector: {type: hog, upsample: 2}}\n")
    cfg = load_config(p, environ={}, overrides={"inference": {"detector": "cnn"}})  # another type: replaced
    assert cfg.inference.detector.type == "cnn"
    cfg = load_config(p, environ={"FACESTREAM__INFERENCE__DETECTOR__SCORE_THRESHOLD": "0.3"})
    assert cfg.inference.detector.model_dump() == {"type": "hog", "upsample": 2, "min_face": 32, "score_threshold": 0.3,
                                                   "regions": True, "threads": 2, "track_margin": 0.4, "luma": True, "low_light": True}


def test_inference_view_is_derived_from_the_other_sections(tmp_path):
    cfg = _load_text(tmp_path, "preprocess: {batch_size: 9}\nsink: {out_dir: /o, video: true, crops: true}\n")
    view = cfg.inference_view()
    assert (view.batch_size, view.forward_frames, view.crop_dir, view.crops_for_unknown) == (9, True, "/o/crops", True)
    cfg = _load_text(tmp_path, "sink: {crops: false}\nprivacy: {blur_unknown: true}\n")
    assert cfg.inference_view().crop_dir == "" and cfg.inference_view().crops_for_unknown is False


def test_inference_stage_reads_only_its_own_section_and_view():
    for name in ("inference.py", "face_work.py"):
        text = (REPO / "pipeline" / "stages" / name).read_text()
        for other in ("cfg.preprocess.", "cfg.sink.", "cfg.privacy."):
            assert other not in text, f"{name} reads {other}"


# stage -> its modules; each stage's own sections (capture's are the sources). A stage takes what it needs of
# another stage's section from a view built by the config (PipelineConfig.inference_view), never directly.
STAGE_MODULES = {
    "capture": ("capture.py",),
    "preprocess": ("preprocess.py",),
    "inference": ("inference.py", "face_work.py", "still_work.py"),
    "sink": ("sink.py", "sink_crops.py", "sink_store.py", "preview_out.py", "annotate.py", "retention.py",
             "progress.py"),
}
STAGE_SECTIONS = {"capture": ("sources",), "preprocess": ("preprocess",),
                  "inference": ("inference", "recognition", "engines"), "sink": ("sink",)}


@pytest.mark.parametrize("stage", sorted(STAGE_MODULES))
def test_no_stage_reads_another_stages_section(stage):
    import re

    others = [s for other, secs in STAGE_SECTIONS.items() if other != stage for s in secs]
    pattern = re.compile(rf"\bcfg\.(?:{'|'.join(others)})\b")
    for name in STAGE_MODULES[stage]:
        hits = pattern.findall((REPO / "pipeline" / "stages" / name).read_text())
        assert not hits, f"{name} ({stage}) reads {sorted(set(hits))}"


def test_face_work_builds_the_configured_detector(tmp_path):
    import logging

    from facestream.pipeline.stages.face_work import FaceWork

    cfg = _load_text(tmp_path, "inference:\n  detector: {type: hog, upsample: 0, score_threshold: 0.25, min_face: 30}\n"
                               "  embed: false\n  recognizer: none\n")
    work = FaceWork(cfg, logging.getLogger("test"))
    det = work.analyzer.detector
    assert (det.backend_name, det.upsample, det.score_threshold) == ("dlib-hog", 0, 0.25)
