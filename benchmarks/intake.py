"""Intake uploads (issue 17): a big tus upload over loopback into `strongroom intake-serve`, the
server SIGKILLed and restarted mid-chunk several times; what each resume re-sends, the server's
RSS over its lives, and throughput against a plain file write of the same bytes in the same run.

One scenario, `resume`, on one file of `--size` random bytes (default 5 GiB; --quick 256 MiB;
written once into benchmarks/work/cache/ and removed at the end unless --keep):

- **Server**: `strongroom intake-serve --data DIR --public-key age1... --port P` as its own
  process (its own session, TMPDIR in benchmarks/work/intake/), the public key of a throwaway
  age identity made here; a codename and bearer token from `POST /api/sources`; one upload
  made by tus `POST /files` (Upload-Length).
- **Client** (here, httpx): PATCH requests of `--chunk-mb` (default 64 MiB) with Upload-Offset
  and Content-Length, each body streamed from the file in 1 MiB writes; no Upload-Checksum
  (what a killed request had sent is then either wholly kept or wholly dropped: the intake
  drops an unfinished PATCH on SIGKILL, so the chunk in flight is what a kill costs).
- **Kills**: `--kills` (default 5) SIGKILLs of the server's process group at evenly spaced
  points of the file (i/(kills+1) of its size), each in the middle of a chunk's body, exactly
  when the client has written that many bytes. Then the server is started again, `HEAD`
  gives the offset it holds, and the client resumes from there. **Re-sent per resume**: the
  bytes the client had sent (chunk start + what it wrote of the chunk) minus the offset the
  restarted server reports; goal ≤ one chunk each (and their sum = bytes sent − file size).
- **RSS**: the server process's VmRSS sampled every 100 ms and its VmHWM (exact peak) read
  just before each kill / the final stop: one peak per server life. Flat: the last life's
  peak ≤ 1.5× the first's, and every peak ≤ 200 MB. The uninterrupted upload (one life, the
  whole file) also reports its RSS peak per quarter of the file.
- **Anchors, same bytes, same run** (the file read once before every timed run, so all read
  from the page cache; outputs deleted and the filesystem synced between runs):
  `dd if=FILE of=COPY bs=CHUNK conv=fsync` (plain write, durable: the ratio's anchor);
  `age -r KEY -o OUT FILE` (encryption alone, not synced: context); the same httpx client
  uploading to an unencrypted tus sink (a trivial ASGI app in this file on the same uvicorn
  with h11, writing each PATCH to one file and fsyncing it before answering: HTTP alone);
  and the intake upload without kills. **Ratio**: intake MB/s ÷ plain-write MB/s (with the
  kills, their restarts and re-sent bytes included; and without kills).
- **Check**: the upload's HEAD offset equals the size, no `.part-*` is left, and decrypting
  its pieces (`uploads/<id>/<offset>-<length>.age`, in offset order) with the identity gives
  the file's SHA-256.

Writes benchmarks/results/intake.json (intake.quick.json with --quick).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from _machine import (
    WORK_ROOT,
    CpuWatch,
    MiB,
    Timed,
    bench_parser,
    best,
    cached_random_file,
    goal,
    machine_facts,
    noise_note,
    parse_bench_args,
    parse_size,
    print_goals,
    result_header,
    run_command,
    settle,
    size_label,
    strongroom_cli,
    wait_quiet,
    warm,
    write_results,
)

SCENARIOS = ("resume",)
WORK = WORK_ROOT / "intake"
SEED = 20250117
TUS = {"Tus-Resumable": "1.0.0"}
BLOCK = MiB  # the client's writes inside one PATCH body
POLL_S = 0.1  # RSS sampling interval
RSS_FLAT = 1.5  # last life's peak ÷ first life's peak, at most
RSS_LIMIT_MB = 200.0
START_TIMEOUT_S = 120.0
_PIECE = re.compile(r"(\d{16})-(\d{12})\.age")


# -- servers as their own processes ---------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _status_kb(pid: int, key: bytes) -> int | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


@dataclass
class Life:
    """One run of the server process, from spawn to its kill or stop."""

    pid: int
    from_offset: int  # the client's position in the file when it started
    start_seconds: float = 0.0  # spawn until `GET /` answers 200
    rss_at_start_mb: float = 0.0
    peak_before_upload_mb: float = 0.0  # VmHWM when the upload (re)started: start-up, codename
    peak_sampled_mb: float = 0.0  # max VmRSS seen by the poller while uploading
    peak_mb: float = 0.0  # VmHWM just before the end, reset when the upload (re)started
    cpu_seconds: float = 0.0  # user + system, read just before the end
    upload_cpu_seconds: float = 0.0  # of which while uploading
    ended: str = ""  # killed | stopped
    to_offset: int = 0


class Server:
    """A server process (the intake, or the plain sink) that can be SIGKILLed and started
    again on the same port, with an RSS poller following whichever life is current."""

    def __init__(self, argv: Sequence[str], log: Path, env: dict[str, str],
                 progress: Callable[[], int] = lambda: 0) -> None:
        self.argv, self.log, self.env = list(argv), log, env
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.lives: list[Life] = []
        self.samples: list[tuple[int, float]] = []  # (client position, RSS MB) while uploading
        self.recording = False
        self._cpu_at_reset = 0.0
        self.progress = progress
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._poller = threading.Thread(target=self._poll, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Life:
        import httpx

        self.log.parent.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        with self.log.open("ab") as log:
            proc = subprocess.Popen([*self.argv, "--port", str(self.port)], stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=self.env, start_new_session=True)
        life = Life(proc.pid, self.progress())
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{self.argv[0]} exited ({proc.returncode}): "
                                   f"{self.log.read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(self.url + "/", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.argv[0]} did not answer in {START_TIMEOUT_S:.0f} s")
            time.sleep(0.02)
        life.start_seconds = time.perf_counter() - t
        life.rss_at_start_mb = (_status_kb(proc.pid, b"VmRSS:") or 0) / 1024
        with self._lock:
            self.proc = proc
            self.lives.append(life)
        if not self._poller.is_alive() and not self._halt.is_set():
            self._poller.start()
        return life

    def uploading(self) -> None:
        """The upload (re)starts on the current life: its peak from here on is the one that
        counts (the kernel's high-water mark is reset, `5 > /proc/PID/clear_refs`), and what
        came before (start-up, the codename's Argon2id) is kept apart."""
        with self._lock:
            if self.proc is None:
                return
            pid, life = self.proc.pid, self.lives[-1]
            life.peak_before_upload_mb = max(life.peak_before_upload_mb,
                                             (_status_kb(pid, b"VmHWM:") or 0) / 1024)
            try:
                with open(f"/proc/{pid}/clear_refs", "w") as f:
                    f.write("5")
            except OSError:
                pass
            life.peak_sampled_mb = (_status_kb(pid, b"VmRSS:") or 0) / 1024
            self._cpu_at_reset = self._cpu(pid)
            self.recording = True

    @staticmethod
    def _cpu(pid: int) -> float:
        import psutil

        try:
            cpu = psutil.Process(pid).cpu_times()
        except psutil.Error:
            return 0.0
        return float(cpu.user + cpu.system)

    def _poll(self) -> None:
        while not self._halt.wait(POLL_S):
            with self._lock:
                if self.proc is None or not self.lives or not self.recording:
                    continue
                kb = _status_kb(self.proc.pid, b"VmRSS:")
                if kb is None:
                    continue
                life = self.lives[-1]
                life.peak_sampled_mb = max(life.peak_sampled_mb, kb / 1024)
                self.samples.append((self.progress(), kb / 1024))

    def _end(self, how: str) -> subprocess.Popen[bytes] | None:
        """The current life's exact peak and CPU, read while the process still exists."""
        with self._lock:
            proc, self.proc = self.proc, None
            if proc is None:
                return None
            life = self.lives[-1]
            life.peak_mb = (_status_kb(proc.pid, b"VmHWM:") or 0) / 1024
            life.cpu_seconds = self._cpu(proc.pid)
            if self.recording:
                life.upload_cpu_seconds = life.cpu_seconds - self._cpu_at_reset
            self.recording = False
            life.ended, life.to_offset = how, self.progress()
            return proc

    def kill(self) -> None:
        """SIGKILL to its whole process group: no clean-up of any kind."""
        proc = self._end("killed")
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        if proc is not None:
            proc.wait(timeout=60)

    def stop(self) -> None:
        proc = self._end("stopped")
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)

    def close(self) -> None:
        self._halt.set()
        if self._poller.is_alive():
            self._poller.join()
        with self._lock:
            proc = self.proc
        if proc is not None:
            self.stop()

    def live_cpu_seconds(self) -> float:
        """CPU of the current life so far (not yet reaped, so not in RUSAGE_CHILDREN)."""
        with self._lock:
            return 0.0 if self.proc is None else self._cpu(self.proc.pid)


def server_env(tmp: Path) -> dict[str, str]:
    tmp.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TMPDIR": str(tmp)}
    env.pop("STRONGROOM_PASSPHRASE", None)  # the intake never has it
    return env


# -- the unencrypted anchor: a trivial tus sink ---------------------------------------------
def serve_sink(root: Path, port: int) -> None:
    """A trivial tus server: creation, HEAD and PATCH into one plain file per upload, each
    PATCH fsynced before it is answered; no authentication, no encryption, no pieces. Same
    uvicorn and h11 as the intake."""
    import secrets

    import uvicorn

    root.mkdir(parents=True, exist_ok=True)
    lengths: dict[str, int] = {}

    async def answer(send: Any, status: int, headers: dict[str, str]) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(k.encode(), v.encode()) for k, v in headers.items()]})
        await send({"type": "http.response.body", "body": b""})

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        uid = path.rsplit("/", 1)[-1]
        if method == "GET" and path == "/":
            await answer(send, 200, {"content-length": "0"})
        elif method == "POST" and path == "/files":
            uid = secrets.token_hex(16)
            lengths[uid] = int(headers["upload-length"])
            (root / uid).touch()
            await answer(send, 201, {"location": f"/files/{uid}", **TUS})
        elif method == "HEAD" and uid in lengths:
            await answer(send, 200, {"upload-offset": str((root / uid).stat().st_size),
                                     "upload-length": str(lengths[uid]), **TUS})
        elif method == "PATCH" and uid in lengths:
            offset = int(headers["upload-offset"])
            if offset != (root / uid).stat().st_size:
                await answer(send, 409, TUS)
                return
            fd = os.open(root / uid, os.O_WRONLY)
            try:
                os.lseek(fd, offset, os.SEEK_SET)
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    body = memoryview(message.get("body", b""))
                    while body:
                        body = body[os.write(fd, body):]
                    if not message.get("more_body", False):
                        break
                os.fsync(fd)
                end = os.lseek(fd, 0, os.SEEK_CUR)
            finally:
                os.close(fd)
            await answer(send, 204, {"upload-offset": str(end), **TUS})
        else:
            await answer(send, 404, {"content-length": "0"})

    uvicorn.run(app, host="127.0.0.1", port=port, http="h11", lifespan="off",
                log_level="warning", access_log=False)


