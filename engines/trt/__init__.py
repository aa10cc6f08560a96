"""TensorRT engine building and caching. Nothing here imports ``tensorrt`` or ``cuda`` at module level."""
