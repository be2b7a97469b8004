"""DVR overlay OCR on a corpus of generated fixed-camera CCTV clips: accuracy and speed.

One scenario, `corpus`, run as a user runs it, with whole commands:

1. **Corpus.** `strongroom.cctv.corpus(seed, n, dir, version=G)` (default seed 7, n = 200;
   `--quick`: n = 12; `--generator G`, default 3): fixed-camera clips `cctv_NNNN.mp4` with
   burnt-in clock and camera label in many DVR styles, and `truth.json` holding, per clip, its
   camera, its status (`ok` or a bad input: `no_overlay`, `clock_backwards`,
   `multiple_clocks`, `style_changed`), the label, the style, and every clock value with the
   video time [t0, t1) it is on screen. Generator 3 is shaped like a DVR export: a few clips
   per camera (one style, label and view; 49 cameras for seed 7), on different days, 5 s to
   2 min long (4744 s of video for seed 7); generator 2 gives every clip a camera of its own
   and 5–8 s. Cached in benchmarks/work/overlay/corpus-v3-SEED-N/ (generator 2:
   corpus-SEED-N/), kept between runs and reused when its truth.json exists (generator 3,
   200 clips: 294 s to generate on 2 busy cores; generator 2: ~100 s).
2. **Commands.** `strongroom init` a vault (passphrase from STRONGROOM_PASSPHRASE), `strongroom
   ingest VAULT CORPUS -a corpus` (both untimed), then the timed command: `strongroom process
   VAULT --steps probe,overlay_ocr --workers W` (W = os.cpu_count() unless `--workers`): wall
   time of the whole command, from spawn to exit — interpreter start-up, key unseal (scrypt),
   pool spawn, decryption of every original, ffprobe, decoding, OCR, persisting. Anchor:
   `ffmpeg -nostdin -v error -i clip -f null -` over the same clips one after another (total
   wall time), inputs in the page cache for both. Ratio = ffmpeg seconds / process seconds;
   goal ≥ 0.5. Per-clip OCR seconds come from the catalogue (`step_run.seconds` of
   overlay_ocr). With `--repeat N` every run uses a fresh copy of the ingested vault and the
   fastest run counts (its catalogue is the one scored). Per duration bucket (< 10 s,
   10–60 s, ≥ 60 s: where per-clip fixed costs show) the anchor is the ffmpeg seconds of the
   bucket's clips, timed one by one, and the ratio is ffmpeg seconds ÷ (the bucket's
   overlay_ocr step seconds ÷ W): the command's own costs (start-up, unseal, pool, probe,
   persisting) belong to no bucket, so these ratios sit above the whole command's (a first
   `--quick` run on 2 busy cores: 0.12 under 10 s, 0.26 for 10–60 s, 0.78 for the one clip
   of 106 s; 0.25 for the whole command).
   Then, on the last run's vault, what a user does when `timeline` lists clips waiting for
   a day/month order: the person who knows the recorders says it (`strongroom clocks order
   VAULT MM/DD`: the order of the corpus's slashed dates, from the truth; skipped when the
   corpus has none, or both) and runs `process` again, which reads those clips again. That
   second `process` is not in the ratio; its clock figures are reported beside the first's
   (a clip whose slashed dates never show a day above 12 cannot be placed without that
   word: no reader can tell 06/05 from 05/06).
3. **Results** are read from VAULT/catalogue.db (SQLite, table step_run), matched to the
   corpus by the SHA-256 of each clip file.
4. **Scoring** (`score_corpus`, pure, unit-tested in tests/test_bench_overlay.py). A segment
   {start_s, end_s, clock_start, clock_end} says the clock advances one second per second of
   video: clock(t) = floor(c0 + t), with clock_start = floor(c0 + start_s) and clock_end =
   floor(c0 + max(start_s, end_s − 1e-6)) (`fit_segments`). Whole-second fields leave c0 known
   only to an interval [lo, hi) of width ≤ 1 (the intersection of what both fields allow;
   a clock_start with a fraction of a second, or the segment's `phase`, pins c0). The
   predicted clock at t is floor(ĉ0 + t), ĉ0 = the middle of [lo, hi) (ties to the earlier
   second), from the segment with start_s ≤ t < end_s (the last one also at t = end_s). It is
   evaluated once per truth reading, at the middle of the interval that value is on screen,
   (t0 + t1) / 2, and compared with the truth clock:
   - readable seconds = truth readings of status-ok clips (one per clock value on screen);
     clock seconds exact = share of them predicted exactly (not covered = not exact); goal
     ≥ 99 %. Also within 1 s, not covered, and "ambiguous" (the segment's whole-second
     fields allow two values there: exactness then depends on ĉ0 alone). `ceiling` scores the
     perfect whole-second segments made from the truth itself (one per clip from its real c0):
     what this result format allows a perfect reader.
   - wrong-time clips (any status): some truth reading whose predicted clock differs by ≥ 1 s
     (multiple_clocks: from every clock on screen at that time), or any segment at all on a
     no_overlay clip; goal 0.
   - labels exact = status-ok clips whose result "label" equals the truth label after
     `strongroom.media.labels.canonical` on both (look-alikes folded, one script per word);
     goal ≥ 98 % over labels in Latin/Russian Cyrillic; labels in other scripts (Georgian,
     Armenian, Kazakh, Ukrainian letters) are counted separately. Optional result keys
     "status", "label_confidence", "label_uncertain" are reported when present.
   - per bad-input status: what came out (result "status" if any, number of segments).
   - breakdown by style: decoration, font, fill, size bucket, clock position, clock format,
     two lines, antialias, night, output size (native or re-encode), fps, codec; and by the
     clips of the clip's camera in the corpus (1, 2–3, 4+: what settling an ambiguous date
     from the camera's other clips needs) and by duration (< 10 s, 10–60 s, ≥ 60 s).
   - cameras: how many, and clips per camera (a clip without a camera is its own).
5. Writes benchmarks/results/overlay.json (overlay.quick.json with --quick; overlay.corpus.json
   with --only): every number, the goals with PASS/FAIL, per-clip records and the failing clips
   with what failed and a style summary; prints a compact table. The vault is removed afterwards
   (`--keep` keeps it in benchmarks/work/overlay/); the corpus is always kept.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from _machine import (
    WORK_ROOT,
    CpuWatch,
    Timed,
    bench_parser,
    best,
    goal,
    machine_facts,
    noise_note,
    open_catalogue,
    parse_bench_args,
    passphrase_env,
    print_goals,
    result_header,
    run_command,
    strongroom_cli,
    wait_quiet,
    warm,
    write_results,
)
from strongroom.media.labels import canonical

WORK = WORK_ROOT / "overlay"
SCENARIOS = ("corpus",)
SEED = 7
N_FULL, N_QUICK = 200, 12
STEPS = "probe,overlay_ocr"
_EPOCH = datetime(1970, 1, 1)
#: the truth label's letters a Russian/English DVR font and OCR are built for
_PLAIN_LETTERS = set("АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯабвгдеёжзийклмнопрстуфхцчшщъыьэюя")
SIZE_BUCKETS = ((12, 15), (16, 20), (21, 26), (27, 32))
#: upper ends (exclusive) of the duration buckets, in seconds
DURATION_BUCKETS: tuple[tuple[float, str], ...] = (
    (10.0, "< 10 s"), (60.0, "10–60 s"), (math.inf, "≥ 60 s"))
GENERATORS = (2, 3)


# -- scoring (pure) --------------------------------------------------------------------------
def _seconds(when: str) -> float:
    """ISO date-time (either separator, optional fraction) → seconds since 1970 (naive)."""
    return (datetime.fromisoformat(when) - _EPOCH).total_seconds()


def _whole(seconds: float) -> str:
    """Seconds since 1970 → "YYYY-MM-DD HH:MM:SS", floored to the second (as fit_segments)."""
    return (_EPOCH + timedelta(seconds=math.floor(seconds))).isoformat(sep=" ")


def other_script(label: str) -> bool:
    """A label with letters outside ASCII and the Russian alphabet (Georgian, Armenian,
    Kazakh Қ, Ukrainian і ...)."""
    return any(c.isalpha() and not c.isascii() and c not in _PLAIN_LETTERS for c in label)


@dataclass(frozen=True)
class Seg:
    """A result segment as a clock: c0 ∈ [lo, hi) (hi == lo: known exactly)."""

    start: float
    end: float
    lo: float
    hi: float

    @classmethod
    def from_result(cls, seg: Mapping[str, Any]) -> Seg | None:
        cs = seg.get("clock_start")
        if not cs:
            return None
        start, end = float(seg["start_s"]), float(seg["end_s"])
        lo = _seconds(cs) - start
        phase = seg.get("phase")
        if isinstance(phase, int | float):  # where in its second the clock was at start_s
            return cls(start, end, lo + float(phase), lo + float(phase))
        if "." in str(cs):  # a fraction of a second given: c0 exactly
            return cls(start, end, lo, lo)
        hi = lo + 1.0
        ce = seg.get("clock_end")
        if ce and "." not in str(ce):
            lo2 = _seconds(ce) - max(start, end - 1e-6)
            if max(lo, lo2) < min(hi, lo2 + 1.0):  # both consistent: narrow
                lo, hi = max(lo, lo2), min(hi, lo2 + 1.0)
        return cls(start, end, lo, hi)

    def covers(self, t: float, last: bool) -> bool:
        return self.start <= t < self.end or (last and t == self.end)

    def predict(self, t: float) -> int:
        c0 = self.lo if self.hi == self.lo else (self.lo + self.hi) / 2 - 1e-6
        return math.floor(c0 + t)

    def ambiguous(self, t: float) -> bool:
        """Whether c0's interval allows two clock values at t."""
        return self.hi > self.lo and math.floor(self.lo + t) != math.floor(self.hi - 1e-9 + t)


