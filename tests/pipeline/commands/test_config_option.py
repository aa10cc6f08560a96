"""One config file for every command: `facestream config` prints the gallery path from the YAML and the gallery,
models and engines commands use it; the demo's gallery is used only when the run is the demo."""

from __future__ import annotations

import argparse

import yaml

from facestream.pipeline.cli import main
from facestream.pipeline.recognition.gallery import Gallery


def _config(tmp_path, **sections) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(sections))
    return str(path)


def test_config_prints_the_gallery_of_the_yaml_and_the_gallery_commands_use_it(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("FACESTREAM_GALLERY_KEY", raising=False)
    monkeypatch.setenv("FACESTREAM_GALLERY", str(tmp_path / "from-env.db"))  # the config file wins over it
    gallery = tmp_path / "deploy" / "gallery.db"
    config = _config(tmp_path, inference={"gallery": str(gallery)})

    assert main(["config", "--config", config]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["inference"]["gallery"] == str(gallery)

    with Gallery(gallery):
        pass  # an empty gallery at the configured path
    assert main(["gallery", "list", "--config", config]) == 0
    assert capsys.readouterr().out.startswith(f"{gallery}: 0 people")
    assert main(["gallery", "list", "--config", config, "--gallery", str(tmp_path / "other.db")]) == 2
    assert f"no gallery at {tmp_path / 'other.db'}" in capsys.readouterr().err  # the argument wins over the file
    assert not (tmp_path / "from-env.db").exists()


def test_facestream_config_names_the_file_once_for_a_deployment(tmp_path, monkeypatch, capsys):
    """Containers and systemd units set $FACESTREAM_CONFIG instead of repeating the gallery path."""
    monkeypatch.delenv("FACESTREAM_GALLERY_KEY", raising=False)
    monkeypatch.setenv("FACESTREAM_GALLERY", str(tmp_path / "from-env.db"))
    gallery = tmp_path / "deploy" / "gallery.db"
    monkeypatch.setenv("FACESTREAM_CONFIG", _config(tmp_path, inference={"gallery": str(gallery)}))
    with Gallery(gallery):
        pass
    assert main(["gallery", "list"]) == 0
    assert capsys.readouterr().out.startswith(f"{gallery}: 0 people")


def test_models_and_engines_commands_take_the_store_and_cache_from_the_config(tmp_path, capsys):
    store, engines = tmp_path / "store", tmp_path / "engines"
    config = _config(tmp_path, inference={"models_dir": str(store)}, engines={"engine_dir": str(engines)})
    assert main(["models", "list", "--config", config]) == 0
    assert f"no models in {store}" in capsys.readouterr().out
    assert main(["engines", "list", "--config", config]) == 0
    assert str(engines) in capsys.readouterr().out


def test_a_bad_config_file_is_one_line_for_any_command(tmp_path, capsys):
    config = _config(tmp_path, inference={"detector": {"type": "yolo"}})
    assert main(["gallery", "list", "--config", config]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "inference.detector" in err[0] and "yolo" in err[0]


def _run_config(argv: list[str]):
    from facestream.pipeline.commands import run

    parser = argparse.ArgumentParser()
    run.register(parser.add_subparsers())
    args = parser.parse_args(["run", *argv])
    return run, run._load(args)


def test_the_demo_gallery_is_not_used_when_the_sources_are_not_the_demo(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    run, cfg = _run_config(["--set", f"sources=[{{id: cam, uri: '{frames}'}}]", "--out", str(tmp_path / "out")])
    assert not cfg.is_demo()
    assert run.use_demo_gallery(cfg) is False
    assert cfg.inference.gallery == "" and not (tmp_path / "out" / "demo-gallery.db").exists()
    _, demo = _run_config(["--set", "sources=[{id: a, uri: demo}, {id: b, uri: demo}]"])
    assert demo.is_demo()


def test_run_takes_its_file_as_argument_or_with_config(tmp_path):
    config = _config(tmp_path, sink={"out_dir": str(tmp_path / "o")})
    for argv in ([config], ["--config", config]):
        _, cfg = _run_config(argv)
        assert cfg.sink.out_dir == str(tmp_path / "o") and cfg.sink.stdout is False


def test_keys_gen_writes_where_the_config_expects_the_keys(tmp_path, capsys):
    config = _config(tmp_path, transport={"curve": {"key_dir": str(tmp_path / "keys"), "key_name": "edge7"}})
    assert main(["keys", "gen", "--config", config]) == 0
    assert (tmp_path / "keys" / "edge7.public").is_file() and (tmp_path / "keys" / "edge7.secret").is_file()
    assert main(["keys", "gen", "--config", _config(tmp_path)]) == 2
    assert "pass --out DIR" in capsys.readouterr().err


def _gallery_add_args(argv: list[str]) -> argparse.Namespace:
    from facestream.pipeline.cli import build_parser
    from facestream.pipeline.commands.config_args import apply_config_defaults

    args = build_parser("gallery").parse_args(["gallery", "add", "Someone", "photo.jpg", *argv])
    apply_config_defaults(args)
    return args


def test_gallery_add_enrols_with_the_configs_detector_unless_told_otherwise(tmp_path, monkeypatch):
    monkeypatch.delenv("FACESTREAM_CONFIG", raising=False)
    config = _config(tmp_path, inference={"detector": {"type": "cnn", "min_face": 60}})
    assert _gallery_add_args(["--config", config]).detector == "cnn", "the web library enrols with it too"
    assert _gallery_add_args(["--config", config, "--detector", "hog"]).detector == "hog"
    assert _gallery_add_args([]).detector == "hog", "no config: the default detector"
    monkeypatch.setenv("FACESTREAM_CONFIG", _config(tmp_path, inference={"detector": "mtcnn"}))
    assert _gallery_add_args([]).detector == "mtcnn"


def test_identify_and_gallery_add_take_detector_and_model_store_from_the_config(tmp_path, monkeypatch):
    from facestream.pipeline.cli import build_parser
    from facestream.pipeline.commands.config_args import apply_config_defaults

    monkeypatch.delenv("FACESTREAM_CONFIG", raising=False)
    config = _config(tmp_path, inference={"detector": "mtcnn", "models_dir": str(tmp_path / "models")})
    for argv in (["identify", "x.jpg"], ["gallery", "add", "Someone", "x.jpg"]):
        args = build_parser(argv[0]).parse_args([*argv, "--config", config])
        apply_config_defaults(args)
        assert args.detector == "mtcnn" and args.store == tmp_path / "models", argv
        args = build_parser(argv[0]).parse_args([*argv, "--config", config, "--detector", "cnn", "--store", "/m"])
        apply_config_defaults(args)
        assert args.detector == "cnn" and str(args.store) == "/m", argv
