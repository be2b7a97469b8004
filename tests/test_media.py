"""The media layer: the external-binary runner, ffprobe facts, clock parsing and fitting."""

from __future__ import annotations

import math
import sys
from datetime import datetime
from pathlib import Path

import pytest

from strongroom.errors import MediaError
from strongroom.media.overlay import ClockReading, fit_segments, parse_clock
from strongroom.media.probe import probe
from strongroom.media.run import run_tool
from strongroom.testmedia import ClipSpec, generate_clip, truncate_copy


def test_run_tool_keeps_stderr_tail_in_the_error() -> None:
    with pytest.raises(MediaError, match=r"exit 3\): first \| last line"):
        run_tool([sys.executable, "-c",
                  "import sys; print('first', file=sys.stderr); "
                  "print('last line', file=sys.stderr); sys.exit(3)"])


def test_run_tool_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    import psutil

    from conftest import poll

    marker = tmp_path / "child-alive"
    script = (f"import subprocess, sys, time; subprocess.Popen(['sh', '-c', "
              f"'sleep 3; touch {marker}']); time.sleep(30)")
    with pytest.raises(MediaError, match="timed out after 1 s"):
        run_tool([sys.executable, "-c", script], timeout=1)

    def survivors() -> list[psutil.Process]:
        """The grandchild `sh` (its command line names the marker), unless dead or a zombie."""
        alive = []
        for p in psutil.process_iter():
            try:
                if str(marker) in " ".join(p.cmdline()) and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return alive

    # The group is killed before run_tool returns; allow the kernel a moment to deliver it,
    # rather than sleeping past the grandchild's 3 s to see whether it touches the marker.
    poll(lambda: not survivors(), timeout=2, what="the grandchild to die with its group")
    assert not marker.exists(), "a grandchild survived the timeout"


def test_run_tool_memory_limit_stops_a_runaway_tool() -> None:
    with pytest.raises(MediaError, match="failed"):
        run_tool([sys.executable, "-c", "b = bytearray(2 * 1024**3)"], memory=512 * 1024**2)


def test_run_tool_cpu_limit_is_reported() -> None:
    with pytest.raises(MediaError, match="CPU time limit"):
        run_tool([sys.executable, "-c", "while True: pass"], cpu_seconds=1, timeout=30)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clips")
    return generate_clip(ClipSpec(name="c.mp4", duration=3, camera_label="КАМ 01",
                                  clock_start=datetime(2020, 1, 2, 3, 4, 5), audio=True), out)


def test_probe_reads_the_facts(clip: Path) -> None:
    facts, argv = probe(clip)
    assert facts.status == "ok"
    assert (facts.width, facts.height, facts.fps) == (768, 576, 25.0)
    assert facts.video_codec == "h264" and facts.audio_codec == "aac" and facts.has_audio
    assert facts.duration is not None and 2.9 < facts.duration < 3.2
    assert "mov" in (facts.container or "") and facts.bitrate
    assert argv[0].endswith("ffprobe") and argv[-1] == str(clip)


def test_probe_truncated_file_gives_a_clear_error(clip: Path, tmp_path: Path) -> None:
    broken = truncate_copy(clip, tmp_path / "broken.mp4", 0.5)
    with pytest.raises(MediaError, match=r"moov atom not found|Invalid data"):
        probe(broken)


