"""Who may use the web app, and refusing requests a browser did not mean to send.

- Authentication is off only when the app binds to loopback and neither ``web.token_sha256`` nor ``web.users`` is
  set; off loopback without either, the app refuses to start (:func:`check_exposure`).
- A client proves itself with ``Authorization: Bearer TOKEN`` (scripts, Prometheus) or logs in (``POST /login``
  with a user and password, or the token) and gets a session cookie: random, HttpOnly, SameSite=Strict, kept
  server-side (:class:`Sessions`). Passwords are stored as PBKDF2-HMAC-SHA256 with a salt; every comparison is
  ``hmac.compare_digest``.
- CSRF, with or without authentication: a state-changing request (POST, PUT, PATCH, DELETE) must carry the header
  ``X-Facestream-CSRF`` equal to the ``fs_csrf`` cookie (double submit; a cross-site form can set neither), and an
  ``Origin``/``Referer``, when sent, must be this host. A bearer-token request carries no cookie a browser would
  add by itself, so it needs only the origin check.
- Bound to loopback, the ``Host`` header must name loopback too: a DNS-rebinding page cannot drive the app.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections import OrderedDict
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

from facestream.errors import FacestreamError

from ..config.outputs import WebConfig
from ..metrics import WEB_REJECTED
from ..security import is_loopback

PBKDF2_ITERATIONS = 600_000
SESSION_COOKIE = "fs_session"
CSRF_COOKIE = "fs_csrf"
CSRF_HEADER = "X-Facestream-CSRF"
SESSION_TTL_S = 12 * 3600
MAX_SESSIONS = 10_000
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
PUBLIC_PATHS = {"/login", "/favicon.ico"}
PUBLIC_PREFIXES = ("/static/",)
_HASH_RE = re.compile(r"pbkdf2_sha256\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)")


# -- secrets ---------------------------------------------------------------------------------------------------


def hash_password(password: str, iterations: int = PBKDF2_ITERATIONS) -> str:
    """``pbkdf2_sha256$ITERATIONS$SALT$HASH`` (base64), for ``web.users``."""
    if not password:
        raise FacestreamError("empty password")
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    m = _HASH_RE.fullmatch(stored or "")
    if not m:
        return False
    salt, want = base64.b64decode(m.group(2)), base64.b64decode(m.group(3))
    got = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, int(m.group(1)))
    return hmac.compare_digest(got, want)


def hash_token(token: str) -> str:
    """SHA-256 hex of a token, for ``web.token_sha256`` (a token is random and long: no salt needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def verify_token(token: str, sha256_hex: str) -> bool:
    return bool(sha256_hex) and hmac.compare_digest(hash_token(token), sha256_hex.lower())


def new_token() -> str:
    return secrets.token_urlsafe(32)


# -- who may bind where --------------------------------------------------------------------------------------


def auth_enabled(web: WebConfig) -> bool:
    return bool(web.token_sha256 or web.users)


def check_exposure(web: WebConfig) -> None:
    """FacestreamError (one line) for a web config that must not start: off loopback without auth, bad hashes."""
    if web.token_sha256 and not re.fullmatch(r"[0-9a-fA-F]{64}", web.token_sha256):
        raise FacestreamError("web.token_sha256 is not a SHA-256 hex digest (make one: facestream web hash-token)")
    for user, stored in web.users.items():
        if not _HASH_RE.fullmatch(stored or ""):
            raise FacestreamError(f"web.users.{user} is not a password hash (make one: facestream web hash-password)")
    if not is_loopback(web.host) and not auth_enabled(web):
        raise FacestreamError(f"web.host {web.host} is off loopback: set web.token_sha256 or web.users "
                              "(facestream web hash-token / hash-password), or bind 127.0.0.1")


# -- sessions ------------------------------------------------------------------------------------------------


class Sessions:
    """Session id -> (user, expiry), in memory: a restart of the app logs everyone out."""

    def __init__(self, ttl_s: float = SESSION_TTL_S, limit: int = MAX_SESSIONS):
        self.ttl_s, self.limit = ttl_s, limit
        self._items: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, user: str) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._items[sid] = (user, time.monotonic() + self.ttl_s)
            while len(self._items) > self.limit:
                self._items.popitem(last=False)
        return sid

    def user(self, sid: str) -> str | None:
        with self._lock:
            item = self._items.get(sid)
            if item is None:
                return None
            if item[1] < time.monotonic():
                del self._items[sid]
                return None
            self._items[sid] = (item[0], time.monotonic() + self.ttl_s)
            self._items.move_to_end(sid)
            return item[0]

    def drop(self, sid: str) -> None:
        with self._lock:
            self._items.pop(sid, None)


