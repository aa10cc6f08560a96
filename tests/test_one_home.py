"""One home per concept, checked on the source tree (issue #10, "Homes"): the embedder's chip and embedding
size and the classifier's crop size, the image suffixes, atomic file writes and the temporal heads' names are
each defined in one module that everyone else imports; no command carries a developer's data path.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from facestream.engines.faces.vectors import CHIP_SIZE, EMBEDDING_SIZE
from facestream.engines.preprocess import CROP_SIZE
from facestream.fsutil import IMAGE_SUFFIXES

REPO = Path(__file__).resolve().parents[1]
PACKAGE = ("facestream", "pipeline", "engines")


def _modules() -> list[tuple[str, ast.Module]]:
    out = []
    for top in PACKAGE:
        for path in sorted((REPO / top).rglob("*.py")):
            if "__pycache__" not in path.parts:
                out.append((path.relative_to(REPO).as_posix(), ast.parse(path.read_text(), filename=str(path))))
    return out


def test_sizes_are_defined_once():
    homes = {"engines/faces/vectors.py", "engines/preprocess.py"}
    values = {CHIP_SIZE, EMBEDDING_SIZE, CROP_SIZE}
    offenders = []
    for rel, tree in _modules():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Assign) or rel in homes:
                continue
            value = node.value
            if not (isinstance(value, ast.Constant) and type(value.value) is int and value.value in values):
                continue
            for target in node.targets:
                if isinstance(target, ast.Name) and re.search(r"(SIZE|SIDE|DIM)$", target.id):
                    offenders.append(f"{rel}:{node.lineno} {target.id} = {value.value}")
    assert not offenders, "import the size from engines/faces/vectors.py or engines/preprocess.py: " + ", ".join(offenders)


def test_image_suffixes_are_listed_once():
    offenders = []
    for rel, tree in _modules():
        if rel == "facestream/fsutil.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Tuple | ast.List | ast.Set) and len(node.elts) >= 2:
                strings = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
                if len(strings) == len(node.elts) and all(s.lower() in IMAGE_SUFFIXES for s in strings):
                    offenders.append(f"{rel}:{node.lineno} {strings}")
    assert not offenders, "use facestream.fsutil.IMAGE_SUFFIXES / is_image_file: " + ", ".join(offenders)


def test_files_are_replaced_only_by_the_atomic_write_helper():
    # facestream.fsutil.atomic_write/atomic_open are the one tmp+rename; engines/store.py swaps a whole model
    # folder into place (a directory, which the file helper does not do).
    allowed = {"facestream/fsutil.py", "engines/store.py"}
    offenders = []
    for rel, tree in _modules():
        if rel in allowed:
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            func = node.func
            owner = func.value.id if isinstance(func.value, ast.Name) else ""
            if (owner, func.attr) in {("os", "replace"), ("os", "rename"), ("shutil", "move")}:
                offenders.append(f"{rel}:{node.lineno} {owner}.{func.attr}")
            elif func.attr in ("replace", "rename") and "tmp" in owner.lower():
                offenders.append(f"{rel}:{node.lineno} {owner}.{func.attr}")
    assert not offenders, "write files with facestream.fsutil.atomic_write/atomic_open: " + ", ".join(offenders)


def test_temporal_heads_names_live_in_one_torch_free_module():
    heads = ast.parse((REPO / "engines" / "temporal_heads.py").read_text())
    imports = [n for n in ast.walk(heads) if isinstance(n, ast.Import | ast.ImportFrom)]
    assert all(isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in imports)
    for side in ("engines/training/temporal.py", "pipeline/recognition/temporal.py"):
        tree = ast.parse((REPO / side).read_text())
        assert any(isinstance(n, ast.ImportFrom) and n.module == "facestream.engines.temporal_heads"
                   for n in ast.walk(tree)), f"{side} does not take the names from engines/temporal_heads.py"
    from facestream.engines.temporal_heads import MODEL_NAMES

    names = set(MODEL_NAMES.values())
    offenders = [f"{rel}:{n.lineno} {n.value!r}" for rel, tree in _modules() if rel != "engines/temporal_heads.py"
                 for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value in names]
    assert not offenders, "use facestream.engines.temporal_heads.MODEL_NAMES: " + ", ".join(offenders)
    code = ("import sys, facestream.engines.temporal_heads, facestream.pipeline.recognition.temporal\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[]", (r.stdout, r.stderr)


def test_no_developer_data_path_in_the_package():
    # A command's data comes from its arguments, never from a folder beside the developer's checkout.
    pattern = re.compile(r"""parents\[\d\]\s*\.parent|\.parent\s*/\s*["']shared["']|/\s*["']shared["']\s*/""")
    offenders = [f"{rel}" for rel, _ in _modules() if pattern.search((REPO / rel).read_text())]
    assert not offenders, ", ".join(offenders)


