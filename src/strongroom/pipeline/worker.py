"""What runs in a pipeline worker: every pending step of one original, in one task.

The worker decrypts the original into a private work dir (0700, flock-held, removed in
`finally`; a killed worker's dir is removed by the next run), checks that the plaintext still has
the original's SHA-256, runs probe first, then all frame-consuming steps in one decode pass,
then the rest. Files the steps made are encrypted to the vault's public key *here*, so only
ciphertext travels back to the runner. The worker never touches the catalogue.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strongroom.errors import IntegrityError, StrongroomError
from strongroom.lockdir import hold, remove_if_abandoned
from strongroom.media.frames import FrameConsumer, decode_pass
from strongroom.media.probe import MediaFacts
from strongroom.pipeline.step import Context, Job, StepResult
from strongroom.vault.blobs import LocalBlobStore
from strongroom.vault.encryption import decrypt_stream
from strongroom.vault.hashing import MultiHash

WORKDIR_PREFIX = "strongroom-work-"
_LOCK = ".lock"


@dataclass(frozen=True)
class WorkerEnv:
    """Everything a worker needs, handed over once when the worker starts (never on disk)."""

    identity: str
    recipient: str
    blob_root: str
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
    sha256: str
    size: int
    ciphertext: bytes
    command: list[str] | None
    meta: dict[str, Any]


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


def init_worker(env: WorkerEnv) -> None:
    """Process-pool initializer: keep the env; leave Ctrl-C to the runner."""
    global _ENV
    _ENV = env
    signal.signal(signal.SIGINT, signal.SIG_IGN)


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
    outcomes: list[Outcome] = []
    with private_workdir(env.work_dir) as workdir:
        workdirs.append(workdir)
        plain = workdir / "original"
        try:
            _decrypt(env, task, plain)
        except StrongroomError as exc:
            return [Outcome(s, steps[s].version, "error", error=str(exc)) for s in task.steps]
        facts = MediaFacts(**task.facts) if task.facts else None
        ctx = Context(sha256=task.sha256, path=plain, workdir=workdir, facts=facts,
                      options=env.options)
        todo = list(task.steps)
        if "probe" in todo:
            todo.remove("probe")
            outcome = _run_job(steps["probe"].name, steps["probe"].version,
                               lambda: steps["probe"].start(ctx).finish(), None, env)
            outcomes.append(outcome)
            if outcome.status == "error":
                why = f"probe failed: {outcome.error}"
                return outcomes + [Outcome(s, steps[s].version, "error", error=why)
                                   for s in todo]
        if ctx.facts is None or not ctx.facts.has_video or not ctx.facts.duration:
            reason = ("not a video" if ctx.facts is None or ctx.facts.status == "not_media"
                      or not ctx.facts.has_video else "no duration")
            return outcomes + [Outcome(s, steps[s].version, "skipped", data={"reason": reason})
                               for s in todo]
        jobs: dict[str, Job] = {}
        for name in todo:
            try:
                jobs[name] = steps[name].start(ctx)
            except Exception as exc:
                outcomes.append(_error(name, steps[name].version, exc, 0.0))
        consumers: list[FrameConsumer] = [j.consumer for j in jobs.values()
                                          if j.consumer is not None]
        pass_error: str | None = None
        pass_seconds = 0.0
        if consumers:
            started = time.perf_counter()
            try:
                info = decode_pass(plain, consumers, ctx.video_facts().duration or 0.0)
                pass_error = info.error
            except StrongroomError as exc:
                pass_error = f"decoding failed: {exc}"
                for name in [n for n, j in jobs.items() if j.consumer is not None]:
                    outcomes.append(Outcome(name, steps[name].version, "error",
                                            error=pass_error))
                    del jobs[name]
            pass_seconds = (time.perf_counter() - started) / max(1, len(consumers))
        for name, job in jobs.items():
            shared = pass_seconds if job.consumer is not None else 0.0
            outcome = _run_job(name, steps[name].version, job.finish, shared, env)
            if pass_error and outcome.status == "ok" and outcome.data is not None:
                outcome.data["partial"] = pass_error
            outcomes.append(outcome)
    return outcomes


def _run_job(name: str, version: str, call: Callable[[], StepResult], shared_seconds: float | None,
             env: WorkerEnv) -> Outcome:
    started = time.perf_counter()
    try:
        res: StepResult = call()
        derived = [_seal(env, d.kind, d.mime, d.path, d.command, d.meta) for d in res.derived]
    except Exception as exc:
        return _error(name, version, exc, time.perf_counter() - started)
    seconds = time.perf_counter() - started + (shared_seconds or 0.0)
    return Outcome(name, version, res.status, data=res.data, command=res.command,
                   seconds=seconds, derived=derived)


def _error(name: str, version: str, exc: BaseException, seconds: float) -> Outcome:
    if isinstance(exc, StrongroomError):
        msg = str(exc)
    else:  # a bug, not bad input: keep where it happened
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        msg = f"{type(exc).__name__}: {exc}" + (
            f" ({Path(where.filename).name}:{where.lineno})" if where else "")
    return Outcome(name, version, "error", error=msg, seconds=seconds)


def _decrypt(env: WorkerEnv, task: Task, dest: Path) -> None:
    store = LocalBlobStore(Path(env.blob_root))
    hasher = MultiHash()
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, store.open(task.blob_name) as src:
        decrypt_stream(src, env.identity, out.write, hasher, what=f"original {task.sha256}")
    if hasher.digests().sha256 != task.sha256:
        raise IntegrityError(f"original {task.sha256}: decrypted content does not match its "
                             "SHA-256 (run `strongroom verify`)")


def _seal(env: WorkerEnv, kind: str, mime: str, path: Path, command: list[str] | None,
          meta: dict[str, Any]) -> SealedDerivative:
    import pyrage
    from pyrage import x25519

    data = path.read_bytes()
    cipher = pyrage.encrypt(data, [x25519.Recipient.from_str(env.recipient)])
    return SealedDerivative(kind=kind, mime=mime, sha256=hashlib.sha256(data).hexdigest(),
                            size=len(data), ciphertext=cipher, command=command, meta=meta)


@contextlib.contextmanager
def private_workdir(base: str) -> Iterator[Path]:
    """A 0700 dir for one original's plaintext; held with an flock so that `cleanup_workdirs`
    can tell a live worker's dir from one a killed worker left behind."""
    path = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX, dir=base or None))
    fd = hold(path, _LOCK)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        os.close(fd)


def cleanup_workdirs(base: str) -> int:
    """Remove work dirs (plaintext!) left by killed workers; returns how many."""
    root = Path(base or tempfile.gettempdir())
    removed = 0
    for path in root.glob(WORKDIR_PREFIX + "*"):
        # no lock file yet: killed right after mkdtemp — or a worker about to take the lock
        removed += remove_if_abandoned(path, _LOCK, grace=60)
    return removed
