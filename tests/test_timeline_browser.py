"""The timeline in a real browser (issue 15: "open the timeline and click a segment into the
player"): Playwright on Debian's chromium against uvicorn on a real vault. An investigator
opens a camera's timeline zoomed to a window that starts inside a clip, clicks that clip's
bar, and lands on the clip page with the blurred preview's player at that offset. The
screenshots go to tests/artifacts/timeline.png (and timelines.png, the list)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import Template
from review_fixtures import serving
from test_review_browser import CHROMIUM, _shot, _sign_in, _until, browser  # noqa: F401
from timeline_fixtures import CAM, Placed, build_timelines

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="Debian's chromium is not installed (make test installs it)")


@pytest.fixture(scope="module")
def served(template: Template, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Placed, str]]:
    p = build_timelines(template, tmp_path_factory, "timeline-browser")
    with serving(p.r.vault) as base:
        yield p, base
    p.r.vault.close()


def test_open_the_timeline_and_click_a_segment_into_the_player(
        served: tuple[Placed, str], browser: Any) -> None:
    p, base = served
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda req: requests.append(req.url))
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    _sign_in(page, base, "investigator", p.r.secrets["investigator"])

    page.goto(f"{base}/timelines")
    _shot(page, "timelines")
    page.click(f'#cameras a:text-is("{CAM}")')
    page.wait_for_selector("svg.timeline")
    assert page.locator("svg.timeline rect.segment").count() == 3
    assert page.locator("svg.timeline rect.gap").count() == 1
    assert page.locator("svg.timeline rect.overlap").count() == 1
    assert page.locator("svg.timeline g.incident").count() == 1
    assert p.shas["noosd.mp4"][:16] in page.locator("#off-clock").inner_text()
    # zoom with the links (no script needed): the middle of this camera's span is its gap
    page.click("#zoom-in")
    page.wait_for_selector("svg.timeline")
    assert page.locator("svg.timeline rect.segment").count() == 0
    assert page.locator("svg.timeline rect.gap").count() == 1, "a window inside a gap shows it"
    page.click("a.preset:text-is('a day')")
    page.wait_for_selector('svg.timeline[data-unit="hour"]')

    # the first minute: the two overlapping clips, the incident, the gap starting
    page.goto(f"{base}/timelines/camera/{_camera_id(page)}"
              "?from=2021-03-14T02:17:00&to=2021-03-14T02:18:00")
    assert page.locator("svg.timeline rect.segment").count() == 2
    _shot(page, "timeline")
    # a window from 02:17:08: a.mp4 (from 02:17:05) is 3 s in at its left edge
    page.goto(f"{base}/timelines/camera/{_camera_id(page)}"
              "?from=2021-03-14T02:17:08&to=2021-03-14T02:18:08")
    sha = p.shas["a.mp4"]
    bar = page.locator(f'svg.timeline a.segment-link:has(rect[data-sha="{sha}"])')
    assert bar.get_attribute("href") == f"/clips/{sha}?t=3"
    bar.click()
    page.wait_for_url(f"{base}/clips/{sha}?t=3")
    assert page.locator("#video").get_attribute("src") == f"/clips/{sha}/safe.mp4"
    at = _until(page, "v => v.readyState >= 1 && Math.abs(v.currentTime - 3) < 0.05 "
                      "&& v.currentTime")
    assert at == pytest.approx(3, abs=0.05)
    assert page.eval_on_selector("#video", "v => v.paused && v.muted")
    assert not [u for u in requests if "clear" in u], "unblurred media requested"
    assert not [m for m in console_errors if "Content Security Policy" in m], console_errors
    context.close()


def _camera_id(page: Any) -> str:
    href = page.locator("svg.timeline a.camera-link").first.get_attribute("href") or ""
    return href.rsplit("/", 1)[-1]
