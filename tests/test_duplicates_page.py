"""Near-duplicate groups in the review app (issue 15, point 5), on a real vault with real
re-encoded copies of one generated clip: the pages show blurred posters only, people confirm a
group, choose the copy to cite or split a clip out, each a custody event with their name; the
grouping respects those decisions after new clips arrive; `verify` catches a decision edited
by hand; bad input is refused and stores nothing."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update

from conftest import Template, built_once, cli, light_password_hashes, open_vault
from review_fixtures import PASSWORD, ROLES, Reviewed, client
from strongroom.catalogue.dupes import near_duplicate_groups
from strongroom.catalogue.models import CustodyEvent, Derivative, DuplicateDecision
from strongroom.ingest import ingest
from strongroom.review import actions
from strongroom.testmedia import ClipSpec, generate_clip, reencode_copy

STEPS = ["probe", "overlay_ocr", "perceptual_hash", "proxy", "review"]


@dataclass
class Dupes:
    r: Reviewed
    template: Template
    files: dict[str, Path]
    #: name → SHA-256: "original" (640×480), "forwarded" (480), "channel" (320, watermarked),
    #: "other" (unrelated)
    sha: dict[str, str]

    @property
    def members(self) -> set[str]:
        return {self.sha["original"], self.sha["forwarded"], self.sha["channel"]}


def _shas(v: Any, files: dict[str, Path]) -> dict[str, str]:
    import hashlib

    return {k: hashlib.sha256(p.read_bytes()).hexdigest() for k, p in files.items()}


def _process(v: Any) -> None:
    from strongroom.pipeline.runner import process

    report = process(v, steps=STEPS, workers=1)
    assert not getattr(report, "errors", None), report


@pytest.fixture(scope="module")
def dupes(template: Template, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dupes]:
    """The clips and the processed vault are made once per test run (`built_once`); this
    module works on its own copy of the vault."""

    def make(root: Path) -> None:
        usb = root / "usb"
        usb.mkdir()
        original = generate_clip(ClipSpec(
            name="cam05.mp4", duration=4, size=(640, 480), camera_label="КАМ 05 ПФРСИ",
            clock_start=datetime(2021, 3, 14, 2, 40, 0)), usb)
        reencode_copy(original, usb / "cam05_forwarded.mp4", width=480, crf=30)
        reencode_copy(original, usb / "cam05_channel.mp4", width=320, crf=35,
                      watermark="@channel")
        generate_clip(ClipSpec(
            name="cam06.mp4", duration=4, size=(640, 480), camera_label="КАМ 06 ПФРСИ",
            clock_start=datetime(2021, 3, 14, 2, 41, 0), source="mandelbrot"), usb)
        path = root / "vault"
        shutil.copytree(template.path, path)
        v = open_vault(path, template.keys)
        try:
            ingest(v, usb, "USB stick from a source (test)")
            _process(v)
            with light_password_hashes():
                secrets = {role: actions.add_user(v, role, role, PASSWORD) for role in ROLES}
        finally:
            v.close()
        (root / "secrets.json").write_text(json.dumps(secrets))

    built = built_once(tmp_path_factory, "dupes", make)
    usb = built / "usb"
    files = {"original": usb / "cam05.mp4", "forwarded": usb / "cam05_forwarded.mp4",
             "channel": usb / "cam05_channel.mp4", "other": usb / "cam06.mp4"}
    path = tmp_path_factory.mktemp("dupes") / "vault"
    shutil.copytree(built / "vault", path)
    v = open_vault(path, template.keys)
    sha = _shas(v, files)
    r = Reviewed(v, path, sorted(sha.values()), json.loads((built / "secrets.json").read_text()))
    yield Dupes(r, template, files, sha)
    v.close()


@pytest.fixture(scope="module")
def app(dupes: Dupes) -> Any:
    from strongroom.review.app import create_app

    return create_app(dupes.r.vault.settings, dupes.r.vault, heartbeat_seconds=1)


@pytest.fixture
def fresh(dupes: Dupes, tmp_path: Path) -> Iterator[tuple[Dupes, Any]]:
    """A copy of the module's vault (and an app on it) for a test that decides things."""
    from strongroom.review.app import create_app

    path = tmp_path / "vault"
    shutil.copytree(dupes.r.path, path)
    v = open_vault(path, dupes.template.keys)
    r = Reviewed(v, path, dupes.r.clips, secrets=dict(dupes.r.secrets))
    yield Dupes(r, dupes.template, dupes.files, dupes.sha), create_app(v.settings, v)
    v.close()


