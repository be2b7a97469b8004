"""Redaction for publication (issue 16): speed and recall of `strongroom publish draft` against
`deface` on the same clips in the same run.

One scenario, `faces`, on clips made by `strongroom.testfaces.faces_clip` (scikit-image's
astronaut, and its mirror image, crossing a static real photograph of a fixed camera's scene,
growing or shrinking, with grain, H.264 at CRF 30; 768×576, 25 fps; `--seconds`, default 20):
three styles — `day` (two faces 40→90 px wide), `small` (two faces 24→40 px: CCTV far from the
camera) and `night` (greyscale, low contrast). Where every face is on every frame is known.

- **Ours**, as a user runs it: `strongroom publish draft VAULT SHA --hide fill --no-audio` on
  a vault holding the clip (whole command: start-up, unseal, decrypt, the sandboxed detect +
  track + render, sealing the draft into the vault); then the draft is read back from the vault
  (`publish spec`, and the draft's pixels through the vault's own door in this process).
- **Anchor**: `deface CLIP -o OUT --replacewith solid --boxes --thresh 0.2` (deface 1.5, the
  same CenterFace model, detecting on every frame), timed the same way.
- **Speed**: frames ÷ wall seconds of each command; ratio ours ÷ deface's; goal ≥ 2.
- **Recall**: the share of frames on which every face is covered — at least 95 % of the
  pixels of its box (brow to chin) black in the output (both fill with black), counting only
  the pixels not behind another head crossing in front of it; goal: ours ≥ deface's.
- **Slips**: frames on which a face seen covered on the frames before and after is
  not covered (what a per-frame detector's missed frame does); goal for ours: 0, and its
  tracked boxes must contain every face in full view on every frame (checked on the spec
  itself; where two heads cross, the one behind shows only in part, and its pixels count).

Writes benchmarks/results/redact.json (redact.quick.json with --quick: 4-second clips).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _machine import (
    WORK_ROOT,
    bench_parser,
    goal,
    machine_facts,
    parse_bench_args,
    passphrase_env,
    print_goals,
    result_header,
    run_command,
    strongroom_cli,
    wait_quiet,
    write_results,
)

SCENARIOS = ("faces",)
WORK = WORK_ROOT / "redact"
STYLES: dict[str, dict[str, Any]] = {
    "day": {"face_px": (40, 90)},
    "small": {"face_px": (24, 40)},
    "night": {"face_px": (40, 90), "night": True},
}
#: A face counts as covered when at least this share of its box's pixels is black.
COVERED = 0.95
BLACK = 24


Box = tuple[float, float, float, float]


def covered(img: Any, box: Box, in_front: Sequence[Box] = ()) -> bool:
    """Whether the face in `box` is hidden: enough of its visible pixels (those not behind a
    head pasted in front of it, `in_front`) are black."""
    import numpy as np

    h, w = img.shape[:2]
    x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
    x1, y1 = min(w, int(box[2]) + 1), min(h, int(box[3]) + 1)
    if x1 <= x0 or y1 <= y0:
        return True  # off screen
    visible = np.ones((y1 - y0, x1 - x0), bool)
    for hx0, hy0, hx1, hy1 in in_front:
        visible[max(0, int(hy0) - y0):max(0, int(hy1) - y0),
                max(0, int(hx0) - x0):max(0, int(hx1) - x0)] = False
    if not visible.any():
        return True  # wholly behind another head
    region = img[y0:y1, x0:x1].max(axis=2)[visible]
    return float(np.mean(region <= BLACK)) >= COVERED


def frames(path: Path) -> list[Any]:
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def score(outputs: list[Any], clip: Any) -> dict[str, Any]:
    truth = clip.truth
    n = min(len(outputs), len(truth))
    hidden = [[covered(outputs[i], b, clip.heads[i][k + 1:]) for k, b in enumerate(truth[i])]
              for i in range(n)]
    ok = [all(h) for h in hidden]
    slips = sum(1 for i in range(1, n - 1) if ok[i - 1] and ok[i + 1] and not ok[i])
    faces = sum(len(t) for t in truth[:n])
    faces_ok = sum(sum(h) for h in hidden)
    return {"frames": n, "frames_all_covered": sum(ok),
            "recall_frames": round(sum(ok) / n, 4) if n else 0.0,
            "faces": faces, "faces_covered": faces_ok, "slips": slips,
            "frame_count_matches": len(outputs) == len(truth)}


def spec_contains(spec: dict[str, Any], truth: list[list[Box]],
                  occluded: list[list[bool]], size: tuple[int, int]) -> int:
    """Frames where some face in full view (no other head in front of it) is not inside one
    of the spec's boxes: geometry, no pixels."""
    from strongroom.publish.spec import tracks_from_json
    from strongroom.publish.tracking import cover

    tracks = tracks_from_json(spec["tracks"])
    bad = 0
    for i, faces in enumerate(truth):
        boxes = cover(tracks, i, hold=spec["max_gap"], size=size)
        if not all(any(b[0] <= f[0] + 1 and b[1] <= f[1] + 1 and b[2] >= f[2] - 1
                       and b[3] >= f[3] - 1 for b in boxes)
                   for f, hidden in zip(faces, occluded[i], strict=True) if not hidden):
            bad += 1
    return bad