def test_gallery_rows_are_written_by_the_gallery_only_and_embeddings_only_by_enrol():
    # The SQL on the gallery's tables lives in its storage modules; the clustering (unknowns.py), the
    # commands, the web app and the stages call the Gallery's methods. Every embedding enters through
    # Gallery.enrol (photos via PhotoEnroller, the demo, an import, a promoted unknown).
    storage = {f"pipeline/recognition/{m}.py" for m in ("gallery", "gallery_db", "gallery_store", "gallery_pg",
                                                        "unknown_table", "gallery_retention", "pg_migrations")}
    sql = re.compile(r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|SELECT\b[^\"']*\bFROM)\s+(?:people|embeddings|"
                     r"rejections|sightings|crops|unknowns|unknown_members|meta)\b")
    offenders = [rel for rel, _ in _modules() if rel not in storage and sql.search((REPO / rel).read_text())]
    assert not offenders, "go through the Gallery: " + ", ".join(offenders)
    inserts = [(rel, node.lineno) for rel, tree in _modules() for node in ast.walk(tree)
               if isinstance(node, ast.Constant) and isinstance(node.value, str)
               and re.search(r"INSERT\s+INTO\s+embeddings\b", node.value)]
    assert [rel for rel, _ in inserts] == ["pipeline/recognition/gallery.py"], inserts
    gallery = ast.parse((REPO / "pipeline/recognition/gallery.py").read_text())
    enrol = next(n for n in ast.walk(gallery) if isinstance(n, ast.FunctionDef) and n.name == "enrol")
    assert enrol.lineno <= inserts[0][1] <= enrol.end_lineno


def test_boxes_are_mapped_to_source_pixels_in_one_place():
    # Detector-frame -> source pixels is engines/faces/boxes.to_source (records.py re-exports it); a second
    # inverse of the scale elsewhere is a second copy of that mapping (stills.py had one).
    from facestream.engines.faces import boxes
    from facestream.pipeline import records

    assert records.to_source is boxes.to_source
    offenders = []
    for rel, tree in _modules():
        if rel == "engines/faces/boxes.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and isinstance(node.left, ast.Constant) \
                    and node.left.value == 1 and "scale" in ast.unparse(node.right).lower():
                offenders.append(f"{rel}:{node.lineno} {ast.unparse(node)}")
    assert not offenders, "map boxes with facestream.engines.faces.boxes.to_source: " + ", ".join(offenders)


def test_nothing_outside_the_detector_specs_compares_a_detectors_name():
    # engines/faces/detector_specs.py: "nothing else branches on the detector's name"; what differs between
    # detectors (HOG's upsampling of small photos, which old config keys apply) is a method or a field there.
    from facestream.engines.faces.detector_specs import DETECTOR_TYPES

    offenders = []
    for rel, tree in _modules():
        if rel == "engines/faces/detector_specs.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                names = [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and n.value in DETECTOR_TYPES]
                if names:
                    offenders.append(f"{rel}:{node.lineno} {ast.unparse(node)}")
    assert not offenders, "put the choice in the detector's spec: " + ", ".join(offenders)
