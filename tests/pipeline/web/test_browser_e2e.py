"""The web app against the real pipeline (`facestream run`, web.enabled, the looping demo), in Chromium.

An empty gallery first, so the demo's face is unknown. Then, through the pages: the live tile updates; an
event appears with its best-shot crop; the astronaut photo is enrolled as "Ada" with the upload form and the
live view names Ada; "this is not Ada" on her event changes the next decision; the unknown the face becomes
is named "Grace" and the live view names Grace. Needs the sink's side of #14 (events store, live-view feed,
annotated event frames).
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from ..helpers import cli, make_config, start, stop, wait_for
from .browser import PIXELS_JS, chrome, fresh, screenshot, until

pytestmark = pytest.mark.slow


def _api(url: str, path: str):
    with urllib.request.urlopen(url + path, timeout=10) as r:
        return json.loads(r.read())


def _live_names(url: str) -> list[str]:
    return [f["identity"] for cam in _api(url, "/api/live")["cameras"] for f in cam.get("faces") or []]


def _events_since(url: str, since_ns: int, **filters: str) -> list[dict]:
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    return [e for e in _api(url, f"/api/events?limit=200&{query}")["events"] if e["ts_ns"] >= since_ns]


@pytest.fixture
def driver():
    d = chrome()
    yield d
    d.quit()


def test_operator_session_against_the_running_pipeline(driver, tmp_path, dlib_store, astronaut):
    from selenium.webdriver.common.by import By

    cfg = make_config(tmp_path, [{"id": "demo", "uri": "demo", "loop": True, "max_fps": 10, "policy": "latest"}],
                      inference={"embed": True, "recognizer": "gallery", "gallery": str(tmp_path / "gallery.db"),
                                 "models_dir": str(dlib_store.root)},
                      web={"enabled": True, "port": 0, "preview_fps": 4})
    log = tmp_path / "run.log"
    proc = start(cli("run", str(cfg)), log, env={"FACESTREAM_MODELS": str(dlib_store.root)})
    try:
        url = wait_for(lambda: (tmp_path / "run" / "web.url").is_file() and
                       (tmp_path / "run" / "web.url").read_text().strip(), 120, "run/web.url")

        # live: the tile's picture changes; the face is unknown (empty gallery)
        driver.get(url + "/#live")
        tile = until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, 'img.live[data-camera="demo"]'), 60, "the tile")[0]
        first = until(driver, lambda d: d.execute_script(PIXELS_JS, tile), 180, "the first live picture")
        until(driver, lambda d: d.execute_script(PIXELS_JS, tile) not in (None, first), 60, "a new live picture")
        wait_for(lambda: any(n.startswith("unknown#") for n in _live_names(url)), 240, "the face as unknown#N live")
        screenshot(driver, tmp_path, "e2e-live-unknown")

        # events: an event with its crop, in the page
        wait_for(lambda: any(e["crop_url"] for e in _events_since(url, 0)), 240, "an event with a crop")
        driver.get(url + "/#events")
        until(driver, lambda d: any(d.execute_script("return arguments[0].naturalWidth", img) > 0
                                    for img in d.find_elements(By.CSS_SELECTOR, "li.event img.thumb")), 60,
              "an event's crop in the timeline")

        # enrol the astronaut photo as Ada through the upload form: the live view names her
        photo = tmp_path / "ada.jpg"
        cv2.imwrite(str(photo), cv2.cvtColor(np.ascontiguousarray(astronaut[:300, 100:450]), cv2.COLOR_RGB2BGR))
        driver.get(url + "/#library")
        form = until(driver, lambda d: d.find_element(By.ID, "enrol"), 30, "the enrol form")
        form.find_element(By.NAME, "name").send_keys("Ada")
        form.find_element(By.NAME, "photo").send_keys(str(photo))
        form.find_element(By.CSS_SELECTOR, "button").click()
        until(driver, lambda d: "Ada: 1 photo(s) enrolled" in d.find_element(By.ID, "enrol-result").text, 120,
              "the enrolment")
        enrolled_ns = time.time_ns()
        wait_for(lambda: "Ada" in _live_names(url), 240, "the live view to name Ada")
        ada = wait_for(lambda: _events_since(url, enrolled_ns, person="Ada"), 240, "an event naming Ada")[0]
        driver.get(url + "/#live")
        until(driver, lambda d: "Ada" in d.find_element(By.CSS_SELECTOR, 'figure[data-camera="demo"] .faces').text,
              60, "Ada named in the live tile")
        screenshot(driver, tmp_path, "e2e-live-ada")

        # "this is not Ada" on her event: the next decision is not Ada
        driver.get(url + "/#events")

        def open_ada(d):
            rows = d.find_elements(By.CSS_SELECTOR, f'li.event[data-event="{ada["event_id"]}"]')
            return rows and (rows[0].click() or True)

        fresh(driver, open_ada, 60, "Ada's event in the timeline")  # re-rendered every few seconds
        button = until(driver, lambda d: d.find_elements(By.XPATH, "//button[text()='This is not Ada']"), 30,
                       "the not-Ada button")[0]
        assert driver.find_element(By.CSS_SELECTOR, "#event-detail img.frame")
        screenshot(driver, tmp_path, "e2e-event-ada")
        button.click()
        until(driver, lambda d: "Noted: this is not Ada" in d.find_element(By.ID, "notice").text, 30, "the feedback")
        rejected_ns = time.time_ns()
        after = wait_for(lambda: [e for e in _events_since(url, rejected_ns)
                                  if e["kind"] in ("identified", "identity_changed")], 240, "a decision after the feedback")
        assert all(e["identity"] != "Ada" for e in after), after
        wait_for(lambda: _live_names(url) and "Ada" not in _live_names(url), 120, "the live view to stop naming Ada")

        # the face is an unknown again: name that unknown Grace in the library; the live view names Grace
        unknown = wait_for(lambda: next((e["unknown_id"] for e in _events_since(url, rejected_ns) if e["unknown_id"]),
                                        None), 240, "the face's unknown id after the feedback")
        driver.get(url + "/#library")

        def name_grace(d):
            cards = d.find_elements(By.CSS_SELECTOR, f'.unknown[data-unknown="{unknown}"]')
            if not cards:
                return None
            field = cards[0].find_element(By.CSS_SELECTOR, "input")
            field.clear()
            field.send_keys("Grace")
            cards[0].find_element(By.XPATH, ".//button[text()='Name']").click()
            return True

        fresh(driver, name_grace, 60, f"unknown#{unknown}'s card, to name it")
        until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, '.person[data-person="Grace"]'), 60, "Grace's card")
        screenshot(driver, tmp_path, "e2e-library")
        wait_for(lambda: "Grace" in _live_names(url), 240, "the live view to name Grace")
        assert Path(tmp_path / "out" / "events.db").is_file()
    finally:
        code = stop(proc, timeout=30)
    assert code == 0, log.read_text()[-3000:]
