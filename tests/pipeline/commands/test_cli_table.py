"""The command table: --help lists every command without importing any; a command that cannot load says why in
one line (exit 2); each module registers exactly the commands the table gives it, and each takes --config."""

from __future__ import annotations

import argparse
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from facestream.pipeline import cli

REPO = Path(__file__).resolve().parents[3]
NO_TORCH = "import sys; sys.modules['torch'] = None\n"  # as if the train extra were not installed


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_help_lists_every_command_without_importing_them():
    r = _python(NO_TORCH + "from facestream.pipeline.cli import main\n"
                "try:\n    main(['--help'])\nexcept SystemExit as e:\n    code = e.code\n"
                "loaded = sorted(m for m in sys.modules if '.commands' in m or m.split('.')[0] in ('cv2', 'numpy', 'pydantic'))\n"
                "print('LOADED', code, loaded)\n")
    assert r.returncode == 0, r.stderr
    for command in cli.COMMANDS:
        assert f"    {command.name}" in r.stdout, (command.name, r.stdout)
    assert r.stdout.strip().splitlines()[-1] == "LOADED 0 []", r.stdout


def test_a_command_whose_extra_is_missing_says_so_in_one_line():
    r = _python(NO_TORCH + "from facestream.pipeline.cli import main\n"
                "sys.exit(main(['train', '--arch', 'seed-cnn', '--data', 'x']))\n")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith("facestream: error: train needs the train extra: pip install 'facestream[train]'")


def test_a_group_whose_module_fails_to_import_says_why_in_one_line():
    # A module that imports torch at the top, listed without a declared extra: the failed import is mapped
    # to the extra that provides the missing package.
    r = _python(NO_TORCH + "from facestream.pipeline import cli\n"
                "cli.COMMANDS += (cli.Command('heads', 'facestream.engines.training.temporal', 'heads'),)\n"
                "sys.exit(cli.main(['heads']))\n")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith("facestream: error: heads needs the train extra: pip install 'facestream[train]'")


def test_a_command_without_its_extra_still_runs_when_it_does_not_need_it():
    r = _python(NO_TORCH + "from facestream.pipeline.cli import main\nsys.exit(main(['eval', '--help']))\n")
    assert r.returncode == 0 and "--model" in r.stdout, r.stderr


@pytest.mark.parametrize("module", sorted({c.module for c in cli.COMMANDS}))
def test_each_module_registers_exactly_its_table_commands(module):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    importlib.import_module(module).register(sub)
    assert set(sub.choices) == {c.name for c in cli.COMMANDS if c.module == module}


@pytest.mark.parametrize("name", [c.name for c in cli.COMMANDS])
def test_every_command_takes_config(name):
    parser = cli.build_parser(name)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    leaves = list(cli._leaves(sub.choices[name]))
    assert leaves and all("--config" in leaf._option_string_actions for leaf in leaves)


def test_pipeline_commands_reach_training_only_through_the_table():
    for path in sorted((REPO / "pipeline" / "commands").glob("*.py")):
        # facestream.engines.training or a relative ...engines.training
        assert not re.search(r"engines\.training", path.read_text()), path.name
    assert "train-temporal" not in cli.build_parser("gallery")._subparsers._group_actions[0].choices["gallery"] \
        .format_help()
