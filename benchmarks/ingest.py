"""Ingest throughput and memory: `strongroom ingest` against anchor tools on the same bytes.

Scenarios (`--only file,folder,sparse`), on data generated here (deterministic seed, distinct
incompressible content per file):

1. **file** — one file of `--size` bytes (default 1 GiB; written once into
   benchmarks/work/cache/ and reused by later runs). The goal is on WHOLE commands as a user
   runs them: `strongroom ingest VAULT FILE` (spawned, Python start-up and key unseal included;
   fresh copy of a vault) against `age -r RECIPIENT -o OUT FILE && sync`, one `bash -c` timed
   whole, in the same run (goal ≥ 0.8×). Context on the same file: (a) `age -r KEY < f > out`
   without sync, (b) Python hashlib SHA-256 / MD5 alone, (c) the shell pipeline a careful admin
   would script, `tee >(sha256sum > f.sha256) >(md5sum > f.md5) < f | age -r KEY > f.age`,
   against the `seconds` of strongroom's `--json` report (ingest proper, no start-up/unseal).
2. **folder** — ≥ 2 GB: the big file (a hard link) plus ~100 files of 1–16 MiB and ~1500 of
   4–200 KB in mixed sub-folders: strongroom vs (a) one `age` per file, one after another,
   (b) hashlib per file, (c) the pipeline per file (waiting for its hashers each time).
3. **sparse** — a 4 GiB sparse file (`truncate`): strongroom's peak RSS on a huge file.

Fairness: all anchors use the vault's own age recipient; before every timed run the inputs are
read once (page cache warm, every run reads from RAM), and between runs outputs are deleted and
the filesystem synced (untimed). strongroom makes its blobs durable (fsync/syncfs) inside its
timing; the context anchors do not, so the `sync` after each is timed separately.

Peak RSS: (1) the whole command's, `ru_maxrss` of `os.wait4` — the largest peak of any one
process in its tree (strongroom's Python, the `age` that unseals the keys, the `age` children
that encrypt), as `/usr/bin/time -f %M` reports it: a max over processes, not a sum; (2) the
strongroom Python process alone (VmHWM, polled; split into start-up + unseal and ingest proper)
and its largest `age` child. CPU used by other processes during each run is recorded; above 5 %
of the machine the output says the numbers are noisy (`--repeat N` keeps each tool's best).

Writes benchmarks/results/ingest.json (ingest.quick.json with --quick). STRONGROOM_* settings in
the environment (e.g. STRONGROOM_INGEST_WORKERS) reach the strongroom runs unchanged.
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
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from _machine import (
    WORK_ROOT,
    Content,
    CpuWatch,
    GiB,
    MiB,
    Timed,
    bench_parser,
    best,
    cached_random_file,
    goal,
    machine_facts,
    noise_note,
    parse_bench_args,
    parse_size,
    passphrase_env,
    print_goals,
    result_header,
    run_command,
    settle,
    size_label,
    strongroom_cli,
    wait_quiet,
    warm,
    write_results,
)

WORK = WORK_ROOT / "ingest"
RSS_LIMIT_MB = 200.0
WHOLE_RATIO_GOAL = 0.8
POLL_S = 0.05  # RSS polling interval; one /proc scan costs ~1 ms, i.e. ~2 % of a core
SEED = 20240611
SCENARIOS = ("file", "folder", "sparse")

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

# The whole-command anchor of the `file` goal, exactly as a user would type it.
AGE_O_SYNC = 'age -r "$1" -o "$2" "$3" && sync'

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


def files_under(root: Path) -> list[Path]:
    """Files in strongroom's walk order (sorted names, depth first)."""
    out: list[Path] = []
    for de in sorted(os.scandir(root), key=lambda e: e.name):
        if de.is_dir(follow_symlinks=False):
            out += files_under(Path(de.path))
        elif de.is_file(follow_symlinks=False):
            out.append(Path(de.path))
    return out


def total(files: Sequence[Path]) -> int:
    return sum(p.stat().st_size for p in files)


