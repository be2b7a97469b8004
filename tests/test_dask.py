"""The Dask executor (issue 18, point 4) on a real cluster: `dask scheduler` and two
`dask worker` processes on 127.0.0.1. The pipeline's tasks run on the workers and their
results are stored once by the runner; a worker killed with SIGKILL in the middle of a task
costs nothing but time (the task runs again elsewhere, its result is stored once); a
scheduler that is not there is one line naming the setting."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from conftest import Template, cli, open_vault, poll
from dask_fixtures import Cluster, cluster  # noqa: F401 - fixture
from s3_fixtures import free_port
from strongroom.catalogue.models import CustodyEvent, StepRun
from strongroom.testmedia import ClipSpec, generate_clip, still_clip


def _ingest(vault_path: Path, source: Path) -> None:
    r = cli("ingest", vault_path, source, "-a", "USB stick 1")
    assert r.returncode == 0, r.stderr


def _analysed(vault_path: Path, template: Template) -> Counter[tuple[str, str]]:
    with open_vault(vault_path, template.keys) as v, v.catalogue.read() as s:
        return Counter((str(e.subject), str(json.loads(e.details)["step"])) for e in s.scalars(
            select(CustodyEvent).where(CustodyEvent.action == "analysed")))


def test_the_pipeline_runs_on_the_cluster(vault_path: Path, template: Template,
                                          tmp_path: Path, cluster: Cluster) -> None:
    source = tmp_path / "usb"
    source.mkdir()
    for i in range(4):
        still_clip(source / f"cam{i}.mp4", 320 + 16 * i, 240, frames=5)
    _ingest(vault_path, source)
    client = cluster.client()
    try:
        before = sum(len(v) for v in client.run(_tasks_seen).values())
    finally:
        client.close()
    r = cli("process", vault_path, "--steps", "probe,keyframes", "--json",
            env={"STRONGROOM_EXECUTOR": cluster.executor})
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["errors"] == 0 and report["ran"] == {"probe": 4, "keyframes": 4}
    # the workers ran them (each keeps a log of what it was given), both of them
    client = cluster.client()
    try:
        seen = client.run(_tasks_seen)
    finally:
        client.close()
    assert sum(len(v) for v in seen.values()) - before == 4
    assert all(seen.values())  # both workers had some
    with open_vault(vault_path, template.keys) as v, v.catalogue.read() as s:
        assert {r.status for r in s.scalars(select(StepRun))} == {"ok"}
    assert set(_analysed(vault_path, template).values()) == {1}
    r = cli("verify", vault_path, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["ok"] is True


def _tasks_seen(dask_worker: Any) -> list[str]:
    """On a worker: the pipeline tasks it has run, from Dask's own log of its tasks."""
    return sorted({str(entry[0]) for entry in dask_worker.state.log
                   if "run_with_env" in str(entry[0])})


def test_a_worker_killed_mid_task_costs_only_time(vault_path: Path, template: Template,
                                                  tmp_path: Path, cluster: Cluster) -> None:
    source = tmp_path / "usb"
    source.mkdir()
    for i in range(2):
        generate_clip(ClipSpec(name=f"dvr{i}.mp4", duration=20, camera_label=f"КАМ 0{i + 1}",
                               clock_start=datetime(2021, 5, 6, 23, 0, i)), source)
    _ingest(vault_path, source)
    killed: list[int] = []

    def kill_a_busy_worker() -> None:
        client = cluster.client()
        try:
            pids = client.run(os.getpid)  # each worker process's, by its address

            def busy() -> bool:
                for address, keys in client.processing().items():
                    if keys and address in pids:
                        time.sleep(1.0)  # well into the task: decrypted, decoding
                        os.kill(int(pids[address]), signal.SIGKILL)
                        killed.append(int(pids[address]))
                        return True
                return False
            poll(busy, timeout=120, interval=0.05)
        finally:
            client.close()

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    r = cli("process", vault_path, "--steps", "probe,keyframes,overlay_ocr", "--json",
            env={"STRONGROOM_EXECUTOR": cluster.executor})
    killer.join(130)
    assert killed, "no worker was seen busy"
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["errors"] == 0, report["error_list"]
    assert report["ran"] == {"probe": 2, "keyframes": 2, "overlay_ocr": 2}
    # each step of each clip is on the record once, though one ran twice
    counts = _analysed(vault_path, template)
    assert len(counts) == 6 and set(counts.values()) == {1}
    cluster.wait_for_workers(2)  # the nanny restarted the killed worker
    r = cli("verify", vault_path, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["ok"] is True


def test_a_scheduler_that_is_not_there_is_one_line(vault_path: Path, tmp_path: Path) -> None:
    source = tmp_path / "usb"
    source.mkdir()
    still_clip(source / "cam.mp4", 320, 240)
    _ingest(vault_path, source)
    started = time.monotonic()
    r = cli("process", vault_path, "--json",
            env={"STRONGROOM_EXECUTOR": f"dask://127.0.0.1:{free_port()}"})
    assert r.returncode == 2 and "cannot reach the Dask scheduler" in r.stderr
    assert "STRONGROOM_EXECUTOR" in r.stderr and "Traceback" not in r.stderr
    assert time.monotonic() - started < 60
