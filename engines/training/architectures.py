"""The face classifier architectures: the recipe's three seed models and stronger variants.

Every model takes ``(N, 1, 128, 128)`` float32 in [0, 1] (``engines/preprocess.py`` face_crop_128) and returns
logits ``(N, classes)``; softmax is added at export. Embedding models also expose ``embed(x)``.

Export constraints (see docs/training.md): recurrent layers run sequence-major (``batch_first=False``) so
the ONNX LSTM/GRU has ``layout=0``, the only layout TensorRT parses; attention is written as plain
MatMul -> Softmax -> MatMul so TensorRT 10.3 (JetPack 6) can fuse it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from facestream.engines.preprocess import CROP_SIZE
from facestream.errors import FacestreamError

IMAGE_SIZE = CROP_SIZE  # the side of face_crop_128's crop, which every model takes


def keras_init(model: nn.Module) -> None:
    """The recipe's framework defaults (Keras) for the seed models: Glorot-uniform Conv/Dense weights and
    LSTM input weights, orthogonal LSTM recurrent weights per gate, zero biases except the LSTM forget
    gate's (1, ``unit_forget_bias``).

    PyTorch's defaults draw the seed CNN's 12.8M-weight dense layer 2.4x narrower; on ORL the Keras
    defaults trained to 98.0% vs 96.5% (CNN) and 82.0% vs 77.5% (LSTM), same seed, data and augmentation."""
    for mod in model.modules():
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(mod.weight)
            if mod.bias is not None:
                nn.init.zeros_(mod.bias)
        elif isinstance(mod, nn.LSTM):
            for name, param in mod.named_parameters():
                gates = param.data.chunk(4, 0)  # PyTorch gate order: input, forget, cell, output
                if name.startswith("weight_ih"):
                    nn.init.xavier_uniform_(param)  # over all four gates, as Keras's (input, 4 * units) kernel
                elif name.startswith("weight_hh"):
                    for g in gates:
                        nn.init.orthogonal_(g)
                else:
                    nn.init.zeros_(param)
                    if name.startswith("bias_ih"):
                        gates[1].fill_(1.0)


def _rows_seq_major(x: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) -> (H, N, W): the image as a sequence of rows, sequence axis first."""
    return x[:, 0].permute(1, 0, 2)


class SeedCNN(nn.Module):
    """Recipe CNN: 3 x (Conv 3x3 relu -> MaxPool 2) with 32/64/128 filters, Dense(512, relu), Dense(classes)."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3), nn.ReLU(), nn.MaxPool2d(2),
        )  # fmt: skip
        side = ((((IMAGE_SIZE - 2) // 2 - 2) // 2) - 2) // 2  # 'valid' convs, as in the recipe: 14
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(128 * side * side, 512), nn.ReLU(), nn.Linear(512, num_classes)
        )
        keras_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class SeedLSTM(nn.Module):
    """Recipe LSTM over the 128 rows: LSTM(128, return sequences) -> LSTM(128) -> Dense(classes)."""

    def __init__(self, num_classes: int, hidden: int = 128):
        super().__init__()
        self.lstm1 = nn.LSTM(IMAGE_SIZE, hidden)  # batch_first=False: ONNX layout=0
        self.lstm2 = nn.LSTM(hidden, hidden)
        self.fc = nn.Linear(hidden, num_classes)
        keras_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq, _ = self.lstm1(_rows_seq_major(x))
        _, (h, _) = self.lstm2(seq)
        return self.fc(h[-1])


def plain_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dim: int) -> torch.Tensor:
    """softmax(q k^T / sqrt(dim)) v as MatMul/Softmax/MatMul (q pre-scaled, the pattern TensorRT fuses)."""
    q = q * (1.0 / math.sqrt(dim))
    weights = torch.softmax(torch.matmul(q, k.transpose(-2, -1)), dim=-1)
    return torch.matmul(weights, v)


class SeedAttention(nn.Module):
    """Recipe self-attention over the rows: learned position encoding, softmax attention weights, the
    weighted sum added back to the input (residual), then a classifier head (flatten -> Dense)."""

    def __init__(self, num_classes: int, dim: int = 64):
        super().__init__()
        self.dim = dim
        self.pos = nn.Parameter(torch.zeros(1, IMAGE_SIZE, IMAGE_SIZE))
        self.q = nn.Linear(IMAGE_SIZE, dim, bias=False)
        self.k = nn.Linear(IMAGE_SIZE, dim, bias=False)
        self.v = nn.Linear(IMAGE_SIZE, IMAGE_SIZE, bias=False)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(IMAGE_SIZE * IMAGE_SIZE, num_classes))
        nn.init.normal_(self.pos, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x[:, 0] + self.pos  # (N, rows, width)
        rows = rows + plain_attention(self.q(rows), self.k(rows), self.v(rows), self.dim)
        return self.head(rows)


def _conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class CNNBackbone(nn.Module):
    """Batch-norm CNN: a stride-2 5x5 stem, then stages of 32/64/128 (1, 2, 2 convs) each halving the size,
    and global average pooling. ~0.3M params and ~60M MACs per face, so it trains on 2 CPU cores."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128), convs: tuple[int, ...] = (1, 2, 2)):
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(1, 16, 5, stride=2, padding=2, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(),
        ]
        cin = 16
        for w, n in zip(widths, convs, strict=True):
            for i in range(n):
                layers.append(_conv_bn(cin if i == 0 else w, w))
            layers.append(nn.MaxPool2d(2))
            cin = w
        self.features = nn.Sequential(*layers)
        self.out_dim = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))


