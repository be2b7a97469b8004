"""What runs in a pipeline worker: every pending step of one original, in one task.

The worker decrypts the original into a private work dir (0700, flock-held, removed in
`finally`; a killed worker's dir is removed by the next run), checks that the plaintext still has
the original's SHA-256, runs probe first, then all frame-consuming steps in one decode pass,
then the rest. Files the steps made are encrypted to the vault's public key *here*, so only
ciphertext travels back to the runner. The worker never touches the catalogue.

The worker parses nothing of the original itself: ffprobe and ffmpeg run as tools with no
network (`run_tool(isolate=True)`), and the decode pass runs in a sandboxed child
(`pipeline/decode.py`, `media/sandbox.py`) with its own rlimits, timeout and dir, which hands
back JSON, files to seal and raw pixels. A decoder that crashes, hangs or eats memory costs that
original an error; the worker, and the identity it holds, are out of its reach.

A worker holds the vault's age identity in memory, so it must not outlive the runner: it asks
for a parent-death signal (Linux) and also watches its parent from a thread (everywhere). When
told to stop (SIGTERM: the runner died, or the pool broke and is being torn down) it kills its
ffmpeg, removes its work dir and exits at once. A SIGKILLed worker cannot clean up; the runner
notices the broken pool, removes the dead worker's dir itself and learns from the dir's `.task`
note which original it was working on. The worker itself runs under a data-segment rlimit (OCR
on the frames handed back), and frames declared bigger than `max_pixels` are never decoded.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strongroom.errors import StrongroomError
from strongroom.lockdir import hold, remove_if_abandoned
from strongroom.media.frames import check_frame_size
from strongroom.media.probe import MediaFacts
from strongroom.media.run import die_with_parent, kill_running_tools
from strongroom.media.sandbox import describe_bug
from strongroom.pipeline.step import Context, Derived, Job, StepResult
from strongroom.vault.chunks import SealedChunks
from strongroom.vault.worker import Sealed, WorkerKeys

WORKDIR_PREFIX = "strongroom-work-"
_LOCK = ".lock"
_TASK = ".task"  # which original a work dir is for: names a dead worker's victim
#: How often the watcher thread checks that the runner is still there (seconds).
PARENT_POLL = 0.5
#: A decoded clip this much shorter than declared is partial (truncated, cut short). Less is
#: container rounding: audio a little longer than video, edit lists, a last frame's length.
PARTIAL_SLACK = 1.0


@dataclass(frozen=True)
class WorkerEnv:
    """Everything a worker needs, handed over once when the worker starts (never on disk)."""

    access: WorkerKeys  # decrypt originals, seal derivatives: nothing more
    work_dir: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    sha256: str
    blob_name: str
    steps: tuple[str, ...]
    facts: dict[str, Any] | None  # probe's result when probe is not part of this task


@dataclass
class SealedDerivative:
    kind: str
    mime: str
    sealed: Sealed | SealedChunks
    command: list[str] | None
    meta: dict[str, Any]

    @property
    def sha256(self) -> str:
        return self.sealed.sha256

    @property
    def size(self) -> int:
        return self.sealed.size


@dataclass
class Outcome:
    step: str
    version: str
    status: str  # ok | skipped | error
    data: dict[str, Any] | None = None
    error: str | None = None
    command: list[str] | None = None
    seconds: float = 0.0
    derived: list[SealedDerivative] = field(default_factory=list)


_ENV: WorkerEnv | None = None
_CURRENT: Path | None = None  # this worker's work dir while it holds one


def init_worker(env: WorkerEnv, parent: int | None = None) -> None:
    """Process-pool initializer: keep the env; leave Ctrl-C to the runner; die with the runner
    (`parent`, its pid); cap this process's memory."""
    global _ENV
    _ENV = env
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_term)
    if parent is not None:
        die_with_parent(signal.SIGTERM)
        if os.getppid() != parent:  # the runner died before the signal was armed
            _leave(1)
        threading.Thread(target=_watch_parent, args=(parent,), name="watch-runner",
                         daemon=True).start()
    limit_memory(int(env.options.get("worker_memory") or 0))


def limit_memory(limit: int) -> None:
    """RLIMIT_DATA (heap and anonymous mappings, not reserved address space or shared
    libraries) for this process and the tools it starts; 0 leaves it alone."""
    if limit <= 0:
        return
    _soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash must not dump plaintext frames


def _watch_parent(parent: int) -> None:
    """The portable backstop to the parent-death signal: orphaned means the runner is gone."""
    while True:
        time.sleep(PARENT_POLL)
        if os.getppid() != parent:
            _leave(1)


