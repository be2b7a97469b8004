"""What every benchmark needs: CPU accounting, quiet-waiting, warm caches, test data, provenance.

Not a benchmark itself (`run.py` skips `_private` modules); imported by the ones that are.
"""

from __future__ import annotations

import hashlib
import os
import random
import resource
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

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
