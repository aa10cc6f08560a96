"""The JSON API under /api/ (openapi.py describes every route). Errors are ``{"error": "one line"}`` with a
4xx status; input is checked before it reaches the gallery or the store, so bad input is never a 500."""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from facestream.errors import FacestreamError

from ..events_store import EventQuery, parse_since
from ..metrics import WEB_REJECTED
from ..recognition.unknowns import parse_unknown_id
from .library import ApiError

MAX_JSON_BYTES = 64 << 10
MAX_PHOTOS = 20
MAX_LIMIT = 1000
MIB = 1 << 20


def error(status: int, message: str, reason: str = "bad_input") -> JSONResponse:
    WEB_REJECTED.labels(reason).inc()
    return JSONResponse({"error": message.splitlines()[0] if message else "error"}, status_code=status)


def handled(endpoint):
    """Turn ApiError/FacestreamError into JSON errors (FacestreamError: the gallery refused the input)."""

    async def wrapper(request: Request):
        try:
            return await endpoint(request)
        except ApiError as exc:
            reason = {404: "not_found", 413: "too_large"}.get(exc.status, "bad_input")
            response = error(exc.status, exc.message, reason)
            if exc.status == 413:  # the rest of the body is not wanted: close rather than read it
                response.headers["connection"] = "close"
            return response
        except FacestreamError as exc:
            return error(409 if "already exists" in str(exc) else 400, str(exc))

    wrapper.__name__ = endpoint.__name__
    wrapper.__doc__ = endpoint.__doc__
    return wrapper


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise ApiError(413, f"request body larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"request body larger than {limit} bytes")
    return bytes(body)


async def json_body(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await _read_limited(request, MAX_JSON_BYTES) or b"null")
    except (ValueError, ClientDisconnect):
        raise ApiError(400, "the body is not JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, 'the body must be a JSON object, e.g. {"name": "Ada"}')
    return data


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"{key!r} must be a non-empty string")
    return value.strip()


def _int_param(request: Request, key: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(key)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{key} must be an integer, got {raw[:40]!r}") from None
    if not lo <= value <= hi:
        raise ApiError(400, f"{key} must be between {lo} and {hi}")
    return value


def _time_param(request: Request, key: str) -> int | None:
    raw = request.query_params.get(key)
    if raw in (None, ""):
        return None
    try:
        return parse_since(raw[:64])
    except FacestreamError as exc:
        raise ApiError(400, f"{key}: {exc}") from None


def _event_json(request: Request, event: dict[str, Any]) -> dict[str, Any]:
    files = request.app.state.files
    return {**event, "crop_url": files.url(event.get("best_shot_path")), "frame_url": files.url(event.get("frame"))}


# -- events ------------------------------------------------------------------------------------------------


@handled
async def list_events(request: Request):
    p = request.query_params
    unknown = p.get("unknown")
    try:
        unknown_id = parse_unknown_id(unknown[:40]) if unknown else None
    except FacestreamError as exc:
        raise ApiError(400, f"unknown: {exc}") from None
    kind = p.get("kind") or None
    if kind is not None and kind not in ("track_started", "identified", "identity_changed", "track_ended"):
        raise ApiError(400, "kind must be track_started, identified, identity_changed or track_ended")
    q = EventQuery(person=p.get("person") or None, camera=p.get("camera") or None, unknown_id=unknown_id, kind=kind,
                   since_ns=_time_param(request, "since"), until_ns=_time_param(request, "until"),
                   limit=_int_param(request, "limit", 100, 1, MAX_LIMIT),
                   offset=_int_param(request, "offset", 0, 0, 10_000_000))
    events = await run_in_threadpool(request.app.state.events.query, q)
    return JSONResponse({"events": [_event_json(request, e) for e in events], "count": len(events)})


@handled
async def get_event(request: Request):
    event_id = request.path_params["event_id"]
    event = await run_in_threadpool(request.app.state.events.get, event_id[:200])
    if event is None:
        raise ApiError(404, f"no event {event_id[:80]!r}")
    return JSONResponse(_event_json(request, event))


# -- people ------------------------------------------------------------------------------------------------


@handled
async def list_people(request: Request):
    people = await run_in_threadpool(request.app.state.library.people)
    return JSONResponse({"people": people, "gallery": str(request.app.state.library.gallery_path)})


async def _upload(request: Request) -> tuple[str, list[tuple[str, bytes]]]:
    limit = int(request.app.state.cfg.web.max_upload_mb * MIB)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(400, "send multipart/form-data with a 'name' field and one or more 'photo' files")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise ApiError(413, f"upload larger than web.max_upload_mb ({request.app.state.cfg.web.max_upload_mb:g} MiB)")
    seen = 0

    async def limited():
        nonlocal seen
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > limit:
                raise ApiError(413, f"upload larger than web.max_upload_mb ({request.app.state.cfg.web.max_upload_mb:g} MiB)")
            yield chunk

    try:
        form = await MultiPartParser(request.headers, limited(), max_files=MAX_PHOTOS, max_fields=10,
                                     max_part_size=64 << 10).parse()
    except MultiPartException as exc:
        raise ApiError(400, f"bad upload: {exc}") from None
    except ClientDisconnect:
        raise ApiError(400, "the upload was cut off") from None
    try:
        name = form.get("name")
        photos = []
        for item in form.getlist("photo"):
            if isinstance(item, str):
                raise ApiError(400, "'photo' must be a file")
            photos.append(((item.filename or "photo")[:120], await item.read()))
    finally:
        await form.close()
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "the 'name' field is missing")
    if not photos:
        raise ApiError(400, "no 'photo' file in the upload")
    return name, photos


@handled
async def enrol_person(request: Request):
    name, photos = await _upload(request)
    result = await run_in_threadpool(request.app.state.library.enrol, name, photos)
    return JSONResponse(result, status_code=201)


@handled
async def rename_person(request: Request):
    data = await json_body(request)
    result = await run_in_threadpool(request.app.state.library.rename, request.path_params["name"], _text(data, "name"))
    return JSONResponse(result)


@handled
async def forget_person(request: Request):
    result = await run_in_threadpool(request.app.state.library.forget, request.path_params["name"])
    return JSONResponse(result)


@handled
async def feedback(request: Request):
    data = await json_body(request)
    ref = data.get("event_id") or data.get("track_ref")
    if not isinstance(ref, str) or not ref.strip() or len(ref) > 200:
        raise ApiError(400, "give 'event_id' or 'track_ref' (from an event)")
    result = await run_in_threadpool(request.app.state.library.reject, ref.strip(), _text(data, "not"))
    return JSONResponse(result)


# -- unknowns ----------------------------------------------------------------------------------------------


def _unknown_id(request: Request) -> int:
    try:
        return parse_unknown_id(request.path_params["unknown_id"][:40])
    except FacestreamError as exc:
        raise ApiError(400, str(exc)) from None


@handled
async def list_unknowns(request: Request):
    return JSONResponse({"unknowns": await run_in_threadpool(request.app.state.library.unknowns)})


@handled
async def name_unknown(request: Request):
    uid = _unknown_id(request)
    name = _text(await json_body(request), "name")
    return JSONResponse(await run_in_threadpool(request.app.state.library.name_unknown, uid, name))


@handled
async def dismiss_unknown(request: Request):
    uid = _unknown_id(request)
    return JSONResponse(await run_in_threadpool(request.app.state.library.dismiss_unknown, uid))


# -- status, live, session ---------------------------------------------------------------------------------


@handled
async def status(request: Request):
    from .status import sources_status

    st = request.app.state
    stages = await run_in_threadpool(st.status.stages)
    gallery = await run_in_threadpool(st.library.summary)
    events = await run_in_threadpool(st.events.count)
    return JSONResponse({
        "time_ns": time.time_ns(), "run_dir": str(st.run_dir), "stages": stages, "sources": sources_status(st.cfg),
        "gallery": gallery, "events": {"path": str(st.events.path), "count": events},
        "web": {"url": st.url, "auth": st.auth, "preview_endpoint": st.hub.endpoint,
                "preview_frames": st.hub.received, "preview_rejected": st.hub.rejected},
    })


@handled
async def live(request: Request):
    st = request.app.state
    return JSONResponse({"cameras": st.hub.summary([s.id for s in st.cfg.sources]), "preview_fps": st.cfg.preview_fps(),
                         "endpoint": st.hub.endpoint})


@handled
async def whoami(request: Request):
    return JSONResponse({"user": request.scope.get("state", {}).get("user"), "auth": request.app.state.auth})


async def openapi(request: Request):
    from .openapi import spec

    return JSONResponse(spec())


ROUTES = [
    Route("/api/events", list_events, methods=["GET"]),
    Route("/api/events/{event_id}", get_event, methods=["GET"]),
    Route("/api/people", list_people, methods=["GET"]),
    Route("/api/people", enrol_person, methods=["POST"]),
    Route("/api/people/{name}", rename_person, methods=["PATCH"]),
    Route("/api/people/{name}", forget_person, methods=["DELETE"]),
    Route("/api/feedback", feedback, methods=["POST"]),
    Route("/api/unknowns", list_unknowns, methods=["GET"]),
    Route("/api/unknowns/{unknown_id}/name", name_unknown, methods=["POST"]),
    Route("/api/unknowns/{unknown_id}/dismiss", dismiss_unknown, methods=["POST"]),
    Route("/api/status", status, methods=["GET"]),
    Route("/api/live", live, methods=["GET"]),
    Route("/api/whoami", whoami, methods=["GET"]),
    Route("/api/openapi.json", openapi, methods=["GET"]),
]
