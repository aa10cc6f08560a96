"""The HTTP API against a real uvicorn: events queries, the face library (real enrolment of a real face), unknowns,
feedback, uploads refused (too large, not an image), pictures served only from under out_dir, the OpenAPI file."""

from __future__ import annotations

import http.client
import json
import os
import time
from pathlib import Path
from urllib.parse import urlsplit

import cv2
import numpy as np
import pytest

from facestream.pipeline.recognition.gallery import EnrolItem, Gallery
from facestream.pipeline.recognition.unknowns import UnknownClusters

from .conftest import Client, event, fill_store, make_cfg, serving, write_picture


def _vec(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=128).astype(np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture
def library(tmp_path, dlib_store):
    cfg = make_cfg(tmp_path, models=dlib_store.root)
    with serving(cfg) as server:
        yield cfg, Client(server.url)


def _astronaut_jpeg(astronaut: np.ndarray) -> bytes:
    """Her head and shoulders (the whole photo has a second, small face on the suit's patch)."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(np.ascontiguousarray(astronaut[:300, 100:450]), cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


# -- uploads -----------------------------------------------------------------------------------------------


def test_upload_larger_than_max_upload_mb_is_413_before_it_is_read(tmp_path):
    cfg = make_cfg(tmp_path, max_upload_mb=0.05)
    with serving(cfg) as server:
        c = Client(server.url)
        r = c.upload("Ada", [("big.jpg", os.urandom(200_000))])
        assert r.status == 413 and r.json() == {"error": "upload larger than web.max_upload_mb (0.05 MiB)"}
        # chunked, no Content-Length: refused once the limit is passed, long before the 20 MB are sent
        parts = urlsplit(server.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        conn.putrequest("POST", "/api/people")
        conn.putheader("Content-Type", "multipart/form-data; boundary=xyz")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.putheader("Cookie", f"fs_csrf={c.cookie('fs_csrf')}")
        conn.putheader("X-Facestream-CSRF", c.cookie("fs_csrf"))
        conn.endheaders()
        sent = 0
        try:
            head = b'--xyz\r\nContent-Disposition: form-data; name="photo"; filename="a.jpg"\r\n\r\n'
            conn.send(f"{len(head):x}\r\n".encode() + head + b"\r\n")
            chunk = os.urandom(64 << 10)
            while sent < 20 << 20:
                conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert sent < 20 << 20, "the server read the whole upload before refusing it"
        try:
            resp = conn.getresponse()
            assert resp.status == 413, resp.read()
        except (ConnectionResetError, http.client.RemoteDisconnected):
            pass  # the refusal was sent, then the connection closed with the upload unread
        conn.close()


def test_upload_that_is_not_an_image_is_400_with_one_line(library):
    _, c = library
    r = c.upload("Ada", [("notes.jpg", b"these are my notes, not a picture")])
    assert r.status == 400
    err = r.json()["error"]
    assert err == "no usable photo of Ada: notes.jpg: not an image facestream can read", err
    assert c.upload("Ada", []).json() == {"error": "no 'photo' file in the upload"}
    assert c.upload(None, [("a.jpg", b"x")]).json() == {"error": "the 'name' field is missing"}
    r = c.post("/api/people", json_body={"name": "Ada"})
    assert r.status == 400 and "multipart/form-data" in r.json()["error"]
    blank = cv2.imencode(".jpg", np.full((400, 400, 3), 128, np.uint8))[1].tobytes()
    assert c.upload("Ada", [("wall.jpg", blank)]).json()["error"] == "no usable photo of Ada: wall.jpg: no face found"
    assert c.get("/api/people").json()["people"] == []


def test_enrol_a_real_face_then_rename_and_forget(library, astronaut):
    cfg, c = library
    r = c.upload("Ada", [("astronaut.jpg", _astronaut_jpeg(astronaut)), ("notes.jpg", b"not a picture")])
    assert r.status == 201, r.body
    body = r.json()
    assert body["name"] == "Ada" and body["added"] == 1 and body["embeddings"] == 1
    assert body["refused"] == ["notes.jpg: not an image facestream can read"]
    people = c.get("/api/people").json()["people"]
    assert [p["name"] for p in people] == ["Ada"] and people[0]["embeddings"] == 1
    assert 0 < people[0]["quality"] <= 1
    photo = c.get(people[0]["photos"][0])
    assert photo.status == 200 and photo.headers["Content-Type"] == "image/jpeg" and photo.body[:2] == b"\xff\xd8"
    thumb = Path(cfg.sink.out_dir, urlsplit(people[0]["photos"][0]).path.removeprefix("/files/"))
    assert thumb.is_file()
    with Gallery(cfg.inference.gallery, create=False) as g:  # the same gallery the CLI and the pipeline read
        assert g.names() == ["Ada"] and g.embeddings_of("Ada").shape == (1, 128)

    fill_store(cfg, [(event(1, time.time_ns(), name="Ada"), None)])
    assert c.request("PATCH", "/api/people/Ada", json_body={"name": "Ada Lovelace"}).json() == {
        "name": "Ada Lovelace", "was": "Ada"}
    assert c.upload("Grace", [("astronaut.jpg", _astronaut_jpeg(astronaut))]).status == 201
    clash = c.request("PATCH", "/api/people/Grace", json_body={"name": "Ada Lovelace"})
    assert clash.status == 409 and "already exists" in clash.json()["error"]
    assert c.request("PATCH", "/api/people/Nobody", json_body={"name": "X"}).status == 404
    assert c.request("PATCH", "/api/people/Grace", json_body={"name": ""}).status == 400
    assert c.request("PATCH", "/api/people/Grace", json_body={"name": "unknown#3"}).status == 400

    fill_store(cfg, [(event(2, time.time_ns(), name="Grace"), None)])
    r = c.request("DELETE", "/api/people/Grace")
    assert r.status == 200 and r.json()["events_deleted"] == 1 and r.json()["crops_deleted"] == 1
    assert [p["name"] for p in c.get("/api/people").json()["people"]] == ["Ada Lovelace"]
    assert c.get("/api/events?person=Grace").json()["count"] == 0
    assert c.request("DELETE", "/api/people/Grace").status == 404
    assert thumb.is_file()  # Ada's thumbnail stays (hers, although Grace was enrolled from the same photo)
    assert len(list(thumb.parent.iterdir())) == 1


def test_feedback_not_x(web, tmp_path):
    server, c = web
    cfg = server.app.state.cfg
    with Gallery(cfg.inference.gallery) as g:
        g.enrol("Ada", [EnrolItem(_vec(1), 0.9, "sha-ada")])
        g.record_sighting("e-00000000000000aa", "t-00000000000000aa", "cam1", time.time_ns(), _vec(1), name="Ada")
    r = c.post("/api/feedback", json_body={"event_id": "e-00000000000000aa", "not": "Ada"})
    assert r.status == 200 and r.json() == {"ref": "e-00000000000000aa", "not": "Ada", "similar_blocked": True}
    r = c.post("/api/feedback", json_body={"track_ref": "t-unseen", "not": "Ada"})
    assert r.json()["similar_blocked"] is False
    with Gallery(cfg.inference.gallery) as g:
        snap = g.snapshot()
    assert snap.rejection_refs == {"e-00000000000000aa": {"Ada"}, "t-unseen": {"Ada"}}
    assert c.post("/api/feedback", json_body={"event_id": "e-1"}).status == 400
    assert c.post("/api/feedback", json_body={"not": "Ada"}).status == 400
    assert c.post("/api/feedback", json_body={"event_id": "e-1", "not": "Nobody"}).status == 404
    assert c.post("/api/feedback", body=b"[1, 2]", headers={"Content-Type": "application/json"}).status == 400
    assert c.post("/api/feedback", body=b"{not json", headers={"Content-Type": "application/json"}).status == 400


def test_unknowns_with_crops_named_or_dismissed(web):
    server, c = web
    cfg = server.app.state.cfg
    now = time.time_ns()
    with Gallery(cfg.inference.gallery) as g:
        clusters = UnknownClusters(g)
        first = clusters.assign(_vec(10), 0.8, now - 10**9).unknown_id
        second = clusters.assign(_vec(20), 0.7, now).unknown_id
    crop = write_picture(Path(cfg.sink.out_dir) / "crops" / "u1.jpg")
    fill_store(cfg, [(event(1, now, name=None, unknown_id=first, crop=crop), None),
                     (event(2, now, name=None, unknown_id=second), None)])
    rows = c.get("/api/unknowns").json()["unknowns"]
    assert [r["id"] for r in rows] == [second, first]
    assert rows[1]["crops"] == ["/files/crops/u1.jpg"] and rows[0]["crops"] == []
    r = c.post(f"/api/unknowns/unknown%23{first}/name", json_body={"name": "Grace"})
    assert r.status == 200 and r.json() == {"unknown_id": first, "name": "Grace", "added": 1}
    assert [p["name"] for p in c.get("/api/people").json()["people"]] == ["Grace"]
    assert c.post(f"/api/unknowns/{second}/dismiss").json() == {"dismissed": second}
    assert c.get("/api/unknowns").json()["unknowns"] == []
    assert c.post(f"/api/unknowns/{second}/dismiss").status == 404
    assert c.post("/api/unknowns/abc/dismiss").status == 400
    assert c.post(f"/api/unknowns/{first}/name", json_body={"name": 7}).status == 400


# -- events ------------------------------------------------------------------------------------------------


def test_events_query_filters(web):
    server, c = web
    cfg = server.app.state.cfg
    t0 = (time.time_ns() // 10**9 - 3600) * 10**9  # whole seconds: since/until below are epoch seconds
    crop = write_picture(Path(cfg.sink.out_dir) / "crops" / "a.jpg")
    frame = Path(cfg.sink.out_dir) / "frames" / "e-0000000000000001.jpg"
    write_picture(frame)
    fill_store(cfg, [
        (event(1, t0, "cam1", name="Ada", crop=crop), "frames/e-0000000000000001.jpg"),
        (event(2, t0 + 10**9, "cam2", name="Ada"), None),
        (event(3, t0 + 2 * 10**9, "cam1", name=None, unknown_id=4), None),
        (event(4, t0 + 3 * 10**9, "cam2", kind="track_started", name=None), None),
        (event(5, time.time_ns(), "cam1", name="Grace"), None),
    ])

    def ids(query: str) -> list[int]:
        r = c.get("/api/events" + query)
        assert r.status == 200, r.body
        return [int(e["event_id"][2:], 16) for e in r.json()["events"]]

    assert ids("") == [5, 4, 3, 2, 1]
    assert ids("?camera=cam1") == [5, 3, 1]
    assert ids("?person=Ada") == [2, 1]
    assert ids("?person=Ada&camera=cam2") == [2]
    assert ids("?unknown=4") == ids("?unknown=unknown%234") == [3]
    assert ids("?kind=track_started") == [4]
    assert ids("?since=30m") == [5]
    assert ids(f"?since={t0 // 10**9 + 1}&until={t0 // 10**9 + 3}") == [3, 2]
    assert ids("?limit=2") == [5, 4] and ids("?limit=2&offset=2") == [3, 2]
    one = c.get("/api/events/e-0000000000000001").json()
    assert one["crop_url"] == "/files/crops/a.jpg" and one["frame_url"] == "/files/frames/e-0000000000000001.jpg"
    assert c.get(one["frame_url"]).body[:2] == b"\xff\xd8"
    assert c.get("/api/events/e-0000000000000002").json()["crop_url"] is None
    assert c.get("/api/events/e-nope").status == 404
    for bad in ("limit=abc", "limit=0", "limit=100000", "since=yesterday-ish", "unknown=xyz", "kind=bogus",
                "offset=-1", "until=%00"):
        r = c.get("/api/events?" + bad)
        assert r.status == 400 and set(r.json()) == {"error"} and "\n" not in r.json()["error"], (bad, r.body)


def test_pictures_only_from_under_out_dir(web, tmp_path):
    server, c = web
    out = Path(server.app.state.cfg.sink.out_dir)
    write_picture(out / "crops" / "ok.jpg")
    secret = tmp_path / "secret.jpg"
    write_picture(secret)
    (out / "crops" / "link.jpg").symlink_to(secret)
    (out / "notes.txt").write_text("not a picture")
    assert c.get("/files/crops/ok.jpg").status == 200
    parts = urlsplit(server.url)
    for path in ("/files/../secret.jpg", "/files/..%2fsecret.jpg", "/files/%2e%2e/secret.jpg",
                 "/files/crops/../../secret.jpg", f"/files/{secret}", "/files//" + str(secret), "/files/crops/link.jpg",
                 "/files/notes.txt", "/files/crops/missing.jpg", "/files/%00.jpg"):
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        conn.request("GET", path)  # sent as written: no client-side normalisation
        resp = conn.getresponse()
        assert resp.status == 404, (path, resp.status)
        assert json.loads(resp.read()) == {"error": "no such picture under the output folder"}
        conn.close()
    assert server.app.state.files.url(str(secret)) is None
    assert server.app.state.files.url(str(out / "crops" / "ok.jpg")) == "/files/crops/ok.jpg"


# -- the description and robustness ------------------------------------------------------------------------


def test_openapi_lists_exactly_the_api_routes(web):
    server, c = web
    from starlette.routing import Route

    spec = c.get("/api/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    served = {(r.path, m.lower()) for r in server.app.routes if isinstance(r, Route) and r.path.startswith("/api")
              for m in r.methods if m != "HEAD"}
    assert documented == served
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op["summary"] and "200" in op["responses"] or "201" in op["responses"], (path, method)
            ok = op["responses"].get("200") or op["responses"]["201"]
            assert ok["content"]["application/json"]["schema"]["type"] == "object"
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == set(part[1:-1] for part in path.split("/") if part.startswith("{")), (path, method)


def test_bad_input_is_never_a_500(web):
    _, c = web
    junk = [b"", b"null", b"[]", b'"x"', b"{", b'{"name": null}', b'{"name": ["a"]}', b'{"name": "' + b"x" * 5000 + b'"}',
            b"\xff\xfe", json.dumps({"event_id": {"a": 1}, "not": 3}).encode(), b"{}" * 40000]
    paths = [("POST", "/api/feedback"), ("POST", "/api/unknowns/1/name"), ("PATCH", "/api/people/Ada"),
             ("POST", "/api/people"), ("POST", "/login"), ("DELETE", "/api/people/%00"), ("POST", "/api/unknowns/-1/dismiss")]
    for method, path in paths:
        for body in junk:
            for ctype in ("application/json", "multipart/form-data; boundary=x", "text/plain"):
                r = c.request(method, path, body=body, headers={"Content-Type": ctype})
                assert 400 <= r.status < 500, (method, path, body[:40], ctype, r.status, r.body[:200])
                assert set(r.json()) == {"error"}
    for path in ("/api/events/%00", "/api/events?person=%00", "/api/events?camera=" + "x" * 10000, "/live/%00.mjpg",
                 "/api/nope", "/files/"):
        r = c.get(path)
        assert r.status < 500 and isinstance(r.json(), dict), (path, r.status, r.body[:200])
    assert c.request("PUT", "/api/people").status == 405
