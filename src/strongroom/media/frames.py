"""One decode pass per original, shared by every step that looks at pictures.

Decoding is the expensive part of video analysis, so it happens once (PyAV; codec threads
on unless a worker per core runs): each consumer says which video times it wants as full
frames (OCR a few points, PDQ once a second, thumbnails), and consumers that want motion get,
for *every* frame, how much it differs from the previous one — computed once, on a tiny luma
thumbnail cut straight from the decoded Y plane (no colour conversion, no scaling filter).
A consumer that can do with keyframes after a head says so (`Sparse`), and a pass whose
consumers all can decodes little more than keyframes.
"""

from __future__ import annotations

import math
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
                max_pixels: int = 0, threads: int = 0) -> PassInfo:
    """Decode the first video stream of `path` once, feeding every consumer.

    The stream's own frame size is checked against `max_pixels` before the first frame is
    decoded, and every frame's after (a stream may change size midway). Running out of memory
    (the sandbox's rlimit) is this file's `MediaError`. The pipeline calls this only inside the
    decode sandbox (`pipeline/decode.py`): never in a process that holds a key. `threads`:
    the codec's own threads (0: its choice).

    A sparse pass (`Sparse`: when every consumer says it wants, after a head, only codec
    keyframes and a few times with no keyframe near them) hands the decoder only keyframes
    after the head; the packets skipped since the last one decoded are decoded after all when
    a wanted time has no keyframe near it, and at the end (where decoding really ends). Every
    consumer receives the same frames as in a pass that decodes every frame."""
    info = _one_pass(path, consumers, duration, max_pixels, threads, sparse=True)
    if info is None:
        # the stream did what a sparse pass cannot follow (keyframes the container marks and
        # the decoder does not, keyframes it never shows, frames out of time order, an
        # error): every frame, from the start
        for consumer in consumers:
            consumer.restart()  # type: ignore[attr-defined]
        info = _one_pass(path, consumers, duration, max_pixels, threads, sparse=False)
    if info is None or info.frames == 0:
        raise MediaError(info.error if info and info.error else
                         "no video frames could be decoded")
    return info


class _Doubt(Exception):
    """A sparse pass cannot vouch for the frames it gave (`_Feed.doubt`)."""


def _one_pass(path: Path, consumers: list[FrameConsumer], duration: float, max_pixels: int,
              threads: int, *, sparse: bool) -> PassInfo | None:
    """One pass over the file; None when it was sparse and in doubt (nothing of it counts)."""
    import av

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
        # the codec's threads (0: as many as it likes; 1: none, when a worker per core runs)
        stream.thread_type = "NONE" if threads == 1 else "AUTO"
        if threads > 1:
            stream.thread_count = threads
        feed = _Feed(info, stream, consumers, duration, max_pixels, sparse=sparse)
        try:
            for packet in container.demux(stream):
                feed.packet(packet)
            feed.end()
        except _Doubt:
            return None
        except MemoryError:  # before FFmpegError: av.error.MemoryError is both
            feed.last_frame = None
            raise MediaError(f"out of memory decoding at {info.last_t:.1f} s (the decode "
                             "sandbox's limit is STRONGROOM_WORKER_MEMORY)") from None
        except av.FFmpegError as exc:
            if feed.skipping:
                return None  # (a full pass says where decoding really stops)
            info.error = f"decoding stopped at {info.last_t:.1f} s: {exc}"
        except IndexError:  # PyAV 18 does not follow a stream that appears midway (MPEG-TS)
            if feed.skipping:
                return None
            info.error = (f"decoding stopped at {info.last_t:.1f} s: a new stream appears in "
                          "the file there, which the decoder library cannot follow")
        # Times past the last frame (duration rounding, a clip cut short) get the last frame.
        if feed.last_frame is not None:
            for consumer, q in zip(consumers, feed.queues, strict=True):
                if q:
                    q.clear()
                    consumer.take(info.last_t, feed.last_frame)
    return info


#: Packets a sparse pass keeps undecoded at most (a stream whose keyframes never come, or
#: whose times never reach a wanted one, is decoded in full, not kept in memory).
MAX_SKIPPED = 4096
#: The most frames a decoder may hold back to show them in order (H.264's largest DPB).
REORDER_FRAMES = 16


@dataclass
class Sparse:
    """What a consumer that can do with keyframes wants (its `sparse(duration)`): every frame
    until `head` seconds, then each codec keyframe (`take_key`), and for each time of `near`
    ((time, tolerance) pairs) with no keyframe within its tolerance, the frame at that time
    (`take`, as for its other wanted times). Such a consumer also has `restart()`: a sparse
    pass in doubt (a stream it cannot follow) is made again in full, from the start."""

    head: float
    near: list[tuple[float, float]]


