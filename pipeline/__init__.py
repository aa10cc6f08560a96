"""facestream pipeline: stages, wire protocol, transport, config, CLI and metrics."""

__version__ = "0.1.0"
