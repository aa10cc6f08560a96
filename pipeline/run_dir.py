"""The run directory: ipc sockets, pid files and metrics URLs of one run, private to its user.

- The default base is ``$XDG_RUNTIME_DIR/facestream`` or ``/tmp/facestream-<uid>``, created 0700; a base
  that exists but belongs to someone else (or is a symlink) is refused: on a shared /tmp another user could
  otherwise pre-create it and receive every frame.
- ``facestream run`` without ``transport.run_dir`` gets a directory of its own under the base
  (``run-<pid>``), so two runs on one host never share sockets. Stages started one by one
  (``facestream stage``) share the base, as they must to find each other.
- Each stage holds a lock on ``<stage>.lock`` while it runs; a second process of the same stage on the same
  run directory is refused in one line instead of stealing the other's frames.
- The supervisor writes the run's ``transport.run_id`` to ``run.id`` (0600); every message carries it and a
  stage rejects messages of another run (pipeline/stages/inlet.py).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
from pathlib import Path

from facestream.errors import FacestreamError


def default_base() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "facestream"
    return Path("/tmp") / f"facestream-{os.getuid()}"


def secure_dir(path: Path) -> Path:
    """Create ``path`` 0700 (parents as needed); refuse one that is a symlink or belongs to another user."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise FacestreamError(f"transport.run_dir {path} is not a plain directory (a symlink?); refusing to use it")
    if st.st_uid != os.getuid():
        raise FacestreamError(f"transport.run_dir {path} belongs to uid {st.st_uid}, not to this user "
                              f"({os.getuid()}); refusing to use it")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def private_run_dir(base: Path | None = None) -> Path:
    """A fresh directory for one supervised run under the (secured) base."""
    base = secure_dir(base or default_base())
    return secure_dir(base / f"run-{os.getpid()}")


def remove_run_dir(path: Path) -> None:
    """Remove a per-run directory made by :func:`private_run_dir` (never a configured one)."""
    if path.name.startswith("run-"):
        shutil.rmtree(path, ignore_errors=True)


class StageLock:
    """An exclusive lock on ``run_dir/<stage>.lock``, held while the stage runs; released by the kernel on exit."""

    def __init__(self, run_dir: Path, stage: str):
        self.path = run_dir / f"{stage}.lock"
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(self.fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(self.fd)
            raise FacestreamError(
                f"another facestream {stage} (pid {other}) is running on transport.run_dir {run_dir}; "
                f"stop it or give this run its own transport.run_dir") from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
