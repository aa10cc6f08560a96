"""``facestream train | eval | export``: the face classifier commands; ``facestream train-temporal``: the track
aggregator heads.

torch is imported inside the handlers only, so ``facestream --help`` works without the ``train`` extra, and
``eval`` of a model already in the store runs on ONNX Runtime without torch at all.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from facestream.engines.training.data import AUGMENT_LEVELS
from facestream.engines.training.protocol import AUTO, DEFAULT_CANDIDATES, DEFAULT_FOLDS, FINALS
from facestream.errors import FacestreamError

# Kept here (not imported from architectures, which imports torch); a test checks they match.
ARCH_NAMES = ("seed-cnn", "seed-lstm", "seed-attention", "cnn-bn", "bigru", "patch-transformer", "cosface")
SPLITS = ("none", "orl", "random")


def _need_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise FacestreamError("this command needs PyTorch: pip install 'facestream[train]'") from exc


def _add_data_args(p: argparse.ArgumentParser, default_split: str) -> None:
    p.add_argument("--data", required=True, type=Path, help="ImageFolder dataset: one folder per person")
    p.add_argument(
        "--split",
        choices=SPLITS,
        default=default_split,
        help="orl: each person's files 1-5 train, the rest test; random: stratified; none: use every image",
    )
    p.add_argument(
        "--train-per-class", type=int, default=5, help="files per person in the train part (--split orl)"
    )
    p.add_argument("--test-fraction", type=float, default=0.5, help="test share for --split random")
    p.add_argument("--split-seed", type=int, default=0, help="seed of --split random")
    p.add_argument(
        "--center-crop",
        type=float,
        default=None,
        help="crop a centred square of this share of the image first",
    )


def _load(args: argparse.Namespace, part: str):
    from .data import apply_split, load_image_folder

    ds = load_image_folder(args.data, center_crop=args.center_crop)
    train, test = apply_split(ds, args.split, args.test_fraction, args.split_seed, args.train_per_class)
    if part == "train":
        return train, test
    return (test if test is not None else train), None


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train a face classifier on an ImageFolder dataset (needs torch)")
    p.add_argument("--arch", required=True, choices=ARCH_NAMES)
    _add_data_args(p, default_split="none")
    p.add_argument(
        "--epochs", type=int, default=60, help="length of the LR schedule and most epochs a run trains (60)"
    )
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--loss", choices=("ce", "mse"), default="ce", help="cross-entropy, or the recipe's MSE")
    p.add_argument(
        "--val-split",
        type=float,
        default=0.2,
        help="validation share of the training part, stratified (0.2: 1 of 5 per person; 0: none)",
    )
    p.add_argument(
        "--val-folds",
        type=int,
        default=DEFAULT_FOLDS,
        help=f"--augment auto: rotate the validation split over this many folds and choose on their mean "
        f"curve (default {DEFAULT_FOLDS}: one split; 5 with --val-split 0.2 validates every training image once, "
        "at 5x the cost)",
    )
    p.add_argument(
        "--patience", type=int, default=15, help="stop after this many epochs without val gain (0: off)"
    )
    p.add_argument(
        "--augment",
        choices=(AUTO, *AUGMENT_LEVELS),
        default=AUTO,
        help="auto (default): choose among --augment-candidates on the validation split; or one level: "
        "strong (low light, blur, pose, occlusion), pose (move + mirror every image), mild, none",
    )
    p.add_argument(
        "--augment-candidates",
        default=",".join(DEFAULT_CANDIDATES),
        help=f"levels --augment auto tries (default {','.join(DEFAULT_CANDIDATES)})",
    )
    p.add_argument(
        "--final",
        choices=FINALS,
        default="retrain",
        help="retrain (default): retrain on all training images with the chosen level for the chosen epochs; "
        "best-val: keep the chosen run's best-on-validation model",
    )
    p.add_argument("--out", type=Path, default=None, help="run folder (default runs/<arch>-s<seed>)")
    p.add_argument("--resume", type=Path, default=None, help="checkpoint or run folder to continue")
    p.set_defaults(func=cmd_train)

    p = subparsers.add_parser(
        "eval", help="evaluate a checkpoint or a store model; JSON report + confusion PNG"
    )
    p.add_argument("--model", required=True, help="checkpoint file, run folder, or model name in the store")
    _add_data_args(p, default_split="none")
    p.add_argument(
        "--out", type=Path, default=None, help="report folder (default <run>/eval or eval-<model>)"
    )
    p.add_argument("--backend", default="auto", help="for store models: auto | onnxruntime | tensorrt")
    p.add_argument("--precision", default=None, help="for store models: fp32 | fp16")
    p.add_argument("--store", type=Path, default=None, help="model store root (default $FACESTREAM_MODELS)")
    p.set_defaults(func=cmd_eval)

    p = subparsers.add_parser("export", help="export a checkpoint to ONNX (FP32 + FP16) into the model store")
    p.add_argument("--model", required=True, type=Path, help="checkpoint file or run folder")
    p.add_argument("--name", default=None, help="model name in the store (default: the run folder's name)")
    p.add_argument("--unknown-threshold", type=float, default=None, help="override the calibrated threshold")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--store", type=Path, default=None, help="model store root (default $FACESTREAM_MODELS)")
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser(
        "train-temporal",
        help="train the GRU and attention track aggregators on identity folders and export them (needs torch)",
    )
    p.add_argument(
        "--data",
        action="append",
        type=Path,
        required=True,
        metavar="DIR",
        help="identity folder root/<person>/<image>; repeat for several",
    )
    p.add_argument("--kinds", default="gru,attention", help="comma list of heads (default gru,attention)")
    p.add_argument("--steps", type=int, default=1500, help="training steps per head (default 1500)")
    p.add_argument(
        "--holdout",
        type=int,
        default=0,
        help="leave the last N identities (sorted) out of training, for an honest benchmark",
    )
    p.add_argument("--store", type=Path, default=None, help="model store root (default $FACESTREAM_MODELS)")
    p.set_defaults(func=cmd_train_temporal)


def _train_auto(args: argparse.Namespace, cfg, train_ds, out: Path) -> dict[str, Any]:
    from .protocol import parse_candidates, train_with_validation

    resume = args.resume is not None
    if resume:
        out = args.resume if args.resume.is_dir() else args.resume.parent
    result = train_with_validation(
        cfg,
        train_ds,
        out,
        parse_candidates(args.augment_candidates),
        args.final,
        resume=resume,
        data_source=str(args.data),
        log=lambda msg: print(msg, file=sys.stderr, flush=True),
        folds=args.val_folds,
    )
    return {
        "run": str(out),
        "augment": result.augment,
        "epochs_run": result.epochs,
        "final": result.final,
        "folds": result.folds,
        "best_val_accuracy": next(c.val_accuracy for c in result.candidates if c.augment == result.augment),
        "candidates": {c.augment: {"val_accuracy": c.val_accuracy, "best_epoch": c.best_epoch}
                       for c in result.candidates},
        "train_seconds": round(result.train_seconds, 1),
        "unknown_threshold": result.unknown_threshold,
        "threshold_source": result.threshold_source,
    }


def cmd_train(args: argparse.Namespace) -> int:
    _need_torch()
    from .train import TrainConfig, train

    train_ds, test_ds = _load(args, "train")
    cfg = TrainConfig(
        arch=args.arch,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        loss=args.loss,
        val_split=args.val_split,
        patience=args.patience,
        augment="none" if args.augment == AUTO else args.augment,
    )
    out = args.out or Path("runs") / f"{args.arch}-s{args.seed}"
    print(
        f"training {args.arch} on {len(train_ds)} images of {len(train_ds.classes)} people -> {out}",
        file=sys.stderr,
    )
    if args.augment == AUTO:
        summary = _train_auto(args, cfg, train_ds, out)
        out = Path(summary["run"])
    else:
        result = train(cfg, train_ds, out, resume=args.resume, data_source=str(args.data))
        summary = {
            "run": str(out),
            "augment": args.augment,
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "best_val_accuracy": result.best_val_accuracy,
            "train_seconds": round(result.train_seconds, 1),
            "unknown_threshold": result.unknown_threshold,
            "threshold_source": result.threshold_source,
        }
    if summary["best_val_accuracy"] is None:
        print(
            "note: no validation split, so the unknown threshold was calibrated on training images and will "
            "reject many known faces; use --val-split or export --unknown-threshold",
            file=sys.stderr,
        )
    if test_ds is not None:
        from .train import load_checkpoint, model_from_checkpoint, predict_probs

        model = model_from_checkpoint(load_checkpoint(out))
        summary["test_accuracy"] = float(
            (predict_probs(model, test_ds.images).argmax(1) == test_ds.labels).mean()
        )
    print(json.dumps(summary))
    return 0


def _predict_checkpoint(path: Path, images):
    _need_torch()
    from .architectures import is_embedding_model
    from .evaluate import Predictions
    from .train import load_checkpoint, model_from_checkpoint, predict_embeddings, predict_probs

    ckpt = load_checkpoint(path)
    model = model_from_checkpoint(ckpt)
    emb = predict_embeddings(model, images) if is_embedding_model(model) else None
    return ckpt["classes"], ckpt.get("unknown_threshold"), Predictions(predict_probs(model, images), emb)


def _predict_store(name: str, images, args: argparse.Namespace):
    from facestream.engines.classifier import FaceClassifier
    from facestream.engines.store import ModelStore

    from .evaluate import Predictions

    clf = FaceClassifier(name, store=ModelStore(args.store), backend=args.backend, precision=args.precision)
    probs = clf.probabilities(images)
    emb = clf.embed(images) if clf.embedding_output else None
    return clf.labels, clf.threshold, Predictions(probs, emb)


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluate import Predictions, align_labels, report

    data, _ = _load(args, "test")
    path = Path(args.model)
    keep_note = ""
    if path.exists():
        classes, threshold, pred = _predict_checkpoint(path, data.images)
        out = args.out or (path if path.is_dir() else path.parent) / "eval"
    else:
        classes, threshold, pred = _predict_store(args.model, data.images, args)
        out = args.out or Path(f"eval-{args.model}")
    keep, labels = align_labels(data, classes)
    if keep.size < len(data):
        keep_note = f" ({len(data) - keep.size} images of people the model does not know were left out)"
    emb = pred.embeddings[keep] if pred.embeddings is not None else None
    rep = report(
        Predictions(pred.probs[keep], emb), labels, classes, threshold, png=Path(out) / "confusion.png"
    )
    rep["model"], rep["data"], rep["split"] = str(args.model), str(args.data), args.split
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / "report.json").write_text(json.dumps(rep, indent=2))
    line = f"accuracy {rep['accuracy']:.4f}  top-5 {rep['top5_accuracy']:.4f}  on {rep['samples']} images{keep_note}"
    if "verification" in rep:
        v = rep["verification"]
        line += f"  TAR@FAR1e-2 {v['tar_at_far_0.01']:.4f}  TAR@FAR1e-3 {v['tar_at_far_0.001']:.4f}"
    print(line)
    print(f"report: {Path(out) / 'report.json'}  confusion matrix: {rep['confusion_png']}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    _need_torch()
    from facestream.engines.store import ModelStore

    from .export import MAX_DIFF_FP16, export_checkpoint

    rep = export_checkpoint(args.model, args.name, ModelStore(args.store), args.unknown_threshold, args.opset)
    m = rep.entry.manifest
    print(f"exported {m.name} ({m.extra['arch']}, {len(m.labels)} classes) to {rep.entry.folder}")
    for precision, diff in rep.max_abs_diff.items():
        flag = (
            ""
            if precision == "fp32" or diff <= MAX_DIFF_FP16
            else "  (above the FP16 bound: check before use)"
        )
        print(f"  {precision}: {m.file_for(precision)}  max abs diff vs PyTorch {diff:.2e}{flag}")
    print(f"  unknown threshold {m.extra['unknown_threshold']:.4f} ({m.extra['threshold_source']})")
    return 0


def cmd_train_temporal(args: argparse.Namespace) -> int:
    _need_torch()
    from facestream.engines.store import ModelStore

    from .temporal import MODEL_NAMES, TrainConfig, train_and_export
    from .temporal_data import list_identity_folder

    folders = {p.name: p for p in args.data}
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    bad = [k for k in kinds if k not in MODEL_NAMES]
    if bad:
        raise FacestreamError(f"unknown head(s) {', '.join(bad)} (choose from {', '.join(MODEL_NAMES)})")
    people = sorted(f"{k}/{n}" for k, root in folders.items() for n in list_identity_folder(root))
    train_people = people[: len(people) - args.holdout] if args.holdout else None
    out = train_and_export(folders, ModelStore(args.store), train_people, kinds, TrainConfig(steps=args.steps))
    for kind, folder in out.items():
        print(f"{MODEL_NAMES[kind]}: {folder}")
    return 0
