"""The redaction spec: what a publication hides where, as JSON a person can read, correct and
hand back (`strongroom publish spec`, then `publish revise`), and the catalogue keeps per
version.

    {"schema": "strongroom.redaction/1", "original": SHA-256, "start": s, "end": s | null,
     "hide": "blur" | "fill", "mask_voice": bool, "keep_audio": bool, "fps": f,
     "frames": n, "width": w, "height": h, "max_gap": frames,
     "tracks": [{"id": n, "boxes": {"FRAME": [x0, y0, x1, y1], ...}}, ...]}

A track may say `"follow": true` (a box a person drew around a face too small to detect, a
body, a tattoo): the next render follows it across the range by template matching and adds its
keys (`publish.render.follow`). Frames count from the range's start. Between two keys of a
track its box is interpolated, and
it is held on for `max_gap` frames before its first key and after its last
(`publish.tracking`). A spec handed back is checked whole before anything is rendered: one
clear error for a malformed one (`check`), never a render that silently hides less.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

from strongroom.errors import StrongroomError
from strongroom.publish.tracking import Track

SCHEMA = "strongroom.redaction/1"
#: Bounds on what a spec may hold (a crafted one must not make the renderer work forever).
MAX_TRACKS = 2000
MAX_KEYS = 200_000
MAX_FRAME = 10_000_000


def digest(spec: dict[str, Any]) -> str:
    """SHA-256 of the spec's canonical JSON (sorted keys, no spaces): what the provenance and
    the custody log name."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def tracks_from_json(tracks: list[dict[str, Any]]) -> list[Track]:
    return [Track(int(t["id"]), {int(f): (float(b[0]), float(b[1]), float(b[2]), float(b[3]))
                                 for f, b in t["boxes"].items()}) for t in tracks]


def _bad(why: str) -> StrongroomError:
    return StrongroomError(f"the redaction spec is malformed: {why}")


_FRAME = re.compile(r"[0-9]{1,8}")


def _number(v: object) -> bool:
    """A finite JSON number, not a boolean, within what any frame's pixels need."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    return -1e7 < v < 1e7 and (isinstance(v, int) or math.isfinite(v))


def check(spec: object, *, original: str, width: int, height: int,
          start: object = None, end: object = None, frames: object = None
          ) -> dict[str, Any]:
    """The spec if it is whole and fits the clip (`width` × `height`) and the publication's
    range (`start`, `end`: a spec made for another range would put its boxes on other
    frames; `frames`: the range's frame count, when known); else one clear error."""
    if not isinstance(spec, dict):
        raise _bad("it is not a JSON object")
    if spec.get("schema") != SCHEMA:
        raise _bad(f"its schema is {spec.get('schema')!r:.80}, not {SCHEMA!r}")
    if spec.get("original") != original:
        raise _bad("it is for another original")
    if (spec.get("start"), spec.get("end")) != (start, end):
        raise _bad(f"it is for the range {spec.get('start')!r:.40}–{spec.get('end')!r:.40} s, "
                   f"not this publication's {start}–{end} s")
    if not isinstance(spec.get("keep_audio", True), bool):
        raise _bad("keep_audio must be true or false")
    if spec.get("hide") not in ("blur", "fill"):
        raise _bad("hide must be blur or fill")
    if not isinstance(spec.get("mask_voice"), bool):
        raise _bad("mask_voice must be true or false")
    gap = spec.get("max_gap")
    if not isinstance(gap, int) or isinstance(gap, bool) or not 0 <= gap <= 10_000:
        raise _bad("max_gap must be a whole number of frames, 0 to 10000")
    tracks = spec.get("tracks")
    if not isinstance(tracks, list) or len(tracks) > MAX_TRACKS:
        raise _bad(f"tracks must be a list of at most {MAX_TRACKS}")
    ids: set[int] = set()
    keys = 0
    for n, t in enumerate(tracks):
        if not isinstance(t, dict) or not isinstance(t.get("boxes"), dict) or not t["boxes"]:
            raise _bad(f"track {n + 1} has no boxes")
        if not isinstance(t.get("follow", False), bool):
            raise _bad(f"track {n + 1}: follow must be true or false")
        tid = t.get("id")
        if (not isinstance(tid, int) or isinstance(tid, bool) or tid in ids
                or not 0 <= tid < 10**9):
            raise _bad(f"track {n + 1} has no id of its own")
        ids.add(tid)
        for frame, box in t["boxes"].items():
            keys += 1
            if not (isinstance(frame, str) and _FRAME.fullmatch(frame)
                    and int(frame) <= MAX_FRAME):
                raise _bad(f"track {tid}: {frame!r:.40} is not a frame number")
            if isinstance(frames, int) and int(frame) >= frames:
                raise _bad(f"track {tid}: frame {frame} is past the range's last frame "
                           f"({frames - 1})")
            if not isinstance(box, list) or len(box) != 4 or not all(map(_number, box)):
                raise _bad(f"track {tid}, frame {frame}: a box is four numbers")
            x0, y0, x1, y1 = box
            if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
                raise _bad(f"track {tid}, frame {frame}: the box {box} is not inside the "
                           f"{width}×{height} frame")
    if keys > MAX_KEYS:
        raise _bad(f"more than {MAX_KEYS} boxes")
    return spec


def make(original: str, record: dict[str, Any], *, start: float, end: float | None,
         hide: str, mask_voice: bool, keep_audio: bool = True) -> dict[str, Any]:
    """The spec of a render (`publish.render`'s record)."""
    return {"schema": SCHEMA, "original": original, "start": start, "end": end,
            "hide": hide, "mask_voice": mask_voice, "keep_audio": keep_audio,
            "fps": record["fps"], "frames": record["frames"], "width": record["width"],
            "height": record["height"], "max_gap": record["max_gap"],
            "tracks": record["tracks"]}
