"""Scale-out (issue 18): Dask workers, an S3 blob store and a PostgreSQL catalogue, each against
its anchor measured in the same run.

Scenarios (`--only dask,s3,pg`). Every server is a real process started here on 127.0.0.1 and
stopped afterwards: `dask scheduler` / `dask worker`, `moto_server`, Debian's PostgreSQL.

1. **dask** — pipeline throughput with 1 vs 2 Dask workers on this machine. Eight DVR-style
   H.264 clips (768×576, 20–40 s, 250 s of video; `strongroom.testmedia`) are ingested once
   into a template vault; every timed run gets a fresh copy of it (so every run does the same
   work: the same 8 tasks, every step pending). The timed command is the whole
   `strongroom process VAULT --steps probe,keyframes,scenes,overlay_ocr,perceptual_hash --json`
   as a user runs it (start-up and key unseal included), with STRONGROOM_EXECUTOR pointing at
   (a) a cluster of one `dask worker --nthreads 1 --nworkers 1`, (b) a second cluster of two
   such workers, both running throughout (idle workers cost ~nothing; the workers are warmed by
   an untimed run first, as a long-running cluster is). The anchor is the 1-worker run:
   ratio = time(1 worker) / time(2 workers), goal ≥ 1.7×. For comparison, the local process
   pool on the same input (`STRONGROOM_EXECUTOR=process --workers 2`). The runner's own
   `seconds` (its JSON report: no start-up, no unseal) is reported too, with its ratio. Note:
   the runner lets a decoder use its own threads when it has fewer workers than this
   machine's cores (runner.py, `decode_threads`), so the 1-worker run is not single-threaded.
2. **s3** — ingest throughput into an S3 vault (moto_server on 127.0.0.1, a fresh bucket and
   a fresh `strongroom init` per run) against a local vault in the same run: one 512 MiB random
   file (cached in benchmarks/work/cache/) and a folder of 200 small files (4–200 KB), each
   `strongroom ingest VAULT SRC -a x --json` as a whole command (start-up, unseal, the bucket
   check included). Ratio = S3 MB/s / local MB/s (whole command; the report's ingest-proper
   ratio too). Context on the big file: the ingest benchmark's whole-command anchor
   `age -r R -o OUT FILE && sync`, and boto3's `upload_file` of the plaintext to the same moto
   (8 MiB parts, 4 at a time, as s3blobs.py uploads): what moto itself takes. Issue 18 sets no
   goal for this; the ratio is reported, not judged.
3. **pg** — catalogue query latency, PostgreSQL vs SQLite, at 100,000 originals. Two vaults
   made by `strongroom init` (one with STRONGROOM_DATABASE_URL naming a fresh PostgreSQL
   database: server defaults, fsync on, TCP on 127.0.0.1; the other the default SQLCipher
   catalogue), each bulk-loaded with the same deterministic rows through SQLAlchemy Core inserts
   into its own engine: 100 acquisitions, 100,000 originals, a sighting of each plus a second
   sighting of every fifth one in a later acquisition (120,000), and one `probe` step_run per
   original (1 % of them `partial`) so the analysed/partial counts of `stats` have rows to read;
   PostgreSQL is ANALYZEd after the load (its autovacuum would soon), SQLite is left as
   strongroom leaves it. Then, through the vault's own code, p50/p95 over 50 runs each (keys
   drawn at random, the same for both, after 3 untimed runs): `queries.vault_stats(vault)`,
   `Vault.find_original` with a whole SHA-256 and with a 12-digit prefix (how the CLI is
   given one), an original found by a sighting's path within its acquisition (the lookup
   ingest makes) and by the path alone, and `strongroom stats VAULT --json` as a whole command
   (20 runs). Ratio = SQLite latency / PostgreSQL latency per query (> 1: PostgreSQL is
   faster). The query plans (EXPLAIN) of the lookups are recorded. Note: `stats` unseals the
   keys (scrypt) only for an encrypted SQLite catalogue, so the whole-command figure on
   PostgreSQL has no unseal in it. No goal in the issue; reported.

CPU used by other processes during each timed run is recorded (the servers started here are
counted as ours, not as noise); above 5 % of the machine the output warns that the numbers are
noisy (`--repeat N` keeps each configuration's best of N; default 2, --quick 1). Prints a
compact table per scenario and writes benchmarks/results/scaleout.json (scaleout.quick.json
with --quick) with every number, the goals and pass/fail. Scratch data lives in
benchmarks/work/scaleout/ (removed afterwards unless --keep). `--quick` (a smoke test, each
scenario well under 2 minutes): two 3–4 s clips, a 32 MiB file and 20 small files, 5,000
originals with 20 runs per query (5 of `stats`); its ratios are dominated by fixed costs.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _machine import (
    PASSPHRASE,
    WORK_ROOT,
    Content,
    CpuWatch,
    MiB,
    Timed,
    bench_parser,
    best,
    cached_random_file,
    goal,
    machine_busy,
    machine_facts,
    noise_note,
    parse_bench_args,
    passphrase_env,
    print_goals,
    result_header,
    run_command,
    settle,
    size_label,
    source_state,
    strongroom_cli,
    wait_quiet,
    warm,
    write_results,
)

WORK = WORK_ROOT / "scaleout"
SCENARIOS = ("dask", "s3", "pg")
SEED = 20240611
STEPS = ["probe", "keyframes", "scenes", "overlay_ocr", "perceptual_hash"]
DASK_GOAL = 1.7
#: what moto accepts (it checks no signature unless told to)
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "strongroom-bench", "AWS_SECRET_ACCESS_KEY": "not-a-secret",
                  "AWS_DEFAULT_REGION": "us-east-1"}
S3_PART = 8 * MiB  # s3blobs.PART_SIZE
S3_CONCURRENCY = 4  # s3blobs.UPLOAD_CONCURRENCY
AGE_O_SYNC = 'age -r "$1" -o "$2" "$3" && sync'  # the ingest benchmark's whole-command anchor


@dataclass(frozen=True)
class Plan:
    clip_durations: tuple[int, ...]
    warm_durations: tuple[int, ...]
    big: int
    small_count: int
    small_range: tuple[int, int]
    originals: int
    per_acquisition: int
    query_runs: int
    stats_runs: int


FULL = Plan(clip_durations=(40, 25, 35, 20, 30, 40, 25, 35), warm_durations=(2, 2),
            big=512 * MiB, small_count=200, small_range=(4_000, 200_000), originals=100_000,
            per_acquisition=1000, query_runs=50, stats_runs=20)
QUICK = Plan(clip_durations=(4, 3), warm_durations=(2, 2), big=32 * MiB, small_count=20,
             small_range=(4_000, 200_000), originals=5_000, per_acquisition=500,
             query_runs=20, stats_runs=5)


# -- processes we start --------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes] | None, log: Path,
              timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on port {port}: "
                                   f"{log.read_text(errors='replace')[-2000:]}") from None
            time.sleep(0.1)


@dataclass
class Services:
    """The server processes this run started (each in its own session, so its children go
    with it), their logs, and how to stop them."""

    logs: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    stoppers: list[Callable[[], None]] = field(default_factory=list)
    extra_roots: dict[str, Callable[[], int | None]] = field(default_factory=dict)

    def spawn(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None
              ) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{name}.log").open("wb") as out:
            proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        self.procs[name] = proc
        return proc

    def roots(self) -> list[int]:
        pids = [p.pid for p in self.procs.values() if p.poll() is None]
        for get in self.extra_roots.values():
            pid = get()
            if pid is not None:
                pids.append(pid)
        return pids

    def stop(self, names: Sequence[str] | None = None) -> None:
        """Terminate what we spawned (all, or `names`), then kill its session if it lingers."""
        chosen = {n: p for n, p in self.procs.items() if names is None or n in names}
        for p in chosen.values():
            if p.poll() is None:
                p.terminate()
        for p in chosen.values():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        for n in chosen:
            del self.procs[n]
        if names is None:
            for stop in reversed(self.stoppers):
                with contextlib.suppress(Exception):
                    stop()
            self.stoppers.clear()
            self.extra_roots.clear()


def _proc_table() -> dict[int, tuple[int, float]]:
    """pid → (parent pid, CPU seconds of it and of its children it waited for)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, tuple[int, float]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        # after the name: state ppid ... utime(12) stime(13) cutime(14) cstime(15)
        out[int(name)] = (int(fields[1]), sum(int(x) for x in fields[11:15]) / tick)
    return out


