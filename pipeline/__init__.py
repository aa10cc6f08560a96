"""facestream.pipeline: stages, wire protocol, transport, config, CLI and metrics."""
