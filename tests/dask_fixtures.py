"""A real Dask cluster for tests: `dask scheduler` and two `dask worker` processes on
127.0.0.1 (each worker one process with one thread, under a nanny that restarts it), as an
organisation would start them on its servers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from s3_fixtures import free_port


@dataclass
class Cluster:
    address: str
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]]
    logs: Path

    @property
    def executor(self) -> str:
        return "dask://" + self.address[len("tcp://"):]

    def client(self) -> Any:
        from distributed import Client

        return Client(self.address, timeout=30, set_as_default=False)

    def wait_for_workers(self, n: int, timeout: float = 120) -> None:
        client = self.client()
        try:
            client.wait_for_workers(n, timeout=timeout)
        finally:
            client.close()


def _dask(*args: str, log: Path) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("dask")
    with log.open("wb") as out:
        # the workers import strongroom from the venv, as they would from an install; the
        # tests folder too, for the functions the tests run on them (`client.run`)
        return subprocess.Popen([str(exe), *args], stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
                                start_new_session=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    logs = tmp_path_factory.mktemp("dask")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = _dask("scheduler", "--host", "127.0.0.1", "--port", str(port),
                      "--no-dashboard", log=logs / "scheduler.log")
    workers = [_dask("worker", address, "--nthreads", "1", "--nworkers", "1",
                     "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{i}",
                     "--local-directory", str(logs / f"w{i}"), log=logs / f"worker{i}.log")
               for i in (1, 2)]
    c = Cluster(address, scheduler, workers, logs)
    deadline = time.monotonic() + 120
    while True:
        try:
            c.wait_for_workers(2, timeout=10)
            break
        except (OSError, TimeoutError):
            if time.monotonic() > deadline or scheduler.poll() is not None:
                for p in (scheduler, *workers):
                    p.kill()
                raise RuntimeError("the Dask cluster did not start: "
                                   + (logs / "scheduler.log").read_text()[-2000:]) from None
    yield c
    for p in (*workers, scheduler):
        p.terminate()
    for p in (*workers, scheduler):
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