# -- the client ------------------------------------------------------------------------------
class Killed(Exception):
    """Raised by the body stream right after the server was killed under it."""


@dataclass
class Resume:
    kill_at: int  # the file offset at which the server was killed
    chunk_start: int  # Upload-Offset of the PATCH that was cut
    sent_of_chunk: int  # bytes of that PATCH written to the socket before the kill
    server_offset: int  # what HEAD said after the restart
    resent: int  # (chunk_start + sent_of_chunk) − server_offset
    restart_seconds: float  # kill → the new server answering
    head_seconds: float


@dataclass
class UploadRun:
    timed: Timed
    uid: str
    sent: int  # every body byte written, all requests
    patches: int
    resumes: list[Resume] = field(default_factory=list)
    final_offset: int = 0


class Client:
    """tus over httpx with a fixed chunk; kills the server at `kill_at` offsets (mid-body)."""

    def __init__(self, server: Server, token: str, path: Path, chunk: int) -> None:
        import httpx

        self.server, self.path, self.chunk = server, path, chunk
        self.size = path.stat().st_size
        self.http = httpx.Client(timeout=httpx.Timeout(300.0, connect=30.0),
                                 headers={**TUS, "Authorization": f"Bearer {token}"})
        self.position = 0  # how far into the file the bytes written so far reach

    def close(self) -> None:
        self.http.close()

    def create(self) -> str:
        r = self.http.post(self.server.url + "/files",
                           headers={"Upload-Length": str(self.size)})
        if r.status_code != 201:
            raise RuntimeError(f"tus creation: HTTP {r.status_code} {r.text[:300]}")
        return str(r.headers["location"]).rstrip("/").rsplit("/", 1)[-1]

    def offset(self, uid: str) -> int:
        r = self.http.head(f"{self.server.url}/files/{uid}")
        if r.status_code != 200:
            raise RuntimeError(f"tus HEAD: HTTP {r.status_code}")
        return int(r.headers["upload-offset"])

    def _body(self, fd: int, start: int, n: int, kills: list[int],
              wrote: list[int]) -> Iterator[bytes]:
        pos = 0
        while pos < n:
            at = start + pos
            cut = min(BLOCK, n - pos)
            if kills and at < kills[0] < at + cut:
                cut = kills[0] - at
            data = os.pread(fd, cut, at)
            yield data
            pos += len(data)
            wrote[0] = pos
            self.position = start + pos
            if kills and start + pos == kills[0] and pos < n:
                # httpx asked for the next block, so this one is on the socket: kill now
                kills.pop(0)
                self.server.kill()
                raise Killed

    def upload(self, uid: str, kill_at: Sequence[int], say: Callable[[str], None]
               ) -> UploadRun:
        import httpx

        kills = sorted(kill_at)
        run = UploadRun(Timed(0.0), uid, 0, 0)
        fd = os.open(self.path, os.O_RDONLY)
        mine = resource.getrusage(resource.RUSAGE_SELF)
        try:
            with CpuWatch() as cpu:
                offset = self.offset(uid)
                self.position = offset
                self.server.uploading()
                while offset < self.size:
                    n = min(self.chunk, self.size - offset)
                    wrote = [0]
                    pending, left = (kills[0] if kills else -1), len(kills)
                    run.patches += 1
                    try:
                        r = self.http.patch(
                            f"{self.server.url}/files/{uid}",
                            content=self._body(fd, offset, n, kills, wrote),
                            headers={"Upload-Offset": str(offset), "Content-Length": str(n),
                                     "Content-Type": "application/offset+octet-stream"})
                    except (Killed, httpx.TransportError) as exc:
                        run.sent += wrote[0]
                        if len(kills) == left:  # no kill of ours cut this request
                            raise RuntimeError(f"the upload failed without a kill: {exc!r}"
                                               ) from exc
                        t = time.perf_counter()
                        self.server.start()
                        restart = time.perf_counter() - t
                        t = time.perf_counter()
                        now = self.offset(uid)
                        head_s = time.perf_counter() - t
                        self.server.uploading()
                        run.resumes.append(Resume(pending, offset, wrote[0], now,
                                                  offset + wrote[0] - now, restart, head_s))
                        say(f"  kill {len(run.resumes)} at {pending / MiB:,.0f} MiB "
                            f"({wrote[0] / MiB:.0f} MiB into a {n / MiB:.0f} MiB chunk): "
                            f"restarted in {restart:.1f} s, server holds "
                            f"{now / MiB:,.0f} MiB → re-send {(offset + wrote[0] - now) / MiB:.0f}"
                            " MiB")
                        offset = self.position = now
                        continue
                    run.sent += wrote[0]
                    if r.status_code != 204:
                        raise RuntimeError(f"PATCH at {offset}: HTTP {r.status_code} "
                                           f"{r.text[:300]}")
                    offset = int(r.headers["upload-offset"])
                    self.position = offset
                run.final_offset = self.offset(uid)
                live_cpu = self.server.live_cpu_seconds()
        finally:
            os.close(fd)
        # the last life's CPU is not reaped yet: it is the server's, not "other processes"
        cpu.own += live_cpu
        cpu.other = max(0.0, cpu.other - live_cpu)
        used = resource.getrusage(resource.RUSAGE_SELF)
        run.timed = cpu.timed(self.size, client_cpu_seconds=round(
            used.ru_utime + used.ru_stime - mine.ru_utime - mine.ru_stime, 2))
        return run


