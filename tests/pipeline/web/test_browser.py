"""The pages in a real (headless) Chromium against the app with a test-filled events store and preview feed: the
live tile's picture changes, the events page lists an event with its crop and opens its frame, the upload form
enrols a real face, an unknown is named; a screenshot of each page goes to bench/results/web/."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from facestream.pipeline.recognition.gallery import Gallery
from facestream.pipeline.recognition.unknowns import UnknownClusters
from facestream.pipeline.web.auth import hash_password

from .browser import PIXELS_JS, chrome, fresh, screenshot, until
from .conftest import Feed, event, fill_store, make_cfg, serving

pytestmark = pytest.mark.slow


@pytest.fixture
def driver():
    d = chrome()
    yield d
    d.quit()


def _face_jpeg(path: Path, astronaut: np.ndarray) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(astronaut[:300, 100:450]), cv2.COLOR_RGB2BGR))
    return path


def _crop(out: Path, name: str, astronaut: np.ndarray, x: int) -> str:
    path = out / "crops" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(cv2.resize(astronaut[30:250, x:x + 220], (112, 112)), cv2.COLOR_RGB2BGR))
    return str(path)


def test_pages_in_chromium(driver, tmp_path, dlib_store, astronaut):
    from selenium.webdriver.common.by import By

    cfg = make_cfg(tmp_path, models=dlib_store.root)
    out = Path(cfg.sink.out_dir)
    now = time.time_ns()
    with Gallery(cfg.inference.gallery) as g:
        uid = UnknownClusters(g).assign(np.random.default_rng(3).normal(size=128).astype(np.float32), 0.8, now).unknown_id
    frame = out / "frames" / "e-0000000000000001.jpg"
    frame.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(frame), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    fill_store(cfg, [
        (event(1, now - 5 * 10**9, "cam1", name="Eileen Collins", crop=_crop(out, "a.jpg", astronaut, 140)),
         "frames/e-0000000000000001.jpg"),
        (event(2, now - 3 * 10**9, "cam2", name=None, unknown_id=uid, crop=_crop(out, "b.jpg", astronaut, 170)), None),
        (event(3, now, "cam1", kind="track_started", name=None), None),
    ])
    with serving(cfg) as server, Feed(cfg.web.preview_pub, cameras=("cam1", "cam2"), fps=8):
        # live: one tile per camera, the picture changes
        driver.get(server.url + "/#live")
        tile = until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, 'img.live[data-camera="cam1"]'), what="a tile")[0]
        first = until(driver, lambda d: d.execute_script(PIXELS_JS, tile), what="the live picture")
        until(driver, lambda d: d.execute_script(PIXELS_JS, tile) not in (None, first), what="a new live picture")
        until(driver, lambda d: "fps" in d.find_element(By.CSS_SELECTOR, 'figure[data-camera="cam1"] .stats').text,
              what="the tile's fps and latency")
        assert "latency 42 ms" in driver.find_element(By.CSS_SELECTOR, 'figure[data-camera="cam1"] .stats').text
        assert "#7 unknown#1" in driver.find_element(By.CSS_SELECTOR, 'figure[data-camera="cam1"] .faces').text
        screenshot(driver, tmp_path, "live")

        # events: the timeline with best-shot crops; a click opens the annotated frame
        driver.get(server.url + "/#events")
        rows = until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "li.event"), what="the timeline")
        assert len(rows) == 3
        selector = 'li.event[data-event="e-0000000000000001"] img.thumb'
        fresh(driver, lambda d: d.execute_script("return arguments[0].naturalWidth",
                                                 d.find_element(By.CSS_SELECTOR, selector)) == 112, what="the crop")
        fresh(driver, lambda d: d.find_element(By.CSS_SELECTOR, 'li.event[data-event="e-0000000000000001"]').click()
              or True, what="a click on the event")
        picture = until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#event-detail img.frame"), what="the frame")[0]
        until(driver, lambda d: d.execute_script("return arguments[0].naturalWidth", picture) == 512, what="frame load")
        assert "This is not Eileen Collins" in driver.find_element(By.ID, "event-detail").text
        screenshot(driver, tmp_path, "events")
        driver.find_element(By.CSS_SELECTOR, '#event-filters select[name="camera"] option[value="cam2"]').click()
        driver.find_element(By.CSS_SELECTOR, "#event-filters button").click()
        until(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "li.event")) == 1, what="the camera filter")

        # face library: enrol through the upload form, then name the unknown
        driver.get(server.url + "/#library")
        form = until(driver, lambda d: d.find_element(By.ID, "enrol"), what="the enrol form")
        form.find_element(By.NAME, "name").send_keys("Ada")
        form.find_element(By.NAME, "photo").send_keys(str(_face_jpeg(tmp_path / "ada.jpg", astronaut)))
        form.find_element(By.CSS_SELECTOR, "button").click()
        until(driver, lambda d: "Ada: 1 photo(s) enrolled" in d.find_element(By.ID, "enrol-result").text, 90,
              "the enrolment result")
        card = until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, '.person[data-person="Ada"]'), what="Ada's card")[0]
        assert "1 embedding(s)" in card.text
        until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f'.unknown[data-unknown="{uid}"] img.thumb'),
              what="the unknown's card with its crop")
        screenshot(driver, tmp_path, "library")

        def name_grace(d):
            card = d.find_element(By.CSS_SELECTOR, f'.unknown[data-unknown="{uid}"]')
            field = card.find_element(By.CSS_SELECTOR, "input")
            field.clear()
            field.send_keys("Grace")
            card.find_element(By.XPATH, ".//button[text()='Name']").click()
            return True

        fresh(driver, name_grace, what="the unknown's card, to name it")
        until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, '.person[data-person="Grace"]'), what="Grace's card")
        with Gallery(cfg.inference.gallery) as g:
            assert g.names() == ["Ada", "Grace"]

        # status
        driver.get(server.url + "/#status")
        until(driver, lambda d: "Stages" in d.find_element(By.ID, "status").text, what="the status tables")
        text = driver.find_element(By.ID, "status").text
        assert "capture" in text and "cam1" in text and "people 2" in text.replace("\n", " ")
        screenshot(driver, tmp_path, "status")


def test_login_form_in_chromium(driver, tmp_path):
    from selenium.webdriver.common.by import By

    cfg = make_cfg(tmp_path, users={"ada": hash_password("lovelace-1815", 1000)})
    with serving(cfg) as server:
        driver.get(server.url + "/#library")
        form = until(driver, lambda d: d.find_elements(By.ID, "login"), what="the login form")[0]
        screenshot(driver, tmp_path, "login")
        form.find_element(By.NAME, "user").send_keys("ada")
        form.find_element(By.NAME, "password").send_keys("wrong password")
        form.find_element(By.CSS_SELECTOR, "button").click()
        until(driver, lambda d: "wrong user" in d.find_element(By.ID, "login-error").text, what="the refusal")
        form.find_element(By.NAME, "password").clear()
        form.find_element(By.NAME, "password").send_keys("lovelace-1815")
        form.find_element(By.CSS_SELECTOR, "button").click()
        until(driver, lambda d: d.find_elements(By.ID, "who") and d.find_element(By.ID, "who").text == "ada",
              what="the app, logged in")
        cookies = {c["name"]: c for c in driver.get_cookies()}
        assert cookies["fs_session"]["httpOnly"] and cookies["fs_session"]["sameSite"] == "Strict"
