"""dlib's public CNN face detector and ResNet face embedder, read from their ``.dat`` files and rebuilt as ONNX."""

from .importer import DETECTOR_NAME, EMBEDDER_NAME, import_dlib_models, model_file

__all__ = ["DETECTOR_NAME", "EMBEDDER_NAME", "import_dlib_models", "model_file"]
