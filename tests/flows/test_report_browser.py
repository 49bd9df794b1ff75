"""The report in a real browser: Debian's Chromium (headless, driven by playwright, no browser download)
opens the report of a real pipeline run from file://; any console error or failed load fails the test.
Clicking an object's timeline bar shows its caption and crop; the overlay clip plays; the screenshot
is not blank."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

from flows.cli import main
from pixelrefer_core.render import decode_jpeg

CHROMIUM = os.environ.get("PIXELREFER_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def report(clean_run, tmp_path_factory):
    store, _, _ = clean_run
    base = tmp_path_factory.mktemp("browser")
    overlays, out = str(base / "overlays"), str(base / "report")
    assert main(["render", "--store", store, "--out", overlays, "--max-side", "160"]) == 0
    assert main(["report", "--store", store, "--out", out, "--overlays", overlays]) == 0
    return out


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert os.path.isfile(CHROMIUM), f"{CHROMIUM} missing: apt-get install -y chromium"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


class Problems(list):
    def watch(self, page):
        page.on("console", lambda m: self.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.append(f"page error: {e}"))
        # a media element cancels its own range requests once it has what it needs (net::ERR_ABORTED):
        # not a failed load; that the clip really loads is checked on the element itself
        page.on("requestfailed", lambda r: None if (r.url.endswith(".mp4") and r.failure == "net::ERR_ABORTED")
                else self.append(f"failed load: {r.url} ({r.failure})"))
        page.on("response", lambda r: self.append(f"bad status {r.status}: {r.url}") if r.status >= 400 else None)
        return page


def test_report_opens_and_an_object_opens_from_its_timeline_bar(report, browser, tmp_path):
    problems = Problems()
    page = problems.watch(browser.new_page(viewport={"width": 1200, "height": 900}))
    page.goto(f"file://{report}/index.html")
    page.wait_for_load_state("load")
    assert page.locator("table.videos tbody tr").count() == 2
    href = page.locator("table.videos a").first.get_attribute("href")
    page.goto(f"file://{report}/{href}")
    page.wait_for_load_state("load")
    bar = page.locator("a.bar").first
    oid = bar.get_attribute("id").removeprefix("bar-")
    detail = page.locator(f"#obj-{oid}")
    assert not detail.is_visible()
    bar.click()
    detail.wait_for(state="visible")
    caption = detail.locator("p.caption").inner_text()
    assert caption and caption != "not described yet"  # the clean run described every object
    assert caption in detail.locator("blockquote").first.inner_text()
    crop = detail.locator("img.crop")
    crop.wait_for(state="visible")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=crop.element_handle())
    shot = str(tmp_path / "object.png")
    page.screenshot(path=shot)
    image = decode_jpeg_or_png(shot)
    assert image.std() > 20 and len(np.unique(image.reshape(-1, 3)[::7], axis=0)) > 200  # not a blank page
    # the overlay clip loads and plays from the object's first appearance
    detail.locator("a.play-at").click()
    page.wait_for_function("() => { const v = document.getElementById('overlay'); "
                           "return v && v.readyState >= 2 && v.error === null; }", timeout=15000)
    t = float(detail.locator("a.play-at").get_attribute("data-t"))
    assert page.evaluate("document.getElementById('overlay').currentTime") >= t - 0.05
    assert problems == []


def test_filter_boxes_narrow_objects_by_caption(report, browser):
    problems = Problems()
    page = problems.watch(browser.new_page())
    page.goto(f"file://{report}/index.html")
    page.wait_for_load_state("load")
    href = page.locator("table.videos a").first.get_attribute("href")
    page.goto(f"file://{report}/{href}")
    cards = page.locator(".card")
    n = cards.count()
    assert n >= 2
    word = re.sub(r"\W", " ", cards.first.locator(".ccap").inner_text()).split()[0].lower()
    page.fill("#filter", word)
    visible = [c.is_visible() for c in cards.all()]
    texts = [c.get_attribute("data-text") for c in cards.all()]
    assert visible == [word in t for t in texts] and any(visible)
    page.fill("#filter", "zzzz-no-such-caption")
    assert not any(c.is_visible() for c in cards.all())
    # the index's box searches every object of the report
    page.goto(f"file://{report}/index.html")
    page.fill("#search", word)
    page.locator("#search-results li").first.wait_for(state="visible")
    assert page.locator("#search-results li").count() >= 1
    assert problems == []


def decode_jpeg_or_png(path):
    import cv2

    image = cv2.imread(path, cv2.IMREAD_COLOR)
    assert image is not None
    return image


def test_thumbnails_phase_of_the_run_filled_the_report(report):
    crops = [f for d, _, fs in os.walk(os.path.join(report, "img")) for f in fs if re.fullmatch(r"\d+\.jpg", f)]
    assert len(crops) >= 3
    for d, _, fs in os.walk(os.path.join(report, "img")):
        for f in fs:
            assert decode_jpeg(open(os.path.join(d, f), "rb").read()).size > 0