def scenario_faces(args: Any, goals: list[dict[str, Any]], say: Callable[[str], None]
                   ) -> dict[str, Any]:
    from strongroom.testfaces import faces_clip

    cli = strongroom_cli()
    deface = str(Path(sys.executable).parent / "deface")
    env = passphrase_env()
    seconds = 4.0 if args.quick else float(args.seconds)
    styles: dict[str, Any] = {}
    out: dict[str, Any] = {"seconds_per_clip": seconds, "styles": styles}
    ours_frames = ours_s = their_frames = their_s = 0.0
    ours_ok = their_ok = total = 0
    our_slips = geometry_misses = 0
    for n, (style, kw) in enumerate(STYLES.items()):
        work = WORK / style
        shutil.rmtree(work, ignore_errors=True)
        (work / "usb").mkdir(parents=True)
        clip = faces_clip(work / "usb" / f"{style}.mp4", seed=11 + n, seconds=seconds, **kw)
        vault = work / "vault"
        subprocess.run([cli, "init", vault], env=env, check=True, capture_output=True)
        subprocess.run([cli, "ingest", vault, work / "usb", "-a", "bench"], env=env,
                       check=True, capture_output=True)
        logged: list[dict[str, str]] = json.loads(subprocess.run(
            [cli, "log", vault, "--json"], env=env, check=True, capture_output=True).stdout)
        sha256 = next(e["subject"].split(":", 1)[1] for e in logged
                      if e["action"] == "ingested")
        # ours: the whole command
        report = work / "draft.json"
        with open(report, "wb") as f:
            ours = run_command([cli, "publish", "draft", str(vault), sha256, "--hide", "fill",
                                "--no-audio", "--json"], env=env, stdout=f)
        draft = json.loads(report.read_text())
        spec = json.loads(subprocess.run([cli, "publish", "spec", vault,
                                          str(draft["publication"])], env=env, check=True,
                                         capture_output=True).stdout)
        ours_out = work / "ours.mp4"
        _draft_file(vault, draft["draft"], ours_out)
        # deface: the whole command
        their_out = work / "deface.mp4"
        theirs = run_command([deface, str(clip.path), "-o", str(their_out), "--replacewith",
                              "solid", "--boxes", "--thresh", "0.2"],
                             stderr=subprocess.DEVNULL)
        n_frames = len(clip.truth)
        s_ours, s_theirs = score(frames(ours_out), clip), score(frames(their_out), clip)
        misses = spec_contains(spec, clip.truth, clip.occluded, clip.size)
        entry: dict[str, Any] = {"frames": n_frames,
                 "ours": {"seconds": round(ours.seconds, 2),
                          "fps": round(n_frames / ours.seconds, 2), **s_ours,
                          "tracks": len(spec["tracks"]),
                          "frames_a_face_outside_its_tracked_box": misses,
                          "peak_rss_mb": ours.extra.get("peak_rss_tree_max_mb")},
                 "deface": {"seconds": round(theirs.seconds, 2),
                            "fps": round(n_frames / theirs.seconds, 2), **s_theirs,
                            "peak_rss_mb": theirs.extra.get("peak_rss_tree_max_mb")}}
        styles[style] = entry
        say(f"{style:>6}: {n_frames} frames; ours {entry['ours']['fps']:.1f} frames/s, recall "
            f"{s_ours['recall_frames']:.1%}, slips {s_ours['slips']}, tracked boxes miss a face "
            f"on {misses} frames | deface {entry['deface']['fps']:.1f} frames/s, recall "
            f"{s_theirs['recall_frames']:.1%}, slips {s_theirs['slips']}")
        ours_frames += n_frames
        their_frames += n_frames
        ours_s += ours.seconds
        their_s += theirs.seconds
        ours_ok += s_ours["frames_all_covered"]
        their_ok += s_theirs["frames_all_covered"]
        total += n_frames
        our_slips += s_ours["slips"]
        geometry_misses += misses
    ratio = (ours_frames / ours_s) / (their_frames / their_s)
    out["ratio_fps_ours_vs_deface"] = round(ratio, 3)
    out["recall_ours"] = round(ours_ok / total, 4)
    out["recall_deface"] = round(their_ok / total, 4)
    say(f"all styles: ours {ours_frames / ours_s:.1f} frames/s vs deface "
        f"{their_frames / their_s:.1f} → ratio {ratio:.2f}; recall ours "
        f"{out['recall_ours']:.1%} vs deface {out['recall_deface']:.1%}")
    goal(goals, "publish draft frames/s ÷ deface frames/s (whole commands)", ratio, 2, "min",
         "×")
    goal(goals, "recall (frames with every face covered): ours − deface's",
         (ours_ok - their_ok) / total * 100, 0, "min", " points")
    goal(goals, "frames where a face slips out of our redaction", our_slips, 0, "max")
    goal(goals, "frames where a face lies outside our tracked boxes", geometry_misses, 0, "max")
    return out


