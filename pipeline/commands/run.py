"""``facestream run [SOURCE ...]`` (all stages under the supervisor) and ``facestream stage NAME`` (one stage).

``run`` takes sources (run_sources.py) and/or a ``.yaml`` config as positional arguments; with neither it runs
the embedded demo. The terminal gets progress lines (from the sink) and the summary, on stderr; results go to
files, and to stdout as JSON lines only with ``--stdout json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import yaml

from facestream.errors import FacestreamError

from ..config import STAGES, PipelineConfig, load_config
from .run_sources import source_entries, split_inputs


def _parse_sets(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise FacestreamError(f"--set expects KEY=VALUE (e.g. sink.video=true), got {pair!r}")
        key, value = pair.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = yaml.safe_load(value)
    return out


def _positional(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    """The positional config file and sources: ``run``'s SOURCE list, or ``config``'s CONFIG."""
    if hasattr(args, "inputs"):
        return split_inputs(args.inputs or [])
    return getattr(args, "config_file", None), []


def _config_path(args: argparse.Namespace) -> str | None:
    """``--config FILE`` or the positional config file (one of them)."""
    flag, positional = getattr(args, "config", None), _positional(args)[0]
    if flag and positional and flag != positional:
        raise FacestreamError(f"two config files given ({positional} and --config {flag}); pass one")
    return flag or positional


def _load(args: argparse.Namespace) -> PipelineConfig:
    path = _config_path(args)
    overrides = _parse_sets(args.set or [])
    if getattr(args, "out", None):
        overrides.setdefault("sink", {})["out_dir"] = args.out
    if getattr(args, "stdout", None) == "json":
        overrides.setdefault("sink", {})["stdout"] = True
    sources = _positional(args)[1]
    if sources:
        if "sources" in overrides:
            raise FacestreamError("sources given both as arguments and with --set sources=...; pass one")
        overrides["sources"] = source_entries(sources)  # replace the config's sources
    return load_config(path, overrides=overrides)


def use_demo_gallery(cfg: PipelineConfig) -> bool:
    """Point a demo run with no gallery set at the demo's gallery (created once); False for any other run.

    The embedded demo recognises the person in its clip, enrolled from a different view. Only the demo (every
    source is ``demo``): a run of other sources keeps the configured gallery ($FACESTREAM_GALLERY or the
    default path), also when it was started without a file (``--set sources=...``).
    """
    if not (cfg.is_demo() and cfg.inference.recognizer == "gallery" and not cfg.inference.gallery):
        return False
    from ..demo_gallery import ensure_demo_gallery

    gallery = ensure_demo_gallery(Path(cfg.sink.out_dir) / "demo-gallery.db", cfg.inference.models_dir,
                                  cfg.inference.detector.type)
    cfg.inference.gallery = str(gallery)
    return True


def _with_web(cfg: PipelineConfig) -> None:
    """``run --web``: the web app on; the embedded demo then loops as a live camera (until Ctrl-C), so the
    live page has something to show."""
    cfg.web.enabled = True
    if cfg.is_demo():
        for source in cfg.sources:
            source.loop, source.policy = True, "latest"
            source.max_fps = source.max_fps or 10


def cmd_run(args: argparse.Namespace) -> int:
    from ..supervisor import Supervisor

    cfg = _load(args)
    if getattr(args, "web", False):
        _with_web(cfg)
    if cfg.web.enabled:  # refuse an exposed app without auth before anything starts
        from ..web.auth import check_exposure

        check_exposure(cfg.web)
    if cfg.shard.id:  # every stage of this host, the sink too, runs this shard's streams
        cfg = cfg.model_copy(update={"sources": cfg.for_stage("capture").sources})
        if not cfg.sources:
            raise FacestreamError(f"shard {cfg.shard.id!r} has no streams (facestream config --shards)")
    use_demo_gallery(cfg)
    origin = _config_path(args) or "the embedded default (demo clip from scikit-image's astronaut, CPU)"
    out = Path(cfg.sink.out_dir).resolve()
    ports = cfg.metrics.ports
    log = logging.getLogger("facestream")
    log.info("facestream: running %s", origin)
    log.info("facestream: results -> %s, events -> %s", out / "results.jsonl", out / "events")
    if cfg.metrics.enabled:
        log.info("facestream: metrics -> %s", ", ".join(
            f"{s} http://{cfg.metrics.host}:{ports.get(s, 0) or '(any port; see ' + str(cfg.run_dir()) + ')'}/metrics"
            for s in STAGES))
    started_ns = time.time_ns()
    code = Supervisor(cfg).run()
    summary = out / "summary.json"
    if summary.is_file():
        try:
            data = json.loads(summary.read_text())
            for sid, s in data.get("streams", {}).items():
                log.info("facestream: stream %s: %d results, %d dropped, %d lost; summary in %s", sid,
                         s.get("results", 0), s.get("dropped_total", 0), s.get("lost", 0), summary)
        except (OSError, ValueError):
            pass
    named = _identities(out / "events", started_ns)
    if named:
        log.info("facestream: identified: %s", ", ".join(f"{k} ({v} identification{'s' if v > 1 else ''})"
                                                        for k, v in sorted(named.items())))
    return code


def _identities(events_dir: Path, since_ns: int) -> dict[str, int]:
    """Identity -> number of ``identified`` events since ``since_ns`` (this run: one per track in video, one
    per face in a still), from the event files."""
    counts: dict[str, int] = {}
    for path in sorted(events_dir.glob("*.jsonl")) if events_dir.is_dir() else []:
        try:
            lines = path.read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("kind") == "identified" and e.get("identity") and e.get("ts_ns", 0) >= since_ns:
                counts[e["identity"]] = counts.get(e["identity"], 0) + 1
    return counts


def cmd_stage(args: argparse.Namespace) -> int:
    from ..stages import run_stage

    cfg = _load(args)
    return run_stage(args.name, cfg)


def cmd_config(args: argparse.Namespace) -> int:
    from ..sources.uri import mask_uri

    cfg = _load(args)
    if getattr(args, "shards", False):
        return print_shards(cfg)
    data = json.loads(cfg.model_dump_json())
    if not getattr(args, "show_secrets", False):  # camera passwords and tokens stay off screens and pastes
        for source in data.get("sources") or []:
            source["uri"] = mask_uri(str(source.get("uri", "")))
    print(yaml.safe_dump(data, sort_keys=False), end="")
    return 0


def print_shards(cfg: PipelineConfig) -> int:
    """``facestream config --shards``: which shard runs which stream (the same on every host)."""
    if not cfg.shard.shards:
        raise FacestreamError("no shards configured (shard.shards is empty): every host runs every stream")
    where = cfg.shard_assignment()
    pinned = {s.id for s in cfg.sources if s.shard is not None}
    for shard in cfg.shard.shards:
        streams = [sid for sid, sh in where.items() if sh == shard]
        here = "  <- this host" if shard == cfg.shard.id else ""
        print(f"{shard}: {len(streams)} stream(s){here}")
        for sid in streams:
            print(f"  {sid}{'  (pinned)' if sid in pinned else ''}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run every stage on this host (no SOURCE or CONFIG: the embedded demo)")
    p.add_argument("inputs", nargs="*", metavar="SOURCE",
                   help="video file, image folder, rtsp://..., http(s)://..., webcam:N or demo, each its own stream "
                        "(replacing the config's sources); an argument ending in .yaml/.yml is the config file")
    p.add_argument("--config", metavar="FILE", help="YAML config file (the same as a .yaml argument)")
    p.add_argument("--stdout", choices=["json"], default=None,
                   help="json: also print each result as one JSON line on stdout (for pipes; nothing else goes there)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key, e.g. sink.video=true")
    p.add_argument("--out", help="output folder (sink.out_dir)")
    p.add_argument("--web", action="store_true",
                   help="also serve the web app (web.enabled); the embedded demo then loops until Ctrl-C")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("stage", help="run one stage (stages on different hosts)")
    p.add_argument("name", choices=STAGES)
    p.add_argument("--config", metavar="FILE", help="YAML config file")
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
    p.add_argument("--out", help="output folder (sink only)")
    p.set_defaults(func=cmd_stage)

    p = sub.add_parser("config", help="print the effective config (defaults, file, env overrides)")
    p.add_argument("config_file", nargs="?", metavar="CONFIG", help="YAML config file (default: the embedded demo)")
    p.add_argument("--config", metavar="FILE", help="the same as CONFIG")
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
    p.add_argument("--show-secrets", action="store_true", help="print source URIs with their credentials")
    p.add_argument("--shards", action="store_true", help="print which shard runs which stream (shard.shards)")
    p.set_defaults(func=cmd_config)