def make_folder(plan: Plan, big: Path, folder: Path, seed: int, reuse: bool
                ) -> tuple[list[Path], float]:
    """Mixed sub-folders, the way a seized drive looks: small and mid files interleaved, the
    big file (a hard link to the cached one) somewhere in the middle."""
    manifest = folder.with_name(folder.name + ".manifest.json")
    want = {"plan": asdict(plan), "seed": seed, "big": big.name}
    if reuse and manifest.exists() and json.loads(manifest.read_text()) == want:
        return files_under(folder), 0.0
    manifest.unlink(missing_ok=True)
    t = time.perf_counter()
    rng = random.Random(seed)
    content = Content(seed)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    sizes: list[tuple[str, int]] = [
        ("mid", rng.randint(*plan.mid_range)) for _ in range(plan.mid_count)]
    sizes += [("small", rng.randint(*plan.small_range)) for _ in range(plan.small_count)]
    while plan.big + sum(s for _, s in sizes) < plan.folder_min_total:
        sizes.append(("mid", rng.randint(*plan.mid_range)))
    rng.shuffle(sizes)
    dirs = [folder / f"d{k:02d}" for k in range(plan.dirs)]
    for k, (kind, size) in enumerate(sizes):
        content.write(dirs[k % plan.dirs] / f"{kind}-{k:05d}.bin", size)
    os.link(big, dirs[plan.dirs // 2] / "evidence-big.bin")
    os.sync()
    manifest.write_text(json.dumps(want))
    return files_under(folder), time.perf_counter() - t


# -- measuring ------------------------------------------------------------------------------
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


def run_hashlib(files: Sequence[Path], nbytes: int, algorithm: str = "sha256") -> Timed:
    buf = bytearray(MiB)
    view = memoryview(buf)
    with CpuWatch() as cpu:
        for p in files:
            h = hashlib.new(algorithm)
            with open(p, "rb", buffering=0) as f:
                while n := f.readinto(buf):
                    h.update(view[:n])
    return cpu.timed(nbytes)


def run_script(script: str, recipient: str, files: Sequence[Path], nbytes: int, out: Path,
               expect: Sequence[str]) -> Timed:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    listing = out.parent / f"{out.name}.list"
    listing.write_bytes(b"".join(bytes(p) + b"\0" for p in files))
    with CpuWatch() as cpu:
        subprocess.run(["bash", "-c", script, "bash", recipient, str(out), str(listing)],
                       check=True)
    t = time.perf_counter()
    os.sync()
    synced = time.perf_counter() - t
    for suffix in expect:  # every file really went through every stage
        made = [out / f"{i}.{suffix}" for i in range(len(files))]
        if not all(p.exists() for p in made):
            raise RuntimeError(f"{out}: missing .{suffix} outputs")
        if suffix != "age" and not all(p.stat().st_size > 0 for p in made):
            raise RuntimeError(f"{out}: empty .{suffix} outputs")
    timed = cpu.timed(nbytes, sync_after_seconds=round(synced, 3))
    shutil.rmtree(out)
    listing.unlink()
    settle()
    return timed


def run_age_o_sync(recipient: str, file: Path) -> Timed:
    """The whole-command anchor: `age -r R -o OUT FILE && sync`, spawned and timed whole."""
    out = WORK / "out-age-o.age"
    out.unlink(missing_ok=True)
    timed = run_command(["bash", "-c", AGE_O_SYNC, "bash", recipient, str(out), str(file)],
                        nbytes=file.stat().st_size)
    if out.stat().st_size <= file.stat().st_size:
        raise RuntimeError(f"{out}: age wrote less than its input")
    out.unlink()
    settle()
    return timed


def make_template(path: Path) -> str:
    """A vault created once; every strongroom run gets a fresh copy (same keys)."""
    shutil.rmtree(path, ignore_errors=True)
    subprocess.run([strongroom_cli(), "init", str(path), "--json"], env=passphrase_env(),
                   check=True, stdout=subprocess.DEVNULL)
    marker = json.loads((path / "vault.json").read_text())
    return str(marker["public"]["age_recipient"])


def run_strongroom(template: Path, source: Path, nbytes: int, nfiles: int) -> Timed:
    """`strongroom ingest VAULT SOURCE --json` as a user runs it, on a fresh copy of the
    template vault. `seconds` is the report's own (ingest proper); the whole command's wall
    time and tree peak RSS are in `extra`."""
    vault = WORK / "vault-run"
    shutil.rmtree(vault, ignore_errors=True)
    shutil.copytree(template, vault)
    settle()
    out_path, err_path = WORK / "strongroom.out.json", WORK / "strongroom.err"
    cmd = [strongroom_cli(), "ingest", str(vault), str(source), "-a",
           f"benchmark {source.name}", "--json"]
    monitors: list[RssMonitor] = []

    def watch(pid: int) -> None:
        monitors.append(RssMonitor(pid, vault / "blobs" / ".tmp"))
        monitors[0].start()

    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        try:
            whole = run_command(cmd, nbytes=nbytes, env=passphrase_env(), stdout=out,
                                stderr=err, started=watch, check=False)
        finally:
            for m in monitors:
                m.stop()
    monitor = monitors[0]
    if whole.extra["exit_code"] != 0:
        raise RuntimeError(f"strongroom ingest failed ({whole.extra['exit_code']}): "
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
    return Timed(s, nbytes, whole.cpu, {
        "wall_seconds": round(whole.seconds, 3),
        "sync_after_seconds": round(synced, 3),
        "mb_per_s_wall": round(whole.mb_per_s, 1),
        "startup_and_unlock_seconds": round(whole.seconds - s, 3),
        "reported_mb_per_s": report["mb_per_s"],
        "new_originals": report["new_originals"],
        "blob_bytes": blob_bytes,
        "peak_rss_tree_max_mb": whole.extra["peak_rss_tree_max_mb"],
        "peak_rss_mb": round(monitor.ingest_peak_mb(), 1),
        "peak_rss_whole_process_mb": round(monitor.peak_kb / 1024, 1),
        "peak_rss_startup_unlock_mb": round(monitor.startup_peak_kb / 1024, 1),
        "peak_rss_ingest_sampled_mb": round(monitor.ingest_sampled_kb / 1024, 1),
        "peak_rss_ingest_exact": monitor.hwm_reset,
        "peak_rss_age_child_mb": round(monitor.child_peak_mb("age"), 1),
        "age_children_seen": monitor.child_count("age"),
        "cpu_user_seconds": whole.extra["cpu_user_seconds"],
        "cpu_system_seconds": whole.extra["cpu_system_seconds"],
    })


# -- scenarios ------------------------------------------------------------------------------
@dataclass
class Ctx:
    """What the scenarios share: options, the template vault and its recipient, output."""

    args: argparse.Namespace
    plan: Plan
    template: Path
    recipient: str
    say: Callable[[str], None]
    goals: list[dict[str, Any]]
    generated: dict[str, float]
    big: Path | None = None

    def big_file(self) -> Path:
        if self.big is None:
            print(f"the {size_label(self.plan.big)} input (cached in benchmarks/work/cache) ...",
                  flush=True)
            self.big, self.generated["big_file"] = cached_random_file(self.plan.big, SEED)
        return self.big


def compare(ctx: Ctx, name: str, files: Sequence[Path], source: Path,
            whole_anchor: bool = False) -> tuple[dict[str, Any], dict[str, Timed]]:
    """Every tool on the same files; with --repeat > 1 each tool's fastest run counts."""
    nbytes = total(files)
    keys = ["hashlib_sha256", "hashlib_md5", "age", "pipeline", "strongroom"]
    if whole_anchor:
        keys.append("age_o_sync")
    tries: dict[str, list[Timed]] = {k: [] for k in keys}
    warm_s = warm(files)
    for _ in range(ctx.args.repeat):
        tries["hashlib_sha256"].append(run_hashlib(files, nbytes))
        tries["hashlib_md5"].append(run_hashlib(files, nbytes, "md5"))
        warm(files)
        tries["age"].append(run_script(AGE_SCRIPT, ctx.recipient, files, nbytes,
                                       WORK / "out-age", ["age"]))
        warm(files)
        tries["pipeline"].append(run_script(PIPELINE_SCRIPT, ctx.recipient, files, nbytes,
                                            WORK / "out-pipeline", ["age", "sha256", "md5"]))
        if whole_anchor:
            warm(files)
            tries["age_o_sync"].append(run_age_o_sync(ctx.recipient, files[0]))
        warm(files)
        tries["strongroom"].append(run_strongroom(ctx.template, source, nbytes, len(files)))
        warm(files)
    runs = {k: best(v) for k, v in tries.items()}
    if whole_anchor:  # the whole-command comparison: strongroom's fastest wall time counts
        wall = min(tries["strongroom"], key=lambda t: t.extra["wall_seconds"])
        runs["strongroom_whole"] = Timed(wall.extra["wall_seconds"], nbytes, wall.cpu,
                                         {"peak_rss_tree_max_mb": max(
                                             t.extra["peak_rss_tree_max_mb"]
                                             for t in tries["strongroom"])})
    for key in ("peak_rss_mb", "peak_rss_whole_process_mb", "peak_rss_age_child_mb",
                "peak_rss_tree_max_mb"):
        runs["strongroom"].extra[key] = max(t.extra[key] for t in tries["strongroom"])
    sr, age = runs["strongroom"], runs["age"]
    ratios = {f"vs_{k}": round(runs[k].seconds / sr.seconds, 3)
              for k in ("age", "pipeline", "hashlib_sha256", "hashlib_md5")}
    # MD5 cannot be split across cores: on one file nothing that records MD5 beats this.
    ratios["md5_ceiling_vs_age"] = round(age.seconds / runs["hashlib_md5"].seconds, 3)
    # age does not make its output durable; strongroom's seconds include its fsync/syncfs.
    ratios["vs_age_plus_its_sync"] = round(
        (age.seconds + age.extra["sync_after_seconds"]) / sr.seconds, 3)
    ratios_wall = {f"vs_{k}": round(runs[k].seconds / sr.extra["wall_seconds"], 3)
                   for k in ("age", "pipeline", "hashlib_sha256")}
    say = ctx.say
    say(f"{name} ({len(files)} file(s), {nbytes / 1e6:,.0f} MB"
        f"{f', best of {ctx.args.repeat}' if ctx.args.repeat > 1 else ''}):")
    if whole_anchor:
        whole, anchor = runs["strongroom_whole"], runs["age_o_sync"]
        ratios["whole_command_vs_age_o_sync"] = round(anchor.seconds / whole.seconds, 3)
        say(f"  whole commands: strongroom ingest {whole.seconds:.2f} s"
            f" ({whole.mb_per_s:.0f} MB/s, start-up + unseal included) | `{AGE_O_SYNC}`"
            f" {anchor.seconds:.2f} s ({anchor.mb_per_s:.0f} MB/s)"
            f" → {ratios['whole_command_vs_age_o_sync']:.2f}× (goal ≥ {WHOLE_RATIO_GOAL})")
        say(f"  peak RSS, max over each command's process tree: strongroom"
            f" {whole.extra['peak_rss_tree_max_mb']:.0f} MB | age"
            f" {anchor.extra['peak_rss_tree_max_mb']:.0f} MB")
    say(f"  ingest proper (report seconds): strongroom {sr.mb_per_s:.0f} MB/s ({sr.seconds:.2f} s;"
        f" wall {sr.extra['wall_seconds']:.2f} s) | age -r {age.mb_per_s:.0f}"
        f" | shell pipeline {runs['pipeline'].mb_per_s:.0f}"
        f" | hashlib sha256 {runs['hashlib_sha256'].mb_per_s:.0f}"
        f" | hashlib md5 {runs['hashlib_md5'].mb_per_s:.0f}"
        f" → {ratios['vs_age']:.2f}× age, {ratios['vs_pipeline']:.2f}× pipeline"
        f" (wall: {ratios_wall['vs_age']:.2f}×, {ratios_wall['vs_pipeline']:.2f}×)")
    say(f"  durability: strongroom syncs inside its time; age's output took another"
        f" {age.extra['sync_after_seconds']:.2f} s to sync → {ratios['vs_age_plus_its_sync']:.2f}×"
        f" (age + sync)")
    say(f"  ceiling: MD5 is one sequential stream, so one file cannot go faster than"
        f" {runs['hashlib_md5'].mb_per_s:.0f} MB/s = {ratios['md5_ceiling_vs_age']:.2f}× age")
    say(f"  peak RSS: strongroom's Python {sr.extra['peak_rss_mb']:.0f} MB while ingesting"
        f" ({sr.extra['peak_rss_whole_process_mb']:.0f} MB incl. start-up + unseal), its age"
        f" children {sr.extra['peak_rss_age_child_mb']:.0f} MB; whole command (tree max)"
        f" {sr.extra['peak_rss_tree_max_mb']:.0f} MB")
    say(f"  noise: {noise_note(runs)}")
    return ({"files": len(files), "bytes": nbytes,
             "warm_read_mb_per_s": round(nbytes / warm_s / 1e6) if warm_s else None,
             "runs": {k: v.to_json() for k, v in runs.items()},
             "ratios": ratios, "ratios_wall": ratios_wall}, runs)


def pick(runs: dict[str, Timed], *names: str) -> dict[str, Timed]:
    """The runs a goal compares (their noise is the goal's)."""
    return {k: runs[k] for k in names}


def rss_goals(ctx: Ctx, label: str, sr: Timed, runs: dict[str, Timed]) -> None:
    goal(ctx.goals, f"{label}: strongroom peak RSS while ingesting", sr.extra["peak_rss_mb"],
         RSS_LIMIT_MB, "max", " MB", runs)
    goal(ctx.goals, f"{label}: strongroom Python peak RSS incl. start-up + unseal",
         sr.extra["peak_rss_whole_process_mb"], RSS_LIMIT_MB, "max", " MB", runs)


def scenario_file(ctx: Ctx) -> dict[str, Any]:
    big = ctx.big_file()
    out, runs = compare(ctx, f"ingest one {size_label(ctx.plan.big)} file", [big], big,
                        whole_anchor=True)
    label = f"{size_label(ctx.plan.big)} file"
    goal(ctx.goals, f"{label}: whole `strongroom ingest` ≥ {WHOLE_RATIO_GOAL}× `age -r -o"
         " && sync` (speed ratio)", out["ratios"]["whole_command_vs_age_o_sync"],
         WHOLE_RATIO_GOAL, "min", "×", pick(runs, "strongroom_whole", "age_o_sync"))
    goal(ctx.goals, f"{label}: ≥ 1.5× shell pipeline (ingest proper)",
         out["ratios"]["vs_pipeline"], 1.5, "min", "×", pick(runs, "strongroom", "pipeline"))
    rss_goals(ctx, label, runs["strongroom"], pick(runs, "strongroom"))
    return out


def scenario_folder(ctx: Ctx) -> dict[str, Any]:
    big = ctx.big_file()
    print("generating the folder ...", flush=True)
    files, ctx.generated["folder"] = make_folder(ctx.plan, big, WORK / "folder", SEED,
                                                 reuse=ctx.args.keep)
    out, runs = compare(ctx, "ingest whole folder", files, WORK / "folder")
    goal(ctx.goals, "whole folder: ≥ 1.0× age -r (file by file)", out["ratios"]["vs_age"], 1.0,
         "min", "×", pick(runs, "strongroom", "age"))
    goal(ctx.goals, "whole folder: ≥ 1.5× shell pipeline", out["ratios"]["vs_pipeline"], 1.5,
         "min", "×", pick(runs, "strongroom", "pipeline"))
    rss_goals(ctx, "whole folder", runs["strongroom"], pick(runs, "strongroom"))
    return out


def scenario_sparse(ctx: Ctx) -> dict[str, Any]:
    folder = WORK / "sparse"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with open(folder / "sparse.img", "wb") as f:
        f.truncate(ctx.plan.sparse)
    nbytes = ctx.plan.sparse
    sr = run_strongroom(ctx.template, folder, nbytes, 1)
    runs = {"strongroom": sr}
    ctx.say(f"ingest {size_label(nbytes)} sparse file: strongroom {sr.mb_per_s:.0f} MB/s"
            f" ({sr.seconds:.2f} s) | peak RSS: strongroom {sr.extra['peak_rss_mb']:.0f} MB"
            f" while ingesting ({sr.extra['peak_rss_whole_process_mb']:.0f} MB incl. unseal),"
            f" age child {sr.extra['peak_rss_age_child_mb']:.0f} MB, whole command (tree max)"
            f" {sr.extra['peak_rss_tree_max_mb']:.0f} MB")
    ctx.say(f"  noise: {noise_note(runs)}")
    rss_goals(ctx, f"{size_label(nbytes)} sparse file", sr, runs)
    shutil.rmtree(folder)
    return {"files": 1, "bytes": nbytes, "runs": {"strongroom": sr.to_json()}}


SCENARIO_FUNCS: dict[str, Callable[[Ctx], dict[str, Any]]] = {
    "file": scenario_file, "folder": scenario_folder, "sparse": scenario_sparse}


def main(argv: Sequence[str] | None = None) -> int:
    ap = bench_parser(__doc__, repeat=1, quick_repeat=1, scenarios=SCENARIOS)
    ap.add_argument("--size", type=parse_size, default=None, metavar="BYTES",
                    help="size of the one-file input (e.g. 64M; default 1G, with --quick 64M);"
                         " also the big file inside the folder")
    args = parse_bench_args(ap, argv)
    for tool in ("age", "bash", "tee", "sha256sum", "md5sum", "sync"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (make setup)")
    plan = QUICK if args.quick else FULL
    if args.size is not None:
        plan = Plan(**{**asdict(plan), "big": args.size})
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    log: list[str] = []

    def say(text: str) -> None:
        log.append(text)
        print(text, flush=True)

    result = result_header("ingest", args, machine_facts(
        tools=[["age", "--version"], ["sha256sum", "--version"]], packages=["strongroom"]))
    goals: list[dict[str, Any]] = []
    scenarios: dict[str, Any] = {}
    generated: dict[str, float] = {}
    try:
        template = WORK / "vault-template"
        recipient = make_template(template)
        ctx = Ctx(args, plan, template, recipient, say, goals, generated)
        if "file" in args.scenarios or "folder" in args.scenarios:
            ctx.big_file()  # generated (once) before waiting for quiet
        result["busy_before_start"] = round(wait_quiet(args.wait_quiet), 3)
        print("page cache warmed before every timed run (all runs read from RAM); outputs "
              "deleted and fs synced between runs\n", flush=True)
        for name in args.scenarios:
            scenarios[name] = SCENARIO_FUNCS[name](ctx)
    finally:
        for name in ("vault-run", "vault-template", "sparse", "out-age", "out-pipeline"):
            shutil.rmtree(WORK / name, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(WORK / "folder", ignore_errors=True)
            (WORK / "folder.manifest.json").unlink(missing_ok=True)
    print_goals(goals)
    result |= {
        "method": {
            "page_cache": "inputs read once before every timed run; all runs read from RAM",
            "between_runs": "outputs deleted and filesystem synced (untimed)",
            "whole_command": "strongroom ingest VAULT FILE spawned as a user runs it (start-up "
                             "and unseal included), wall seconds spawn to exit; anchor "
                             f"`bash -c '{AGE_O_SYNC}'` likewise",
            "strongroom_seconds": "the `seconds` of `strongroom ingest --json` (ingest proper:"
                                  " no start-up, no unseal); the context ratios use it",
            "anchor_sync": "context anchors do not fsync; the sync after them is timed apart",
            "age": 'age -r "$R" < "$f" > "$OUT/$i.age"  (one process per file, sequential)',
            "pipeline": PIPELINE + "  (per file; waits for both hashers)",
            "hashlib": "hashlib.sha256 (and, separately, md5) over 1 MiB readinto chunks",
            "rss": "peak_rss_tree_max_mb: os.wait4 ru_maxrss of the whole command = largest "
                   "peak of any one process of its tree (as /usr/bin/time %M), not a sum; "
                   f"peak_rss_*: the strongroom Python process's VmHWM polled every "
                   f"{POLL_S * 1000:.0f} ms, reset when the first file is staged; age children "
                   "likewise (short-lived ones may be missed)",
            "mb": "1 MB = 10^6 bytes",
        },
        "dataset": {"plan": asdict(plan), "seed": SEED,
                    "generate_seconds": {k: round(v, 1) for k, v in generated.items()}},
        "log": log, "scenarios": scenarios, "goals": goals,
        "all_goals_pass": all(g["pass"] for g in goals),
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    write_results("ingest", args.quick, result, args.scenarios if args.partial else ())
    return 0


if __name__ == "__main__":
    sys.exit(main())
