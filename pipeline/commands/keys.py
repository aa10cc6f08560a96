"""``facestream keys gen --out DIR [--name NAME]``: a ZeroMQ CURVE key pair for links between hosts."""

from __future__ import annotations

import argparse

from ..security import generate_keypair, load_public_key


def _gen(args: argparse.Namespace) -> int:
    files = generate_keypair(args.out, args.name, overwrite=args.force)
    print(f"public key: {load_public_key(files.public).decode()}")
    print(f"wrote {files.public} (share it: list it under the peer's allowed keys)")
    print(f"wrote {files.secret} (mode 0600; keep it on this host)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    keys = subparsers.add_parser("keys", help="ZeroMQ CURVE keys for encrypted, authenticated links")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    gen = keys_sub.add_parser("gen", help="write NAME.public and NAME.secret (z85 text)")
    gen.add_argument("--out", required=True, help="directory for the key files (created if missing)")
    gen.add_argument("--name", default="facestream", help="file name stem (default: facestream)")
    gen.add_argument("--force", action="store_true", help="replace an existing key pair")
    gen.set_defaults(func=_gen)
