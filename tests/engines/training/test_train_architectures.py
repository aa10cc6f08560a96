"""Every architecture: forward shape, the seed models as the recipe describes them."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from facestream.engines.training.architectures import ARCHITECTURES, build_model  # noqa: E402
from facestream.engines.training.commands import ARCH_NAMES  # noqa: E402
from facestream.errors import FacestreamError  # noqa: E402


def test_cli_names_match_architectures():
    assert tuple(ARCHITECTURES) == ARCH_NAMES


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_forward_shape(arch):
    torch.manual_seed(0)
    model = build_model(arch, 5).eval()
    with torch.no_grad():
        out = model(torch.rand(3, 1, 128, 128))
    assert out.shape == (3, 5)
    assert torch.isfinite(out).all()


def test_seed_cnn_is_the_recipe():
    model = build_model("seed-cnn", 7)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size) for c in convs] == [(32, (3, 3)), (64, (3, 3)), (128, (3, 3))]
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in model.modules()) == 3
    dense = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [d.out_features for d in dense] == [512, 7]


def test_seed_cnn_starts_from_the_recipes_keras_defaults():
    """Glorot-uniform weights and zero biases, not PyTorch's narrower default (which trained worse)."""
    model = build_model("seed-cnn", 7)
    for layer in [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]:
        w = layer.weight.detach()
        fan_in = w[0].numel()
        fan_out = w.shape[0] * (w[0, 0].numel() if w.dim() > 2 else 1)
        glorot = (6.0 / (fan_in + fan_out)) ** 0.5
        assert float(w.abs().max()) <= glorot and float(w.abs().max()) > 0.9 * glorot, layer
        assert float(layer.bias.abs().max()) == 0.0, layer


def test_seed_lstm_starts_from_the_recipes_keras_defaults():
    model = build_model("seed-lstm", 7)
    for lstm in (model.lstm1, model.lstm2):
        w_ih, w_hh = lstm.weight_ih_l0.detach(), lstm.weight_hh_l0.detach()
        glorot = (6.0 / sum(w_ih.shape)) ** 0.5
        assert 0.9 * glorot < float(w_ih.abs().max()) <= glorot
        for gate in w_hh.chunk(4, 0):  # orthogonal recurrent weights
            torch.testing.assert_close(gate @ gate.T, torch.eye(gate.shape[0]), atol=1e-4, rtol=0)
        bias = lstm.bias_ih_l0.detach().chunk(4)
        assert [float(b.abs().max()) for b in bias] == [0.0, 1.0, 0.0, 0.0]  # unit forget bias
        assert float(bias[1].min()) == 1.0 and float(lstm.bias_hh_l0.detach().abs().max()) == 0.0


def test_seed_lstm_is_the_recipe():
    model = build_model("seed-lstm", 4)
    lstms = [m for m in model.modules() if isinstance(m, torch.nn.LSTM)]
    assert [(m.input_size, m.hidden_size, m.batch_first) for m in lstms] == [
        (128, 128, False),
        (128, 128, False),
    ]


def test_seed_attention_has_learned_positions_and_residual():
    model = build_model("seed-attention", 4).eval()
    assert model.pos.requires_grad and model.pos.shape == (1, 128, 128)
    x = torch.rand(2, 1, 128, 128)
    with torch.no_grad():
        torch.nn.init.zeros_(model.v.weight)  # attention adds nothing: only the residual path remains
        no_att = model(x)
        expected = model.head(x[:, 0] + model.pos)
    torch.testing.assert_close(no_att, expected)


def test_embedding_model_is_normalised():
    model = build_model("cosface", 6).eval()
    with torch.no_grad():
        emb = model.embed(torch.rand(4, 1, 128, 128))
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(4))


def test_unknown_arch_and_too_few_classes():
    with pytest.raises(FacestreamError, match="unknown architecture 'resnet'"):
        build_model("resnet", 3)
    with pytest.raises(FacestreamError, match="at least 2 classes"):
        build_model("seed-cnn", 1)
