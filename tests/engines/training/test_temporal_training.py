"""The temporal heads: training learns to ignore degraded frames, and the exported ONNX equals torch."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the train extra (torch) is not installed")

from facestream.engines.store import ModelStore  # noqa: E402
from facestream.engines.training.temporal import TrainConfig, export_to_store, train_head  # noqa: E402
from facestream.engines.training.temporal_data import EmbeddingBank  # noqa: E402
from facestream.pipeline.recognition.temporal import MeanPool, make_aggregator  # noqa: E402


def synthetic_bank(people: int = 12, images: int = 4, variants: int = 5, seed: int = 0) -> EmbeddingBank:
    """Clean variants near the identity; degraded ones (low quality) drift towards another person's face."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(people, 128))
    rows = []
    img = 0
    for p in range(people):
        for _ in range(images):
            base = centres[p] + 0.3 * rng.normal(size=128)
            for v in range(variants + 1):
                q = 1.0 if v == 0 else rng.uniform(0.05, 1.0)
                e = base + 5.0 * (1 - q) ** 2 * centres[(p + 1) % people] + 0.1 * rng.normal(size=128)
                rows.append((e / np.linalg.norm(e), q, p, img, v))
            img += 1
    e, q, p, i, v = zip(*rows, strict=True)
    return EmbeddingBank(
        np.float32(e), np.float32(q), np.int64(p), np.int64(i), np.int64(v), [f"p{k}" for k in range(people)]
    )


@pytest.fixture(scope="module")
def bank():
    torch.set_num_threads(1)  # tiny models: threads cost more than they bring
    return synthetic_bank()


@pytest.mark.parametrize("kind", ["gru", "attention"])
def test_head_trains_exports_and_onnx_matches_torch(kind, bank, tmp_path):
    model = train_head(kind, bank, TrainConfig(steps=120, batch=32, lr=5e-3, log_every=1000))
    store = ModelStore(tmp_path / "models")
    entry = export_to_store(kind, model, store)
    assert set(entry.manifest.variants) == {"fp16"}
    rng = np.random.default_rng(3)
    seqs = [
        (
            bank.embeddings[rng.integers(0, len(bank.quality), n)],
            bank.quality[rng.integers(0, len(bank.quality), n)],
        )
        for n in (2, 7, 11)
    ]
    head = make_aggregator(kind, store=store, backend="onnxruntime")
    batched = head.aggregate_batch(seqs)
    for (e, q), got in zip(seqs, batched, strict=True):
        with torch.no_grad():
            want, conf = model(
                torch.from_numpy(e[:, None]), torch.from_numpy(q[:, None]), torch.ones(len(q), 1)
            )
        np.testing.assert_allclose(got.embedding, want[0].numpy(), atol=2e-5)
        assert got.confidence == pytest.approx(float(conf[0]), abs=2e-5)
        alone = head.aggregate(e, q)  # padding in a batch changes nothing
        np.testing.assert_allclose(alone.embedding, got.embedding, atol=2e-5)
    fp16 = make_aggregator(kind, store=store, backend="onnxruntime", precision="fp16").aggregate_batch(seqs)
    for a, b in zip(fp16, batched, strict=True):
        assert float(a.embedding @ b.embedding) > 0.999


def test_trained_gru_beats_mean_pooling_on_degraded_tracks(bank):
    from facestream.engines.training.temporal_data import sample_track

    model = train_head("gru", bank, TrainConfig(steps=200, batch=32, lr=5e-3, log_every=1000))
    rng = np.random.default_rng(11)
    clean = bank.embeddings[(bank.variant == 0)]
    owners = bank.person[(bank.variant == 0)]
    wins = {"mean": 0, "gru": 0}
    trials = 300
    for _ in range(trials):
        p = int(rng.integers(0, len(bank.people)))
        e, q = sample_track(bank, p, rng)
        agg_mean = MeanPool().aggregate(e, q).embedding
        with torch.no_grad():
            agg_gru = model(
                torch.from_numpy(e[:, None]), torch.from_numpy(q[:, None]), torch.ones(len(q), 1)
            )[0][0].numpy()
        for name, agg in (("mean", agg_mean), ("gru", agg_gru)):
            wins[name] += int(owners[np.argmax(clean @ agg)] == p)
    assert wins["gru"] >= wins["mean"] + 20, wins
