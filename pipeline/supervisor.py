"""Runs the four stages on one host as spawned processes and restarts a crashed stage with backoff.

- Processes are started with ``spawn`` (CUDA does not survive fork).
- A stage that exits 0 has finished (its streams ended) and is not restarted; the run is complete when
  the sink exits 0. Any other exit (crash, SIGKILL) is restarted after a delay that doubles up to
  ``restart_backoff_max_s`` and resets once the stage has been up for ``stable_after_s``.
- Each run gets a fresh ``transport.run_id`` (unless configured), in every message header and in
  ``RUN_DIR/run.id``; a stage rejects messages of another run (``other_run``).
- With ``web.enabled`` the web app is one more child, restarted like a stage and stopped when the run stops.
- SIGINT/SIGTERM: every stage gets SIGTERM, has ``stop_timeout_s`` to drain, then SIGKILL. Each child also
  asks the kernel for SIGTERM if the supervisor dies, so no stage outlives it.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import secrets
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from facestream.fsutil import atomic_write

from .config import STAGES, PipelineConfig
from .run_dir import StageLock, private_run_dir, remove_run_dir, secure_dir
from .stages import EXIT_UNRECOVERABLE

log = logging.getLogger("facestream.supervisor")


@dataclass
class Child:
    name: str
    proc: mp.process.BaseProcess | None = None
    started: float = 0.0
    restarts: int = 0
    backoff: float = 0.0
    restart_at: float | None = None
    done: bool = False
    history: list[int] = field(default_factory=list)


def _child_main(name: str, cfg_json: str, restarts: int) -> None:
    try:  # die with the supervisor (Linux)
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    os.environ["FACESTREAM_STAGE_RESTARTS"] = str(restarts)
    os.environ["FACESTREAM_SUPERVISED"] = "1"
    if name == "web":  # the web app (web.enabled): supervised like a stage, never what ends the run
        from .web.server import web_process_main

        web_process_main(cfg_json)
    from .stages import stage_process_main

    stage_process_main(name, cfg_json)


class Supervisor:
    def __init__(self, cfg: PipelineConfig, stages: tuple[str, ...] = STAGES):
        self.own_run_dir: Path | None = None
        if not cfg.transport.run_dir and set(stages) == set(STAGES):
            # All four stages are ours: a run directory of our own, so a second run on this host cannot
            # take our frames (stages started one by one share the default base instead).
            self.own_run_dir = private_run_dir()
            cfg = cfg.model_copy(deep=True)
            cfg.transport.run_dir = str(self.own_run_dir)
        self.run_lock = StageLock(secure_dir(cfg.run_dir()), "run")  # one supervisor per run directory
        if not cfg.transport.run_id and set(stages) == set(STAGES):
            # Every message of this run carries this id and every stage takes only its own: nothing another run
            # (or a stale stage of an earlier one on this run_dir) sends is taken for ours.
            cfg = cfg.model_copy(deep=True)
            cfg.transport.run_id = secrets.token_hex(8)
        if cfg.transport.run_id:
            atomic_write(cfg.run_dir() / "run.id", cfg.transport.run_id + "\n", private=True)
        self.cfg = cfg
        self.cfg_json = cfg.model_dump_json()
        self.children = {name: Child(name) for name in stages}
        if cfg.web.enabled and set(stages) == set(STAGES):
            self.children["web"] = Child("web")
        self.ctx = mp.get_context("spawn")
        self.stopping = False
        self.exit_code = 0

    def start(self, child: Child) -> None:
        child.proc = self.ctx.Process(target=_child_main, args=(child.name, self.cfg_json, child.restarts),
                                      name=f"facestream-{child.name}", daemon=False)
        child.proc.start()
        child.started = time.monotonic()
        child.restart_at = None
        log.info("supervisor: started %s (pid %s)", child.name, child.proc.pid)

    def pids(self) -> dict[str, int | None]:
        return {n: (c.proc.pid if c.proc and c.proc.is_alive() else None) for n, c in self.children.items()}

    def _on_signal(self, signum: int, _frame: object) -> None:
        if not self.stopping:
            log.info("supervisor: %s received, stopping stages", signal.Signals(signum).name)
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        sc = self.cfg.supervisor
        for name in reversed(list(self.children)):  # downstream first, so binds are up before senders connect
            self.start(self.children[name])
        try:
            while not self.stopping:
                time.sleep(0.1)
                now = time.monotonic()
                for c in self.children.values():
                    if c.done or c.proc is None:
                        continue
                    if c.restart_at is not None:
                        if now >= c.restart_at:
                            self.start(c)
                        continue
                    if c.proc.is_alive():
                        continue
                    code = c.proc.exitcode
                    c.history.append(code if code is not None else -999)
                    if code == EXIT_UNRECOVERABLE:
                        log.error("supervisor: %s cannot run as configured (its error is above); stopping", c.name)
                        self.exit_code = 2
                        self.stopping = True
                        break
                    if code == 0:
                        c.done = True
                        log.info("supervisor: %s finished", c.name)
                        if c.name == "sink" or all(x.done for x in self.children.values()):
                            self.stopping = True
                        continue
                    if now - c.started >= sc.stable_after_s:
                        c.backoff = 0.0
                    c.backoff = sc.restart_backoff_min_s if c.backoff == 0 else min(sc.restart_backoff_max_s, c.backoff * 2)
                    c.restarts += 1
                    c.restart_at = now + c.backoff
                    log.warning("supervisor: %s exited with %s; restart #%d in %.1f s", c.name,
                                _describe(code), c.restarts, c.backoff)
        finally:
            self.stop_all()
            self.run_lock.release()
            if self.own_run_dir is not None:
                remove_run_dir(self.own_run_dir)
        return self.exit_code

    def stop_all(self) -> None:
        timeout = self.cfg.supervisor.stop_timeout_s
        alive = [c.proc for c in self.children.values() if c.proc is not None and c.proc.is_alive()]
        for p in alive:
            try:
                os.kill(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        for p in alive:
            p.join(max(0.0, deadline - time.monotonic()))
        for p in alive:
            if p.is_alive():
                log.warning("supervisor: %s did not stop in %.1f s, killing it", p.name, timeout)
                p.kill()
                p.join(1.0)


def _describe(code: int | None) -> str:
    if code is None:
        return "unknown status"
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"
