"""Facilities in the review app (issue 15): the list with type labels in the reader's language,
cameras and clip counts, and the cameras no facility holds; staff add and edit facilities, map
cameras and correct labels, in pages and through the API, each change a custody event with the
person's name that `verify` checks; lawyers read, reviewers see nothing; admins keep the
vocabularies; bad input gets one clear message and nothing stored. A real vault whose clips
the real pipeline read (cameras from the DVR overlay)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from conftest import Template, light_password_hashes, sql
from review_fixtures import PASSWORD, Reviewed, build, client
from strongroom.catalogue.cases import history
from strongroom.catalogue.models import CustodyEvent, Facility
from strongroom.custody.verify import verify
from strongroom.review import actions

CAMERAS = ["КАМ 01 ПФРСИ", "КАМ 02 ПФРСИ", "КАМ 03 ПФРСИ"]


@pytest.fixture(scope="module")
def reviewed(template: Template, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reviewed]:
    """Three clips read by the overlay step (one camera each), one user per role and a
    Russian-speaking lawyer."""
    r = build(template, tmp_path_factory, "facilities", "probe,overlay_ocr")
    with light_password_hashes():
        r.secrets["ru-lawyer"] = actions.add_user(r.vault, "ru-lawyer", "lawyer", PASSWORD,
                                                  locale="ru")
    yield r
    r.vault.close()


@pytest.fixture(scope="module")
def app(reviewed: Reviewed) -> Any:
    from strongroom.review.app import create_app

    return create_app(reviewed.vault.settings, reviewed.vault, heartbeat_seconds=1)


def events(r: Reviewed) -> list[CustodyEvent]:
    with r.vault.catalogue.read() as s:
        rows = list(s.scalars(select(CustodyEvent).order_by(CustodyEvent.seq)))
        for e in rows:
            s.expunge(e)
        return rows


def problems(r: Reviewed) -> list[str]:
    return [f"{p.subject}: {p.message}"
            for p in verify(r.vault, fixity=False).problems]  # type: ignore[arg-type]


def browser(app: Any, r: Reviewed, role: str) -> tuple[Any, str]:
    """A client signed in by cookie, as a browser is, and its session's CSRF token."""
    c = client(app, r, role, bearer=False)
    token = re.search(r'name="csrf-token" content="([^"]+)"', c.get("/me").text)
    assert token
    return c, token.group(1)


def facility_id(r: Reviewed, name: str) -> int:
    with r.vault.catalogue.read() as s:
        found = s.scalar(select(Facility.id).where(Facility.name == name))
    assert found is not None, name
    return found


def listing(app: Any, r: Reviewed, role: str = "lawyer") -> dict[str, Any]:
    got = client(app, r, role).get("/api/facilities")
    assert got.status_code == 200, got.text
    data: dict[str, Any] = got.json()
    return data


