"""A Debian server binary run by a test on 127.0.0.1 (mosquitto, nats-server): start, wait until it answers,
stop or kill, start again on the same port, read its logs. Subclasses give the command line."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path


class LoopbackServer:
    name = "server"
    ready_text = ""  # a line its log shows once it serves (empty: accepting a connection is enough)
    start_timeout_s = 15.0

    def __init__(self, tmp: Path, port: int):
        self.tmp, self.port = tmp, port
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self):
        self.starts += 1
        log = open(self.tmp / f"{self.name}-{self.starts}.log", "wb")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.start_timeout_s
        while not self._ready():
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not start on port {self.port}:\n{self.log_text()}")
            time.sleep(0.05)
        return self

    def _ready(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log_text()
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
        except OSError:
            return False
        return not self.ready_text or self.ready_text in self.log_text()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.proc = None

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.tmp.glob(f"{self.name}-*.log")))
