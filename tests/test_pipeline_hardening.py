"""The pipeline against a hostile archive and a hostile machine: killed runners and workers,
decompression bombs, truncated and one-frame clips, and honest exit codes.

Real processes, real signals (psutil finds them), real ffmpeg-made media; no mocks.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import psutil
import pytest
from sqlalchemy import select

from conftest import CLI, Template, built_once, cli, cli_env, open_vault, poll
from strongroom.catalogue.models import Derivative, MediaInfo, Segment, StepRun
from strongroom.ingest import ingest
from strongroom.pipeline.runner import process
from strongroom.testmedia import ClipSpec, generate_clip, still_clip, truncate_copy
from strongroom.vault import Vault

WORK_PREFIX = "strongroom-work-"
CLOCK = datetime(2020, 3, 14, 2, 17, 0)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every clip the tests pick from, made once per test run (`built_once`; read only)."""
    return built_once(tmp_path_factory, "hardening-media", _make_media)


def _make_media(root: Path) -> None:
    for i in range(4):  # long enough that a worker is caught mid-task (each task takes ~5 s)
        generate_clip(ClipSpec(name=f"long{i}.mp4", duration=6, camera_label="КАМ 05",
                               clock_start=CLOCK.replace(hour=3 + i), source="life",
                               seed=i + 1), root)
    generate_clip(ClipSpec(name="whole.mp4", duration=6, camera_label="КАМ 03 ПФРСИ",
                           clock_start=CLOCK), root)
    # moov first, then cut: probes as 6 s, decodes 1.8 s (the yanked-stick copy)
    truncate_copy(root / "whole.mp4", root / "cut_short.mp4", 0.3, keep_index=True)
    # moov last, then cut: ffprobe refuses it ("moov atom not found")
    truncate_copy(root / "whole.mp4", root / "no_index.mp4", 0.4)
    still_clip(root / "one_frame.mp4", 320, 240)


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~750 KB of MP4 that decodes to one 16000×16000 frame (1.5 GB as RGB); made once per
    test run (read only)."""
    return built_once(tmp_path_factory, "bomb",
                      lambda root: still_clip(root / "bomb.mp4", 16000, 16000)) / "bomb.mp4"


def vault_with(vault_path: Path, template: Template, tmp_path: Path, *files: Path) -> Path:
    src = tmp_path / "usb"
    src.mkdir()
    for f in files:
        shutil.copy2(f, src / f.name)
    with open_vault(vault_path, template.keys) as v:
        ingest(v, src, "test clips")
    return vault_path


def shas_by_name(v: Vault) -> dict[str, str]:
    from strongroom.catalogue.models import Sighting

    with v.catalogue.read() as s:
        return {Path(p).name: sha for p, sha in
                s.execute(select(Sighting.rel_path, Sighting.original_sha256)) if sha}


def start_process(vault_path: Path, work: Path, *args: str, output: bool = True
                  ) -> subprocess.Popen[str]:
    """`strongroom process` in the background. Without `output`, nothing of ours waits on
    pipes that a surviving worker would keep open."""
    pipe = subprocess.PIPE if output else subprocess.DEVNULL
    return subprocess.Popen([*CLI, "process", str(vault_path), *args],
                            env=cli_env({"STRONGROOM_WORK_DIR": str(work)}),
                            stdout=pipe, stderr=pipe, text=True)


def kill_all(procs: list[psutil.Process]) -> None:
    """Whatever a failed test left running (never processes of anyone else: ours by pid)."""
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()


def wait_for(what: str, check: Callable[[], object], timeout: float = 120) -> object:
    return poll(check, timeout=timeout, interval=0.05, what=what)


def busy_workdirs(work: Path) -> list[Path]:
    """Work dirs that already hold a decrypted original."""
    return [d for d in work.glob(WORK_PREFIX + "*") if (d / "original").exists()
            and (d / ".task").exists()]


def test_killing_the_runner_kills_its_workers(vault_path: Path, template: Template,
                                              tmp_path: Path, media: Path) -> None:
    """kill -9 of `process`: its workers (which hold the age identity) and the resource
    tracker go too, and the workers take their plaintext with them."""
    vault_with(vault_path, template, tmp_path, *sorted(media.glob("long*.mp4")))
    work = tmp_path / "work"
    work.mkdir()
    runner = start_process(vault_path, work, "--workers", "2", output=False)
    family: list[psutil.Process] = []
    try:
        wait_for("a worker holding plaintext", lambda: busy_workdirs(work))

        def settled() -> bool:
            # Tools come and go (ffmpeg, age, their setpriv wrappers; zombies for a moment):
            # look until the pool's two workers and the resource tracker are all there.
            family[:] = psutil.Process(runner.pid).children(recursive=True)
            cmdlines = [" ".join(_cmdline(p)) for p in family]
            return (sum("multiprocessing.spawn" in c for c in cmdlines) == 2
                    and any("resource_tracker" in c for c in cmdlines))

        wait_for("two workers and the resource tracker", settled)
        runner.send_signal(signal.SIGKILL)
        runner.wait()
        _gone, alive = psutil.wait_procs(family, timeout=20)
        assert alive == [], f"outlived the runner: {[_cmdline(p) for p in alive]}"
        assert list(work.iterdir()) == [], "a worker left its plaintext behind"
    finally:
        runner.kill()
        runner.wait()
        kill_all(family)


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return []


def _holder(family: list[psutil.Process], lock: Path) -> psutil.Process:
    for p in family:
        try:
            if any(f.path == str(lock) for f in p.open_files()):
                return p
        except psutil.NoSuchProcess:
            continue
    raise AssertionError(f"no process holds {lock}")


def test_a_killed_worker_leaves_no_plaintext_and_the_run_reports_it(
        vault_path: Path, template: Template, tmp_path: Path, media: Path) -> None:
    """As the OOM killer would: SIGKILL one worker mid-task. Its dir is removed by the runner in
    the same run, its original gets an error naming the death, exit 1, and every other original
    is still analysed (a fresh pool takes over)."""
    vault_with(vault_path, template, tmp_path, *sorted(media.glob("long*.mp4")))
    work = tmp_path / "work"
    work.mkdir()
    runner = start_process(vault_path, work, "--workers", "2", "--json")
    family: list[psutil.Process] = []
    try:
        dirs = wait_for("a worker holding plaintext", lambda: busy_workdirs(work))
        assert isinstance(dirs, list)
        victim_dir = dirs[0]
        victim = (victim_dir / ".task").read_text()
        family = psutil.Process(runner.pid).children(recursive=True)
        worker = _holder(family, victim_dir / ".lock")
        worker.send_signal(signal.SIGKILL)
        out, err = runner.communicate(timeout=300)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        kill_all(family)
    assert runner.returncode == 1, err
    report = json.loads(out)
    assert report["worker_deaths"] == 1
    assert list(work.iterdir()) == [], "the dead worker's plaintext is still on disk"
    failed = {e["original"] for e in report["error_list"]}
    assert failed == {victim}
    assert all("worker processing this original died" in e["error"]
               for e in report["error_list"])
    assert {e["file"] for e in report["error_list"]} <= {f"long{i}.mp4" for i in range(4)}
    with open_vault(vault_path, template.keys) as v, v.catalogue.read() as s:
        runs = s.scalars(select(StepRun)).all()
        others = {r.original_sha256 for r in runs if r.original_sha256 != victim}
        assert len(others) == 3
        assert all(r.status == "ok" for r in runs if r.original_sha256 != victim)
        assert {r.status for r in runs if r.original_sha256 == victim} == {"error"}
    # and the error is a normal one: --retry-errors finishes the job
    again = cli("process", vault_path, "--retry-errors", "--workers", "1", "--json",
                env={"STRONGROOM_WORK_DIR": str(work)})
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["tasks"] == 1


def _peak_rss_of(argv: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str],
                                                                 int]:
    """Run `argv` from a fresh interpreter and return the peak RSS (bytes) of its biggest
    descendant (workers and ffmpeg included: the runner joins them)."""
    probe = ("import resource, subprocess, sys, json; "
             "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
             "print(json.dumps([r.returncode, r.stdout, r.stderr, "
             "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))")
    done = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True,
                          env=cli_env(env),
                          timeout=300)
    code, out, err, kib = json.loads(done.stdout)
    return subprocess.CompletedProcess(argv, code, out, err), int(kib) * 1024


def test_huge_declared_frame_is_refused_before_decoding(
        vault_path: Path, template: Template, tmp_path: Path, media: Path, bomb: Path) -> None:
    vault_with(vault_path, template, tmp_path, bomb, media / "one_frame.mp4")
    r, peak = _peak_rss_of([*CLI, "process", str(vault_path), "--workers", "1", "--json"],
                           {"STRONGROOM_WORKER_MEMORY": "0"})
    assert r.returncode == 1, r.stderr
    report = json.loads(r.stdout)
    errors = {(e["file"], e["step"]): e["error"] for e in report["error_list"]}
    assert set(errors) == {("bomb.mp4", s) for s in
                           ("keyframes", "scenes", "overlay_ocr", "perceptual_hash", "proxy",
                            "review")}
    assert all("16000×16000" in e and "STRONGROOM_MAX_PIXELS" in e for e in errors.values())
    # ffprobe reads it (~650 MB); decoding it to RGB would take 1.5 GB, ffmpeg's proxy more
    assert peak < 1024**3, f"something decoded the bomb: peak RSS {peak / 1024**2:.0f} MB"
    with open_vault(vault_path, template.keys) as v, v.catalogue.read() as s:
        info = {r.width: r for r in s.scalars(select(MediaInfo))}
        assert info[16000].height == 16000 and info[16000].status == "ok"
        assert info[320].status == "ok"
        shas = shas_by_name(v)
        small = s.scalars(select(StepRun).where(
            StepRun.original_sha256 == shas["one_frame.mp4"])).all()
        assert {x.status for x in small} == {"ok"}


def test_a_frame_over_the_workers_memory_limit_is_that_files_error(
        vault_path: Path, template: Template, tmp_path: Path, media: Path, bomb: Path) -> None:
    """A file may lie about its size, so the cap on declared pixels is not enough: with the
    cap off, the worker's rlimit turns the bomb into a per-file error and the worker lives."""
    vault_with(vault_path, template, tmp_path, bomb, media / "one_frame.mp4")
    r = cli("process", vault_path, "--workers", "1", "--steps", "probe,scenes,keyframes",
            "--json", env={"STRONGROOM_MAX_PIXELS": "0",
                           "STRONGROOM_WORKER_MEMORY": str(512 * 1024**2)})
    assert r.returncode == 1, r.stderr
    report = json.loads(r.stdout)
    assert report["worker_deaths"] == 0
    errors = {(e["file"], e["step"]): e["error"] for e in report["error_list"]}
    assert set(errors) == {("bomb.mp4", "scenes"), ("bomb.mp4", "keyframes")}
    assert all("out of memory" in e for e in errors.values()), errors
    assert report["ran"] == {"probe": 2, "scenes": 1, "keyframes": 1}


