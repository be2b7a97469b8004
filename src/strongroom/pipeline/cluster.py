"""The Dask executor: the pipeline's tasks run on a `dask.distributed` cluster
(`STRONGROOM_EXECUTOR=dask://scheduler:8786`), through the same `concurrent.futures`
interface as the local process pool, so the runner (`runner.py`) is unchanged: it submits at
most a window of tasks, persists each result once, in its own process, as they come back.

What a worker gets, and when: each task carries the `WorkerEnv` (the vault's age identity to
decrypt that task's original and the recipient to seal what it makes, the work folder, the
options) in memory, pickled over the Dask connection. A worker holds it only while it runs the
task (`run_with_env` sets it and drops it); nothing of it is written to the worker's disk,
and the vault's passphrase never leaves the runner. A worker never touches the catalogue:
results return to the runner, which writes them. The plaintext of an original exists only in
the worker's private work folder while its task runs (as with the process pool).

What a compromised worker can see: the identity of the tasks it is sent, which decrypts every
original in the blob store it can reach. Use `tls://` between the runner, the scheduler and
the workers on any network that is not the machine itself, and run workers only on machines
trusted like the one holding the vault.

A worker that dies mid-task: the scheduler gives the task to another worker (Dask retries a
task whose worker was lost, up to `distributed.scheduler.allowed-failures`); the runner gets
one result and stores it once. A scheduler that goes away: the tasks in flight fail, the
runner records them as errors and stops; `process --retry-errors` resumes.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

from strongroom.errors import StrongroomError
from strongroom.pipeline.worker import WorkerEnv

#: how long to wait for the scheduler at the start
CONNECT_TIMEOUT = 10


def is_dask(executor: str) -> bool:
    return executor.startswith(("dask://", "tcp://", "tls://"))


def scheduler_address(executor: str) -> str:
    """`dask://host:8786` → `tcp://host:8786` (tcp:// and tls:// are taken as they are)."""
    if executor.startswith("dask://"):
        return "tcp://" + executor[len("dask://"):]
    return executor


class DaskExecutor(Executor):
    """`submit` runs `fn(*args)` on a worker of the cluster with `env` set (`run_with_env`)."""

    def __init__(self, executor: str, env: WorkerEnv) -> None:
        self.address = scheduler_address(executor)
        self._client: Any = connect(self.address, timeout=CONNECT_TIMEOUT)
        self._env = env
        self._pool: Any = self._client.get_executor(pure=False)

    def capacity(self) -> int:
        """Threads across the cluster's workers now; a cluster with none is refused (its
        tasks would wait for ever)."""
        workers = self._client.scheduler_info().get("workers", {})
        if not workers:
            raise StrongroomError(f"the Dask scheduler at {self.address} has no workers: "
                                  f"start some (`dask worker {self.address}`)")
        return max(1, sum(int(w.get("nthreads", 1)) for w in workers.values()))

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = self._pool.submit(run_with_env, fn, self._env, *args, **kwargs)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        try:
            if cancel_futures:
                for fut in list(getattr(self._pool, "_futures", ())):
                    fut.cancel()
            self._pool.shutdown(wait=wait)
        finally:
            self._client.close()


def connect(address: str, *, timeout: float) -> Any:
    """A `distributed.Client` of the scheduler at `address`, within `timeout` seconds whatever
    is at that address: one that accepts and never answers, or answers garbage, is
    "cannot reach", not a hang or a crash (the client is made on a thread that is left
    behind if it does not finish; the command ends soon after)."""
    import asyncio
    import threading

    import distributed

    client_class: Any = distributed.Client
    got: list[Any] = []
    failed: list[BaseException] = []

    def make() -> None:
        try:
            # first a bare identity request, with no Client object: a Client whose start
            # failed still tries to close itself when collected (20 s, and a traceback)
            asyncio.run(_identity(address, timeout))
            got.append(client_class(address, timeout=timeout, set_as_default=False))
        except BaseException as exc:  # MemoryError from a garbage handshake, too
            failed.append(exc)

    worker = threading.Thread(target=make, name="dask-connect", daemon=True)
    worker.start()
    worker.join(timeout + 5)
    if got:
        return got[0]
    why = (f"{type(failed[0]).__name__}" if failed else f"no answer within {timeout:g} s")
    raise StrongroomError(f"cannot reach the Dask scheduler at {address} ({why}); check "
                          "STRONGROOM_EXECUTOR")


async def _identity(address: str, timeout: float) -> object:
    import asyncio

    from distributed import core

    make_rpc: Any = core.rpc
    remote: Any = make_rpc(address, timeout=timeout)
    try:
        return await asyncio.wait_for(remote.identity(), timeout)
    finally:
        await remote.close_rpc()


def run_with_env(fn: Callable[..., Any], env: WorkerEnv, *args: Any, **kwargs: Any) -> Any:
    """On a Dask worker: `fn(*args)` with `env` as this process's worker env, dropped after."""
    import resource

    from strongroom.pipeline import worker

    # no core dump of this worker may hold the identity or plaintext frames (the decoders
    # run in their own sandboxed children with their own limits, as with the process pool)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    worker._ENV = env
    try:
        return fn(*args, **kwargs)
    finally:
        worker._ENV = None


__all__ = ["DaskExecutor", "connect", "is_dask", "run_with_env", "scheduler_address"]