def test_probe_text_file_is_not_media(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("Камера 03, ПФРСИ\n" * 20, encoding="utf-8")
    facts, _ = probe(notes)
    assert facts.status == "not_media" and not facts.has_video


@pytest.mark.parametrize(("text", "expected", "fmt"), [
    ("14-03-2020 02:17:05", datetime(2020, 3, 14, 2, 17, 5), "DD-MM-YYYY"),
    ("2020/03/14 02:17:05", datetime(2020, 3, 14, 2, 17, 5), "YYYY/MM/DD"),
    ("14.03.2020 02:17:05", datetime(2020, 3, 14, 2, 17, 5), "DD.MM.YYYY"),
    ("14.03.2020 Сб 02:17:05", datetime(2020, 3, 14, 2, 17, 5), "DD.MM.YYYY"),
    ("2020-03-14 SAT 23:59:59", datetime(2020, 3, 14, 23, 59, 59), "YYYY-MM-DD"),
    ("I4-O3-2O2O O2:I7:O5", datetime(2020, 3, 14, 2, 17, 5), "DD-MM-YYYY"),  # OCR look-alikes
    ("03/14/2020 02:17:05 PM", datetime(2020, 3, 14, 14, 17, 5), "MM/DD/YYYY 12h"),
    ("03/14/2020 02:17:05 РМ", datetime(2020, 3, 14, 14, 17, 5), "MM/DD/YYYY 12h"),  # Cyrillic
    ("14 мар 2020 02:17:05", datetime(2020, 3, 14, 2, 17, 5), "DD Mon YYYY"),
    ("Сб 14 МАР 2020 02:17:05", datetime(2020, 3, 14, 2, 17, 5), "DD Mon YYYY"),
    ("14 MAP 2020 02:17:05", datetime(2020, 3, 14, 2, 17, 5), "DD Mon YYYY"),  # Latin look-alikes
    ("14 мая 2021 10:00:00", datetime(2021, 5, 14, 10, 0, 0), "DD Mon YYYY"),
    ("14 March 2020 23:59:59", datetime(2020, 3, 14, 23, 59, 59), "DD Mon YYYY"),
    ("Sat Mar 14 2020 01:02:03 PM", datetime(2020, 3, 14, 13, 2, 3), "Mon DD YYYY 12h"),
    ("Mar 14, 2020 12:00:00 AM", datetime(2020, 3, 14, 0, 0, 0), "Mon DD YYYY 12h"),
])
def test_parse_clock_formats(text: str, expected: datetime, fmt: str) -> None:
    assert parse_clock(text) == (expected, fmt)


@pytest.mark.parametrize("text", ["КАМ 03 ПФРСИ", "", "14 кот 2020 02:17:05",
                                  "32-13-2020 25:61:00", "12:00:00",
                                  "14-03/2020 02:17:05"])
def test_parse_clock_rejects_what_is_not_a_clock(text: str) -> None:
    assert parse_clock(text) is None


def _r(t: float, clock: datetime) -> ClockReading:
    return ClockReading(t, clock, "DD-MM-YYYY")


def test_fit_segments_reads_the_clock_to_the_second_and_rejects_an_outlier() -> None:
    start = datetime(2020, 3, 15, 23, 59, 58)  # crosses midnight
    from datetime import timedelta

    rs = [_r(t, start + timedelta(seconds=int(0.4 + t))) for t in (0.0, 1.5, 3.0, 4.5, 6.0)]
    rs.append(_r(2.2, datetime(2020, 8, 15, 23, 59, 58)))  # a misread digit
    segs, rejected = fit_segments(rs, duration=8.0)
    assert rejected == 1 and len(segs) == 1
    s = segs[0]
    # the clock's phase (0.4 s into its second at t = 0) is pinned to [0, 0.5) by the reads:
    # the last frame (t ≈ 8) shows start + 8 s
    assert s.clock_start == start and s.clock_end == start + timedelta(seconds=8)
    assert 0.0 <= s.phase < 0.5
    assert (s.start_s, s.end_s, s.readings) == (0.0, 8.0, 5)
    assert s.confidence == pytest.approx(5 / 6, abs=0.01)


def test_fit_segments_splits_where_the_clock_jumps() -> None:
    from datetime import timedelta

    a, b = datetime(2020, 1, 1, 10, 0, 0), datetime(2020, 1, 1, 14, 30, 0)
    rs = [_r(t, a + timedelta(seconds=t)) for t in (0, 2, 4)]
    rs += [_r(t, b + timedelta(seconds=t - 6)) for t in (6, 8, 10)]
    segs, rejected = fit_segments(rs, duration=12.0)
    assert rejected == 0
    # where between 4 s and 6 s the clock jumped is unknown: that stretch is in neither
    assert [(s.start_s, s.end_s, s.clock_start) for s in segs] == [
        (0.0, 4.0, a), (6.0, 12.0, b)]


def test_fit_segments_without_readings_is_no_overlay_not_a_guess() -> None:
    assert fit_segments([], duration=5.0) == ([], 0)
    # two readings that disagree: nothing is believed
    segs, rejected = fit_segments([_r(0, datetime(2020, 1, 1)), _r(2, datetime(2021, 5, 5))],
                                  duration=4.0)
    assert segs == [] and rejected == 2


def test_canonical_merges_ocr_variants_of_a_label() -> None:
    """What `overlay.normalise_label` did, now `labels.canonical` (which replaced it)."""
    from strongroom.media.labels import canonical

    assert canonical(" KAM 03  ПФРСИ ") == "КАМ 03 ПФРСИ"
    assert canonical("кам 07 отб-1 саратов") == "КАМ 07 ОТБ-1 САРАТОВ"
    assert canonical("CAM 5 ENTRANCE") == "CAM 5 ENTRANCE"


def test_scene_cut_is_found_at_a_splice_and_kept_as_a_frame(tmp_path: Path) -> None:
    import subprocess

    from strongroom.media.frames import decode_pass
    from strongroom.pipeline.step import Context
    from strongroom.pipeline.steps.keyframes import KeyframesStep
    from strongroom.pipeline.steps.scenes import ScenesStep

    a = generate_clip(ClipSpec(name="a.mp4", duration=3, camera_label="КАМ 01",
                               clock_start=datetime(2020, 1, 1, 10, 0, 0)), tmp_path)
    b = generate_clip(ClipSpec(name="b.mp4", duration=2, camera_label="КАМ 02",
                               clock_start=datetime(2020, 1, 1, 14, 0, 0), source="life",
                               seed=7), tmp_path)
    spliced = tmp_path / "spliced.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(a), "-i", str(b), "-filter_complex",
                    "[0:v][1:v]concat=n=2:v=1[v]", "-map", "[v]", "-c:v", "libx264",
                    "-preset", "ultrafast", str(spliced)], check=True)
    facts, _ = probe(spliced)
    ctx = Context(sha256="0" * 64, path=spliced, workdir=tmp_path, facts=facts)
    scenes, frames = ScenesStep().start(ctx), KeyframesStep().start(ctx)
    assert scenes.consumer is not None and frames.consumer is not None
    decode_pass(spliced, [scenes.consumer, frames.consumer], facts.duration or 0.0)
    cuts = scenes.finish().data["cuts"]
    assert [round(c["t"]) for c in cuts] == [3]
    result = frames.finish()
    kept = [d for d in result.derived if d.kind == "scene_cut"]
    assert len(kept) == 1 and round(kept[0].meta["t"]) == 3 and kept[0].path.is_file()
    assert sum(d.kind == "thumbnail" for d in result.derived) == 4


