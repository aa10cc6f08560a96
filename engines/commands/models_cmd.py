"""``facestream models import-dlib [--store DIR]``, ``models import-mtcnn [--store DIR] [--wheel PATH]`` and
``facestream models list [--store DIR]``."""

from __future__ import annotations

import argparse

from facestream.engines.store import ModelStore


def _store(args: argparse.Namespace) -> ModelStore:
    return ModelStore(args.store) if args.store else ModelStore()


def cmd_import_dlib(args: argparse.Namespace) -> int:
    from facestream.engines.dlib_import import import_dlib_models

    store = _store(args)
    for entry in import_dlib_models(store):
        m = entry.manifest
        precisions = ", ".join([m.precision, *m.variants])
        print(f"{m.name}: {entry.folder} ({precisions}; sha256 {m.sha256[:12]}...; {m.licence})")
    return 0


def cmd_import_mtcnn(args: argparse.Namespace) -> int:
    from facestream.engines.mtcnn_import import import_mtcnn_models

    for entry in import_mtcnn_models(_store(args), wheel=args.wheel):
        m = entry.manifest
        print(f"{m.name}: {entry.folder} (fp32; sha256 {m.sha256[:12]}...; {m.licence}; "
              f"from {m.extra['member']} sha256 {m.extra['member_sha256'][:12]}...)")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    store = _store(args)
    entries = store.list()
    if not entries:
        print(f"no models in {store.root} (try: facestream models import-dlib)")
        return 0
    print(f"models in {store.root}:")
    for entry in entries:
        m = entry.manifest
        inputs = "; ".join(f"{s.name} {s.shape}" for s in m.inputs)
        precisions = ",".join([m.precision, *m.variants])
        print(
            f"  {m.name:24s} {m.task:10s} {precisions:10s} {inputs}  [{m.licence or 'no licence recorded'}]"
        )
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("models", help="manage the model store (import dlib's or MTCNN's face models, list)")
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION")
    imp = sub.add_parser(
        "import-dlib",
        help="convert dlib's CNN face detector and ResNet embedder (face_recognition_models) to ONNX in the store",
    )
    imp.add_argument(
        "--store", help="model store folder (default: $FACESTREAM_MODELS or ~/.cache/facestream/models)"
    )
    imp.set_defaults(func=cmd_import_dlib)
    mt = sub.add_parser(
        "import-mtcnn",
        help="convert MTCNN's P/R/O-Net (facenet-pytorch 2.6.0 wheel from PyPI via pip, MIT) to ONNX in the store",
    )
    mt.add_argument(
        "--store", help="model store folder (default: $FACESTREAM_MODELS or ~/.cache/facestream/models)"
    )
    mt.add_argument("--wheel", help="facenet_pytorch-2.6.0-py3-none-any.whl already downloaded (default: pip download)")
    mt.set_defaults(func=cmd_import_mtcnn)
    lst = sub.add_parser("list", help="list the models in the store")
    lst.add_argument(
        "--store", help="model store folder (default: $FACESTREAM_MODELS or ~/.cache/facestream/models)"
    )
    lst.set_defaults(func=cmd_list)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])
