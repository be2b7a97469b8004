"""Hostile media fuzz campaign: ≥ 10,000 crafted files through the code that parses originals.

Issue 13, point 4: every decoder runs in a sandbox (`strongroom.media.sandbox`: rlimits,
wall-clock timeout, no network, a private dir), so no file can take down the worker that holds
the vault's identity, nor `strongroom process`; and every file gets a clear error.

Scenarios (`--only campaign,runner`):

1. **campaign.** Seed clips made here by ffmpeg (testsrc2 with a burnt-in clock, 1–2 s,
   176×144 or smaller: H.264 in MP4 (index last and first)/MKV/MPEG-TS/raw Annex B, HEVC in
   MP4, MPEG-4 Part 2 in AVI/MP4, MJPEG in AVI/MKV, H.263 in 3GP, a still picture in MPEG-TS)
   and a seeded,
   deterministic mutation engine (case N is always the same bytes: `--case N --write F`):
   truncation, bit flips, byte overwrites, chunk duplication and deletion, huge declared
   dimensions (the H.264 SPS in raw streams, inside MP4's avcC — box sizes and chunk offsets
   fixed up — and inside MPEG-TS at the same length (the SEI after it gives up the bytes),
   MP4 tkhd and sample entries, AVI avih/strf, MKV PixelWidth/Height, every JPEG's SOF), absurd
   durations and timescales (mvhd/mdhd/stts/elst, avih/strh, MKV TimestampScale, Duration,
   DefaultDuration), frame floods (one P-slice repeated tens of thousands of times in raw
   H.264, the last TS packets repeated thousands of times, MP4 sample counts and AVI frame
   counts in the millions and billions), random bytes behind a valid header,
   and splices of two seeds; one to three per case. Each case runs through
   `strongroom.pipeline.worker.analyse` — what a pipeline worker runs on a decrypted
   original: ffprobe (isolated tool), then ONE sandboxed PyAV decode pass feeding keyframes,
   scenes and perceptual_hash (and overlay_ocr's frame reading), their finish, and the OCR
   on the frames handed back — in a process pool of `--workers` spawned workers, as the
   runner's. OCR (`overlay_ocr`, tesseract + RapidOCR on the decoded frames) runs on every
   `--ocr-every`th case and the `proxy` step (ffmpeg transcode + poster) on every
   `--proxy-every`th: pixels are not hostile the way bitstreams are, and they cost the most
   time. Derived files are checked (a plain, non-empty file) instead of encrypted (no vault).
   Counted: outcome per case (ok, partial, not a video, and each kind of clear error:
   unreadable by ffprobe, frame over the pixel cap, decode error, timeout, memory limit, CPU
   limit, file-size limit, sandboxed child crashed or killed), workers that died (the
   sandbox's parent: must be 0; the harness recovers as the runner does and re-runs the
   lost cases alone to name the killer), errors with no clear message (a bug's
   `Name: text (file.py:line)`, or none: must be 0), wall time.
2. **runner.** A sample of the campaign's cases, stratified by outcome (every kind
   represented), ingested into a real vault and processed by the real `strongroom process
   --json --workers 2` (all default steps, production limits), then `strongroom verify`: the
   command must exit 0 or 1 (never die), report no worker deaths, leave a step_run row for
   every step of every original, each error clear, and verify clean.

Campaign limits (stated in the result): the decode timeout is `--decode-timeout` (default 8 s;
production: 120 s + 2 s per declared second) and ffprobe/ffmpeg's `--tool-timeout` (20 s), so
that hangs cost seconds, not minutes; the sandbox's memory budget is 1 GiB (production: 4 GiB)
because two bombs may run at once on a shared machine; the pixel cap is production's.

Writes benchmarks/results/fuzz.json (fuzz.quick.json with --quick: ~200 cases, ~20 in the
runner sample). Generated data lives in benchmarks/work/fuzz/ (removed unless --keep).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import random
import re
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _machine import (
    WORK_ROOT,
    CpuWatch,
    bench_parser,
    goal,
    machine_facts,
    parse_bench_args,
    passphrase_env,
    print_goals,
    result_header,
    strongroom_cli,
    wait_quiet,
    write_results,
)

WORK = WORK_ROOT / "fuzz"
SCENARIOS = ("campaign", "runner")
FULL_CASES, QUICK_CASES = 10_000, 200
FULL_SAMPLE, QUICK_SAMPLE = 300, 20
BASE_STEPS = ("probe", "keyframes", "scenes", "perceptual_hash")
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
#: What a bug (not bad input) looks like in an error: `TypeError: ... (file.py:123)` — the
#: place `describe_bug` appends; no clear message ends so.
BUG = re.compile(r"\(\w+\.py:\d+\)$")


# --- seeds -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Seed:
    name: str  # file name, its suffix says the container
    codec: str
    args: tuple[str, ...]  # ffmpeg output options
    size: str = "176x144"
    rate: int = 10
    seconds: float = 1.5
    source: str = "testsrc2"


_CLOCK = (f"drawtext=fontfile={FONT}:fontsize=12:fontcolor=white:box=1:boxcolor=black:"
          "x=4:y=4:text='14-03-2020 02\\:17\\:%{eif\\:10+t\\:d\\:2}'")
SEEDS = (
    Seed("h264.mp4", "h264", ("-c:v", "libx264", "-profile:v", "baseline", "-pix_fmt",
                              "yuv420p", "-x264-params", "threads=1")),
    Seed("h264.mkv", "h264", ("-c:v", "libx264", "-profile:v", "main", "-pix_fmt", "yuv420p",
                              "-x264-params", "threads=1")),
    Seed("h264.ts", "h264", ("-c:v", "libx264", "-pix_fmt", "yuv420p", "-x264-params",
                             "threads=1", "-f", "mpegts")),
    Seed("h264.h264", "h264", ("-c:v", "libx264", "-profile:v", "baseline", "-pix_fmt",
                               "yuv420p", "-x264-params", "threads=1", "-f", "h264")),
    Seed("hevc.mp4", "hevc", ("-c:v", "libx265", "-pix_fmt", "yuv420p", "-x265-params",
                              "log-level=error:pools=1:frame-threads=1", "-tag:v", "hvc1")),
    Seed("mpeg4.avi", "mpeg4", ("-c:v", "mpeg4", "-q:v", "5")),
    Seed("mpeg4.mp4", "mpeg4", ("-c:v", "mpeg4", "-q:v", "5")),
    Seed("mjpeg.avi", "mjpeg", ("-c:v", "mjpeg", "-q:v", "6", "-pix_fmt", "yuvj420p")),
    Seed("mjpeg.mkv", "mjpeg", ("-c:v", "mjpeg", "-q:v", "6", "-pix_fmt", "yuvj420p")),
    Seed("h263.3gp", "h263", ("-c:v", "h263", "-q:v", "6")),
    Seed("h264_faststart.mp4", "h264", ("-c:v", "libx264", "-pix_fmt", "yuv420p",
                                        "-x264-params", "threads=1", "-movflags", "+faststart")),
    # still frames: its P-frames are a few bytes each, the stuff of frame floods
    Seed("static.ts", "h264", ("-c:v", "libx264", "-pix_fmt", "yuv420p", "-bf", "0", "-g",
                               "1000", "-x264-params", "threads=1", "-f", "mpegts"),
         size="64x64", rate=25, seconds=2.0, source="color=c=gray"),
)


def make_seeds(out: Path) -> dict[str, bytes]:
    out.mkdir(parents=True, exist_ok=True)
    seeds = {}
    for s in SEEDS:
        path = out / s.name
        if not path.is_file():
            vf = _CLOCK if s.source == "testsrc2" else "null"
            src = f"{s.source}{':' if '=' in s.source else '='}s={s.size}:r={s.rate}"
            subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", src,
                            "-t", str(s.seconds), "-vf", vf, *s.args, "-fflags", "+bitexact",
                            "-map_metadata", "-1", str(path)], check=True)
        seeds[s.name] = path.read_bytes()
    return seeds


# --- structure: where the fields are -----------------------------------------------------------

MP4_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf", b"udta"}
MP4_ENTRIES = {b"avc1", b"hvc1", b"hev1", b"mp4v", b"s263", b"mjpa", b"jpeg", b"encv"}


@dataclass
class Box:
    start: int  # offset of the size field
    size: int
    kind: bytes
    parents: tuple[int, ...]  # offsets of the enclosing boxes (their size fields)

    @property
    def body(self) -> int:
        return self.start + 8


def mp4_boxes(data: bytes) -> list[Box]:
    """Every box of interest (32-bit sizes only; enough for ffmpeg's own files)."""
    found: list[Box] = []

    def walk(start: int, end: int, parents: tuple[int, ...]) -> None:
        at = start
        while at + 8 <= end:
            size, kind = struct.unpack_from(">I4s", data, at)
            if size < 8 or at + size > end:
                return
            box = Box(at, size, kind, parents)
            found.append(box)
            if kind in MP4_CONTAINERS:
                walk(at + 8, at + size, (*parents, at))
            elif kind == b"stsd":
                walk(at + 16, at + size, (*parents, at))
            elif kind in MP4_ENTRIES:
                walk(at + 8 + 78, at + size, (*parents, at))  # avcC, hvcC, esds ...
            at += size

    walk(0, len(data), ())
    return found


def first(boxes: list[Box], *kinds: bytes) -> list[Box]:
    return [b for b in boxes if b.kind in kinds]


def ebml_vint(data: bytes, at: int) -> tuple[int, int]:
    """(value, length) of the EBML variable-length integer at `at`."""
    b = data[at]
    length = 1
    while length <= 8 and not b & (0x80 >> (length - 1)):
        length += 1
    if length > 8 or at + length > len(data):
        raise ValueError("bad vint")
    value = b & (0xFF >> length)
    for x in data[at + 1:at + length]:
        value = value << 8 | x
    return value, length


MKV_MASTERS = {0x18538067, 0x1654AE6B, 0xAE, 0xE0, 0x1549A966}
MKV_LEAVES = {0xB0: "PixelWidth", 0xBA: "PixelHeight", 0x2AD7B1: "TimestampScale",
              0x4489: "Duration", 0x23E383: "DefaultDuration"}


def mkv_fields(data: bytes) -> list[tuple[str, int, int]]:
    """(name, value offset, value length) of the MKV fields we patch."""
    out: list[tuple[str, int, int]] = []

    def walk(at: int, end: int) -> None:
        while at < end:
            try:
                ident_len = ebml_vint(data, at)[1]
                ident = int.from_bytes(data[at:at + ident_len], "big")
                size, size_len = ebml_vint(data, at + ident_len)
            except (ValueError, IndexError):
                return
            body = at + ident_len + size_len
            if size == (1 << (7 * size_len)) - 1:  # unknown size: runs to the end
                size = end - body
            if ident in MKV_MASTERS:
                walk(body, min(end, body + size))
            elif ident in MKV_LEAVES:
                out.append((MKV_LEAVES[ident], body, size))
            elif ident == 0x1F43B675:  # a cluster: frames, nothing to patch
                pass
            at = body + size

    walk(0, len(data))
    return out


def riff_chunk(data: bytes, tag: bytes, nth: int = 0) -> int | None:
    at = -1
    for _ in range(nth + 1):
        at = data.find(tag, at + 1)
        if at < 0:
            return None
    return at + 8


# --- H.264 SPS --------------------------------------------------------------------------------

HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}