def segments_of(result: Mapping[str, Any] | None) -> list[Seg]:
    segs = [Seg.from_result(s) for s in (result or {}).get("segments") or []]
    return sorted((s for s in segs if s is not None), key=lambda s: s.start)


def _at(readings: Iterable[Mapping[str, Any]], t: float) -> int | None:
    for r in readings:
        if r["t0"] <= t < r["t1"]:
            return math.floor(_seconds(r["clock"]))
    return None


@dataclass
class ClipScore:
    """One clip against its truth."""

    name: str
    status: str
    readings: int = 0  # truth clock values on screen (primary clock)
    exact: int = 0
    within_1s: int = 0
    uncovered: int = 0
    ambiguous: int = 0
    max_abs_diff: int = 0
    diffs: dict[str, int] = field(default_factory=dict)  # seconds off → readings
    wrong_time: bool = False
    segments: int = 0
    label_truth: str | None = None
    label_got: str | None = None
    label_exact: bool | None = None  # None: no label to score (not ok, or no label)
    other_script: bool = False
    result_status: str | None = None
    label_uncertain: Any = None
    label_confidence: Any = None
    ocr_seconds: float | None = None
    step_status: str | None = None
    failures: list[str] = field(default_factory=list)
    #: the result's segments as stored (start_s, end_s, clock_start, clock_end), for debugging
    got_segments: list[list[Any]] = field(default_factory=list)


