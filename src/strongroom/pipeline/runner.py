"""The runner: finds pending (original, step, version) work, runs it, persists each result.

Pending work is every (original, step) without a `step_run` row at the step's current version
(errors count as done until `--retry-errors`), so a killed run resumes where it stopped and a
bumped step version re-runs that step alone. Each original is one task on an executor
(`concurrent.futures`: a process pool by default); each step's result is persisted in its own
transaction together with its derivatives' rows and custody events.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import func, select

from strongroom.catalogue.models import Derivative, MediaInfo, Original, StepRun
from strongroom.errors import StrongroomError
from strongroom.pipeline.step import Step, StepResult
from strongroom.pipeline.worker import Outcome, Task, WorkerEnv, cleanup_workdirs, init_worker
from strongroom.pipeline.worker import run_task as _run_task
from strongroom.vault import Vault


class Progress(Protocol):
    def start(self, tasks: int) -> None: ...
    def task_done(self, sha256: str, outcomes: list[Outcome]) -> None: ...


class _NoProgress:
    def start(self, tasks: int) -> None:
        pass

    def task_done(self, sha256: str, outcomes: list[Outcome]) -> None:
        pass


@dataclass
class ProcessReport:
    originals: int = 0
    tasks: int = 0
    ran: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    off: dict[str, str] = field(default_factory=dict)  # step → why it cannot run here
    errors: list[dict[str, str]] = field(default_factory=list)
    derivatives: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"originals": self.originals, "tasks": self.tasks, "ran": self.ran,
                "skipped": self.skipped, "off": self.off, "errors": len(self.errors),
                "error_list": self.errors, "derivatives": self.derivatives,
                "seconds": round(self.seconds, 3)}


class InlineExecutor(Executor):
    """Runs each task when submitted, in this process (debugging, tests of the runner)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            fut.set_exception(exc)
        return fut


def choose_steps(registry: dict[str, Step], names: Iterable[str] | None) -> list[Step]:
    """The steps to run, in registry order. Default: all but the optional ones."""
    if names is None:
        return [s for s in registry.values() if not s.optional]
    wanted = [n.strip() for n in names if n.strip()]
    unknown = sorted(set(wanted) - set(registry))
    if unknown:
        raise StrongroomError(f"unknown step(s): {', '.join(unknown)}; "
                              f"available: {', '.join(registry)}")
    return [s for s in registry.values() if s.name in wanted]


def pending_tasks(vault: Vault, steps: list[Step], *, retry_errors: bool = False,
                  only: Iterable[str] | None = None) -> list[Task]:
    """One task per original that has at least one step to (re-)run."""
    by_name = {s.name: s for s in steps}
    probe_version = _probe_version()
    with vault.catalogue.read() as s:
        q = select(Original.sha256, Original.blob_name, Original.size).order_by(Original.sha256)
        if only is not None:
            q = q.where(Original.sha256.in_(list(only)))
        originals = s.execute(q).all()
        runs: dict[str, dict[str, tuple[str, str]]] = {}
        for r in s.execute(select(StepRun.original_sha256, StepRun.step, StepRun.version,
                                  StepRun.status)):
            runs.setdefault(r[0], {})[r[1]] = (r[2], r[3])
        probed = {sha: facts for sha, facts in s.execute(
            select(StepRun.original_sha256, StepRun.result).where(
                StepRun.step == "probe", StepRun.status == "ok",
                StepRun.version == probe_version))}
    tasks = []
    for sha, blob_name, _size in originals:
        done = runs.get(sha, {})
        todo = []
        for name, step in by_name.items():
            have = done.get(name)
            if have is None or have[0] != step.version or (retry_errors and have[1] == "error"):
                todo.append(name)
        if not todo:
            continue
        facts = probed.get(sha)
        if facts is None and "probe" not in todo:
            todo.insert(0, "probe")  # every other step needs its facts
        tasks.append(Task(sha256=sha, blob_name=blob_name, steps=tuple(todo),
                          facts=None if "probe" in todo else facts))
    return tasks


def _probe_version() -> str:
    from strongroom.pipeline.steps.probe import ProbeStep

    return ProbeStep.version


def worker_env(vault: Vault) -> WorkerEnv:
    settings = vault.settings
    return WorkerEnv(
        identity=vault.keys.identity_text(),
        recipient=vault.keys.public.age_recipient,
        blob_root=str(settings.resolved_blob_root().resolve()),
        work_dir=settings.work_dir,
        options={"whisper_model": settings.whisper_model},
    )


def make_executor(kind: str, workers: int, env: WorkerEnv) -> Executor:
    if kind == "inline":
        init_worker_inline(env)
        return InlineExecutor()
    if kind == "process":
        import multiprocessing

        # spawn, not fork: the runner holds database connections and threads.
        return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=init_worker, initargs=(env,))
    raise StrongroomError(f"unknown executor {kind!r} (use 'process' or 'inline')")


def init_worker_inline(env: WorkerEnv) -> None:
    from strongroom.pipeline import worker

    worker._ENV = env


