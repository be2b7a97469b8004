"""One decode pass per original, shared by every step that looks at pictures.

Decoding is the expensive part of video analysis, so it happens once (PyAV, codec threads on):
each consumer says which video times it wants as full frames (OCR a few points, PDQ once a
second, thumbnails), and consumers that want motion get, for *every* frame, how much it differs
from the previous one — computed once, on a tiny luma thumbnail cut straight from the decoded Y
plane (no colour conversion, no scaling filter).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from strongroom.errors import MediaError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

#: Every 8th pixel of every 8th row of luma: 96×72 for 768×576; plenty for motion and cuts.
TINY_STRIDE = 8


class FrameConsumer(Protocol):
    def wanted_times(self, duration: float) -> list[float]:
        """Video times (seconds) at which this consumer wants a full frame, ascending."""
        ...

    def take(self, t: float, frame: Any) -> None:
        """Receive the first decoded frame at or after a wanted time (`av.VideoFrame`)."""
        ...

    def motion(self, t: float, change: float | None, key: bool) -> bool | None:
        """Receive, for every frame, how much it differs from the previous one (mean absolute
        difference of tiny luma, 0–255; None for the first) and whether it is a codec
        keyframe — only when `wants_motion` is true. Returning True asks for this frame in
        full (`take`)."""
        ...

    wants_motion: bool


@dataclass
class PassInfo:
    frames: int = 0
    last_t: float = 0.0
    error: str | None = None  # decoding stopped early (damaged stream); what was read is kept
    frame_s: float = 0.0  # how long one frame lasts (1/fps)

    @property
    def decoded_s(self) -> float:
        """How much video was really decoded: the last frame's time plus its own length.
        A truncated file's header still declares the whole recording; this does not."""
        return round(self.last_t + self.frame_s, 3) if self.frames else 0.0


def check_frame_size(width: int | None, height: int | None, max_pixels: int) -> None:
    """Refuse a frame bigger than `max_pixels` (0: no cap) before anything decodes it."""
    if max_pixels and width and height and width * height > max_pixels:
        raise MediaError(
            f"frame {width}×{height} ({width * height / 1e6:.1f} Mpixel) is larger than the "
            f"limit of {max_pixels / 1e6:.1f} Mpixel (STRONGROOM_MAX_PIXELS); not decoded")


def decode_pass(path: Path, consumers: list[FrameConsumer], duration: float, *,
                max_pixels: int = 0) -> PassInfo:
    """Decode the first video stream of `path` once, feeding every consumer.

    The stream's own frame size is checked against `max_pixels` before the first frame is
    decoded, and every frame's after (a stream may change size midway). Running out of memory
    (the sandbox's rlimit) is this file's `MediaError`. The pipeline calls this only inside the
    decode sandbox (`pipeline/decode.py`): never in a process that holds a key."""
    import av
    import numpy as np

    info = PassInfo()
    try:
        # local files only: a playlist inside a crafted file may name URLs; and metadata that
        # is not UTF-8 (PyAV decodes it strictly when it opens the file) is not a reason to
        # refuse the pictures
        container = av.open(str(path), options={"protocol_whitelist": "file"},
                            metadata_errors="replace")
    except av.FFmpegError as exc:
        raise MediaError(f"cannot open as video: {exc}") from None
    with container:
        if not container.streams.video:
            raise MediaError("no video stream")
        stream = container.streams.video[0]
        check_frame_size(stream.codec_context.width, stream.codec_context.height, max_pixels)
        stream.thread_type = "AUTO"
        origin = (float(stream.start_time * stream.time_base)
                  if stream.start_time and stream.time_base else 0.0)
        fps = float(stream.average_rate or 25)
        half = 0.5 / fps
        info.frame_s = 1 / fps
        queues = [deque(c.wanted_times(duration)) for c in consumers]
        movers = [c for c in consumers if c.wants_motion]
        prev: npt.NDArray[np.int16] | None = None
        last_frame: Any = None
        try:
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                check_frame_size(frame.width, frame.height, max_pixels)
                t = max(0.0, float(frame.time) - origin)
                info.frames += 1
                info.last_t = t
                last_frame = frame
                for consumer, q in zip(consumers, queues, strict=True):
                    if q and q[0] <= t + half:
                        while q and q[0] <= t + half:
                            q.popleft()
                        consumer.take(t, frame)
                if movers:
                    cur = _tiny_luma(frame).astype(np.int16)
                    change = (float(np.abs(cur - prev).mean())
                              if prev is not None and prev.shape == cur.shape else None)
                    prev = cur
                    key = bool(frame.key_frame)
                    for consumer in movers:
                        if consumer.motion(t, change, key):
                            consumer.take(t, frame)
        except MemoryError:  # before FFmpegError: av.error.MemoryError is both
            last_frame = None
            raise MediaError(f"out of memory decoding at {info.last_t:.1f} s (the decode "
                             "sandbox's limit is STRONGROOM_WORKER_MEMORY)") from None
        except av.FFmpegError as exc:
            info.error = f"decoding stopped at {info.last_t:.1f} s: {exc}"
        except IndexError:  # PyAV 18 does not follow a stream that appears midway (MPEG-TS)
            info.error = (f"decoding stopped at {info.last_t:.1f} s: a new stream appears in "
                          "the file there, which the decoder library cannot follow")
        # Times past the last frame (duration rounding, a clip cut short) get the last frame.
        if last_frame is not None:
            for consumer, q in zip(consumers, queues, strict=True):
                if q:
                    q.clear()
                    consumer.take(info.last_t, last_frame)
    if info.frames == 0:
        raise MediaError(info.error or "no video frames could be decoded")
    return info


def _tiny_luma(frame: Any) -> npt.NDArray[np.uint8]:
    import numpy as np

    plane = frame.planes[0]
    rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
    if frame.format.name.startswith(("yuv", "yuvj", "nv12", "gray")):
        small: npt.NDArray[np.uint8] = rows[: frame.height : TINY_STRIDE,
                                            : frame.width : TINY_STRIDE]
        return small
    gray = frame.reformat(width=max(1, frame.width // TINY_STRIDE),
                          height=max(1, frame.height // TINY_STRIDE), format="gray")
    out: npt.NDArray[np.uint8] = gray.to_ndarray()
    return out


def rgb(frame: Any, width: int | None = None) -> npt.NDArray[np.uint8]:
    """A frame as an RGB array, optionally scaled to `width` (keeping the aspect ratio)."""
    if width is not None and frame.width > width:
        height = max(2, round(frame.height * width / frame.width / 2) * 2)
        out: npt.NDArray[np.uint8] = frame.to_ndarray(format="rgb24", width=width,
                                                      height=height)
        return out
    full: npt.NDArray[np.uint8] = frame.to_ndarray(format="rgb24")
    return full
