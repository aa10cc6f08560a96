"""Who may use the web app and which requests it refuses: auth on/off rules, login, bearer tokens, CSRF, Host."""

from __future__ import annotations

import subprocess

import pytest

from facestream.errors import FacestreamError
from facestream.pipeline.config import PipelineConfig
from facestream.pipeline.web.auth import (
    check_exposure,
    hash_password,
    hash_token,
    verify_password,
    verify_token,
)

from ..helpers import REPO, cli
from .conftest import Client, make_cfg, serving

TOKEN = "a-long-random-test-token-0123456789"


def test_password_and_token_hashes():
    stored = hash_password("correct horse", iterations=1000)
    assert stored.startswith("pbkdf2_sha256$1000$") and "correct horse" not in stored
    assert verify_password("correct horse", stored) and not verify_password("wrong", stored)
    assert hash_password("correct horse", 1000) != stored  # salted
    assert not verify_password("x", "plain-text-password")
    assert verify_token(TOKEN, hash_token(TOKEN)) and not verify_token("other", hash_token(TOKEN))
    assert not verify_token(TOKEN, "")


def test_off_loopback_without_auth_refuses_to_start(tmp_path):
    cfg = make_cfg(tmp_path, host="0.0.0.0")
    with pytest.raises(FacestreamError, match="off loopback: set web.token_sha256 or web.users"):
        check_exposure(cfg.web)
    check_exposure(make_cfg(tmp_path, host="0.0.0.0", token_sha256=hash_token(TOKEN)).web)
    with pytest.raises(FacestreamError, match="not a password hash"):
        check_exposure(make_cfg(tmp_path, users={"ada": "secret"}).web)
    # the command says it in one line, exit 2, before binding anything
    r = subprocess.run(cli("web", "--host", "0.0.0.0", "--port", "0"), cwd=REPO, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "off loopback" in r.stderr, r.stderr


def test_auth_off_on_loopback_serves_everyone(web):
    _, client = web
    r = client.get("/api/whoami")
    assert r.status == 200 and r.json() == {"user": "anonymous", "auth": False}
    assert client.get("/").status == 200


def test_token_and_login(tmp_path):
    cfg = make_cfg(tmp_path, token_sha256=hash_token(TOKEN), users={"ada": hash_password("lovelace-1815", 1000)})
    with serving(cfg) as server:
        anon = Client(server.url)
        assert anon.get("/api/people").status == 401
        assert anon.get("/live/cam1.jpg").status == 401
        assert anon.get("/files/x.jpg").status == 401
        page = anon.get("/")  # a page redirects to the login form
        assert page.status == 200 and b'id="login"' in page.body
        assert anon.get("/static/app.js").status == 200  # assets are public
        assert anon.get("/api/people", headers={"Authorization": "Bearer wrong"}).status == 401
        ok = anon.get("/api/people", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status == 200 and "people" in ok.json()

        bad = anon.post("/login", json_body={"user": "ada", "password": "nope"})
        assert bad.status == 401 and bad.json() == {"error": "wrong user, password or token"}
        assert anon.cookie("fs_session") is None
        good = anon.post("/login", json_body={"user": "ada", "password": "lovelace-1815"})
        assert good.status == 200 and good.json() == {"user": "ada"}
        cookie = next(c for c in anon.jar if c.name == "fs_session")
        assert cookie.has_nonstandard_attr("HttpOnly") and cookie.get_nonstandard_attr("SameSite") == "Strict"
        assert anon.get("/api/whoami").json() == {"user": "ada", "auth": True}
        assert anon.post("/logout").status == 200
        assert anon.get("/api/whoami").status == 401

        by_token = Client(server.url)
        assert by_token.post("/login", json_body={"token": TOKEN}).json() == {"user": "token"}
        assert by_token.get("/api/people").status == 200


def test_cross_site_form_post_is_refused(tmp_path):
    cfg = make_cfg(tmp_path, users={"ada": hash_password("lovelace-1815", 1000)}, token_sha256=hash_token(TOKEN))
    with serving(cfg) as server:
        c = Client(server.url)
        assert c.post("/login", json_body={"user": "ada", "password": "lovelace-1815"}).status == 200
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        # what a hostile page's <form method=post> sends: the session cookie rides along, no custom header
        r = c.post("/api/unknowns/1/dismiss", body=b"x=1", headers={**form, "Origin": "http://evil.example"}, csrf=False)
        assert r.status == 403 and "cross-site" in r.json()["error"]
        r = c.post("/api/unknowns/1/dismiss", body=b"x=1", headers=form, csrf=False)  # no Origin sent
        assert r.status == 403 and "X-Facestream-CSRF" in r.json()["error"]
        r = c.post("/api/unknowns/1/dismiss", headers={"X-Facestream-CSRF": "guessed"}, csrf=False)
        assert r.status == 403
        r = c.request("DELETE", "/api/people/Ada", headers={"Origin": "null"})
        assert r.status == 403
        # same origin with the header: through the guard (no such unknown: 404 from the API itself)
        r = c.post("/api/unknowns/1/dismiss", headers={"Origin": server.url})
        assert r.status == 404 and r.json() == {"error": "no unknown#1 in the gallery"}
        # a bearer client needs no CSRF cookie, but a foreign Origin is still refused
        bearer = Client(server.url)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert bearer.post("/api/unknowns/1/dismiss", headers=auth, csrf=False).status == 404
        assert bearer.post("/api/unknowns/1/dismiss", headers={**auth, "Origin": "http://evil.example"},
                           csrf=False).status == 403
        # logging in needs the CSRF header too (no login CSRF)
        assert Client(server.url).post("/login", json_body={"token": TOKEN}, csrf=False).status == 403


def test_csrf_applies_with_auth_off_and_a_foreign_host_is_refused(web):
    server, c = web
    r = c.post("/api/feedback", body=b"event_id=e-1&not=Ada", csrf=False,
               headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.example"})
    assert r.status == 403
    r = c.post("/api/feedback", json_body={"event_id": "e-1", "not": "Ada"})
    assert r.status == 404, r.body  # through the guard; nobody named Ada
    host = server.url.split("//")[1]
    rebound = c.get("/api/people", headers={"Host": "evil.example:" + host.split(":")[1]})
    assert rebound.status == 403 and "loopback" in rebound.json()["error"]


def test_hash_commands_print_config_lines(tmp_path):
    r = subprocess.run(cli("web", "hash-token", TOKEN), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and f"token_sha256: {hash_token(TOKEN)}" in r.stdout
    r = subprocess.run(cli("web", "hash-password", "ada", "--stdin"), cwd=REPO, input="lovelace-1815\n",
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    stored = r.stdout.split("ada: ")[1].strip().strip("'")
    assert verify_password("lovelace-1815", stored)
    PipelineConfig.model_validate({"web": {"users": {"ada": stored}}})
    r = subprocess.run(cli("web", "hash-password", "--stdin"), cwd=REPO, input="short\n", capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and "at least 8" in r.stderr
