"""What `make demo` builds, checked three ways: the JSON `strongroom demo` prints, its
investigator's flows in Chromium, and a clip of it published through the browser.

Building the demo vault (generated clips, full analysis, export, publication, sealing) takes
most of a minute, so it is built once per test run (`built_once`: shared by the xdist
workers), through the real command line; it is never changed after. Each browser test works
on its own copy of it (what `make demo` left there, copied with `shutil.copytree`), so
neither sees what the other changed.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import built_once, cli
from strongroom.review import security
from test_review_browser import ARTIFACTS, CHROMIUM, _shot, browser  # noqa: F401 - fixture

needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Debian's chromium is not installed (make test installs it)")


@dataclass
class Demo:
    #: the folder holding demo-vault, demo-vault-media and demo-vault-handover
    root: Path
    #: what `strongroom demo --json` printed
    data: dict[str, Any]

    def copy(self, to: Path) -> Path:
        """A copy of the built demo vault (and the media folder beside it, which holds the
        demo's signing certificate) under `to`; returns the copy's vault folder."""
        for name in ("demo-vault", "demo-vault-media"):
            shutil.copytree(self.root / name, to / name, symlinks=True)
        return to / "demo-vault"


def _build_demo(root: Path) -> None:
    r = cli("demo", root / "demo-vault", "--json", "--no-serve")
    assert r.returncode == 0, r.stderr
    (root / "demo.json").write_text(r.stdout, "utf-8")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    root = built_once(tmp_path_factory, "demo", _build_demo)
    return Demo(root, json.loads((root / "demo.json").read_text("utf-8")))


def test_demo_builds_analyses_and_verifies_a_vault(demo: Demo) -> None:
    data = demo.data
    assert data["verify"]["ok"] and data["process"]["errors"] == 0
    assert set(data["process"]["timelines"]["cameras"]) == {
        "КАМ 03 ПФРСИ", "КАМ 07 ОТБ-1 САРАТОВ", "КАМ 11 ИК-10", "КАМ 13 КОРИДОР 2"}
    # the fixed camera is read too; the clips without an overlay (the DVR-less one, and the
    # clip of two people made to be published) are listed, not placed
    assert [u["camera"] for u in data["process"]["timelines"]["no_clock"]] == [None, None]
    assert len(data["process"]["dupes"]) == 1
    assert data["stats"]["derivatives"] > 0 and data["stats"]["segments"] == 6
    # sealing: reopened with 2 of its 3 shares, a scheduled fixity run, nothing in clear
    sealing = data["sealing"]
    assert sealing["opened_with_shares"] and sealing["scheduled_verify"]["ok"]
    assert sealing["scheduled_verify"]["scheduled"]["cycle_days"] == 7
    assert sealing["catalogue_text_in_clear"] is False
    # publication: every face hidden, approved by the investigator, signed and checked
    published = data["publication"]
    assert published["faces_found"] > 0 and published["provenance_ok"] is True
    assert published["approved_by"].startswith("investigator")


@needs_chromium
def test_the_demo_vault_in_chromium(demo: Demo, tmp_path: Path, browser: Any) -> None:
    """The flows on what `make demo` builds: its investigator signs in with the printed
    password and secret, sees every demo clip (blurred thumbnails; the clip without a clock
    and the truncated one listed too), opens one, reveals it and sets its status."""
    from review_fixtures import serving
    from strongroom.demo import DEMO_PASSPHRASE
    from strongroom.settings import Settings
    from strongroom.vault import Vault

    data = demo.data
    settings = Settings(vault=demo.copy(tmp_path))
    login = data["review"]["investigator"]
    with Vault.open(settings, DEMO_PASSPHRASE, actor="demo") as v, serving(v) as base:
        context = browser.new_context(viewport={"width": 1366, "height": 768})
        page = context.new_page()
        page.goto(f"{base}/login")
        page.fill('input[name="username"]', "investigator")
        page.fill('input[name="password"]', login["password"])
        page.fill('input[name="totp"]', security.current_totp(login["totp_secret"]))
        page.click('button[type="submit"]')
        page.wait_for_url(f"{base}/")
        rows = page.locator("table.clips tbody tr")
        assert rows.count() == data["stats"]["originals"]
        assert page.locator("img.thumb").count() >= rows.count() - 1
        text = page.locator("table.clips").inner_text()
        assert "КАМ 03 ПФРСИ" in text and "no clock read" in text
        _shot(page, "demo-queue")
        page.locator("table.clips tbody tr a").first.click()
        page.wait_for_selector('#video[data-revealed="0"]')
        assert "/safe.mp4" in (page.locator("#video").get_attribute("src") or "")
        page.click("#reveal")
        page.wait_for_selector('#video[data-revealed="1"]')
        page.select_option("#status", "needs second look")
        page.click("#save-review")
        page.wait_for_selector("#review >> text=Saved")
        _shot(page, "demo-clip-revealed")
        context.close()
        report = v.verify(fixity=False)
    assert report.ok, report.to_text()


def _sign_in(page: Any, base: str, name: str, password: str, secret: str,
             at: float | None = None) -> None:
    page.goto(f"{base}/login")
    page.fill('input[name="username"]', name)
    page.fill('input[name="password"]', password)
    page.fill('input[name="totp"]', security.current_totp(secret, at))
    page.click('button[type="submit"]')
    page.wait_for_url(f"{base}/", timeout=15000)


def _loaded(page: Any, timeout: float = 30) -> None:
    """Wait until the draft video can show a frame (polled: the CSP forbids evaluated
    strings in wait_for_function, as it should)."""
    deadline = time.monotonic() + timeout
    while page.eval_on_selector("#draft", "v => v.readyState") < 2:
        if time.monotonic() > deadline:
            raise AssertionError("the draft never loaded")
        time.sleep(0.1)


@needs_chromium
def test_a_clip_of_the_demo_vault_is_published_through_the_browser(
        demo: Demo, tmp_path: Path, browser: Any) -> None:
    """On what `make demo` builds: the investigator drafts the two-people clip in the
    browser, adds a box on a frame and saves a new version; the admin approves and
    publishes; the file signed with the demo's certificate checks out against the vault."""
    from review_fixtures import serving
    from strongroom.demo import DEMO_PASSPHRASE
    from strongroom.publish.check import check_file
    from strongroom.publish.drafts import spec_of
    from strongroom.settings import Settings
    from strongroom.vault import Vault

    data = demo.data
    path = demo.copy(tmp_path)
    media = tmp_path / "demo-vault-media"
    sha = data["publication"]["original"]
    settings = Settings(vault=path, c2pa_cert=media / "c2pa" / "chain.pem",
                        c2pa_key=media / "c2pa" / "key.pem", organisation="Demo NGO",
                        export_dir=str(tmp_path / "exports"))
    logins = data["review"]
    with Vault.open(settings, DEMO_PASSPHRASE, actor="demo") as v, serving(v) as base:
        context = browser.new_context(viewport={"width": 1366, "height": 900})
        page = context.new_page()
        inv = logins["investigator"]
        _sign_in(page, base, "investigator", inv["password"], inv["totp_secret"])
        page.goto(f"{base}/publications?sha={sha}")
        page.fill("#draft-end", "2")
        page.click("#make-draft")
        page.wait_for_selector("#publication-facts", timeout=60000)
        pub = int(page.url.rsplit("/", 1)[1])
        # draw a box on a frame of the draft, then save it as version 2
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        _loaded(page)
        page.click("#frame-on")
        page.locator("#boxes").scroll_into_view_if_needed()
        box = page.locator("#boxes").bounding_box()
        assert box is not None and box["width"] > 100
        page.mouse.move(box["x"] + 20, box["y"] + 20)
        page.mouse.down()
        page.mouse.move(box["x"] + 90, box["y"] + 80, steps=5)
        page.mouse.up()
        page.wait_for_selector("#save-spec:not([disabled])", timeout=10000)
        assert not errors, errors
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "publication-editor.png"))
        page.click("#save-spec")
        page.wait_for_selector("#publication-facts >> text=version 2", timeout=60000)
        context.close()
        # the admin approves and publishes
        context = browser.new_context(viewport={"width": 1366, "height": 900})
        page = context.new_page()
        admin = logins["admin"]
        _sign_in(page, base, "admin", admin["password"], admin["totp_secret"])
        page.goto(f"{base}/publications/{pub}")
        page.click("#approve")
        page.wait_for_selector("#publication-status >> text=approved")
        page.click("#publish")
        page.wait_for_selector("#published-link")
        with page.expect_download() as got:
            page.click("#published-link")
        saved = tmp_path / "downloaded.mp4"
        got.value.save_as(saved)
        context.close()
        checked = check_file(saved, trust_anchors=media / "c2pa" / "root.pem", vault=v)
        assert checked["ok"], checked
        assert checked["spec_version"] == 2 and checked["original_sha256"] == sha
        # the box drawn in the browser is a track of its own in version 2
        before, after = spec_of(v, pub, 1), spec_of(v, pub, 2)
        assert len(after["tracks"]) == len(before["tracks"]) + 1
        assert v.verify(fixity=False).ok
