"""Run the benchmarks: every `benchmarks/<name>.py` module (what `make bench` runs).

Each module is run as its own process with this interpreter (`python benchmarks/<name>.py`),
one after another, so no benchmark's memory or threads affect the next. Options not known
here (e.g. `--keep`) are passed through to every module.

    .venv/bin/python benchmarks/run.py            # full run, writes benchmarks/results/*.json
    .venv/bin/python benchmarks/run.py --quick    # small smoke version of every benchmark
    .venv/bin/python benchmarks/run.py ingest     # only the named benchmark(s)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def discover() -> list[str]:
    """Benchmark modules: `*.py` here except this runner and `_private` helpers."""
    return sorted(p.stem for p in BENCH_DIR.glob("*.py")
                  if p.name != Path(__file__).name and not p.name.startswith("_"))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Run strongroom's benchmarks.")
    ap.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    ap.add_argument("--quick", action="store_true", help="small smoke version of each")
    args, passthrough = ap.parse_known_args(argv)
    available = discover()
    unknown = sorted(set(args.names) - set(available))
    if unknown:
        ap.error(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(available)}")
    names = args.names or available
    extra = (["--quick"] if args.quick else []) + passthrough
    failed: list[str] = []
    for name in names:
        print(f"=== {name}{' (quick)' if args.quick else ''} ===", flush=True)
        started = time.perf_counter()
        rc = subprocess.run([sys.executable, str(BENCH_DIR / f"{name}.py"), *extra],
                            check=False).returncode
        print(f"=== {name}: {'ok' if rc == 0 else f'FAILED (exit {rc})'}"
              f" in {time.perf_counter() - started:.0f} s ===\n", flush=True)
        if rc != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