def test_fit_segments_places_nothing_on_a_single_unconfirmed_reading() -> None:
    """One reading in the whole clip has nothing to agree with: a misread year (2078 for
    2018) would put the clip at a wrong time, which is worse than none."""
    segments, rejected = fit_segments(
        [ClockReading(1.3, datetime(2078, 4, 27, 7, 16, 10), "MM/DD/YYYY")], 6.0)
    assert segments == [] and rejected == 1


def test_a_slashed_date_that_could_be_either_way_round_is_never_guessed() -> None:
    """06/12/2021: the 6th of December or June the 12th. A reading of the same clip with a
    day above 12 settles it; with none, the readings are dropped (no time is better than a
    time a month off)."""
    from strongroom.media.overlay import parse_clock_text, resolve_date_order

    a = parse_clock_text("06/12/2021 02:44:36 PM")
    b = parse_clock_text("06/13/2021 02:44:37 PM")
    assert a is not None and b is not None and b[1] == "MM/DD/YYYY 12h"
    c = parse_clock_text("06/13/2021 02:44:38 PM")
    assert c is not None
    kept, dropped, from_vault = resolve_date_order([(0.0, *a), (1.0, *b), (2.0, *c)])
    assert not dropped and from_vault is None and [w for _, w, _ in kept] == [
        datetime(2021, 6, 12, 14, 44, 36), datetime(2021, 6, 13, 14, 44, 37),
        datetime(2021, 6, 13, 14, 44, 38)]
    # one reading alone may be a misread ("16" for "06"): it settles nothing
    assert resolve_date_order([(0.0, *a), (1.0, *b)])[1] is True
    assert resolve_date_order([(0.0, *a), (1.0, *a)]) == ([], True, None)
    # 05/05 reads the same either way round: it shows no order for 05/06 after midnight
    same = parse_clock_text("05/05/2021 11:59:59 PM")
    after = parse_clock_text("05/06/2021 12:00:00 AM")
    assert same is not None and after is not None
    assert resolve_date_order([(0.0, *same), (1.0, *after)])[1:] == (True, None)