def unescape(nal: bytes) -> bytes:
    return re.sub(b"\x00\x00\x03(?=[\x00-\x03])", b"\x00\x00", nal)


def escape(rbsp: bytes) -> bytes:
    out = bytearray()
    zeros = 0
    for b in rbsp:
        if zeros >= 2 and b <= 3:
            out.append(3)
            zeros = 0
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def ue(v: int) -> str:
    code = bin(v + 1)[2:]
    return "0" * (len(code) - 1) + code


def patch_sps(nal: bytes, w_mbs: int, h_mbs: int) -> bytes | None:
    """The SPS NAL `nal` (header byte included, escaped) declaring a picture of `w_mbs`×`h_mbs`
    macroblocks; None when its layout is one this does not rewrite."""
    bits = "".join(f"{b:08b}" for b in unescape(nal[1:]))
    pos = 24  # profile, constraints, level

    def read_ue() -> int:
        nonlocal pos
        zeros = 0
        while bits[pos] == "0":
            zeros += 1
            pos += 1
        value = int(bits[pos:pos + zeros + 1], 2) - 1
        pos += zeros + 1
        return value

    try:
        profile = int(bits[:8], 2)
        read_ue()  # sps id
        if profile in HIGH_PROFILES:
            if read_ue() == 3:  # chroma_format_idc
                pos += 1
            read_ue()
            read_ue()
            pos += 1
            if bits[pos] == "1":  # scaling matrices: not rewritten
                return None
            pos += 1
        read_ue()  # log2_max_frame_num
        poc = read_ue()
        if poc == 0:
            read_ue()
        elif poc == 1:
            return None
        read_ue()  # max_num_ref_frames
        pos += 1  # gaps allowed
        head = pos
        read_ue()
        read_ue()
        rest = bits[pos:].rstrip("0")[:-1]  # without the stop bit and its alignment
    except (IndexError, ValueError):
        return None
    new = bits[:head] + ue(w_mbs - 1) + ue(h_mbs - 1) + rest + "1"
    new += "0" * (-len(new) % 8)
    rbsp = int(new, 2).to_bytes(len(new) // 8, "big")
    return nal[:1] + escape(rbsp)


def annexb_nals(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of every NAL (after its start code) in an Annex B stream."""
    starts = [m.end() for m in re.finditer(b"\x00\x00\x01", data)]
    out = []
    for i, s in enumerate(starts):
        end = starts[i + 1] - 3 if i + 1 < len(starts) else len(data)
        while end > s and data[end - 1] == 0:  # a 4-byte start code's leading zero
            end -= 1
        out.append((s, end))
    return out


def ts_video(d: bytes) -> tuple[int, list[int]]:
    """The video PID of an MPEG-TS file (ffmpeg's first elementary stream, 0x100) and the
    offsets of its packets."""
    pid = 0x100
    packets = [at for at in range(0, len(d) - 187, 188)
               if d[at] == 0x47 and ((d[at + 1] & 0x1F) << 8 | d[at + 2]) == pid]
    return pid, packets


def ts_first_pes(d: bytes) -> list[int]:
    """File offsets of the payload bytes of the first video PES, in order."""
    _pid, packets = ts_video(d)
    offsets: list[int] = []
    for n, at in enumerate(packets):
        if n and d[at + 1] & 0x40:  # the next PES starts
            break
        start = at + 4
        if d[at + 3] & 0x20:  # adaptation field
            start += 1 + d[at + 4]
        offsets += range(start, at + 188)
    return offsets


def ts_sps(d: bytes, w_mbs: int, h_mbs: int) -> bytes | None:
    """The TS with its first SPS declaring `w_mbs`×`h_mbs` macroblocks, at the same length:
    the NAL after it (x264's SEI, or the PPS) gives up or takes the bytes the SPS gains or
    loses, so every TS packet stays where it was."""
    offsets = ts_first_pes(d)
    payload = bytes(d[o] for o in offsets)
    nals = annexb_nals(payload)
    for k, (s0, e0) in enumerate(nals[:-1]):
        if payload[s0] & 0x1F != 7:
            continue
        new = patch_sps(payload[s0:e0], w_mbs, h_mbs)
        s1, e1 = nals[k + 1]
        grow = len(new) - (e0 - s0) if new is not None else 0
        if new is None or e1 - s1 - grow < 2:
            return None
        following = payload[s1:e1]
        following = following[:len(following) - grow] if grow >= 0 else following + bytes(-grow)
        rebuilt = payload[:s0] + new + payload[e0:s1] + following + payload[e1:]
        if len(rebuilt) != len(payload):
            return None
        b = bytearray(d)
        for o, x in zip(offsets, rebuilt, strict=True):
            b[o] = x
        return bytes(b)
    return None


# --- the mutation engine ------------------------------------------------------------------------

Mutator = Callable[[random.Random, bytes, str], tuple[bytes, str]]
BIG_SIZES = ((16000, 16000), (32767, 32767), (65535, 65535), (8192, 8192), (65535, 1),
             (1, 65535), (0, 0), (7680, 4320), (4097, 4097), (30000, 30000), (16384, 2))
ODD_TIMES = (0, 1, 2, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1000, 90000)


def m_truncate(rng: random.Random, d: bytes, name: str) -> tuple[bytes, str]:
    cut = rng.choice((rng.randrange(1, max(2, len(d))), rng.randrange(1, min(len(d), 2048)),
                      len(d) - rng.randrange(1, min(len(d), 4096))))
    return d[:cut], f"truncate@{cut}"


def m_flip(rng: random.Random, d: bytes, name: str) -> tuple[bytes, str]:
    b = bytearray(d)
    n = rng.choice((1, 2, 4, 8, 16, 64))
    head = rng.random() < 0.3
    for _ in range(n):
        at = rng.randrange(min(len(b), 1024)) if head else rng.randrange(len(b))
        b[at] ^= 1 << rng.randrange(8)
    return bytes(b), f"flip{n}{'@head' if head else ''}"


def m_bytes(rng: random.Random, d: bytes, name: str) -> tuple[bytes, str]:
    b = bytearray(d)
    n = rng.choice((1, 4, 16))
    for _ in range(n):
        b[rng.randrange(len(b))] = rng.choice((0, 0xFF, 0x7F, 0x80, rng.randrange(256)))
    return bytes(b), f"bytes{n}"


def m_dup(rng: random.Random, d: bytes, name: str) -> tuple[bytes, str]:
    a = rng.randrange(len(d))
    n = rng.randrange(1, min(4096, len(d) - a) + 1)
    times = rng.choice((1, 1, 2, 8))
    at = rng.randrange(len(d) + 1)
    return d[:at] + d[a:a + n] * times + d[at:], f"dup{n}x{times}"


def m_delete(rng: random.Random, d: bytes, name: str) -> tuple[bytes, str]:
    a = rng.randrange(len(d))
    n = rng.randrange(1, min(4096, len(d) - a) + 1)
    return d[:a] + d[a + n:], f"delete{n}"


def m_huge(rng: random.Random, d: bytes, name: str) -> tuple[bytes, str]:
    """Huge (or absurd) declared dimensions, where this container or codec keeps them."""
    w, h = rng.choice(BIG_SIZES)
    b = bytearray(d)
    where = []
    if name.endswith(".h264"):
        for s, e in annexb_nals(d):
            if d[s] & 0x1F == 7:
                new = patch_sps(d[s:e], max(1, w // 16), max(1, h // 16))
                if new is not None:
                    return d[:s] + new + d[e:], f"huge:sps{w}x{h}"
    if name.endswith(".ts") and rng.random() < 0.7:
        patched = ts_sps(d, max(1, w // 16), max(1, h // 16))
        if patched is not None:
            return patched, f"huge:ts-sps{w}x{h}"
    if name.endswith((".mp4", ".3gp")):
        boxes = mp4_boxes(d)
        if rng.random() < 0.5 and (avcc := first(boxes, b"avcC")):
            patched = _avcc_sps(d, avcc[0], max(1, w // 16), max(1, h // 16))
            if patched is not None:
                return patched, f"huge:avcC-sps{w}x{h}"
        for box in first(boxes, b"tkhd"):
            off = box.body + (88 if d[box.body] == 1 else 76)
            struct.pack_into(">II", b, off, min(w, 65535) << 16, min(h, 65535) << 16)
            where.append("tkhd")
        for box in first(boxes, *MP4_ENTRIES):
            struct.pack_into(">HH", b, box.body + 24, min(w, 65535), min(h, 65535))
            where.append(box.kind.decode())
    if name.endswith(".avi"):
        if (at := riff_chunk(d, b"avih")) is not None:
            struct.pack_into("<II", b, at + 32, w, h)
            where.append("avih")
        if (at := riff_chunk(d, b"strf")) is not None:
            struct.pack_into("<ii", b, at + 4, w, h)
            where.append("strf")
    if name.endswith(".mkv"):
        for field_name, at, n in mkv_fields(d):
            if field_name in ("PixelWidth", "PixelHeight") and 1 <= n <= 8:
                v = w if field_name == "PixelWidth" else h
                b[at:at + n] = min(v, (1 << (8 * n)) - 1).to_bytes(n, "big")
                where.append(field_name)
    if b"\xff\xd8" in d[:64] or name.startswith("mjpeg"):  # every JPEG's SOF0/SOF2
        at, n = 0, 0
        every = rng.random() < 0.5
        while (at := b.find(b"\xff\xc0", at)) >= 0 and at + 9 <= len(b):
            if every or n == 0:
                struct.pack_into(">HH", b, at + 5, min(h, 65535), min(w, 65535))
            n += 1
            at += 2
        if n:
            where.append("sof")
    if not where:
        return m_flip(rng, d, name)
    return bytes(b), f"huge:{'+'.join(sorted(set(where)))}{w}x{h}"


def _avcc_sps(d: bytes, avcc: Box, w_mbs: int, h_mbs: int) -> bytes | None:
    """The MP4 with its avcC's first SPS rewritten; every enclosing box's size follows. ffmpeg
    writes the index (moov) after the frames, so no chunk offset moves."""
    body = avcc.body
    if avcc.size < 8 + 8 or d[body + 5] & 0x1F < 1:
        return None
    n = struct.unpack_from(">H", d, body + 6)[0]
    sps = d[body + 8:body + 8 + n]
    new = patch_sps(sps, w_mbs, h_mbs)
    if new is None:
        return None
    delta = len(new) - len(sps)
    b = bytearray(d[:body + 6] + struct.pack(">H", len(new)) + new + d[body + 8 + n:])
    for at in (*avcc.parents, avcc.start):
        struct.pack_into(">I", b, at, struct.unpack_from(">I", b, at)[0] + delta)
    mdat = first(mp4_boxes(d), b"mdat")
    if mdat and avcc.start < mdat[0].start:  # the index comes first: the frames moved
        for box in first(mp4_boxes(bytes(b)), b"stco"):
            count = struct.unpack_from(">I", b, box.body + 4)[0]
            for k in range(min(count, (box.size - 16) // 4)):
                at = box.body + 8 + 4 * k
                struct.pack_into(">I", b, at, struct.unpack_from(">I", b, at)[0] + delta)
    return bytes(b)


def m_time(rng: random.Random, d: bytes, name: str) -> tuple[bytes, str]:
    """Absurd durations, timescales, frame rates."""
    b = bytearray(d)
    v = rng.choice(ODD_TIMES)
    where = []
    if name.endswith((".mp4", ".3gp")):
        boxes = mp4_boxes(d)
        for box in first(boxes, b"mvhd", b"mdhd"):
            v1 = d[box.body] == 1
            if rng.random() < 0.5:
                struct.pack_into(">I", b, box.body + (20 if v1 else 12), v)
                where.append(f"{box.kind.decode()}.timescale")
            else:
                fmt = ">Q" if v1 else ">I"
                struct.pack_into(fmt, b, box.body + (24 if v1 else 16),
                                 v if not v1 else v << 20)
                where.append(f"{box.kind.decode()}.duration")
        for box in first(boxes, b"stts", b"elst"):
            if box.size >= 24 and rng.random() < 0.5:
                struct.pack_into(">I", b, box.body + 12, v)
                where.append(box.kind.decode())
    if name.endswith(".avi"):
        if (at := riff_chunk(d, b"avih")) is not None:
            struct.pack_into("<I", b, at, v)
            where.append("avih.usec_per_frame")
        if (at := riff_chunk(d, b"strh")) is not None:
            off = rng.choice((20, 24, 32))
            struct.pack_into("<I", b, at + off, v)
            where.append({20: "strh.scale", 24: "strh.rate", 32: "strh.length"}[off])
    if name.endswith(".mkv"):
        for field_name, at, n in mkv_fields(d):
            if field_name == "Duration" and n in (4, 8):
                f = rng.choice((1e300, -1.0, float("inf"), float("nan"), 0.0, 1e-300))
                b[at:at + n] = struct.pack(">d" if n == 8 else ">f", f)
                where.append(f"Duration={f}")
            elif field_name in ("TimestampScale", "DefaultDuration") and 1 <= n <= 8:
                b[at:at + n] = min(v, (1 << (8 * n)) - 1).to_bytes(n, "big")
                where.append(field_name)
    if not where:
        return m_flip(rng, d, name)
    return bytes(b), f"time:{'+'.join(where)}={v}"


def m_frames(rng: random.Random, d: bytes, name: str) -> tuple[bytes, str]:
    """Zip-bomb-like: a few KB that declare (or hold) a huge number of frames."""
    if name.endswith(".h264"):
        nals = annexb_nals(d)
        slices = [(s, e) for s, e in nals if d[s] & 0x1F == 1]
        if slices:
            s, e = rng.choice(slices)
            unit = b"\x00\x00\x00\x01" + d[s:e]
            times = min(rng.choice((2000, 10000, 40000)), 1_500_000 // len(unit))
            return d + unit * times, f"frames:flood{times}"
    if name.endswith(".ts"):
        _pid, packets = ts_video(d)
        if packets:
            k = rng.randrange(1, min(20, len(packets)) + 1)
            tail = b"".join(d[at:at + 188] for at in packets[-k:])
            times = min(rng.choice((500, 2000, 8000)), 1_500_000 // len(tail))
            return d + tail * times, f"frames:ts{k}x{times}"
    b = bytearray(d)
    v = rng.choice((0x7FFFFFFF, 10**6, 10**7, 0xFFFFFFFF))
    where = []
    if name.endswith((".mp4", ".3gp")):
        for box in first(mp4_boxes(d), b"stsz", b"stts"):
            # stsz: sample_count; stts: its first entry's sample_count
            struct.pack_into(">I", b, box.body + 8, v)
            where.append(box.kind.decode())
    if name.endswith(".avi"):
        if (at := riff_chunk(d, b"avih")) is not None:
            struct.pack_into("<I", b, at + 16, v)
            where.append("avih.frames")
        if (at := riff_chunk(d, b"strh")) is not None:
            struct.pack_into("<I", b, at + 32, v)
            where.append("strh.length")
    if not where:  # repeat the tail (the last frames) many times
        tail = d[-rng.randrange(64, min(len(d), 4096)):]
        times = min(2000, 1_000_000 // len(tail))
        return d + tail * times, f"frames:tail{len(tail)}x{times}"
    return bytes(b), f"frames:{'+'.join(where)}={v}"


def m_random_tail(rng: random.Random, d: bytes, name: str) -> tuple[bytes, str]:
    keep = rng.choice((16, 64, 256, 1024, 2048))
    n = rng.choice((len(d), rng.randrange(1, 256 * 1024)))
    return d[:keep] + rng.randbytes(n), f"random_tail@{keep}+{n}"


def m_splice(rng: random.Random, d: bytes, name: str, other: bytes = b"") -> tuple[bytes, str]:
    a = rng.randrange(1, len(d))
    b = rng.randrange(len(other)) if other else 0
    return d[:a] + other[b:], f"splice@{a}+{b}"


MUTATORS: dict[str, tuple[Mutator, int]] = {  # name: (mutator, weight)
    "truncate": (m_truncate, 10), "flip": (m_flip, 20), "bytes": (m_bytes, 10),
    "dup": (m_dup, 8), "delete": (m_delete, 8), "huge": (m_huge, 12), "time": (m_time, 10),
    "frames": (m_frames, 5), "random_tail": (m_random_tail, 6), "splice": (m_splice, 4),
}


def make_case(seeds: dict[str, bytes], campaign: int, i: int) -> tuple[str, bytes, list[str]]:
    """Case `i` of campaign `campaign`: which seed, the bytes, what was done to them. Pure:
    the same arguments give the same bytes."""
    rng = random.Random(f"strongroom-fuzz:{campaign}:{i}")
    names = sorted(seeds)
    name = rng.choice(names)
    data = seeds[name]
    if i % 100 == 0:  # a control: the seed untouched
        return name, data, ["none"]
    labels = []
    kinds = list(MUTATORS)
    weights = [MUTATORS[k][1] for k in kinds]
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
        kind = rng.choices(kinds, weights)[0]
        if not data:
            break
        try:
            if kind == "splice":
                data, label = m_splice(rng, data, name, seeds[rng.choice(names)])
            else:
                data, label = MUTATORS[kind][0](rng, data, name)
        except (ValueError, IndexError, struct.error):  # too little left to do it to
            data, label = m_flip(rng, data, name)
            label = f"{label}(for {kind})"
        labels.append(label)
    return name, data, labels


# --- running cases (in the pool's workers) ----------------------------------------------------

#: One case in 20 runs with a tight memory budget, one in 20 with a tight decode timeout: the
#: limits then strike at every point of a hostile decode (in libavcodec, in Pillow, while the
#: result is written), not only where a bomb makes them strike.
TIGHT_MEMORY = 160 * 1024**2
TIGHT_TIMEOUT = 0.3


def variant_of(i: int) -> str:
    return {7: "tight_memory", 13: "tight_timeout"}.get(i % 20, "normal")


_SEEDS: dict[str, bytes] = {}
_CONF: dict[str, Any] = {}


def init_case_worker(seeds: dict[str, bytes], conf: dict[str, Any]) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _SEEDS.update(seeds)
    _CONF.update(conf)


def run_case(i: int) -> dict[str, Any]:
    """Case `i` through the worker's own analysis of a decrypted original (`analyse`)."""
    from strongroom.pipeline.step import Context, Derived
    from strongroom.pipeline.worker import analyse, private_workdir

    name, data, labels = make_case(_SEEDS, _CONF["campaign"], i)
    steps = list(BASE_STEPS)
    if _CONF["ocr_every"] and i % _CONF["ocr_every"] == 0:
        steps.append("overlay_ocr")
    if _CONF["proxy_every"] and i % _CONF["proxy_every"] == 0:
        steps.append("proxy")
    options = dict(_CONF["options"])
    variant = variant_of(i)
    if variant == "tight_memory":
        options["worker_memory"] = TIGHT_MEMORY
    elif variant == "tight_timeout":
        options["decode_timeout"] = TIGHT_TIMEOUT
    made: list[int] = []

    def check(d: Derived) -> None:  # instead of sealing: a plain, non-empty file
        st = d.path.lstat()
        if not d.path.is_file() or d.path.is_symlink() or st.st_size == 0:
            raise RuntimeError(f"derived {d.kind} is not a plain non-empty file")
        made.append(st.st_size)

    started = time.perf_counter()
    with private_workdir(_CONF["scratch"], "") as workdir:
        plain = workdir / "original"
        plain.write_bytes(data)
        ctx = Context(sha256=hashlib.sha256(data).hexdigest(), path=plain, workdir=workdir,
                      facts=None, options=options)
        try:
            outcomes = analyse(ctx, steps, check)
        except BaseException as exc:  # analyse must never raise: count it as unclear
            return {"i": i, "seed": name, "mutations": labels, "size": len(data),
                    "variant": variant, "seconds": time.perf_counter() - started,
                    "steps": {"harness": ["error", f"harness: analyse raised {exc!r}", False]},
                    "derived": 0}
    return {"i": i, "seed": name, "mutations": labels, "size": len(data), "variant": variant,
            "steps": {o.step: [o.status, o.error, bool(o.data and o.data.get("partial"))]
                      for o in outcomes},
            "step_seconds": {o.step: round(o.seconds, 2) for o in outcomes},
            "seconds": round(time.perf_counter() - started, 3), "derived": len(made)}


# --- classifying --------------------------------------------------------------------------------

KINDS = (  # (kind, pattern), first match wins
    ("crash", re.compile(r"decoder crashed")),
    ("killed", re.compile(r"was killed by|killed by signal SIGKILL")),
    ("timeout", re.compile(r"timed out after")),
    ("memory_limit", re.compile(r"out of memory|Cannot allocate memory")),
    ("cpu_limit", re.compile(r"CPU time limit")),
    ("file_size_limit", re.compile(r"file size limit")),
    ("over_pixel_cap", re.compile(r"larger than the limit of .* Mpixel")),
)


def classify(error: str | None) -> str:
    if (not error or not error.strip() or "Traceback" in error or BUG.search(error)
            or error.startswith("harness:")):
        return "unclear"
    for kind, pattern in KINDS:
        if pattern.search(error):
            return kind
    if error.startswith(("probe failed:", "ffprobe ")):
        return "unreadable"
    if error.startswith("decoding failed:"):
        return "decode_error"
    return "step_error"


SEVERITY = ("unclear", "crash", "killed", "timeout", "memory_limit", "cpu_limit",
            "file_size_limit", "over_pixel_cap", "unreadable", "decode_error", "step_error")


def case_outcome(rec: dict[str, Any]) -> str:
    steps = rec["steps"]
    kinds = [classify(e) for status, e, _ in steps.values() if status == "error"]
    if kinds:
        return min(kinds, key=SEVERITY.index)
    if all(status == "skipped" for step, (status, _, _) in steps.items() if step != "probe"):
        return "not_a_video"
    if any(partial for _, _, partial in steps.values()):
        return "ok_partial"
    return "ok"


# --- the campaign ---------------------------------------------------------------------------------

def harness_failure(i: int, exc: BaseException) -> dict[str, Any]:
    return {"i": i, "seed": "?", "mutations": [], "size": 0, "seconds": 0.0, "derived": 0,
            "variant": variant_of(i),
            "steps": {"harness": ["error", f"harness: {exc!r}", False]}}


def run_pool(cases: Sequence[int], workers: int, seeds: dict[str, bytes], conf: dict[str, Any],
             on_result: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
    """Every case in a spawned process pool, `2 × workers` in flight. A pool that breaks (a
    worker died: what the sandbox must prevent) is replaced, as the runner does; its lost cases
    are re-run one by one in a pool of their own to find the one that kills. Returns the
    deaths: {"cases": the lost, "killers": the cases that killed again alone}."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    todo = collections.deque(cases)
    deaths: list[dict[str, Any]] = []

    def pool_of(n: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(n, mp_context=ctx, initializer=init_case_worker,
                                   initargs=(seeds, conf))

    while todo:
        lost: list[int] = []
        with pool_of(workers) as pool:
            inflight: dict[Future[dict[str, Any]], int] = {}
            while todo or inflight:
                while todo and len(inflight) < 2 * workers and not lost:
                    i = todo.popleft()
                    inflight[pool.submit(run_case, i)] = i
                if not inflight:
                    break
                done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = inflight.pop(fut)
                    try:
                        rec = fut.result()
                    except BrokenProcessPool:
                        lost.append(i)
                        continue
                    except Exception as exc:  # the harness's own failure: counted, unclear
                        rec = harness_failure(i, exc)
                    on_result(rec)
                if lost and not inflight:
                    break
        if lost:
            killers = []
            for i in lost:  # alone, to tell the killer from the bystanders
                with pool_of(1) as alone:
                    try:
                        rec = alone.submit(run_case, i).result()
                    except BrokenProcessPool:
                        killers.append(i)
                        continue
                    except Exception as exc:
                        rec = harness_failure(i, exc)
                    on_result(rec)
            deaths.append({"cases": lost, "killers": killers})
    return deaths


def scenario_campaign(args: argparse.Namespace, goals: list[dict[str, Any]],
                      say: Callable[[str], None], seeds: dict[str, bytes]) -> dict[str, Any]:
    from strongroom.media import sandbox

    n = args.cases or (QUICK_CASES if args.quick else FULL_CASES)
    scratch = WORK / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    conf = {"campaign": args.campaign, "ocr_every": args.ocr_every,
            "proxy_every": args.proxy_every, "scratch": str(scratch),
            "options": {"max_pixels": 7680 * 4320, "worker_memory": 1024**3,
                        "decode_timeout": args.decode_timeout,
                        "tool_timeout": args.tool_timeout}}
    isolation = sandbox.isolation()
    say(f"sandbox here: network {isolation['network']}, connect to 127.0.0.1 from inside: "
        f"{isolation['connect_127.0.0.1']}; limits inside {isolation['limits']}")
    outcomes: collections.Counter[str] = collections.Counter()
    per_step: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    per_mutator: dict[str, collections.Counter[str]] = collections.defaultdict(
        collections.Counter)
    per_seed: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    per_variant: dict[str, collections.Counter[str]] = collections.defaultdict(
        collections.Counter)
    examples: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    unclear: list[dict[str, Any]] = []
    by_outcome: dict[str, list[int]] = collections.defaultdict(list)
    seconds: list[float] = []
    slowest: list[tuple[float, int, dict[str, Any]]] = []
    steps_run: collections.Counter[str] = collections.Counter()
    started = time.perf_counter()
    done = 0

    def on_result(rec: dict[str, Any]) -> None:
        nonlocal done
        done += 1
        kind = case_outcome(rec)
        outcomes[kind] += 1
        by_outcome[kind].append(rec["i"])
        seconds.append(rec["seconds"])
        slowest.append((rec["seconds"], rec["i"], {
            "seed": rec["seed"], "mutations": rec["mutations"], "variant": rec["variant"],
            "outcome": kind, "step_seconds": rec.get("step_seconds", {})}))
        slowest.sort(key=lambda x: -x[0])
        del slowest[10:]
        per_seed[rec["seed"]][kind] += 1
        per_variant[rec["variant"]][kind] += 1
        for label in rec["mutations"]:
            per_mutator[label.split(":")[0].split("@")[0].rstrip("0123456789")][kind] += 1
        for step, (status, error, partial) in rec["steps"].items():
            steps_run[step] += 1
            k = classify(error) if status == "error" else status + ("_partial" if partial
                                                                     else "")
            per_step[step][k] += 1
            if status == "error" and k == "unclear":
                unclear.append({"case": rec["i"], "step": step, "error": error,
                                "seed": rec["seed"], "mutations": rec["mutations"],
                                "variant": rec["variant"]})
                say(f"  UNCLEAR case {rec['i']} {step} ({rec['seed']} {rec['mutations']} "
                    f"{rec['variant']}): {error}")
            if status == "error" and len(examples[k]) < 4 and not any(
                    x["error"] == error for x in examples[k]):
                examples[k].append({"case": rec["i"], "step": step, "error": error,
                                    "seed": rec["seed"], "mutations": rec["mutations"]})
        if done % max(1, n // 20) == 0 or done == n:
            rate = done / (time.perf_counter() - started)
            say(f"  {done}/{n} cases, {rate:.1f}/s; " + ", ".join(
                f"{k} {v}" for k, v in outcomes.most_common()))

    with CpuWatch() as cpu:
        deaths = run_pool(range(n), args.workers, seeds, conf, on_result)
    wall = cpu.seconds
    leftovers = list(scratch.iterdir())  # every work dir (plaintext!) removed by its worker?
    shutil.rmtree(scratch, ignore_errors=True)
    worker_deaths = len(deaths)
    say(f"campaign: {n} cases in {wall:.0f} s ({n / wall:.1f} cases/s, {args.workers} "
        f"workers); outcomes: " + ", ".join(f"{k} {v}" for k, v in outcomes.most_common()))
    say(f"  pool workers that died: {worker_deaths}; errors without a clear message: "
        f"{len(unclear)}")
    goal(goals, "cases run", done, n, "min")
    goal(goals, "worker (sandbox parent) deaths", worker_deaths, 0, "max")
    goal(goals, "errors without a clear message", len(unclear), 0, "max")
    if not args.quick:
        goal(goals, "campaign wall time", wall, 2400, "max", " s")
    seconds.sort()
    return {
        "cases": done, "wall_seconds": round(wall, 1), "cases_per_second": round(done / wall, 2),
        "cpu": cpu.as_dict(), "workers": args.workers, "campaign_seed": args.campaign,
        "options": conf["options"], "tight_memory": TIGHT_MEMORY,
        "tight_timeout": TIGHT_TIMEOUT, "ocr_every": args.ocr_every,
        "proxy_every": args.proxy_every, "steps_run": dict(steps_run),
        "sandbox": isolation,
        "outcomes": dict(outcomes.most_common()),
        "parent_crashes": {"pool_workers_died": worker_deaths, "deaths": deaths,
                           "harness_process": 0},
        "unclear_errors": unclear,
        "per_step": {k: dict(v.most_common()) for k, v in per_step.items()},
        "per_mutator": {k: dict(v.most_common()) for k, v in sorted(per_mutator.items())},
        "per_seed": {k: dict(v.most_common()) for k, v in sorted(per_seed.items())},
        "per_variant": {k: dict(v.most_common()) for k, v in sorted(per_variant.items())},
        "case_seconds": {"p50": seconds[len(seconds) // 2], "p95": seconds[int(len(seconds) * .95)],
                         "p99": seconds[int(len(seconds) * .99)], "max": seconds[-1]},
        "slowest": [{"case": i, "seconds": t, **info} for t, i, info in slowest],
        "examples": dict(examples), "scratch_left_behind": [str(p) for p in leftovers],
        "by_outcome": {k: v for k, v in by_outcome.items()},
    }


# --- the real runner on a sample ------------------------------------------------------------------

def stratified(by_outcome: dict[str, list[int]], n: int, rng: random.Random) -> list[int]:
    """Up to `n` cases, every outcome represented, rare ones whole, timeouts few (each costs
    minutes under production limits)."""
    pools = {k: sorted(v) for k, v in by_outcome.items() if v}
    caps = {"timeout": 3}
    picked: list[int] = []
    share = max(1, n // max(1, len(pools)))
    for kind, cases in sorted(pools.items(), key=lambda kv: len(kv[1])):
        want = min(len(cases), caps.get(kind, share), n - len(picked))
        picked += rng.sample(cases, want)
    rest = sorted({i for kind, cases in pools.items() if kind not in caps for i in cases}
                  - set(picked))
    picked += rng.sample(rest, min(len(rest), n - len(picked)))  # the rest at random
    return sorted(picked)


def scenario_runner(args: argparse.Namespace, goals: list[dict[str, Any]],
                    say: Callable[[str], None], seeds: dict[str, bytes],
                    by_outcome: dict[str, list[int]] | None) -> dict[str, Any]:
    n = args.sample or (QUICK_SAMPLE if args.quick else FULL_SAMPLE)
    rng = random.Random(args.campaign)
    cases = (stratified(by_outcome, n, rng) if by_outcome
             else sorted(rng.sample(range(100_000), n)))
    root = WORK / "runner"
    shutil.rmtree(root, ignore_errors=True)
    usb, vault, work = root / "usb", root / "vault", root / "work"
    usb.mkdir(parents=True)
    work.mkdir()
    names = {}
    for i in cases:
        name, data, labels = make_case(seeds, args.campaign, i)
        f = usb / f"case{i:06d}{Path(name).suffix}"
        f.write_bytes(data)
        names[f.name] = {"case": i, "seed": name, "mutations": labels}
    cli, env = strongroom_cli(), passphrase_env(STRONGROOM_WORK_DIR=str(work))
    subprocess.run([cli, "init", str(vault), "--json"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([cli, "ingest", str(vault), str(usb), "-a", "fuzz sample", "--json"],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    with CpuWatch() as cpu:
        proc = subprocess.run([cli, "process", str(vault), "--workers", "2", "--json"],
                              env=env, capture_output=True, text=True, check=False)
    say(f"runner: `strongroom process` on {len(cases)} fuzz cases (all default steps, "
        f"production limits): exit {proc.returncode} in {cpu.seconds:.0f} s")
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        report = {}
    errors = report.get("error_list", [])
    unclear = [{**e, **names.get(e.get("file", ""), {})} for e in errors
               if classify(e.get("error")) == "unclear"]
    worst: dict[str, str] = {}
    for e in errors:
        k = classify(e.get("error"))
        f = e.get("file", "?")
        worst[f] = min(worst.get(f, k), k, key=SEVERITY.index)
    outcomes = collections.Counter(worst.values())
    outcomes["ok"] = int(report.get("originals", len(cases))) - len(worst)
    # every (original, step) has its row now: a second run finds nothing pending
    again = subprocess.run([cli, "process", str(vault), "--json"], env=env,
                           capture_output=True, text=True, check=False)
    pending = json.loads(again.stdout).get("tasks", -1) if again.stdout.strip() else -1
    verify = subprocess.run([cli, "verify", str(vault), "--json"], env=env,
                            capture_output=True, text=True, check=False)
    left = list(work.iterdir())
    say(f"  worker deaths {report.get('worker_deaths')}; originals {report.get('originals')}, "
        f"{len(errors)} step errors; unclear errors {len(unclear)}; outcomes "
        + ", ".join(f"{k} {v}" for k, v in outcomes.most_common())
        + f"; pending after: {pending}; verify exit {verify.returncode}; work dir left: "
        f"{len(left)}")
    goal(goals, "runner exit code is 0 or 1 (never died)",
         1.0 if proc.returncode in (0, 1) else 0.0, 1, "min")
    goal(goals, "runner worker deaths", float(report.get("worker_deaths", 99)), 0, "max")
    goal(goals, "runner: (original, step) left without a row", float(pending), 0, "max")
    goal(goals, "runner errors without a clear message", len(unclear), 0, "max")
    goal(goals, "verify after the runner", 1.0 if verify.returncode == 0 else 0.0, 1, "min")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return {"cases": cases, "exit_code": proc.returncode, "seconds": round(cpu.seconds, 1),
            "cpu": cpu.as_dict(), "report": {k: v for k, v in report.items()
                                             if k != "error_list"},
            "step_errors": len(errors), "outcomes": dict(outcomes.most_common()),
            "pending_after": pending, "unclear_errors": unclear,
            "verify_exit_code": verify.returncode, "verify_stderr": verify.stderr[-2000:],
            "work_dir_left": [str(p) for p in left], "stderr_tail": proc.stderr[-2000:]}


# --- main ---------------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    ap = bench_parser(__doc__, repeat=1, quick_repeat=1, scenarios=SCENARIOS)
    ap.add_argument("--cases", type=int, default=0, help=f"campaign size (default "
                    f"{FULL_CASES:,}, with --quick {QUICK_CASES})")
    ap.add_argument("--sample", type=int, default=0, help=f"runner sample (default "
                    f"{FULL_SAMPLE}, with --quick {QUICK_SAMPLE})")
    ap.add_argument("--workers", type=int, default=2, help="pool workers (default 2)")
    ap.add_argument("--campaign", type=int, default=13, help="the campaign's seed")
    ap.add_argument("--ocr-every", type=int, default=5, help="overlay_ocr on every Nth case")
    ap.add_argument("--proxy-every", type=int, default=20, help="proxy on every Nth case")
    ap.add_argument("--decode-timeout", type=float, default=8.0)
    ap.add_argument("--tool-timeout", type=float, default=20.0)
    ap.add_argument("--case", type=int, default=None, help="write case N (--write) and stop")
    ap.add_argument("--write", type=Path, default=None, metavar="FILE")
    args = parse_bench_args(ap, argv)
    seeds = make_seeds(WORK / "seeds")
    if args.case is not None:
        name, data, labels = make_case(seeds, args.campaign, args.case)
        dest = args.write or Path(f"case{args.case}{Path(name).suffix}")
        dest.write_bytes(data)
        print(f"case {args.case}: {name} + {labels} → {dest} ({len(data)} bytes)")
        return 0
    started = time.perf_counter()
    log: list[str] = []

    def say(text: str) -> None:
        log.append(text)
        print(text, flush=True)

    result = result_header("fuzz", args, machine_facts(
        tools=[["ffmpeg", "-version"]], packages=["av", "numpy", "pillow", "pdqhash",
                                                  "tesserocr", "rapidocr-onnxruntime"]))
    result["busy_before_start"] = round(wait_quiet(args.wait_quiet), 3)
    goals: list[dict[str, Any]] = []
    scenarios: dict[str, Any] = {}
    by_outcome = None
    try:
        if "campaign" in args.scenarios:
            scenarios["campaign"] = scenario_campaign(args, goals, say, seeds)
            by_outcome = scenarios["campaign"].pop("by_outcome")
        if "runner" in args.scenarios:
            scenarios["runner"] = scenario_runner(args, goals, say, seeds, by_outcome)
    finally:
        if not args.keep:
            shutil.rmtree(WORK, ignore_errors=True)
    print_goals(goals)
    result |= {
        "method": {
            "campaign": "each case = one seed clip + 1–3 seeded mutations, run through "
                        "strongroom.pipeline.worker.analyse (ffprobe as an isolated tool, "
                        "one sandboxed PyAV decode pass, every step's finish) in a spawned "
                        "process pool like the runner's; derived files checked, not sealed",
            "steps": f"{', '.join(BASE_STEPS)} on every case; overlay_ocr (OCR on the "
                     f"decoded frames) on every {args.ocr_every}th; proxy (ffmpeg) on every "
                     f"{args.proxy_every}th",
            "limits": f"decode timeout {args.decode_timeout:g} s, tool timeout "
                      f"{args.tool_timeout:g} s, sandbox memory budget 1 GiB, pixel cap "
                      "7680×4320 (production: 120 s + 2 s per declared second, 120 s, 4 GiB, "
                      "the same cap)",
            "outcome": "per case, the most severe of its steps' errors (unclear > crash > "
                       "killed > timeout > memory > cpu > file size > pixel cap > unreadable "
                       "> decode error > other step error); ok_partial = ok but decoded "
                       "less than declared; not_a_video = ffprobe found no video",
            "unclear": "an error that is empty, holds a traceback, or has the shape of a "
                       "bug (`Name: text (file.py:line)`)",
            "parent_crashes": "pool workers that died (the sandbox's parent: a broken "
                              "pool), and this harness itself (it would not have written "
                              "this file)",
            "runner": "a stratified sample of the campaign's cases through the real "
                      "`strongroom init/ingest/process --workers 2/verify` CLI",
            "reproduce": "python benchmarks/fuzz.py --case N --write FILE",
        },
        "seeds": {s.name: {"codec": s.codec, "size": s.size, "fps": s.rate,
                           "seconds": s.seconds, "bytes": len(seeds[s.name]),
                           "sha256": hashlib.sha256(seeds[s.name]).hexdigest()}
                  for s in SEEDS},
        "log": log, "scenarios": scenarios, "goals": goals,
        "all_goals_pass": all(g["pass"] for g in goals),
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    write_results("fuzz", args.quick, result, args.scenarios if args.partial else ())
    return 0 if result["all_goals_pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
