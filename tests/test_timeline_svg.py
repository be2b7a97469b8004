"""Timeline pictures (issue 15, point 4): the SVG drawn on the server for a camera and a
facility, on a real vault whose clips overlap, leave a gap, carry an incident and a hostile
camera label; the review app's timeline pages and their rules; the picture in the export."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import Template
from review_fixtures import client
from strongroom.catalogue import timeline_svg as tl
from strongroom.catalogue.timeline import Entry, flag_entries
from timeline_fixtures import CAM, FACILITY, HOSTILE, T0, Placed, build_timelines

NS = {"s": "http://www.w3.org/2000/svg"}


@pytest.fixture(scope="module")
def placed(template: Template, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Placed]:
    p = build_timelines(template, tmp_path_factory, "timelines")
    yield p
    p.r.vault.close()


@pytest.fixture(scope="module")
def app(placed: Placed) -> Any:
    from strongroom.review.app import create_app

    return create_app(placed.r.vault.settings, placed.r.vault, heartbeat_seconds=1)


def camera_ids(placed: Placed) -> dict[str, int]:
    from sqlalchemy import select

    from strongroom.catalogue.models import Camera

    with placed.r.vault.catalogue.read() as s:
        return {c.label: c.id for c in s.scalars(select(Camera))}


def facility_id(placed: Placed) -> int:
    from sqlalchemy import select

    from strongroom.catalogue.models import Facility

    with placed.r.vault.catalogue.read() as s:
        found = s.scalar(select(Facility.id).where(Facility.name == FACILITY))
    assert found is not None
    return found


def svg_of(c: Any, url: str) -> ET.Element:
    r = c.get(url)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("image/svg+xml")
    assert r.text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(r.text)  # noqa: S314 - our own answer, parsed to check it


def test_camera_svg_parses_and_links_every_segment_at_its_offset(placed: Placed,
                                                                 app: Any) -> None:
    c = client(app, placed.r, "investigator")
    svg = svg_of(c, f"/api/timelines/camera/{camera_ids(placed)[CAM]}.svg")
    title = svg.find("s:title", NS)
    assert title is not None and title.text is not None
    # the text title says how many clips and which window, for screen readers
    assert "3 clip(s)" in title.text and "2021-03-14" in title.text and CAM in title.text
    links = {a.get("href") for a in svg.iterfind(".//s:a", NS)}
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        assert f"/clips/{placed.shas[name]}?t=0" in links, name
    assert not any(placed.shas["d.mp4"] in (h or "") for h in links), "another camera's clip"
    # a window that starts inside a clip: its bar opens the clip at that time
    late = c.get(f"/api/timelines/camera/{camera_ids(placed)[CAM]}.svg",
                 params={"from": "2021-03-14T02:17:08", "to": "2021-03-14T02:18:08"})
    assert f'href="/clips/{placed.shas["a.mp4"]}?t=3"' in late.text
    assert f'href="/clips/{placed.shas["b.mp4"]}?t=1"' in late.text


def test_a_gap_and_an_overlap_are_marked(placed: Placed, app: Any) -> None:
    c = client(app, placed.r, "lawyer")
    svg = svg_of(c, f"/api/timelines/camera/{camera_ids(placed)[CAM]}.svg")
    gaps = [r for r in svg.iterfind(".//s:rect", NS) if r.get("class") == "gap"]
    overlaps = [r for r in svg.iterfind(".//s:rect", NS) if r.get("class") == "overlap"]
    assert len(gaps) == 1
    # a.mp4 and b.mp4 end 02:17:11; c.mp4 starts 02:30:00
    assert int(gaps[0].get("data-seconds") or 0) == pytest.approx(12 * 60 + 49, abs=2)
    assert len(overlaps) == 1 and overlaps[0].get("data-clips") == "2"
    tip = overlaps[0].find("s:title", NS)
    assert tip is not None and tip.text is not None
    assert placed.shas["a.mp4"][:12] in tip.text and placed.shas["b.mp4"][:12] in tip.text
    # the overlapping clip is drawn in a lane of its own, distinct from the first
    bars = {r.get("data-sha"): float(r.get("y") or 0) for r in svg.iterfind(".//s:rect", NS)
            if r.get("class") == "segment"}
    assert bars[placed.shas["a.mp4"]] != bars[placed.shas["b.mp4"]]
    assert bars[placed.shas["a.mp4"]] == bars[placed.shas["c.mp4"]]


def test_an_incident_shows_over_the_segment_it_covers(placed: Placed, app: Any) -> None:
    c = client(app, placed.r, "admin")
    svg = svg_of(c, f"/api/timelines/camera/{camera_ids(placed)[CAM]}.svg")
    marks = [g for g in svg.iterfind(".//s:g", NS) if g.get("class") == "incident"]
    assert [m.get("data-incident") for m in marks] == [str(placed.incident)]
    rect = marks[0].find("s:rect", NS)
    bar = next(r for r in svg.iterfind(".//s:rect", NS)
               if r.get("data-sha") == placed.shas["a.mp4"])
    assert rect is not None
    x, bx, bw = float(rect.get("x") or 0), float(bar.get("x") or 0), float(bar.get("width") or 0)
    assert bx < x < bx + bw, "the incident (1–3 s into a.mp4) lies over a.mp4's bar"
    links = [a.get("href") for a in svg.iterfind(".//s:a", NS)
             if a.get("class") == "incident-link"]
    assert links == [f"/clips/{placed.shas['a.mp4']}?t=1"]
    page = c.get(f"/timelines/camera/{camera_ids(placed)[CAM]}")
    assert f"#{placed.incident}" in page.text and "marks" in page.text


def test_a_hostile_camera_label_is_escaped_in_the_svg_and_the_page(placed: Placed,
                                                                    app: Any) -> None:
    c = client(app, placed.r, "investigator")
    cam = camera_ids(placed)[HOSTILE]
    raw = c.get(f"/api/timelines/camera/{cam}.svg").text
    assert "<script" not in raw
    svg = ET.fromstring(raw)  # noqa: S314 - our own answer
    texts = [t.text for t in svg.iterfind(".//s:text/s:title", NS)]
    assert HOSTILE in texts, "the label reads back exactly once parsed"
    assert [e for e in svg.iter() if e.tag.endswith("script")] == []
    page = c.get(f"/timelines/camera/{cam}").text
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    listing = c.get("/timelines").text
    assert "<script>alert" not in listing and "&lt;script&gt;alert" in listing
    # and a label that holds characters XML cannot carry still gives XML
    e = _entry(0, T0)
    window = tl.window_of(tl.full_window([tl.Row("x", [e])]), None, None)
    ET.fromstring(tl.render([tl.Row("КАМ\x01\x1b[31m\u202e 9", [e])],  # noqa: S314
                            window, label="\x00x"))


def test_clips_without_a_clock_or_camera_are_listed_beside_the_picture(placed: Placed,
                                                                        app: Any) -> None:
    c = client(app, placed.r, "lawyer")
    unplaced = placed.shas["noosd.mp4"]
    for url in ("/timelines", f"/timelines/camera/{camera_ids(placed)[CAM]}",
                f"/timelines/facility/{facility_id(placed)}"):
        page = c.get(url)
        assert page.status_code == 200, (url, page.text)
        assert f'href="/clips/{unplaced}"' in page.text, url
        assert "no DVR clock read" in page.text
    data = c.get("/api/timelines").json()
    assert [o["original"] for o in data["not_on_a_timeline"]] == [unplaced]
    by_label = {cam["label"]: cam for cam in data["cameras"]}
    assert by_label[CAM]["clips"] == 3 and by_label[CAM]["facility"] == FACILITY
    assert by_label[CAM]["dvr_clock_first"] == "2021-03-14 02:17:05"
    assert by_label[HOSTILE]["clips"] == 1


def test_the_facility_picture_has_a_row_per_camera(placed: Placed, app: Any) -> None:
    from strongroom.catalogue.places import map_camera

    c = client(app, placed.r, "investigator")
    fid = facility_id(placed)
    svg = svg_of(c, f"/api/timelines/facility/{fid}.svg")
    rows = [g.get("data-camera") for g in svg.iterfind(".//s:g", NS) if g.get("class") == "row"]
    assert rows == [CAM]
    map_camera(placed.r.vault, HOSTILE, FACILITY)
    svg = svg_of(c, f"/api/timelines/facility/{fid}.svg")
    rows = [g.get("data-camera") for g in svg.iterfind(".//s:g", NS) if g.get("class") == "row"]
    assert sorted(rows) == sorted([CAM, HOSTILE])
    assert svg.get("data-clips") == "4"
    assert c.get("/timelines/facility/99999").status_code == 404
    assert c.get("/api/timelines/camera/99999.svg").status_code == 404
    # camera 0: segments with a clock but no camera label (none here), drawn all the same
    empty = svg_of(c, "/api/timelines/camera/0.svg")
    assert empty.get("data-clips") == "0"
    assert [t.text for t in empty.iterfind(".//s:text", NS) if t.get("class") == "empty"] \
        == ["no clips in this window"]


def test_zoom_windows_give_different_ticks(placed: Placed, app: Any) -> None:
    c = client(app, placed.r, "investigator")
    url = f"/api/timelines/camera/{camera_ids(placed)[CAM]}.svg"
    units = {}
    for name, start, end in (("year", "2021-01-01", "2021-12-31"),
                             ("week", "2021-03-10", "2021-03-17"),
                             ("day", "2021-03-14T00:00", "2021-03-15T00:00"),
                             ("minutes", "2021-03-14T02:15", "2021-03-14T02:25")):
        svg = svg_of(c, url + f"?from={start}&to={end}")
        ticks = [t.text for t in svg.iterfind(".//s:text", NS) if t.get("class") == "tick"]
        units[name] = (svg.get("data-unit"), ticks)
    assert units["year"][0] == "month" and units["year"][1] == ["01", "04", "07", "10"]
    assert units["week"][0] == "day"
    assert units["day"][0] == "hour" and "06:00" in units["day"][1]
    assert units["minutes"][0] == "minute" and "02:20" in units["minutes"][1]
    decade = tl.Window(datetime(2015, 1, 1), datetime(2025, 1, 1))
    assert tl.ticks(decade)[0] == "year"
    assert len({u for u, _t in units.values()}) == 4
    # the page's zoom links move the window; zooming in halves it about its centre
    page = c.get(f"/timelines/camera/{camera_ids(placed)[CAM]}",
                 params={"from": "2021-03-14T02:00:00", "to": "2021-03-14T03:00:00"}).text
    assert 'id="zoom-in" href="/timelines/camera/' in page
    assert "from=2021-03-14T02:15:00&amp;to=2021-03-14T02:45:00" in page


def test_a_window_that_makes_no_sense_is_refused_with_a_message(placed: Placed,
                                                                 app: Any) -> None:
    c = client(app, placed.r, "investigator")
    url = f"/api/timelines/camera/{camera_ids(placed)[CAM]}.svg"
    r = c.get(url, params={"from": "2021-03-15", "to": "2021-03-14"})
    assert r.status_code == 400 and "ends before it starts" in r.json()["error"]
    r = c.get(url, params={"from": "yesterday"})
    assert r.status_code == 400 and "not a DVR clock time" in r.json()["error"]
    r = c.get(url, params={"from": "1990-01-01", "to": "2100-01-01"})
    assert r.status_code == 400 and "50 years" in r.json()["error"]
    for edge in ("0001-01-01", "9999-12-31T23:59:59"):
        r = c.get(url, params={"from": edge})
        assert r.status_code == 400 and "outside the years" in r.json()["error"], edge
    assert c.get("/api/timelines/camera/99999999999999999999.svg").status_code == 422
    # a tiny window is widened to a minute rather than refused
    svg = svg_of(c, url + "?from=2021-03-14T02:17:06&to=2021-03-14T02:17:07")
    start = datetime.fromisoformat(svg.get("data-from") or "")
    end = datetime.fromisoformat(svg.get("data-to") or "")
    assert end - start == timedelta(minutes=1)


def test_reviewers_get_403_and_nothing_unblurred_is_shown(placed: Placed, app: Any) -> None:
    cam, fid = camera_ids(placed)[CAM], facility_id(placed)
    urls = ["/timelines", f"/timelines/camera/{cam}", f"/timelines/facility/{fid}",
            "/api/timelines", f"/api/timelines/camera/{cam}.svg",
            f"/api/timelines/facility/{fid}.svg"]
    reviewer = client(app, placed.r, "reviewer")
    for url in urls:
        assert reviewer.get(url).status_code == 403, url
    assert client(app).get(urls[0]).status_code == 401
    for role in ("admin", "investigator", "lawyer"):
        c = client(app, placed.r, role)
        for url in urls:
            r = c.get(url)
            assert r.status_code == 200, (role, url)
            assert "clear" not in r.text and "<img" not in r.text and "<video" not in r.text


def test_thousands_of_segments_render_quickly_and_small() -> None:
    """20,000 segments over two years (a 5-minute clip every ~50 minutes, one copy in ten
    overlapping its neighbour) draw as a few hundred elements, in about half a second."""
    entries = []
    for i in range(20_000):
        start = datetime(2020, 1, 1) + timedelta(minutes=50 * i + (i % 7))
        entries.append(_entry(i, start, 300))
        if i % 10 == 0:
            entries.append(_entry(100_000 + i, start + timedelta(seconds=60), 300))
    entries.sort(key=lambda e: e.clock_start)
    flag_entries(entries)
    rows = [tl.Row("КАМ 01", entries)]
    for window in (tl.window_of(tl.full_window(rows), None, None),
                   tl.Window(datetime(2020, 6, 1), datetime(2020, 7, 1)),
                   tl.Window(datetime(2020, 6, 1, 10), datetime(2020, 6, 1, 12))):
        started = time.perf_counter()
        svg = tl.render(rows, window, label="КАМ 01",
                        zoom_href=lambda w: f"/timelines/camera/1?{w.query()}")
        seconds = time.perf_counter() - started
        root = ET.fromstring(svg)  # noqa: S314 - our own output
        elements = sum(1 for _ in root.iter())
        print(f"{window.seconds / 86400:.2f} days: {seconds * 1000:.0f} ms, "
              f"{elements} elements, {len(svg) / 1024:.0f} KiB")
        assert seconds < 4, seconds  # about 0.5 s on an idle laptop core; the machine is shared
        assert elements < 6000, elements
    whole = tl.render(rows, tl.window_of(tl.full_window(rows), None, None), label="x",
                      zoom_href=lambda w: f"/z?{w.query()}")
    assert 'class="cluster"' in whole, "sub-pixel segments merge into clusters"


def test_the_export_report_carries_each_cameras_timeline(placed: Placed, tmp_path: Path
                                                          ) -> None:
    import subprocess
    import sys

    from strongroom.export.bag import ExportOptions, export

    shas = [placed.shas[n] for n in ("a.mp4", "b.mp4", "d.mp4", "noosd.mp4")]
    export(placed.r.vault, tmp_path, ExportOptions(originals=shas, pdf=True, workers=1))
    bag = tmp_path / "bag"
    pictures = sorted((bag / "data/report/timelines").iterdir())
    assert [p.name for p in pictures] == ["camera-1.svg", "camera-2.svg"]
    parsed = [ET.fromstring(p.read_text("utf-8")) for p in pictures]  # noqa: S314
    labels = [next(g.get("data-camera") for g in svg.iterfind(".//s:g", NS)
                   if g.get("class") == "row") for svg in parsed]
    assert sorted(labels) == sorted([CAM, HOSTILE])
    cam = parsed[labels.index(CAM)]
    assert cam.get("data-clips") == "2", "only the clips in the bag"
    hrefs = {a.get("href") for a in cam.iterfind(".//s:a", NS)}
    assert f"../../originals/{placed.shas['a.mp4']}.mp4#t=0" in hrefs
    assert [r for r in cam.iterfind(".//s:rect", NS) if r.get("class") == "overlap"]
    for lang in ("en", "fr"):
        html = (bag / f"data/report/report.{lang}.html").read_text("utf-8")
        assert html.count("<svg ") == 2 and "<script>alert" not in html
        assert f"../originals/{placed.shas['b.mp4']}.mp4#t=0" in html
        assert (bag / f"data/report/report.{lang}.pdf").stat().st_size > 1000
    r = subprocess.run([sys.executable, str(Path(sys.executable).parent / "bagit.py"),
                        "--validate", str(bag)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_a_case_export_draws_its_incidents_on_the_timeline(placed: Placed, tmp_path: Path
                                                           ) -> None:
    from strongroom.catalogue.cases import add_case, add_to_case
    from strongroom.export.bag import ExportOptions, export

    add_case(placed.r.vault, "Саратов, март 2021")
    add_to_case(placed.r.vault, "Саратов, март 2021", placed.incident)
    export(placed.r.vault, tmp_path, ExportOptions(case="Саратов, март 2021", pdf=False,
                                                   workers=1))
    bag = tmp_path / "bag"
    (picture,) = (bag / "data/report/timelines").iterdir()
    svg = ET.fromstring(picture.read_text("utf-8"))  # noqa: S314 - our own output
    marks = [g for g in svg.iterfind(".//s:g", NS) if g.get("class") == "incident"]
    assert [m.get("data-incident") for m in marks] == [str(placed.incident)]
    links = [a.get("href") for a in svg.iterfind(".//s:a", NS)
             if a.get("class") == "incident-link"]
    assert links == [f"../../originals/{placed.shas['a.mp4']}.mp4#t=1"]
    html = (bag / "data/report/report.fr.html").read_text("utf-8")
    assert "Chronologies selon l" in html and "incident n° " in html


def _entry(i: int, start: datetime, seconds: int = 4) -> Entry:
    return Entry(segment=i, original=f"{i:064x}", start_s=0.0, end_s=float(seconds),
                 clock_start=start, clock_end=start + timedelta(seconds=seconds - 1),
                 confidence=1.0)


def test_the_timeline_in_russian(placed: Placed, app: Any) -> None:
    from review_fixtures import PASSWORD
    from strongroom.review import actions

    placed.r.secrets["sledovatel"] = actions.add_user(placed.r.vault, "sledovatel",
                                                      "investigator", PASSWORD, locale="ru")
    c = client(app, placed.r, "sledovatel")
    cam = camera_ids(placed)[CAM]
    page = c.get(f"/timelines/camera/{cam}").text
    assert "Вне хронологии камер" in page and "крупнее" in page
    assert "часы регистратора" in page and "записей: 3" in page
    assert "пропуск 12 мин 49 с" in page


def test_a_merged_camera_shows_under_the_one_it_was_merged_into(placed: Placed,
                                                                 app: Any) -> None:
    """(Last in the module: it merges the fixture's two cameras.)"""
    from strongroom.catalogue.places import merge_cameras

    ids = camera_ids(placed)
    merge_cameras(placed.r.vault, HOSTILE, CAM)
    c = client(app, placed.r, "investigator")
    r = c.get(f"/timelines/camera/{ids[HOSTILE]}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/timelines/camera/{ids[CAM]}"
    svg = svg_of(c, f"/api/timelines/camera/{ids[CAM]}.svg")
    assert svg.get("data-clips") == "4"
    assert f"/clips/{placed.shas['d.mp4']}?t=0" in {a.get("href")
                                                    for a in svg.iterfind(".//s:a", NS)}
    listed = [cam["label"] for cam in c.get("/api/timelines").json()["cameras"]]
    assert listed == [CAM]