def tree_cpu(roots: Sequence[int]) -> float:
    """CPU seconds used so far by the process trees under `roots` (exited children that were
    waited for included)."""
    table = _proc_table()
    family = {r for r in roots if r in table}
    for pid in sorted(table):  # a child's pid is (almost always) larger than its parent's
        if table[pid][0] in family:
            family.add(pid)
    return sum(table[p][1] for p in family)


class ServiceWatch:
    """A block's CpuWatch, with the CPU our own servers used meanwhile not counted as noise."""

    def __init__(self, services: Services | None) -> None:
        self.services = services

    def __enter__(self) -> ServiceWatch:
        self.s0 = tree_cpu(self.services.roots()) if self.services else 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.used = (tree_cpu(self.services.roots()) if self.services else 0.0) - self.s0

    def discount(self, t: Timed) -> Timed:
        """`t` with the servers' CPU moved from `other` to `service`."""
        if not t.cpu:
            return t
        other = max(0.0, t.cpu.get("other_cpu_seconds", 0.0) - self.used)
        t.cpu["service_cpu_seconds"] = round(self.used, 2)
        t.cpu["other_cpu_seconds"] = round(other, 2)
        t.cpu["other_cpu_share"] = round(
            other / t.seconds / (os.cpu_count() or 1) if t.seconds else 0.0, 3)
        return t


def timed_command(services: Services | None, argv: Sequence[str], **kw: Any) -> Timed:
    """`run_command`, with the CPU our servers used during it counted as ours."""
    with ServiceWatch(services) as sw:
        t = run_command(argv, **kw)
    return sw.discount(t)


