"""What every benchmark needs: CPU accounting, quiet-waiting, warm caches, test data, provenance.

Not a benchmark itself (`run.py` skips `_private` modules); imported by the ones that are.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import random
import resource
import subprocess
import time
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol, TypeVar

MiB = 1 << 20
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


def noise_warning(shares: Mapping[str, float], indent: str = "  ") -> str:
    """A warning line for the runs during which other processes used the CPUs noticeably."""
    noisy = {k: v for k, v in shares.items() if v > NOISY_SHARE}
    if not noisy:
        return ""
    shown = ", ".join(f"{k} {v:.0%}" for k, v in noisy.items())
    return f"\n{indent}WARNING other processes used the CPUs during: {shown} (numbers are noisy)"


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


class _Run(Protocol):
    seconds: float
    extra: dict[str, Any]


R = TypeVar("R", bound=_Run)


def best(runs: list[R]) -> R:
    """The fastest of repeated runs, noting every run's seconds when there was more than one."""
    out = min(runs, key=lambda r: r.seconds)
    if len(runs) > 1:
        out.extra["all_seconds"] = [round(r.seconds, 3) for r in runs]
    return out


def machine_facts(tools: Sequence[Sequence[str]] = (),
                  packages: Sequence[str] = ()) -> dict[str, Any]:
    """CPU, memory, kernel and Python; the first line each tool prints for its version
    (keyed by the tool's name); the installed version of each Python package."""
    model, flags = "?", set()
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


def write_results(name: str, quick: bool, result: dict[str, Any]) -> Path:
    """benchmarks/results/NAME.json (NAME.quick.json for a smoke run), printed."""
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    dest = results / (f"{name}.quick.json" if quick else f"{name}.json")
    dest.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwrote {dest.relative_to(results.parent.parent)} ({result['total_seconds']:.0f} s)")
    return dest