def test_truncated_clip_gets_a_poster_and_is_flagged_partial(
        vault_path: Path, template: Template, tmp_path: Path, media: Path) -> None:
    vault_with(vault_path, template, tmp_path, media / "cut_short.mp4",
               media / "one_frame.mp4", media / "whole.mp4")
    with open_vault(vault_path, template.keys) as v:
        report = process(v, workers=2, executor="process")
        assert report.errors == []
        shas = shas_by_name(v)
        cut, one, whole = shas["cut_short.mp4"], shas["one_frame.mp4"], shas["whole.mp4"]
        with v.catalogue.read() as s:
            declared = s.get(MediaInfo, cut)
            assert declared is not None and declared.duration == pytest.approx(6, abs=0.1)
            kinds = {(d.original_sha256, d.kind) for d in s.scalars(select(Derivative))}
            for sha in (cut, one):
                assert {(sha, "proxy"), (sha, "poster")} <= kinds
            segs = s.scalars(select(Segment).where(Segment.original_sha256 == cut)).all()
            assert len(segs) == 1 and segs[0].end_s < 2.0, "the timeline claims 6 s"
            run = s.get(StepRun, (cut, "overlay_ocr"))
            assert run is not None and run.result is not None
            assert 1.5 < float(run.result["decoded_s"]) < 2.0  # type: ignore[arg-type]
    out = cli("timeline", vault_path, "--json")
    assert out.returncode == 0, out.stderr
    entries = {e["original"]: e for es in json.loads(out.stdout)["cameras"].values()
               for e in es}
    assert entries[cut]["partial"] and entries[cut]["end_s"] < 2.0
    assert entries[whole]["partial"] is None
    human = cli("timeline", vault_path).stdout
    assert "PARTIAL" in human and human.count("PARTIAL") == 1
    stats = json.loads(cli("stats", vault_path, "--json").stdout)
    assert stats["partial_clips"] == 1  # not the one-frame clip: it is all there