def test_a_slashed_date_takes_the_order_the_vaults_other_clips_all_show() -> None:
    """No reading of the clip settles its order: the order other clips of the same shape
    (slashes) showed beyond doubt does, and is said to have been taken from them; an order
    known for another shape does not apply."""
    from strongroom.media.overlay import (
        date_order_shown,
        date_shape,
        parse_clock_text,
        resolve_date_order,
    )

    a = parse_clock_text("06/12/2021 02:44:36 PM")
    assert a is not None and date_shape(a[1]) == "??/??/YYYY"
    # known per camera label (`order_key`): another camera's order does not apply
    kept, dropped, from_vault = resolve_date_order([(0.0, *a)], {"??/??/YYYY on K1": "MM/DD"},
                                                   "K1")
    assert (kept, dropped, from_vault) == (
        [(0.0, datetime(2021, 6, 12, 14, 44, 36), "MM/DD/YYYY 12h")], False, "MM/DD")
    kept, _, _ = resolve_date_order([(0.0, *a)], {"??/??/YYYY on K1": "DD/MM"}, "K1")
    assert kept == [(0.0, datetime(2021, 12, 6, 14, 44, 36), "DD/MM/YYYY 12h")]
    assert resolve_date_order([(0.0, *a)], {"??/??/YYYY on K1": "DD/MM"}, "K2") == (
        [], True, None)
    assert resolve_date_order([(0.0, *a)], {"YYYY/MM/DD on K1": "MM/DD"}, "K1") == (
        [], True, None)
    b = parse_clock_text("06/13/2021 02:44:37 PM")
    assert b is not None and date_order_shown(*b) == "MM/DD"
    assert date_order_shown(*a) is None and date_shape("DD.MM.YYYY") is None
    # dots and dashes are the day-first order Russian recorders use
    assert parse_clock_text("06.12.2021 14:44:36") == (datetime(2021, 12, 6, 14, 44, 36),
                                                       "DD.MM.YYYY")


def test_what_an_engine_that_drops_spaces_reads_still_parses() -> None:
    from strongroom.media.overlay import parse_clock_text

    assert parse_clock_text("Fri 24Aug201807:24:38PM") == (
        datetime(2018, 8, 24, 19, 24, 38), "DD Mon YYYY 12h")
    assert parse_clock_text("2021-03-04 4T 10:11:12") == (
        datetime(2021, 3, 4, 10, 11, 12), "YYYY-MM-DD")
    assert parse_clock_text("2021-03-04 1 0:11:12") is None  # never drop a digit of the hour