# -- the runs --------------------------------------------------------------------------------
@dataclass
class Ctx:
    args: argparse.Namespace
    file: Path
    size: int
    chunk: int
    recipient: str
    identity: Any
    say: Callable[[str], None]


def new_token(url: str) -> str:
    import httpx

    r = httpx.post(url + "/api/sources", json={"lang": "en"}, timeout=120)
    if r.status_code != 200:
        raise RuntimeError(f"POST /api/sources: HTTP {r.status_code} {r.text[:300]}")
    return str(r.json()["token"])


def run_plain_write(ctx: Ctx) -> Timed:
    out = WORK / "plain-copy.bin"
    out.unlink(missing_ok=True)
    warm([ctx.file])
    timed = run_command(["dd", f"if={ctx.file}", f"of={out}", f"bs={ctx.chunk}",
                         "conv=fsync", "status=none"], nbytes=ctx.size)
    if out.stat().st_size != ctx.size:
        raise RuntimeError("dd wrote a different size")
    out.unlink()
    settle()
    return timed


def run_age(ctx: Ctx) -> Timed:
    out = WORK / "plain.age"
    out.unlink(missing_ok=True)
    warm([ctx.file])
    timed = run_command(["age", "-r", ctx.recipient, "-o", str(out), str(ctx.file)],
                        nbytes=ctx.size)
    out.unlink()
    settle()
    return timed