class CNNBN(nn.Module):
    """Stronger CNN: batch norm, padded convs, global average pooling instead of a 12.8M-weight dense layer."""

    def __init__(self, num_classes: int, dropout: float = 0.3):
        super().__init__()
        self.backbone = CNNBackbone()
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(self.backbone.out_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.backbone(x)))


class BiGRU(nn.Module):
    """Stronger recurrent model: rows pooled 2x (64 steps of 64), bidirectional GRU, mean+last pooling."""

    def __init__(self, num_classes: int, hidden: int = 96):
        super().__init__()
        self.gru = nn.GRU(IMAGE_SIZE // 2, hidden, num_layers=2, bidirectional=True, dropout=0.2)
        self.norm = nn.LayerNorm(4 * hidden)
        self.fc = nn.Linear(4 * hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq, _ = self.gru(_rows_seq_major(F.avg_pool2d(x, 2)))  # (T, N, 2H)
        pooled = torch.cat([seq.mean(dim=0), seq.amax(dim=0)], dim=1)
        return self.fc(self.norm(pooled))


class EncoderBlock(nn.Module):
    """Pre-norm transformer encoder block; multi-head attention written as plain MatMul/Softmax/MatMul."""

    def __init__(self, dim: int, heads: int, mlp: int, dropout: float = 0.1):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp), nn.GELU(), nn.Dropout(dropout), nn.Linear(mlp, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = plain_attention(qkv[0], qkv[1], qkv[2], d // self.heads).transpose(1, 2).reshape(n, t, d)
        x = x + self.drop(self.proj(att))
        return x + self.drop(self.mlp(self.norm2(x)))


class PatchTransformer(nn.Module):
    """Small vision transformer: 16x16 patches (64 tokens), learned positions, 3 encoder blocks, mean pool."""

    def __init__(self, num_classes: int, patch: int = 16, dim: int = 96, depth: int = 3, heads: int = 4):
        super().__init__()
        tokens = (IMAGE_SIZE // patch) ** 2
        self.embed = nn.Conv2d(1, dim, patch, stride=patch)
        self.pos = nn.Parameter(torch.zeros(1, tokens, dim))
        self.blocks = nn.Sequential(*[EncoderBlock(dim, heads, 2 * dim) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, num_classes)
        nn.init.normal_(self.pos, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(x).flatten(2).transpose(1, 2) + self.pos
        return self.fc(self.norm(self.blocks(tokens)).mean(dim=1))


class CosFaceNet(nn.Module):
    """Embedding model: CNN-BN backbone -> 128-d L2-normalised embedding; trained with a CosFace margin.

    ``forward`` returns scaled cosine logits *without* the margin (what inference sees); the training loss
    subtracts the margin from the true-class cosine (see :func:`cosface_logits`). The embedding matches
    faces of people never seen in training by cosine similarity (open-set)."""

    is_embedding = True

    def __init__(self, num_classes: int, emb_dim: int = 128, scale: float = 16.0, margin: float = 0.25):
        super().__init__()
        self.backbone = CNNBackbone()
        self.neck = nn.Sequential(nn.Linear(self.backbone.out_dim, emb_dim), nn.BatchNorm1d(emb_dim))
        self.weight = nn.Parameter(torch.randn(num_classes, emb_dim) * 0.01)
        self.scale, self.margin = scale, margin

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.neck(self.backbone(x)), dim=1)

    def cosines(self, emb: torch.Tensor) -> torch.Tensor:
        return emb @ F.normalize(self.weight, dim=1).t()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.cosines(self.embed(x))

    def cosface_logits(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Training logits: s * (cos - m) for the true class, s * cos for the rest."""
        cos = self.cosines(self.embed(x))
        margin = F.one_hot(target, cos.shape[1]).to(cos.dtype) * self.margin
        return self.scale * (cos - margin)


@dataclass(frozen=True)
class ArchInfo:
    build: Callable[[int], nn.Module]
    family: str  # cnn | recurrent | attention
    seed: bool  # the recipe's model as described, kept unchanged
    summary: str


ARCHITECTURES: dict[str, ArchInfo] = {
    "seed-cnn": ArchInfo(SeedCNN, "cnn", True, "recipe CNN: 3x(conv3x3+maxpool) 32/64/128, dense 512"),
    "seed-lstm": ArchInfo(SeedLSTM, "recurrent", True, "recipe LSTM: rows as a sequence, LSTM(128)x2"),
    "seed-attention": ArchInfo(
        SeedAttention,
        "attention",
        True,
        "recipe attention: rows + learned positions, residual softmax attention",
    ),
    "cnn-bn": ArchInfo(CNNBN, "cnn", False, "batch-norm CNN 16-128, global average pooling, dropout"),
    "bigru": ArchInfo(
        BiGRU, "recurrent", False, "2-layer bidirectional GRU over 2x-pooled rows, mean+max pooling"
    ),
    "patch-transformer": ArchInfo(
        PatchTransformer, "attention", False, "ViT-style encoder over 16x16 patches, 3 blocks, 4 heads"
    ),
    "cosface": ArchInfo(
        CosFaceNet, "cnn", False, "CNN-BN embedding (128-d) trained with CosFace margin loss"
    ),
}


def build_model(arch: str, num_classes: int) -> nn.Module:
    """Instantiate ``arch`` for ``num_classes`` people; unknown names are a user error."""
    if arch not in ARCHITECTURES:
        raise FacestreamError(f"unknown architecture {arch!r} (choose from: {', '.join(ARCHITECTURES)})")
    if num_classes < 2:
        raise FacestreamError(f"a classifier needs at least 2 classes, got {num_classes}")
    return ARCHITECTURES[arch].build(num_classes)


def is_embedding_model(model: nn.Module) -> bool:
    return bool(getattr(model, "is_embedding", False))


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
