"""What every benchmark needs: one `Timed`, one `goal`, one `noise_note`, whole-command runs,
CPU accounting, quiet-waiting, warm caches, test data, provenance, scenario selection.

Not a benchmark itself (`run.py` skips `_private` modules); imported by the ones that are.
Each benchmark module is a set of scenarios (one function each, listed in its `SCENARIOS`);
`--only NAME[,NAME]` runs some of them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import resource
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import IO, Any, Literal

MiB, GiB = 1 << 20, 1 << 30
BENCH_DIR = Path(__file__).resolve().parent
WORK_ROOT = BENCH_DIR / "work"  # gitignored
CACHE = WORK_ROOT / "cache"  # generated inputs kept between runs (e.g. the 1 GiB file)
PASSPHRASE = "strongroom benchmark passphrase"  # noqa: S105 - throwaway vaults
NOISY_SHARE = 0.05  # warn when other processes used more than this share of all CPUs


def _cpu_stat() -> tuple[float, float]:
    """Machine-wide (busy, steal) CPU seconds so far, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq) / tick, steal / tick


def _own_cpu() -> float:
    """CPU seconds used by this process and its waited-for descendants so far."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        total += ru.ru_utime + ru.ru_stime
    return total


class CpuWatch:
    """Wall time of a block, and how much CPU *other* processes used meanwhile."""

    def __enter__(self) -> CpuWatch:
        self.busy0, self.steal0 = _cpu_stat()
        self.own0, self.t0 = _own_cpu(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        busy, steal = _cpu_stat()
        self.seconds = time.perf_counter() - self.t0
        self.own = _own_cpu() - self.own0
        self.other = max(0.0, busy - self.busy0 - self.own)
        self.steal = steal - self.steal0

    def timed(self, nbytes: int = 0, **extra: Any) -> Timed:
        """This block as one measured run."""
        return Timed(self.seconds, nbytes, self.as_dict(), dict(extra))

    def share(self) -> float:
        return self.other / self.seconds / (os.cpu_count() or 1) if self.seconds else 0.0

    def as_dict(self) -> dict[str, float]:
        return {"own_cpu_seconds": round(self.own, 2), "other_cpu_seconds": round(self.other, 2),
                "steal_seconds": round(self.steal, 2), "other_cpu_share": round(self.share(), 3)}


def machine_busy(seconds: float = 1.0) -> float:
    """Share of all cores busy over `seconds` while this benchmark does nothing."""
    busy0, _ = _cpu_stat()
    time.sleep(seconds)
    busy, _ = _cpu_stat()
    return (busy - busy0) / seconds / (os.cpu_count() or 1)


def wait_quiet(wait_seconds: float) -> float:
    """Wait up to `wait_seconds` for other processes to stop using the CPUs; warn if they do
    not. Returns the share of all CPUs they were using when we stopped waiting."""
    idle = machine_busy()
    deadline = time.monotonic() + wait_seconds
    if idle > NOISY_SHARE and wait_seconds > 0:
        print(f"machine busy ({idle:.0%} of all CPUs used by other processes); waiting up "
              f"to {wait_seconds:.0f} s for it to calm down ...", flush=True)
    while idle > NOISY_SHARE and time.monotonic() < deadline:
        idle = machine_busy(2.0)
    if idle > NOISY_SHARE:
        print(f"WARNING: the machine is busy ({idle:.0%} of all CPUs used by other "
              "processes); the numbers will be noisy", flush=True)
    return idle


def load_note() -> str:
    """The load average and the number of cores: how busy the machine was around a figure."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def noise_note(runs: Mapping[str, Timed] | None = None) -> str:
    """What may have disturbed a figure: the load average and cores now, and the runs during
    which other processes used a noticeable share of the CPUs (then the numbers are noisy)."""
    note = load_note()
    noisy = {k: r.other_share() for k, r in (runs or {}).items()
             if r.other_share() > NOISY_SHARE}
    if noisy:
        shown = ", ".join(f"{k} {v:.0%}" for k, v in noisy.items())
        note += f"; other processes used the CPUs during: {shown} (numbers are noisy)"
    return note


