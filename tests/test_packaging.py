"""One namespace and three walls, checked on the source tree and on the built wheel.

- Only ``facestream`` is installed top-level; ``pipeline/`` and ``engines/`` are ``facestream.pipeline`` and
  ``facestream.engines`` (pyproject's package list must name every folder with an ``__init__.py``).
- No module imports a top-level ``pipeline`` or ``engines`` (the old names), and no README, doc or deploy file
  tells a user to (an import, ``python -m``, or a dotted module name such as ``engines.runtime``); nor does a
  docstring, comment or string in the package or the tests name a module that way.
- ``facestream.engines`` never imports ``facestream.pipeline``.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parents[1]
SOURCE_DIRS = {"facestream": REPO / "facestream", "facestream.pipeline": REPO / "pipeline",
               "facestream.engines": REPO / "engines"}


def _source_files(*dirs: Path) -> list[Path]:
    return [p for d in dirs for p in d.rglob("*.py") if "__pycache__" not in p.parts]


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_pyproject_lists_every_package_folder():
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    expected = set()
    for prefix, folder in SOURCE_DIRS.items():
        for init in folder.rglob("__init__.py"):
            rel = init.parent.relative_to(folder).parts
            expected.add(".".join((prefix, *rel)))
    assert set(cfg["packages"]) == expected
    assert cfg["package-dir"] == {"facestream": "facestream", "facestream.pipeline": "pipeline",
                                  "facestream.engines": "engines"}


@pytest.mark.parametrize("tree", ["facestream", "pipeline", "engines", "tests", "bench", "deploy"])
def test_nothing_imports_the_old_top_level_names(tree):
    offenders = [f"{p.relative_to(REPO)}:{line} imports {mod}"
                 for p in _source_files(REPO / tree) for line, mod in _imported_modules(p)
                 if mod.split(".")[0] in ("pipeline", "engines")]
    assert not offenders, "\n".join(offenders)


_OLD_IMPORT = re.compile(r"^\s*(?:from|import)\s+(?:pipeline|engines)\b|-m\s+(?:pipeline|engines)\b", re.M)
_DOTTED = re.compile(r"(?<![\w./-])(pipeline|engines)\.([a-z_]+)\b")  # not facestream.X, not a path pipeline/X


def _user_texts() -> list[Path]:
    deploy = sorted(p for p in (REPO / "deploy").rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md")), *deploy]


_OLD_MODULE = re.compile(r"\brecognition[./]engine\b")  # renamed: recognition/stream_recognizer.py


def _old_names(text: str) -> list[tuple[int, str]]:
    """(line, name) of each old import name in ``text``."""
    hits = [*_OLD_IMPORT.finditer(text), *_OLD_MODULE.finditer(text)]
    # pipeline.X / engines.X where X is one of their modules (config keys such as engines.max_batch are not)
    hits += [m for m in _DOTTED.finditer(text)
             if (REPO / m[1] / f"{m[2]}.py").is_file() or (REPO / m[1] / m[2] / "__init__.py").is_file()]
    return sorted((text.count("\n", 0, m.start()) + 1, m.group(0)) for m in hits)


def test_readme_docs_and_deploy_files_use_the_new_names():
    offenders = []
    for path in _user_texts():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # a binary file (an image) has no import names
        offenders += [f"{path.relative_to(REPO)}:{line}: {hit}" for line, hit in _old_names(text)]
    assert not offenders, "write facestream.pipeline / facestream.engines:\n" + "\n".join(offenders)


@pytest.mark.parametrize("tree", ["facestream", "pipeline", "engines", "tests"])
def test_docstrings_and_comments_use_the_new_names(tree):
    # The whole text of each .py file: docstrings, comments and strings (imports are checked above). A path
    # such as engines/faces/boxes.py is fine; a dotted pipeline.records is the old import name.
    offenders = [f"{p.relative_to(REPO)}:{line}: {hit}" for p in _source_files(REPO / tree)
                 if p != Path(__file__).resolve() for line, hit in _old_names(p.read_text(encoding="utf-8"))]
    assert not offenders, "write facestream.pipeline.X / facestream.engines.X:\n" + "\n".join(offenders)


def test_engines_never_import_the_pipeline():
    offenders = [f"{p.relative_to(REPO)}:{line} imports {mod}"
                 for p in _source_files(REPO / "engines") for line, mod in _imported_modules(p)
                 if mod == "facestream.pipeline" or mod.startswith("facestream.pipeline.")]
    assert not offenders, "\n".join(offenders)


@pytest.mark.slow
def test_wheel_installs_only_the_facestream_package(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(REPO),
                        "-w", str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (wheel,) = tmp_path.glob("facestream-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"facestream"}
    assert "facestream/pipeline/cli.py" in names and "facestream/engines/runtime.py" in names
    assert "facestream/errors.py" in names
