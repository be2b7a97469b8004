"""Case building in Chromium (issue 15, point 9): from a clip's incident, add a victim by
pseudonym, make a case for a recipient, put the incident in it, and ask for its export.
Screenshots go to tests/artifacts/ (not committed)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import Template
from review_fixtures import STEPS, Reviewed, build, client, serving
from strongroom.export.verifier import verify_bag
from test_review_browser import CHROMIUM, _new_user, _shot, _sign_in, browser  # noqa: F401

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="Debian's chromium is not installed (make test installs it)")


@pytest.fixture(scope="module")
def served(template: Template, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Reviewed, str]]:
    r = build(template, tmp_path_factory, "casework-browser", STEPS)
    with serving(r.vault) as base:
        yield r, base
    r.vault.close()


def test_add_a_victim_make_a_case_and_ask_for_its_export_in_chromium(
        served: tuple[Reviewed, str], browser: Any) -> None:
    from strongroom.review.app import create_app

    r, base = served
    api = client(create_app(r.vault.settings, r.vault), r, "admin")
    res = api.post(f"/api/clips/{r.clips[0]}/incidents", json={
        "start_s": 0.5, "end_s": 2.0, "abuse_types": ["beating"],
        "description": "Избиение дубинкой в коридоре"})
    assert res.status_code == 200, res.text
    n = res.json()["incident"]

    secret = _new_user(r, "case-inv", "investigator")
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("response", lambda res: errors.append(f"{res.status} {res.url}")
            if res.status >= 400 and "favicon" not in res.url else None)
    _sign_in(page, base, "case-inv", secret)

    # the incident page: add a victim by pseudonym
    page.click('nav a[href="/incidents"]')
    page.click(f'#incident-list a[href="/incidents/{n}"] >> nth=0')
    page.wait_for_url(f"{base}/incidents/{n}")
    page.fill("#pseudonym", "Потерпевший 12")
    page.select_option("#person-role", "victim")
    page.click("#add-person")
    page.wait_for_selector("#people-list >> text=Потерпевший 12")
    assert "victim" in page.inner_text("#people-list")

    # make a case for a recipient, and put the incident in it
    page.click('nav a[href="/cases"]')
    page.fill("#case-name", "Саратов ОТБ-1, 2021")
    page.fill("#case-recipient", "Parquet national antiterroriste")
    page.click("#make-case")
    page.wait_for_selector("#case-facts >> text=Parquet national antiterroriste")
    page.select_option("#incident-choice", str(n))
    page.click("#add-incident-button")
    page.wait_for_selector(f'#case-incidents a[href="/incidents/{n}"]')
    assert "2021-03-14" in page.inner_text("#case-incidents")

    # ask for the export: it waits for someone else's approval
    page.fill('#request-export textarea[name="reason"]', "for the French prosecutors")
    page.click("#request-export-button")
    page.wait_for_selector("#export-requests >> text=for the French prosecutors")
    assert "Approve" not in page.inner_text("#export-requests")  # not one's own
    _shot(page, "case")
    # the history shows each step with the person's name
    assert page.locator("#history li").count() >= 2
    assert not errors, errors
    context.close()

    # an admin (not the asker) approves it in the browser; the bag is written and verifies
    r.vault.settings.export_dir = str(r.path.parent / "handover")
    admin_secret = _new_user(r, "case-admin", "admin")
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    _sign_in(page, base, "case-admin", admin_secret)
    page.goto(f"{base}/cases")
    page.click("#case-list >> text=Саратов ОТБ-1, 2021")
    page.click("#export-requests button.approve")
    deadline = time.monotonic() + 240
    while "done" not in page.inner_text("#export-requests"):
        assert "failed" not in page.inner_text("#export-requests"), page.inner_text("#exports")
        assert time.monotonic() < deadline, "the export never finished"
        time.sleep(1)
        page.reload()
    _shot(page, "case-exported")
    bag = next((r.path.parent / "handover").iterdir())
    assert verify_bag(bag).ok
    context.close()