def score_clip(truth: Mapping[str, Any], result: Mapping[str, Any] | None,
               step_status: str | None = None, seconds: float | None = None) -> ClipScore:
    status = str(truth["status"])
    sc = ClipScore(name=str(truth["name"]), status=status, step_status=step_status,
                   ocr_seconds=seconds)
    res = result or {}
    segs = segments_of(res)
    sc.segments = len(segs)
    sc.got_segments = [[g.get("start_s"), g.get("end_s"), g.get("clock_start"),
                        g.get("clock_end")] for g in res.get("segments") or []]
    sc.result_status = res.get("status")
    sc.label_uncertain = res.get("label_uncertain")
    sc.label_confidence = res.get("label_confidence")
    others = [o["readings"] or [] for o in truth.get("overlays") or []
              if o.get("role") == "second_clock"]
    diffs: Counter[int] = Counter()
    for r in truth.get("readings") or []:
        sc.readings += 1
        t = (float(r["t0"]) + float(r["t1"])) / 2
        seg = next((s for i, s in enumerate(segs) if s.covers(t, i == len(segs) - 1)), None)
        if seg is None:
            sc.uncovered += 1
            continue
        pred = seg.predict(t)
        sc.ambiguous += seg.ambiguous(t)
        allowed = [math.floor(_seconds(r["clock"]))]
        allowed += [c for rs in others if (c := _at(rs, t)) is not None]
        diff = min((pred - a for a in allowed), key=abs)
        diffs[diff] += 1
        sc.exact += diff == 0
        sc.within_1s += abs(diff) <= 1
        sc.max_abs_diff = max(sc.max_abs_diff, abs(diff))
    sc.diffs = {f"{k:+d}": v for k, v in sorted(diffs.items())}
    sc.wrong_time = sc.max_abs_diff >= 1 or (status == "no_overlay" and bool(segs))
    if status == "ok" and truth.get("label"):
        # exact after normalisation: one script per word, as `labels.canonical` folds
        # look-alikes (САМ/CAM is one label)
        sc.label_truth = canonical(str(truth["label"]))
        got = res.get("label")
        sc.label_got = got
        sc.label_exact = isinstance(got, str) and canonical(got) == sc.label_truth
        sc.other_script = other_script(str(truth["label"]))
    # what failed, for the failing-clips list
    if step_status not in (None, "ok"):
        sc.failures.append(f"step {step_status}")
    if status == "ok" and sc.exact < sc.readings:
        sc.failures.append(f"clock {sc.exact}/{sc.readings} exact ({sc.uncovered} not covered"
                           + (f", off {sc.diffs}" if any(k != "+0" for k in sc.diffs) else "")
                           + ")")
    if sc.wrong_time:
        sc.failures.append("wrong time" + (f" (segments on a no_overlay clip: {sc.segments})"
                                           if status == "no_overlay" else
                                           f" (up to {sc.max_abs_diff} s off)"))
    if sc.label_exact is False:
        sc.failures.append(f"label {sc.label_got!r} ≠ {sc.label_truth!r}")
    return sc


def _pct(num: int, den: int) -> float | None:
    return round(100 * num / den, 2) if den else None


def size_bucket(size: int) -> str:
    for lo, hi in SIZE_BUCKETS:
        if lo <= size <= hi:
            return f"{lo}–{hi}"
    return "<12" if size < SIZE_BUCKETS[0][0] else ">32"


def style_keys(truth: Mapping[str, Any]) -> dict[str, str]:
    """The clip's value for each breakdown dimension."""
    spec = truth.get("spec") or {}
    st = spec.get("style") or {}
    size = spec.get("size") or [truth.get("width"), truth.get("height")]
    out_size = spec.get("output_size")
    output = (f"re-encode {out_size[0]}×{out_size[1]}" if out_size
              else f"native {size[0]}×{size[1]}")
    return {
        "decoration": str(st.get("decoration")), "font": str(st.get("font")),
        "fill": str(st.get("fill")), "size": size_bucket(int(st.get("size", 0))),
        "clock_position": str(st.get("clock_position")),
        "clock_format": str(st.get("clock_format")), "two_lines": str(st.get("two_lines")),
        "antialias": str(st.get("antialias")), "night": str(spec.get("night")),
        "output": output, "fps": str(spec.get("fps")), "codec": str(spec.get("codec")),
        "clock_font_out": clock_font_bucket(truth),
    }


def clock_font_bucket(truth: Mapping[str, Any]) -> str:
    """The clock's font size in the clip as written (a 16 px font of a 704×576 recording is
    8 px in its 352×288 re-encode: digits about 6 px tall, a blur to a person too)."""
    px = next((o.get("output_font_px") for o in truth.get("overlays") or []
               if o.get("role") == "clock" and o.get("output_font_px")), None)
    if px is None:
        return "no clock"
    return "< 9 px" if px < 9 else "9–13 px" if px < 14 else "≥ 14 px"


def duration_bucket(seconds: float) -> str:
    return next(name for upper, name in DURATION_BUCKETS if seconds < upper)