class _Feed:
    """The decoder fed packet by packet: every packet in a full pass; in a sparse one, every
    packet of the head, then keyframes only, the skipped packets kept until a wanted time needs
    them decoded (`_catch_up`)."""

    def __init__(self, info: PassInfo, stream: Any, consumers: list[FrameConsumer],
                 duration: float, max_pixels: int, *, sparse: bool) -> None:
        self.info, self.stream, self.consumers = info, stream, consumers
        self.max_pixels = max_pixels
        self.origin = (float(stream.start_time * stream.time_base)
                       if stream.start_time and stream.time_base else 0.0)
        fps = float(stream.average_rate or 25)
        self.half = 0.5 / fps
        info.frame_s = 1 / fps
        self.queues = [deque(c.wanted_times(duration)) for c in consumers]
        self.movers = [c for c in consumers if c.wants_motion]
        self.wants = wants = [_sparse_of(c, duration) for c in consumers]
        self.keyed = [(c, w.head) for c, w in zip(consumers, wants, strict=True)
                      if w is not None]
        sparse = (sparse and bool(consumers) and not self.movers
                  and all(w is not None for w in wants))
        # packets come in decoding order: a frame shown at t may come up to this much later
        # (the most frames H.264 reorders), so a wanted time is passed only this much after
        self.late = REORDER_FRAMES / fps
        self.head = max((w.head for w in wants if w is not None), default=0.0)
        #: times wanted near a keyframe, not yet satisfied: (time, tolerance)
        self.near = sorted({n for w in wants if w is not None for n in w.near}) if sparse \
            else []
        self.sparse = sparse
        self.past_head = False
        #: keyframe packets decoded after the head, and keyframes the decoder showed from the
        #: first of them on: the same in a stream a sparse pass can follow
        self.keys_fed = self.keys_shown = 0
        self.first_key: float | None = None
        self.shown_t = -math.inf  # the time of the last frame shown after the head
        self.skipped: list[Any] = []  # packets not decoded since the last one decoded
        self.prev: Any = None
        self.last_frame: Any = None

    def packet(self, packet: Any) -> None:
        t = (float(packet.pts * packet.time_base) - self.origin
             if packet.pts is not None and packet.time_base else None)
        if self.sparse and (t is None or packet.size == 0):
            # the end (the decoder is drained: what was skipped must be decoded before), or
            # a packet with no time: every packet is decoded from here on
            self._catch_up()
            self.sparse = packet.size == 0
        if not self.sparse or t is None or (not self.past_head and t <= self.head + self.late):
            self._decode(packet)  # (packets come in decoding order: once one is skipped, a
            return                # later one shown earlier may need it, and waits too)
        self.past_head = True
        # a wanted time passed with no keyframe near it: what was skipped holds its frame (a
        # keyframe starts anew, so everything shown before it came before it)
        while self.near and t > self.near[0][0] + self.near[0][1] + (
                0.0 if packet.is_keyframe else self.late):
            self._catch_up()
            self.near.pop(0)
        if packet.is_keyframe:
            self.keys_fed += 1
            self.first_key = t if self.first_key is None else self.first_key
            self.skipped = []  # the decoder needs none of them for this one
            self.near = [n for n in self.near if abs(n[0] - t) > n[1]]
            self._drop_satisfied(t)
            self._decode(packet)
        else:
            self.skipped.append(packet)
            if len(self.skipped) > MAX_SKIPPED:
                self._catch_up()  # (what a consumer receives is the same either way)

    @property
    def skipping(self) -> bool:
        """Whether packets were left undecoded (the pass is sparse and past its head)."""
        return self.sparse and self.past_head

    def end(self) -> None:
        """After the last packet: what was skipped since the last keyframe is decoded too (so
        that the pass ends where decoding really ends); a sparse pass whose keyframes the
        decoder did not all show as keyframes is in doubt."""
        self._catch_up()
        if self.past_head and self.keys_shown != self.keys_fed:
            raise _Doubt

    def _catch_up(self) -> None:
        skipped, self.skipped = self.skipped, []
        for packet in skipped:
            self._decode(packet)

    def _drop_satisfied(self, t: float) -> None:
        """A keyframe at `t` stands for the wanted times within their tolerance of it: they
        come off the queues (the frame at them is not wanted then)."""
        for want, q in zip(self.wants, self.queues, strict=True):
            done = {n[0] for n in (want.near if want is not None else [])
                    if abs(n[0] - t) <= n[1]}
            if done and q:
                kept = [x for x in q if x not in done]
                q.clear()
                q.extend(kept)

    def _decode(self, packet: Any) -> None:
        for frame in packet.decode():
            self._frame(frame)

    def _frame(self, frame: Any) -> None:
        import numpy as np

        if frame.time is None:
            return
        info = self.info
        check_frame_size(frame.width, frame.height, self.max_pixels)
        t = max(0.0, float(frame.time) - self.origin)
        if self.past_head:  # (a sparse pass, past its head)
            if t < self.shown_t - 1e-6 or getattr(frame, "is_corrupt", False):
                # frames shown out of time order, or a damaged frame the decoder patched
                # with what it decoded before (not the same before in a sparse pass)
                raise _Doubt
            self.shown_t = t
            if frame.key_frame and self.first_key is not None and t >= self.first_key - 1e-6:
                self.keys_shown += 1
        info.frames += 1
        info.last_t = t
        self.last_frame = frame
        for consumer, q in zip(self.consumers, self.queues, strict=True):
            if q and q[0] <= t + self.half:
                while q and q[0] <= t + self.half:
                    q.popleft()
                consumer.take(t, frame)
        if frame.key_frame:
            for consumer, head in self.keyed:
                if t > head + self.half:
                    consumer.take_key(t, frame)  # type: ignore[attr-defined]
        if self.movers:
            cur = _tiny_luma(frame).astype(np.int16)
            prev = self.prev
            change = (float(np.abs(cur - prev).mean())
                      if prev is not None and prev.shape == cur.shape else None)
            self.prev = cur
            key = bool(frame.key_frame)
            for consumer in self.movers:
                if consumer.motion(t, change, key):
                    consumer.take(t, frame)


def _sparse_of(consumer: FrameConsumer, duration: float) -> Sparse | None:
    """What `consumer` wants of a sparse pass (None: every frame, the default)."""
    ask = getattr(consumer, "sparse", None)
    got = ask(duration) if callable(ask) else None
    return got if isinstance(got, Sparse) else None


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
