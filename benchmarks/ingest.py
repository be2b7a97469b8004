"""Ingest throughput and memory: `strongroom ingest` against anchor tools on the same bytes.

What it measures, in one run, on data generated here (deterministic seed, distinct random
content per file):

1. **1 GiB file** (a folder holding only it): `strongroom ingest` (the CLI, as a subprocess,
   into a fresh vault) vs (a) `age -r KEY < f > out`, (b) Python hashlib SHA-256 alone, and
   (c) the shell pipeline a careful admin would script,
   `tee >(sha256sum > f.sha256) >(md5sum > f.md5) < f | age -r KEY > f.age`.
2. **Whole folder** (≥ 2 GB: the 1 GiB file plus ~100 files of 1–16 MiB and ~1500 files of
   4–200 KB in mixed sub-folders): strongroom vs (a) one `age` process per file, one after
   another, (b) hashlib per file, (c) the pipeline per file (waiting for its hashers each time).
3. **4 GiB sparse file** (`truncate`): strongroom's peak RSS (and throughput) on a huge file.

Fairness: all anchors use the vault's own age recipient; before every timed run the inputs are
read once (page cache warm, so every run reads from RAM), and between runs outputs are deleted
and the filesystem synced (untimed) so no run pays for another's write-back. strongroom makes
its blobs durable (fsync/syncfs) inside its timing; the anchors do not, so the `sync` right
after each anchor run is timed and reported separately (not counted in their MB/s).

strongroom's throughput and the ratios use the `seconds` of its `--json` report (walk + hash +
encrypt + commit; it excludes Python start-up and the ~2 s scrypt key unlock, a fixed cost);
the wall-clock time around the subprocess is reported next to it, and so is the ratio against
age plus the `sync` of its output. Peak RSS: the strongroom Python process (VmHWM, polled; split
into start-up + scrypt key unlock and the ingest proper) and, separately, the largest of its
`age` children. CPU used by other processes during each run is recorded; above 5 % of the
machine the output warns that the numbers are noisy (`--repeat N` keeps each tool's best of N).

Prints a compact table and writes benchmarks/results/ingest.json (ingest.quick.json with
--quick) holding every number, the goals and pass/fail per goal. STRONGROOM_* settings in the
environment (e.g. STRONGROOM_INGEST_WORKERS) reach the strongroom runs unchanged.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _machine import (
    Content,
    CpuWatch,
    machine_facts,
    mbps,
    noise_warning,
    settle,
    wait_quiet,
    warm,
    write_results,
)

BENCH_DIR = Path(__file__).resolve().parent
WORK = BENCH_DIR / "work" / "ingest"
MiB, GiB = 1 << 20, 1 << 30
PASSPHRASE = "strongroom benchmark passphrase"  # noqa: S105 - throwaway vaults
RSS_LIMIT_MB = 200.0
POLL_S = 0.05  # RSS polling interval; one /proc scan costs ~1 ms, i.e. ~2 % of a core
SEED = 20240611

# (a) one age process per file, one after another.
AGE_SCRIPT = r"""
set -euo pipefail
R=$1 OUT=$2 LIST=$3
i=0
while IFS= read -r -d '' f; do
  age -r "$R" < "$f" > "$OUT/$i.age"
  i=$((i + 1))
done < "$LIST"
"""

# (c) per file: tee >(sha256sum > o.sha256) >(md5sum > o.md5) < f | age -r KEY > o.age
# The two process substitutions are opened with `exec` only to learn their PIDs, so the script
# can wait for both hashers to finish before the next file (and before the clock stops); each
# child closes the other's pipe so that EOF arrives as soon as tee is done.
PIPELINE = 'tee >(sha256sum > "$o.sha256") >(md5sum > "$o.md5") < "$f" | age -r "$R" > "$o.age"'
PIPELINE_SCRIPT = r"""
set -euo pipefail
R=$1 OUT=$2 LIST=$3
i=0
while IFS= read -r -d '' f; do
  o="$OUT/$i"
  exec {s}> >(sha256sum > "$o.sha256"); ps=$!
  exec {m}> >(exec {s}>&-; md5sum > "$o.md5"); pm=$!
  tee "/dev/fd/$s" "/dev/fd/$m" < "$f" | age -r "$R" {s}>&- {m}>&- > "$o.age"
  exec {s}>&- {m}>&-
  wait "$ps" "$pm"
  i=$((i + 1))
