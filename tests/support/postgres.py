"""A real, throwaway PostgreSQL server on loopback for tests: initdb into a temporary folder, ``postgres`` on a
free port (TCP on 127.0.0.1 only, its unix socket in the same folder), stopped and deleted at the end.

PostgreSQL refuses to run as root; as root the server runs as the ``postgres`` user (Debian's package creates
it) through ``runuser``. The binaries are looked up on PATH, then in Debian's /usr/lib/postgresql/*/bin.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def pg_bindir() -> Path | None:
    """The folder holding initdb and postgres, or None when PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found and shutil.which("postgres"):
        return Path(found).parent
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(d, "initdb").exists() and Path(d, "postgres").exists():
            return Path(d)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One server; :meth:`url` gives a URL per database (created on first use)."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="facestream-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.as_user = None
        if os.geteuid() == 0:
            import pwd

            try:
                pw = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise RuntimeError("running as root and there is no 'postgres' user to run PostgreSQL as") from exc
            self.as_user = "postgres"
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self.proc: subprocess.Popen | None = None
        self.user = self.as_user or __import__("getpass").getuser()
        self._dbs: set[str] = set()

    def _cmd(self, *args: str) -> list[str]:
        return (["runuser", "-u", self.as_user, "--"] if self.as_user else []) + list(args)

    def start(self) -> PostgresServer:
        subprocess.run(self._cmd(str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", self.user,
                                 "-E", "UTF8", "--no-sync"), check=True, capture_output=True, timeout=120)
        self._launch()
        return self

    def _launch(self) -> None:
        log = open(self.root / "server.log", "ab")  # noqa: SIM115 - the server's output for its lifetime
        self.proc = subprocess.Popen(
            self._cmd(str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
                      "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}",
                      "-c", "fsync=off", "-c", "max_connections=200"),
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("postgres exited at start: " + (self.root / "server.log").read_text()[-2000:])
            if self._ready():
                return
            time.sleep(0.1)
        raise RuntimeError("postgres did not accept connections within 30 s")

    def _ready(self) -> bool:
        import psycopg

        try:
            psycopg.connect(self.url("postgres"), connect_timeout=2).close()
            return True
        except psycopg.OperationalError:
            return False

    def url(self, db: str = "facestream") -> str:
        if db != "postgres" and db not in self._dbs:
            import psycopg

            with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{db}"')
            self._dbs.add(db)
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        """Stop the server (fast shutdown); its data stays until :meth:`close`."""
        if self.proc is not None and self.proc.poll() is None:
            subprocess.run(self._cmd(str(self.bindir / "pg_ctl"), "-D", str(self.data), "stop", "-m", "fast", "-w"),
                           capture_output=True, timeout=30)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        """Start the stopped server again on the same port and data."""
        self.stop()
        self._launch()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