def _on_term(signum: int, _frame: object) -> None:
    _leave(128 + signum)


def _leave(code: int) -> None:
    """Stop now: no ffmpeg left reading the plaintext, no plaintext left on disk, no identity
    left in memory. `os._exit`, because a pool worker that raised SystemExit would only report
    it and wait for more work."""
    kill_running_tools()
    workdir = _CURRENT
    if workdir is not None:
        shutil.rmtree(workdir, ignore_errors=True)
    os._exit(code)


def run_task(task: Task, env: WorkerEnv | None = None) -> list[Outcome]:
    """Every step of `task`; error texts name the plaintext `{original}`, not its path."""
    workdirs: list[Path] = []
    outcomes = _run_task(task, env, workdirs)
    for o in outcomes:
        if o.error:
            for wd in workdirs:
                o.error = o.error.replace(str(wd / "original"), "{original}").replace(
                    str(wd), "{workdir}")
    return outcomes


def _run_task(task: Task, env: WorkerEnv | None, workdirs: list[Path]) -> list[Outcome]:
    from strongroom.pipeline.steps import registry

    env = env or _ENV
    if env is None:
        raise StrongroomError("pipeline worker was not initialised")
    steps = registry()
    with private_workdir(env.work_dir, task.sha256) as workdir:
        workdirs.append(workdir)
        plain = workdir / "original"
        try:
            env.access.decrypt_original(task.blob_name, task.sha256, plain)
        except StrongroomError as exc:
            return [Outcome(s, steps[s].version, "error", error=str(exc)) for s in task.steps]
        facts = MediaFacts(**task.facts) if task.facts else None
        ctx = Context(sha256=task.sha256, path=plain, workdir=workdir, facts=facts,
                      options=env.options)
        access = env.access
        return analyse(ctx, task.steps, lambda d: _seal(access, d))


#: What the worker does with a file a step made: encrypt it to the vault (`_seal`); the fuzz
#: campaign passes its own (it has no vault).
Sealer = Callable[[Derived], "SealedDerivative | None"]


def analyse(ctx: Context, names: tuple[str, ...] | list[str], seal: Sealer) -> list[Outcome]:
    """Every step in `names` on the plaintext at `ctx.path`: probe first (its facts decide
    the rest), then one sandboxed decode pass for every step that consumes frames, then the
    others. Every failure is that step's `Outcome`; nothing a crafted file does gets past
    this function (no decoder runs in this process: see `pipeline/decode.py`)."""
    from strongroom.pipeline.steps import registry

    steps = registry()
    outcomes: list[Outcome] = []
    todo = list(names)
    if "probe" in todo:
        todo.remove("probe")
        outcome = _run_job(steps["probe"].name, steps["probe"].version,
                           lambda: steps["probe"].start(ctx).finish(), None, seal)
        outcomes.append(outcome)
        if outcome.status == "error":
            why = f"probe failed: {outcome.error}"
            return outcomes + [Outcome(s, steps[s].version, "error", error=why) for s in todo]
    if ctx.facts is None or not ctx.facts.has_video or not ctx.facts.duration:
        reason = ("not a video" if ctx.facts is None or ctx.facts.status == "not_media"
                  or not ctx.facts.has_video else "no duration")
        return outcomes + [Outcome(s, steps[s].version, "skipped", data={"reason": reason})
                           for s in todo]
    video = ctx.video_facts()
    max_pixels = int(ctx.options.get("max_pixels") or 0)
    try:
        check_frame_size(video.width, video.height, max_pixels)
    except StrongroomError as exc:
        refused = [n for n in todo if steps[n].decodes_video]
        outcomes += [Outcome(n, steps[n].version, "error", error=str(exc)) for n in refused]
        todo = [n for n in todo if n not in refused]
    jobs: dict[str, Job] = {}
    for name in todo:
        try:
            jobs[name] = steps[name].start(ctx)
        except Exception as exc:
            outcomes.append(_error(name, steps[name].version, exc, 0.0))
    decoding = {n: j for n, j in jobs.items() if j.consumer is not None}
    others = {n: j for n, j in jobs.items() if j.consumer is None}
    if decoding:
        outcomes += _decoded(ctx, decoding, video.duration or 0.0, max_pixels, seal)
    for name, job in others.items():
        outcomes.append(_run_job(name, steps[name].version, job.finish, 0.0, seal))
    return outcomes