def camera_of(truth: Mapping[str, Any]) -> str:
    """The clip's camera id; a truth without one (generator 2 before cameras) is its own."""
    return str(truth.get("camera") or Path(str(truth["name"])).stem)


def camera_clips_bucket(clips: int) -> str:
    """How many clips its camera has in the corpus: 1 (nothing to settle a date from), 2–3, 4+."""
    return "1" if clips <= 1 else "2–3" if clips <= 3 else "4+"


def clip_keys(truth: Mapping[str, Any], camera_clips: Mapping[str, int]) -> dict[str, str]:
    """`style_keys` and the two keys that depend on the corpus or the clip's length."""
    return style_keys(truth) | {
        "camera_clips": camera_clips_bucket(camera_clips[camera_of(truth)]),
        "duration": duration_bucket(float(truth["duration"])),
    }


def camera_summary(truths: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    counts = Counter(camera_of(t) for t in truths)
    return {"cameras": len(counts),
            "clips_per_camera_mean": round(len(truths) / len(counts), 2) if counts else None,
            "clips_per_camera": {str(k): v for k, v in sorted(Counter(counts.values()).items())}}


def speed_by_duration(truths: Sequence[Mapping[str, Any]], ffmpeg_seconds: Mapping[str, float],
                      step_seconds: Mapping[str, float | None], workers: int
                      ) -> dict[str, dict[str, Any]]:
    """Per duration bucket: clips, video seconds, the anchor's seconds (ffmpeg, clip by clip),
    the overlay_ocr step seconds, and ratio = ffmpeg s ÷ (step s ÷ `workers`) — the steps of
    W workers run side by side. A clip with no step time counts in neither sum (`missing`)."""
    out: dict[str, dict[str, Any]] = {}
    for _, name in DURATION_BUCKETS:
        group = [t for t in truths if duration_bucket(float(t["duration"])) == name]
        if not group:
            continue
        timed = [t for t in group if step_seconds.get(str(t["name"])) is not None
                 and str(t["name"]) in ffmpeg_seconds]
        ff = sum(ffmpeg_seconds[str(t["name"])] for t in timed)
        step = sum(float(step_seconds[str(t["name"])] or 0.0) for t in timed)
        out[name] = {
            "clips": len(group),
            "video_seconds": round(sum(float(t["duration"]) for t in group), 1),
            "ffmpeg_seconds": round(ff, 3), "ocr_step_seconds": round(step, 3),
            "ratio": round(ff / (step / workers), 3) if step else None,
            "missing": len(group) - len(timed)}
    return out


def style_summary(truth: Mapping[str, Any]) -> str:
    k = style_keys(truth)
    st = (truth.get("spec") or {}).get("style") or {}
    return (f"{k['font']} {st.get('size')}px {k['fill']} {k['decoration']}"
            f"{'' if st.get('antialias') else ' 1-bit'} clock@{k['clock_position']}"
            f" '{k['clock_format']}'{' 2-line' if st.get('two_lines') else ''}"
            f"{' night' if k['night'] == 'True' else ''} {k['output']} {k['fps']} fps"
            f" {k['codec']}")


def _group(scores: Sequence[ClipScore]) -> dict[str, Any]:
    ok = [s for s in scores if s.status == "ok"]
    readable = sum(s.readings for s in ok)
    labels = [s for s in ok if s.label_exact is not None and not s.other_script]
    return {
        "clips": len(scores), "ok_clips": len(ok), "readable_seconds": readable,
        "exact_pct": _pct(sum(s.exact for s in ok), readable),
        "within_1s_pct": _pct(sum(s.within_1s for s in ok), readable),
        "label_exact_pct": _pct(sum(bool(s.label_exact) for s in labels), len(labels)),
        "wrong_time_clips": sum(s.wrong_time for s in scores),
    }


def score_corpus(truths: Sequence[Mapping[str, Any]],
                 results: Mapping[str, Mapping[str, Any] | None],
                 step_status: Mapping[str, str] | None = None,
                 seconds: Mapping[str, float | None] | None = None) -> dict[str, Any]:
    """Every figure of the benchmark from the truths and the results (keyed by clip name;
    a missing result scores as nothing read)."""
    scores = [score_clip(t, results.get(str(t["name"])), (step_status or {}).get(t["name"]),
                         (seconds or {}).get(t["name"])) for t in truths]
    ok = [s for s in scores if s.status == "ok"]
    readable = sum(s.readings for s in ok)
    exact = sum(s.exact for s in ok)
    plain = [s for s in ok if s.label_exact is not None and not s.other_script]
    other = [s for s in ok if s.label_exact is not None and s.other_script]
    labelled = plain + other

    def labels(group: Sequence[ClipScore]) -> dict[str, Any]:
        right = sum(bool(s.label_exact) for s in group)
        return {"clips": len(group), "exact": right, "exact_pct": _pct(right, len(group)),
                "missing": sum(not s.label_got for s in group),
                "wrong": [{"name": s.name, "truth": s.label_truth, "got": s.label_got,
                           "uncertain": s.label_uncertain, "confidence": s.label_confidence}
                          for s in group if not s.label_exact]}

    bad: dict[str, dict[str, Any]] = {}
    for s in scores:
        b = bad.setdefault(s.status, {"clips": 0, "result_status": Counter(),
                                      "segments": Counter(), "wrong_time": 0})
        b["clips"] += 1
        b["result_status"][str(s.result_status) if s.result_status is not None
                           else "(no status key)"] += 1
        b["segments"][str(min(s.segments, 2)).replace("2", "2+")] += 1
        b["wrong_time"] += s.wrong_time
    outcome = {k: {"clips": v["clips"], "result_status": dict(v["result_status"]),
                   "segments": dict(sorted(v["segments"].items())),
                   "wrong_time": v["wrong_time"]} for k, v in sorted(bad.items())}
    by_name = {str(t["name"]): t for t in truths}
    breakdown: dict[str, dict[str, Any]] = {}
    counts = Counter(camera_of(t) for t in truths)
    keyed = [(clip_keys(by_name[s.name], counts), s) for s in scores]
    rank = {name: i for i, (_, name) in enumerate(DURATION_BUCKETS)}  # shortest first
    for dim in keyed[0][0] if keyed else []:
        values = sorted({k[dim] for k, _ in keyed}, key=lambda v: (rank.get(v, -1), v))
        breakdown[dim] = {v: _group([s for k, s in keyed if k[dim] == v]) for v in values}
    secs = [s.ocr_seconds for s in scores if s.ocr_seconds is not None]
    return {
        "clips": len(scores),
        "cameras": camera_summary(truths),
        "by_status": dict(Counter(s.status for s in scores)),
        "clock": {
            "readable_seconds": readable, "exact": exact, "exact_pct": _pct(exact, readable),
            "within_1s": sum(s.within_1s for s in ok),
            "within_1s_pct": _pct(sum(s.within_1s for s in ok), readable),
            "not_covered": sum(s.uncovered for s in ok),
            "ambiguous": sum(s.ambiguous for s in ok),
            "off_by": dict(sum((Counter(s.diffs) for s in ok), Counter())),
            "ok_clips_all_exact": sum(s.readings > 0 and s.exact == s.readings for s in ok),
            "ok_clips_no_segment": sum(s.segments == 0 for s in ok),
        },
        "wrong_time_clips": sum(s.wrong_time for s in scores),
        "wrong_time_clip_names": [s.name for s in scores if s.wrong_time],
        "labels": labels(plain),
        "labels_other_scripts": labels(other),
        "labels_all_ok_clips_exact_pct": _pct(sum(bool(s.label_exact) for s in labelled),
                                              len(labelled)),
        "label_uncertain_flagged": sum(bool(s.label_uncertain) for s in scores),
        "ok_result_status": dict(Counter(str(s.result_status) if s.result_status is not None
                                         else "(no status key)" for s in ok)),
        "outcome_by_status": outcome,
        "ocr_seconds_per_clip": {
            "clips": len(secs), "total": round(sum(secs), 3),
            "mean": round(statistics.fmean(secs), 3) if secs else None,
            "median": round(statistics.median(secs), 3) if secs else None,
            "max": round(max(secs), 3) if secs else None,
        },
        "breakdown": breakdown,
        "failing_clips": [{"name": s.name, "status": s.status, "failed": s.failures,
                           "style": style_summary(by_name[s.name]),
                           "segments": s.got_segments, "label": s.label_got,
                           "result_status": s.result_status}
                          for s in scores if s.failures],
        "per_clip": [{k: v for k, v in asdict(s).items()
                      if k not in ("failures", "got_segments")} for s in scores],
    }


def ideal_results(truths: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """What a perfect reader reports in today's format: one whole-second segment per clip with
    an overlay, from the truth's own c0 (`clock_at_zero`), and the label as drawn."""
    out: dict[str, dict[str, Any]] = {}
    for t in truths:
        at_zero = t.get("clock_at_zero")
        if t["status"] != "ok" or not at_zero:
            out[str(t["name"])] = {"segments": [], "label": None}
            continue
        c0, duration = _seconds(at_zero), float(t["duration"])
        out[str(t["name"])] = {
            "label": canonical(str(t["label"])) if t.get("label") else None,
            "segments": [{"start_s": 0.0, "end_s": duration, "clock_start": _whole(c0),
                          "clock_end": _whole(c0 + max(0.0, duration - 1e-6))}]}
    return out


# -- corpus, commands, catalogue ------------------------------------------------------------
def corpus_path(seed: int, n: int, generator: int) -> Path:
    """Where the corpus is cached: generator 2 keeps the name it had before generator 3."""
    return WORK / (f"corpus-{seed}-{n}" if generator == 2 else f"corpus-v{generator}-{seed}-{n}")


def corpus_dir(seed: int, n: int, generator: int) -> tuple[Path, float]:
    """The cached corpus (generated now if its truth.json is missing) and the seconds spent
    generating it now (0 when cached)."""
    where = corpus_path(seed, n, generator)
    if (where / "truth.json").is_file():
        return where, 0.0
    from strongroom.cctv import corpus

    print(f"generating the corpus (generator {generator}, seed {seed}, {n} clips) in {where}"
          " ...", flush=True)
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    started = time.perf_counter()
    corpus(seed, n, where, version=generator)
    return where, time.perf_counter() - started


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def cli(*args: str | Path, check: bool = True) -> Timed:
    """One whole strongroom command (stdout discarded, stderr shown)."""
    return run_command([strongroom_cli(), *map(str, args)], env=passphrase_env(), check=check)


def persons_order(truths: Sequence[Mapping[str, Any]]) -> str | None:
    """The day/month order a person who knows the corpus's recorders says for its slashed
    dates (`strongroom clocks order`: one for the vault), from the truth: None when the
    corpus has none, or both (one word cannot then be said for the vault)."""
    orders = {str(o.get("clock_format"))[:5] for t in truths for o in t.get("overlays") or []
              if re.match(r"(DD/MM|MM/DD)/YYYY", str(o.get("clock_format")))}
    return orders.pop() if len(orders) == 1 else None


def after_a_persons_word(vault: Path, truths: Sequence[Mapping[str, Any]]
                         ) -> dict[str, Any] | None:
    """What a user does when `timeline` lists clips waiting for a day/month order: say it
    (`clocks order`), and `process` again (it reads those clips again). Untimed in the ratio;
    the second `process` is reported on its own. The rows are the vault's step runs after."""
    order = persons_order(truths)
    if order is None:
        return None
    cli("clocks", "order", vault, order)
    again = cli("process", vault, "--steps", STEPS, check=False)
    return {"order": order, "seconds": again.seconds, "rows": step_rows(vault)}


def ffmpeg_decode(files: Sequence[Path]) -> tuple[Timed, dict[str, float]]:
    """The anchor over all files, and each file's own wall seconds (by file name)."""
    each: dict[str, float] = {}
    with CpuWatch() as cpu:
        for f in files:
            started = time.perf_counter()
            subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(f), "-f", "null",
                            "-"], check=True)
            each[f.name] = time.perf_counter() - started
    return cpu.timed(), each


