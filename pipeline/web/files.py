"""Crops and annotated frames, served only from under ``sink.out_dir`` (``/files/RELATIVE/PATH``).

A stored path (a crop as inference wrote it, a frame relative to out_dir) becomes a URL only when it resolves
inside out_dir; a requested path is resolved (symlinks included) and must still be inside out_dir, be a file
and be a picture. Anything else is 404, counted as ``not_found``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from ..metrics import WEB_REJECTED

PICTURES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}


class OutFiles:
    def __init__(self, out_dir: Path | str):
        self.root = Path(out_dir).resolve()

    def _inside(self, path: Path) -> Path | None:
        try:
            real = path.resolve()
        except (OSError, RuntimeError):
            return None
        return real if real.is_relative_to(self.root) else None

    def url(self, stored: object) -> str | None:
        """``/files/...`` for a stored path (absolute, relative to out_dir, or relative to this folder), or None."""
        if not isinstance(stored, str) or not stored or "\x00" in stored:
            return None
        path = Path(stored)
        for candidate in ([path] if path.is_absolute() else [self.root / path, path]):
            real = self._inside(candidate)
            if real is not None and real.is_file():
                return "/files/" + quote(real.relative_to(self.root).as_posix())
        return None

    def file(self, relative: str) -> Path | None:
        """The picture file at ``relative`` under out_dir, or None (outside it, missing, not a picture)."""
        if not relative or "\x00" in relative or relative.startswith("/"):
            return None
        real = self._inside(self.root / relative)
        if real is None or not real.is_file() or real.suffix.lower() not in PICTURES:
            return None
        return real

    async def endpoint(self, request: Request) -> Response:
        path = self.file(request.path_params["path"])
        if path is None:
            WEB_REJECTED.labels("not_found").inc()
            return JSONResponse({"error": "no such picture under the output folder"}, status_code=404)
        return FileResponse(path, media_type=PICTURES[path.suffix.lower()], headers={"cache-control": "private, max-age=60"})
