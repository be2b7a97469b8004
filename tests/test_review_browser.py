"""The review app in a real browser: Playwright driving Debian's chromium against uvicorn on a
real vault. Sign in with TOTP, the queue, a clip whose page and network traffic hold nothing
unblurred before "reveal", the reveal on the record, a status change, the break prompt, and
the Russian interface. Screenshots go to tests/artifacts/ (not committed)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import Template
from review_fixtures import PASSWORD, STEPS, Reviewed, build, person, serving
from strongroom.review import actions, security

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="Debian's chromium is not installed (make test installs it)")


@pytest.fixture(scope="module")
def served(template: Template, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Reviewed, str]]:
    r = build(template, tmp_path_factory, "browser", STEPS)
    actions.update_review(r.vault, person(r, "admin"), r.clips[0],
                          labels=["violence"], assign_to="reviewer")
    with serving(r.vault) as base:
        yield r, base
    r.vault.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        b = p.chromium.launch(executable_path=CHROMIUM, args=args)
        yield b
        b.close()


def _new_user(r: Reviewed, name: str, role: str, locale: str = "en") -> str:
    secret = actions.add_user(r.vault, name, role, PASSWORD, locale=locale)
    r.secrets[name] = secret
    return secret


def _sign_in(page: Any, base: str, name: str, secret: str) -> None:
    page.goto(f"{base}/login")
    page.fill('input[name="username"]', name)
    page.fill('input[name="password"]', PASSWORD)
    page.fill('input[name="totp"]', security.current_totp(secret))
    page.click('button[type="submit"]')
    try:
        page.wait_for_url(f"{base}/", timeout=15000)
    except Exception:
        print("sign-in did not lead to the queue:", page.url, page.content()[:3000])
        raise


def _until(page: Any, check: str, timeout: float = 20) -> Any:
    """Poll `check` on #video until it holds (wait_for_function evaluates a string, which
    the app's CSP forbids, as it should); returns its last value."""
    deadline = time.monotonic() + timeout
    while not (value := page.eval_on_selector("#video", check)):
        if time.monotonic() > deadline:
            raise AssertionError(f"#video never satisfied {check}")
        time.sleep(0.1)
    return value


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)


def test_sign_in_queue_clip_reveal_and_status_in_chromium(
        served: tuple[Reviewed, str], browser: Any) -> None:
    r, base = served
    secret = _new_user(r, "browser-inv", "investigator")
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda req: requests.append(req.url))
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)

    _sign_in(page, base, "browser-inv", secret)
    rows = page.locator("table.clips tbody tr")
    assert rows.count() == len(r.clips)
    assert page.locator("img.thumb").count() == len(r.clips)
    _shot(page, "queue")

    sha = r.clips[0]
    page.click(f'a[href="/clips/{sha}"]')
    page.wait_for_url(f"{base}/clips/{sha}")
    _until(page, "v => v.readyState >= 1")
    # content labels come before the player; the preview is the safe one, muted
    html = page.content()
    assert html.index('id="labels"') < html.index('id="player"')
    assert page.locator("#video").get_attribute("src") == f"/clips/{sha}/safe.mp4"
    assert page.eval_on_selector("#video", "v => v.muted && v.paused && !v.autoplay")
    assert page.eval_on_selector("#video", "v => v.videoWidth") > 0, "the preview plays"
    srcs = page.eval_on_selector_all("img, video, source",
                                     "els => els.map(e => e.currentSrc || e.src || '')")
    assert srcs and all(re.search(r"/(safe\.mp4|poster\.jpg|thumb\.jpg)$", s) for s in srcs
                        if s), srcs
    assert not [u for u in requests if "clear" in u], "unblurred media requested before reveal"
    assert "clear" not in html
    _shot(page, "clip-blurred")

    # reveal with the keyboard (R); the event is in the history tab afterwards
    page.keyboard.press("r")
    page.wait_for_selector('#video[data-revealed="1"]')
    assert page.locator("#video").get_attribute("src") == f"/clips/{sha}/clear.mp4"
    history = page.locator("#history").inner_text()
    assert "revealed" in history and "browser-inv" in history
    _shot(page, "clip-revealed")

    # a status change through the htmx form
    page.select_option("#status", "incident")
    page.click("#save-review")
    page.wait_for_selector("#review >> text=Saved")
    with r.vault.catalogue.read() as s:
        from sqlalchemy import select

        from strongroom.catalogue.models import CustodyEvent, Review

        status = s.scalar(select(Review.status).where(Review.original_sha256 == sha))
        last = s.scalars(select(CustodyEvent).order_by(CustodyEvent.seq.desc())
                         .limit(5)).all()
    assert status == "incident"
    assert any(e.action == "annotated" and e.actor.startswith("browser-inv") for e in last)
    # an incident, marked with I and O on the playing clip
    page.eval_on_selector("#video", "v => { v.muted = true; return v.play(); }")
    page.keyboard.press("i")
    _until(page, "v => v.currentTime > 1.0")
    page.keyboard.press("o")
    page.eval_on_selector("#video", "v => v.pause()")
    assert page.locator("#mark-in").input_value() and page.locator("#mark-out").input_value()
    page.check('input[name="abuse_types"][value="beating"]')
    page.fill('#incident-form textarea[name="description"]', "Удары дубинкой")
    page.click("#save-incident")
    page.wait_for_selector("#incidents >> text=Удары дубинкой")
    assert "2021-03-14" in page.locator("#incidents").inner_text()
    _shot(page, "clip-incident")
    page.keyboard.press("h")
    page.wait_for_selector('#video[data-revealed="0"]')
    assert not [m for m in console_errors if "Content Security Policy" in m], console_errors
    context.close()