done < "$LIST"
"""


# -- data set -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    big: int
    mid_count: int
    mid_range: tuple[int, int]
    small_count: int
    small_range: tuple[int, int]
    folder_min_total: int
    sparse: int
    dirs: int


FULL = Plan(big=GiB, mid_count=100, mid_range=(1 * MiB, 16 * MiB), small_count=1500,
            small_range=(4_000, 200_000), folder_min_total=2_000_000_000, sparse=4 * GiB,
            dirs=16)
QUICK = Plan(big=64 * MiB, mid_count=8, mid_range=(1 * MiB, 12 * MiB), small_count=60,
             small_range=(4_000, 200_000), folder_min_total=0, sparse=256 * MiB, dirs=4)


@dataclass
class DataSet:
    big: Path  # folder holding only the big file
    folder: Path  # the whole mixed folder (holds a hard link to the big file)
    sparse: Path  # folder holding only the sparse file
    big_files: list[Path]
    folder_files: list[Path]
    sparse_files: list[Path]

    @staticmethod
    def total(files: Sequence[Path]) -> int:
        return sum(p.stat().st_size for p in files)


def make_dataset(plan: Plan, root: Path, seed: int) -> DataSet:
    rng = random.Random(seed)
    content = Content(seed)
    big_dir, folder, sparse_dir = root / "big", root / "folder", root / "sparse"
    for d in (big_dir, folder, sparse_dir):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    big = big_dir / "evidence-1gib.bin"
    content.write(big, plan.big)
    # Mixed sub-folders, the way a seized drive looks: small and mid files interleaved, the
    # big one somewhere in the middle.
    sizes: list[tuple[str, int]] = [
        ("mid", rng.randint(*plan.mid_range)) for _ in range(plan.mid_count)]
    sizes += [("small", rng.randint(*plan.small_range)) for _ in range(plan.small_count)]
    while plan.big + sum(s for _, s in sizes) < plan.folder_min_total:
        sizes.append(("mid", rng.randint(*plan.mid_range)))
    rng.shuffle(sizes)
    dirs = [folder / f"d{k:02d}" for k in range(plan.dirs)]
    for k, (kind, size) in enumerate(sizes):
        content.write(dirs[k % plan.dirs] / f"{kind}-{k:05d}.bin", size)
    os.link(big, dirs[plan.dirs // 2] / big.name)
    sparse = sparse_dir / "sparse.img"
    with open(sparse, "wb") as f:
        f.truncate(plan.sparse)
    return DataSet(big_dir, folder, sparse_dir, files_under(big_dir), files_under(folder),
                   files_under(sparse_dir))


def files_under(root: Path) -> list[Path]:
    """Files in strongroom's walk order (sorted names, depth first)."""
    out: list[Path] = []
    for de in sorted(os.scandir(root), key=lambda e: e.name):
        if de.is_dir(follow_symlinks=False):
            out += files_under(Path(de.path))
        elif de.is_file(follow_symlinks=False):
            out.append(Path(de.path))
    return out


def load_or_make(plan: Plan, root: Path, seed: int, reuse: bool) -> tuple[DataSet, float]:
    manifest = root / "manifest.json"
    want = {"plan": asdict(plan), "seed": seed}
    if reuse and manifest.exists() and json.loads(manifest.read_text()) == want:
        ds = DataSet(root / "big", root / "folder", root / "sparse", files_under(root / "big"),
                     files_under(root / "folder"), files_under(root / "sparse"))
        return ds, 0.0
    manifest.unlink(missing_ok=True)
    t = time.perf_counter()
    ds = make_dataset(plan, root, seed)
    os.sync()
    manifest.write_text(json.dumps(want))
    return ds, time.perf_counter() - t


