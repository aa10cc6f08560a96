"""ZeroMQ CURVE for links between hosts: key files, loaders, and server/client socket set-up.

A server socket accepts only clients whose public key is in its allowed list; the check runs in a ZAP
handler (pyzmq's ThreadAuthenticator, one per zmq.Context) that also counts every refusal in
``facestream_transport_auth_failures_total``. Key files are z85 text, one key per file: ``NAME.public``
(share it) and ``NAME.secret`` (mode 0600, never leaves its host). See docs/security.md.
"""

from __future__ import annotations

import atexit
import ipaddress
import logging
import stat
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import zmq
from prometheus_client import Counter
from zmq.auth.thread import ThreadAuthenticator

from facestream.errors import FacestreamError
from facestream.fsutil import atomic_write

log = logging.getLogger(__name__)

PUBLIC_SUFFIX = ".public"
SECRET_SUFFIX = ".secret"
_Z85_KEY_LEN = 40

AUTH_FAILURES = Counter(
    "facestream_transport_auth_failures_total",
    "Peers refused by CURVE authentication (key not in the allowed list)",
    ["stage"],
)


@dataclass(frozen=True)
class KeyPairFiles:
    public: Path
    secret: Path


def generate_keypair(out_dir: str | Path, name: str = "facestream", overwrite: bool = False) -> KeyPairFiles:
    """Write ``NAME.public`` and ``NAME.secret`` (0600) in ``out_dir``; refuse to overwrite unless asked."""
    if not name or "/" in name or name.startswith("."):
        raise FacestreamError(f"key name {name!r} must be a plain file name")
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    files = KeyPairFiles(out / f"{name}{PUBLIC_SUFFIX}", out / f"{name}{SECRET_SUFFIX}")
    if not overwrite:
        for path in (files.public, files.secret):
            if path.exists():
                raise FacestreamError(f"{path} already exists (pass --force to replace the key pair)")
    public, secret = zmq.curve_keypair()
    _write_private(files.secret, secret.decode("ascii") + "\n")
    files.public.write_text(public.decode("ascii") + "\n")
    return files


def _write_private(path: Path, text: str) -> None:
    """Create ``path`` with mode 0600 from the start (no window in which others could read it)."""
    atomic_write(path, text, private=True)


def _read_key(text: str, what: str, source: str) -> bytes:
    """A z85 key from plain text or from a ZeroMQ certificate file (``public-key = "..."``)."""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(f"{what}-key") and "=" in line:
            line = line.split("=", 1)[1].strip().strip('"')
        if len(line) == _Z85_KEY_LEN:
            try:
                zmq.utils.z85.decode(line)
            except (ValueError, KeyError):
                continue
            return line.encode("ascii")
    raise FacestreamError(f"{source}: no z85 {what} key (40 characters) found")


def load_public_key(value: str | Path) -> bytes:
    """A z85 public key given inline (40 characters) or as a path to a ``.public``/certificate file."""
    text = str(value).strip()
    if len(text) == _Z85_KEY_LEN and not Path(text).exists():
        return _read_key(text, "public", "public key")
    path = Path(text).expanduser()
    if not path.is_file():
        raise FacestreamError(f"public key {text!r} is neither a 40-character z85 key nor a readable file")
    return _read_key(path.read_text(), "public", str(path))


def load_secret_key(path: str | Path) -> bytes:
    """The z85 secret key in ``path``; the file must not be readable by group or others."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FacestreamError(f"secret key file not found: {path}")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise FacestreamError(f"secret key file {path} is readable by others (mode {mode:04o}); run chmod 600 {path}")
    return _read_key(path.read_text(), "secret", str(path))


def load_allowed_keys(entries: Iterable[str | Path]) -> set[bytes]:
    """Allowed client keys from z85 strings, ``.public`` files, or directories of ``.public`` files."""
    keys: set[bytes] = set()
    for entry in entries:
        path = Path(str(entry)).expanduser()
        if path.is_dir():
            found = sorted(path.glob(f"*{PUBLIC_SUFFIX}"))
            if not found:
                raise FacestreamError(f"no *{PUBLIC_SUFFIX} key files in {path}")
            keys.update(load_public_key(p) for p in found)
        else:
            keys.add(load_public_key(entry))
    return keys


def public_key_of(secret_key: bytes) -> bytes:
    return zmq.curve_public(secret_key)


class CountingAuthenticator(ThreadAuthenticator):
    """pyzmq's ZAP handler thread, counting and logging every refusal (per socket domain)."""

    def __init__(self, context: zmq.Context) -> None:
        super().__init__(context, log=logging.getLogger(f"{__name__}.zap"))
        self._request: tuple[str, str] = ("", "")
        self._allowed_keys: dict[str, frozenset[bytes]] = {}
        self._refused_logged: set[tuple[str, str]] = set()

    def allow_keys(self, domain: str, keys: Iterable[bytes]) -> None:
        self._allowed_keys[domain] = frozenset(keys)
        self.configure_curve_callback(domain, self)

    def callback(self, domain: str, key: bytes) -> bool:
        """Credentials provider for configure_curve_callback: is ``key`` (z85) allowed on ``domain``?"""
        return key in self._allowed_keys.get(domain, frozenset())

    async def handle_zap_message(self, msg: list[bytes]) -> None:
        # ZAP request: version, request id, domain, address, identity, mechanism, credentials...
        if len(msg) >= 4:
            self._request = (msg[2].decode("utf8", "replace"), msg[3].decode("utf8", "replace"))
        await super().handle_zap_message(msg)

    def _send_zap_reply(self, request_id: bytes, status_code: bytes, status_text: bytes,
                        user_id: str = "anonymous") -> None:
        if status_code != b"200":
            domain, address = self._request
            AUTH_FAILURES.labels(domain or "*").inc()
            if (domain, address) not in self._refused_logged:  # once per peer address, not per retry
                if len(self._refused_logged) < 10000:
                    self._refused_logged.add((domain, address))
                log.warning("refused peer %s on socket %s: %s", address or "?", domain or "*",
                            status_text.decode("utf8", "replace"))
        super()._send_zap_reply(request_id, status_code, status_text, user_id)