def _decoded(ctx: Context, jobs: dict[str, Job], duration: float, max_pixels: int,
             seal: Sealer) -> list[Outcome]:
    """The frame-consuming jobs: one sandboxed decode pass, then each job's result."""
    from strongroom.pipeline import decode
    from strongroom.pipeline.steps import registry

    steps = registry()
    started = time.perf_counter()
    outcomes: list[Outcome] = []
    try:
        with decode.sandboxed_pass(ctx, jobs, duration, max_pixels=max_pixels,
                                   limits=decode.decode_limits(duration, ctx.options)) as got:
            shared = (time.perf_counter() - started) / len(jobs)
            decoded = ctx.decoded_duration = got.info.decoded_s
            partial = got.info.error
            if partial is None and decoded < duration - PARTIAL_SLACK:
                partial = f"decoded {decoded:.2f} s of the {duration:.2f} s its header declares"
            for name, job in jobs.items():
                version = steps[name].version
                if name in got.errors:
                    outcomes.append(Outcome(name, version, "error", error=got.errors[name],
                                            seconds=shared))
                    continue
                result = got.results.get(name)
                outcome = _run_job(name, version, job.finish if result is None
                                   else _given(result), shared, seal)
                if outcome.status == "ok" and outcome.data is not None:
                    outcome.data["decoded_s"] = decoded
                    if partial:
                        outcome.data["partial"] = partial
                outcomes.append(outcome)
    except StrongroomError as exc:
        done = {o.step for o in outcomes}
        why = f"decoding failed: {exc}"
        outcomes += [Outcome(n, steps[n].version, "error", error=why)
                     for n in jobs if n not in done]
    return outcomes


def _given(result: StepResult) -> Callable[[], StepResult]:
    return lambda: result


def _run_job(name: str, version: str, call: Callable[[], StepResult], shared_seconds: float | None,
             seal: Sealer) -> Outcome:
    started = time.perf_counter()
    try:
        res: StepResult = call()
        derived = [s for d in res.derived if (s := seal(d)) is not None]
    except Exception as exc:
        return _error(name, version, exc, time.perf_counter() - started)
    seconds = time.perf_counter() - started + (shared_seconds or 0.0)
    return Outcome(name, version, res.status, data=res.data, command=res.command,
                   seconds=seconds, derived=derived)


def _error(name: str, version: str, exc: BaseException, seconds: float) -> Outcome:
    if isinstance(exc, StrongroomError):
        msg = str(exc)
    elif isinstance(exc, MemoryError):  # e.g. OCR on huge frames a crafted file declared
        msg = (f"out of memory in {name} (the worker's limit is STRONGROOM_WORKER_MEMORY)"
               + (f": {exc}" if str(exc) else ""))
    else:  # a bug, not bad input: keep where it happened
        msg = describe_bug(exc)
    return Outcome(name, version, "error", error=msg, seconds=seconds)


def _seal(access: WorkerKeys, d: Derived) -> SealedDerivative:
    sealed = access.seal_chunks(d.path) if d.chunked else access.seal(d.path)
    return SealedDerivative(kind=d.kind, mime=d.mime, sealed=sealed, command=d.command,
                            meta=d.meta)


@contextlib.contextmanager
def private_workdir(base: str, sha256: str = "") -> Iterator[Path]:
    """A 0700 dir for one original's plaintext; held with an flock so that `cleanup_workdirs`
    can tell a live worker's dir from one a killed worker left behind, and noting which
    original it is for (inside the 0700 dir, beside that original's plaintext)."""
    global _CURRENT
    path = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX, dir=base or None))
    _CURRENT = path
    fd = hold(path, _LOCK)
    try:
        if sha256:
            (path / _TASK).write_text(sha256, encoding="ascii")
        yield path
    finally:
        _CURRENT = None
        shutil.rmtree(path, ignore_errors=True)
        os.close(fd)


def reap_workdirs(base: str) -> list[str]:
    """Remove work dirs (plaintext!) that no live process holds; returns the SHA-256 of the
    original each was for, where its note says (a dead worker's victims)."""
    root = Path(base or tempfile.gettempdir())
    shas: list[str] = []

    def note(path: Path) -> None:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            shas.append((path / _TASK).read_text(encoding="ascii").strip())

    for path in root.glob(WORKDIR_PREFIX + "*"):
        # no lock file yet: killed right after mkdtemp — or a worker about to take the lock
        remove_if_abandoned(path, _LOCK, grace=60, before=note)
    return shas


def cleanup_workdirs(base: str) -> int:
    """Remove work dirs left by killed workers (an earlier run's); returns how many."""
    root = Path(base or tempfile.gettempdir())
    removed = 0
    for path in root.glob(WORKDIR_PREFIX + "*"):
        removed += remove_if_abandoned(path, _LOCK, grace=60)
    return removed
