"""The analysis pipeline on generated DVR footage: real ffmpeg, PyAV, tesseract, PDQ, faiss.

One vault is built and processed per test module (real process pool); tests then read what the
pipeline left in the catalogue, the blob store and the custody log.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conftest import (
    CLI,
    Template,
    built_once,
    cli,
    cli_env,
    connect_catalogue,
    open_vault,
    poll,
)
from strongroom.catalogue.models import (
    Camera,
    CustodyEvent,
    Derivative,
    MediaInfo,
    Original,
    Segment,
    StepRun,
)
from strongroom.ingest import ingest
from strongroom.pipeline.runner import process
from strongroom.testmedia import ClipSpec, generate_clip, reencode_copy, truncate_copy
from strongroom.vault import Vault

CLIPS = [
    ClipSpec(name="cam03_a.mp4", duration=6, camera_label="КАМ 03 ПФРСИ",
             clock_start=datetime(2020, 3, 14, 2, 17, 0)),
    ClipSpec(name="cam03_b.mp4", duration=5, camera_label="КАМ 03 ПФРСИ",
             clock_start=datetime(2020, 3, 14, 2, 31, 12), source="mandelbrot"),
    ClipSpec(name="cam07.mp4", duration=8, camera_label="КАМ 07 ОТБ-1 САРАТОВ",
             clock_start=datetime(2020, 3, 15, 23, 49, 55), clock_format="YYYY/MM/DD",
             audio=True),
    ClipSpec(name="cam11.avi", duration=4, camera_label="КАМ 11 ИК-10",
             clock_start=datetime(2021, 6, 2, 14, 5, 30), clock_format="DD.MM.YYYY",
             codec="mpeg4", source="life", seed=11),
    ClipSpec(name="noosd.mp4", duration=4, camera_label="", clock_start=None, source="life",
             seed=1),
]


@dataclass
class Processed:
    path: Path
    template: Template
    shas: dict[str, str]  # file name → sha256
    media: Path

    def vault(self) -> Vault:
        return open_vault(self.path, self.template.keys)


def build_source(root: Path) -> Path:
    src = root / "usb"
    src.mkdir(parents=True)
    for spec in CLIPS:
        generate_clip(spec, src)
    # the same recording forwarded through a messenger: smaller, lossier, first second cut
    reencode_copy(src / "cam07.mp4", src / "cam07_small.mp4", width=320, trim_start=1.0)
    # a full-size re-post that starts 2 s later, with a channel's watermark across the middle:
    # same camera, overlapping DVR time
    reencode_copy(src / "cam03_a.mp4", src / "cam03_a_reexport.mp4", width=768, crf=33,
                  trim_start=2.0, watermark="@leaks_channel")
    truncate_copy(src / "cam03_b.mp4", src / "cam03_b_truncated.mp4", 0.4)
    (src / "notes.txt").write_text("Камера 03, ПФРСИ — записи с DVR\n", encoding="utf-8")
    return src


def sha_by_name(v: Vault) -> dict[str, str]:
    from strongroom.catalogue.models import Sighting

    with v.catalogue.read() as s:
        rows = s.execute(select(Sighting.rel_path, Sighting.original_sha256)).all()
    return {Path(p).name: sha for p, sha in rows if sha}


@pytest.fixture(scope="module")
def processed(template: Template, tmp_path_factory: pytest.TempPathFactory) -> Processed:
    """Built and processed once per test run (`built_once`: the xdist workers share it);
    the module reads and writes its own copy."""

    def make(root: Path) -> None:
        media = build_source(root)
        path = root / "vault"
        shutil.copytree(template.path, path)
        work = root / "work"
        work.mkdir()
        with open_vault(path, template.keys, work_dir=str(work)) as v:
            ingest(v, media, "test clips")
            report = process(v, workers=2, executor="process")
            shas = sha_by_name(v)
        assert report.tasks == len(shas)
        assert list(work.iterdir()) == [], "plaintext work dirs must be gone after processing"
        (root / "shas.json").write_text(json.dumps(shas))

    built = built_once(tmp_path_factory, "pipeline", make)
    path = tmp_path_factory.mktemp("pipeline") / "vault"
    shutil.copytree(built / "vault", path)
    shas = json.loads((built / "shas.json").read_text())
    return Processed(path, template, shas, built / "usb")


def run_of(v: Vault, sha: str, step: str) -> StepRun:
    with v.catalogue.read() as s:
        row = s.get(StepRun, (sha, step))
        assert row is not None, f"no {step} run for {sha}"
        return row


def test_probe_fills_media_info_and_reports_damaged_and_non_media(processed: Processed) -> None:
    with processed.vault() as v, v.catalogue.read() as s:
        info = {r.original_sha256: r for r in s.scalars(select(MediaInfo))}
        a = info[processed.shas["cam03_a.mp4"]]
        assert (a.width, a.height, a.fps, a.video_codec, a.status) == (768, 576, 25.0, "h264",
                                                                       "ok")
        assert a.duration is not None and abs(a.duration - 6) < 0.2
        c7 = info[processed.shas["cam07.mp4"]]
        assert c7.audio_codec == "aac"
        assert info[processed.shas["cam11.avi"]].video_codec == "mpeg4"
        truncated = processed.shas["cam03_b_truncated.mp4"]
        assert info[truncated].status == "error"
    with processed.vault() as v:
        probe_run = run_of(v, truncated, "probe")
        assert probe_run.status == "error"
        assert probe_run.error and "moov atom not found" in probe_run.error
        assert run_of(v, truncated, "overlay_ocr").error.startswith("probe failed")  # type: ignore[union-attr]
        notes = run_of(v, processed.shas["notes.txt"], "overlay_ocr")
        assert notes.status == "skipped" and notes.result == {"reason": "not a video"}


def test_overlay_ocr_reads_clocks_to_the_second_and_labels_exactly(
        processed: Processed) -> None:
    with processed.vault() as v, v.catalogue.read() as s:
        for spec in CLIPS:
            sha = processed.shas[spec.name]
            segs = s.execute(select(Segment, Camera.label).join(Camera)
                             .where(Segment.original_sha256 == sha)).all()
            if spec.clock_start is None:
                assert segs == []
                run = s.get(StepRun, (sha, "overlay_ocr"))
                assert run is not None and run.status == "ok"
                assert run.result is not None and run.result["overlay"] is False
                continue
            assert len(segs) == 1, spec.name
            seg, label = segs[0]
            assert label == spec.camera_label
            assert seg.clock_start == spec.clock_start, spec.name
            assert seg.clock_end == spec.clock_start + timedelta(seconds=spec.duration - 1)
            assert seg.clock_format == spec.clock_format
            assert seg.confidence == 1.0 and (seg.readings or 0) >= 3


def test_timeline_orders_by_dvr_clock_and_flags_gaps_and_overlaps(
        processed: Processed) -> None:
    out = cli("timeline", processed.path, "--camera", "КАМ 03 ПФРСИ", "--json")
    assert out.returncode == 0, out.stderr
    entries = json.loads(out.stdout)["cameras"]["КАМ 03 ПФРСИ"]
    shas = processed.shas
    assert [e["original"] for e in entries] == [
        shas["cam03_a.mp4"], shas["cam03_a_reexport.mp4"], shas["cam03_b.mp4"]]
    assert entries[0]["clock_start"] == "2020-03-14 02:17:00"
    assert entries[1]["clock_start"] == "2020-03-14 02:17:02"
    assert entries[1]["overlaps"] == [shas["cam03_a.mp4"]]
    assert entries[0]["overlaps"] == [shas["cam03_a_reexport.mp4"]]
    assert entries[2]["gap_before_s"] == pytest.approx(14 * 60 + 7, abs=1)
    everything = json.loads(cli("timeline", processed.path, "--json").stdout)
    assert set(everything["cameras"]) == {"КАМ 03 ПФРСИ", "КАМ 07 ОТБ-1 САРАТОВ", "КАМ 11 ИК-10"}
    missing = cli("timeline", processed.path, "--camera", "КАМ 99")
    assert missing.returncode == 2 and "no segments" in missing.stderr


def test_dupes_groups_reencoded_copies_and_keeps_distinct_clips_apart(
        processed: Processed) -> None:
    out = cli("dupes", processed.path, "--json")
    assert out.returncode == 0, out.stderr
    groups = json.loads(out.stdout)
    shas = processed.shas
    found = sorted(sorted(m["original"] for m in g["members"]) for g in groups)
    assert found == sorted([
        sorted([shas["cam07.mp4"], shas["cam07_small.mp4"]]),
        sorted([shas["cam03_a.mp4"], shas["cam03_a_reexport.mp4"]]),
    ])
    best = {g["best"] for g in groups}
    assert best == {shas["cam07.mp4"], shas["cam03_a.mp4"]}  # full size, higher bitrate
    for g in groups:
        other = next(m for m in g["members"] if m["original"] != g["best"])
        assert other["match_to_best"] >= 0.8 and other["median_distance"] <= 31


def test_proxies_posters_and_thumbnails_are_encrypted_derivatives_on_the_record(
        processed: Processed, tmp_path: Path) -> None:
    with processed.vault() as v, v.catalogue.read() as s:
        derivs = s.scalars(select(Derivative)).all()
        derived_events = s.scalar(select(func.count()).select_from(CustodyEvent)
                                  .where(CustodyEvent.action == "derived"))
        analysed_events = s.scalar(select(func.count()).select_from(CustodyEvent)
                                   .where(CustodyEvent.action == "analysed"))
        # every step run on an original (ok, skipped or failed) is on the record
        assert analysed_events == s.scalar(select(func.count()).select_from(StepRun))
        by = {(d.original_sha256, d.kind): d for d in derivs}
        remux = by[(processed.shas["cam07.mp4"], "proxy")]
        transcode = by[(processed.shas["cam11.avi"], "proxy")]
        assert remux.meta == {"mode": "remux"} and transcode.meta == {"mode": "transcode"}
        assert derived_events == len(derivs)
        for d in (remux, transcode):
            assert d.command is not None and "{original}" in d.command
            assert not any("strongroom-work-" in a for a in d.command)
            blob = (processed.path / "blobs" / d.blob_name[:2] / d.blob_name).read_bytes()
            assert blob.startswith(b"age-encryption.org/v1")
            plain = b"".join(v.read_range(d, 0, d.size))  # chunked: `vault/chunks.py`
            out = tmp_path / f"{d.kind}-{d.id}.mp4"
            out.write_bytes(plain)
            streams = json.loads(subprocess.run(
                ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams",
                 "-show_format", str(out)], capture_output=True, check=True).stdout)
            video = streams["streams"][0]
            assert video["codec_name"] == "h264" and int(video["height"]) <= 720
            # faststart: the index (moov) comes before the media data (mdat)
            assert plain.index(b"moov") < plain.index(b"mdat")
        kinds = {k for (sha, k) in by if sha == processed.shas["cam03_a.mp4"]}
        assert kinds == {"thumbnail", "contact_sheet", "proxy", "poster", "safe_proxy",
                         "safe_poster", "safe_thumb"}
        origs = set(s.scalars(select(Original.sha256)))
        assert {d.original_sha256 for d in derivs} <= origs


def test_contact_sheet_is_blurred_unless_revealed_and_logged(processed: Processed,
                                                             tmp_path: Path) -> None:
    from PIL import Image

    sha = processed.shas["cam07.mp4"]
    out = tmp_path / "sheet.jpg"
    r = cli("contact-sheet", processed.path, sha[:12], "-o", out)
    assert r.returncode == 0, r.stderr
    assert Image.open(out).mode == "L"
    revealed = tmp_path / "revealed.jpg"
    assert cli("contact-sheet", processed.path, sha[:12], "-o", revealed,
               "--reveal").returncode == 0
    img = Image.open(io.BytesIO(revealed.read_bytes()))
    assert img.mode == "RGB" and img.width >= 4 * 320
    with processed.vault() as v, v.catalogue.read() as s:
        views = [json.loads(e.details) for e in s.scalars(
            select(CustodyEvent).where(CustodyEvent.action.in_(("viewed", "revealed")))
            .order_by(CustodyEvent.seq))]
    assert [(d["what"], d["revealed"], d["complete"]) for d in views][-2:] == [
        ("contact_sheet", False, True), ("contact_sheet", True, True)]


def test_process_again_finds_nothing_pending_and_verify_is_clean(processed: Processed) -> None:
    again = cli("process", processed.path, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["tasks"] == 0
    check = cli("verify", processed.path, "--quick", "--json")
    assert check.returncode == 0, check.stdout + check.stderr
    assert json.loads(check.stdout)["warnings"] == []


def test_bumping_a_step_version_reruns_only_that_step(processed: Processed, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from strongroom.pipeline.steps.scenes import ScenesStep

    path = tmp_path / "vault"
    shutil.copytree(processed.path, path)
    monkeypatch.setattr(ScenesStep, "version", "2")
    with open_vault(path, processed.template.keys) as v:
        report = process(v, executor="inline")
        videos = sum(1 for n in processed.shas if n != "notes.txt")
        assert report.ran == {"scenes": videos - 1}  # not the truncated clip: it cannot be probed
        assert run_of(v, processed.shas["cam07.mp4"], "scenes").version == "2"
        assert run_of(v, processed.shas["cam07.mp4"], "keyframes").version == "1"


#: What the kill test has analysed again: a clip with a clock and a label, one with no overlay
#: and the damaged one (an error to record). The others keep their analysis: resuming is the
#: same whether three clips or all of them are pending, and each clip analysed is seconds.
PENDING = ("cam03_a.mp4", "noosd.mp4", "cam03_b_truncated.mp4")


def test_process_resumes_after_sigkill(processed: Processed, tmp_path: Path) -> None:
    path = tmp_path / "vault"
    shutil.copytree(processed.path, path)
    total = _count_runs(path)
    pending = [processed.shas[name] for name in PENDING]
    with open_vault(path, processed.template.keys) as v, v.write() as s:
        # forget their analysis, keep the originals
        s.query(StepRun).filter(StepRun.original_sha256.in_(pending)).delete()
    kept = _count_runs(path)
    assert kept <= total - 3 * len(PENDING)
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.Popen([*CLI, "process", str(path), "--workers", "2"],
                            env=cli_env({"STRONGROOM_WORK_DIR": str(work)}),
                            start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        poll(lambda: _count_runs(path) >= kept + 3 or proc.poll() is not None, timeout=120,
             interval=0.05, what="three step runs recorded")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert kept + 3 <= _count_runs(path) < total, "kill came too late to test"
    again = cli("process", path, "--json", env={"STRONGROOM_WORK_DIR": str(work)})
    # exit 1 when the damaged clip's errors were still pending, i.e. recorded by this run
    assert again.returncode == (1 if json.loads(again.stdout)["errors"] else 0), again.stderr
    assert list(work.iterdir()) == [], "a killed worker's plaintext must be cleaned up"
    with open_vault(path, processed.template.keys) as v, v.catalogue.read() as s:
        got = {(r.original_sha256, r.step, r.status) for r in s.scalars(select(StepRun))}
    with processed.vault() as v, v.catalogue.read() as s:
        want = {(r.original_sha256, r.step, r.status) for r in s.scalars(select(StepRun))}
    assert got == want
    check = cli("verify", path, "--quick", "--json")
    assert check.returncode == 0, check.stdout


def _count_runs(path: Path) -> int:
    try:
        c = connect_catalogue(path)
        try:
            c.execute("PRAGMA busy_timeout = 200")
            return int(c.execute("SELECT count(*) FROM step_run").fetchone()[0])
        finally:
            c.close()
    except Exception:  # busy, or not yet created: nothing counted yet
        return 0


def test_verify_rehashes_derivatives_too(processed: Processed, tmp_path: Path) -> None:
    path = tmp_path / "vault"
    shutil.copytree(processed.path, path)
    with open_vault(path, processed.template.keys) as v, v.catalogue.read() as s:
        poster = s.scalars(select(Derivative).where(Derivative.kind == "poster")).first()
        assert poster is not None
    blob = path / "blobs" / poster.blob_name[:2] / poster.blob_name
    data = bytearray(blob.read_bytes())
    data[-20] ^= 0x01
    blob.chmod(0o600)
    blob.write_bytes(bytes(data))
    r = cli("verify", path, "--json")
    assert r.returncode == 1
    problems = json.loads(r.stdout)["problems"]
    assert [p["subject"] for p in problems] == [
        f"derivative {poster.sha256} (poster of {poster.original_sha256})"]


def test_named_steps_only_and_optional_transcribe_says_why_it_is_off(
        processed: Processed, tmp_path: Path) -> None:
    path = tmp_path / "vault"
    shutil.copytree(processed.path, path)
    r = cli("process", path, "--steps", "transcribe", "--workers", "1", "--json",
            env={"STRONGROOM_WHISPER_MODEL": ""})
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["tasks"] == 0 and "no model configured" in data["off"]["transcribe"]
    # configured, but not a model: a clear per-original error, never a download
    missing = cli("process", path, "--steps", "transcribe", "--workers", "1", "--json",
                  env={"STRONGROOM_WHISPER_MODEL": str(tmp_path / "nowhere")})
    assert missing.returncode == 1, missing.stderr  # steps failed
    errors = {e["original"]: e["error"] for e in json.loads(missing.stdout)["error_list"]}
    assert "not a faster-whisper model directory" in errors[processed.shas["cam07.mp4"]]
    assert errors[processed.shas["cam03_b_truncated.mp4"]].startswith("probe failed")
    assert not any("strongroom-work-" in e for e in errors.values()), "private path leaked"
    with open_vault(path, processed.template.keys) as v:
        # clips without audio are skipped for the right reason
        assert run_of(v, processed.shas["cam03_a.mp4"], "transcribe").result == {
            "reason": "no audio track"}
    bad = cli("process", path, "--steps", "probe,ocr")
    assert bad.returncode == 2 and "unknown step(s): ocr" in bad.stderr


def test_cameras_come_from_labels_and_map_to_facilities(processed: Processed,
                                                         tmp_path: Path) -> None:
    path = tmp_path / "vault"
    shutil.copytree(processed.path, path)
    listed = json.loads(cli("cameras", "list", path, "--json").stdout)
    assert {c["label"]: c["segments"] for c in listed} == {
        "КАМ 03 ПФРСИ": 3, "КАМ 07 ОТБ-1 САРАТОВ": 2, "КАМ 11 ИК-10": 1}
    r = cli("cameras", "map", path, "КАМ 07 ОТБ-1 САРАТОВ", "--facility", "ОТБ-1 Саратов",
            "--type", "ОТБ", "--region", "Саратовская область")
    assert r.returncode == 0, r.stderr
    listed = json.loads(cli("cameras", "list", path, "--json").stdout)
    assert [c["facility"] for c in listed] == [None, "ОТБ-1 Саратов", None]
    log = json.loads(cli("log", path, "--action", "annotated", "--json").stdout)
    assert log[-1]["details"]["facility"] == "ОТБ-1 Саратов"
    unknown = cli("cameras", "map", path, "КАМ 99", "--facility", "X")
    assert unknown.returncode == 2 and "no camera 'КАМ 99'" in unknown.stderr


def test_cameras_rename_and_merge_are_logged_keep_the_ocr_label_and_verify(
        processed: Processed, tmp_path: Path) -> None:
    """People correct what OCR read: a rename and a merge each append a custody event, the
    timeline and `cameras list` show the corrected camera beside what OCR read, a clip read
    later with the old label lands on the renamed camera, and an edit by hand is caught."""
    from conftest import sql

    path = tmp_path / "vault"
    shutil.copytree(processed.path, path)
    r = cli("cameras", "rename", path, "КАМ 11 ИК-10", "КАМ 11  ИК-10 Владимир", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"camera": "КАМ 11 ИК-10 Владимир", "was": "КАМ 11 ИК-10",
                                    "ocr_label": "КАМ 11 ИК-10"}
    r = cli("cameras", "merge", path, "КАМ 03 ПФРСИ", "КАМ 07 ОТБ-1 САРАТОВ")
    assert r.returncode == 0, r.stderr
    listed = {c["label"]: c for c in json.loads(cli("cameras", "list", path, "--json").stdout)}
    assert listed["КАМ 11 ИК-10 Владимир"]["ocr_label"] == "КАМ 11 ИК-10"
    assert listed["КАМ 03 ПФРСИ"]["merged_into"] == "КАМ 07 ОТБ-1 САРАТОВ"
    cams = json.loads(cli("timeline", path, "--json").stdout)["cameras"]
    assert set(cams) == {"КАМ 07 ОТБ-1 САРАТОВ", "КАМ 11 ИК-10 Владимир"}
    assert {e["read_as"] for e in cams["КАМ 07 ОТБ-1 САРАТОВ"]} == {
        "КАМ 03 ПФРСИ", "КАМ 07 ОТБ-1 САРАТОВ"}
    assert all(e["label_reads"] for es in cams.values() for e in es)
    events = json.loads(cli("log", path, "--action", "annotated", "--json").stdout)
    assert [(e["details"]["change"], e["details"]["camera"], e["details"]["ocr_label"])
            for e in events] == [("renamed", "КАМ 11 ИК-10 Владимир", "КАМ 11 ИК-10"),
                                 ("merged", "КАМ 03 ПФРСИ", "КАМ 03 ПФРСИ")]
    assert json.loads(cli("verify", path, "--json").stdout)["ok"] is True

    for args, message in (
            (("merge", "КАМ 07 ОТБ-1 САРАТОВ", "КАМ 07 ОТБ-1 САРАТОВ"), "into itself"),
            (("merge", "КАМ 11 ИК-10 Владимир", "КАМ 03 ПФРСИ"), "is merged into"),
            (("rename", "КАМ 07 ОТБ-1 САРАТОВ", "КАМ 03 ПФРСИ"), "strongroom cameras merge"),
            (("rename", "КАМ 07 ОТБ-1 САРАТОВ", " \t"), "not empty"),
            (("map", "КАМ 03 ПФРСИ", "--facility", "X"), "is merged into"),
            (("rename", "КАМ 99", "КАМ 98"), "no camera 'КАМ 99'")):
        bad = cli("cameras", args[0], path, *args[1:])
        assert bad.returncode == 2 and message in bad.stderr, (args, bad.stderr)
    assert len(json.loads(cli("log", path, "--action", "annotated", "--json").stdout)) == 2

    # a clip read later with the label OCR read before lands on the renamed camera
    media = tmp_path / "usb2"
    media.mkdir()
    generate_clip(ClipSpec(name="cam11_b.avi", duration=4, camera_label="КАМ 11 ИК-10",
                           clock_start=datetime(2021, 6, 2, 15, 0, 0), source="life",
                           seed=12), media)
    assert cli("ingest", path, media, "-a", "stick 2").returncode == 0
    assert cli("process", path, "--steps", "probe,overlay_ocr").returncode == 0
    cams = json.loads(cli("timeline", path, "--json").stdout)["cameras"]
    assert len(cams["КАМ 11 ИК-10 Владимир"]) == 2
    assert json.loads(cli("verify", path, "--json").stdout)["ok"] is True

    # the rows are the record's: undoing a merge or a rename by hand is a named problem
    sql(path, "UPDATE camera SET merged_into=NULL WHERE label='КАМ 03 ПФРСИ'")
    sql(path, "UPDATE camera SET read_as=NULL WHERE label='КАМ 11 ИК-10 Владимир'")
    report = json.loads(cli("verify", path, "--json").stdout)
    found = {(p["subject"], p["message"].split()[1]) for p in report["problems"]}
    assert ("camera 'КАМ 03 ПФРСИ'", "merged_into") in found, report["problems"]
    assert ("camera 'КАМ 11 ИК-10 Владимир'", "read_as") in found, report["problems"]


def test_verify_catches_edited_analysis_results_and_derivatives(processed: Processed,
                                                                tmp_path: Path) -> None:
    """Step results (clock readings, labels) and derivative rows are on the record: editing
    one in the catalogue is a named problem."""
    from conftest import sql
    from strongroom.custody.verify import verify

    path = tmp_path / "vault"
    shutil.copytree(processed.path, path)
    v = open_vault(path, processed.template.keys)
    try:
        assert verify(v, fixity=False).ok
        sha = processed.shas["cam03_a.mp4"]
        sql(path, "UPDATE step_run SET result=json_set(result, '$.tampered', 1) "
                  "WHERE original_sha256=? AND step='overlay_ocr'", (sha,))
        sql(path, "UPDATE derivative SET mime='image/png' WHERE id=(SELECT min(id) FROM "
                  "derivative)")
        found = [f"{p.subject}: {p.message}" for p in verify(v, fixity=False).problems]
        assert any("step overlay_ocr" in p and "result no longer matches" in p
                   for p in found), found
        assert any(p.startswith("derivative") for p in found), found
    finally:
        v.close()


@pytest.mark.parametrize(("edit", "needle"), [
    ("UPDATE segment SET clock_start='2019-01-01 00:00:00' WHERE id=(SELECT min(id) FROM "
     "segment)", "(segment)"),
    ("DELETE FROM segment WHERE id=(SELECT min(id) FROM segment)", "(segment)"),
    ("UPDATE camera SET label='КАМ 99' WHERE id=(SELECT min(id) FROM camera)", "(segment)"),
    ("UPDATE media_info SET duration=999", "(media_info)"),
    ("DELETE FROM frame_hash WHERE id=(SELECT min(id) FROM frame_hash)", "(frame_hash)"),
])
def test_verify_catches_edited_timeline_rows(processed: Processed, tmp_path: Path, edit: str,
                                             needle: str) -> None:
    """The timeline's DVR clock times, cameras, media facts and frame hashes are evidence: the
    `analysed` event carries a digest of the rows each step made."""
    from conftest import sql
    from strongroom.custody.verify import verify

    path = tmp_path / "vault"
    shutil.copytree(processed.path, path)
    v = open_vault(path, processed.template.keys)
    try:
        assert verify(v, fixity=False).ok
        sql(path, edit)
        found = [f"{p.subject}: {p.message}" for p in verify(v, fixity=False).problems]
        assert any(needle in p and "no longer match" in p for p in found), found
    finally:
        v.close()
