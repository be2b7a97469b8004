"""The intake in a real browser (Playwright on Debian's chromium): a source gets a codename,
uploads through tus-js-client (served by the intake itself), the intake is SIGKILLed in the
middle and restarted, and the same upload finishes where it stopped; then the same without
JavaScript, through the plain form. Both are imported into a vault and compared."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import Template, cli
from intake_fixtures import Server, new_source
from test_intake import content
from test_review_browser import ARTIFACTS, CHROMIUM, browser

__all__ = ["browser"]  # the module-scoped Chromium fixture, shared

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="Debian's chromium is not installed (make test installs it)")
MiB = 1024 * 1024


@pytest.fixture
def intake(template: Template, tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    vault = tmp_path / "vault"
    shutil.copytree(template.path, vault)
    s = Server(tmp_path / "data", template.keys.public.age_recipient, tmp_path).start()
    yield s, vault
    s.kill()


def _wait(what: str, check: Any, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {what}")
        time.sleep(0.1)
    return value


def _imported(vault: Path, data: Path, expect: bytes, tmp: Path) -> None:
    r = cli("import-intake", vault, data, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["new_originals"] == 1
    out = tmp / "out.bin"
    assert cli("cat", vault, hashlib.sha256(expect).hexdigest(), "-o", out).returncode == 0
    assert out.read_bytes() == expect


def test_an_upload_in_chromium_resumes_after_the_intake_is_killed(
        intake: tuple[Server, Path], browser: Any, tmp_path: Path) -> None:
    server, vault = intake
    data = content(40 * MiB)
    f = tmp_path / "запись камеры 2.mp4"
    f.write_bytes(data)
    page = browser.new_page()
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    # ~6 MB/s, so the upload is still going when the intake dies
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1,
        "uploadThroughput": 6 * MiB})
    page.goto(server.url + "/")
    page.click('form[action="/new"] button')
    codename = page.inner_text("#codename")
    assert len(codename.split()) == 7
    page.click('a[href="/home"]')
    page.set_input_files("#files", str(f))
    page.click('#upload-form button[type="submit"]')
    pieces = server.data / "uploads"
    _wait("two pieces on the intake", lambda: len(list(pieces.glob("*/*.age"))) >= 2)
    server.kill()
    time.sleep(1.5)
    server.start()
    item = page.locator("#progress li")
    try:
        _wait("the upload to finish", lambda: item.get_attribute("data-state") == "done", 120)
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "intake-resumed.png"))
    uploads = [p for p in pieces.iterdir() if not p.name.startswith(".")]
    assert len(uploads) == 1  # resumed, not started again
    assert "error" not in (item.get_attribute("data-state") or "")
    page.close()
    _imported(vault, server.data, data, tmp_path)


def test_without_javascript_the_form_sends_and_the_page_shows_it(
        intake: tuple[Server, Path], browser: Any, tmp_path: Path) -> None:
    server, vault = intake
    codename, _ = new_source(server.url, "en")
    data = content(3 * MiB + 7)
    f = tmp_path / "clip.mp4"
    f.write_bytes(data)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(server.url + "/")
    page.fill('input[name="codename"]', codename)
    page.click('form[action="/login"] button')
    assert page.url.endswith("/home")
    page.set_input_files("#files", str(f))
    page.click('#upload-form button[type="submit"]')
    assert page.url.endswith("/home")
    assert "received" in page.inner_text("table")
    page.fill('textarea[name="text"]', "<b>not bold</b> and a note")
    page.click('form[action="/message"] button')
    assert "<b>not bold</b> and a note" in page.inner_text("article")  # shown as text
    context.close()
    _imported(vault, server.data, data, tmp_path)