_AUTHENTICATORS: dict[int, tuple[zmq.Context, CountingAuthenticator]] = {}
_AUTH_LOCK = threading.Lock()


def authenticator_for(context: zmq.Context) -> CountingAuthenticator:
    """The context's ZAP handler, started on first use (ZeroMQ allows one per context)."""
    with _AUTH_LOCK:
        entry = _AUTHENTICATORS.get(id(context))
        if entry is None or entry[0] is not context:
            auth = CountingAuthenticator(context)
            auth.start()
            _AUTHENTICATORS[id(context)] = (context, auth)
            return auth
        return entry[1]


def stop_authenticator(context: zmq.Context) -> None:
    """Stop the context's ZAP handler. Call it before ``context.term()``, which otherwise waits for ever on
    the handler's socket (``context.destroy()`` closes it too, and this is then a no-op)."""
    with _AUTH_LOCK:
        entry = _AUTHENTICATORS.pop(id(context), None)
    if entry is not None and not context.closed:
        try:
            entry[1].stop()
        except zmq.ZMQError:  # its sockets were closed by context.destroy()
            pass


@atexit.register
def _stop_all() -> None:
    for context, _auth in list(_AUTHENTICATORS.values()):
        stop_authenticator(context)


def configure_curve_server(socket: zmq.Socket, secret_key: bytes, allowed_public_keys: Iterable[bytes | str],
                           name: str = "default") -> CountingAuthenticator:
    """Make ``socket`` a CURVE server that accepts only ``allowed_public_keys`` (z85). Call before bind().

    ``name`` becomes the socket's ZAP domain and the ``stage`` label of the auth-failure counter.
    """
    allowed = {k.encode("ascii") if isinstance(k, str) else bytes(k) for k in allowed_public_keys}
    if not allowed:
        raise FacestreamError(f"CURVE socket {name!r}: no allowed client keys configured")
    auth = authenticator_for(socket.context)
    auth.allow_keys(name, allowed)
    socket.zap_domain = name.encode("utf8")
    socket.curve_secretkey = secret_key
    socket.curve_publickey = public_key_of(secret_key)
    socket.curve_server = True
    return auth


def configure_curve_client(socket: zmq.Socket, secret_key: bytes, server_public_key: bytes | str) -> None:
    """Make ``socket`` a CURVE client with its own key pair, trusting ``server_public_key``. Call before connect()."""
    server_key = server_public_key.encode("ascii") if isinstance(server_public_key, str) else server_public_key
    socket.curve_secretkey = secret_key
    socket.curve_publickey = public_key_of(secret_key)
    socket.curve_serverkey = server_key


def is_loopback_endpoint(endpoint: str) -> bool:
    """True for ipc://, inproc:// and tcp:// on a loopback address or localhost."""
    scheme, _, rest = endpoint.partition("://")
    if scheme in ("ipc", "inproc"):
        return True
    return is_loopback(rest.rsplit(":", 1)[0])


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (brackets of an IPv6 literal allowed)."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_secure_endpoint(endpoint: str, curve: bool, allow_plaintext: bool) -> None:
    """Refuse a plain-text tcp:// link off this host unless the config says so explicitly."""
    if not curve and not allow_plaintext and not is_loopback_endpoint(endpoint):
        raise FacestreamError(
            f"endpoint {endpoint} leaves this host without CURVE: enable transport.curve, "
            "or set transport.allow_plain_tcp: true explicitly"
        )