def process(
    vault: Vault,
    *,
    steps: Iterable[str] | None = None,
    workers: int | None = None,
    executor: str | None = None,
    retry_errors: bool = False,
    only: Iterable[str] | None = None,
    progress: Progress | None = None,
) -> ProcessReport:
    from strongroom.pipeline.steps import registry

    progress = progress or _NoProgress()
    started = time.perf_counter()
    reg = registry()
    settings = vault.settings
    env = worker_env(vault)
    wanted = choose_steps(reg, steps)
    off = {s.name: why for s in wanted if (why := s.unavailable(env.options)) is not None}
    chosen = [s for s in wanted if s.name not in off]
    cleanup_workdirs(settings.work_dir)
    tasks = pending_tasks(vault, chosen, retry_errors=retry_errors, only=only) if chosen else []
    report = ProcessReport(tasks=len(tasks), off=off)
    with vault.catalogue.read() as s:
        report.originals = s.scalar(select(func.count()).select_from(Original)) or 0
    progress.start(len(tasks))
    if not tasks:
        report.seconds = time.perf_counter() - started
        return report
    n = workers if workers is not None else settings.workers
    n = n or os.cpu_count() or 1
    pool = make_executor(executor or settings.executor, min(n, len(tasks)), env)
    try:
        for task, outcomes in _run_all(pool, tasks, reg, window=2 * n):
            for outcome in outcomes:
                _persist(vault, reg, task.sha256, outcome, report)
            progress.task_done(task.sha256, outcomes)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    report.seconds = time.perf_counter() - started
    return report


def _run_all(pool: Executor, tasks: list[Task], reg: dict[str, Step], window: int
             ) -> Iterator[tuple[Task, list[Outcome]]]:
    """Yield results as they finish, keeping at most `window` tasks in flight."""
    todo = iter(tasks)
    inflight: dict[Future[list[Outcome]], Task] = {}
    while True:
        while len(inflight) < window:
            task = next(todo, None)
            if task is None:
                break
            inflight[pool.submit(_run_task, task)] = task
        if not inflight:
            return
        done, _ = wait_futures(inflight, return_when="FIRST_COMPLETED")
        for fut in done:
            task = inflight.pop(fut)
            try:
                outcomes = fut.result()
            except Exception as exc:
                from strongroom.pipeline.steps import registry

                reg = registry()
                outcomes = [Outcome(s, reg[s].version, "error",
                                    error=f"worker failed: {type(exc).__name__}: {exc}")
                            for s in task.steps]
            yield task, outcomes


def _persist(vault: Vault, reg: dict[str, Step], sha256: str, outcome: Outcome,
             report: ProcessReport) -> None:
    """One transaction: the step_run row, the step's own rows, derivatives and custody."""
    step = reg[outcome.step]
    names = {}
    if outcome.status == "ok" and outcome.derived:
        staged = []
        for d in outcome.derived:
            blob = vault.blobs.stage()
            blob.file.write(d.ciphertext)
            names[d.sha256] = vault.keys.storage_name(d.sha256)
            staged.append((blob, names[d.sha256]))
        vault.blobs.commit(staged)
    now = datetime.now(UTC)
    with vault.write() as s:
        if outcome.status == "ok":
            result = StepResult(data=outcome.data or {}, command=outcome.command)
            step.persist(s, sha256, result)
            outcome.data = result.data
            report.ran[step.name] = report.ran.get(step.name, 0) + 1
        elif outcome.status == "skipped":
            report.skipped[step.name] = report.skipped.get(step.name, 0) + 1
        else:
            report.errors.append({"original": sha256, "step": step.name,
                                  "error": outcome.error or "failed"})
            if step.name == "probe":
                _mark_unreadable(s, sha256)
        row = s.get(StepRun, (sha256, step.name)) or StepRun(original_sha256=sha256,
                                                             step=step.name)
        row.version, row.status, row.result = outcome.version, outcome.status, outcome.data
        row.error, row.command = outcome.error, outcome.command
        row.seconds, row.finished_at = round(outcome.seconds, 3), now
        s.add(row)
        vault.record(s, "analysed", f"original:{sha256}", {
            "step": step.name, "version": outcome.version, "status": outcome.status,
            **({"error": outcome.error} if outcome.error else {}),
            **({"command": outcome.command} if outcome.command else {}),
        })
        for d in outcome.derived if outcome.status == "ok" else []:
            blob_name = names[d.sha256]
            s.add(Derivative(
                original_sha256=sha256, kind=d.kind, sha256=d.sha256, size=d.size,
                blob_name=blob_name, mime=d.mime, step=step.name, step_version=outcome.version,
                command=d.command, created_at=now, meta=d.meta,
            ))
            vault.record(s, "derived", f"original:{sha256}", {
                "derivative": d.sha256, "kind": d.kind, "size": d.size, "blob": blob_name,
                "step": step.name, "version": outcome.version, "command": d.command,
                "meta": d.meta,
            })
            report.derivatives += 1


def _mark_unreadable(s: Any, sha256: str) -> None:
    row = s.get(MediaInfo, sha256) or MediaInfo(original_sha256=sha256)
    row.status = "error"
    s.add(row)