def warm(files: Sequence[Path]) -> float:
    """Read every input once (`cat files > /dev/null`) so the timed run reads from RAM."""
    buf = bytearray(1 << 20)
    t = time.perf_counter()
    for p in files:
        with open(p, "rb", buffering=0) as f:
            while f.readinto(buf):
                pass
    return time.perf_counter() - t


class Content:
    """Fast deterministic incompressible bytes: slices of a random pool at random offsets, each
    file starting with a digest of its own name, so no two files have the same content."""

    POOL = 32 * MiB

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        self.pool = memoryview(b"".join(rng.randbytes(MiB) for _ in range(self.POOL // MiB)))
        self.seed = seed

    def write(self, path: Path, size: int) -> None:
        rng = random.Random(f"{self.seed}:{path.name}")
        head = hashlib.sha256(f"{self.seed}:{path.name}".encode()).digest()
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            f.write(head[:size])
            left = size - min(size, len(head))
            while left:
                n = min(left, MiB)
                off = rng.randrange(self.POOL - n)
                f.write(self.pool[off:off + n])
                left -= n


def source_state() -> dict[str, Any]:
    """Which code was measured: the commit, and files under src/ changed since (others may be
    editing while a benchmark runs)."""
    def git(*args: str) -> str:
        res = subprocess.run(["git", *args], capture_output=True, text=True, check=False,
                             cwd=Path(__file__).resolve().parent.parent)
        return res.stdout

    changed = [line[3:] for line in git("status", "--porcelain", "--", "src").splitlines()
               if line.strip()]
    return {"commit": git("rev-parse", "--short", "HEAD").strip() or "?", "src_changed": changed}


def mbps(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e6 if seconds > 0 else 0.0


def settle() -> None:
    """Let earlier writes reach the disk before the next timed run (untimed)."""
    os.sync()


@dataclass
class Timed:
    """One measured run: wall seconds, the bytes it went through (for MB/s; 0 when that means
    nothing), CPU accounting from `CpuWatch`, and whatever else the run reports."""

    seconds: float
    nbytes: int = 0
    cpu: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mb_per_s(self) -> float:
        return mbps(self.nbytes, self.seconds)

    def other_share(self) -> float:
        return float(self.cpu.get("other_cpu_share", 0.0))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seconds": round(self.seconds, 3)}
        if self.nbytes:
            out |= {"bytes": self.nbytes, "mb_per_s": round(self.mb_per_s, 1)}
        return out | self.cpu | {k: round(v, 3) if isinstance(v, float) else v
                                 for k, v in self.extra.items()}


def best(runs: list[Timed]) -> Timed:
    """The fastest of repeated runs, noting every run's seconds when there was more than one."""
    out = min(runs, key=lambda r: r.seconds)
    if len(runs) > 1:
        out.extra["all_seconds"] = [round(r.seconds, 3) for r in runs]
    return out


GoalKind = Literal["min", "max", "max_excl"]
_OPS: dict[str, str] = {"min": "≥", "max": "≤", "max_excl": "<"}


def goal(out: list[dict[str, Any]], name: str, value: float, target: float,
         kind: GoalKind = "min", unit: str = "",
         runs: Mapping[str, Timed] | None = None) -> dict[str, Any]:
    """Record one goal: the figure, the target, PASS/FAIL and the noise note at that moment.
    `kind`: "min" (value ≥ target), "max" (value ≤ target) or "max_excl" (value < target)."""
    ok = {"min": value >= target, "max": value <= target, "max_excl": value < target}[kind]
    g = {"goal": name, "value": round(value, 4), "unit": unit,
         "target": f"{_OPS[kind]} {target:g}{unit}", "pass": ok, "noise": noise_note(runs)}
    out.append(g)
    return g


def goal_line(g: Mapping[str, Any]) -> str:
    return (f"  {'PASS' if g['pass'] else 'FAIL'}  {g['goal']}: {g['value']:g}{g['unit']}"
            f" (goal {g['target']}) [{g['noise']}]")


def print_goals(goals: Sequence[Mapping[str, Any]]) -> None:
    print("\ngoals:")
    for g in goals:
        print(goal_line(g))


# -- whole commands -------------------------------------------------------------------------
def strongroom_cli() -> str:
    """The `strongroom` entry point next to this interpreter (the project's .venv)."""
    import shutil
    import sys

    here = Path(sys.executable).parent / "strongroom"
    found = str(here) if here.exists() else shutil.which("strongroom")
    if not found:
        raise SystemExit("strongroom CLI not found (run `make venv` first)")
    return found


def passphrase_env(**extra: str) -> dict[str, str]:
    """Our environment plus the benchmark vaults' passphrase, as a user scripting it would."""
    return os.environ | {"STRONGROOM_PASSPHRASE": PASSPHRASE} | extra


def open_catalogue(vault: Path) -> Any:
    """A read connection to a benchmark vault's SQLite catalogue, keyed like the vault opens
    it (SQLCipher; plain sqlite3 for a catalogue made before encryption)."""
    import sqlite3

    from strongroom.catalogue import is_plain_sqlite
    from strongroom.catalogue.db import cipher_module, key_pragma
    from strongroom.vault.keys import VaultKeys

    db = vault / "catalogue.db"
    if is_plain_sqlite(db):
        return sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    keys = VaultKeys.unseal((vault / "keys.age").read_bytes(), PASSPHRASE)
    con = cipher_module().connect(str(db))
    con.execute(key_pragma(keys.catalogue_key))
    return con


def run_command(argv: Sequence[str], *, nbytes: int = 0, env: Mapping[str, str] | None = None,
                stdout: IO[bytes] | int | None = subprocess.DEVNULL,
                stderr: IO[bytes] | int | None = None,
                started: Callable[[int], None] | None = None, check: bool = True) -> Timed:
    """One whole command as a user runs it: wall seconds from spawn to exit, and its peak RSS.

    Peak RSS is `ru_maxrss` from `os.wait4` on the command (what `/usr/bin/time -f %M` prints):
    the largest peak of any single process in its tree, counting every descendant that was
    waited for inside the tree (strongroom waits for its `setsid --wait age` children, so the
    unseal's age is counted). It is a max over processes, not their sum: the figure that
    matters for memory pressure when, as here, the heavy processes run one after another.
    `started(pid)` is called right after the spawn (e.g. to start an RSS poller)."""
    with CpuWatch() as cpu:
        proc = subprocess.Popen(list(argv), stdout=stdout, stderr=stderr,
                                stdin=subprocess.DEVNULL, env=dict(env) if env else None)
        if started is not None:
            started(proc.pid)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = rc = os.waitstatus_to_exitcode(status)
    if check and rc != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} ... failed (exit {rc})")
    return Timed(cpu.seconds, nbytes, cpu.as_dict(), {
        "exit_code": rc,
        "peak_rss_tree_max_mb": round(usage.ru_maxrss / 1024, 1),
        "cpu_user_seconds": round(usage.ru_utime, 2),
        "cpu_system_seconds": round(usage.ru_stime, 2)})


# -- inputs ---------------------------------------------------------------------------------
def parse_size(text: str) -> int:
    """"1G", "64M", "512K" or a number of bytes (binary units)."""
    units = {"K": 1 << 10, "M": MiB, "G": GiB}
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    try:
        if t and t[-1] in units:
            return int(float(t[:-1]) * units[t[-1]])
        return int(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 1G, 64M)") from None


def size_label(n: int) -> str:
    return f"{n / GiB:g} GiB" if n >= GiB else f"{n / MiB:g} MiB"


def cached_random_file(size: int, seed: int) -> tuple[Path, float]:
    """An incompressible file of `size` bytes in benchmarks/work/cache/, written once and reused
    by every later run (the name says its size and seed). Returns it and the seconds spent
    generating it now (0 when cached)."""
    path = CACHE / f"random-{size}-{seed}.bin"
    if path.is_file() and path.stat().st_size == size:
        return path, 0.0
    CACHE.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    tmp = path.with_suffix(".partial")
    Content(seed).write(tmp, size)
    os.sync()
    tmp.rename(path)
    return path, time.perf_counter() - t


def machine_facts(tools: Sequence[Sequence[str]] = (),
                  packages: Sequence[str] = ()) -> dict[str, Any]:
    """CPU, memory, kernel and Python; the first line each tool prints for its version
    (keyed by the tool's name); the installed version of each Python package."""
    model, flags = "?", set[str]()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "?":
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    out: dict[str, Any] = {
        "cpus": os.cpu_count(), "cpu_model": model, "memory_gb": round(mem / 1e9, 1),
        "sha_ni": "sha_ni" in flags, "kernel": platform.release(),
        "python": platform.python_version()}
    for argv in tools:
        try:
            res = subprocess.run(list(argv), capture_output=True, text=True, check=False)
            out[argv[0]] = (res.stdout or res.stderr).strip().splitlines()[0]
        except (OSError, IndexError):
            out[argv[0]] = "?"
    for pkg in packages:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "?"
    return out


# -- scenarios and results -----------------------------------------------------------------
def bench_parser(doc: str | None, *, repeat: int, quick_repeat: int,
                 scenarios: Sequence[str]) -> argparse.ArgumentParser:
    """The options every benchmark takes."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    ap.add_argument("--quick", action="store_true", help="small smoke version (seconds)")
    ap.add_argument("--only", default="", metavar="SCENARIO[,SCENARIO]",
                    help=f"run only these scenarios (of: {', '.join(scenarios)})")
    ap.add_argument("--repeat", type=int, default=None, metavar="N",
                    help="run each timed measurement N times and keep the fastest "
                         f"(default {repeat}, with --quick {quick_repeat})")
    ap.add_argument("--wait-quiet", type=float, default=None, metavar="SECONDS",
                    help="wait up to this long for other processes to stop using the CPUs "
                         "(default 60, with --quick 0)")
    ap.add_argument("--keep", action="store_true",
                    help="keep generated data in benchmarks/work/ and reuse it next time")
    ap.set_defaults(_repeat=(repeat, quick_repeat), _scenarios=list(scenarios))
    return ap


def parse_bench_args(ap: argparse.ArgumentParser,
                     argv: Sequence[str] | None) -> argparse.Namespace:
    """Parsed options with the defaults that depend on --quick filled in, and `scenarios`: the
    ones to run, in their declared order."""
    args = ap.parse_args(argv)
    if args.repeat is None:
        args.repeat = args._repeat[1] if args.quick else args._repeat[0]
    if args.wait_quiet is None:
        args.wait_quiet = 0.0 if args.quick else 60.0
    wanted = [x for x in args.only.split(",") if x]
    unknown = sorted(set(wanted) - set(args._scenarios))
    if unknown:
        ap.error(f"unknown scenario(s) {', '.join(unknown)}; "
                 f"available: {', '.join(args._scenarios)}")
    args.scenarios = [x for x in args._scenarios if not wanted or x in wanted]
    args.partial = args.scenarios != args._scenarios
    return args


def result_header(name: str, args: argparse.Namespace,
                  machine: dict[str, Any]) -> dict[str, Any]:
    """What every result file starts with: which benchmark, when, where, on which code."""
    return {
        "benchmark": name,
        "mode": "quick" if args.quick else "full",
        "scenarios": args.scenarios,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "source": source_state(),
        "strongroom_env": {k: v for k, v in os.environ.items()
                           if k.startswith("STRONGROOM_") and k != "STRONGROOM_PASSPHRASE"},
        "repeat": args.repeat,
    }


def write_results(name: str, quick: bool, result: dict[str, Any],
                  only: Sequence[str] = ()) -> Path:
    """benchmarks/results/NAME.json (NAME.quick.json for a smoke run; NAME.SCENARIO….json when
    only some scenarios ran, so a partial run never replaces a whole one), printed."""
    results = BENCH_DIR / "results"
    results.mkdir(exist_ok=True)
    stem = name + "".join(f".{x}" for x in only) + (".quick" if quick else "")
    dest = results / f"{stem}.json"
    dest.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwrote {dest.relative_to(BENCH_DIR.parent)} ({result['total_seconds']:.0f} s)")
    return dest