# -- measuring ------------------------------------------------------------------------------
def size_label(n: int) -> str:
    return f"{n / GiB:g} GiB" if n >= GiB else f"{n / MiB:g} MiB"


def _status_kb(pid: int, key: bytes) -> int | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


class RssMonitor(threading.Thread):
    """Polls the peak RSS of one process and, separately, of each of its descendants.

    The process's peak is split in two phases: start-up + key unlock (scrypt's memory-hard
    KDF), and ingest proper, from the moment `marker` (the blob store's staging folder) exists,
    i.e. the first file is being staged. At that moment the kernel's high-water mark is reset
    (`5 > /proc/PID/clear_refs`), so the ingest-phase VmHWM is exact, not just sampled.
    """

    def __init__(self, pid: int, marker: Path) -> None:
        super().__init__(daemon=True)
        self.pid, self.marker = pid, marker
        self.peak_kb = 0  # whole process lifetime
        self.startup_peak_kb = 0  # before the first file was staged
        self.ingest_peak_kb = 0  # from the first staged file to the end
        self.ingest_sampled_kb = 0  # max VmRSS sampled in the ingest phase (cross-check)
        self.hwm_reset = False
        self.in_ingest = False
        self.children: dict[int, tuple[str, int]] = {}  # pid -> (comm, peak kB)
        self._halt = threading.Event()

    def run(self) -> None:
        while True:
            self.sample()
            if self._halt.wait(POLL_S):
                return

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def sample(self) -> None:
        hwm = _status_kb(self.pid, b"VmHWM:")
        rss = _status_kb(self.pid, b"VmRSS:")
        if hwm is not None:
            self.peak_kb = max(self.peak_kb, hwm)
            if self.in_ingest:
                self.ingest_peak_kb = max(self.ingest_peak_kb, hwm if self.hwm_reset else 0)
            else:
                self.startup_peak_kb = max(self.startup_peak_kb, hwm)
        if self.in_ingest and rss is not None:
            self.ingest_sampled_kb = max(self.ingest_sampled_kb, rss)
        if not self.in_ingest and self.marker.exists():
            self.in_ingest = True
            try:
                with open(f"/proc/{self.pid}/clear_refs", "w") as f:
                    f.write("5")
                self.hwm_reset = True
            except OSError:
                pass
        parents: dict[int, int] = {}
        comms: dict[int, str] = {}
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) <= self.pid:  # pids grow; children come later
                continue
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            close = stat.rfind(b")")
            parents[int(name)] = int(stat[close + 2:].split(None, 2)[1])
            comms[int(name)] = stat[stat.find(b"(") + 1:close].decode(errors="replace")
        family = {self.pid}
        for child in sorted(parents):  # a child's pid is larger than its parent's
            if parents[child] in family:
                family.add(child)
                kb = _status_kb(child, b"VmHWM:")
                if kb is not None:
                    old = self.children.get(child, ("", 0))[1]
                    self.children[child] = (comms[child], max(old, kb))

    def ingest_peak_mb(self) -> float:
        """Ingest-phase peak: exact VmHWM after the reset, else the sampled VmRSS."""
        if not self.in_ingest:  # finished before the first poll saw it start
            return self.peak_kb / 1024
        return (self.ingest_peak_kb if self.hwm_reset else self.ingest_sampled_kb) / 1024

    def child_peak_mb(self, comm: str) -> float:
        return max((kb for c, kb in self.children.values() if c == comm), default=0) / 1024

    def child_count(self, comm: str) -> int:
        return sum(1 for c, _ in self.children.values() if c == comm)


@dataclass
class Timed:
    """One measured run."""

    seconds: float
    mb_per_s: float
    wall_seconds: float | None = None
    sync_after_seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def run_hashlib(files: Sequence[Path], nbytes: int, algorithm: str = "sha256") -> Timed:
    buf = bytearray(MiB)
    view = memoryview(buf)
    with CpuWatch() as cpu:
        for p in files:
            h = hashlib.new(algorithm)
            with open(p, "rb", buffering=0) as f:
                while n := f.readinto(buf):
                    h.update(view[:n])
    return Timed(cpu.seconds, mbps(nbytes, cpu.seconds), extra=cpu.as_dict())