def test_the_break_prompt_appears_after_the_daily_limit(served: tuple[Reviewed, str],
                                                         browser: Any) -> None:
    r, base = served
    secret = _new_user(r, "browser-tired", "investigator")
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    _sign_in(page, base, "browser-tired", secret)
    page.goto(f"{base}/me")
    page.fill('input[name="daily_limit_minutes"]', "0.05")  # three seconds
    page.click('form[action="/me"] button[type="submit"]')
    sha = r.clips[1]
    page.goto(f"{base}/clips/{sha}")
    assert page.locator("#break").is_hidden()
    page.click("#reveal")
    page.wait_for_selector('#video[data-revealed="1"]')
    page.wait_for_selector("#break", state="visible", timeout=20_000)
    assert "break" in page.locator("#break").inner_text()
    _shot(page, "break-prompt")
    page.click("#break button")
    page.wait_for_url(f"{base}/")
    assert "You stopped for today" in page.content()
    context.close()


def test_the_interface_in_russian(served: tuple[Reviewed, str], browser: Any) -> None:
    r, base = served
    secret = _new_user(r, "browser-ru", "lawyer", locale="ru")
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="ru-RU")
    page = context.new_page()
    _sign_in(page, base, "browser-ru", secret)
    text = page.locator("body").inner_text()
    assert "Очередь" in text and "Часы видеорегистратора" in text
    page.goto(f"{base}/clips/{r.clips[2]}")
    assert "Открыть эту запись" in page.locator("body").inner_text()
    _shot(page, "clip-russian")
    context.close()


def test_search_in_russian_in_chromium(served: tuple[Reviewed, str], browser: Any) -> None:
    """Mark an incident through the API, then find it in the browser by another form of
    its word; the hit links to its clip."""
    r, base = served
    secret = _new_user(r, "browser-search", "investigator")
    from strongroom.catalogue.cases import NewIncident, add_incident

    add_incident(r.vault, NewIncident(sha256=r.clips[2], start_s=0, end_s=1,
                                      description="Пытки током в камере"))
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    _sign_in(page, base, "browser-search", secret)
    page.click('a[href="/search"]')
    page.fill("#q", "пытка")
    page.click('#search-form button[type="submit"]')
    page.wait_for_selector("#hits mark")
    assert "Пытки" in page.locator("#hits mark").first.inner_text()
    _shot(page, "search")
    page.locator(f'#hits a[href="/clips/{r.clips[2]}"]').first.click()
    page.wait_for_url(f"{base}/clips/{r.clips[2]}")
    assert "Пытки током" in page.locator("#incidents").inner_text()
    context.close()


def test_a_reviewer_in_the_browser_meets_only_their_clip(served: tuple[Reviewed, str],
                                                         browser: Any) -> None:
    r, base = served
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    _sign_in(page, base, "reviewer", r.secrets["reviewer"])
    assert page.locator("table.clips tbody tr").count() == 1
    response = page.goto(f"{base}/clips/{r.clips[1]}")
    assert response is not None and response.status == 403
    assert "Not for this account" in page.content()
    context.close()
