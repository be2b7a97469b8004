"""The runner: finds pending (original, step, version) work, runs it, persists each result.

Pending work is every (original, step) without a `step_run` row at the step's current version
(errors count as done until `--retry-errors`), so a killed run resumes where it stopped and a
bumped step version re-runs that step alone. Each original is one task on an executor
(`concurrent.futures`: a process pool by default); each step's result is persisted in its own
transaction together with its derivatives' rows and custody events.

No decoder runs in a worker: each original's decode pass runs in a sandboxed child of its
worker (`pipeline/decode.py`), so a crafted file that crashes, hangs or bombs libavcodec costs
that original an error row and nothing else; `worker_deaths` stays 0 (the fuzz campaign,
`benchmarks/fuzz.py`, counts it). The report says how the sandbox left the network.

A worker that dies mid-task all the same (the OOM killer, an admin's `kill -9`) breaks a whole
`ProcessPoolExecutor`: every task in flight fails with `BrokenProcessPool`. The runner then
shuts that pool down, removes the dead worker's work dir at once (its plaintext), records an
error for the original the dead worker was doing (named by the dir's note), and carries on with
a fresh pool: the other tasks that were in flight run again, the rest as usual.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import func, select

from strongroom.catalogue import date_order
from strongroom.catalogue.evidence import chunks_digest, rows_digest
from strongroom.catalogue.models import (
    Derivative,
    DerivativeChunk,
    MediaInfo,
    Original,
    Sighting,
    StepRun,
)
from strongroom.custody import events
from strongroom.custody.chain import result_digest
from strongroom.errors import StrongroomError
from strongroom.pipeline.step import Step, StepResult
from strongroom.pipeline.worker import (
    Outcome,
    SealedDerivative,
    Task,
    WorkerEnv,
    cleanup_workdirs,
    init_worker,
    reap_workdirs,
)
from strongroom.pipeline.worker import run_task as _run_task
from strongroom.vault import Vault
from strongroom.vault.chunks import SealedChunks
from strongroom.vault.vault import event_time


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
    worker_deaths: int = 0  # pools broken by a worker that died (killed, out of memory)
    #: slashed-date shape → the day/month order the vault's clips show (`date_order`)
    date_orders: dict[str, str] = field(default_factory=dict)
    read_again_for_date_order: int = 0
    #: how the decoders' sandbox left the network here (`media.sandbox.network_mode`):
    #: `netns`, `userns+netns`, or `none: why` (best effort: they kept it)
    sandbox_network: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"originals": self.originals, "tasks": self.tasks, "ran": self.ran,
                "skipped": self.skipped, "off": self.off, "errors": len(self.errors),
                "error_list": self.errors, "derivatives": self.derivatives,
                "worker_deaths": self.worker_deaths, "date_orders": self.date_orders,
                "read_again_for_date_order": self.read_again_for_date_order,
                "sandbox_network": self.sandbox_network, "seconds": round(self.seconds, 3)}

    def to_text(self) -> str:
        """What `strongroom process` prints: what ran, then what was skipped, off or failed."""
        ran = ", ".join(f"{k} {n}" for k, n in sorted(self.ran.items())) or "nothing pending"
        lines = [f"{self.tasks} of {self.originals} originals had pending work: {ran}; "
                 f"{self.derivatives} derivative(s), {len(self.errors)} error(s) "
                 f"in {round(self.seconds, 3)} s"]
        if self.skipped:
            lines.append("  skipped: " + ", ".join(f"{k} {n}" for k, n in
                                                   sorted(self.skipped.items())))
        lines += [f"  off: {k}: {why}" for k, why in self.off.items()]
        if self.read_again_for_date_order:
            lines.append(f"  read again: {self.read_again_for_date_order} clip(s) whose "
                         "slashed dates could be day or month first, in the order the "
                         "vault's other clips show: " + "; ".join(
                             f"{shape} {order}" for shape, order in self.date_orders.items()))
        if self.worker_deaths:
            lines.append(f"  {self.worker_deaths} worker(s) died; their work dirs were removed")
        if self.sandbox_network.startswith("none"):
            lines.append("  warning: decoders ran WITH network access (no root and no user "
                         f"namespaces here: {self.sandbox_network.removeprefix('none: ')})")
        lines += [f"  error: {e.get('file') or '?'} ({e['original'][:12]}…) {e['step']}: "
                  f"{e['error']}" for e in self.errors]
        if self.errors:
            failed = len({e["original"] for e in self.errors})
            lines.append(f"{len(self.errors)} step(s) failed on {failed} original(s); "
                         "`strongroom process --retry-errors` runs them again")
        return "\n".join(lines)


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
                  only: Iterable[str] | None = None, force: bool = False) -> list[Task]:
    """One task per original that has at least one step to (re-)run (`force`: all of
    `steps`, run already or not)."""
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
            if (force or have is None or have[0] != step.version
                    or (retry_errors and have[1] == "error")):
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
        access=vault.worker_keys(),
        work_dir=settings.work_dir,
        options={"whisper_model": settings.whisper_model, "max_pixels": settings.max_pixels,
                 "worker_memory": settings.worker_memory},
    )


def make_executor(kind: str, workers: int, env: WorkerEnv) -> Executor:
    from strongroom.pipeline.cluster import DaskExecutor, is_dask

    if is_dask(kind):
        return DaskExecutor(kind, env)
    if kind == "inline":
        init_worker_inline(env)
        return InlineExecutor()
    if kind == "process":
        import multiprocessing

        # spawn, not fork: the runner holds database connections and threads. Workers are
        # given our pid so that they die with us (see `init_worker`). The spawn context also
        # starts multiprocessing's resource tracker: a fresh interpreter that never sees the
        # identity, and that exits when the last holder of its pipe (we and the workers) is
        # gone.
        return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=init_worker, initargs=(env, os.getpid()))
    raise StrongroomError(f"unknown executor {kind!r} (use 'process', 'inline' or "
                          "dask://scheduler:8786)")


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
    only = list(only) if only is not None else None  # read twice: pending work, date orders
    reg = registry()
    settings = vault.settings
    n = workers if workers is not None else settings.workers
    if n < 0:
        raise StrongroomError(f"workers must be at least 1 (0: one per CPU), not {n}")
    n = n or os.cpu_count() or 1
    kind = executor or settings.executor
    from strongroom.pipeline.cluster import DaskExecutor, is_dask

    if kind not in ("process", "inline") and not is_dask(kind):
        raise StrongroomError(f"unknown executor {kind!r} (use 'process', 'inline' or "
                              "dask://scheduler:8786)")
    env = worker_env(vault)
    if is_dask(kind):  # the cluster's threads, not this machine's cores, fill the window
        probe = DaskExecutor(kind, env)
        try:
            capacity = probe.capacity()  # none: refused, not a wait for ever
            n = workers or capacity
        finally:
            probe.shutdown()
    # a worker per core keeps the cores busy: a decoder's own threads on top only add their
    # cost (~20 % more CPU per clip for H.264 at these sizes)
    env.options["decode_threads"] = 1 if n >= (os.cpu_count() or 1) else 0
    wanted = choose_steps(reg, steps)
    reading_clocks = any(s.name == "overlay_ocr" for s in wanted)
    if reading_clocks:  # the day/month orders the vault's clips have shown so far
        env.options["date_orders"] = date_order.infer(vault)
    off = {s.name: why for s in wanted if (why := s.unavailable(env.options)) is not None}
    chosen = [s for s in wanted if s.name not in off]
    cleanup_workdirs(settings.work_dir)
    vault.cleanup_staging()  # what a killed run (of any command) left half-staged
    tasks = pending_tasks(vault, chosen, retry_errors=retry_errors, only=only) if chosen else []
    report = ProcessReport(tasks=len(tasks), off=off)
    if tasks:
        from strongroom.media.sandbox import network_mode

        report.sandbox_network = network_mode()
    with vault.catalogue.read() as s:
        report.originals = s.scalar(select(func.count()).select_from(Original)) or 0
    progress.start(len(tasks))

    def run(tasks: list[Task]) -> None:
        def new_pool() -> Executor:
            return make_executor(kind, min(n, len(tasks)), env)

        # closing(): an exception or Ctrl-C here must shut the pool down now, not when the
        # traceback that keeps the generator alive is finally dropped
        with contextlib.closing(_run_all(new_pool, tasks, reg, window=2 * n,
                                         work_dir=settings.work_dir, report=report)) as results:
            for task, outcomes in results:
                for outcome in outcomes:
                    _persist(vault, reg, task.sha256, outcome, report)
                progress.task_done(task.sha256, outcomes)

    if tasks:
        run(tasks)
    if reading_clocks and "overlay_ocr" not in off:
        # the clips just read may show an order that other clips were waiting for
        env.options["date_orders"] = known = date_order.infer(vault)
        again = date_order.waiting(vault, known)
        if only is not None:  # `only` is kept to, even for this
            again = sorted(set(again) & set(only))
        if again:
            redo = pending_tasks(vault, [reg["overlay_ocr"]], only=again, force=True)
            report.read_again_for_date_order = len(redo)
            progress.start(len(tasks) + len(redo))  # the bar grows by the clips read again
            run(redo)
        report.date_orders = {shape: f"{d['order']} (shown by {d['clips']} clips)"
                              for shape, d in known.items()}
    _name_errors(vault, report)
    report.seconds = time.perf_counter() - started
    return report


def _name_errors(vault: Vault, report: ProcessReport) -> None:
    """Give each error the file name it was first seen under: a SHA-256 prefix means nothing
    to the person who has to find the damaged file on the USB stick."""
    shas = {e["original"] for e in report.errors}
    if not shas:
        return
    first = (select(Sighting.original_sha256, func.min(Sighting.id).label("id"))
             .where(Sighting.original_sha256.in_(shas))
             .group_by(Sighting.original_sha256).subquery())
    with vault.catalogue.read() as s:
        names = {sha: path for sha, path in s.execute(
            select(Sighting.original_sha256, Sighting.rel_path)
            .join(first, Sighting.id == first.c.id))}
    for e in report.errors:
        e["file"] = str(names.get(e["original"]) or "")


def _run_all(new_pool: Callable[[], Executor], tasks: list[Task], reg: dict[str, Step],
             window: int, *, work_dir: str, report: ProcessReport,
             ) -> Generator[tuple[Task, list[Outcome]], None, None]:
    """Yield results as they finish, keeping at most `window` tasks in flight, and outlive
    workers that die: see the module's docstring."""
    todo = deque(tasks)
    retried: set[str] = set()
    while todo:
        pool = new_pool()
        lost: list[Task] = []  # in flight when the pool broke: no result
        try:
            inflight: dict[Future[list[Outcome]], Task] = {}
            while todo or inflight:
                while len(inflight) < window and todo and not lost:
                    task = todo.popleft()
                    try:
                        inflight[pool.submit(_run_task, task)] = task
                    except BrokenProcessPool:
                        lost.append(task)
                if not inflight:
                    break
                # once broken, every future in flight fails at once: collect them all
                done, _ = wait_futures(inflight, return_when="ALL_COMPLETED" if lost
                                       else "FIRST_COMPLETED")
                for fut in done:
                    task = inflight.pop(fut)
                    try:
                        outcomes = fut.result()
                    except BrokenProcessPool:
                        lost.append(task)
                        continue
                    except Exception as exc:
                        outcomes = _failed(reg, task, f"worker failed: {type(exc).__name__}: "
                                                      f"{exc}")
                    yield task, outcomes
                if lost and not inflight:
                    break
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if not lost:
            continue
        # Every worker of the broken pool is gone now (shutdown joined them): a dir nobody
        # holds is a dead worker's, and its note names the original it died on.
        report.worker_deaths += 1
        victims = set(reap_workdirs(work_dir))
        again = []
        for task in lost:
            if task.sha256 in victims:
                yield task, _failed(reg, task, "the worker processing this original died "
                                    "(killed, e.g. by the out-of-memory killer); its work dir "
                                    "was removed; `process --retry-errors` tries again")
            elif task.sha256 in retried:
                yield task, _failed(reg, task, "lost twice with a pool whose worker died; "
                                    "`process --retry-errors` tries again")
            else:  # an innocent bystander of the broken pool: run it again
                retried.add(task.sha256)
                again.append(task)
        todo.extendleft(reversed(again))