def test_process_exits_1_when_a_step_failed(vault_path: Path, template: Template,
                                            tmp_path: Path, media: Path) -> None:
    vault_with(vault_path, template, tmp_path, media / "no_index.mp4", media / "one_frame.mp4")
    r = cli("process", vault_path, "--workers", "1", "--steps", "probe,scenes")
    assert r.returncode == 1, r.stderr
    errors = [ln for ln in r.stdout.splitlines() if ln.strip().startswith("error:")]
    assert len(errors) == 2 and all("no_index.mp4" in ln for ln in errors), r.stdout
    assert "2 step(s) failed on 1 original(s)" in r.stdout
    assert "--retry-errors" in r.stdout
    again = cli("process", vault_path, "--steps", "probe,scenes", "--retry-errors", "--json")
    assert again.returncode == 1
    report = json.loads(again.stdout)  # --json: still the whole report on stdout
    assert report["errors"] == 2 and report["error_list"][0]["file"] == "no_index.mp4"
    # errors stay recorded, but a run that has nothing left to do has failed at nothing
    done = cli("process", vault_path, "--steps", "probe,scenes", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["tasks"] == 0


@pytest.mark.parametrize("workers", ["-3", "0"])
def test_process_refuses_fewer_than_one_worker(vault_path: Path, workers: str) -> None:
    r = cli("process", vault_path, "--workers", workers)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"error: --workers must be at least 1, not "
                                             f"{workers}"]
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_process_clears_what_a_killed_run_left_staged(vault_path: Path, template: Template,
                                                      tmp_path: Path) -> None:
    """A `process` killed while saving derivatives leaves its staging session (ciphertext, and
    the empty dir) in `blobs/.tmp`; the next `process` removes it, as `ingest` does, and
    leaves alone a session whose process still holds its lock."""
    from strongroom.lockdir import hold

    tmp_root = vault_path / "blobs" / ".tmp"
    tmp_root.mkdir(mode=0o700, exist_ok=True)
    dead = tmp_root / ("0" * 32)
    dead.mkdir(mode=0o700)
    (dead / "lock").touch()
    (dead / ("1" * 32)).write_bytes(os.urandom(4096))
    live = tmp_root / ("f" * 32)
    live.mkdir(mode=0o700)
    fd = hold(live, "lock")
    try:
        r = cli("process", vault_path)
        assert r.returncode == 0, r.stderr
        assert not dead.exists()
        assert live.is_dir(), "a session whose process is alive was removed"
    finally:
        os.close(fd)
