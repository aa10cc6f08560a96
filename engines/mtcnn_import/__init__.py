"""MTCNN (P-Net, R-Net, O-Net) from the facenet-pytorch wheel, converted to ONNX without torch."""

from .importer import MODEL_NAMES, ensure_mtcnn_models, import_mtcnn_models

__all__ = ["MODEL_NAMES", "ensure_mtcnn_models", "import_mtcnn_models"]