def run_script(script: str, recipient: str, files: Sequence[Path], nbytes: int, out: Path,
               expect: Sequence[str]) -> Timed:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    listing = out.parent / f"{out.name}.list"
    listing.write_bytes(b"".join(bytes(p) + b"\0" for p in files))
    with CpuWatch() as cpu:
        subprocess.run(["bash", "-c", script, "bash", recipient, str(out), str(listing)],
                       check=True)
    s = cpu.seconds
    t = time.perf_counter()
    os.sync()
    synced = time.perf_counter() - t
    for suffix in expect:  # every file really went through every stage
        made = [out / f"{i}.{suffix}" for i in range(len(files))]
        if not all(p.exists() for p in made):
            raise RuntimeError(f"{out}: missing .{suffix} outputs")
        if suffix != "age" and not all(p.stat().st_size > 0 for p in made):
            raise RuntimeError(f"{out}: empty .{suffix} outputs")
    timed = Timed(s, mbps(nbytes, s), sync_after_seconds=round(synced, 3), extra=cpu.as_dict())
    shutil.rmtree(out)
    listing.unlink()
    settle()
    return timed


def strongroom_cli() -> str:
    here = Path(sys.executable).parent / "strongroom"
    found = str(here) if here.exists() else shutil.which("strongroom")
    if not found:
        raise SystemExit("strongroom CLI not found (run `uv sync` / `make setup` first)")
    return found


