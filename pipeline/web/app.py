"""``create_app(cfg)``: the Starlette app (pages, /api/, the live view, output pictures, /metrics) behind the
guard of :mod:`.auth`. Pages are static files (plain HTML, JS, CSS) that talk to /api/."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..config import PipelineConfig
from ..metrics import WEB_REJECTED
from . import api, live
from .auth import (
    SESSION_COOKIE,
    SESSION_TTL_S,
    Guard,
    Sessions,
    auth_enabled,
    check_exposure,
    check_login,
    cookie_header,
)
from .files import OutFiles
from .library import ApiError, EventsReader, Library
from .status import StatusCache, find_run_dir

STATIC = Path(__file__).resolve().parent / "static"


async def index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})


async def login_page(request: Request) -> Response:
    if not request.app.state.auth:
        return RedirectResponse("/", status_code=303)
    return FileResponse(STATIC / "login.html", headers={"cache-control": "no-store"})


async def login(request: Request) -> Response:
    st = request.app.state
    try:
        data = await api.json_body(request)
    except ApiError as exc:
        return api.error(exc.status, exc.message)
    fields = {k: data.get(k) if isinstance(data.get(k), str) else "" for k in ("user", "password", "token")}
    user = await asyncio.to_thread(check_login, st.cfg.web, fields["user"][:200], fields["password"][:1000],
                                   fields["token"][:1000])
    if user is None:
        await asyncio.sleep(0.5)  # slows guessing down
        return api.error(401, "wrong user, password or token", "bad_login")
    response = JSONResponse({"user": user})
    name, value = cookie_header(SESSION_COOKIE, st.sessions.create(user), http_only=True, max_age=SESSION_TTL_S)
    response.raw_headers.append((name, value))
    return response


async def logout(request: Request) -> Response:
    sid = request.cookies.get(SESSION_COOKIE)
    if sid:
        request.app.state.sessions.drop(sid)
    response = JSONResponse({"user": None})
    response.raw_headers.append(cookie_header(SESSION_COOKIE, "", http_only=True, max_age=0))
    return response


async def metrics(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def not_found(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 404)
    if status == 404:
        WEB_REJECTED.labels("not_found").inc()
    message = {404: "not found", 405: "method not allowed"}.get(status, "request refused")
    return JSONResponse({"error": f"{message}: {request.method} {request.url.path[:200]}"}, status_code=status)


async def server_error(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": "internal error (the web app's log has the details)"}, status_code=500)


def create_app(cfg: PipelineConfig, run_dir: Path | None = None, url: str = "") -> Starlette:
    """The web app for ``cfg``; FacestreamError when its auth settings must not start (see auth.check_exposure)."""
    check_exposure(cfg.web)
    run_dir = run_dir or find_run_dir(cfg)
    if not cfg.transport.run_dir:
        cfg = cfg.model_copy(deep=True)
        cfg.transport.run_dir = str(run_dir)
    files = OutFiles(cfg.sink.out_dir)
    events = EventsReader(cfg.events_db())
    hub = live.PreviewHub(cfg.preview_endpoint())
    sessions = Sessions()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        hub.start()
        try:
            yield
        finally:
            hub.stop()
            events.close()

    routes = [
        Route("/", index, methods=["GET"]),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/live/{camera}.mjpg", live.mjpeg, methods=["GET"]),
        Route("/live/{camera}.jpg", live.snapshot, methods=["GET"]),
        Route("/files/{path:path}", files.endpoint, methods=["GET"]),
        *api.ROUTES,
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={404: not_found, 405: not_found, 500: server_error})
    st = app.state
    st.cfg, st.run_dir, st.url, st.auth = cfg, run_dir, url, auth_enabled(cfg.web)
    st.files, st.events, st.hub, st.sessions = files, events, hub, sessions
    st.library = Library(cfg, files, events)
    st.status = StatusCache(cfg, run_dir)
    app.add_middleware(Guard, web=cfg.web, sessions=sessions)
    return app
