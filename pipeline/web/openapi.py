"""The OpenAPI 3 description of /api/, served at /api/openapi.json (tests check it lists exactly the app's routes)."""

from __future__ import annotations

from typing import Any

from facestream import __version__


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    return out


S = {"type": "string"}
I = {"type": "integer"}  # noqa: E741
N = {"type": "number"}
B = {"type": "boolean"}
NULL_S = {"type": "string", "nullable": True}
URLS = {"type": "array", "items": S}

EVENT = _obj({
    "event_id": S, "kind": {"type": "string", "enum": ["track_started", "identified", "identity_changed", "track_ended"]},
    "stream_id": S, "camera": S, "track_id": I, "track_ref": S, "seq": I, "ts_ns": I, "first_ts_ns": I,
    "identity": NULL_S, "name": NULL_S, "person": NULL_S, "unknown_id": {"type": "integer", "nullable": True},
    "score": {"type": "number", "nullable": True}, "confidence": {"type": "number", "nullable": True},
    "best_shot_path": NULL_S, "previous_identity": NULL_S, "dwell_seconds": {"type": "number", "nullable": True},
    "frame": NULL_S, "crop_url": NULL_S, "frame_url": NULL_S,
})
PERSON = _obj({"name": S, "embeddings": I, "rejections": I, "created_ns": I,
               "quality": {"type": "number", "nullable": True}, "photos": URLS})
UNKNOWN = _obj({"id": I, "label": S, "seen": I, "seen_today": I, "first_ns": I, "last_ns": I, "crops": URLS})
STAGE = _obj({"stage": S, "pid": {"type": "integer", "nullable": True}, "metrics_url": NULL_S, "running": B,
              "reachable": B, "up": B, "backends": {"type": "object", "additionalProperties": _obj(
                  {"backend": S, "reason": S})}})
CAMERA = _obj({"camera": S, "url": S, "frames": I, "live": B, "age_s": {"type": "number", "nullable": True},
               "seq": I, "ts_ns": I, "fps": N, "latency_ms": N, "dropped": I, "width": I, "height": I,
               "faces": {"type": "array", "items": _obj({"identity": S, "track": I})}})
ERROR = _obj({"error": S}, ["error"])


def _q(name: str, description: str, schema: dict[str, Any] = S) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def _p(name: str, description: str, schema: dict[str, Any] = S) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": schema}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _op(summary: str, ok: dict[str, Any], params: list | None = None, body: dict[str, Any] | None = None,
        errors: tuple[int, ...] = (400,), ok_status: str = "200") -> dict[str, Any]:
    responses: dict[str, Any] = {ok_status: {"description": "OK", **_json(ok)}}
    for code in (*errors, 401, 403):
        responses[str(code)] = {"description": {400: "bad input", 401: "not authenticated",
                                                403: "cross-site request or wrong Host", 404: "not found",
                                                409: "conflict", 413: "upload too large"}[code], **_json(ERROR)}
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {"required": True, "content": body}
    return op


NAME_BODY = {"application/json": {"schema": _obj({"name": S}, ["name"])}}
UNKNOWN_ID = _p("unknown_id", "the anonymous id: 7 or unknown#7")

PATHS: dict[str, dict[str, Any]] = {
    "/api/events": {"get": _op("Events, newest first", _obj({"events": {"type": "array", "items": EVENT}, "count": I}), [
        _q("person", "a gallery name"), _q("camera", "a stream id"), _q("unknown", "an unknown id: 7 or unknown#7"),
        _q("kind", "track_started, identified, identity_changed or track_ended"),
        _q("since", "30m, 1h, 2d, epoch seconds or an ISO time"), _q("until", "same forms as since"),
        _q("limit", "1..1000, default 100", I), _q("offset", "rows to skip", I)])},
    "/api/events/{event_id}": {"get": _op("One event", EVENT, [_p("event_id", "e-...")], errors=(404,))},
    "/api/people": {
        "get": _op("People in the gallery", _obj({"people": {"type": "array", "items": PERSON}, "gallery": S})),
        "post": _op("Enrol a person from photos (the quality gate of `gallery add`)",
                    _obj({"name": S, "added": I, "embeddings": I, "refused": URLS}), ok_status="201",
                    body={"multipart/form-data": {"schema": _obj({"name": S, "photo": {
                        "type": "array", "items": {"type": "string", "format": "binary"}}}, ["name", "photo"])}},
                    errors=(400, 413)),
    },
    "/api/people/{name}": {
        "patch": _op("Rename a person", _obj({"name": S, "was": S}), [_p("name", "current name")], NAME_BODY,
                     errors=(400, 404, 409)),
        "delete": _op("Forget a person: embeddings, sightings, crops, their events and outputs redacted",
                      _obj({"forgot": S, "crops_deleted": I, "lines_redacted": I, "events_deleted": I,
                            "event_files_deleted": I}), [_p("name", "the person")], errors=(404,)),
    },
    "/api/feedback": {"post": _op('"This is not NAME" on an event or track', _obj(
        {"ref": S, "not": S, "similar_blocked": B}), body={"application/json": {"schema": _obj(
            {"event_id": S, "track_ref": S, "not": S}, ["not"])}}, errors=(400, 404))},
    "/api/unknowns": {"get": _op("Anonymous clusters of unknown faces, with crops", _obj(
        {"unknowns": {"type": "array", "items": UNKNOWN}}))},
    "/api/unknowns/{unknown_id}/name": {"post": _op("Name an unknown: its embeddings join the person", _obj(
        {"unknown_id": I, "name": S, "added": I}), [UNKNOWN_ID], NAME_BODY, errors=(400, 404))},
    "/api/unknowns/{unknown_id}/dismiss": {"post": _op("Drop an unknown cluster", _obj({"dismissed": I}),
                                                       [UNKNOWN_ID], errors=(400, 404))},
    "/api/status": {"get": _op("Stages, sources, backends, gallery and events store", _obj({
        "time_ns": I, "run_dir": S, "stages": {"type": "array", "items": STAGE},
        "sources": {"type": "array", "items": _obj({"id": S, "kind": S, "uri": S, "policy": S,
                                                    "max_fps": {"type": "number", "nullable": True}, "loop": B})},
        "gallery": _obj({"path": S, "exists": B, "people": I, "embeddings": I, "unknowns": I, "encrypted": B}),
        "events": _obj({"path": S, "count": I}),
        "web": _obj({"url": S, "auth": B, "preview_endpoint": S, "preview_frames": I, "preview_rejected": I})}))},
    "/api/live": {"get": _op("Per camera: the live view's URL and its last header (fps, latency, drops, faces)",
                             _obj({"cameras": {"type": "array", "items": CAMERA}, "preview_fps": N, "endpoint": S}))},
    "/api/whoami": {"get": _op("The logged-in user (anonymous when auth is off)", _obj({"user": NULL_S, "auth": B}))},
    "/api/openapi.json": {"get": _op("This description", {"type": "object"})},
}


def spec() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "facestream web API", "version": __version__,
                 "description": "Authenticate with `Authorization: Bearer TOKEN` or the /login session cookie; "
                                "state-changing requests with a cookie need `X-Facestream-CSRF` = the fs_csrf cookie."},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                           "session": {"type": "apiKey", "in": "cookie", "name": "fs_session"}}},
        "security": [{"bearer": []}, {"session": []}],
        "paths": PATHS,
    }
