"""Serving the app: bind the socket ourselves (a busy port is a one-line error, port 0 gets a free one), write
the URL to ``run_dir/web.url`` (and the pid to ``web.pid``), log ``web: open URL``, run uvicorn until SIGTERM/SIGINT.

``facestream web`` calls :func:`serve`; ``facestream run`` with ``web.enabled`` starts :func:`web_process_main` as
one more supervised child (restarted on a crash, stopped with the run).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path

from facestream.errors import FacestreamError
from facestream.fsutil import atomic_write

from ..config import PipelineConfig

log = logging.getLogger("facestream.web")
GRACEFUL_S = 2  # live-view streams never end by themselves: shutdown cuts them after this


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise FacestreamError(f"web app cannot listen on {host}:{port}: {exc.strerror or exc} "
                              "(set web.port, 0 = any free port)") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host in ("::", "[::]") else host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


class Server:
    """The app on a bound socket; :meth:`run` blocks, :meth:`stop` (any thread) ends it."""

    def __init__(self, cfg: PipelineConfig, run_dir: Path | None = None, write_url: bool = True):
        import uvicorn

        from .app import create_app
        from .status import find_run_dir

        self.run_dir = run_dir or find_run_dir(cfg)
        self.sock = bind(cfg.web.host, cfg.web.port)
        self.url = url_of(cfg.web.host, self.sock)
        self.app = create_app(cfg, self.run_dir, self.url)
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="on",
                                timeout_graceful_shutdown=GRACEFUL_S, server_header=False)
        self.uvicorn = uvicorn.Server(config)
        self.url_file = self.run_dir / "web.url" if write_url else None

    def _own_files(self) -> dict[Path, str]:
        if self.url_file is None:
            return {}
        return {self.url_file: self.url, self.url_file.with_name("web.pid"): str(os.getpid())}

    def run(self) -> None:
        for path, text in self._own_files().items():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(path, text + "\n")
            except OSError as exc:
                log.warning("web: cannot write %s: %s", path, exc)
        log.info("web: open %s", self.url)
        if threading.current_thread() is threading.main_thread():
            # uvicorn re-raises the SIGTERM it handled once it has shut down: exit 0 then, a clean stop
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            self.uvicorn.run(sockets=[self.sock])
        finally:
            self.sock.close()
            for path, text in self._own_files().items():  # unless a newer web app wrote them meanwhile
                try:
                    if path.read_text().strip() == text:
                        path.unlink()
                except OSError:
                    pass

    def stop(self) -> None:
        self.uvicorn.should_exit = True


def serve(cfg: PipelineConfig) -> int:
    Server(cfg).run()
    return 0


def web_process_main(cfg_json: str) -> None:
    """Target of the supervised web process; exits 3 (the supervisor's 'cannot run as configured') on a
    FacestreamError such as a busy port."""
    from ..stages import EXIT_UNRECOVERABLE

    cfg = PipelineConfig.model_validate_json(cfg_json)
    logging.basicConfig(level=cfg.log_level.upper(), format=f"%(asctime)s %(levelname)s [web:{os.getpid()}] %(message)s")
    try:
        serve(cfg)
    except FacestreamError as exc:
        print(f"facestream: error: web: {exc}", file=sys.stderr, flush=True)
        sys.exit(EXIT_UNRECOVERABLE)
    sys.exit(0)