def decisions(d: Dupes) -> int:
    with d.r.vault.catalogue.read() as s:
        return int(s.scalar(select(func.count(DuplicateDecision.id))) or 0)


def annotated(d: Dupes) -> list[CustodyEvent]:
    with d.r.vault.catalogue.read() as s:
        rows = list(s.scalars(select(CustodyEvent).where(
            CustodyEvent.action == "annotated",
            CustodyEvent.subject.like("duplicate:%")).order_by(CustodyEvent.seq)))
        for e in rows:
            s.expunge(e)
        return rows


def groups(d: Dupes) -> list[Any]:
    with d.r.vault.catalogue.read() as s:
        return near_duplicate_groups(s)


def _csrf(page: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    assert m, "the page has no CSRF token"
    return m.group(1)


# -- seeing ---------------------------------------------------------------------------------
def test_the_list_shows_each_group_with_its_copies_and_whether_it_is_confirmed(
        app: Any, dupes: Dupes) -> None:
    c = client(app, dupes.r, "lawyer")
    listed = c.get("/api/duplicates")
    assert listed.status_code == 200, listed.text
    [group] = listed.json()["groups"]
    assert {m["original"] for m in group["members"]} == dupes.members
    assert dupes.sha["other"] not in str(group), "an unrelated clip is not a copy"
    assert group["best"] == dupes.sha["original"] and group["best_chosen_by"] is None
    assert group["key"] == min(dupes.members) and group["confirmed"] is False
    page = c.get("/duplicates", headers={"accept": "text/html"})
    assert page.status_code == 200
    row = re.search(r'<tr data-group="([0-9a-f]{64})">(.*?)</tr>', page.text, re.S)
    assert row and row.group(1) == group["key"]
    assert f'href="/duplicates/{group["key"]}"' in row.group(2)
    assert '<td class="count">3</td>' in row.group(2) and "not confirmed" in row.group(2)
    assert f'src="/clips/{dupes.sha["original"]}/thumb.jpg"' in row.group(2)


def test_the_group_page_shows_blurred_posters_side_by_side_never_a_clear_one(
        app: Any, dupes: Dupes) -> None:
    c = client(app, dupes.r, "lawyer")
    # any member's SHA-256 finds the group (links survive a change of best copy or key)
    page = c.get(f"/duplicates/{dupes.sha['channel']}", headers={"accept": "text/html"})
    assert page.status_code == 200, page.text
    images = re.findall(r'<img[^>]*src="([^"]+)"', page.text)
    assert sorted(images) == sorted(f"/clips/{s}/poster.jpg" for s in dupes.members)
    assert "clear-poster" not in page.text and "clear.mp4" not in page.text
    # the best copy is marked, with why; each copy's facts are there
    best = re.search(r'<article class="copy best" data-sha="([0-9a-f]{64})">(.*?)</article>',
                     page.text, re.S)
    assert best and best.group(1) == dupes.sha["original"]
    assert "Best copy" in best.group(2) and "largest picture" in best.group(2)
    assert "640×480" in page.text and "480×360" in page.text and "320×240" in page.text
    assert "h264" in page.text and "4.0 s" in page.text and "MB" in page.text
    assert "КАМ 05 ПФРСИ" in page.text and "2021-03-14 02:40:00" in page.text
    # a lawyer is shown no decision buttons
    assert "/confirm" not in page.text and "/split" not in page.text
    # what the posters are: the blurred `safe_poster` derivative, not the clear one
    with dupes.r.vault.catalogue.read() as s:
        rows = {(d.original_sha256, d.kind): d for d in s.scalars(select(Derivative).where(
            Derivative.kind.in_(["safe_poster", "poster"])))}
        for d in rows.values():
            s.expunge(d)
    for sha in dupes.members:
        got = c.get(f"/clips/{sha}/poster.jpg")
        assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
        assert got.content == dupes.r.vault.read_derivative_bytes(rows[(sha, "safe_poster")])
        assert got.content != dupes.r.vault.read_derivative_bytes(rows[(sha, "poster")])


def test_the_page_speaks_russian(app: Any, dupes: Dupes) -> None:
    c = client(app, dupes.r, "investigator")
    assert c.post("/api/me", json={"locale": "ru"}).status_code == 200
    try:
        page = c.get(f"/duplicates/{dupes.sha['original']}", headers={"accept": "text/html"})
        assert "Лучшая копия" in page.text and "Подтвердить" in page.text
        listing = c.get("/duplicates", headers={"accept": "text/html"})
        assert "Группы почти одинаковых записей" in listing.text
    finally:
        c.post("/api/me", json={"locale": "en"})


# -- who may --------------------------------------------------------------------------------
def test_reviewers_get_403_and_lawyers_view_but_cannot_decide(app: Any, dupes: Dupes) -> None:
    """The groups span the whole archive: a reviewer, who sees only the clips assigned to
    them, gets none of it; a lawyer reads but does not decide."""
    before, events = decisions(dupes), len(annotated(dupes))
    reviewer = client(app, dupes.r, "reviewer")
    key = dupes.sha["original"]
    for path in ("/duplicates", f"/duplicates/{key}", "/api/duplicates",
                 f"/api/duplicates/{key}"):
        assert reviewer.get(path).status_code == 403, path
    lawyer = client(app, dupes.r, "lawyer")
    assert lawyer.get(f"/api/duplicates/{key}").status_code == 200
    for path, body in ((f"/api/duplicates/{key}/confirm", {}),
                       (f"/api/duplicates/{key}/best", {"best": dupes.sha["channel"]}),
                       (f"/api/duplicates/{key}/split", {"members": [dupes.sha["channel"]]})):
        assert lawyer.post(path, json=body).status_code == 403, path
        assert reviewer.post(path, json=body).status_code == 403, path
    cookie = client(app, dupes.r, "lawyer", bearer=False)
    page = cookie.get(f"/duplicates/{key}", headers={"accept": "text/html"})
    refused = cookie.post(f"/duplicates/{key}/confirm", data={"csrf": _csrf(page.text)},
                          headers={"accept": "text/html"}, follow_redirects=False)
    assert refused.status_code == 403
    assert decisions(dupes) == before and len(annotated(dupes)) == events


# -- bad input ------------------------------------------------------------------------------
def test_bad_input_gets_a_clear_answer_and_stores_nothing(app: Any, dupes: Dupes) -> None:
    before, events = decisions(dupes), len(annotated(dupes))
    c = client(app, dupes.r, "investigator")
    key, other, channel = dupes.sha["original"], dupes.sha["other"], dupes.sha["channel"]
    everyone = sorted(dupes.members)

    def refused(path: str, body: dict[str, Any], status: int, words: str) -> None:
        r = c.post(path, json=body)
        assert r.status_code == status, (path, body, r.status_code, r.text)
        assert words in r.json()["error"], r.json()

    # an unknown group: a clip in no group, an unknown SHA-256, not a SHA-256 at all
    for bad in (other, "0" * 64, "not-a-sha"):
        assert c.get(f"/api/duplicates/{bad}").status_code == 404
        refused(f"/api/duplicates/{bad}/confirm", {}, 404, "")
    assert "no near-duplicate group" in c.get(f"/api/duplicates/{other}").json()["error"]
    # a member that is not in the group
    refused(f"/api/duplicates/{key}/split", {"members": [other]}, 400,
            "is not a member of this group")
    refused(f"/api/duplicates/{key}/best", {"best": other}, 400,
            "is not a member of this group")
    refused(f"/api/duplicates/{key}/confirm", {"best": "f" * 64}, 400,
            "is not a member of this group")
    # splitting out the last member (every member at once): one must stay
    refused(f"/api/duplicates/{key}/split", {"members": everyone}, 400,
            "at least one member in the group")
    refused(f"/api/duplicates/{key}/split", {"members": []}, 400, "name the member")
    # a group that changed since the person saw it is not decided blind
    refused(f"/api/duplicates/{key}/confirm", {"seen": [key, channel]}, 400,
            "changed since you opened it")
    # a note with control characters, or too long
    refused(f"/api/duplicates/{key}/confirm", {"note": "a\x00b"}, 400, "control characters")
    assert c.post(f"/api/duplicates/{key}/confirm",
                  json={"note": "x" * 5000}).status_code == 422
    # the same refusals from the page's forms: an error page, not a traceback
    cookie = client(app, dupes.r, "investigator", bearer=False)
    token = _csrf(cookie.get(f"/duplicates/{key}", headers={"accept": "text/html"}).text)
    r = cookie.post(f"/duplicates/{key}/split", data={"csrf": token, "member": other},
                    headers={"accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 400 and "is not a member of this group" in r.text
    r = cookie.post(f"/duplicates/{'0' * 64}/confirm", data={"csrf": token},
                    headers={"accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 404
    assert decisions(dupes) == before and len(annotated(dupes)) == events
    assert {m.original for m in groups(dupes)[0].members} == dupes.members


# -- deciding -------------------------------------------------------------------------------
def test_confirming_and_choosing_the_best_copy_are_custody_events_with_the_person(
        fresh: tuple[Dupes, Any]) -> None:
    d, app = fresh
    key, forwarded = min(d.members), d.sha["forwarded"]
    c = client(app, d.r, "investigator", bearer=False)
    page = c.get(f"/duplicates/{key}", headers={"accept": "text/html"})
    assert 'action="/duplicates/' + key + '/confirm"' in page.text
    form = {"csrf": _csrf(page.text), "note": "same recording, checked frame by frame",
            "seen": sorted(d.members)}
    done = c.post(f"/duplicates/{key}/confirm", data=form, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/duplicates/{key}"
    [ev] = annotated(d)
    assert ev.actor.startswith("investigator (investigator") and '"change":"confirmed"' in \
        ev.details.replace(" ", "")
    assert "frame by frame" not in ev.details, "the note's text stays out of the log"
    api = client(app, d.r, "admin")
    group = api.get(f"/api/duplicates/{forwarded}").json()
    assert group["confirmed"] is True and group["confirmed_by"].startswith("investigator")
    assert group["best"] == d.sha["original"]

    # a person chooses another copy to cite over the automatic one
    chosen = api.post(f"/api/duplicates/{key}/best",
                      json={"best": forwarded, "note": "has the DVR's own audio"})
    assert chosen.status_code == 200, chosen.text
    group = chosen.json()["group"]
    assert group["best"] == forwarded and group["automatic_best"] == d.sha["original"]
    assert group["best_chosen_by"].startswith("admin (admin") and group["confirmed"] is True
    assert annotated(d)[-1].actor.startswith("admin (admin")
    page = c.get(f"/duplicates/{key}", headers={"accept": "text/html"})
    best = re.search(r'<article class="copy best" data-sha="([0-9a-f]{64})">(.*?)</article>',
                     page.text, re.S)
    assert best and best.group(1) == forwarded and "chosen by admin" in best.group(2)
    # the command line shows the same decisions
    out = cli("dupes", d.r.path, "--json")
    assert out.returncode == 0, out.stderr
    [shown] = [g for g in __import__("json").loads(out.stdout)]
    assert shown["best"] == forwarded and shown["confirmed"] is True
    assert d.r.vault.verify(fixity=False).ok


def test_a_split_member_stays_out_after_regrouping_and_after_new_clips_arrive(
        fresh: tuple[Dupes, Any], tmp_path: Path) -> None:
    d, app = fresh
    key, channel = min(d.members), d.sha["channel"]
    c = client(app, d.r, "investigator")
    r = c.post(f"/api/duplicates/{key}/split",
               json={"members": [channel], "seen": sorted(d.members),
                     "note": "another night: the clock differs"})
    assert r.status_code == 200, r.text
    left = {m["original"] for m in r.json()["group"]["members"]}
    assert left == d.members - {channel}
    [ev] = annotated(d)
    assert ev.actor.startswith("investigator (investigator") and '"split"' in ev.details
    assert c.get(f"/api/duplicates/{channel}").status_code == 404, "it is in no group now"
    group = c.get(f"/api/duplicates/{key}").json()
    assert [s["original"] for s in group["split_out"]] == [channel]
    assert group["split_out"][0]["by"].startswith("investigator")
    page = c.get(f"/duplicates/{key}", headers={"accept": "text/html"})
    assert 'id="split-out"' in page.text and channel[:12] in page.text
    # recomputed from the frame hashes: still out
    assert [{m.original for m in g.members} for g in groups(d)] == [left]

    # new clips arrive: another copy of the original, and a copy of the split-out clip
    # (which matches the original's copies too: only the split keeps them apart)
    usb = tmp_path / "usb3"
    usb.mkdir()
    reencode_copy(d.files["original"], usb / "cam05_repost.mp4", width=400, crf=32)
    reencode_copy(d.files["channel"], usb / "cam05_channel_again.mp4", width=240, crf=33)
    ingest(d.r.vault, usb, "second stick (test)")
    _process(d.r.vault)
    shas = _shas(d.r.vault, {"repost": usb / "cam05_repost.mp4",
                             "again": usb / "cam05_channel_again.mp4"})
    found = [{m.original for m in g.members} for g in groups(d)]
    assert not any(channel in g and g & left for g in found), found
    main = next(g for g in found if d.sha["original"] in g)
    assert shas["repost"] in main and left <= main
    # the copy of the split-out clip was not forced into either side by the split alone
    assert any(shas["again"] in g for g in found)
    assert d.r.vault.verify(fixity=False).ok


def test_a_confirmation_does_not_cover_copies_that_arrive_later(
        fresh: tuple[Dupes, Any], tmp_path: Path) -> None:
    d, app = fresh
    key = min(d.members)
    c = client(app, d.r, "admin")
    assert c.post(f"/api/duplicates/{key}/confirm", json={}).json()["group"]["confirmed"]
    usb = tmp_path / "usb4"
    usb.mkdir()
    late = reencode_copy(d.files["original"], usb / "late.mp4", width=360, crf=32)
    ingest(d.r.vault, usb, "third stick (test)")
    _process(d.r.vault)
    group = c.get(f"/api/duplicates/{key}").json()
    new = _shas(d.r.vault, {"late": late})["late"]
    assert group["confirmed"] is False and group["unconfirmed"] == [new]
    page = c.get(f"/duplicates/{key}", headers={"accept": "text/html"})
    assert "before these copies joined" in page.text and new[:12] in page.text


def test_verify_reports_a_decision_edited_or_deleted_by_hand(fresh: tuple[Dupes, Any]) -> None:
    d, app = fresh
    key, channel = min(d.members), d.sha["channel"]
    c = client(app, d.r, "investigator")
    assert c.post(f"/api/duplicates/{key}/split", json={"members": [channel]}).status_code == 200
    assert d.r.vault.verify(fixity=False).ok
    # someone with the database undoes the split around the door
    with d.r.vault.write(checkpoint=False) as s:
        s.execute(update(DuplicateDecision).values(apart=[]))
    report = d.r.vault.verify(fixity=False)
    assert not report.ok
    assert any(p.subject.startswith("duplicate ") and "edited by hand" in p.message
               for p in report.problems), report.problems
    # ... or deletes it
    with d.r.vault.write(checkpoint=False) as s:
        s.execute(delete(DuplicateDecision))
    report = d.r.vault.verify(fixity=False)
    assert any(p.subject.startswith("duplicate ") and "deleted by hand" in p.message
               for p in report.problems), report.problems
    # ... or adds one no person made
    with d.r.vault.write(checkpoint=False) as s:
        s.add(DuplicateDecision(id=99, decision="distinct", members=[channel], apart=[key],
                                decided_by="nobody", decided_at=datetime(2026, 1, 1)))
    report = d.r.vault.verify(fixity=False)
    assert any(p.subject == "duplicate 99" and "no custody event records it"
               in p.message for p in report.problems), report.problems


def test_the_command_line_records_the_same_decisions(fresh: tuple[Dupes, Any]) -> None:
    import json

    d, _app = fresh
    original, forwarded, channel = (d.sha[k] for k in ("original", "forwarded", "channel"))
    out = cli("dupes", d.r.path, "--confirm", channel[:12], "--best", forwarded[:12],
              "--note", "checked", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["group"]["confirmed"] is True and data["group"]["best"] == forwarded
    assert data["decision"]["decision"] == "confirmed"
    out = cli("dupes", d.r.path, "--split", channel[:12])
    assert out.returncode == 0, out.stderr
    assert "the group now has 2 members" in out.stdout
    # bad input: one line, exit code 2, nothing stored
    stored = decisions(d)
    for args, words in ((["--split", d.sha["other"][:12]], "no near-duplicate group"),
                        (["--split", channel[:12]], "no near-duplicate group"),
                        (["--best", "0000000000"], "no original"),
                        (["--split", original[:12], "--best", forwarded[:12]],
                         "one decision at a time"),
                        (["--note", "why"], "--note goes with")):
        bad = cli("dupes", d.r.path, *args)
        assert bad.returncode == 2 and words in bad.stderr, (args, bad.stderr)
    assert decisions(d) == stored == 2
    text = cli("dupes", d.r.path)
    assert text.returncode == 0 and f"split out: {channel[:16]}" in text.stdout
    actors = {e.actor for e in annotated(d)}
    assert len(actors) == 1 and f"confirmed by {actors.pop()}" in text.stdout
    assert d.r.vault.verify(fixity=False).ok


# -- in a browser ---------------------------------------------------------------------------
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_in_chromium_the_copies_stand_side_by_side_blurred_and_a_split_is_one_click(
        fresh: tuple[Dupes, Any]) -> None:
    """The page in Chromium loads only blurred posters (every image request it makes is a
    `/poster.jpg` or `/thumb.jpg`), shows the copies in one row, and "Split out" takes the
    clip out, on the record with the person's name. Screenshot: tests/artifacts/duplicates.png."""
    import os

    from playwright.sync_api import sync_playwright

    from review_fixtures import serving, session_for

    d, app = fresh
    key, channel = min(d.members), d.sha["channel"]
    token = session_for(d.r, "investigator")
    with serving(app) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox"] if os.geteuid() == 0 else [])
        try:
            context = browser.new_context(viewport={"width": 1366, "height": 768})
            context.add_cookies([{"name": "sr_session", "value": token, "url": base}])
            page = context.new_page()
            images: list[str] = []
            page.on("request", lambda req: images.append(req.url)
                    if req.resource_type == "image" else None)
            page.goto(f"{base}/duplicates/{key}")
            page.wait_for_load_state("networkidle")
            assert sorted(u.removeprefix(base) for u in images) == sorted(
                f"/clips/{s}/poster.jpg" for s in d.members)
            loaded = page.eval_on_selector_all(
                "img.poster", "els => els.map(e => e.complete && e.naturalWidth > 0)")
            assert loaded == [True, True, True]
            tops = page.eval_on_selector_all(
                "article.copy", "els => els.map(e => Math.round(e.getBoundingClientRect().top))")
            assert len(set(tops)) == 1, f"the copies are not side by side: {tops}"
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "duplicates.png"), full_page=True)
            page.click(f'article[data-sha="{channel}"] button.split')
            page.wait_for_url(f"{base}/duplicates/{key}")
            assert page.locator("article.copy").count() == 2
            assert channel[:12] in page.inner_text("#split-out")
        finally:
            browser.close()
    [ev] = annotated(d)
    assert ev.actor.startswith("investigator (investigator")


def test_an_incident_page_offers_the_copies_of_its_clips(fresh: tuple[Dupes, Any]) -> None:
    """Issue 15, "link clips": an incident marked on one copy offers the other copies of the
    same recording (its near-duplicate group) to link, and not the unrelated clip."""
    d, app_ = fresh
    inv = client(app_, d.r, "investigator")
    res = inv.post(f"/api/clips/{d.sha['forwarded']}/incidents",
                   json={"start_s": 0.5, "end_s": 2.0, "description": "Удары"})
    assert res.status_code == 200, res.text
    n = res.json()["incident"]
    copies = {c["original"] for c in inv.get(f"/api/incidents/{n}").json()["copies"]}
    assert copies == {d.sha["original"], d.sha["channel"]}
    assert inv.post(f"/api/incidents/{n}/clips",
                    json={"sha256": d.sha["channel"]}).status_code == 200
    after = inv.get(f"/api/incidents/{n}").json()
    assert {c["original"] for c in after["copies"]} == {d.sha["original"]}
    page = inv.get(f"/incidents/{n}").text
    assert d.sha["original"][:12] in page and d.sha["other"][:12] not in page
