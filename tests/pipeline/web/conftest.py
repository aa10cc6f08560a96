"""The web app served by a real uvicorn on a free port (a thread of the test process), a urllib client with a
cookie jar, and the sink's outputs filled by the test: a real events store file and a real ZeroMQ PUB feed."""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import zmq

from facestream.pipeline.config import PipelineConfig
from facestream.pipeline.events_store import EventsStore
from facestream.pipeline.preview import encode_preview


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_cfg(tmp: Path, models: Path | None = None, **web: Any) -> PipelineConfig:
    return PipelineConfig.model_validate({
        "sources": [{"id": "cam1", "uri": "demo"}, {"id": "cam2", "uri": "demo"}],
        "transport": {"run_dir": str(tmp / "run")},
        "sink": {"out_dir": str(tmp / "out")},
        "metrics": {"ports": {"capture": 0, "preprocess": 0, "inference": 0, "sink": 0}},
        "inference": {"gallery": str(tmp / "gallery.db"), "models_dir": str(models or tmp / "models")},
        "web": {"port": 0, "preview_pub": f"tcp://127.0.0.1:{free_port()}", **web},
    })


class Response:
    def __init__(self, status: int, headers, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """urllib with a cookie jar; ``csrf=True`` adds X-Facestream-CSRF from the jar's fs_csrf cookie."""

    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                json_body: Any = None, csrf: bool = True, timeout: float = 60) -> Response:
        headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers.setdefault("Content-Type", "application/json")
        if csrf and method not in ("GET", "HEAD") and self.cookie("fs_csrf") is None:
            self.request("GET", "/api/whoami")  # any response sets the cookie
        if csrf and self.cookie("fs_csrf"):
            headers.setdefault("X-Facestream-CSRF", self.cookie("fs_csrf"))
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=headers)
        try:
            with self.opener.open(req, timeout=timeout) as r:
                return Response(r.status, r.headers, r.read())
        except urllib.error.HTTPError as exc:
            return Response(exc.code, exc.headers, exc.read())

    def get(self, path: str, **kw) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw) -> Response:
        return self.request("POST", path, **kw)

    def upload(self, name: str | None, files: list[tuple[str, bytes]], **kw) -> Response:
        body, ctype = multipart(name, files)
        return self.request("POST", "/api/people", body=body, headers={"Content-Type": ctype}, **kw)


def multipart(name: str | None, files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = b""
    if name is not None:
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\n{name}\r\n').encode()
    for filename, data in files:
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; filename="{filename}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


@contextlib.contextmanager
def serving(cfg: PipelineConfig):
    from facestream.pipeline.web.server import Server

    server = Server(cfg)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.uvicorn.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the web app did not start"
        time.sleep(0.05)
    try:
        yield server
    finally:
        server.stop()
        thread.join(10)


@pytest.fixture
def web(tmp_path):
    """(server, client) for a default config (auth off, loopback) with the test's files under tmp_path."""
    cfg = make_cfg(tmp_path)
    with serving(cfg) as server:
        yield server, Client(server.url)


def jpeg(value: int, size: tuple[int, int] = (160, 120), text: str = "") -> bytes:
    img = np.full((size[1], size[0], 3), value % 256, np.uint8)
    if text:
        cv2.putText(img, text, (5, size[1] // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
    ok, data = cv2.imencode(".jpg", img)
    assert ok
    return data.tobytes()


class Feed:
    """A real PUB socket bound where the sink would bind web.preview_pub, sending frames from a thread."""

    def __init__(self, endpoint: str, cameras: tuple[str, ...] = ("cam1",), fps: float = 10.0):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.PUB)
        self.sock.bind(endpoint)
        self.cameras, self.period = cameras, 1.0 / fps
        self.sent = 0
        self.extra: list[list[bytes]] = []  # raw messages to send once (malformed ones)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            while self.extra:
                self.sock.send_multipart(self.extra.pop())
            for k, cam in enumerate(self.cameras):
                header = {"seq": self.sent, "ts_ns": time.time_ns(), "latency_ms": 42.0 + k, "fps": 9.5, "dropped": 3,
                          "faces": [{"identity": "unknown#1", "track": 7}], "width": 160, "height": 120}
                self.sock.send_multipart(encode_preview(cam, header, jpeg(self.sent * 37 + k * 80, text=f"{cam} {self.sent}")))
            self.sent += 1
            time.sleep(self.period)

    def __enter__(self) -> Feed:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.thread.join(5)
        self.sock.close(0)
        self.ctx.term()


def event(n: int, ts_ns: int, camera: str = "cam1", kind: str = "identified", name: str | None = "Ada",
          unknown_id: int | None = None, crop: str | None = None) -> dict[str, Any]:
    identity = name or (f"unknown#{unknown_id}" if unknown_id else "unknown")
    return {"event_id": f"e-{n:016x}", "kind": kind, "stream_id": camera, "track_id": n, "track_ref": f"t-{n:016x}",
            "seq": n, "ts_ns": ts_ns, "first_ts_ns": ts_ns - 10**9, "identity": identity, "name": name,
            "unknown_id": unknown_id, "score": 0.8, "confidence": 0.9, "best_shot_path": crop,
            "previous_identity": None, "dwell_seconds": 1.0}


def fill_store(cfg: PipelineConfig, events: list[tuple[dict[str, Any], str | None]]) -> EventsStore:
    store = EventsStore(cfg.events_db())
    for e, frame in events:
        store.add(e, frame)
    return store


def write_picture(path: Path, value: int = 128) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(jpeg(value, (64, 64)))
    return str(path)
