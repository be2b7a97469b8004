"""Case building in the review app (issue 15, points 1–3): incidents with people, linked clips,
status and history; people by pseudonym with a sealed identity only admins open (each view on
the record, never searchable); cases with a recipient, and an export a lawyer asks for and
someone else approves, which writes a bag that verifies."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from conftest import cli
from review_fixtures import Reviewed, app, client, reviewed  # noqa: F401
from strongroom.catalogue.models import CustodyEvent, Person
from strongroom.export.verifier import verify_bag


def events(r: Reviewed) -> int:
    with r.vault.catalogue.read() as s:
        return int(s.scalar(select(func.count()).select_from(CustodyEvent)) or 0)


def mark(c: Any, sha: str, description: str) -> int:
    res = c.post(f"/api/clips/{sha}/incidents", json={
        "start_s": 0.5, "end_s": 2.5, "abuse_types": ["beating"], "severity": 4,
        "description": description})
    assert res.status_code == 200, res.text
    return int(res.json()["incident"])


def test_incident_people_links_status_and_history(reviewed: Reviewed, app: Any) -> None:
    admin, inv = client(app, reviewed, "admin"), client(app, reviewed, "investigator")
    lawyer, rev = client(app, reviewed, "lawyer"), client(app, reviewed, "reviewer")
    n = mark(admin, reviewed.clips[0], "Удары дубинкой")
    # a description evolves; every version is kept with who and when
    for text_ in ("Удары дубинкой по ногам", "Удары дубинкой по ногам и спине"):
        res = inv.post(f"/api/incidents/{n}", json={"description": text_})
        assert res.status_code == 200, res.text
    res = inv.post(f"/api/incidents/{n}", json={"status": "verified"})
    assert res.json()["status"] == "verified"
    # a victim by pseudonym, made on the way in
    res = inv.post(f"/api/incidents/{n}/people", json={"pseudonym": "Victim 12",
                                                      "role": "victim"})
    assert res.status_code == 200 and res.json()["new_person"] is True, res.text
    res = inv.post(f"/api/incidents/{n}/people", json={"pseudonym": "victim  12",
                                                      "role": "victim"})
    assert res.status_code == 400 and "already in incident" in res.json()["error"]
    # another camera's clip linked (no DVR overlap: the whole clip)
    res = inv.post(f"/api/incidents/{n}/clips", json={"sha256": reviewed.clips[1][:12]})
    assert res.status_code == 200, res.text
    detail = lawyer.get(f"/api/incidents/{n}").json()
    assert {c["original"] for c in detail["clips"]} == set(reviewed.clips[:2])
    assert [p["pseudonym"] for p in detail["people"]] == ["Victim 12"]
    assert detail["dvr_from"] and detail["dvr_from"].startswith("2021-03-14")
    history = detail["history"]
    descriptions = [v["view"]["description"] for v in history]
    assert descriptions[:3] == ["Удары дубинкой", "Удары дубинкой по ногам",
                                "Удары дубинкой по ногам и спине"]
    assert [v["actor"].split("@")[0] for v in history][:2] == ["admin", "investigator"] or \
        history[1]["actor"] != history[0]["actor"]
    assert all(v["matches_log"] for v in history)
    # the page shows the history to a lawyer; a lawyer cannot change; a reviewer sees nothing
    page = lawyer.get(f"/incidents/{n}")
    assert page.status_code == 200 and "Victim 12" in page.text
    assert 'id="incident-description">Удары дубинкой по ногам и спине<' in page.text
    assert page.text.count("Удары дубинкой по ногам<") == 1  # the old version, in the history
    assert lawyer.post(f"/api/incidents/{n}", json={"description": "x"}).status_code == 403
    assert rev.get(f"/incidents/{n}").status_code == 403
    assert rev.get("/api/incidents").status_code == 403


def test_bad_incident_and_person_input_stores_nothing(reviewed: Reviewed, app: Any) -> None:
    inv = client(app, reviewed, "investigator")
    n = mark(inv, reviewed.clips[2], "Угрозы")
    before = events(reviewed)
    for body in ({"status": "solved"}, {"facility": "ИК-99 (нет такой)"}, {"severity": 9},
                 {"description": "a\x00b"}):
        res = inv.post(f"/api/incidents/{n}", json=body)
        assert res.status_code in (400, 422), (body, res.text)
    assert inv.post(f"/api/incidents/{n}/people", json={"pseudonym": "  ",
                                                       "role": "victim"}).status_code == 400
    assert inv.post(f"/api/incidents/{n}/people", json={"pseudonym": "W 1",
                                                       "role": "bystander"}).status_code == 400
    assert inv.post(f"/api/incidents/{n}/clips", json={"sha256": "0" * 64}).status_code in (
        400, 404)
    assert inv.post(f"/api/incidents/{n}/clips", json={
        "sha256": reviewed.clips[2]}).status_code == 400  # already linked
    assert inv.get("/api/incidents/999999").status_code == 404
    assert events(reviewed) == before
    # a duplicate pseudonym, in any case and spacing
    assert inv.post("/api/people", json={"pseudonym": "Witness 7",
                                         "role": "witness"}).status_code == 200
    res = inv.post("/api/people", json={"pseudonym": "witness   7", "role": "witness"})
    assert res.status_code == 400 and "taken" in res.json()["error"]


def test_a_sealed_identity_is_for_admins_only_logged_and_never_searched(
        reviewed: Reviewed, app: Any) -> None:
    admin, inv = client(app, reviewed, "admin"), client(app, reviewed, "investigator")
    lawyer = client(app, reviewed, "lawyer")
    name = "Сидоров Пётр Аркадьевич"
    # only an admin records one
    res = inv.post("/api/people", json={"pseudonym": "Victim 40", "role": "victim",
                                        "identity": name})
    assert res.status_code == 403
    res = admin.post("/api/people", json={"pseudonym": "Victim 41", "role": "victim",
                                          "identity": name})
    assert res.status_code == 200 and res.json()["identity_recorded"] is True
    pid = res.json()["person"]
    with reviewed.vault.catalogue.read() as s:
        sealed = s.get(Person, pid).sealed_identity  # type: ignore[union-attr]
    assert sealed and name.encode() not in sealed and b"age-encryption.org" in sealed
    # nobody else sees it, in pages or the API
    for who in (lawyer, inv, admin):
        for url in (f"/people/{pid}", f"/api/people/{pid}", "/people", "/api/people"):
            body = who.get(url)
            assert body.status_code == 200 and "Сидоров" not in body.text, url
    assert lawyer.post(f"/api/people/{pid}/identity").status_code == 403
    assert inv.post(f"/api/people/{pid}/identity").status_code == 403
    # search never finds it
    hits = admin.get("/api/search", params={"q": "Сидоров"}).json()
    assert hits["hits"] == []
    assert admin.get("/api/search", params={"q": "Victim 41"}).json()["hits"]
    # the admin's deliberate view is on the record, committed with the admin's name
    before = events(reviewed)
    res = admin.post(f"/api/people/{pid}/identity")
    assert res.status_code == 200 and res.json()["identity"] == name
    with reviewed.vault.catalogue.read() as s:
        ev = s.scalar(select(CustodyEvent).order_by(CustodyEvent.seq.desc()).limit(1))
    assert ev is not None and ev.action == "viewed" and ev.subject == f"person:{pid}"
    assert ev.actor.startswith("admin") and name not in ev.details
    assert events(reviewed) == before + 1
    # the history keeps only a digest of the sealed bytes
    history = admin.get(f"/api/people/{pid}").json()["history"]
    assert "Сидоров" not in json.dumps(history, ensure_ascii=False)
    assert history[0]["view"]["sealed_identity_sha256"]


def test_case_page_export_request_and_approval_write_a_bag(reviewed: Reviewed, app: Any,
                                                           tmp_path: Path) -> None:
    inv, admin = client(app, reviewed, "investigator"), client(app, reviewed, "admin")
    lawyer = client(app, reviewed, "lawyer")
    reviewed.vault.settings.export_dir = str(tmp_path / "handover")
    a, b = mark(inv, reviewed.clips[0], "Избиение в коридоре"), \
        mark(inv, reviewed.clips[1], "Избиение в камере")
    assert lawyer.post("/api/cases", json={"name": "Lawyer's own"}).status_code == 403
    res = inv.post("/api/cases", json={"name": "Саратов ОТБ-1",
                                       "recipient": "Parquet national antiterroriste"})
    assert res.status_code == 200, res.text
    case_id = res.json()["case"]
    assert inv.post("/api/cases", json={"name": "Саратов ОТБ-1"}).status_code == 400
    # nothing to export yet
    assert lawyer.post(f"/api/cases/{case_id}/export-requests", json={}).status_code == 400
    for n in (a, b):
        assert inv.post(f"/api/cases/{case_id}/incidents/{n}").status_code == 200
    res = inv.post(f"/api/cases/{case_id}", json={"status": "ready", "notes": "для прокуратуры"})
    assert res.status_code == 200 and res.json()["status"] == "ready"
    detail = lawyer.get(f"/api/cases/{case_id}").json()
    assert [i["incident"] for i in detail["incidents"]] == [a, b]  # in DVR-clock order
    assert all(i["dvr_from"] for i in detail["incidents"])
    # a lawyer asks; the lawyer cannot approve; the one who asks cannot approve their own
    res = lawyer.post(f"/api/cases/{case_id}/export-requests",
                      json={"reason": "for the French prosecutors"})
    assert res.status_code == 200, res.text
    rid = res.json()["request"]
    assert lawyer.post(f"/api/cases/{case_id}/export-requests", json={}).status_code == 400
    assert lawyer.post(f"/api/export-requests/{rid}/approve").status_code == 403
    res = inv.post(f"/api/export-requests/{rid}/approve")
    assert res.status_code == 200 and res.json()["status"] == "running", res.text
    assert admin.post(f"/api/export-requests/{rid}/approve").status_code == 400
    deadline = time.monotonic() + 240
    while True:
        req = lawyer.get(f"/api/cases/{case_id}").json()["export_requests"][0]
        if req["status"] in ("done", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert req["status"] == "done" and req["output"] is None, req  # a lawyer: no server path
    req = inv.get(f"/api/cases/{case_id}").json()["export_requests"][0]
    bag = Path(req["output"].splitlines()[0])
    assert bag.is_relative_to(tmp_path / "handover") and verify_bag(bag).ok
    report = (bag / "report" / "report-en.html") if (bag / "report").exists() else None
    if report is None:
        report = next(bag.rglob("report*.html"))
    html = report.read_text()
    assert "Избиение в коридоре" in html and "2021-03-14" in html
    # the whole request is on the record, each step with its person
    history = admin.get(f"/api/cases/{case_id}").json()["history"]
    assert [v["change"] for v in history] == ["made", f"incident {a} added",
                                              f"incident {b} added", "status+notes"]
    with reviewed.vault.catalogue.read() as s:
        steps = [e.details for e in s.scalars(select(CustodyEvent).where(
            CustodyEvent.subject == f"export_request:{rid}").order_by(CustodyEvent.seq))]
    assert [json.loads(d)["change"] for d in steps] == ["requested", "approved", "running",
                                                        "done"]
    # a refused request
    res = lawyer.post(f"/api/cases/{case_id}/export-requests", json={"reason": "again"})
    rid2 = res.json()["request"]
    assert admin.post(f"/api/export-requests/{rid2}/refuse").json()["status"] == "refused"
    # and the case page, as a lawyer sees it
    page = lawyer.get(f"/cases/{case_id}")
    assert page.status_code == 200 and "Parquet national antiterroriste" in page.text
    assert "Approve" not in page.text


def test_verify_catches_a_person_or_request_edited_by_hand(reviewed: Reviewed,
                                                          app: Any) -> None:
    inv = client(app, reviewed, "investigator")
    res = inv.post("/api/people", json={"pseudonym": "Official 3", "role": "official"})
    pid = res.json()["person"]
    r = cli("verify", reviewed.path, "--json")
    assert json.loads(r.stdout)["ok"] is True, r.stdout
    with reviewed.vault.catalogue.write() as s:
        s.execute(text("UPDATE person SET role = 'victim' WHERE id = :i"), {"i": pid})
    try:
        r = cli("verify", reviewed.path, "--json")
        problems = json.loads(r.stdout)["problems"]
        assert any(p["subject"] == f"person {pid}" for p in problems), problems
    finally:
        with reviewed.vault.catalogue.write() as s:
            s.execute(text("UPDATE person SET role = 'official' WHERE id = :i"), {"i": pid})


def test_an_export_cut_short_by_a_stopped_server_ends_failed_on_the_next_start(
        reviewed: Reviewed, app: Any) -> None:
    from strongroom.catalogue import export_requests
    from strongroom.review.app import create_app

    inv, lawyer = client(app, reviewed, "investigator"), client(app, reviewed, "lawyer")
    case_id = inv.post("/api/cases", json={"name": "Interrupted"}).json()["case"]
    inv.post(f"/api/cases/{case_id}/incidents/{mark(inv, reviewed.clips[2], 'Угрозы')}")
    rid = lawyer.post(f"/api/cases/{case_id}/export-requests", json={}).json()["request"]
    export_requests.decide(reviewed.vault, rid, approve=True, actor="investigator@test")
    export_requests.start(reviewed.vault, rid, actor="investigator@test")  # then the crash
    create_app(reviewed.vault.settings, reviewed.vault)  # the next start
    req = inv.get(f"/api/cases/{case_id}").json()["export_requests"][0]
    assert req["status"] == "failed" and "stopped before the export finished" in req["error"]
    # and it can be asked for again
    assert lawyer.post(f"/api/cases/{case_id}/export-requests", json={}).status_code == 200


def test_case_notes_and_recipients_are_searched_and_identities_are_not(
        reviewed: Reviewed, app: Any) -> None:
    inv, admin = client(app, reviewed, "investigator"), client(app, reviewed, "admin")
    case_id = inv.post("/api/cases", json={"name": "Notes case",
                                           "recipient": "Прокуратура Саратова"}).json()["case"]
    inv.post(f"/api/cases/{case_id}", json={"notes": "Свидетели избиений готовы говорить"})
    admin.post("/api/people", json={"pseudonym": "Witness 90", "role": "witness",
                                    "note": "видел избиение", "identity": "Кузнецов Олег"})
    kinds = {(h["kind"], h["id"]) for h in admin.get(
        "/api/search", params={"q": "избиение"}).json()["hits"]}
    assert ("case", case_id) in kinds and any(k == "person" for k, _ in kinds)
    assert admin.get("/api/search", params={"q": "прокуратура"}).json()["hits"]
    assert admin.get("/api/search", params={"q": "Кузнецов"}).json()["hits"] == []
