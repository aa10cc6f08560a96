"""Selenium with Debian's chromium + chromedriver (headless), and screenshots kept for the docs."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from ..helpers import REPO

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
CHROMEDRIVER = shutil.which("chromedriver")
SHOTS = REPO / "bench" / "results" / "web"

# the picture an <img> shows now, as a short digest (same origin: the canvas is not tainted)
PIXELS_JS = """
const img = arguments[0];
if (!img.complete || !img.naturalWidth) return null;
const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
const g = c.getContext('2d'); g.drawImage(img, 0, 0);
const d = g.getImageData(0, 0, c.width, c.height).data; let h = 0;
for (let i = 0; i < d.length; i += 97) h = (h * 31 + d[i]) >>> 0;
return h;
"""


def chrome():
    if not CHROMIUM or not CHROMEDRIVER:
        pytest.skip("chromium and chromedriver are needed (apt-get install chromium chromium-driver)")
    pytest.importorskip("selenium", reason="selenium (the test extra) is not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
                "--disable-gpu", "--no-first-run", "--disable-extensions"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    return driver


def until(driver, cond, timeout: float = 20, what: str = "the page"):
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: cond(d))
    except Exception as exc:  # noqa: BLE001 - say what was awaited, with the page's state
        raise AssertionError(f"timed out waiting for {what}; page: {driver.page_source[:2000]}") from exc


def fresh(driver, cond, timeout: float = 20, what: str = "the element"):
    """``until`` that also retries when the page re-rendered the element meanwhile (a stale reference)."""
    from selenium.common.exceptions import StaleElementReferenceException

    def attempt(d):
        try:
            return cond(d)
        except StaleElementReferenceException:
            return None

    return until(driver, attempt, timeout, what)


def screenshot(driver, tmp_path: Path, name: str) -> Path:
    """``name``.png in tmp_path; also copied to $FACESTREAM_SCREENSHOTS (e.g. bench/results/web) when set, so a
    plain test run leaves the checkout as it was."""
    time.sleep(0.3)  # let images paint
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 5000
    shots = os.environ.get("FACESTREAM_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(shots) / f"{name}.png")
    return path
