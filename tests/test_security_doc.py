"""docs/security.md names, for each promise, the test that proves it: every test it names exists."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_test_named_in_the_promise_table_exists():
    text = (REPO / "docs" / "security.md").read_text()
    table = text[text.index("## Promises and the tests that prove them"):]
    refs = re.findall(r"`(tests/[^`]+)`", table)
    assert len(refs) >= 15
    for ref in refs:
        path, _, name = ref.partition("::")
        target = REPO / path
        assert target.exists(), f"docs/security.md names {path}, which does not exist"
        if name:
            assert f"def {name}(" in target.read_text(), f"docs/security.md names {ref}, which does not exist"
