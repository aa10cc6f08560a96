"""The ``facestream`` command. Each command group lives in its own module with ``register(subparsers)``.

Handlers return an exit code. A :class:`FacestreamError` (or pydantic/YAML config error turned into one)
is printed as a single line on stderr, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from facestream import __version__
from facestream.errors import FacestreamError

# Command modules; each exposes register(subparsers). A module that cannot import (an optional extra
# missing) leaves its commands out and says why when called.
COMMAND_MODULES = [
    "facestream.pipeline.commands.run",
    "facestream.engines.commands.engines_cmd",
    "facestream.engines.commands.models_cmd",
    "facestream.engines.training.commands",
    "facestream.pipeline.commands.gallery",
    "facestream.pipeline.commands.keys",
    "facestream.pipeline.commands.identify",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facestream",
        description="Streaming video face recognition: capture -> preprocess -> inference -> sink over ZeroMQ.",
        epilog="With no command, facestream runs the embedded demo (same as `facestream run`).",
    )
    parser.add_argument("--version", action="version", version=f"facestream {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod_name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith(mod_name.rsplit(".", 1)[0]):
                continue  # module not written yet
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        if args.command is None:
            # No arguments: run the embedded default.
            args = parser.parse_args([*(["-v"] if args.verbose else []), "run"])
        else:
            parser.print_help()
            return 2
    try:
        return int(args.func(args) or 0)
    except FacestreamError as exc:
        print(f"facestream: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
