"""``facestream models import-dlib [--store DIR]`` and ``facestream models list [--store DIR]``."""

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
    parser = subparsers.add_parser("models", help="manage the model store (import dlib's face models, list)")
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION")
    imp = sub.add_parser(
        "import-dlib",
        help="convert dlib's CNN face detector and ResNet embedder (face_recognition_models) to ONNX in the store",
    )
    imp.add_argument(
        "--store", help="model store folder (default: $FACESTREAM_MODELS or ~/.cache/facestream/models)"
    )
    imp.set_defaults(func=cmd_import_dlib)
    lst = sub.add_parser("list", help="list the models in the store")
    lst.add_argument(
        "--store", help="model store folder (default: $FACESTREAM_MODELS or ~/.cache/facestream/models)"
    )
    lst.set_defaults(func=cmd_list)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])
