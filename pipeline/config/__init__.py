"""Pipeline configuration: one YAML file, one pydantic model per concern, every field titled and defaulted.

Environment variables override keys: ``FACESTREAM__SINK__OUT_DIR=/data/out`` sets ``sink.out_dir``
(values are parsed as YAML, so ``FACESTREAM__INFERENCE__EMBED=false`` is a boolean). docs/config.md lists
every key with its default (generated from these models by ``python -m facestream.pipeline.config --markdown``).

Modules: ``sections`` (transport, preprocess, sink, privacy, metrics, supervisor), ``inference`` (with the
detector union), ``recognition`` (recognizer, scheduler and engine options), ``model`` (the tree and the
stages' derived views), ``loader`` (file + env + overrides), ``markdown`` (the reference doc).
"""

from .inference import InferenceConfig
from .loader import ENV_PREFIX, format_validation_error, load_config
from .markdown import config_markdown
from .model import InferenceView, PipelineConfig
from .recognition import EnginesConfig, RecognitionConfig, SchedulerSection
from .sections import (
    STAGES,
    CurveConfig,
    HopConfig,
    MetricsConfig,
    PreprocessConfig,
    PrivacyConfig,
    Section,
    SinkConfig,
    SupervisorConfig,
    TransportConfig,
)

__all__ = [
    "ENV_PREFIX", "STAGES", "CurveConfig", "EnginesConfig", "HopConfig", "InferenceConfig", "InferenceView",
    "MetricsConfig", "PipelineConfig", "PreprocessConfig", "PrivacyConfig", "RecognitionConfig",
    "SchedulerSection", "Section", "SinkConfig", "SupervisorConfig", "TransportConfig", "config_markdown",
    "format_validation_error", "load_config",
]
