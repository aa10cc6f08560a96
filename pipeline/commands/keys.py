"""``facestream keys gen [--out DIR] [--name NAME] [--config FILE]``: a ZeroMQ CURVE key pair for links between
hosts. Without ``--out``/``--name`` the pair goes where the config's ``transport.curve`` expects it
(``key_dir``, ``key_name``)."""

from __future__ import annotations

import argparse

from facestream.errors import FacestreamError

from ..security import generate_keypair, load_public_key


def _where(args: argparse.Namespace) -> tuple[str, str]:
    if args.out and args.name:
        return args.out, args.name
    from ..config import load_config

    curve = load_config(args.config).transport.curve
    out, name = args.out or curve.key_dir, args.name or curve.key_name
    if not out:
        raise FacestreamError("where to write the keys: pass --out DIR, or set transport.curve.key_dir in --config")
    return out, name


def _gen(args: argparse.Namespace) -> int:
    out, name = _where(args)
    files = generate_keypair(out, name, overwrite=args.force)
    print(f"public key: {load_public_key(files.public).decode()}")
    print(f"wrote {files.public} (share it: list it under the peer's allowed keys)")
    print(f"wrote {files.secret} (mode 0600; keep it on this host)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    keys = subparsers.add_parser("keys", help="ZeroMQ CURVE keys for encrypted, authenticated links")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    gen = keys_sub.add_parser("gen", help="write NAME.public and NAME.secret (z85 text)")
    gen.add_argument("--out", help="directory for the key files, created if missing (default: transport.curve.key_dir)")
    gen.add_argument("--name", help="file name stem (default: transport.curve.key_name, facestream)")
    gen.add_argument("--force", action="store_true", help="replace an existing key pair")
    gen.set_defaults(func=_gen)
