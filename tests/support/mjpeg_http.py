"""An MJPEG-over-HTTP camera for tests (multipart/x-mixed-replace, as most IP cameras serve it), on loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

BOUNDARY = "facestreamframe"


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True  # restart on the same port right after stop()
    daemon_threads = True


class MjpegCamera:
    """Serves ``frame_fn(i)`` as JPEG parts at ``fps`` on http://127.0.0.1:PORT/stream.mjpg until stop()."""

    def __init__(self, frame_fn: Callable[[int], np.ndarray], fps: float = 25.0, port: int = 0) -> None:
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.end_headers()
                i = 0
                try:
                    while not camera.stopped.is_set():
                        ok, jpeg = cv2.imencode(".jpg", frame_fn(i))
                        assert ok
                        data = jpeg.tobytes()
                        self.wfile.write(
                            f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n".encode()
                        )
                        self.wfile.write(data + b"\r\n")
                        i += 1
                        time.sleep(1.0 / fps)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.stopped = threading.Event()
        self.server = _Server(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def stop(self) -> None:
        self.stopped.set()
        self.server.shutdown()
        self.server.server_close()
