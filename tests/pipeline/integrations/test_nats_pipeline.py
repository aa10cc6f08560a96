"""`facestream run` on the demo with integrations.nats on (a real nats-server -js): the stream holds exactly the
events the sink wrote, with the same ids and order, the astronaut named; the consumer example of
docs/integrations.md reads the identifications back."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest
import yaml

from ..helpers import REPO, cli, kill_tree, start
from .nats_support import NatsServer, needs_nats, read_stream

pytestmark = [pytest.mark.slow, needs_nats]


def doc_consumer() -> str:
    text = (REPO / "docs" / "integrations.md").read_text()
    section = text.split("### A consumer", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_demo_run_publishes_its_events_to_jetstream(tmp_path):
    server = NatsServer(tmp_path).start()
    out = tmp_path / "out"
    nats_cfg = {"enabled": True, "url": server.url}
    env = {"FACESTREAM__TRANSPORT__RUN_DIR": str(tmp_path / "run"),
           "FACESTREAM__METRICS__PORTS": "{capture: 0, preprocess: 0, inference: 0, sink: 0}",
           "FACESTREAM_MODELS": str(tmp_path / "models"), "FACESTREAM_GALLERY": str(tmp_path / "gallery.db"),
           "FACESTREAM__INTEGRATIONS__NATS": yaml.safe_dump(nats_cfg, default_flow_style=True).strip()}
    proc = start(cli("run", "--out", str(out)), tmp_path / "log.txt", env=env)
    try:
        assert proc.wait(300) == 0, (tmp_path / "log.txt").read_text()[-3000:]
    finally:
        kill_tree(proc)
    try:
        stored = [json.loads(line) for p in sorted((out / "events").glob("*.jsonl")) for line in p.read_text().splitlines()]
        assert any(e["kind"] == "identified" and e["name"] == "Eileen Collins" for e in stored), stored
        got, total = read_stream(server.url)
        assert total == len(stored)
        assert [s.msg_id for s in got] == [e["event_id"] for e in stored]
        on_nats = [json.loads(s.data) for s in got]
        assert [e["event_id"] for e in on_nats] == [e["event_id"] for e in stored]
        assert [s.subject for s in got] == [f"facestream.demo.{e['kind']}" for e in stored]
        identified = [e for e in on_nats if e["kind"] == "identified"]
        assert identified and all(e["name"] == "Eileen Collins" for e in identified)
        assert not (out / "dead_letter").exists()

        script = tmp_path / "consumer.py"
        script.write_text(doc_consumer())
        env = {**os.environ, "NATS_URL": server.url}
        consumer = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    env=env, text=True)
        time.sleep(4.0)
        consumer.kill()
        lines = consumer.communicate(timeout=10)[0].splitlines()
        assert len(lines) == len(identified), lines
        assert all(line.endswith(" demo Eileen Collins") for line in lines), lines
    finally:
        server.stop()
