"""Loading: YAML file (or the embedded default), then ``FACESTREAM__SECTION__KEY`` environment variables, then
command-line overrides, each layer merged key by key over the one before; then validation, with one line
per mistake.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from facestream.engines.faces.detector_specs import DETECTOR_TYPES
from facestream.errors import FacestreamError

from .model import PipelineConfig

ENV_PREFIX = "FACESTREAM__"


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = str(part)
            if not text.replace("_", "").isalnum():
                text = repr(text)
            out += ("." if out else "") + text
    return out or "(top level)"


def format_validation_error(exc: ValidationError, origin: str) -> str:
    """One line naming the key and what is allowed (the first problem; the count of others)."""
    errs = exc.errors()
    e = errs[0]
    loc = [p for p in e["loc"] if p not in ("function-after", "function-before")]
    tag = ""
    for i in range(1, len(loc)):
        if loc[i - 1] == "detector" and loc[i] in DETECTOR_TYPES:  # pydantic names the union member
            tag = f" (detector type {loc.pop(i)})"
            break
    key = _loc(tuple(loc)) + tag
    if e["type"] == "extra_forbidden":
        msg = "unknown key"
    else:
        msg = e["msg"]
        if "input" in e and e["type"] not in ("missing",) and not isinstance(e["input"], dict | list):
            msg += f" (got {e['input']!r})"
    more = f" (+{len(errs) - 1} more problem{'s' if len(errs) > 2 else ''})" if len(errs) > 1 else ""
    return f"config error in {origin}: {key}: {msg}{more}".replace("\n", "\\n")


def env_layer(environ: dict[str, str]) -> dict[str, Any]:
    """The ``FACESTREAM__A__B=value`` variables as a nested mapping (values parsed as YAML)."""
    data: dict[str, Any] = {}
    paths = [([p.lower() for p in name[len(ENV_PREFIX):].split("__") if p], value)
             for name, value in environ.items() if name.startswith(ENV_PREFIX)]
    for path, value in sorted((pv for pv in paths if pv[0]), key=lambda pv: len(pv[0])):
        node = data
        for p in path[:-1]:
            nxt = node.get(p)
            if not isinstance(nxt, dict):
                # FACESTREAM__INFERENCE__DETECTOR=cnn with FACESTREAM__INFERENCE__DETECTOR__MIN_FACE=60
                nxt = {"type": nxt} if isinstance(nxt, str) and p == "detector" else {}
                node[p] = nxt
            node = nxt
        try:
            node[path[-1]] = yaml.safe_load(value)
        except yaml.YAMLError:
            node[path[-1]] = value
    return data


def load_config(path: str | Path | None = None, environ: dict[str, str] | None = None,
                overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Read YAML (or the embedded default when path is None), apply env and overrides, validate.

    Raises FacestreamError with one line on any problem.
    """
    environ = dict(os.environ) if environ is None else environ
    origin = str(path) if path else "the embedded default"
    data: Any = {}
    if path:
        p = Path(path)
        if not p.is_file():
            raise FacestreamError(f"config file {p} does not exist")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or "invalid YAML"
            raise FacestreamError(f"config error in {origin}: invalid YAML{where}: {problem}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise FacestreamError(f"cannot read config file {p}: {exc}") from None
        if not isinstance(data, dict):
            raise FacestreamError(f"config error in {origin}: the top level must be a mapping of sections, got {type(data).__name__}")
    for layer in (env_layer(environ), overrides or {}):
        data = _merge_layer(data, layer)
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        raise FacestreamError(format_validation_error(exc, origin)) from None


def _detector_names_as_mappings(layer: dict[str, Any]) -> dict[str, Any]:
    """``inference.detector: cnn`` as ``{type: cnn}``, so a later layer can set one detector key over it."""
    inference = layer.get("inference")
    if isinstance(inference, dict) and isinstance(inference.get("detector"), str):
        return {**layer, "inference": {**inference, "detector": {"type": inference["detector"]}}}
    return layer


def _merge_layer(data: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
    """``layer`` over ``data``; a layer naming another detector type replaces the detector, keys and all."""
    data, layer = _detector_names_as_mappings(data), _detector_names_as_mappings(layer)
    new = layer.get("inference", {}).get("detector") if isinstance(layer.get("inference"), dict) else None
    old = data.get("inference", {}).get("detector") if isinstance(data.get("inference"), dict) else None
    if isinstance(new, dict) and isinstance(old, dict) and new.get("type", old.get("type")) != old.get("type"):
        data = {**data, "inference": {**data["inference"], "detector": {}}}
    return _deep_merge(data, layer)


def _deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out
