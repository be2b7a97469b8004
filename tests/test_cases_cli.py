"""Incidents and cases from the command line (issue 15, point 3): `incident add` by clip offsets
or DVR clock times, `case add`, `case add-incident`, then `export --case` without the web app.
Each change is an `annotated` event whose digest `verify` checks."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select, update

from conftest import Template, cli, open_vault
from review_fixtures import build
from strongroom.catalogue.models import CustodyEvent, Incident
from strongroom.export.verifier import verify_bag


@dataclass
class Clips:
    path: Path
    template: Template
    shas: list[str]


@pytest.fixture(scope="module")
def clips(template: Template, tmp_path_factory: pytest.TempPathFactory) -> Clips:
    """Three clips read by the overlay step; clip N's DVR clock starts at
    2021-03-14 02:1(6+N):05 (review_fixtures: the vault test_facilities.py starts from)."""
    r = build(template, tmp_path_factory, "cases", "probe,overlay_ocr")
    r.vault.close()
    return Clips(r.path, template, r.clips)


@pytest.fixture
def vault(clips: Clips, tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "vault"
    shutil.copytree(clips.path, path)
    yield path


def js(*args: str | Path) -> dict[str, object]:
    r = cli(*args, "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert isinstance(data, dict)
    return data


def _clip_with_clock(vault: Path, clips: Clips) -> tuple[str, str]:
    """A clip and the DVR time its clock shows one second in."""
    from strongroom.catalogue.models import Segment

    with open_vault(vault, clips.template.keys) as v, v.catalogue.read() as s:
        seg = s.scalars(select(Segment).where(Segment.clock_start.is_not(None))
                        .order_by(Segment.original_sha256)).first()
        assert seg is not None and seg.clock_start is not None
        return seg.original_sha256, seg.clock_start.strftime("%Y-%m-%d %H:%M:%S")


def test_an_incident_by_clip_offsets_gets_its_dvr_time_and_is_logged(vault: Path,
                                                                     clips: Clips) -> None:
    sha, clock = _clip_with_clock(vault, clips)
    data = js("incident", "add", vault, sha[:12], "--from", "0:00", "--to", "0:02",
              "--type", "beating", "--type", "humiliation", "--severity", "4",
              "--description", "Избиение заключённого в коридоре")
    assert data["original"] == sha and data["start_s"] == 0 and data["end_s"] == 2
    assert data["dvr_from"] == clock and data["abuse_types"] == ["beating", "humiliation"]
    assert "КАМ" in str(data["title"])
    with open_vault(vault, clips.template.keys) as v:
        with v.catalogue.read() as s:
            last = s.scalars(select(CustodyEvent).order_by(CustodyEvent.seq.desc())).first()
            assert last is not None and last.action == "annotated"
            assert last.subject == f"incident:{data['incident']}"
            assert "Избиение" not in last.details, "the text stays out of the log"
        assert v.verify(fixity=False).ok
        with v.write(checkpoint=False) as s:  # an edit around the door is caught
            s.execute(update(Incident).values(description="nothing happened"))
        report = v.verify(fixity=False)
    assert not report.ok and any("edited by hand" in p.message for p in report.problems)


def test_an_incident_by_dvr_clock_times_maps_them_to_the_clip(vault: Path, clips: Clips
                                                              ) -> None:
    from datetime import datetime, timedelta

    sha, clock = _clip_with_clock(vault, clips)
    start = datetime.strptime(clock, "%Y-%m-%d %H:%M:%S")
    later = (start + timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S")
    data = js("incident", "add", vault, sha, "--dvr-from", clock, "--dvr-to", later)
    assert data["dvr_from"] == clock and data["dvr_to"] in (later, clock)
    assert 0 <= float(str(data["start_s"])) < 1.0 < float(str(data["end_s"])) <= 3.0
    never = (start - timedelta(hours=5)).strftime("%Y-%m-%d %H:%M:%S")
    r = cli("incident", "add", vault, sha, "--dvr-from", never, "--dvr-to", clock)
    assert r.returncode == 2 and "never shows" in r.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--from", "1", "--dvr-from", "2021-03-14 02:17:05", "--to", "2"], "either as"),
    (["--from", "2", "--to", "1"], "before the start"),
    (["--from", "abc", "--to", "1"], "not a time"),
    (["--from", "0", "--to", "-1"], "not a time"),
    (["--from", "0", "--to", "1", "--dvr-to", "yesterday"], "DVR clock time"),
    (["--from", "0", "--to", "1", "--severity", "9"], "--severity"),
])
def test_bad_incident_input_is_one_clear_error_and_records_nothing(
        vault: Path, clips: Clips, args: list[str], message: str) -> None:
    sha, _clock = _clip_with_clock(vault, clips)
    before = _events(vault, clips)
    r = cli("incident", "add", vault, sha, *args)
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and _events(vault, clips) == before
    unknown = cli("incident", "add", vault, "0" * 12, "--from", "0", "--to", "1")
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr


def _events(vault: Path, clips: Clips) -> int:
    with open_vault(vault, clips.template.keys) as v, v.catalogue.read() as s:
        return len(s.scalars(select(CustodyEvent.seq)).all())


def test_a_case_of_incidents_exports_without_the_web_app(vault: Path, clips: Clips,
                                                         tmp_path: Path) -> None:
    sha, _clock = _clip_with_clock(vault, clips)
    other = next(s for s in clips.shas if s != sha)
    first = js("incident", "add", vault, sha, "--from", "0", "--to", "2", "--type", "beating",
               "--description", "Избиение")
    second = js("incident", "add", vault, other, "--from", "1", "--to", "3",
                "--description", "Угрозы")
    case = js("case", "add", vault, "Саратов ОТБ-1", "--description", "for the prosecutor")
    assert case["purpose"] == "prosecution"
    for inc in (first, second):
        added = js("case", "add-incident", vault, "Саратов ОТБ-1", str(inc["incident"]))
    assert added["incidents"] == 2
    again = cli("case", "add-incident", vault, "Саратов ОТБ-1", str(first["incident"]))
    assert again.returncode == 2 and "already in" in again.stderr
    dup = cli("case", "add", vault, "Саратов ОТБ-1")
    assert dup.returncode == 2 and "already a case" in dup.stderr
    out = tmp_path / "handover"
    r = cli("export", vault, "--case", "Саратов ОТБ-1", "--to", out, "--no-pdf")
    assert r.returncode == 0, r.stderr
    bag = next(p for p in out.iterdir() if p.is_dir())
    assert verify_bag(bag).ok
    text = "".join(p.read_text("utf-8", "replace") for p in bag.rglob("*.json"))
    assert "Избиение" in text and "Угрозы" in text
    assert sorted(p.name.split(".")[0] for p in (bag / "data" / "originals").iterdir()) == \
        sorted([sha, other])
    with open_vault(vault, clips.template.keys) as v:
        assert v.verify(fixity=False).ok


def test_an_incidents_history_shows_how_its_description_evolved(vault: Path,
                                                                clips: Clips) -> None:
    """Each change keeps the version it made, by whom and when, checked against the digest
    the signed log holds; a version edited by hand no longer matches."""
    from strongroom.catalogue.models import Revision

    sha, _clock = _clip_with_clock(vault, clips)
    made = js("incident", "add", vault, sha, "--from", "0", "--to", "1",
              "--description", "Избиение у двери")
    n = str(made["incident"])
    changed = js("incident", "edit", vault, n, "--description",
                 "Избиение у двери камеры 3, двое сотрудников", "--severity", "4")
    assert changed["changed"] == ["description", "severity"]
    nothing = cli("incident", "edit", vault, n, "--severity", "4")
    assert nothing.returncode == 2 and "nothing to change" in nothing.stderr
    versions = js("incident", "history", vault, n)["versions"]
    assert isinstance(versions, list) and len(versions) == 2
    assert [v["change"] for v in versions] == ["made", "description+severity"]
    assert [v["view"]["description"] for v in versions] == [
        "Избиение у двери", "Избиение у двери камеры 3, двое сотрудников"]
    assert all(v["matches_log"] for v in versions)
    text = cli("incident", "history", vault, n).stdout
    assert "двое сотрудников" in text and "DOES NOT MATCH" not in text
    with open_vault(vault, clips.template.keys) as v:
        assert v.verify(fixity=False).ok
        with v.write(checkpoint=False) as s:
            first = s.scalars(select(Revision).where(Revision.row_id == made["incident"],
                                                     Revision.kind == "incident")
                              .order_by(Revision.event_seq)).first()
            assert first is not None
            first.view = {**(first.view or {}), "description": "ничего не было"}
    assert "DOES NOT MATCH THE LOG" in cli("incident", "history", vault, n).stdout
    with open_vault(vault, clips.template.keys) as v:
        report = v.verify(fixity=False)
    assert not report.ok and any("history was edited" in p.message for p in report.problems)


def test_people_links_and_status_from_the_command_line(vault: Path, clips: Clips) -> None:
    """`incident link` (the other camera's stretch at the same DVR time), `incident
    add-person` (made when new), `person add --identity-stdin` (sealed, never listed),
    `incident edit --status`, `case add --recipient`: each logged; bad input refused."""
    made = js("incident", "add", vault, clips.shas[0][:12], "--from", "0", "--to", "2")
    n = made["incident"]
    linked = js("incident", "link", vault, str(n), clips.shas[1][:12])
    assert linked["original"] == clips.shas[1]
    added = js("incident", "add-person", vault, str(n), "Victim 12", "--role", "victim")
    assert added["new_person"] is True
    sealed = cli("person", "add", vault, "Witness 3", "--role", "witness", "--identity-stdin",
                 "--json", input="Петров Пётр\n")
    assert sealed.returncode == 0 and json.loads(sealed.stdout)["identity_recorded"] is True
    listed = cli("person", "list", vault)
    assert "Victim 12" in listed.stdout and "Witness 3" in listed.stdout
    assert "Петров" not in listed.stdout and "identity sealed" in listed.stdout
    assert js("incident", "edit", vault, str(n), "--status", "verified")["changed"] == [
        "status"]
    case = js("case", "add", vault, "Handover 1", "--recipient", "Parquet de Paris")
    assert case["case"]
    for bad, message in (
            (("incident", "edit", vault, str(n), "--status", "solved"), "unknown status"),
            (("incident", "edit", vault, str(n), "--facility", "nowhere"), "no facility"),
            (("incident", "add-person", vault, str(n), "victim 12"), "already in incident"),
            (("person", "add", vault, "VICTIM 12"), "taken"),
            (("incident", "link", vault, str(n), clips.shas[1][:12]), "already shows")):
        r = cli(*bad)
        assert r.returncode != 0 and message in r.stderr, (bad, r.stderr)
    assert json.loads(cli("verify", vault, "--json").stdout)["ok"] is True