def test_readings_either_side_of_a_tick_put_it_on_the_frame_that_shows_it() -> None:
    """A clock that ticks 1/6 s into a 6 fps clip: two readings on consecutive frames either
    side of the tick pin it, so the first, partial second is placed right too."""
    from datetime import timedelta

    start = datetime(2022, 7, 21, 1, 57, 43)
    shown = [(t, start + timedelta(seconds=math.floor(t + 5 / 6 + 1e-9)))
             for t in (0.0, 1 / 6, 4 / 3, 8 / 3, 25 / 6, 5.5)]
    segs, rejected = fit_segments([_r(t, c) for t, c in shown], duration=6.0)
    assert rejected == 0 and len(segs) == 1
    s = segs[0]
    for t in (0.0, 0.08, 1 / 6, 0.5, 1.1, 1.2, 5.9):
        got = s.clock_start + timedelta(seconds=math.floor(s.phase + t - s.start_s))
        assert got == start + timedelta(seconds=math.floor(t + 5 / 6 + 1e-9)), t


def test_a_segment_narrowed_by_readings_far_apart_is_placed_at_the_middle() -> None:
    """Clip 29 of the v3 corpus: after the clock jumped back an hour, readings every 3.2 s
    pin its offset to 0.2 s, as a tick between two frames would. But no two frames either side
    of a tick say where it is: the middle is the nearest, and the first frame that could show
    a new second (the left end) put the clip's last tenth of a second one second early."""
    from datetime import timedelta

    start = datetime(2018, 5, 10, 4, 49, 11)  # c0 = 11.1 s past the minute
    shown = [(t, start + timedelta(seconds=math.floor(t + 0.1 + 1e-9)))
             for t in (22.6, 25.8, 29.0, 32.3, 35.5)]
    segs, _ = fit_segments([_r(t, c) for t, c in shown], duration=36.0)
    s = segs[0]
    for t in (23.0, 29.95, 35.95):
        got = s.clock_start + timedelta(seconds=math.floor(s.phase + t - s.start_s))
        assert got == start + timedelta(seconds=math.floor(t + 0.1 + 1e-9)), t


def test_readings_a_hair_either_side_of_a_tick_do_not_split_a_segment() -> None:
    """Clip 176 of the v3 corpus (25 fps): the tick pair at 0.24/0.28 s and a reading at
    3.24 s touch at one point only (frame times rounded): one clock, no step of a second."""
    from datetime import timedelta

    base = datetime(2022, 3, 18, 8, 9, 0)
    read = [(0.0, 23), (0.24, 23), (0.28, 24), (3.24, 27), (6.44, 30), (9.68, 33),
            (12.92, 36), (16.12, 39), (19.36, 43), (22.6, 46)]
    segs, _ = fit_segments([_r(t, base + timedelta(seconds=c)) for t, c in read], duration=23.0)
    assert len(segs) == 1 and segs[0].start_s == 0.0


def test_a_second_misread_by_one_does_not_shift_the_segment() -> None:
    from datetime import timedelta

    start = datetime(2020, 1, 1, 10, 0, 0)
    rs = [_r(t, start + timedelta(seconds=math.floor(t + 0.3))) for t in (0, 1.5, 3, 4.5, 6)]
    rs.append(_r(2.2, start + timedelta(seconds=4)))  # 2.5 on screen read as one more
    segs, rejected = fit_segments(rs, duration=7.0)
    assert rejected == 1 and segs[0].clock_start == start and 0 <= segs[0].phase < 0.5


def test_a_month_read_in_latin_look_alikes_names_one_month_at_most() -> None:
    """The recogniser has no Cyrillic: "AHB" is янв, "uon" июл, "MI0H" июн, "0kr" окт. Every
    string the look-alike patterns allow for one month is checked against the others."""
    import itertools
    import re

    from strongroom.media.overlay import _LOOKALIKES, _RUSSIAN_MONTHS, lookalike_month

    assert [lookalike_month(w) for w in ("AHB", "uon", "MI0H", "0kr", "nek", "Map", "anp")] \
        == [1, 7, 6, 10, 12, 3, 4]
    assert lookalike_month("o") is None and lookalike_month("01") is None

    def spellings(name: str) -> list[str]:
        options = [re.findall(r"[^\[\]()?:|]+|\[[^\]]+\]", _LOOKALIKES[c]) for c in name]
        flat = [[x for part in opts for x in (part[1:-1] if part.startswith("[") else [part])]
                for opts in options]
        return ["".join(p) for p in itertools.product(*flat)]

    for number, name in enumerate(_RUSSIAN_MONTHS, 1):
        words = spellings(name)
        assert words and all(lookalike_month(w) == number for w in words), name