# -- vaults through the CLI ------------------------------------------------------------------------
def sr(*args: str, env: dict[str, str], capture: bool = False) -> str:
    res = subprocess.run([strongroom_cli(), *args], env=env, check=False,
                         stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    if res.returncode != 0:
        raise RuntimeError(f"strongroom {' '.join(args[:2])} failed ({res.returncode}): "
                           f"{res.stderr.decode(errors='replace')[-2000:]}")
    return res.stdout.decode() if capture else ""


def init_vault(path: Path, env: dict[str, str]) -> str:
    """`strongroom init` (untimed); returns the vault's age recipient."""
    shutil.rmtree(path, ignore_errors=True)
    sr("init", str(path), "--json", env=env)
    return str(json.loads((path / "vault.json").read_text())["public"]["age_recipient"])


def ingest_cli(path: Path, source: Path, desc: str, env: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(sr("ingest", str(path), str(source), "-a", desc, "--json",
                                        env=env, capture=True))
    if out["errors"]:
        raise RuntimeError(f"ingest of {source} failed: {out['errors']}")
    return out


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def pct(values_ms: Sequence[float]) -> dict[str, float]:
    xs = sorted(values_ms)

    def q(p: float) -> float:
        return xs[min(len(xs) - 1, round(p * (len(xs) - 1)))]

    return {"p50_ms": round(statistics.median(xs), 3), "p95_ms": round(q(0.95), 3),
            "min_ms": round(xs[0], 3), "max_ms": round(xs[-1], 3), "runs": len(xs)}


def fmt_s(x: float) -> str:
    return f"{x:.2f} s" if x < 10 else f"{x:.1f} s"


def fmt_ms(x: float) -> str:
    return f"{x:.2f} ms" if x < 100 else f"{x:.0f} ms"


@dataclass
class Ctx:
    args: argparse.Namespace
    plan: Plan
    say: Callable[[str], None]
    goals: list[dict[str, Any]]
    reported: list[dict[str, Any]]
    generated: dict[str, float]


def report_figure(ctx: Ctx, name: str, value: float, note: str,
                  runs: dict[str, Timed] | None = None) -> None:
    """A figure the issue sets no goal for: recorded and printed, not judged."""
    ctx.reported.append({"figure": name, "value": round(value, 4), "unit": "×", "goal": None,
                         "note": note, "noise": noise_note(runs)})


# -- 1. dask --------------------------------------------------------------------------------------
FORMATS = ("DD-MM-YYYY", "YYYY/MM/DD", "DD.MM.YYYY")
SOURCES = ("testsrc2", "mandelbrot", "life")
LABELS = ("КАМ 03 ПФРСИ", "КАМ 07 ОТБ-1 САРАТОВ", "КАМ 11 ИК-10", "КАМ 05 ШИЗО",
          "КПП-2 ВЪЕЗД", "ДЕЖУРНАЯ ЧАСТЬ", "КАМ 14 ПРОГУЛКА", "КАМ 02 КОРИДОР")


def make_specs(durations: Sequence[int], prefix: str, seed: int) -> list[Any]:
    from strongroom.testmedia import ClipSpec

    rng = random.Random(seed)
    base = datetime(2018, 1, 1)
    out = []
    for i, duration in enumerate(durations):
        source = SOURCES[i % len(SOURCES)]
        out.append(ClipSpec(
            name=f"{prefix}{i:02d}_{source}.mp4", duration=duration,
            camera_label=LABELS[i % len(LABELS)],
            clock_start=base + timedelta(seconds=rng.randrange(7 * 365 * 86400)),
            clock_format=FORMATS[(i + i // 3) % len(FORMATS)],  # type: ignore[arg-type]
            source=source, seed=100 + i, codec="h264"))  # type: ignore[arg-type]
    return out


def _spec_json(spec: Any) -> dict[str, Any]:
    d = asdict(spec)
    d["clock_start"] = spec.clock_start.isoformat(sep=" ") if spec.clock_start else None
    d["size"] = list(spec.size)
    return d


def generate_clips(specs: Sequence[Any], root: Path, reuse: bool) -> float:
    from strongroom.testmedia import generate_clip

    manifest = root.with_name(root.name + ".manifest.json")
    want = [_spec_json(s) for s in specs]
    if reuse and manifest.exists() and json.loads(manifest.read_text()) == want:
        return 0.0
    manifest.unlink(missing_ok=True)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    started = time.perf_counter()
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        for f in [pool.submit(generate_clip, s, root)
                  for s in sorted(specs, key=lambda s: -s.duration)]:
            f.result()
    manifest.write_text(json.dumps(want, ensure_ascii=False))
    return time.perf_counter() - started


@dataclass
class Cluster:
    name: str
    address: str
    workers: int

    @property
    def executor(self) -> str:
        return "dask://" + self.address[len("tcp://"):]


def start_cluster(services: Services, name: str, workers: int) -> Cluster:
    exe = str(Path(sys.executable).with_name("dask"))
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
    sched = services.spawn(f"{name}-scheduler", [exe, "scheduler", "--host", "127.0.0.1",
                                                 "--port", str(port), "--no-dashboard"], env)
    wait_port(port, sched, services.logs / f"{name}-scheduler.log")
    for i in range(1, workers + 1):
        services.spawn(f"{name}-worker{i}", [
            exe, "worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard",
            "--host", "127.0.0.1", "--name", f"{name}-w{i}",
            "--local-directory", str(WORK / "dask" / f"{name}-w{i}")], env)
    return Cluster(name, address, workers)


def wait_workers(cluster: Cluster, timeout: float = 120) -> dict[str, Any]:
    import distributed

    client_class: Any = distributed.Client  # untyped
    client = client_class(cluster.address, timeout=30, set_as_default=False)
    try:
        client.wait_for_workers(cluster.workers, timeout=timeout)
        info = client.scheduler_info()
        return {"workers": len(info.get("workers", {})),
                "threads": sum(int(w.get("nthreads", 1)) for w in info["workers"].values())}
    finally:
        client.close()


def process_run(services: Services, template: Path, executor: str, workers: int | None,
                n_tasks: int) -> Timed:
    """`strongroom process` on a fresh copy of `template`, as a whole command."""
    vault = WORK / "vault-run"
    shutil.rmtree(vault, ignore_errors=True)
    shutil.copytree(template, vault)
    plain = WORK / "plain"
    plain.mkdir(parents=True, exist_ok=True)
    settle()
    env = passphrase_env(STRONGROOM_EXECUTOR=executor, STRONGROOM_WORK_DIR=str(plain))
    cmd = [strongroom_cli(), "process", str(vault), "--steps", ",".join(STEPS), "--json"]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    out_path, err_path = WORK / "process.out.json", WORK / "process.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t = timed_command(services, cmd, env=env, stdout=out, stderr=err, check=False)
    if t.extra["exit_code"] != 0:
        raise RuntimeError(f"strongroom process ({executor}) failed: "
                           f"{err_path.read_text(errors='replace')[-2000:]}"
                           f"{out_path.read_text(errors='replace')[-2000:]}")
    rep = json.loads(out_path.read_text())
    if rep["errors"] or rep["tasks"] != n_tasks or rep["worker_deaths"]:
        raise RuntimeError(f"strongroom process ({executor}) did other work: {rep}")
    shutil.rmtree(vault)
    t.extra |= {"report_seconds": rep["seconds"], "ran": rep["ran"],
                "derivatives": rep["derivatives"], "tasks": rep["tasks"],
                "read_again_for_date_order": rep["read_again_for_date_order"]}
    return t


def scenario_dask(ctx: Ctx) -> dict[str, Any]:
    plan, say, args = ctx.plan, ctx.say, ctx.args
    specs = make_specs(plan.clip_durations, "c", SEED)
    warm_specs = make_specs(plan.warm_durations, "w", SEED + 1)
    clips = WORK / ("clips-quick" if args.quick else "clips")
    warm_clips = WORK / "clips-warm"
    print(f"generating {len(specs)} clips ...", flush=True)
    ctx.generated["clips"] = generate_clips(specs, clips, args.keep)
    ctx.generated["warm_clips"] = generate_clips(warm_specs, warm_clips, args.keep)
    env = passphrase_env()
    template, warm_vault = WORK / "vault-template", WORK / "vault-warm"
    init_vault(template, env)
    ingested = ingest_cli(template, clips, "scaleout benchmark clips", env)
    init_vault(warm_vault, env)
    ingest_cli(warm_vault, warm_clips, "scaleout warm-up clips", env)
    files = files_under(clips)
    nbytes = sum(p.stat().st_size for p in files)
    services = Services(WORK / "logs")
    try:
        clusters = [start_cluster(services, "one", 1), start_cluster(services, "two", 2)]
        started = {c.name: wait_workers(c) for c in clusters}
        for c in clusters:  # a long-running cluster's workers have imported everything
            process_run(services, warm_vault, c.executor, None, len(warm_specs))
        idle_busy = round(machine_busy(2.0), 3)
        result_quiet = round(wait_quiet(args.wait_quiet), 3)
        configs = {"dask_1_worker": (clusters[0].executor, None),
                   "dask_2_workers": (clusters[1].executor, None),
                   "process_pool_2_workers": ("process", 2)}
        tries: dict[str, list[Timed]] = {k: [] for k in configs}
        for _ in range(args.repeat):
            for key, (executor, workers) in configs.items():
                warm(files_under(template / "blobs"))
                tries[key].append(process_run(services, template, executor, workers,
                                              len(specs)))
    finally:
        services.stop()
        for p in (warm_vault, WORK / "vault-run", WORK / "plain", WORK / "dask"):
            shutil.rmtree(p, ignore_errors=True)
    runs = {k: best(v) for k, v in tries.items()}
    same = len({json.dumps([t.extra["ran"], t.extra["derivatives"]], sort_keys=True)
                for t in runs.values()}) == 1
    if not same:
        raise RuntimeError("the configurations did different work: "
                           + "; ".join(f"{k}: {t.extra['ran']}" for k, t in runs.items()))
    one, two, pool = runs["dask_1_worker"], runs["dask_2_workers"], runs["process_pool_2_workers"]
    ratio = one.seconds / two.seconds
    ratio_report = one.extra["report_seconds"] / two.extra["report_seconds"]
    video_s = sum(plan.clip_durations)
    say(f"1. dask: {len(specs)} H.264 768×576 clips, {video_s} s of video, {nbytes / 1e6:.0f}"
        f" MB; `strongroom process --steps {','.join(STEPS)}` (whole command, fresh vault"
        f" copy each{f', best of {args.repeat}' if args.repeat > 1 else ''})")
    say(f"   {'configuration':<28}{'whole command':>14}{'runner seconds':>16}"
        f"{'start-up+unseal':>17}{'video s/s':>11}")
    for key, t in runs.items():
        rs = float(t.extra["report_seconds"])
        say(f"   {key:<28}{fmt_s(t.seconds):>14}{fmt_s(rs):>16}{fmt_s(t.seconds - rs):>17}"
            f"{video_s / t.seconds:>11.1f}")
    say(f"   ratio 1 worker / 2 workers: {ratio:.2f}× whole command (goal ≥ {DASK_GOAL}×),"
        f" {ratio_report:.2f}× runner seconds | process pool (2) vs dask (2): "
        f"{two.seconds / pool.seconds:.2f}× (> 1: the pool is faster)")
    say(f"   noise: {noise_note(runs)}")
    goal(ctx.goals, f"dask: 2 workers ≥ {DASK_GOAL}× the throughput of 1 worker (whole "
         "`strongroom process`)", ratio, DASK_GOAL, "min", "×",
         {k: runs[k] for k in ("dask_1_worker", "dask_2_workers")})
    return {
        "clips": [_spec_json(s) for s in specs], "video_seconds": video_s, "bytes": nbytes,
        "steps": STEPS, "ingested": {k: ingested[k] for k in ("new_originals", "bytes_read")
                                     if k in ingested},
        "clusters": started, "machine_busy_with_idle_clusters": idle_busy,
        "busy_before_timing": result_quiet,
        "runs": {k: t.to_json() for k, t in runs.items()},
        "ratio_1_vs_2_workers": round(ratio, 3),
        "ratio_1_vs_2_workers_runner_seconds": round(ratio_report, 3),
        "ratio_dask2_vs_process_pool2": round(two.seconds / pool.seconds, 3),
        "same_work_in_every_configuration": same,
    }


# -- 2. s3 ----------------------------------------------------------------------------------------
@dataclass
class Moto:
    endpoint: str

    def client(self) -> Any:
        import boto3  # type: ignore[import-untyped]

        return boto3.client("s3", endpoint_url=self.endpoint,
                            aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                            region_name="us-east-1")

    def new_bucket(self) -> str:
        name = "sr-bench-" + uuid.uuid4().hex[:16]
        self.client().create_bucket(Bucket=name)
        return name

    def objects(self, bucket: str) -> list[dict[str, Any]]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return [o for page in pages for o in page.get("Contents", [])]

    def drop_bucket(self, bucket: str) -> None:
        """Frees moto's memory (it keeps every object)."""
        c = self.client()
        keys = [{"Key": o["Key"]} for o in self.objects(bucket)]
        for i in range(0, len(keys), 1000):
            c.delete_objects(Bucket=bucket, Delete={"Objects": keys[i:i + 1000]})
        c.delete_bucket(Bucket=bucket)


def start_moto(services: Services) -> Moto:
    exe = Path(sys.executable).with_name("moto_server")
    found = str(exe) if exe.exists() else shutil.which("moto_server")
    if not found:
        raise SystemExit("moto_server is not installed (moto[server] in the venv)")
    port = free_port()
    proc = services.spawn("moto", [found, "-H", "127.0.0.1", "-p", str(port)],
                          {**os.environ, **S3_CREDENTIALS})
    wait_port(port, proc, services.logs / "moto.log")
    return Moto(f"http://127.0.0.1:{port}")


def ingest_run(services: Services, moto: Moto | None, source: Path, nbytes: int,
               nfiles: int) -> Timed:
    """A fresh vault (local, or in a fresh bucket), then `strongroom ingest` timed whole."""
    vault = WORK / "vault-ingest"
    extra: dict[str, str] = {}
    bucket = None
    if moto is not None:
        bucket = moto.new_bucket()
        extra = {**S3_CREDENTIALS, "STRONGROOM_BLOB_STORE": f"s3://{bucket}/blobs",
                 "STRONGROOM_S3_ENDPOINT_URL": moto.endpoint}
    env = passphrase_env(**extra)
    init_vault(vault, env)
    warm(files_under(source) if source.is_dir() else [source])
    settle()
    out_path, err_path = WORK / "ingest.out.json", WORK / "ingest.err"
    cmd = [strongroom_cli(), "ingest", str(vault), str(source), "-a", f"x {source.name}",
           "--json"]
    try:
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            t = timed_command(services, cmd, nbytes=nbytes, env=env, stdout=out, stderr=err,
                              check=False)
        if t.extra["exit_code"] != 0:
            raise RuntimeError(f"strongroom ingest failed: "
                               f"{err_path.read_text(errors='replace')[-2000:]}")
        rep = json.loads(out_path.read_text())
        if rep["errors"] or rep["new_originals"] != nfiles or rep["bytes_read"] != nbytes:
            raise RuntimeError(f"strongroom ingest incomplete: {rep}")
        if moto is not None and bucket is not None:
            objs = moto.objects(bucket)
            blobs = [o for o in objs if o["Key"].startswith("blobs/")]
            if len(blobs) != nfiles:
                raise RuntimeError(f"{len(blobs)} objects in the bucket, {nfiles} expected")
            blob_bytes = sum(int(o["Size"]) for o in blobs)
        else:
            blob_bytes = sum(p.stat().st_size for p in files_under(vault / "blobs"))
    finally:
        if moto is not None and bucket is not None:
            with contextlib.suppress(Exception):
                moto.drop_bucket(bucket)
        shutil.rmtree(vault, ignore_errors=True)
        settle()
    s = float(rep["seconds"])
    t.extra |= {"report_seconds": round(s, 3), "report_mb_per_s": round(nbytes / s / 1e6, 1),
                "startup_and_unlock_seconds": round(t.seconds - s, 3),
                "blob_bytes": blob_bytes, "new_originals": rep["new_originals"]}
    return t


def age_anchor(recipient: str, file: Path) -> Timed:
    out = WORK / "out-age-o.age"
    out.unlink(missing_ok=True)
    warm([file])
    t = run_command(["bash", "-c", AGE_O_SYNC, "bash", recipient, str(out), str(file)],
                    nbytes=file.stat().st_size)
    out.unlink()
    settle()
    return t


def boto3_anchor(services: Services, moto: Moto, file: Path) -> Timed:
    """The plaintext uploaded by boto3 to the same moto, as s3blobs.py uploads (part size,
    concurrency): how fast moto itself takes bytes on this machine."""
    from boto3.s3.transfer import TransferConfig  # type: ignore[import-untyped]

    client = moto.client()
    bucket = moto.new_bucket()
    cfg = TransferConfig(multipart_threshold=2 * S3_PART, multipart_chunksize=S3_PART,
                         max_concurrency=S3_CONCURRENCY)
    warm([file])
    try:
        with ServiceWatch(services) as sw, CpuWatch() as cpu:
            client.upload_file(str(file), bucket, "plain.bin", Config=cfg)
        return sw.discount(cpu.timed(file.stat().st_size))
    finally:
        moto.drop_bucket(bucket)


def scenario_s3(ctx: Ctx) -> dict[str, Any]:
    plan, say, args = ctx.plan, ctx.say, ctx.args
    print(f"the {size_label(plan.big)} input (cached in benchmarks/work/cache) ...", flush=True)
    big, ctx.generated["big_file"] = cached_random_file(plan.big, SEED)
    folder = WORK / "small"
    rng = random.Random(SEED)
    sizes = [rng.randint(*plan.small_range) for _ in range(plan.small_count)]
    if not (args.keep and folder.is_dir() and len(files_under(folder)) == len(sizes)):
        shutil.rmtree(folder, ignore_errors=True)
        content = Content(SEED)
        t0 = time.perf_counter()
        for k, size in enumerate(sizes):
            content.write(folder / f"d{k % 8}" / f"small-{k:04d}.bin", size)
        ctx.generated["small_files"] = time.perf_counter() - t0
    small_files = files_under(folder)
    small_bytes = sum(p.stat().st_size for p in small_files)
    inputs = {"big_file": (big, plan.big, 1), "small_files": (folder, small_bytes,
                                                              len(small_files))}
    services = Services(WORK / "logs")
    try:
        moto = start_moto(services)
        recipient = init_vault(WORK / "vault-recipient", passphrase_env())
        shutil.rmtree(WORK / "vault-recipient", ignore_errors=True)
        busy = round(wait_quiet(args.wait_quiet), 3)
        tries: dict[str, list[Timed]] = {}
        for _ in range(args.repeat):
            for name, (source, nbytes, n) in inputs.items():
                for target in ("local", "s3"):
                    tries.setdefault(f"{name}/{target}", []).append(ingest_run(
                        services, moto if target == "s3" else None, source, nbytes, n))
            tries.setdefault("big_file/age_o_sync", []).append(age_anchor(recipient, big))
            tries.setdefault("big_file/boto3_upload_to_moto", []).append(
                boto3_anchor(services, moto, big))
    finally:
        services.stop()
    runs = {k: best(v) for k, v in tries.items()}
    out: dict[str, Any] = {"busy_before_timing": busy,
                           "runs": {k: t.to_json() for k, t in runs.items()}, "inputs": {
                               k: {"files": n, "bytes": b} for k, (_, b, n) in inputs.items()}}
    say(f"\n2. s3: `strongroom ingest VAULT SRC -a x --json` (whole command, fresh vault each"
        f"{f', best of {args.repeat}' if args.repeat > 1 else ''}), S3 = moto_server on"
        " 127.0.0.1")
    say(f"   {'input':<34}{'local':>16}{'S3':>16}{'ratio':>7}"
        f"   {'ingest proper: local':>21}{'S3':>7}{'ratio':>7}")
    for name, (_, nbytes, n) in inputs.items():
        loc, s3 = runs[f"{name}/local"], runs[f"{name}/s3"]
        ratio = s3.mb_per_s / loc.mb_per_s
        ratio_proper = loc.extra["report_seconds"] / s3.extra["report_seconds"]
        label = f"{name} ({n} file{'s' if n > 1 else ''}, {nbytes / 1e6:,.0f} MB)"
        say(f"   {label:<34}{fmt_s(loc.seconds):>7} {loc.mb_per_s:>4.0f} MB/s"
            f"{fmt_s(s3.seconds):>7} {s3.mb_per_s:>4.0f} MB/s{ratio:>6.2f}×"
            f"   {loc.extra['report_mb_per_s']:>16.0f} MB/s{s3.extra['report_mb_per_s']:>7.0f}"
            f"{ratio_proper:>6.2f}×")
        out[name] = {"ratio_s3_vs_local": round(ratio, 3),
                     "ratio_s3_vs_local_ingest_proper": round(ratio_proper, 3),
                     "local_mb_per_s": round(loc.mb_per_s, 1),
                     "s3_mb_per_s": round(s3.mb_per_s, 1)}
        report_figure(ctx, f"s3: {name} ingest throughput, S3 (moto) / local (whole command)",
                      ratio, "issue 18 sets no goal; reported",
                      {f"{name}/local": loc, f"{name}/s3": s3})
    age, boto = runs["big_file/age_o_sync"], runs["big_file/boto3_upload_to_moto"]
    s3big = runs["big_file/s3"]
    say(f"   anchors on the {size_label(plan.big)} file: `{AGE_O_SYNC}` {age.mb_per_s:.0f} MB/s"
        f" (local whole strongroom ingest = {runs['big_file/local'].mb_per_s / age.mb_per_s:.2f}×"
        f" it, S3 = {s3big.mb_per_s / age.mb_per_s:.2f}×) | boto3 upload_file of the plaintext"
        f" to moto {boto.mb_per_s:.0f} MB/s (S3 ingest = {s3big.mb_per_s / boto.mb_per_s:.2f}×"
        " it)")
    say(f"   noise: {noise_note(runs)}")
    out["anchors"] = {"age_o_sync_mb_per_s": round(age.mb_per_s, 1),
                      "boto3_upload_mb_per_s": round(boto.mb_per_s, 1),
                      "local_vs_age_o_sync": round(runs["big_file/local"].mb_per_s
                                                   / age.mb_per_s, 3),
                      "s3_vs_age_o_sync": round(s3big.mb_per_s / age.mb_per_s, 3),
                      "s3_vs_boto3_upload": round(s3big.mb_per_s / boto.mb_per_s, 3)}
    return out


# -- 3. pg ----------------------------------------------------------------------------------------
def start_postgres(services: Services) -> str:
    """Debian's PostgreSQL on 127.0.0.1 (as `postgres` when we are root), server defaults;
    returns the admin URL (trust auth)."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        raise SystemExit("PostgreSQL server binaries not installed (postgresql package)")
    bindir = Path(bins[-1]).parent
    base = WORK / "pg"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    data = base / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:
        base.chmod(0o755)
        shutil.chown(base, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                    "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"],
                   check=True, capture_output=True)
    opts = f"-h 127.0.0.1 -p {port} -k {base}"
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-w",
                    "-l", str(base / "log"), "start"], check=True, capture_output=True)

    def stop() -> None:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast",
                        "stop"], capture_output=True, check=False)
        shutil.rmtree(base, ignore_errors=True)

    def postmaster() -> int | None:
        try:
            return int((data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    services.stoppers.append(stop)
    services.extra_roots["postgres"] = postmaster
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/"


def rows_for(plan: Plan) -> dict[str, list[dict[str, Any]]]:
    """The same deterministic catalogue rows for both back-ends."""
    rng = random.Random(SEED)
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    n_acq = max(2, plan.originals // plan.per_acquisition)
    acq = [{"id": a, "description": f"USB stick #{a:04d} from the regional office",
            "source_path": f"/media/usb{a:04d}", "medium": "folder", "received_by": "bench",
            "received_at": "2024-01-01", "notes": None,
            "created_at": t0 + timedelta(hours=a), "actor": "bench",
            "nonce": hashlib.md5(f"n{a}".encode()).hexdigest()}  # noqa: S324 - test data
           for a in range(1, n_acq + 1)]
    orig, sight, steps = [], [], []
    sid = 0
    for i in range(plan.originals):
        sha = hashlib.sha256(f"{SEED}:{i}".encode()).hexdigest()
        a = i // plan.per_acquisition % n_acq + 1
        size = rng.randint(100_000, 500_000_000)
        orig.append({"sha256": sha, "size": size,
                     "md5": hashlib.md5(sha.encode()).hexdigest(),  # noqa: S324 - test data
                     "sha512": None,
                     "blob_name": hashlib.sha256(f"blob:{sha}".encode()).hexdigest(),
                     "blob_size": size + 200, "mime": "video/mp4", "first_acquisition_id": a,
                     "ingested_at": t0 + timedelta(seconds=i)})
        cam = rng.randint(1, 16)
        when = t0 + timedelta(seconds=rng.randrange(365 * 86400))
        path = f"DVR{a:03d}/ch{cam:02d}/{when:%Y-%m-%d}/ch{cam:02d}_{when:%Y%m%d_%H%M%S}_{i}.mp4"
        places = [(a, path)]
        if i % 5 == 0:  # sighted again, in a later acquisition
            places.append((a % n_acq + 1, "copy/" + path))
        for acq_id, rel in places:
            sid += 1
            sight.append({"id": sid, "acquisition_id": acq_id, "original_sha256": sha,
                          "rel_path": rel, "kind": "file", "link_target": None, "size": size,
                          "mode": 0o100644, "mtime_ns": int(when.timestamp() * 1e9),
                          "ctime_ns": int(when.timestamp() * 1e9),
                          "atime_ns": int(when.timestamp() * 1e9),
                          "seen_at": t0 + timedelta(seconds=i)})
        result: dict[str, Any] = {"duration": 60.0, "width": 768, "height": 576}
        if i % 100 == 0:
            result["partial"] = "the decode stopped at 12.0 s of 60.0 s"
        steps.append({"original_sha256": sha, "step": "probe", "version": "1", "status": "ok",
                      "result": result, "error": None, "command": None, "seconds": 0.1,
                      "finished_at": t0 + timedelta(seconds=i)})
    return {"acquisition": acq, "original": orig, "sighting": sight, "step_run": steps}


def bulk_load(vault: Any, rows: dict[str, list[dict[str, Any]]], chunk: int = 5000
              ) -> dict[str, Any]:
    from sqlalchemy import insert, text

    from strongroom.catalogue.models import Acquisition, Original, Sighting, StepRun

    tables = {"acquisition": Acquisition, "original": Original, "sighting": Sighting,
              "step_run": StepRun}
    started = time.perf_counter()
    with vault.catalogue.engine.begin() as conn:
        for name, model in tables.items():
            data = rows[name]
            for i in range(0, len(data), chunk):
                conn.execute(insert(model), data[i:i + chunk])
        if not vault.catalogue.is_sqlite:  # move the sequences past the ids given
            for table in ("acquisition", "sighting"):
                top = f"(SELECT max(id) FROM {table})"  # noqa: S608 - fixed table names
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                  + top + ")"))
    load_s = time.perf_counter() - started
    analyze_s = 0.0
    if not vault.catalogue.is_sqlite:
        t = time.perf_counter()
        with vault.catalogue.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
        analyze_s = time.perf_counter() - t
    return {"seconds": round(load_s, 2), "analyze_seconds": round(analyze_s, 2),
            "rows": {k: len(v) for k, v in rows.items()},
            "rows_per_s": round(sum(len(v) for v in rows.values()) / load_s)}


def lookups(plan: Plan, rows: dict[str, list[dict[str, Any]]]
            ) -> dict[str, Callable[[Any, int], Any]]:
    """The timed questions: name → fn(vault, run) → something comparable across back-ends."""
    from sqlalchemy import select

    from strongroom.catalogue.models import Original, Sighting
    from strongroom.catalogue.queries import vault_stats

    rng = random.Random(SEED + 7)
    n = plan.query_runs + 3
    shas = [rows["original"][rng.randrange(len(rows["original"]))]["sha256"] for _ in range(n)]
    places = [rows["sighting"][rng.randrange(len(rows["sighting"]))] for _ in range(n)]

    def stats(v: Any, _k: int) -> Any:
        d = vault_stats(v)
        d.pop("signing_key_fingerprint")
        return d

    def by_sha(v: Any, k: int) -> Any:
        return v.find_original(shas[k]).sha256

    def by_prefix(v: Any, k: int) -> Any:
        return v.find_original(shas[k][:12]).sha256

    def by_path_in_acquisition(v: Any, k: int) -> Any:
        p = places[k]
        with v.catalogue.read() as s:
            return s.scalars(select(Original).join(
                Sighting, Sighting.original_sha256 == Original.sha256).where(
                Sighting.acquisition_id == p["acquisition_id"],
                Sighting.rel_path == p["rel_path"])).one().sha256

    def by_path(v: Any, k: int) -> Any:
        with v.catalogue.read() as s:
            return s.scalars(select(Original).join(
                Sighting, Sighting.original_sha256 == Original.sha256).where(
                Sighting.rel_path == places[k]["rel_path"]).limit(1)).one().sha256

    return {"vault_stats": stats, "find_original_sha256": by_sha,
            "find_original_prefix12": by_prefix,
            "original_by_sighting_path_in_acquisition": by_path_in_acquisition,
            "original_by_sighting_path_alone": by_path}


def explain(vault: Any, rows: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    """The plans of the lookups, as each back-end would run them."""
    from sqlalchemy import func, select, text

    from strongroom.catalogue.models import Original, Sighting, StepRun

    sha = rows["original"][len(rows["original"]) // 2]["sha256"]
    p = rows["sighting"][len(rows["sighting"]) // 2]
    stmts = {
        "find_original": select(Original).where(Original.sha256.like(sha[:12] + "%")).limit(2),
        "original_by_sighting_path_in_acquisition": select(Original).join(
            Sighting, Sighting.original_sha256 == Original.sha256).where(
            Sighting.acquisition_id == p["acquisition_id"], Sighting.rel_path == p["rel_path"]),
        "original_by_sighting_path_alone": select(Original).join(
            Sighting, Sighting.original_sha256 == Original.sha256).where(
            Sighting.rel_path == p["rel_path"]).limit(1),
        "count_distinct_step_run": select(func.count(func.distinct(StepRun.original_sha256))),
    }
    prefix = "EXPLAIN QUERY PLAN " if vault.catalogue.is_sqlite else "EXPLAIN "
    out: dict[str, str] = {}
    with vault.catalogue.read() as s:
        dialect = s.get_bind().dialect
        for name, stmt in stmts.items():
            sql = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
            res = s.execute(text(prefix + sql)).all()
            out[name] = " | ".join(str(r[-1]) for r in res)
    return out


def scenario_pg(ctx: Ctx) -> dict[str, Any]:
    from strongroom.settings import Settings
    from strongroom.vault import Vault

    plan, say, args = ctx.plan, ctx.say, ctx.args
    print(f"generating {plan.originals:,} originals' rows ...", flush=True)
    t = time.perf_counter()
    rows = rows_for(plan)
    ctx.generated["pg_rows"] = time.perf_counter() - t
    questions = lookups(plan, rows)
    services = Services(WORK / "logs")
    out: dict[str, Any] = {"rows": {k: len(v) for k, v in rows.items()}}
    lat: dict[str, dict[str, dict[str, Any]]] = {}
    answers: dict[str, dict[str, list[Any]]] = {}
    whole: dict[str, Timed] = {}
    try:
        admin = start_postgres(services)
        from sqlalchemy import create_engine, text

        engine = create_engine(admin + "postgres", isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("CREATE DATABASE strongroom_bench"))
            version = str(conn.execute(text("SHOW server_version")).scalar())
        engine.dispose()
        url = admin + "strongroom_bench"
        out["postgres"] = {"version": version, "url": url, "config": "server defaults "
                           "(fsync on), --locale=C.UTF-8 as tests/conftest.py"}
        backends = {"sqlite": {}, "postgresql": {"STRONGROOM_DATABASE_URL": url}}
        busy = 0.0
        for backend, extra in backends.items():
            path = WORK / f"vault-{backend}"
            env = passphrase_env(**extra)
            init_vault(path, env)
            marker = json.loads((path / "vault.json").read_text())
            out.setdefault("vault_json_names_database", {})[backend] = "database" in marker
            settings = Settings(vault=path, database_url=extra.get("STRONGROOM_DATABASE_URL",
                                                                   ""))
            with Vault.open(settings, PASSPHRASE, actor="bench") as v:
                print(f"loading {backend} ...", flush=True)
                out.setdefault("load", {})[backend] = bulk_load(v, rows)
                out.setdefault("plans", {})[backend] = explain(v, rows)
                if backend == "sqlite":
                    busy = wait_quiet(args.wait_quiet)
                for name, fn in questions.items():
                    for k in range(3):  # untimed warm-up
                        fn(v, plan.query_runs + k)
                    ms: list[float] = []
                    got: list[Any] = []
                    with ServiceWatch(services) as sw, CpuWatch() as cpu:
                        for k in range(plan.query_runs):
                            s = time.perf_counter_ns()
                            got.append(fn(v, k))
                            ms.append((time.perf_counter_ns() - s) / 1e6)
                    noise = sw.discount(cpu.timed()).cpu
                    lat.setdefault(name, {})[backend] = pct(ms) | {
                        "other_cpu_share": noise["other_cpu_share"]}
                    answers.setdefault(name, {})[backend] = got
            cmd = [strongroom_cli(), "stats", str(path), "--json"]
            tries = []
            for _ in range(plan.stats_runs):
                tries.append(timed_command(services, cmd, env=env))
            whole[backend] = best(list(tries))
            lat.setdefault("strongroom_stats_command", {})[backend] = pct(
                [x.seconds * 1000 for x in tries]) | {
                "other_cpu_share": round(max(x.other_share() for x in tries), 3)}
        # init with STRONGROOM_DATABASE_URL: does the vault know its database afterwards?
        res = subprocess.run([strongroom_cli(), "stats", str(WORK / "vault-postgresql"),
                              "--json"], env={k: v for k, v in passphrase_env().items()
                                              if k != "STRONGROOM_DATABASE_URL"},
                             capture_output=True, text=True, check=False)
        out["stats_without_database_url"] = {
            "exit_code": res.returncode,
            "said": (res.stderr.strip().splitlines() or [""])[-1][:300]}
    finally:
        services.stop()
        for backend in ("sqlite", "postgresql"):
            shutil.rmtree(WORK / f"vault-{backend}", ignore_errors=True)
    out["busy_before_timing"] = round(busy, 3)
    mismatched = [n for n, a in answers.items() if a["sqlite"] != a["postgresql"]]
    if mismatched:
        raise RuntimeError(f"the back-ends answered differently: {mismatched}")
    out["same_answers"] = True
    say(f"\n3. pg: catalogue query latency at {plan.originals:,} originals "
        f"({len(rows['sighting']):,} sightings, {len(rows['acquisition'])} acquisitions,"
        f" {len(rows['step_run']):,} step_runs); p50 / p95 over {plan.query_runs} runs "
        f"({plan.stats_runs} for the whole command)")
    say(f"   {'query':<44}{'SQLite p50':>11}{'p95':>10}{'PG p50':>11}{'p95':>10}"
        f"{'SQLite/PG':>11}")
    ratios: dict[str, dict[str, float]] = {}
    for name, per in lat.items():
        a, b = per["sqlite"], per["postgresql"]
        r = {"p50": round(a["p50_ms"] / b["p50_ms"], 3), "p95": round(a["p95_ms"] / b["p95_ms"], 3)}
        ratios[name] = r
        say(f"   {name:<44}{fmt_ms(a['p50_ms']):>11}{fmt_ms(a['p95_ms']):>10}"
            f"{fmt_ms(b['p50_ms']):>11}{fmt_ms(b['p95_ms']):>10}{r['p50']:>10.2f}×")
        noise_runs = {f"{name} {k}": Timed(1.0, cpu={"other_cpu_share": x["other_cpu_share"]})
                      for k, x in per.items()}
        report_figure(ctx, f"pg: {name}, SQLite p50 / PostgreSQL p50", r["p50"],
                      "issue 18 sets no goal; reported (> 1: PostgreSQL faster)", noise_runs)
    load = out["load"]
    say(f"   bulk load: SQLite {load['sqlite']['seconds']:.1f} s, PostgreSQL "
        f"{load['postgresql']['seconds']:.1f} s (+ ANALYZE "
        f"{load['postgresql']['analyze_seconds']:.1f} s); `stats` whole command includes the"
        " unseal on SQLite only (SQLCipher key)")
    for name in ("find_original", "original_by_sighting_path_in_acquisition"):
        say(f"   plan {name}: SQLite `{out['plans']['sqlite'][name][:90]}` | PG "
            f"`{out['plans']['postgresql'][name][:120]}`")
    if not out["vault_json_names_database"]["postgresql"]:
        say("   note: vault.json of the vault made by `init` with STRONGROOM_DATABASE_URL does "
            "not name the database; `stats` without the variable: exit "
            f"{out['stats_without_database_url']['exit_code']}: "
            f"{out['stats_without_database_url']['said'][:160]}")
    say(f"   noise: {noise_note(whole)}")
    out |= {"latency": lat, "ratios_sqlite_vs_postgresql": ratios,
            "stats_command_best": {k: t.to_json() for k, t in whole.items()}}
    return out


SCENARIO_FUNCS: dict[str, Callable[[Ctx], dict[str, Any]]] = {
    "dask": scenario_dask, "s3": scenario_s3, "pg": scenario_pg}


@contextlib.contextmanager
def _cleanup(keep: bool) -> Iterator[None]:
    try:
        yield
    finally:
        for name in ("vault-template", "vault-warm", "vault-run", "vault-ingest",
                     "vault-recipient", "vault-sqlite", "vault-postgresql", "plain", "dask",
                     "pg", "process.out.json", "process.err", "ingest.out.json", "ingest.err",
                     "out-age-o.age"):
            p = WORK / name
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
        if not keep:
            for name in ("clips", "clips-quick", "clips-warm", "small", "logs"):
                shutil.rmtree(WORK / name, ignore_errors=True)
                (WORK / f"{name}.manifest.json").unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                WORK.rmdir()


def main(argv: Sequence[str] | None = None) -> int:
    ap = bench_parser(__doc__, repeat=2, quick_repeat=1, scenarios=SCENARIOS)
    args = parse_bench_args(ap, argv)
    for tool in ("ffmpeg", "ffprobe", "age", "bash"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (make setup)")
    plan = QUICK if args.quick else FULL
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    log: list[str] = []

    def say(text: str) -> None:
        log.append(text)
        print(text, flush=True)

    pg_bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    result = result_header("scaleout", args, machine_facts(
        tools=[["age", "--version"], ["ffmpeg", "-version"], *([[pg_bins[-1], "--version"]]
                                                                if pg_bins else [])],
        packages=["strongroom", "distributed", "dask", "moto", "s3fs", "boto3", "psycopg",
                  "sqlalchemy", "sqlcipher3"]))
    goals: list[dict[str, Any]] = []
    reported: list[dict[str, Any]] = []
    generated: dict[str, float] = {}
    scenarios: dict[str, Any] = {}
    ctx = Ctx(args, plan, say, goals, reported, generated)
    with _cleanup(args.keep):
        for name in args.scenarios:
            t = time.perf_counter()
            scenarios[name] = SCENARIO_FUNCS[name](ctx)
            scenarios[name]["scenario_seconds"] = round(time.perf_counter() - t, 1)
    print_goals(goals)
    for r in reported:
        print(f"  INFO  {r['figure']}: {r['value']:g}{r['unit']} (no goal) [{r['noise']}]")
    result |= {
        "method": {
            "dask": "strongroom process VAULT --steps " + ",".join(STEPS) + " --json on a "
                    "fresh copy of one template vault, spawned whole (start-up + unseal), "
                    "STRONGROOM_EXECUTOR=dask://… of a cluster of 1 or of 2 `dask worker "
                    "--nthreads 1 --nworkers 1` (warmed by an untimed run); comparison: "
                    "STRONGROOM_EXECUTOR=process --workers 2",
            "s3": "strongroom ingest VAULT SRC -a x --json spawned whole into a fresh vault "
                  "(local, or a fresh moto bucket); page cache warm; fs synced between runs",
            "pg": "rows bulk-loaded via SQLAlchemy Core into each vault's catalogue; timed "
                  "through vault_stats / Vault.find_original / Catalogue.read() sessions, "
                  "perf_counter_ns per call after 3 untimed calls; `strongroom stats` spawned",
            "noise": "CPU of processes other than ours and the servers we started "
                     "(other_cpu_share); the servers' CPU is service_cpu_seconds",
            "mb": "1 MB = 10^6 bytes",
        },
        "plan": asdict(plan), "seed": SEED,
        "generate_seconds": {k: round(v, 1) for k, v in generated.items()},
        "log": log, "scenarios": scenarios, "goals": goals, "reported": reported,
        "all_goals_pass": all(g["pass"] for g in goals),
        # others may edit src/ while this runs: the code as it was when the run ended, too
        "source_at_end": source_state(),
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    write_results("scaleout", args.quick, result, args.scenarios if args.partial else ())
    return 0


if __name__ == "__main__":
    sys.exit(main())
