"""Small modules with one job: no Python file in the repository reaches 400 lines (tests included)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIMIT = 400
SKIP = {".venv", ".git", "__pycache__", "build", "dist", "node_modules"}


def test_no_python_module_has_400_lines_or_more():
    too_long = []
    for path in sorted(REPO.rglob("*.py")):
        rel = path.relative_to(REPO)
        if SKIP.intersection(rel.parts) or any(p.endswith(".egg-info") for p in rel.parts):
            continue
        lines = len(path.read_text(encoding="utf-8", errors="replace").splitlines())
        if lines >= LIMIT:
            too_long.append(f"{rel}: {lines} lines")
    assert not too_long, f"split these modules (limit {LIMIT} lines): {', '.join(too_long)}"
