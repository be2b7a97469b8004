"""ffprobe → the facts an investigator needs first about a file: what it is, how long, how big."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from strongroom.errors import MediaError
from strongroom.media.run import run_tool, which

#: Input options of every ffprobe/ffmpeg run on an original: a playlist (HLS, concat) inside a
#: crafted file may name URLs; only local files are opened (the tool has no network anyway:
#: `run_tool(isolate=True)`; this holds where the network could not be taken away).
READ_LOCAL_ONLY = ("-protocol_whitelist", "file")
#: RLIMIT_FSIZE of ffprobe: it writes no file at all.
TOOL_FILE_SIZE = 16 * 1024**2

#: Tags worth keeping: they date a file or name the recorder/software that wrote it.
_TAGS = ("creation_time", "encoder", "handler_name", "major_brand", "com.apple.quicktime.make",
         "com.apple.quicktime.model", "location", "title", "comment")


@dataclass
class MediaFacts:
    status: str  # ok | not_media
    container: str | None = None
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    bitrate: int | None = None
    has_audio: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    pix_fmt: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def has_video(self) -> bool:
        return self.video_codec is not None


def probe(path: Path, *, timeout: float = 120) -> tuple[MediaFacts, list[str]]:
    """Facts about `path` and the ffprobe command used. A file ffprobe cannot read as media
    raises `MediaError` with ffprobe's reason (e.g. "moov atom not found" for a truncated MP4)."""
    argv = [which("ffprobe"), "-v", "error", "-hide_banner", *READ_LOCAL_ONLY,
            "-print_format", "json", "-show_format", "-show_streams", str(path)]
    try:
        res = run_tool(argv, timeout=timeout, what=path.name, isolate=True,
                       file_size=TOOL_FILE_SIZE)
    except MediaError:
        if _looks_like_text(path):  # notes.txt on the stick: not media, not damaged
            return MediaFacts(status="not_media", container="text"), argv
        raise
    try:
        data = json.loads(res.stdout or b"{}")
    except json.JSONDecodeError as exc:
        raise MediaError(f"ffprobe gave unreadable output: {exc}") from None
    return parse(data, res.stderr), argv


def parse(data: dict[str, Any], stderr: str = "") -> MediaFacts:
    fmt = data.get("format") or {}
    streams = data.get("streams") or []
    video = next((s for s in streams if s.get("codec_type") == "video"
                  and not (s.get("disposition") or {}).get("attached_pic")), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    container = fmt.get("format_name")
    if video is None and audio is None:
        return MediaFacts(status="not_media", container=container)
    if container in ("image2", "png_pipe", "jpeg_pipe", "tty") and audio is None:
        return MediaFacts(status="not_media", container=container)
    tags = {k: str(v) for k, v in {**(fmt.get("tags") or {}),
                                  **((video or {}).get("tags") or {})}.items() if k in _TAGS}
    facts = MediaFacts(
        status="ok",
        container=container,
        duration=_float(fmt.get("duration")) or _float((video or {}).get("duration")),
        width=_int((video or {}).get("width")),
        height=_int((video or {}).get("height")),
        fps=_rate((video or {}).get("avg_frame_rate")) or _rate((video or {}).get("r_frame_rate")),
        video_codec=(video or {}).get("codec_name"),
        audio_codec=(audio or {}).get("codec_name"),
        bitrate=_int(fmt.get("bit_rate")),
        has_audio=audio is not None,
        tags=tags,
        pix_fmt=(video or {}).get("pix_fmt"),
    )
    if facts.video_codec is not None and not facts.duration:
        raise MediaError("ffprobe found a video stream but no duration (damaged file?)"
                         + (f": {stderr.strip()[-300:]}" if stderr.strip() else ""))
    return facts


def _looks_like_text(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(4096)
    if not head or b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 4  # a multi-byte character cut at the end
    return True


def _float(v: Any) -> float | None:
    """A number ffprobe printed; None for N/A and for what is no length or size at all (a
    crafted header can declare inf, nan or a negative duration)."""
    try:
        f = float(v) if v not in (None, "N/A") else None
    except (TypeError, ValueError):
        return None
    return f if f is not None and math.isfinite(f) and f >= 0 else None


def _int(v: Any) -> int | None:
    f = _float(v)
    return int(f) if f is not None else None


def _rate(v: Any) -> float | None:
    if not v or v in ("0/0", "N/A"):
        return None
    try:
        r = Fraction(str(v))
    except (ValueError, ZeroDivisionError):
        return None
    return round(float(r), 3) if r > 0 else None