def run_sink(ctx: Ctx) -> tuple[Timed, Server]:
    root = WORK / "sink"
    shutil.rmtree(root, ignore_errors=True)
    server = Server([sys.executable, str(Path(__file__).resolve()), "--serve-sink", str(root)],
                    WORK / "sink.log", server_env(WORK / "tmp"))
    client = Client(server, "-", ctx.file, ctx.chunk)
    server.progress = lambda: client.position
    try:
        server.start()
        uid = client.create()
        warm([ctx.file])
        run = client.upload(uid, [], ctx.say)
        server.stop()
    finally:
        client.close()
        server.close()
    if run.final_offset != ctx.size or (root / uid).stat().st_size != ctx.size:
        raise RuntimeError("the sink did not receive the whole file")
    shutil.rmtree(root)
    settle()
    run.timed.extra |= {"server_upload_cpu_seconds": round(server.lives[0].upload_cpu_seconds,
                                                           2),
                        "server_peak_rss_mb": round(server.lives[0].peak_mb, 1)}
    return run.timed, server


def run_intake(ctx: Ctx, name: str, kill_at: Sequence[int], keep: bool = False
               ) -> tuple[UploadRun, Server, Path]:
    """A fresh intake folder and server, a new source, one upload of the file, `kill_at`."""
    data = WORK / name
    shutil.rmtree(data, ignore_errors=True)
    server = Server([strongroom_cli(), "intake-serve", "--data", str(data),
                     "--public-key", ctx.recipient], WORK / f"{name}.log",
                    server_env(WORK / "tmp"))
    client: Client | None = None
    try:
        server.start()
        client = Client(server, new_token(server.url), ctx.file, ctx.chunk)
        server.progress = lambda: client.position if client else 0
        uid = client.create()
        warm([ctx.file])
        run = client.upload(uid, kill_at, ctx.say)
        server.stop()
    finally:
        if client is not None:
            client.close()
        server.close()
    folder = data / "uploads" / uid
    run.timed.extra |= {
        "server_cpu_seconds": round(sum(life.cpu_seconds for life in server.lives), 2),
        "server_upload_cpu_seconds": round(sum(life.upload_cpu_seconds
                                               for life in server.lives), 2),
        "leftover_part_files": len(list(folder.glob(".part-*"))),
        "pieces": sum(1 for p in folder.iterdir() if _PIECE.fullmatch(p.name)),
        "stored_bytes": sum(p.stat().st_size for p in folder.iterdir()
                            if _PIECE.fullmatch(p.name))}
    if run.final_offset != ctx.size:
        raise RuntimeError(f"{name}: the upload ended at {run.final_offset}, not {ctx.size}")
    if not keep:
        shutil.rmtree(data)
        settle()
    return run, server, data


