"""facestream.engines: models, ONNX export, inference backends and the engine cache.

This package never imports ``facestream.pipeline`` and nothing on its inference path imports torch.
"""