def make_template(path: Path) -> str:
    """A vault created once; every strongroom run gets a fresh copy (same keys)."""
    shutil.rmtree(path, ignore_errors=True)
    env = os.environ | {"STRONGROOM_PASSPHRASE": PASSPHRASE}
    subprocess.run([strongroom_cli(), "init", str(path), "--json"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    marker = json.loads((path / "vault.json").read_text())
    return str(marker["public"]["age_recipient"])


def run_strongroom(template: Path, source: Path, nbytes: int, nfiles: int,
                   env_extra: dict[str, str] | None = None) -> Timed:
    vault = WORK / "vault-run"
    shutil.rmtree(vault, ignore_errors=True)
    shutil.copytree(template, vault)
    settle()
    env = os.environ | {"STRONGROOM_PASSPHRASE": PASSPHRASE} | (env_extra or {})
    out_path, err_path = WORK / "strongroom.out.json", WORK / "strongroom.err"
    cmd = [strongroom_cli(), "ingest", str(vault), str(source), "-a",
           f"benchmark {source.name}", "--json"]
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        with CpuWatch() as cpu:
            proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
            monitor = RssMonitor(proc.pid, vault / "blobs" / ".tmp")
            monitor.start()
            _, status, usage = os.wait4(proc.pid, 0)
        wall = cpu.seconds
        proc.returncode = os.waitstatus_to_exitcode(status)
        monitor.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"strongroom ingest failed ({proc.returncode}): "
                           f"{err_path.read_text()[-2000:]}")
    report = json.loads(out_path.read_text())
    if report["errors"] or report["new_originals"] != nfiles or report["bytes_read"] != nbytes:
        raise RuntimeError(f"strongroom ingest incomplete: {report}")
    s = float(report["seconds"])
    blob_bytes = sum(p.stat().st_size for p in (vault / "blobs").rglob("*") if p.is_file())
    t = time.perf_counter()
    os.sync()
    synced = time.perf_counter() - t
    shutil.rmtree(vault)
    settle()
    return Timed(s, mbps(nbytes, s), wall_seconds=round(wall, 3),
                 sync_after_seconds=round(synced, 3), extra={
        "mb_per_s_wall": round(mbps(nbytes, wall), 1),
        "startup_and_unlock_seconds": round(wall - s, 3),
        "reported_mb_per_s": report["mb_per_s"],
        "new_originals": report["new_originals"],
        "blob_bytes": blob_bytes,
        "peak_rss_mb": round(monitor.ingest_peak_mb(), 1),
        "peak_rss_whole_process_mb": round(monitor.peak_kb / 1024, 1),
        "peak_rss_startup_unlock_mb": round(monitor.startup_peak_kb / 1024, 1),
        "peak_rss_ingest_sampled_mb": round(monitor.ingest_sampled_kb / 1024, 1),
        "peak_rss_ingest_exact": monitor.hwm_reset,
        "peak_rss_age_child_mb": round(monitor.child_peak_mb("age"), 1),
        "age_children_seen": monitor.child_count("age"),
        "cpu_user_seconds": round(usage.ru_utime, 2),
        "cpu_system_seconds": round(usage.ru_stime, 2),
        **cpu.as_dict(),
        "env": {k: v for k, v in env.items()
                if k.startswith("STRONGROOM_") and k != "STRONGROOM_PASSPHRASE"},
    })


# -- scenarios ------------------------------------------------------------------------------
def compare(name: str, template: Path, recipient: str, files: Sequence[Path], source: Path,
            log: list[str], repeat: int = 1) -> dict[str, Any]:
    """Every tool on the same files; with `repeat` > 1 each tool's fastest run counts."""
    nbytes = DataSet.total(files)
    tries: dict[str, list[Timed]] = {
        k: [] for k in ("hashlib_sha256", "hashlib_md5", "age", "pipeline", "strongroom")}
    warm_s = warm(files)
    for _ in range(repeat):
        tries["hashlib_sha256"].append(run_hashlib(files, nbytes))
        tries["hashlib_md5"].append(run_hashlib(files, nbytes, "md5"))
        warm(files)
        tries["age"].append(
            run_script(AGE_SCRIPT, recipient, files, nbytes, WORK / "out-age", ["age"]))
        warm(files)
        tries["pipeline"].append(run_script(PIPELINE_SCRIPT, recipient, files, nbytes,
                                            WORK / "out-pipeline", ["age", "sha256", "md5"]))
        warm(files)
        tries["strongroom"].append(run_strongroom(template, source, nbytes, len(files)))
        warm(files)
    runs = {k: min(v, key=lambda t: t.seconds) for k, v in tries.items()}
    if repeat > 1:
        for k, v in tries.items():
            runs[k].extra["all_seconds"] = [round(t.seconds, 3) for t in v]
        for key in ("peak_rss_mb", "peak_rss_whole_process_mb", "peak_rss_age_child_mb"):
            runs["strongroom"].extra[key] = max(t.extra[key] for t in tries["strongroom"])
    sr, age = runs["strongroom"], runs["age"]
    assert sr.wall_seconds is not None and age.sync_after_seconds is not None
    ratios = {f"vs_{k}": round(runs[k].seconds / sr.seconds, 3)
              for k in ("age", "pipeline", "hashlib_sha256", "hashlib_md5")}
    # MD5 cannot be split across cores: on one file nothing that records MD5 beats this.
    ratios["md5_ceiling_vs_age"] = round(age.seconds / runs["hashlib_md5"].seconds, 3)
    # age does not make its output durable; strongroom's seconds include its fsync/syncfs.
    ratios["vs_age_plus_its_sync"] = round((age.seconds + age.sync_after_seconds) / sr.seconds, 3)
    ratios_wall = {f"vs_{k}": round(runs[k].seconds / sr.wall_seconds, 3)
                   for k in ("age", "pipeline", "hashlib_sha256")}
    log.append(
        f"{name} ({len(files)} file(s), {nbytes / 1e6:,.0f} MB"
        f"{f', best of {repeat}' if repeat > 1 else ''}):\n"
        f"  strongroom {sr.mb_per_s:.0f} MB/s ({sr.seconds:.2f} s; wall {sr.wall_seconds:.2f} s"
        f" = {sr.extra['mb_per_s_wall']:.0f} MB/s) | age -r {age.mb_per_s:.0f}"
        f" | shell pipeline {runs['pipeline'].mb_per_s:.0f}"
        f" | hashlib sha256 {runs['hashlib_sha256'].mb_per_s:.0f}"
        f" | hashlib md5 {runs['hashlib_md5'].mb_per_s:.0f}"
        f" → {ratios['vs_age']:.2f}× age, {ratios['vs_pipeline']:.2f}× pipeline"
        f" (wall: {ratios_wall['vs_age']:.2f}×, {ratios_wall['vs_pipeline']:.2f}×)\n"
        f"  durability: strongroom syncs inside its time; age's output took another"
        f" {age.sync_after_seconds:.2f} s to sync → {ratios['vs_age_plus_its_sync']:.2f}×"
        f" (age + sync)\n"
        f"  ceiling: MD5 is one sequential stream, so one file cannot go faster than"
        f" {runs['hashlib_md5'].mb_per_s:.0f} MB/s = {ratios['md5_ceiling_vs_age']:.2f}× age\n"
        f"  peak RSS: strongroom {sr.extra['peak_rss_mb']:.0f} MB while ingesting"
        f" ({sr.extra['peak_rss_whole_process_mb']:.0f} MB incl. start-up + scrypt key unlock),"
        f" its age children {sr.extra['peak_rss_age_child_mb']:.0f} MB")
    log[-1] += _noise_note(runs)
    return {"files": len(files), "bytes": nbytes, "warm_read_mb_per_s": round(mbps(nbytes, warm_s)),
            "runs": {k: _rounded(asdict(v)) for k, v in runs.items()},
            "ratios": ratios, "ratios_wall": ratios_wall}


def _noise_note(runs: dict[str, Timed]) -> str:
    """A warning when other processes used a noticeable share of the CPUs during a run."""
    return noise_warning({k: float(r.extra.get("other_cpu_share", 0.0))
                          for k, r in runs.items()})


def sparse_run(template: Path, ds: DataSet, log: list[str]) -> dict[str, Any]:
    nbytes = DataSet.total(ds.sparse_files)
    sr = run_strongroom(template, ds.sparse, nbytes, 1)
    log.append(
        f"ingest {size_label(nbytes)} sparse file: strongroom {sr.mb_per_s:.0f} MB/s"
        f" ({sr.seconds:.2f} s) | peak RSS: strongroom {sr.extra['peak_rss_mb']:.0f} MB"
        f" while ingesting ({sr.extra['peak_rss_whole_process_mb']:.0f} MB incl. key unlock),"
        f" age child {sr.extra['peak_rss_age_child_mb']:.0f} MB" + _noise_note({"strongroom": sr}))
    return {"files": 1, "bytes": nbytes, "runs": {"strongroom": _rounded(asdict(sr))}}


def _rounded(d: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in d.items()}


def goals(sc: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    big = size_label(sc["big_file"]["bytes"])
    sparse = size_label(sc["sparse"]["bytes"])
    out: list[dict[str, Any]] = []

    def goal(name: str, value: float, target: float, higher_is_better: bool = True) -> None:
        ok = value >= target if higher_is_better else value <= target
        out.append({"goal": name, "value": round(value, 3),
                    "target": f"{'≥' if higher_is_better else '≤'} {target}", "pass": ok})

    goal(f"{big} file: ≥ 0.8× age -r", sc["big_file"]["ratios"]["vs_age"], 0.8)
    goal("whole folder: ≥ 1.0× age -r (file by file)", sc["folder"]["ratios"]["vs_age"], 1.0)
    goal(f"{big} file: ≥ 1.5× shell pipeline", sc["big_file"]["ratios"]["vs_pipeline"], 1.5)
    goal("whole folder: ≥ 1.5× shell pipeline", sc["folder"]["ratios"]["vs_pipeline"], 1.5)
    for key, label in (("big_file", f"{big} file"), ("folder", "whole folder"),
                       ("sparse", f"{sparse} sparse file")):
        rss = sc[key]["runs"]["strongroom"]["extra"]["peak_rss_mb"]
        goal(f"{label}: strongroom peak RSS while ingesting ≤ {RSS_LIMIT_MB:.0f} MB", rss,
             RSS_LIMIT_MB, False)
    whole = max(sc[k]["runs"]["strongroom"]["extra"]["peak_rss_whole_process_mb"]
                for k in ("big_file", "folder", "sparse"))
    goal(f"strongroom peak RSS of the whole process (incl. scrypt key unlock)"
         f" ≤ {RSS_LIMIT_MB:.0f} MB", whole, RSS_LIMIT_MB, False)
    return out


def machine() -> dict[str, Any]:
    return machine_facts(tools=[["age", "--version"], ["sha256sum", "--version"]])


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="small smoke version (seconds)")
    ap.add_argument("--repeat", type=int, default=1, metavar="N",
                    help="run each timed measurement N times and keep the fastest "
                         "(default 1; this machine's timings vary run to run)")
    ap.add_argument("--wait-quiet", type=float, default=None, metavar="SECONDS",
                    help="wait up to this long for other processes to stop using the CPUs "
                         "(default 60, with --quick 0)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the generated data in benchmarks/work/ and reuse it next time")
    args = ap.parse_args(argv)
    if args.wait_quiet is None:
        args.wait_quiet = 0.0 if args.quick else 60.0
    for tool in ("age", "bash", "tee", "sha256sum", "md5sum"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (make setup)")
    plan = QUICK if args.quick else FULL
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    log: list[str] = []
    try:
        print(f"generating data in {WORK} ...", flush=True)
        ds, gen_s = load_or_make(plan, WORK / "data", SEED, reuse=args.keep)
        idle = wait_quiet(args.wait_quiet)
        template = WORK / "vault-template"
        recipient = make_template(template)
        print("page cache warmed before every timed run (all runs read from RAM); outputs "
              "deleted and fs synced between runs; strongroom ratios use its JSON seconds "
              "(no start-up / key unlock)\n", flush=True)
        scenarios: dict[str, dict[str, Any]] = {}
        scenarios["big_file"] = compare(f"ingest {size_label(plan.big)} file", template,
                                        recipient, ds.big_files, ds.big, log, args.repeat)
        print(log[-1], flush=True)
        scenarios["folder"] = compare("ingest whole folder", template, recipient,
                                      ds.folder_files, ds.folder, log, args.repeat)
        print(log[-1], flush=True)
        scenarios["sparse"] = sparse_run(template, ds, log)
        print(log[-1], flush=True)
    finally:
        shutil.rmtree(WORK / "vault-run", ignore_errors=True)
        shutil.rmtree(WORK / "vault-template", ignore_errors=True)
        if not args.keep:
            shutil.rmtree(WORK, ignore_errors=True)
    checks = goals(scenarios)
    print("\ngoals:")
    for g in checks:
        print(f"  {'PASS' if g['pass'] else 'FAIL'}  {g['goal']}: {g['value']}")
    result = {
        "benchmark": "ingest",
        "mode": "quick" if args.quick else "full",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "strongroom_env": {k: v for k, v in os.environ.items()
                           if k.startswith("STRONGROOM_") and k != "STRONGROOM_PASSPHRASE"},
        "method": {
            "page_cache": "inputs read once before every timed run; all runs read from RAM",
            "between_runs": "outputs deleted and filesystem synced (untimed)",
            "strongroom_seconds": "the `seconds` of `strongroom ingest --json` (excludes "
                                  "Python start-up and scrypt key unlock); wall time reported too",
            "anchor_sync": "anchors do not fsync; the sync after them is timed separately",
            "age": 'age -r "$R" < "$f" > "$OUT/$i.age"  (one process per file, sequential)',
            "pipeline": PIPELINE + "  (per file; waits for both hashers)",
            "hashlib": "hashlib.sha256 (and, separately, md5) over 1 MiB readinto chunks, "
                       "one file after another",
            "rss": "strongroom process VmHWM polled every "
                   f"{POLL_S * 1000:.0f} ms, reset when the first file is staged (so "
                   "start-up + scrypt key unlock and ingest are separate); age children "
                   "likewise (short-lived ones may be missed)",
            "mb": "1 MB = 10^6 bytes",
        },
        "busy_before_start": round(idle, 3),
        "repeat": args.repeat,
        "dataset": {"plan": asdict(plan), "seed": SEED, "generate_seconds": round(gen_s, 1)},
        "scenarios": scenarios,
        "goals": checks,
        "all_goals_pass": all(g["pass"] for g in checks),
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    write_results("ingest", args.quick, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
