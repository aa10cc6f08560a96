"""The ``facestream`` command: one explicit table of commands, each loaded only when it is invoked.

``facestream --help`` reads the table and imports no command module, so it is fast and lists every command
whatever is installed. Invoking a command imports its module (which registers it with ``register(subparsers)``);
a module that cannot import (an optional extra missing) is reported in one line and exit code 2, never left
out. The pipeline's commands reach training only through this table.

Handlers return an exit code. A :class:`FacestreamError` (or pydantic/YAML config error turned into one)
is printed as a single line on stderr, never as a traceback. Every command takes ``--config FILE``
(:mod:`.commands.config_args`).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys
from dataclasses import dataclass
from types import ModuleType

from facestream import __version__
from facestream.errors import FacestreamError

RUN = "facestream.pipeline.commands.run"
TRAINING = "facestream.engines.training.commands"

# extra -> the top-level packages it installs (pyproject's optional-dependencies)
EXTRAS = {"train": ("torch",), "gpu": ("tensorrt",)}


@dataclass(frozen=True)
class Command:
    name: str
    module: str  # its register(subparsers) adds this command (a module may add several)
    help: str
    extra: str | None = None  # the optional extra the command cannot run without


COMMANDS: tuple[Command, ...] = (
    Command("run", RUN, "run every stage on this host on files, folders, cameras or a CONFIG (none: the demo)"),
    Command("stage", RUN, "run one stage (stages on different hosts)"),
    Command("config", RUN, "print the effective config (defaults, file, env overrides)"),
    Command("gallery", "facestream.pipeline.commands.gallery", "manage known people, negative feedback and unknown faces"),
    Command("web", "facestream.pipeline.commands.web", "the web app: live view, events, face library, status and /api/"),
    Command("keys", "facestream.pipeline.commands.keys", "ZeroMQ CURVE keys for encrypted, authenticated links"),
    Command("events", "facestream.pipeline.commands.events", "query the events the sink stored (CSV or JSON)"),
    Command("identify", "facestream.pipeline.commands.identify",
            "name the faces in photos, folders or globs (one row per face)"),
    Command("models", "facestream.engines.commands.models_cmd", "manage the model store (import dlib's face models, list)"),
    Command("engines", "facestream.engines.commands.engines_cmd", "TensorRT engine cache: build, list, verify, clean, selftest"),
    Command("train", TRAINING, "train a face classifier on an ImageFolder dataset (needs torch)", extra="train"),
    Command("eval", TRAINING, "evaluate a checkpoint or a store model; JSON report + confusion PNG"),
    Command("export", TRAINING, "export a checkpoint to ONNX (FP32 + FP16) into the model store (needs torch)",
            extra="train"),
    Command("train-temporal", TRAINING, "train the GRU and attention track aggregators and export them (needs torch)",
            extra="train"),
)
GLOBAL_FLAGS = ("-v", "--verbose")


def _extra_of(missing: str | None) -> str | None:
    top = (missing or "").split(".")[0]
    return next((extra for extra, pkgs in EXTRAS.items() if top in pkgs), None)


def _unavailable(command: Command, extra: str | None, detail: str) -> FacestreamError:
    if extra:
        return FacestreamError(f"{command.name} needs the {extra} extra: pip install 'facestream[{extra}]' ({detail})")
    return FacestreamError(f"{command.name} cannot load: {detail}")


def load_command(command: Command) -> ModuleType:
    """The command's module; FacestreamError in one line saying why it cannot load."""
    for pkg in EXTRAS.get(command.extra or "", ()):
        if importlib.util.find_spec(pkg) is None:
            raise _unavailable(command, command.extra, f"no module named {pkg!r}")
    try:
        return importlib.import_module(command.module)
    except ImportError as exc:
        name = getattr(exc, "name", None)
        raise _unavailable(command, _extra_of(name) or command.extra, str(exc).splitlines()[0]) from exc


def _leaves(parser: argparse.ArgumentParser):
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not groups:
        yield parser
    for group in groups:
        for child in dict.fromkeys(group.choices.values()):
            yield from _leaves(child)


def build_parser(load: str | None = None) -> argparse.ArgumentParser:
    """The parser; ``load`` names the one command whose module is imported (others are listed only)."""
    parser = argparse.ArgumentParser(
        prog="facestream",
        description="Streaming video face recognition: capture -> preprocess -> inference -> sink over ZeroMQ.",
        epilog="With no command, facestream runs the embedded demo (same as `facestream run`).",
    )
    parser.add_argument("--version", action="version", version=f"facestream {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    by_name = {c.name: c for c in COMMANDS}
    if load is not None:
        from .commands.config_args import add_config_option

        load_command(by_name[load]).register(sub)
        for leaf in _leaves(sub.choices[load]):
            add_config_option(leaf)
    for c in COMMANDS:
        if c.name not in sub.choices:
            sub.add_parser(c.name, help=c.help, add_help=False)
    return parser


def _command_name(argv: list[str]) -> str | None:
    for token in argv:
        if token not in GLOBAL_FLAGS:
            return token if not token.startswith("-") else None
    return None


def _shown(exc: FacestreamError) -> str:
    """The error's one line with camera credentials masked (it may quote a config value or a source)."""
    from .sources.uri import mask_secrets

    return mask_secrets(str(exc))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    name = _command_name(argv)
    if name is None and not any(t in ("-h", "--help", "--version") for t in argv):
        argv.append("run")  # no command: the embedded demo
        name = "run"
    try:
        parser = build_parser(name if name in {c.name for c in COMMANDS} else None)
    except FacestreamError as exc:
        print(f"facestream: error: {_shown(exc)}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        from .commands.config_args import apply_config_defaults

        apply_config_defaults(args)
        return int(args.func(args) or 0)
    except FacestreamError as exc:
        print(f"facestream: error: {_shown(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