def step_rows(vault: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """step_run rows by original SHA-256 and step, from the vault's catalogue (read-only)."""
    db = open_catalogue(vault)
    try:
        rows = db.execute("SELECT original_sha256, step, status, result, seconds, error "
                          "FROM step_run").fetchall()
    finally:
        db.close()
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for sha, step, status, result, seconds, error in rows:
        out.setdefault(sha, {})[step] = {
            "status": status, "seconds": seconds, "error": error,
            "result": json.loads(result) if isinstance(result, str) else result}
    return out


# -- report ---------------------------------------------------------------------------------
def _f(x: float | None, unit: str = "%") -> str:
    return "—" if x is None else f"{x:.1f}{unit}"


def table(acc: Mapping[str, Any]) -> list[str]:
    """The breakdown as compact text lines."""
    lines = [f"   {'dimension':<15} {'value':<32} {'clips':>5} {'read s':>6} {'exact':>7}"
             f" {'±1 s':>7} {'label':>7} {'wrong':>5}"]
    for dim, values in acc["breakdown"].items():
        for value, g in values.items():
            lines.append(f"   {dim:<15} {value[:32]:<32} {g['clips']:>5} "
                         f"{g['readable_seconds']:>6} {_f(g['exact_pct']):>7} "
                         f"{_f(g['within_1s_pct']):>7} {_f(g['label_exact_pct']):>7} "
                         f"{g['wrong_time_clips']:>5}")
            dim = ""
    return lines


def speed_table(speed: Mapping[str, Mapping[str, Any]], workers: int) -> list[str]:
    """`speed_by_duration` as compact text lines."""
    lines = [f"   {'duration':<9} {'clips':>5} {'video s':>8} {'ffmpeg s':>9}"
             f" {'ocr step s':>10} {f'ratio (÷{workers})':>12}"]
    for name, g in speed.items():
        ratio = "—" if g["ratio"] is None else f"{g['ratio']:.2f}"
        lines.append(f"   {name:<9} {g['clips']:>5} {g['video_seconds']:>8.0f} "
                     f"{g['ffmpeg_seconds']:>9.2f} {g['ocr_step_seconds']:>10.2f} {ratio:>12}")
    return lines


@dataclass
class Ctx:
    args: argparse.Namespace
    say: Callable[[str], None]
    goals: list[dict[str, Any]]
    gen_seconds: float = 0.0


def scenario_corpus(ctx: Ctx) -> dict[str, Any]:
    args, say = ctx.args, ctx.say
    where, ctx.gen_seconds = corpus_dir(args.seed, args.n, args.generator)
    doc = json.loads((where / "truth.json").read_text(encoding="utf-8"))
    truths: list[dict[str, Any]] = doc["clips"]
    files = [where / str(t["name"]) for t in truths]
    names_by_sha = {sha256_of(f): f.name for f in files}
    if len(names_by_sha) != len(files):
        raise RuntimeError("two corpus clips are byte-identical")
    video_s = sum(float(t["duration"]) for t in truths)
    nbytes = sum(f.stat().st_size for f in files)
    workers = args.workers or os.cpu_count() or 1

    # a vault holding the corpus: init + ingest, untimed; copied for every timed run
    template = WORK / "vault-template"
    shutil.rmtree(template, ignore_errors=True)
    init = cli("init", template)
    ingest = cli("ingest", template, where, "-a", "corpus")
    print(f"vault: init {init.seconds:.1f} s, ingest {ingest.seconds:.1f} s", flush=True)
    tries: dict[str, list[Timed]] = {"ffmpeg": [], "process": []}
    rows_by_try: list[dict[str, dict[str, dict[str, Any]]]] = []
    worded: dict[str, Any] | None = None
    ffmpeg_each: list[dict[str, float]] = []
    for i in range(args.repeat):
        warm(files)
        anchor, each = ffmpeg_decode(files)
        tries["ffmpeg"].append(anchor)
        ffmpeg_each.append(each)
        vault = WORK / "vault"
        shutil.rmtree(vault, ignore_errors=True)
        shutil.copytree(template, vault)
        warm(files)
        print(f"run {i + 1}/{args.repeat}: strongroom process --steps {STEPS} --workers "
              f"{workers} on {len(files)} clips ...", flush=True)
        t = cli("process", vault, "--steps", STEPS, "--workers", str(workers), check=False)
        tries["process"].append(t)
        rows_by_try.append(step_rows(vault))
        if i + 1 == args.repeat:
            worded = after_a_persons_word(vault, truths)
        if not args.keep:
            shutil.rmtree(vault, ignore_errors=True)
    times = [t.seconds for t in tries["process"]]
    rows = rows_by_try[times.index(min(times))]
    ffmpeg_times = [t.seconds for t in tries["ffmpeg"]]
    ffmpeg_clip_s = ffmpeg_each[ffmpeg_times.index(min(ffmpeg_times))]
    runs = {k: best(v) for k, v in tries.items()}
    ratio = runs["ffmpeg"].seconds / runs["process"].seconds

    results: dict[str, dict[str, Any] | None] = {}
    status: dict[str, str] = {}
    seconds: dict[str, float | None] = {}
    errors: list[dict[str, Any]] = []
    for sha, name in names_by_sha.items():
        for step, row in rows.get(sha, {}).items():
            if row["status"] != "ok":
                errors.append({"name": name, "step": step, "status": row["status"],
                               "error": row["error"]})
        ocr = rows.get(sha, {}).get("overlay_ocr")
        results[name] = ocr["result"] if ocr else None
        status[name] = ocr["status"] if ocr else "missing"
        seconds[name] = ocr["seconds"] if ocr else None
    acc = score_corpus(truths, results, status, seconds)
    ceiling = score_corpus(truths, ideal_results(truths))
    word_acc = None
    if worded is not None:
        by_name = {names_by_sha[sha]: r.get("overlay_ocr") for sha, r in worded["rows"].items()
                   if sha in names_by_sha}
        word_acc = score_corpus(truths, {n: r["result"] if r else None
                                         for n, r in by_name.items()},
                                {n: r["status"] if r else "missing" for n, r in by_name.items()})
    speed = speed_by_duration(truths, ffmpeg_clip_s, seconds, workers)
    probe_s = sum(float(r.get("probe", {}).get("seconds") or 0) for r in rows.values())

    # -- print
    c, lab, other = acc["clock"], acc["labels"], acc["labels_other_scripts"]
    ps = acc["ocr_seconds_per_clip"]
    mix = ", ".join(f"{k} {v}" for k, v in sorted(acc["by_status"].items()))
    cams = acc["cameras"]
    say(f"corpus: generator {doc.get('version')}, seed {args.seed}, {len(truths)} clips ({mix}),"
        f" {video_s:.0f} s of video, {nbytes / 1e6:.1f} MB, in {where}")
    say(f"cameras: {cams['cameras']}, clips per camera mean {cams['clips_per_camera_mean']}"
        f" (cameras by clips: {cams['clips_per_camera']})")
    say(f"speed: ffmpeg -f null {runs['ffmpeg'].seconds:.2f} s | strongroom process "
        f"--steps {STEPS} --workers {workers} {runs['process'].seconds:.2f} s (exit "
        f"{runs['process'].extra['exit_code']}) → ratio {ratio:.2f}; overlay_ocr step_run "
        f"per clip mean {_f(ps['mean'], ' s')}, median {_f(ps['median'], ' s')}, max "
        f"{_f(ps['max'], ' s')} (total {ps['total']:.1f} s; probe {probe_s:.1f} s)")
    say("speed by duration (ffmpeg clip by clip; ratio = ffmpeg s ÷ (ocr step s ÷ workers),"
        " without the command's own costs):")
    for line in speed_table(speed, workers):
        say(line)
    say(f"clock: {c['readable_seconds']} readable seconds in ok clips: exact {c['exact']} "
        f"({_f(c['exact_pct'])}), within 1 s {_f(c['within_1s_pct'])}, not covered "
        f"{c['not_covered']}, ambiguous in whole seconds {c['ambiguous']}; off by "
        f"{c['off_by']}; ceiling of whole-second segments "
        f"{_f(ceiling['clock']['exact_pct'])} exact")
    if worded is not None and word_acc is not None:
        wc = word_acc["clock"]
        say(f"after a person's word (`strongroom clocks order {worded['order']}`, then "
            f"`process` again: {worded['seconds']:.1f} s): exact {wc['exact']} "
            f"({_f(wc['exact_pct'])}), not covered {wc['not_covered']}; wrong-time clips "
            f"{word_acc['wrong_time_clips']} {word_acc['wrong_time_clip_names'][:8]}")
    say(f"wrong-time clips: {acc['wrong_time_clips']} {acc['wrong_time_clip_names'][:8]}"
        f"{' ...' if len(acc['wrong_time_clip_names']) > 8 else ''}")
    say(f"labels: {lab['exact']}/{lab['clips']} exact ({_f(lab['exact_pct'])}); other "
        f"scripts {other['exact']}/{other['clips']}; flagged uncertain "
        f"{acc['label_uncertain_flagged']}")
    for st, o in acc["outcome_by_status"].items():
        say(f"  {st:<16} {o['clips']:>3} clips → status {o['result_status']}, segments "
            f"{o['segments']}, wrong time {o['wrong_time']}")
    if errors:
        say(f"step errors: {len(errors)} (first: {errors[0]})")
    say("breakdown (ok clips for exact/±1 s/label; wrong = clips of any status):")
    for line in table(acc):
        say(line)
    say(f"noise: {noise_note(runs)}")
    if acc["failing_clips"]:
        say(f"failing clips: {len(acc['failing_clips'])} (first ones; all in the JSON)")
        for fc in acc["failing_clips"][:10]:
            say(f"  {fc['name']} [{fc['status']}] {'; '.join(fc['failed'])} — {fc['style']}")

    goal(ctx.goals, f"process --steps {STEPS} --workers {workers}: ≥ 0.5× ffmpeg full-decode "
         "speed", ratio, 0.5, "min", "×", runs)
    goal(ctx.goals, "clock seconds exact (ok clips)", c["exact_pct"] or 0.0, 99, "min", " %")
    goal(ctx.goals, "wrong-time clips (any status)", acc["wrong_time_clips"], 0, "max")
    if word_acc is not None:
        goal(ctx.goals, "clock seconds exact (ok clips) after a person says the day/month "
             "order", word_acc["clock"]["exact_pct"] or 0.0, 99, "min", " %")
        goal(ctx.goals, "wrong-time clips (any status) after a person says the order",
             word_acc["wrong_time_clips"], 0, "max")
    goal(ctx.goals, "labels exact (ok clips, Latin/Russian)", lab["exact_pct"] or 0.0, 98,
         "min", " %")
    return {
        "corpus": {"dir": str(where), "seed": args.seed, "n": len(truths),
                   "generator_version": doc.get("version"), "video_seconds": video_s,
                   "bytes": nbytes, "generate_seconds": round(ctx.gen_seconds, 1),
                   "cameras": acc["cameras"]},
        "workers": workers,
        "vault": {"init": init.to_json(), "ingest": ingest.to_json()},
        "runs": {k: t.to_json() for k, t in runs.items()},
        "ratio_ffmpeg_vs_process": round(ratio, 3),
        "speed_by_duration": speed,
        "probe_step_seconds_total": round(probe_s, 3),
        "step_errors": errors,
        "accuracy": acc,
        "after_a_persons_word": None if worded is None or word_acc is None else {
            "order": worded["order"], "process_seconds": worded["seconds"],
            "clock": word_acc["clock"], "wrong_time_clips": word_acc["wrong_time_clips"],
            "wrong_time_clip_names": word_acc["wrong_time_clip_names"]},
        "ceiling_whole_second_segments": {"clock": ceiling["clock"],
                                          "wrong_time_clips": ceiling["wrong_time_clips"]},
    }


SCENARIO_FUNCS: dict[str, Callable[[Ctx], dict[str, Any]]] = {"corpus": scenario_corpus}


def main(argv: Sequence[str] | None = None) -> int:
    ap = bench_parser(__doc__, repeat=1, quick_repeat=1, scenarios=SCENARIOS)
    ap.add_argument("--seed", type=int, default=SEED, help=f"corpus seed (default {SEED})")
    ap.add_argument("--n", type=int, default=None,
                    help=f"corpus clips (default {N_FULL}, with --quick {N_QUICK})")
    ap.add_argument("--workers", type=int, default=None,
                    help="strongroom process --workers (default: os.cpu_count())")
    ap.add_argument("--generator", type=int, choices=GENERATORS, default=GENERATORS[-1],
                    help="strongroom.cctv corpus version: 3, clips grouped by camera and 5 s "
                         "to 2 min long (default); 2, one camera per clip, 5–8 s")
    args = parse_bench_args(ap, argv)
    if args.n is None:
        args.n = N_QUICK if args.quick else N_FULL
    for tool in ("ffmpeg", "ffprobe", "age"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (make setup)")
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    log: list[str] = []

    def say(text: str) -> None:
        log.append(text)
        print(text, flush=True)

    result = result_header("overlay", args, machine_facts(
        tools=[["ffmpeg", "-version"]],
        packages=["av", "rapidocr-onnxruntime", "onnxruntime", "tesserocr", "numpy",
                  "pillow"]))
    result["busy_before_start"] = round(wait_quiet(args.wait_quiet), 3)
    goals: list[dict[str, Any]] = []
    ctx = Ctx(args, say, goals)
    scenarios: dict[str, Any] = {}
    try:
        for name in args.scenarios:
            scenarios[name] = SCENARIO_FUNCS[name](ctx)
    finally:
        shutil.rmtree(WORK / "vault-template", ignore_errors=True)
        if not args.keep:
            shutil.rmtree(WORK / "vault", ignore_errors=True)
    print_goals(goals)
    result |= {
        "method": {
            "timed": f"strongroom process VAULT --steps {STEPS} --workers W, whole command "
                     "(start-up, unseal, pool, decryption, probe, decode, OCR, persisting)",
            "anchor": "ffmpeg -nostdin -v error -i clip -f null -, clips one after another",
            "ratio": "ffmpeg seconds / process seconds",
            "predicted_clock": "floor(c0 + t) with c0 the middle of what the segment's "
                               "clock_start (at start_s) and clock_end (at end_s − 1e-6) allow "
                               "(exact when clock_start has a fraction); t = middle of each "
                               "truth reading's [t0, t1)",
            "labels": "labels.canonical(result label) == labels.canonical(truth label)",
        },
        "log": log,
        **scenarios,
        "goals": goals,
        "all_goals_pass": all(g["pass"] for g in goals),
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    write_results("overlay", args.quick, result, args.scenarios if args.partial else ())
    return 0


if __name__ == "__main__":
    sys.exit(main())
