"""Slashed dates whose day and month could be either way round (issue 12): 06/05/2021 is the
6th of May or June the 5th, and a clip whose readings are all like it cannot tell. The
recorder prints every date the same way: its clips with a day above 12 show the order, and
`process` reads the waiting clips again in that order — never when the vault's clips show
both orders."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import select

from conftest import cli
from strongroom import cctv
from strongroom.catalogue import date_order
from strongroom.catalogue.models import Original, Segment, StepRun
from strongroom.catalogue.timeline import timeline, timelines_text
from strongroom.custody.verify import verify
from strongroom.ingest import ingest
from strongroom.pipeline.runner import process
from strongroom.vault import Vault

STYLE = cctv.Style(clock_format="MM/DD/YYYY hh:mm:ss AM/PM", size=24, font="DejaVuSans",
                   decoration="box", clock_position="top-left", label_position="bottom-left")
CLIPS = {"a.mp4": datetime(2021, 6, 13, 14, 0, 5),  # day 13: month first, beyond doubt
         "b.mp4": datetime(2021, 6, 14, 9, 30, 0),
         "c.mp4": datetime(2021, 6, 5, 16, 44, 36)}  # 06/05: either way round


def _shas(vault: Vault) -> dict[str, str]:
    from strongroom.catalogue.models import Sighting

    with vault.catalogue.read() as s:
        return {Path(path).name: sha for path, sha in s.execute(
            select(Sighting.rel_path, Sighting.original_sha256))}


def _clock_start(vault: Vault, sha: str) -> datetime | None:
    with vault.catalogue.read() as s:
        return s.scalar(select(Segment.clock_start).where(Segment.original_sha256 == sha,
                                                          Segment.clock_start.is_not(None)))


def test_a_date_either_way_round_takes_the_order_the_vaults_other_clips_show(
        vault: Vault, tmp_path: Path) -> None:
    source = tmp_path / "usb"
    source.mkdir()
    for name, start in CLIPS.items():
        cctv.make_clip(cctv.ClipSpec(name=name, duration=4.0, clock_start=start, style=STYLE,
                                     label="CAM 1", size=(704, 576), figures=()),
                       source / name)
    ingest(vault, source, "USB stick 3")
    shas = _shas(vault)

    report = process(vault, steps=["probe", "overlay_ocr"], executor="inline")
    assert report.read_again_for_date_order == 1, report.to_text()
    assert report.date_orders == {"??/??/YYYY on CAM 1": "MM/DD (shown by 2 clips)"}
    assert "read again: 1 clip(s)" in report.to_text()
    start = _clock_start(vault, shas["c.mp4"])
    assert start is not None and start.date() == date(2021, 6, 5), start
    with vault.catalogue.read() as s:
        data = s.get(StepRun, (shas["c.mp4"], "overlay_ocr")).result  # type: ignore[union-attr]
        assert data["status"] == "placed" and "date_order_from_other_clips" in data["flags"]
        assert data["date_order"] == {"shape": "??/??/YYYY", "order": "MM/DD", "clips": 2,
                                      "key": "??/??/YYYY on CAM 1",
                                      "shown_by": sorted([shas["a.mp4"], shas["b.mp4"]])}
        assert "date order MM/DD as 2 other clips show it" in timelines_text(
            timeline(s).cameras)

    # nothing waits any more: a second run reads nothing again
    again = process(vault, steps=["probe", "overlay_ocr"], executor="inline")
    assert again.tasks == 0 and again.read_again_for_date_order == 0
    # the clip read again is an analysis like any other: logged, and the log verifies
    report_verify = verify(vault, fixity=False)
    assert report_verify.ok, report_verify.problems

    # a clip turns up that shows the other order (14/06): the order is no longer known, and
    # the clip placed by it is read again and left unplaced — no date a month off
    with vault.catalogue.write() as s:
        run = s.get(StepRun, (shas["b.mp4"], "overlay_ocr"))
        assert run is not None and run.result is not None
        run.result = {**run.result, "readings": [[0.0, "2021-06-14 09:30:00",
                                                  "DD/MM/YYYY 12h"]]}
    assert date_order.infer(vault) == {}
    assert date_order.waiting(vault, {}) == [shas["c.mp4"]]
    third = process(vault, steps=["probe", "overlay_ocr"], executor="inline")
    assert third.read_again_for_date_order == 1
    assert _clock_start(vault, shas["c.mp4"]) is None
    with vault.catalogue.read() as s:
        data = s.get(StepRun, (shas["c.mp4"], "overlay_ocr")).result  # type: ignore[union-attr]
        assert data["status"] == "date_ambiguous" and data["date_order"] is None
        assert s.scalar(select(Original.sha256).where(Original.sha256 == shas["c.mp4"]))


def test_one_clip_is_not_enough_to_decide_an_order_but_a_person_can_say_it(
        vault: Vault, vault_path: Path, tmp_path: Path) -> None:
    source = tmp_path / "usb"
    source.mkdir()
    for name in ("a.mp4", "c.mp4"):
        cctv.make_clip(cctv.ClipSpec(name=name, duration=3.0, clock_start=CLIPS[name],
                                     style=STYLE, label="CAM 1", size=(704, 576), figures=()),
                       source / name)
    ingest(vault, source, "USB stick 4")
    report = process(vault, steps=["probe", "overlay_ocr"], executor="inline")
    assert report.read_again_for_date_order == 0 and report.date_orders == {}
    assert _clock_start(vault, _shas(vault)["c.mp4"]) is None
    # the timeline lists it unplaced, with both dates it could be, for a person to decide
    with vault.catalogue.read() as s:
        text = timelines_text(timeline(s).cameras, timeline(s).no_clock)
    assert re.search(r"\(date ambiguous: 2021-05-06 16:44:3\d or 2021-06-05 16:44:3\d, and no "
                     r"other clip shows which\)", text), text

    # `clocks orders` says what is known; a person who knows the recorder says the order
    r = cli("clocks", "orders", vault_path)
    assert r.returncode == 0, r.stderr
    assert ("??/??/YYYY: 0 clip(s) show DD/MM, 1 clip(s) show MM/DD; order ? (not known" in
            r.stdout and "1 clip(s) unplaced for want of one" in r.stdout), r.stdout
    r = cli("clocks", "order", vault_path, "DD/MM")  # a clip shows the other order
    assert r.returncode == 2 and "1 clip(s) of this vault show MM/DD" in r.stderr, r.stderr
    r = cli("clocks", "order", vault_path, "sideways")
    assert r.returncode == 2 and "DD/MM, MM/DD or auto" in r.stderr, r.stderr
    r = cli("clocks", "order", vault_path, "MM/DD")
    assert r.returncode == 0, r.stderr
    report = process(vault, steps=["probe", "overlay_ocr"], executor="inline")
    assert report.read_again_for_date_order == 1
    start = _clock_start(vault, _shas(vault)["c.mp4"])
    assert start is not None and start.date() == date(2021, 6, 5), start
    with vault.catalogue.read() as s:
        data = s.get(StepRun, (_shas(vault)["c.mp4"], "overlay_ocr")).result  # type: ignore
        assert data["date_order"]["set_by"] and data["date_order"]["event"]
        assert re.search(r"date order MM/DD as .+ said \(custody event \d+\)",
                         timelines_text(timeline(s).cameras))
    annotated = json.loads(cli("log", vault_path, "--action", "annotated", "--json").stdout)
    assert [(e["subject"], e["details"]["order"]) for e in annotated] == [
        ("date_order:??/??/YYYY", "MM/DD")]
    # taken back: one clip is not enough for the clips to decide, so it is unplaced again
    assert cli("clocks", "order", vault_path, "auto").returncode == 0
    assert cli("clocks", "order", vault_path, "auto").returncode == 2  # already so
    assert process(vault, steps=["probe", "overlay_ocr"],
                   executor="inline").read_again_for_date_order == 1
    assert _clock_start(vault, _shas(vault)["c.mp4"]) is None
    assert verify(vault, fixity=False).ok