def test_a_spelt_date_stands_only_where_both_engines_agree() -> None:
    """Reads taken from generated clips: the recogniser gets the digits, tesseract the
    Cyrillic month; what either alone says, or what they disagree on, gives no date."""
    from strongroom.media.overlay import spelt_date

    recognised = ["It 28 uon 2023 06:57:17", "IT 28 uon 2023 06:57:19",
                  "IT 28 u0n 2023 06:57:20", "IT 28 uon 2023 06:57:22"]
    tesseract = ["Пт 28 июл 2823 86:57:19", "Пт 28 uno 2823 96:57:19", "", "fr Wing 2623)"]
    assert spelt_date(recognised, tesseract) == "28 июл 2023"
    # one frame's year misread (2029): the others outvote it
    assert spelt_date(["HT 08 01 2029 03:28:48", "4T 08 M10H 2023 03:28:47",
                       "4T 08 MI0H 2023 03:28:49", "4T 08 MI0H 2023 03:28:50"],
                      ["Чт 03 июн 2923", "чт GS июн 2023 03:28:47", "ЕЕК"]) == "08 июн 2023"
    # tesseract says another month than the recogniser's look-alikes
    assert spelt_date(recognised, ["Пт 28 июн 2023"]) is None
    # the recogniser alone, with no tesseract read of a month
    assert spelt_date(recognised, ["", "fr Wing 2623)"]) is None
    # tesseract alone twice, the recogniser's month word unreadable
    assert spelt_date(["06 o 2018", "06 o 2018"], ["[061июл{2018]", "[061июл [2018]"]) is None
    # the two engines' digits never meet (day and year both differ)
    assert spelt_date(recognised, ["Пт 29 июл 2024", "Пт 29 июл 2024", "Пт 29 июл 2024"]) \
        is None
    # frames disagree on the day: no majority
    assert spelt_date(["It 28 uon 2023", "It 29 uon 2023"], tesseract) is None


def test_a_weekday_glued_to_the_year_is_not_taken_for_the_hour() -> None:
    from strongroom.media.overlay import parse_clock_text

    assert parse_clock_text("29-01-2022C6 09:52:47") == (datetime(2022, 1, 29, 9, 52, 47),
                                                         "DD-MM-YYYY")
    assert parse_clock_text("29-01-2022 6 09:52:47") is None  # digits alone may be the hour


def test_a_time_whose_colon_did_not_read_still_parses() -> None:
    """"07:5619" (CIF frames, 9 px digits): four digits after the hour's colon can only be
    minutes and seconds; three or five are a misread and give nothing."""
    from strongroom.media.overlay import parse_clock_text, time_of_day

    assert parse_clock_text("2022-03-08 07:5619 AM") == (datetime(2022, 3, 8, 7, 56, 19),
                                                         "YYYY-MM-DD 12h")
    assert parse_clock_text("08.03.2022 0756:19") == (datetime(2022, 3, 8, 7, 56, 19),
                                                      "DD.MM.YYYY")
    assert time_of_day("07:5619 PM") == "07:56:19 PM"
    assert parse_clock_text("2022-03-08 07:561") is None
    assert parse_clock_text("2022-03-08 07:56191") is None
    assert parse_clock_text("2020.03.14 12:34:56") == (datetime(2020, 3, 14, 12, 34, 56),
                                                       "YYYY.MM.DD")
