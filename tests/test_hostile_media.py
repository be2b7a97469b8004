"""Hostile media against the sandbox every decoder runs in (issue 13, point 4).

Crafted clips get a clear error each and the batch goes on; a decoder that crashes, hangs, eats
memory or writes too much costs one sandboxed child, never the worker or `strongroom process`;
inside the sandbox there is no network, the rlimits are in force, and the private dir it worked
in is gone afterwards. Real ffmpeg-made clips damaged byte by byte, real processes and signals.

The callables handed to `sandbox.run` live at module level here: the fork server imports them
by name, as it would any step's code.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
from sqlalchemy import select

from conftest import CLI, PASSPHRASE, Template, cli, cli_env, open_vault, poll
from strongroom.catalogue.models import Sighting, StepRun
from strongroom.ingest import ingest
from strongroom.media import sandbox
from strongroom.media.run import run_tool, which
from strongroom.pipeline.step import Context
from strongroom.pipeline.worker import Outcome, analyse
from strongroom.testmedia import truncate_copy

STEPS = "probe,keyframes,scenes,perceptual_hash"
#: What a bug (not bad input) looks like in an error row: `TypeError: ... (file.py:123)`.
BUG = re.compile(r"\(\w+\.py:\d+\)$")


def ffmpeg(*args: str) -> None:
    run_tool([which("ffmpeg"), "-nostdin", "-v", "error", "-y", *args], timeout=120,
             memory=None)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small real clips and crafted damage; ~6 s to make."""
    root = tmp_path_factory.mktemp("hostile")
    small = root / "good.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=176x144:r=10", "-t", "2", "-c:v", "libx264",
           "-pix_fmt", "yuv420p", str(small))
    truncate_copy(small, root / "cut.mp4", 0.4)  # index (moov) last: cut off
    mpeg4 = root / "mpeg4.avi"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=176x144:r=10", "-t", "2", "-c:v", "mpeg4",
           str(mpeg4))
    data = bytearray(mpeg4.read_bytes())
    rng = random.Random(13)
    for _ in range(40):  # in the frames, past the headers
        data[rng.randrange(len(data) // 4, len(data))] ^= 1 << rng.randrange(8)
    (root / "flipped.avi").write_bytes(data)
    mjpeg = root / "mjpeg.avi"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x48:r=5", "-t", "0.6", "-c:v", "mjpeg", str(mjpeg))
    (root / "huge.avi").write_bytes(declare_size(mjpeg.read_bytes(), 16000, 16000))
    (root / "years.avi").write_bytes(declare_years(mjpeg.read_bytes()))
    # 30,000 frames of 64×64 in 0.4 MB: a tiny file that takes seconds to decode
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=64x64:r=1000", "-t", "30", "-c:v", "libx264",
           "-preset", "ultrafast", "-g", "100000", "-bf", "0", "-pix_fmt", "yuv420p",
           str(root / "many_frames.mp4"))
    # one 8192×8192 frame in 14 KB: 100 MB as YUV once decoded
    ffmpeg("-f", "lavfi", "-i", "color=c=black:s=8192x8192:r=25", "-frames:v", "1",
           "-c:v", "libx264", "-pix_fmt", "yuv420p", str(root / "bomb.mp4"))
    return {p.stem: p for p in root.iterdir()}


def declare_size(avi: bytes, width: int, height: int) -> bytes:
    """An MJPEG AVI whose headers (AVI main header, stream format, every JPEG's SOF0) all
    declare `width`×`height`, over frames of a few hundred bytes."""
    b = bytearray(avi)
    at = b.find(b"avih") + 8
    struct.pack_into("<II", b, at + 32, width, height)  # dwWidth, dwHeight
    at = b.find(b"strf") + 8
    struct.pack_into("<ii", b, at + 4, width, height)  # biWidth, biHeight
    at = 0
    while (at := b.find(b"\xff\xc0", at)) >= 0:
        struct.pack_into(">HH", b, at + 5, height, width)
        at += 2
    return bytes(b)


def declare_years(avi: bytes) -> bytes:
    """An AVI whose headers declare ~3·10^9 s: 2^31 µs per frame, a time scale of 2^31."""
    b = bytearray(avi)
    struct.pack_into("<I", b, b.find(b"avih") + 8, 2**31)  # dwMicroSecPerFrame
    struct.pack_into("<I", b, b.find(b"strh") + 8 + 20, 2**31)  # dwScale
    return bytes(b)


def is_clear(error: str | None) -> bool:
    return bool(error) and "Traceback" not in error and not BUG.search(error or "")


def run_analyse(path: Path, tmp_path: Path, **options: Any) -> dict[str, Outcome]:
    """The worker's own analysis (`analyse`, what runs after decryption) on a plaintext."""
    work = tmp_path / f"work-{path.stem}"
    work.mkdir(mode=0o700)
    shutil.copy(path, work / "original")
    ctx = Context(sha256="0" * 64, path=work / "original", workdir=work, facts=None,
                  options={"max_pixels": 7680 * 4320, "worker_memory": 4 * 1024**3,
                           **options})
    outcomes = analyse(ctx, STEPS.split(","), lambda d: None)
    assert sorted(os.listdir(work)) == ["original"], "the sandbox's dir was left behind"
    return {o.step: o for o in outcomes}


# --- crafted files through the real runner ---------------------------------------------------

def errors_by_file(v: Any) -> dict[str, dict[str, tuple[str, str | None]]]:
    with v.catalogue.read() as s:
        names = {sha: Path(p).name for p, sha in
                 s.execute(select(Sighting.rel_path, Sighting.original_sha256))}
        out: dict[str, dict[str, tuple[str, str | None]]] = {}
        for r in s.scalars(select(StepRun)):
            out.setdefault(names[r.original_sha256], {})[r.step] = (r.status, r.error)
    return out


def test_crafted_clips_each_get_a_clear_error_and_the_batch_goes_on(
        vault_path: Path, template: Template, tmp_path: Path, clips: dict[str, Path]) -> None:
    usb = tmp_path / "usb"
    usb.mkdir()
    for name in ("good", "cut", "flipped", "huge"):
        shutil.copy(clips[name], usb)
    with open_vault(vault_path, template.keys) as v:
        ingest(v, usb, "crafted clips")
    work = tmp_path / "work"
    work.mkdir()
    r = cli("process", vault_path, "--workers", "1", "--steps", STEPS, "--json",
            env={"STRONGROOM_WORK_DIR": str(work)})
    assert r.returncode == 1, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["worker_deaths"] == 0
    assert report["sandbox_network"] in ("netns", "userns+netns")
    with open_vault(vault_path, template.keys) as v:
        rows = errors_by_file(v)
    assert set(rows) == {"good.mp4", "cut.mp4", "flipped.avi", "huge.avi"}
    assert all(set(steps) == set(STEPS.split(",")) for steps in rows.values()), rows
    assert {s for s, _ in rows["good.mp4"].values()} == {"ok"}
    assert rows["cut.mp4"]["probe"][0] == "error"
    assert "moov atom not found" in (rows["cut.mp4"]["probe"][1] or "")
    assert rows["huge.avi"]["probe"][0] == "ok"
    assert all("16000×16000" in (e or "") and "not decoded" in (e or "")
               for step, (_, e) in rows["huge.avi"].items() if step != "probe")
    for name, steps in rows.items():  # flipped.avi: whatever it gave, each error is clear
        for step, (status, error) in steps.items():
            assert status in ("ok", "skipped") or is_clear(error), (name, step, error)
    assert list(work.iterdir()) == [], "plaintext or a sandbox dir was left behind"


def test_a_decoder_that_segfaults_mid_clip_costs_that_clip_only(
        vault_path: Path, template: Template, tmp_path: Path, clips: dict[str, Path]) -> None:
    """SIGSEGV, as a libavcodec bug would raise it, to the sandboxed decoder of one clip while
    `strongroom process` runs: that clip's frame steps get an error naming the crash, the
    worker lives (no pool broken), the other clip is analysed, nothing is left behind."""
    usb = tmp_path / "usb"
    usb.mkdir()
    for name in ("good", "many_frames"):
        shutil.copy(clips[name], usb)
    with open_vault(vault_path, template.keys) as v:
        ingest(v, usb, "clips")
    work = tmp_path / "work"
    work.mkdir()
    runner = subprocess.Popen([*CLI, "process", str(vault_path), "--workers", "1", "--steps",
                               STEPS, "--json"], env=cli_env({"STRONGROOM_WORK_DIR": str(work)}),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        decoder = poll(lambda: _decoder_in(runner.pid, work), timeout=120, interval=0.02,
                       what="a sandboxed decoder at work")
        assert isinstance(decoder, psutil.Process)
        decoder.send_signal(signal.SIGSEGV)
        out, err = runner.communicate(timeout=120)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    assert runner.returncode == 1, err
    report = json.loads(out)
    assert report["worker_deaths"] == 0
    with open_vault(vault_path, template.keys) as v:
        rows = errors_by_file(v)
    crashed = rows["many_frames.mp4"]
    assert crashed["probe"][0] == "ok"
    assert all(status == "error" and "crashed" in (e or "") and "SIGSEGV" in (e or "")
               for step, (status, e) in crashed.items() if step != "probe"), crashed
    assert {s for s, _ in rows["good.mp4"].values()} == {"ok"}
    assert list(work.iterdir()) == []
    assert not psutil.pid_exists(decoder.pid) or decoder.status() == psutil.STATUS_ZOMBIE


def _decoder_in(runner: int, work: Path) -> psutil.Process | None:
    """The runner's descendant working in a sandbox dir under `work`, once it has started."""
    with contextlib.suppress(psutil.NoSuchProcess):
        for p in psutil.Process(runner).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if p.cwd().startswith(str(work)) and "strongroom-box-" in p.cwd():
                    return p
    return None


def test_a_clock_whose_pixels_never_change_is_read_without_a_crash() -> None:
    """OCR runs in the worker on the frames the sandbox hands back, so its code must take any
    pixels: a clock box that is the same on every frame (a damaged clip decoded to still
    frames) raised StopIteration in `_tick` (found by the fuzz campaign)."""
    import numpy as np

    from strongroom.media.ocr import _tick

    still = np.zeros((40, 120), np.uint8)
    dense = [(round(i / 25, 3), still) for i in range(30)]
    first = (0.0, datetime(2020, 3, 14, 2, 17, 0), "DD-MM-YYYY")
    assert _tick(dense, lambda g: None, first, (0, 0, 100, 20)) == []


def test_frames_too_small_to_hold_an_overlay_are_not_read() -> None:
    """A crafted MJPEG declaring 16384×2 decodes to frames 2 px high; OCR (in the worker)
    once handed their empty quarter bands to OpenCV, which asserts (found by the fuzz
    campaign)."""
    import numpy as np

    from strongroom.media.ocr import read_overlay

    thin = np.full((2, 16384), 128, np.uint8)
    found = read_overlay([(0.0, thin), (1.0, thin)], [(0.04, thin)])
    assert found.clocks == [] and found.label is None


# --- the helper itself: crashes, hangs, bombs ------------------------------------------------

def segfault(box: Path) -> None:
    ctypes.string_at(0)  # reads address 0: SIGSEGV, a real one


def sleep_forever(box: Path, pid_file: str) -> None:
    Path(pid_file).write_text(str(os.getpid()))
    while True:
        time.sleep(1)


def allocate(box: Path, n: int) -> int:
    return len(bytearray(n))


def write_bytes(box: Path, n: int) -> int:
    with open("big", "wb") as f:
        f.write(b"\0" * n)
    return n


def inside(box: Path, port: int) -> dict[str, Any]:
    """What a sandboxed child sees: its limits, its dir, the network, its environment."""
    limits = {}
    with open("/proc/self/limits", encoding="ascii") as f:
        for line in f:
            parts = line[26:].split()
            if parts:
                limits[line[:26].strip()] = parts[0]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            connect = "connected"
    except OSError as exc:
        connect = exc.strerror or str(exc)
    return {"limits": limits, "cwd": os.getcwd(), "box": str(box),
            "mode": os.stat(box).st_mode & 0o777, "connect": connect,
            "tmpdir": os.environ.get("TMPDIR"),
            "passphrase": "STRONGROOM_PASSPHRASE" in os.environ
            or PASSPHRASE.encode() in Path("/proc/self/environ").read_bytes()
            or PASSPHRASE.encode() in Path(f"/proc/{os.getppid()}/environ").read_bytes()}


def test_a_segfault_in_the_sandbox_is_a_clear_error_and_the_caller_lives(tmp_path: Path
                                                                        ) -> None:
    with pytest.raises(sandbox.SandboxError) as caught, \
            sandbox.run(segfault, limits=sandbox.Limits(timeout=30), base=tmp_path):
        pass
    assert caught.value.kind == "crash"
    assert "crashed" in str(caught.value) and "SIGSEGV" in str(caught.value)
    assert list(tmp_path.iterdir()) == []
    with sandbox.run(allocate, 10, limits=sandbox.Limits(timeout=30), base=tmp_path) as boxed:
        assert boxed.value == 10  # the next call works: only the child died


def test_a_hang_is_killed_at_the_timeout(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    box = tmp_path / "box"
    box.mkdir()
    started = time.monotonic()
    with pytest.raises(sandbox.SandboxError) as caught, \
            sandbox.run(sleep_forever, str(pid_file), limits=sandbox.Limits(timeout=1.5),
                        base=box):
        pass
    assert caught.value.kind == "timeout" and "timed out after 1.5 s" in str(caught.value)
    assert time.monotonic() - started < 10
    pid = int(pid_file.read_text())
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert list(box.iterdir()) == []


def test_a_file_that_decodes_for_too_long_is_that_files_timeout(
        tmp_path: Path, clips: dict[str, Path]) -> None:
    got = run_analyse(clips["many_frames"], tmp_path, decode_timeout=0.5)
    assert got["probe"].status == "ok"
    for step in ("keyframes", "scenes", "perceptual_hash"):
        assert got[step].status == "error"
        assert got[step].error == "decoding failed: decoding timed out after 0.5 s (killed)"


def test_a_clip_declaring_years_gets_clear_answers_from_every_step(
        tmp_path: Path, clips: dict[str, Path]) -> None:
    """Timeouts and per-second lists are made from the declared length or the frames' times:
    ~10^9 s once overflowed the OS's timers in the proxy's ffmpeg call, and made scenes build
    a list of 10^9 seconds until the sandbox's memory ran out (both found by the fuzz
    campaign). The frames themselves decode."""
    work = tmp_path / "work"
    work.mkdir(mode=0o700)
    shutil.copy(clips["years"], work / "original")
    ctx = Context(sha256="0" * 64, path=work / "original", workdir=work, facts=None,
                  options={"max_pixels": 7680 * 4320, "worker_memory": 4 * 1024**3})
    got = {o.step: o for o in analyse(ctx, [*STEPS.split(","), "proxy"], lambda d: None)}
    assert got["probe"].status == "ok" and (got["probe"].data or {})["duration"] > 1e9
    for o in got.values():
        assert o.status == "ok" or is_clear(o.error), (o.step, o.error)
    assert {got[s].status for s in ("keyframes", "scenes", "perceptual_hash")} == {"ok"}


def test_a_memory_bomb_is_that_files_error_and_a_normal_clip_fits(
        tmp_path: Path, clips: dict[str, Path]) -> None:
    budget = {"max_pixels": 0, "worker_memory": 128 * 1024**2}
    bomb = run_analyse(clips["bomb"], tmp_path, **budget)
    assert all(bomb[s].status == "error" and "out of memory" in (bomb[s].error or "")
               for s in ("keyframes", "scenes", "perceptual_hash")), bomb
    good = run_analyse(clips["good"], tmp_path, **budget)
    assert {o.status for o in good.values()} == {"ok"}, good
    with pytest.raises(sandbox.SandboxError) as caught, \
            sandbox.run(allocate, 1024**3, limits=sandbox.Limits(timeout=30,
                                                                 memory=256 * 1024**2)):
        pass
    assert caught.value.kind == "memory" and "out of memory" in str(caught.value)


def test_writing_past_the_file_size_limit_is_a_clear_error(tmp_path: Path) -> None:
    limits = sandbox.Limits(timeout=30, file_size=1024**2)
    with sandbox.run(write_bytes, 1000, limits=limits, base=tmp_path) as boxed:
        assert boxed.value == 1000
    with pytest.raises(sandbox.SandboxError) as caught, \
            sandbox.run(write_bytes, 2 * 1024**2, limits=limits, base=tmp_path):
        pass
    assert caught.value.kind == "file_size" and "file size limit" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


# --- what the inside looks like --------------------------------------------------------------

@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP port listening on 127.0.0.1: reachable from here, not from the sandbox."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(4)
        yield s.getsockname()[1]


def test_inside_the_sandbox_no_network_rlimits_in_force_private_dir(
        tmp_path: Path, listener: int) -> None:
    with socket.create_connection(("127.0.0.1", listener), timeout=2):
        pass  # the port is there for us
    limits = sandbox.Limits(timeout=20, memory=768 * 1024**2, cpu_seconds=33,
                            file_size=5 * 1024**2)
    with sandbox.run(inside, listener, limits=limits, base=tmp_path) as boxed:
        seen = boxed.value
        assert boxed.network in ("netns", "userns+netns")
        box = Path(seen["box"])
        assert box.parent == tmp_path and box.is_dir()
    assert not box.exists(), "the private dir outlived the call"
    assert seen["connect"] == "Network is unreachable"
    assert seen["cwd"] == seen["box"] == seen["tmpdir"] and seen["mode"] == 0o700
    got = seen["limits"]
    assert got["Max cpu time"] == "33" and got["Max file size"] == str(5 * 1024**2)
    assert got["Max core file size"] == "0"
    address = int(got["Max address space"])
    assert 768 * 1024**2 < address < 768 * 1024**2 + 2 * 1024**3  # what it mapped, plus budget


def test_ffprobe_and_ffmpeg_runs_have_no_network_and_their_own_limits(listener: int) -> None:
    code = (f"import socket\ntry:\n socket.create_connection(('127.0.0.1', {listener}), 2)\n"
            " print('connected')\nexcept OSError as e:\n print(e.strerror)\n"
            "print(open('/proc/self/limits').read())")
    res = run_tool([sys.executable, "-c", code], timeout=30, isolate=True,
                   file_size=16 * 1024**2)
    out = res.stdout.decode()
    assert out.splitlines()[0] == "Network is unreachable"
    assert re.search(r"Max file size\s+16777216", out)
    assert re.search(r"Max core file size\s+0 ", out)


def test_the_sandbox_never_holds_the_passphrase(monkeypatch: pytest.MonkeyPatch,
                                                listener: int) -> None:
    monkeypatch.setenv("STRONGROOM_PASSPHRASE", PASSPHRASE)
    sandbox.shutdown()  # the next call starts a fork server from this environment
    try:
        with sandbox.run(inside, listener, limits=sandbox.Limits(timeout=20)) as boxed:
            assert boxed.value["passphrase"] is False
    finally:
        sandbox.shutdown()