def check_login(web: WebConfig, user: str, password: str, token: str) -> str | None:
    """The user a login form names (``token`` logs in as ``token``), or None."""
    if token:
        return "token" if verify_token(token, web.token_sha256) else None
    stored = web.users.get(user)
    if stored is None:
        verify_password(password, hash_password("x", 1))  # spend the time either way
        return None
    return user if verify_password(password, stored) else None


# -- the guard (ASGI middleware) -----------------------------------------------------------------------------


def _cookies(headers: dict[str, str]) -> dict[str, str]:
    jar = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # noqa: BLE001 - a malformed cookie header is the client's problem: no cookies
        return {}
    return {k: v.value for k, v in jar.items()}


def _same_origin(value: str, scheme: str, host: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme == scheme and parts.netloc.lower() == host.lower()


def cookie_header(name: str, value: str, http_only: bool, max_age: int | None = None) -> tuple[bytes, bytes]:
    attrs = f"{name}={value}; Path=/; SameSite=Strict" + ("; HttpOnly" if http_only else "")
    if max_age is not None:
        attrs += f"; Max-Age={max_age}"
    return b"set-cookie", attrs.encode()


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data: blob:; frame-ancestors 'none'; "
                                  b"form-action 'self'; base-uri 'none'"),
]


class Guard:
    """ASGI middleware: host check, authentication, CSRF; sets ``scope['state']['user']`` for the routes."""

    def __init__(self, app, web: WebConfig, sessions: Sessions):
        self.app, self.web, self.sessions = app, web, sessions
        self.auth = auth_enabled(web)
        self.loopback = is_loopback(web.host)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        cookies = _cookies(headers)
        path, method = scope["path"], scope["method"]
        need_csrf_cookie = CSRF_COOKIE not in cookies
        csrf_cookie = [cookie_header(CSRF_COOKIE, secrets.token_urlsafe(24), http_only=False)] if need_csrf_cookie else []
        refused = self._refusal(scope, headers, cookies, path, method)
        if refused is not None:
            status, reason, message = refused
            WEB_REJECTED.labels(reason).inc()
            if status == 303:
                await _send(send, 303, b"", [(b"location", b"/login"), *csrf_cookie])
            else:
                await _send(send, status, json.dumps({"error": message}).encode(),
                            [(b"content-type", b"application/json"), *csrf_cookie])
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                extra = [*SECURITY_HEADERS, *csrf_cookie]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refusal(self, scope, headers, cookies, path, method) -> tuple[int, str, str] | None:
        host = headers.get("host", "")
        if self.loopback and not is_loopback(urlsplit(f"//{host}").hostname or ""):
            return 403, "host", f"Host {host!r} is not this loopback address (bound to {self.web.host})"
        user, bearer = None, False
        auth_header = headers.get("authorization", "")
        if auth_header:
            kind, _, value = auth_header.partition(" ")
            if kind.lower() != "bearer" or not verify_token(value.strip(), self.web.token_sha256):
                return 401, "unauthenticated", "invalid bearer token"
            user, bearer = "token", True
        elif cookies.get(SESSION_COOKIE):
            user = self.sessions.user(cookies[SESSION_COOKIE])
        if not self.auth:
            user = user or "anonymous"
        scope.setdefault("state", {})["user"] = user
        if method not in SAFE_METHODS:
            scheme = scope.get("scheme", "http")
            origin = headers.get("origin") or headers.get("referer")
            if origin and origin != "null" and not _same_origin(origin, scheme, host):
                return 403, "csrf", f"cross-site request refused (origin {origin!r})"
            if headers.get("origin") == "null":
                return 403, "csrf", "cross-site request refused (origin null)"
            if not bearer:
                token, cookie = headers.get(CSRF_HEADER.lower(), ""), cookies.get(CSRF_COOKIE, "")
                if not token or not cookie or not hmac.compare_digest(token, cookie):
                    return 403, "csrf", (f"missing or wrong {CSRF_HEADER} header (must equal the {CSRF_COOKIE} "
                                         "cookie); cross-site requests are refused")
        if user is None and path not in PUBLIC_PATHS and not path.startswith(PUBLIC_PREFIXES):
            if method == "GET" and not path.startswith(("/api/", "/live/", "/files/", "/metrics")):
                return 303, "unauthenticated", "log in"
            return 401, "unauthenticated", "authentication required (log in, or send Authorization: Bearer TOKEN)"
        return None


async def _send(send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode()), *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})
