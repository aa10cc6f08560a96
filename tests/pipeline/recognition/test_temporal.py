import numpy as np
import pytest

from facestream.errors import FacestreamError
from facestream.pipeline.recognition.temporal import (
    MeanPool,
    QualityWeightedMean,
    make_aggregator,
    pack_sequences,
)


def unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_mean_pool_is_normalised_mean_with_consistency_confidence():
    a, b = unit(np.eye(128)[0]), unit(np.eye(128)[1])
    agg = MeanPool().aggregate(np.stack([a, b]), np.array([1.0, 1.0]))
    np.testing.assert_allclose(agg.embedding, unit(a + b), atol=1e-6)
    np.testing.assert_allclose(agg.confidence, np.cos(np.pi / 4), atol=1e-6)
    same = MeanPool().aggregate(np.stack([a, a, a]), np.zeros(3))
    assert same.confidence == pytest.approx(1.0)


def test_quality_weighting_follows_the_good_frames():
    good, bad = unit(np.eye(128)[0]), unit(np.eye(128)[1])
    seq = np.stack([good, bad, bad]), np.array([0.9, 0.05, 0.05])
    plain = MeanPool().aggregate(*seq).embedding
    weighted = QualityWeightedMean().aggregate(*seq).embedding
    assert weighted @ good > 0.98 > plain @ good


def test_pack_sequences_pads_right_and_keeps_best_frames():
    rng = np.random.default_rng(0)
    s1 = (rng.normal(size=(3, 128)), np.array([0.1, 0.2, 0.3]))
    s2 = (rng.normal(size=(6, 128)), np.array([0.9, 0.1, 0.8, 0.2, 0.7, 0.3]))
    feeds = pack_sequences([s1, s2], max_len=4)
    assert feeds["embeddings"].shape == (4, 2, 128)
    np.testing.assert_array_equal(feeds["mask"][:, 0], [1, 1, 1, 0])
    np.testing.assert_array_equal(
        feeds["quality"][:, 1], np.float32([0.9, 0.8, 0.7, 0.3])
    )  # best 4, time order
    np.testing.assert_allclose(np.linalg.norm(feeds["embeddings"][:3, 0], axis=1), 1.0, rtol=1e-5)


def test_unknown_aggregator_is_a_user_error(tmp_path):
    with pytest.raises(FacestreamError, match="unknown temporal aggregator"):
        make_aggregator("median")
    with pytest.raises(FacestreamError, match="not in the store"):
        make_aggregator("gru", store=__import__("facestream.engines.store").engines.store.ModelStore(tmp_path))