def decrypted_sha256(folder: Path, identity: Any, size: int) -> tuple[str, bool]:
    """SHA-256 of the upload's pieces decrypted in offset order; whether they are contiguous
    and add up to `size`."""
    import pyrage

    pieces = sorted((int(m.group(1)), int(m.group(2)), p) for p in folder.iterdir()
                    if (m := _PIECE.fullmatch(p.name)))
    h = hashlib.sha256()
    end = 0
    contiguous = True
    for off, n, p in pieces:
        plain = pyrage.decrypt(p.read_bytes(), [identity])
        contiguous &= off == end and len(plain) == n
        h.update(plain)
        end += len(plain)
    return h.hexdigest(), contiguous and end == size


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    buf = bytearray(4 * MiB)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def quarters(samples: Sequence[tuple[int, float]], size: int) -> list[float]:
    """The largest RSS sampled in each quarter of the file."""
    out = [0.0] * 4
    for pos, mb in samples:
        q = min(3, pos * 4 // size) if size else 0
        out[q] = max(out[q], mb)
    return [round(x, 1) for x in out]


def kill_points(size: int, kills: int, chunk: int) -> list[int]:
    """`kills` evenly spaced offsets, each moved off a chunk boundary (mid-body)."""
    points = []
    for i in range(1, kills + 1):
        at = size * i // (kills + 1)
        if at % chunk == 0:
            at += min(chunk, size - at) // 2
        points.append(at)
    return points


def scenario_resume(ctx: Ctx, goals: list[dict[str, Any]]) -> dict[str, Any]:
    say, size, chunk, kills = ctx.say, ctx.size, ctx.chunk, ctx.args.kills
    tries: dict[str, list[Timed]] = {"plain_write": [], "age": [], "sink_upload": [],
                                     "intake_upload": []}
    nokill: list[tuple[UploadRun, Server]] = []
    for _ in range(ctx.args.repeat):
        tries["plain_write"].append(run_plain_write(ctx))
        tries["age"].append(run_age(ctx))
        tries["sink_upload"].append(run_sink(ctx)[0])
        run, server, _ = run_intake(ctx, "intake-nokill", [])
        run.timed.extra["server_peak_rss_mb"] = round(server.lives[0].peak_mb, 1)
        run.timed.extra["server_rss_by_quarter_mb"] = quarters(server.samples, size)
        tries["intake_upload"].append(run.timed)
        nokill.append((run, server))
    runs = {k: best(v) for k, v in tries.items()}
    points = kill_points(size, kills, chunk)
    say(f"intake upload of {size_label(size)} in {chunk // MiB} MiB PATCHes, the server "
        f"SIGKILLed {kills} times:")
    krun, kserver, kdata = run_intake(ctx, "intake-kills", points, keep=True)
    runs["intake_upload_kills"] = krun.timed
    # the check: the upload is whole and decrypts to the file
    t = time.perf_counter()
    want = file_sha256(ctx.file)
    got, contiguous = decrypted_sha256(kdata / "uploads" / krun.uid, ctx.identity, size)
    check_s = time.perf_counter() - t
    shutil.rmtree(kdata)
    settle()
    intact = got == want and contiguous and krun.final_offset == size \
        and krun.timed.extra["leftover_part_files"] == 0

    lives = kserver.lives
    resent = [r.resent for r in krun.resumes]
    first, last = lives[0].peak_mb, lives[-1].peak_mb
    flat = last / first if first else 0.0
    ratio = {k: round(runs[k].mb_per_s / runs["plain_write"].mb_per_s, 3)
             for k in ("intake_upload_kills", "intake_upload", "sink_upload", "age")}
    nk = runs["intake_upload"]
    kill_cost = runs["intake_upload_kills"].seconds - nk.seconds
    restarts = sum(r.restart_seconds for r in krun.resumes)
    say(f"  re-sent per resume: {', '.join(f'{x / MiB:.0f}' for x in resent)} MiB "
        f"(chunk {chunk // MiB} MiB); sent {krun.sent / 1e6:,.0f} MB for {size / 1e6:,.0f} MB"
        f" (+{(krun.sent - size) / 1e6:,.0f} MB)")
    say(f"  server peak RSS per life: {', '.join(f'{life.peak_mb:.0f}' for life in lives)} MB"
        f" (last ÷ first {flat:.2f}); one uninterrupted life, peak per quarter of the file: "
        f"{', '.join(f'{x:.0f}' for x in nk.extra['server_rss_by_quarter_mb'])} MB")
    say(f"  throughput: intake with {kills} kills {runs['intake_upload_kills'].mb_per_s:.0f} "
        f"MB/s ({runs['intake_upload_kills'].seconds:.1f} s) | intake, no kill "
        f"{nk.mb_per_s:.0f} MB/s ({nk.seconds:.1f} s) | unencrypted tus sink "
        f"{runs['sink_upload'].mb_per_s:.0f} MB/s | age -r {runs['age'].mb_per_s:.0f} MB/s"
        f" | plain write (dd conv=fsync) {runs['plain_write'].mb_per_s:.0f} MB/s")
    say(f"  ratio to the plain write: intake with kills {ratio['intake_upload_kills']:.2f}×, "
        f"without {ratio['intake_upload']:.2f}×, unencrypted sink {ratio['sink_upload']:.2f}×;"
        f" the {kills} kills cost {kill_cost:.1f} s ({restarts:.1f} s of restarts)")
    say(f"  CPU while uploading (uninterrupted runs): intake server "
        f"{nk.extra['server_upload_cpu_seconds']:.1f} s, sink server "
        f"{runs['sink_upload'].extra['server_upload_cpu_seconds']:.1f} s, this client "
        f"{nk.extra['client_cpu_seconds']:.1f} s, for "
        f"{size / 1e6:,.0f} MB in {nk.seconds:.1f} s")
    say(f"  check: HEAD offset {krun.final_offset:,} of {size:,}; pieces decrypt to the file's "
        f"SHA-256: {got == want} ({check_s:.1f} s)")
    say(f"  noise: {noise_note(runs)}")

    goal(goals, f"bytes re-sent per resume ≤ one chunk ({chunk // MiB} MiB), max of "
         f"{len(resent)}", max(resent, default=0) / MiB, chunk / MiB, "max", " MiB")
    goal(goals, "server SIGKILLs that landed mid-chunk and were resumed", len(krun.resumes),
         kills, "min")
    goal(goals, "server RSS flat: last life's peak ÷ first life's", flat, RSS_FLAT, "max", "×")
    goal(goals, "server peak RSS, max over its lives", max(life.peak_mb for life in lives),
         RSS_LIMIT_MB, "max", " MB")
    goal(goals, "upload complete, decrypts to the file's SHA-256", float(intact), 1, "min")
    return {
        "bytes": size, "chunk_bytes": chunk, "kills": kills, "kill_points": points,
        "runs": {k: v.to_json() for k, v in runs.items()},
        "ratios_mb_per_s_vs_plain_write": ratio,
        "kills_cost_seconds": round(kill_cost, 2),
        "restart_seconds_total": round(restarts, 2),
        "sent_bytes": krun.sent, "resent_bytes": krun.sent - size, "patches": krun.patches,
        "resumes": [asdict(r) | {"restart_seconds": round(r.restart_seconds, 3),
                                 "head_seconds": round(r.head_seconds, 3)}
                    for r in krun.resumes],
        "lives": [{k: round(v, 2) if isinstance(v, float) else v
                   for k, v in asdict(life).items()} for life in lives],
        "rss_last_over_first_life": round(flat, 3),
        "check": {"final_offset": krun.final_offset, "sha256_file": want,
                  "sha256_decrypted": got, "pieces_contiguous": contiguous,
                  "intact": intact, "seconds": round(check_s, 1)},
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = bench_parser(__doc__, repeat=1, quick_repeat=1, scenarios=SCENARIOS)
    ap.add_argument("--size", type=parse_size, default=None, metavar="BYTES",
                    help="the file uploaded (default 5G, with --quick 256M)")
    ap.add_argument("--chunk-mb", type=int, default=64, help="bytes per PATCH, MiB")
    ap.add_argument("--kills", type=int, default=5, help="SIGKILLs of the server")
    ap.add_argument("--serve-sink", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parse_bench_args(ap, argv)
    if args.serve_sink is not None:  # the unencrypted anchor's server process
        serve_sink(args.serve_sink, args.port)
        return 0
    for tool in ("dd", "age"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (make setup)")
    from pyrage import x25519

    size = args.size or (256 * MiB if args.quick else 5 << 30)
    chunk = args.chunk_mb * MiB
    started = time.perf_counter()
    log: list[str] = []

    def say(text: str) -> None:
        log.append(text)
        print(text, flush=True)

    result = result_header("intake", args, machine_facts(
        tools=[["age", "--version"]], packages=["uvicorn", "h11", "httpx", "pyrage"]))
    WORK.mkdir(parents=True, exist_ok=True)
    identity = x25519.Identity.generate()  # throwaway: the "vault" of this benchmark
    scenarios: dict[str, Any] = {}
    goals: list[dict[str, Any]] = []
    generated = 0.0
    file: Path | None = None
    try:
        print(f"the {size_label(size)} input (cached in benchmarks/work/cache) ...", flush=True)
        file, generated = cached_random_file(size, SEED)
        result["busy_before_start"] = round(wait_quiet(args.wait_quiet), 3)
        ctx = Ctx(args, file, size, chunk, str(identity.to_public()), identity, say)
        if "resume" in args.scenarios:
            scenarios["resume"] = scenario_resume(ctx, goals)
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
        if file is not None and not args.keep:
            file.unlink(missing_ok=True)
    print_goals(goals)
    result |= {
        "method": {
            "server": "strongroom intake-serve --data DIR --public-key KEY --port P, its own "
                      "process (own session); a source from POST /api/sources; tus POST /files",
            "client": f"httpx PATCH of {args.chunk_mb} MiB (Content-Length, no checksum), "
                      f"the body written {BLOCK // MiB} MiB at a time; timed from the first "
                      "HEAD to the last HEAD (restarts included)",
            "kills": "SIGKILL to the server's process group when the client has written the "
                     "bytes up to i/(kills+1) of the file (mid-body); restart, HEAD, resume",
            "resent": "per resume: chunk start + bytes written of the cut PATCH − the offset "
                      "HEAD reports after the restart",
            "rss": f"server VmRSS polled every {POLL_S * 1000:.0f} ms and VmHWM read just "
                   "before each kill/stop (exact peak per life)",
            "anchors": "dd if=FILE of=COPY bs=CHUNK conv=fsync (plain write, the ratio's "
                       "anchor); age -r KEY -o OUT FILE (not synced); the same client to an "
                       "unencrypted tus sink (uvicorn + h11, one file, fsync per PATCH)",
            "page_cache": "the file read once before every timed run; outputs deleted and "
                          "the filesystem synced between runs (untimed)",
            "mb": "1 MB = 10^6 bytes",
        },
        "dataset": {"bytes": size, "seed": SEED, "generate_seconds": round(generated, 1)},
        "log": log, "scenarios": scenarios, "goals": goals,
        "all_goals_pass": all(g["pass"] for g in goals),
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    write_results("intake", args.quick, result, args.scenarios if args.partial else ())
    return 0


if __name__ == "__main__":
    sys.exit(main())