def _draft_file(vault: Path, sha256: str, dest: Path) -> None:
    """The draft's plaintext, read from the vault (the benchmark's own check, in process)."""
    from sqlalchemy import select

    from strongroom.catalogue.models import Derivative
    from strongroom.settings import Settings
    from strongroom.vault import Vault

    with Vault.open(Settings(vault=vault), os.environ.get("STRONGROOM_PASSPHRASE")
                    or passphrase_env()["STRONGROOM_PASSPHRASE"]) as v:
        with v.catalogue.read() as s:
            row = s.scalar(select(Derivative).where(Derivative.sha256 == sha256).limit(1))
            s.expunge_all()
        if row is None:
            raise SystemExit(f"the draft {sha256} is not in the vault")
        dest.write_bytes(v.read_derivative_bytes(row))


def main(argv: Sequence[str] | None = None) -> int:
    ap = bench_parser(__doc__, repeat=1, quick_repeat=1, scenarios=SCENARIOS)
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each clip")
    args = parse_bench_args(ap, argv)
    started = time.perf_counter()
    log: list[str] = []

    def say(text: str) -> None:
        log.append(text)
        print(text, flush=True)

    result = result_header("redact", args, machine_facts(
        tools=[["ffmpeg", "-version"]], packages=["deface", "opencv-python-headless"]))
    result["busy_before_start"] = round(wait_quiet(args.wait_quiet), 3)
    goals: list[dict[str, Any]] = []
    scenarios: dict[str, Any] = {}
    try:
        if "faces" in args.scenarios:
            scenarios["faces"] = scenario_faces(args, goals, say)
    finally:
        if not args.keep:
            shutil.rmtree(WORK, ignore_errors=True)
    print_goals(goals)
    result |= {
        "method": {
            "ours": "strongroom publish draft VAULT SHA --hide fill --no-audio (whole command)",
            "anchor": "deface CLIP -o OUT --replacewith solid --boxes --thresh 0.2 (whole "
                      "command)",
            "recall": f"a face is covered when ≥ {COVERED:.0%} of its box's pixels are black "
                      f"(max channel ≤ {BLACK}) in the output",
        },
        "log": log, "scenarios": scenarios, "goals": goals,
        "all_goals_pass": all(g["pass"] for g in goals),
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    write_results("redact", args.quick, result, args.scenarios if args.partial else ())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
