"""The contract of the learned temporal heads (GRU and attention track aggregators), torch-free.

``engines/training/temporal.py`` trains and exports them into the model store; ``pipeline/recognition/temporal.py``
loads and runs them. Both import the names from here, so a renamed tensor or model cannot drift apart.

Inputs, all float32 and sequence-major: ``embeddings`` (seq, batch, 128), ``quality`` (seq, batch), ``mask``
(seq, batch; 1 = real frame, 0 = padding at the end). Outputs: ``embedding`` (batch, 128), L2-normalised, and
``confidence`` (batch,) in [0, 1].
"""

from __future__ import annotations

MODEL_NAMES = {"gru": "temporal-gru", "attention": "temporal-attention"}  # kind -> model store name
INPUT_EMBEDDINGS, INPUT_QUALITY, INPUT_MASK = "embeddings", "quality", "mask"
INPUT_NAMES = (INPUT_EMBEDDINGS, INPUT_QUALITY, INPUT_MASK)
OUTPUT_EMBEDDING, OUTPUT_CONFIDENCE = "embedding", "confidence"
OUTPUT_NAMES = (OUTPUT_EMBEDDING, OUTPUT_CONFIDENCE)
MAX_LEN = 32  # longest sequence an exported head takes (its TensorRT profile maximum)
