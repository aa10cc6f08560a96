"""What the operator sees and plugs in: the web app (``web:``) and event integrations (``integrations:``)."""

from __future__ import annotations

from pydantic import Field, field_validator

from .sections import Section

EVENT_KINDS = ("track_started", "identified", "identity_changed", "track_ended")  # recognition.events.EventKind


class WebConfig(Section):
    """`facestream web`: live view, events, face library, status and the HTTP API under /api/."""

    enabled: bool = Field(default=False, title="Start the web app with `facestream run` (also: `facestream web`)")
    host: str = Field(default="127.0.0.1", title="Address the web app binds to; off loopback, auth is required")
    port: int = Field(default=8780, ge=0, le=65535, title="Port of the web app (0 = any free port, written to run_dir/web.url)")
    token_sha256: str = Field(
        default="", title="SHA-256 hex of the API/login token (`facestream web hash-token`); empty = no token login"
    )
    users: dict[str, str] = Field(
        default_factory=dict, title="user -> password hash (`facestream web hash-password`, PBKDF2-SHA256)"
    )
    max_upload_mb: float = Field(default=10.0, gt=0, le=200, title="Largest photo accepted by the enrol upload (MiB)")
    preview_fps: float = Field(
        default=5.0, ge=0, le=30, title="Annotated frames per second per camera sent to the live view (0 = no live view)"
    )
    preview_width: int = Field(default=640, ge=64, le=3840, title="Width of the live view's frames (aspect kept)")
    preview_pub: str = Field(
        default="", title="ZeroMQ PUB endpoint of the sink's live-view frames; empty = ipc://RUN_DIR/preview.ipc"
    )


class MqttConfig(Section):
    """Events to an MQTT broker (Home Assistant understands the topics)."""

    enabled: bool = Field(default=False, title="Publish events to MQTT")
    host: str = Field(default="127.0.0.1", title="Broker host")
    port: int = Field(default=1883, ge=1, le=65535, title="Broker port")
    username: str = Field(default="", title="Broker user (password from $FACESTREAM_MQTT_PASSWORD)")
    topic_prefix: str = Field(default="facestream", title="First level of every topic")
    client_id: str = Field(default="", title="MQTT client id; empty = facestream-<host>")
    qos: int = Field(default=1, ge=0, le=2, title="QoS of event messages")
    max_queued: int = Field(default=10000, ge=1, le=1_000_000, title="Messages kept while the broker is away (oldest dropped and counted)")
    ha_discovery: bool = Field(default=False, title="Publish Home Assistant discovery payloads (homeassistant/...)")
    ha_prefix: str = Field(default="homeassistant", title="Home Assistant discovery prefix")

    @field_validator("topic_prefix")
    @classmethod
    def _topic(cls, v: str) -> str:
        if not v or any(c in v for c in "#+\x00") or v.startswith("/") or v.endswith("/"):
            raise ValueError(f"{v!r} is not a usable MQTT topic prefix (no #, +, leading or trailing /)")
        return v


class NatsConfig(Section):
    """Events to a NATS JetStream stream: at-least-once, deduplicated by event id (docs/integrations.md)."""

    enabled: bool = Field(default=False, title="Publish events to NATS JetStream")
    url: str = Field(default="nats://127.0.0.1:4222", title="Server URL(s), comma-separated (nats:// or tls://)")
    stream: str = Field(default="FACESTREAM", title="JetStream stream, created or updated on connect")
    subject_prefix: str = Field(default="facestream", title="Subjects are <prefix>.<camera>.<kind>; the stream takes <prefix>.>")
    user: str = Field(default="", title="User (password from $FACESTREAM_NATS_PASSWORD)")
    creds_file: str = Field(default="", title="NATS .creds file (JWT + NKey) instead of user/password")
    duplicate_window_s: float = Field(
        default=120.0, ge=1, le=86400, title="JetStream deduplication window (a re-sent event id inside it is stored once)"
    )
    max_age_days: float = Field(default=0.0, ge=0, title="Oldest event the stream keeps (0 = no age limit)")
    max_bytes: int = Field(default=0, ge=0, title="Largest size of the stream in bytes (0 = no limit)")
    replicas: int = Field(default=1, ge=1, le=5, title="Stream replicas (a NATS cluster)")
    ack_timeout_s: float = Field(default=2.0, gt=0, le=60, title="Wait for a PubAck before the event is sent again")
    max_buffered: int = Field(
        default=10000, ge=1, le=1_000_000,
        title="Events kept while the server is away (then the oldest go to the dead-letter file, counted)",
    )

    @field_validator("subject_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        tokens = v.split(".")
        if not v or any(not t or any(c in t for c in "*> \t\r\n\x00") for t in tokens):
            raise ValueError(f"{v!r} is not a usable NATS subject prefix (dot-separated tokens, no * > or spaces)")
        return v

    @field_validator("stream")
    @classmethod
    def _stream(cls, v: str) -> str:
        if not v or any(c in v for c in ".*> /\\\t\r\n\x00"):
            raise ValueError(f"{v!r} is not a usable JetStream stream name (no . * > / \\ or spaces)")
        return v


class WebhookConfig(Section):
    """One HTTP endpoint that gets a POST per event."""

    url: str = Field(title="http:// or https:// URL that receives a JSON POST per event")
    secret_env: str = Field(
        default="FACESTREAM_WEBHOOK_SECRET", title="Environment variable with the HMAC-SHA256 secret (X-Facestream-Signature)"
    )
    kinds: list[str] = Field(default_factory=list, title="Event kinds sent (empty = all)")
    timeout_s: float = Field(default=5.0, gt=0, le=120, title="Timeout of one POST")
    max_attempts: int = Field(default=8, ge=1, le=100, title="Attempts before the event goes to the dead-letter file")
    backoff_s: float = Field(default=0.5, gt=0, le=600, title="First retry delay; doubled each attempt")
    backoff_max_s: float = Field(default=60.0, gt=0, le=3600, title="Longest retry delay")
    max_queued: int = Field(default=10000, ge=1, le=1_000_000, title="Events waiting to be sent (oldest to dead letter)")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"webhook url {v!r} must start with http:// or https://")
        return v

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, v: list[str]) -> list[str]:
        unknown = [k for k in v if k not in EVENT_KINDS]
        if unknown:
            raise ValueError(f"unknown event kind(s) {', '.join(unknown)}; known: {', '.join(EVENT_KINDS)}")
        return v


class IntegrationsConfig(Section):
    mqtt: MqttConfig = Field(default_factory=MqttConfig, title="MQTT events")
    nats: NatsConfig = Field(default_factory=NatsConfig, title="NATS JetStream events")
    webhooks: list[WebhookConfig] = Field(default_factory=list, title="Webhooks, each gets every event")