def test_staff_add_a_facility_and_map_a_camera_in_the_pages(app: Any, reviewed: Reviewed
                                                            ) -> None:
    before = listing(app, reviewed)
    assert {c["label"] for c in before["unmapped"]} >= {CAMERAS[0]}
    assert all(c["clips"] == 1 for c in before["unmapped"])
    c, csrf = browser(app, reviewed, "investigator")
    form = c.get("/facilities").text
    assert "Следственный изолятор" not in form and "Pre-trial detention centre (SIZO)" in form
    r = c.post("/facilities", data={"csrf": csrf, "name": "СИЗО-1 Саратов",
                                    "type": "pre-trial detention",
                                    "region": "Саратовская область"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    fid = facility_id(reviewed, "СИЗО-1 Саратов")
    r = c.post("/facilities/cameras/map", data={"csrf": csrf, "camera": CAMERAS[0],
                                                "facility_id": str(fid)},
               follow_redirects=False)
    assert r.status_code == 303, r.text
    page = c.get("/facilities").text
    row = page[page.index(f'id="facility-{fid}"'):]
    row = row[:row.index("</tr>")]
    assert "СИЗО-1 Саратов" in row and "Pre-trial detention centre (SIZO)" in row
    assert "Саратовская область" in row and CAMERAS[0] in row and "<td>1</td>" in row
    unmapped = page[page.index('id="unmapped"'):]
    assert CAMERAS[0] not in unmapped and CAMERAS[1] in unmapped
    # the facility's own page: its camera, its history with the person's name
    one = c.get(f"/facilities/{fid}").text
    assert CAMERAS[0] in one and "investigator (investigator, review app) · made" in one
    trail = [(e.subject.split(":")[0], e.actor) for e in events(reviewed)[-2:]]
    assert trail == [("facility", "investigator (investigator, review app)"),
                     ("camera", "investigator (investigator, review app)")]
    assert problems(reviewed) == []


def test_the_api_adds_edits_maps_and_renames_each_on_the_record(app: Any, reviewed: Reviewed,
                                                                ) -> None:
    api = client(app, reviewed, "admin")
    made = api.post("/api/facilities", json={"name": "ИК-10 Карелия", "type": "ИК",
                                             "region": "Республика Карелия"})
    assert made.status_code == 200, made.text
    fid = made.json()["facility_id"]
    assert made.json()["type"] == "penal colony"
    edited = api.post(f"/api/facilities/{fid}", json={"name": "ИК-10 Сегежа",
                                                      "type": "settlement colony"})
    assert edited.status_code == 200, edited.text
    assert edited.json()["changed"] == ["name", "type"]
    assert api.post("/api/facilities/cameras/map",
                    json={"camera": CAMERAS[1], "facility_id": fid}).status_code == 200
    renamed = api.post("/api/facilities/cameras/rename",
                       json={"camera": CAMERAS[1], "new": "КАМ 02 ШИЗО"})
    assert renamed.status_code == 200, renamed.text
    got = api.get(f"/api/facilities/{fid}").json()
    assert got["name"] == "ИК-10 Сегежа" and got["type_label"] == "Settlement colony (KP)"
    assert got["region"] == "Республика Карелия"
    assert got["cameras"] == [{"label": "КАМ 02 ШИЗО", "clips": 1}] and got["clips"] == 1
    # every version kept, with who made it; the log's digests match
    versions = history(reviewed.vault, "facility", fid)
    assert [(v["change"], v["view"]["name"], v["actor"], v["matches_log"]) for v in versions] \
        == [("made", "ИК-10 Карелия", "admin (admin, review app)", True),
            ("name+type", "ИК-10 Сегежа", "admin (admin, review app)", True)]
    camera_events = [json.loads(e.details) for e in events(reviewed)
                     if e.subject.startswith("camera:")][-2:]
    assert [(d["change"], d["facility"]) for d in camera_events] == [
        ("mapped", "ИК-10 Сегежа"), ("renamed", "ИК-10 Сегежа")]
    assert problems(reviewed) == []
    # renamed after its camera was mapped: the camera's event names the old name, the
    # facility's later event the new one, and verify takes the later word
    assert api.post(f"/api/facilities/{fid}", json={"name": "ИК-7 Сегежа"}).status_code == 200
    assert problems(reviewed) == []
    # a facility edited around the door is named by verify
    sql(reviewed.path, "UPDATE facility SET region = 'Москва' WHERE id = ?", (fid,))
    found = problems(reviewed)
    assert any(p.startswith(f"facility {fid}: no longer says what custody event")
               for p in found), found
    sql(reviewed.path, "UPDATE facility SET region = 'Республика Карелия' WHERE id = ?", (fid,))
    assert problems(reviewed) == []


def test_a_lawyer_reads_a_reviewer_sees_nothing_and_only_admins_keep_vocabularies(
        app: Any, reviewed: Reviewed) -> None:
    lawyer, reviewer = client(app, reviewed, "lawyer"), client(app, reviewed, "reviewer")
    investigator = client(app, reviewed, "investigator")
    before = len(events(reviewed))
    assert lawyer.get("/facilities").status_code == 200
    assert "Add the facility" not in lawyer.get("/facilities").text
    assert lawyer.get("/api/facilities").status_code == 200
    for path, body in (("/api/facilities", {"name": "X"}),
                       ("/api/facilities/1", {"region": "X"}),
                       ("/api/facilities/cameras/map", {"camera": CAMERAS[2], "facility_id": 1}),
                       ("/api/facilities/cameras/rename", {"camera": CAMERAS[2], "new": "X"})):
        assert lawyer.post(path, json=body).status_code == 403, path
        assert reviewer.post(path, json=body).status_code == 403, path
    for path in ("/facilities", "/facilities/1", "/api/facilities", "/api/facilities/1"):
        assert reviewer.get(path).status_code == 403, path
    assert investigator.get("/admin/vocabularies").status_code == 403
    assert investigator.post("/api/vocabularies/add", json={
        "kind": "abuse", "code": "x", "en": "X", "ru": "Икс"}).status_code == 403
    assert reviewer.get("/api/vocabularies").status_code == 200
    assert len(events(reviewed)) == before


@pytest.mark.parametrize(("path", "body", "status", "message"), [
    ("/api/facilities/cameras/map", {"camera": "КАМ 99", "facility_id": 1}, 400,
     "no camera 'КАМ 99'"),
    ("/api/facilities/cameras/map", {"camera": CAMERAS[2], "facility_id": 999}, 400,
     "no facility 999"),
    ("/api/facilities/cameras/rename", {"camera": "КАМ 99", "new": "КАМ 98"}, 400,
     "no camera 'КАМ 99'"),
    ("/api/facilities/999", {"region": "X"}, 404, "no such facility"),
    ("/api/facilities", {"name": "ИК-2", "type": "holiday camp"}, 400,
     "unknown facility type 'holiday camp'"),
    ("/api/facilities", {"name": "сизо-1  саратов"}, 400,
     "there is already a facility 'СИЗО-1 Саратов'"),
    ("/api/facilities", {"name": "  "}, 400, "facility name must be printable and not empty"),
    ("/api/facilities", {"name": "ИК-2\x1b[2J"}, 400, "printable"),
    ("/api/facilities", {"name": "ИК-2", "region": "Пермь\u202e"}, 400, "printable"),
    ("/api/facilities", {"name": "И" * 201}, 400, "at most 200"),
    ("/api/facilities", {"name": "И" * 10_000}, 422, "name"),
    ("/api/facilities/cameras/rename", {"camera": CAMERAS[2], "new": "К\u200bАМ"}, 400,
     "printable"),
    ("/api/vocabularies/add", {"kind": "facility", "code": "prison", "en": "P", "ru": "Т"},
     400, "exists already"),
    ("/api/vocabularies/retire", {"kind": "weapon", "code": "knife"}, 400,
     "unknown vocabulary"),
    ("/api/vocabularies/burn", {"kind": "abuse", "code": "torture"}, 404, "no such change"),
])
def test_bad_input_gets_one_clear_message_and_nothing_is_stored(
        app: Any, reviewed: Reviewed, path: str, body: dict[str, Any], status: int,
        message: str) -> None:
    api = client(app, reviewed, "admin")
    if "СИЗО-1 Саратов" in message:
        api.post("/api/facilities", json={"name": "СИЗО-1 Саратов"})  # if not made yet
    with reviewed.vault.catalogue.read() as s:
        facilities = [(f.id, f.name, f.type, f.region) for f in s.scalars(select(Facility))]
    before = len(events(reviewed))
    r = api.post(path, json=body)
    assert r.status_code == status, r.text
    assert message in json.dumps(r.json(), ensure_ascii=False), r.text
    assert "Traceback" not in r.text
    assert len(events(reviewed)) == before
    with reviewed.vault.catalogue.read() as s:
        assert [(f.id, f.name, f.type, f.region) for f in s.scalars(select(Facility))] \
            == facilities


def test_a_bad_form_gets_a_page_that_says_what_is_wrong(app: Any, reviewed: Reviewed) -> None:
    c, csrf = browser(app, reviewed, "investigator")
    before = len(events(reviewed))
    r = c.post("/facilities", data={"csrf": csrf, "name": "ИК-3", "type": "spa"},
               headers={"Accept": "text/html"})
    assert r.status_code == 400 and "unknown facility type" in r.text and "<h1>" in r.text
    r = c.post("/facilities/cameras/map", data={"csrf": csrf, "camera": CAMERAS[2],
                                                "facility_id": "nine"},
               headers={"Accept": "text/html"})
    assert r.status_code == 400 and "choose a facility" in r.text
    assert len(events(reviewed)) == before


def test_a_russian_reader_sees_russian_labels(app: Any, reviewed: Reviewed) -> None:
    api = client(app, reviewed, "admin")
    api.post("/api/facilities", json={"name": "ЛИУ-3 Пермь", "type": "medical colony",
                                      "region": "Пермский край"})
    ru = client(app, reviewed, "ru-lawyer")
    page = ru.get("/facilities").text
    assert "Учреждения" in page and "Камеры без учреждения" in page
    assert "Лечебное исправительное учреждение (ЛИУ)" in page
    assert "Medical correctional institution" not in page
    listed = {f["name"]: f for f in ru.get("/api/facilities").json()["facilities"]}
    assert listed["ЛИУ-3 Пермь"]["type_label"] == "Лечебное исправительное учреждение (ЛИУ)"
    assert listed["ЛИУ-3 Пермь"]["type"] == "medical colony"
    terms = {t["code"]: t["label"] for t in ru.get("/api/vocabularies?kind=abuse").json()["terms"]}
    assert terms["torture"] == "Пытка"


def test_admins_add_relabel_and_retire_terms_and_forms_offer_only_live_ones(
        app: Any, reviewed: Reviewed) -> None:
    c, csrf = browser(app, reviewed, "admin")
    assert "Penal colony (IK)" in c.get("/admin/vocabularies").text
    r = c.post("/admin/vocabularies/add", data={
        "csrf": csrf, "kind": "facility", "code": "transit prison", "en": "Transit prison",
        "ru": "Пересыльная тюрьма"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    r = c.post("/admin/vocabularies/relabel", data={
        "csrf": csrf, "kind": "facility", "code": "transit prison",
        "en": "Transit prison (etap)", "ru": "Пересыльная тюрьма"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    api = client(app, reviewed, "admin")
    made = api.post("/api/facilities", json={"name": "Пересылка Киров", "type": "transit prison"})
    assert made.status_code == 200, made.text
    r = c.post("/admin/vocabularies/retire", data={
        "csrf": csrf, "kind": "facility", "code": "transit prison"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = c.get("/admin/vocabularies").text
    assert "Transit prison (etap)" in page and "Offer again" in page
    # no longer offered for a new facility...
    form = c.get("/facilities").text
    new_form = form[form.index('action="/facilities" '):]
    assert "transit prison" not in new_form
    refused = api.post("/api/facilities", json={"name": "Пересылка Пермь",
                                                "type": "transit prison"})
    assert refused.status_code == 400 and "retired" in refused.json()["error"]
    # ...but the facility that has it keeps it, labelled, and can still be edited
    fid = made.json()["facility_id"]
    assert "Transit prison (etap)" in form
    kept = api.post(f"/api/facilities/{fid}", json={"type": "transit prison",
                                                    "region": "Кировская область"})
    assert kept.status_code == 200 and kept.json()["type"] == "transit prison", kept.text
    changes = [(e.actor, json.loads(e.details)["change"]) for e in events(reviewed)
               if e.subject.startswith("vocabulary:")]
    assert changes == [("admin (admin, review app)", c) for c in
                       ("added", "relabelled", "retired")]
    assert problems(reviewed) == []


def test_csp_and_escaping_hold_on_the_new_pages(app: Any, reviewed: Reviewed) -> None:
    api = client(app, reviewed, "admin")
    made = api.post("/api/facilities", json={"name": "<script>alert(1)</script>"})
    assert made.status_code == 200, made.text
    ours = ('<script src="/static/htmx.min.js" defer></script>',
            '<script src="/static/app.js" defer></script>')
    for path in ("/facilities", f"/facilities/{made.json()['facility_id']}",
                 "/admin/vocabularies"):
        r = api.get(path)
        assert r.status_code == 200, path
        assert "script-src 'self'" in r.headers["content-security-policy"]
        body = r.text
        for tag in ours:
            body = body.replace(tag, "")
        assert "<script" not in body and " style=" not in body, path
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in api.get("/facilities").text
