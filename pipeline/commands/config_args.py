"""``--config FILE`` on every command, and the arguments a pipeline config supplies when not given.

A command's path arguments default to the same file the pipeline runs with, so a deployment names its gallery,
model store and engine cache once: ``facestream gallery add --config /etc/facestream/config.yaml ...`` uses
``inference.gallery`` and enrols with the type of ``inference.detector``, as the web library does. Order: the
argument, else the config (``--config``, else ``$FACESTREAM_CONFIG``; then ``FACESTREAM__...`` variables),
else the component's own default (``$FACESTREAM_GALLERY``, ``$FACESTREAM_MODELS``, ...).
"""

from __future__ import annotations

import argparse
from pathlib import Path

# argument dest (as any command names it) -> the config key it defaults to
CONFIG_DEFAULTS = {
    "gallery": "inference.gallery",
    "store": "inference.models_dir",
    "engine_dir": "engines.engine_dir",
    "out_dir": "sink.out_dir",
    "detector": "inference.detector.type",
}
NOT_PATHS = {"detector"}  # the other defaults are paths


def add_config_option(parser: argparse.ArgumentParser) -> None:
    """Give ``parser`` a ``--config FILE`` option unless it has one."""
    if "--config" in parser._option_string_actions:
        return
    parser.add_argument(
        "--config", metavar="FILE", default=None,
        help="pipeline config YAML (docs/config.md): gallery, model store and engine cache come from it",
    )


def apply_config_defaults(args: argparse.Namespace) -> None:
    """Fill the arguments of CONFIG_DEFAULTS that were not given from the config (``args.config`` or default)."""
    skip = getattr(args, "config_skips", ())  # a command's own reason to keep its default (engines selftest)
    missing = [d for d in CONFIG_DEFAULTS if hasattr(args, d) and getattr(args, d) is None and d not in skip]
    if not missing:
        return
    import os

    from ..config import load_config

    # A deployment (container, systemd unit) names its config once in $FACESTREAM_CONFIG.
    cfg = load_config(getattr(args, "config", None) or os.environ.get("FACESTREAM_CONFIG") or None)
    for dest in missing:
        value: object = cfg
        for part in CONFIG_DEFAULTS[dest].split("."):
            value = getattr(value, part)
        if value:
            setattr(args, dest, str(value) if dest in NOT_PATHS else Path(str(value)))
