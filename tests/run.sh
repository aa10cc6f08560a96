#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine (Python, pip and apt only) and run it.
# Extra arguments go to pytest, e.g. `tests/run.sh -m "not slow"` or `tests/run.sh tests/pipeline`.
set -euo pipefail
cd "$(dirname "$0")/.."

# Test-time services and tools from Debian: ffmpeg, GStreamer's RTSP server (for Debian's python3), Prometheus,
# stress-ng (busy CPUs beside the pipeline in tests/pipeline/test_lossless_under_stress.py), mosquitto (MQTT
# events), nats-server (JetStream events), Chromium and ChromeDriver (the web app's browser tests), PostgreSQL
# (the shared gallery; the tests run their own throwaway server, tests/support/postgres.py).
APT_PKGS="ffmpeg prometheus stress-ng mosquitto nats-server postgresql chromium chromium-driver python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly"
missing=""
for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "tests/run.sh: installing Debian packages:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
# torch first and pinned, so pip takes the CPU build (2.13.0+cpu where a local wheel exists) and does not
# pull the multi-GB CUDA build for the optional training extra.
pip_install() { .venv/bin/python -m pip install -q "$@" 2> >(grep -v "^WARNING: Location" >&2); }
pip_install "torch==2.13.0"
pip_install -e '.[test,train,postgres]'
# facenet-pytorch: the torch MTCNN that tests/engines/faces/test_mtcnn_equal.py compares the ONNX conversion with;
# --no-deps because it pins torch < 2.3 and torchvision (the test supplies torchvision's batched_nms when absent).
pip_install --no-deps "facenet-pytorch==2.6.0"
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
