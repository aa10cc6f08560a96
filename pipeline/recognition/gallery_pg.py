"""The gallery on PostgreSQL (psycopg 3), shared by every host that names the same database URL.

- Writes: one transaction each, holding one advisory lock (``pg_migrations.LOCK_KEY``), so writers are
  serialised like SQLite's ``BEGIN IMMEDIATE`` (the "already has this photo" checks, renames and unknown-id
  assignment stay race-free across hosts). A transaction opened inside another joins it.
- Live reload: every change that matters to matching bumps ``gallery_version`` and sends ``NOTIFY
  facestream_gallery, 'version'``; a new unknown cluster sends ``'unknowns'``. A second connection LISTENs;
  :meth:`PostgresStore.changed_since` drains it (one ``SELECT 1`` round trip, which also notices a dead server).
- Outage: a lost connection is re-opened on the next use, at most every ``RETRY_S``; meanwhile every use raises
  :class:`GalleryUnavailable` (one line). After the listener reconnects, the next check reports a change (what
  was sent while it was away is lost) so the reader re-reads the gallery.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from facestream.errors import FacestreamError

from .pg_migrations import LOCK_KEY, migrate

CHANNEL = "facestream_gallery"
RETRY_S = 2.0
CONNECT_TIMEOUT_S = 5
log = logging.getLogger(__name__)


class GalleryUnavailable(FacestreamError):
    """The gallery database cannot be reached right now."""


def _psycopg():
    try:
        import psycopg
    except ImportError as exc:
        raise FacestreamError(
            "a postgresql:// gallery needs psycopg: pip install 'facestream[postgres]'") from exc
    return psycopg


def redact(url: str) -> str:
    """The URL without its password (for messages and logs)."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        d = conninfo_to_dict(url)
    except Exception:  # noqa: BLE001 - a URL psycopg cannot parse is reported by connect() itself
        return url.split("@")[-1]
    host = d.get("host", "")
    return f"postgresql://{d.get('user', '')}@{host}{':' + str(d['port']) if d.get('port') else ''}/{d.get('dbname', '')}"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class PostgresStore:
    """One gallery database; one write connection and, once :meth:`changed_since` is called, one listener."""

    rowid = "id"
    shared = True

    def __init__(self, url: str, create: bool = True):
        self.psycopg = _psycopg()
        self.url = url
        self.location = redact(url)
        self._conn: Any = None
        self._listen: Any = None
        self._next_try = 0.0
        self._depth = 0
        self._pending = False  # a notification that matters arrived
        self._sql: dict[str, str] = {}
        migrate(self._connection(), self.location, create=create)

    # -- connections -------------------------------------------------------------------------------------

    def _connect(self) -> Any:
        if time.monotonic() < self._next_try:
            raise GalleryUnavailable(f"gallery database {self.location} is unreachable (retrying)")
        try:
            return self.psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                                        application_name="facestream")
        except self.psycopg.Error as exc:
            self._next_try = time.monotonic() + RETRY_S
            raise GalleryUnavailable(f"cannot reach the gallery database {self.location}: {_first_line(exc)}") from None

    def _connection(self) -> Any:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = self._connect()
        return self._conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except self.psycopg.OperationalError as exc:
            if self._conn is not None and self._conn.broken:
                self._next_try = time.monotonic() + RETRY_S
            raise GalleryUnavailable(f"gallery database {self.location}: {_first_line(exc)}") from None

    # -- statements --------------------------------------------------------------------------------------

    def _translate(self, sql: str) -> str:
        q = self._sql.get(sql)
        if q is None:
            q = self._sql[sql] = sql.replace("%", "%%").replace("?", "%s")
        return q

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with self._errors():
            return self._connection().execute(self._translate(sql), params or None)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self._errors(), self._connection().cursor() as cur:
                cur.executemany(self._translate(sql), rows)

    def insert_id(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self.execute(sql + " RETURNING id", params).fetchone()[0])

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    @contextmanager
    def transaction(self) -> Iterator[PostgresStore]:
        """One atomic write holding the gallery's advisory lock; rolled back on any error; joins an open one."""
        if self._depth:
            yield self
            return
        with self._errors(), self._connection().transaction():
            self._depth = 1
            try:
                self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
                yield self
            finally:
                self._depth = 0

    @contextmanager
    def reading(self) -> Iterator[PostgresStore]:
        """A consistent read of several statements (one repeatable-read, read-only transaction)."""
        if self._depth:
            yield self
            return
        with self._errors(), self._connection().transaction():
            self._connection().execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            self._depth = 1
            try:
                yield self
            finally:
                self._depth = 0

    # -- meta, version, notifications --------------------------------------------------------------------

    def get_meta(self, key: str) -> bytes | None:
        row = self.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    def set_meta(self, key: str, value: bytes | str | int) -> None:
        raw = value if isinstance(value, bytes) else str(value).encode()
        self.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=EXCLUDED.value",
                     (key, raw))

    def initialise(self) -> None:
        """Nothing: the migrations created the schema and the change counter."""

    def version(self) -> int:
        return int(self.execute("SELECT version FROM gallery_version WHERE id=1").fetchone()[0])

    def bump_version(self) -> None:
        self.execute("UPDATE gallery_version SET version = version + 1 WHERE id=1")
        self.notify("version")

    def notify(self, what: str) -> None:
        """Tell every listening host, when the current transaction commits."""
        self.execute("SELECT pg_notify(?, ?)", (CHANNEL, what))

    def _on_notify(self, n: Any) -> None:
        # The unknown clusters this process creates are already in its memory; another host's are news.
        own = self._conn.info.backend_pid if self._conn is not None and not self._conn.closed else None
        if n.payload != "unknowns" or n.pid != own:
            self._pending = True

    def changed_since(self, seen_version: int) -> bool:
        """Whether a notification that matters arrived since the last call (always True on the first call
        and after the listener reconnected); False while the server is unreachable."""
        fresh = False
        if self._listen is None or self._listen.closed or self._listen.broken:
            try:
                self._listen = self._connect()
                self._listen.add_notify_handler(self._on_notify)
                self._listen.execute(f"LISTEN {CHANNEL}")
            except (GalleryUnavailable, self.psycopg.Error) as exc:
                self._listen = None
                log.warning("gallery: %s; keeping the gallery loaded last", _first_line(exc))
                return False
            fresh = True
        try:
            self._listen.execute("SELECT 1")  # delivers what arrived to _on_notify; fails if the server is gone
        except self.psycopg.Error as exc:
            log.warning("gallery: lost %s (%s); keeping the gallery loaded last", self.location, _first_line(exc))
            self._listen.close()
            self._listen = None
            return False
        changed, self._pending = self._pending or fresh or seen_version < 0, False
        return changed

    def close(self) -> None:
        for conn in (self._conn, self._listen):
            if conn is not None:
                conn.close()
        self._conn = self._listen = None
