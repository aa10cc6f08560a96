#!/usr/bin/env python3
"""Container health check: every stage's /metrics answers with facestream metrics.

Ports come from FACESTREAM_HEALTH_PORTS (space or comma separated; default all four stages: 9101-9104; a per-stage
container sets its own port). The stages bind their metrics to the container's addresses, so 127.0.0.1 reaches them.
Exit 0 when all answer, 1 (with one line per failing port) otherwise. Standard library only: it runs in every image.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

DEFAULT_PORTS = "9101 9102 9103 9104"


def check(host: str, port: int, timeout_s: float) -> str | None:
    """None when http://host:port/metrics serves facestream metrics, else why not."""
    url = f"http://{host}:{port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            body = resp.read(1 << 20)
    except (urllib.error.URLError, OSError) as exc:
        return f"{url}: {getattr(exc, 'reason', exc)}"
    if b"facestream_" not in body:
        return f"{url}: answers but serves no facestream_ metrics"
    return None


def main() -> int:
    host = os.environ.get("FACESTREAM_HEALTH_HOST", "127.0.0.1")
    timeout_s = float(os.environ.get("FACESTREAM_HEALTH_TIMEOUT_S", "3"))
    raw = os.environ.get("FACESTREAM_HEALTH_PORTS", DEFAULT_PORTS)
    try:
        ports = [int(p) for p in raw.replace(",", " ").split()]
    except ValueError:
        print(f"unhealthy: FACESTREAM_HEALTH_PORTS={raw!r} is not a list of ports", file=sys.stderr)
        return 1
    failures = [msg for port in ports if (msg := check(host, port, timeout_s))]
    for msg in failures:
        print(f"unhealthy: {msg}", file=sys.stderr)
    return 1 if failures or not ports else 0


if __name__ == "__main__":
    sys.exit(main())
