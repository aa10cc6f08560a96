"""The four stages. :func:`run_stage` is the entry point of every stage process."""

from __future__ import annotations

import logging
import os

from ..config import STAGES, PipelineConfig

# Exit status of a stage that cannot run as configured (a one-line FacestreamError): the supervisor stops the
# run instead of restarting it in a loop.
EXIT_UNRECOVERABLE = 3


def stage_class(name: str):
    if name == "capture":
        from .capture import CaptureStage as cls
    elif name == "preprocess":
        from .preprocess import PreprocessStage as cls
    elif name == "inference":
        from .inference import InferenceStage as cls
    elif name == "sink":
        from .sink import SinkStage as cls
    else:
        raise ValueError(f"unknown stage {name!r} (stages: {', '.join(STAGES)})")
    return cls


def run_stage(name: str, cfg: PipelineConfig) -> int:
    """Run one stage in this process until its streams end or it is told to stop. Returns the exit code."""
    from ..metrics import serve_metrics
    from ..run_dir import StageLock, secure_dir

    logging.basicConfig(level=cfg.log_level.upper(), format=f"%(asctime)s %(levelname)s [{name}:{os.getpid()}] %(message)s")
    cfg = cfg.for_stage(name)  # a shard's capture/preprocess/inference: only its streams
    if cfg.shard.id and name != "sink":
        logging.getLogger("facestream").info("%s: shard %s runs stream(s) %s", name, cfg.shard.id,
                                             ", ".join(s.id for s in cfg.sources) or "(none)")
    run_dir = secure_dir(cfg.run_dir())
    lock = StageLock(run_dir, name)  # a second process of this stage on this run dir is refused
    if cfg.metrics.enabled:
        serve_metrics(name, cfg.metrics.host, cfg.metrics.ports.get(name, 0), run_dir)
    from ..metrics import STAGE_RESTARTS

    restarts = int(os.environ.get("FACESTREAM_STAGE_RESTARTS", "0") or 0)
    if restarts:
        STAGE_RESTARTS.labels(name).inc(restarts)
    pid_file = run_dir / f"{name}.pid"
    pid_file.write_text(f"{os.getpid()}\n")
    stage = stage_class(name)(cfg)
    try:
        return stage.run()
    finally:
        _end_zmq()
        try:
            if pid_file.read_text().strip() == str(os.getpid()):
                pid_file.unlink()
        except OSError:
            pass
        lock.release()


def stage_process_main(name: str, cfg_json: str) -> None:
    """Target of a spawned stage process (config travels as JSON: spawn pickles nothing heavy)."""
    import sys

    from facestream.errors import FacestreamError

    cfg = PipelineConfig.model_validate_json(cfg_json)
    try:
        code = run_stage(name, cfg)
    except FacestreamError as exc:  # a setup the stage cannot run with: restarting would only repeat it
        from ..sources.uri import mask_secrets

        print(f"facestream: error: {name}: {mask_secrets(str(exc))}", file=sys.stderr, flush=True)
        code = EXIT_UNRECOVERABLE
    sys.exit(code)


def _end_zmq() -> None:
    """Let libzmq finish (or give up on, after each socket's LINGER) what is still queued before Python exits.

    Payloads go out zero-copy: libzmq's I/O thread reads the frame's own memory. At interpreter exit pyzmq drops
    its references to those buffers; a message still queued then points at freed memory and libzmq aborts with
    "Bad address (src/tcp.cpp)". Destroying the context first closes what is left open and waits for the queues.
    """
    import zmq

    ctx = zmq.Context.instance()
    if not ctx.closed:
        ctx.destroy(linger=1000)
