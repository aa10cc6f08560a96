"""``facestream web``: the web app (live view, events, face library, status, HTTP API) on its own, beside a run
or after it; ``facestream web hash-password`` / ``hash-token`` print the hashes ``web.users`` and
``web.token_sha256`` hold. ``facestream run`` starts the same app when ``web.enabled`` is set (docs/web.md).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from facestream.errors import FacestreamError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("web", help="the web app: live view, events, face library, status and /api/")
    p.add_argument("--config", metavar="FILE", default=None,
                   help="pipeline config YAML (default: $FACESTREAM_CONFIG, else the embedded demo's)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key, e.g. web.port=0")
    p.add_argument("--host", default=None, help="address to bind (web.host; off loopback, auth is required)")
    p.add_argument("--port", type=int, default=None, help="port (web.port; 0 = any free port)")
    p.set_defaults(func=cmd_web)
    sub = p.add_subparsers(dest="web_command", metavar="ACTION")

    h = sub.add_parser("hash-password", help="print the PBKDF2 hash of a password for web.users")
    h.add_argument("user", nargs="?", default="admin", help="user name shown in the YAML line (default admin)")
    h.add_argument("--stdin", action="store_true", help="read the password from stdin (no prompt)")
    h.set_defaults(func=cmd_hash_password)

    t = sub.add_parser("hash-token", help="print the SHA-256 of a token for web.token_sha256 (no TOKEN: make one)")
    t.add_argument("token", nargs="?", default=None, help="the token; omitted: a random one is made and printed")
    t.set_defaults(func=cmd_hash_token)


def cmd_web(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..web.server import serve
    from .run import _parse_sets

    overrides = _parse_sets(args.set or [])
    web = overrides.setdefault("web", {})
    if args.host is not None:
        web["host"] = args.host
    if args.port is not None:
        web["port"] = args.port
    cfg = load_config(args.config or os.environ.get("FACESTREAM_CONFIG") or None, overrides=overrides)
    if cfg.is_demo() and not cfg.inference.gallery:  # the demo run's gallery, when that run made one
        from pathlib import Path

        demo = Path(cfg.sink.out_dir) / "demo-gallery.db"
        if demo.is_file():
            cfg.inference.gallery = str(demo)
    return serve(cfg)


def cmd_hash_password(args: argparse.Namespace) -> int:
    from ..web.auth import hash_password

    if args.stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.user}: ")
        if getpass.getpass("again: ") != password:
            raise FacestreamError("the two passwords differ")
    if len(password) < 8:
        raise FacestreamError("use a password of at least 8 characters")
    print("web:\n  users:")
    print(f"    {args.user}: '{hash_password(password)}'")
    return 0


def cmd_hash_token(args: argparse.Namespace) -> int:
    from ..web.auth import hash_token, new_token

    token = args.token or new_token()
    if len(token) < 16:
        raise FacestreamError("use a token of at least 16 characters (omit it to get a random one)")
    if not args.token:
        print(f"token (give it to clients; it is not stored): {token}", file=sys.stderr)
    print(f"web:\n  token_sha256: {hash_token(token)}")
    return 0
