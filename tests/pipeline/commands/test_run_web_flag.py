"""``facestream run --web``: the web app on; the embedded demo loops as a live camera, other sources stay."""

from __future__ import annotations

import argparse

from facestream.pipeline.commands.run import _load, _with_web, register


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="cmd"))
    return parser.parse_args(["run", *argv])


def test_web_flag_turns_the_app_on_and_loops_the_demo(tmp_path):
    args = _args("--web", "--out", str(tmp_path / "out"))
    assert args.web
    cfg = _load(args)
    assert not cfg.web.enabled and not cfg.sources[0].loop
    _with_web(cfg)
    (demo,) = cfg.sources
    assert cfg.web.enabled and cfg.preview_fps() > 0
    assert demo.loop and demo.policy == "latest" and demo.max_fps == 10


def test_web_flag_leaves_a_real_source_as_it_is(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\0" * 16)
    cfg = _load(_args("--web", str(video)))
    _with_web(cfg)
    (source,) = cfg.sources
    assert cfg.web.enabled
    assert not source.loop and source.policy == "lossless" and source.max_fps is None