def _failed(reg: dict[str, Step], task: Task, why: str) -> list[Outcome]:
    return [Outcome(s, reg[s].version, "error", error=why) for s in task.steps]


def _persist(vault: Vault, reg: dict[str, Step], sha256: str, outcome: Outcome,
             report: ProcessReport) -> None:
    """One transaction: the step_run row, the step's own rows, derivatives and custody."""
    step = reg[outcome.step]
    names: dict[str, list[str]] = {}  # derivative sha256 → its blob (or its chunks') names
    if outcome.status == "ok" and outcome.derived:
        pieces = [(d.sha256, p) for d in outcome.derived for p in _pieces(d)]
        stored = vault.store_sealed([p for _, p in pieces])
        for (sha, _), name in zip(pieces, stored, strict=True):
            names.setdefault(sha, []).append(name)
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
        s.flush()
        events.analysed(vault, s, sha256, step=step.name, version=outcome.version,
                        status=outcome.status, result_sha256=result_digest(outcome.data),
                        rows_sha256=rows_digest(s, step.name, sha256), error=outcome.error,
                        command=outcome.command)
        for d in outcome.derived if outcome.status == "ok" else []:
            blob_names = names[d.sha256]
            chunks = _chunk_rows(d, blob_names)
            summary = ({"count": len(chunks), "chunk_size": d.sealed.chunk_size,
                        "list_sha256": chunks_digest(chunks)}
                       if isinstance(d.sealed, SealedChunks) else None)
            event = events.derived(vault, s, sha256, derivative=d.sha256, kind=d.kind,
                                   size=d.size, blob=blob_names[0], mime=d.mime,
                                   step=step.name, version=outcome.version, command=d.command,
                                   meta=d.meta, chunks=summary)
            made = Derivative(
                original_sha256=sha256, kind=d.kind, sha256=d.sha256, size=d.size,
                blob_name=blob_names[0], mime=d.mime, step=step.name,
                step_version=outcome.version, command=d.command,
                created_at=event_time(event), meta=d.meta,
            )
            s.add(made)
            if chunks:
                s.flush()  # the row's id
                for c in chunks:
                    c.derivative_id = made.id
                s.add_all(chunks)
            report.derivatives += 1


def _pieces(d: SealedDerivative) -> list[Any]:
    """What is stored for a derivative: its one sealed blob, or each of its chunks."""
    return list(d.sealed.chunks) if isinstance(d.sealed, SealedChunks) else [d.sealed]


def _chunk_rows(d: SealedDerivative, blob_names: list[str]) -> list[DerivativeChunk]:
    if not isinstance(d.sealed, SealedChunks):
        return []
    return [DerivativeChunk(idx=c.index, offset=c.offset, size=c.size, sha256=c.sha256,
                            blob_name=name)
            for c, name in zip(d.sealed.chunks, blob_names, strict=True)]


def _mark_unreadable(s: Any, sha256: str) -> None:
    row = s.get(MediaInfo, sha256) or MediaInfo(original_sha256=sha256)
    row.status = "error"
    s.add(row)
