"""Run the benchmarks: every `benchmarks/<name>.py` module (what `make bench` runs).

Each module is run as its own process with this interpreter (`python benchmarks/<name>.py`),
one after another, so no benchmark's memory or threads affect the next. Options not known
here (e.g. `--keep`, `--size 64M`) are passed through to every module run.

    .venv/bin/python benchmarks/run.py                      # everything; benchmarks/results/*.json
    .venv/bin/python benchmarks/run.py --quick              # small smoke version of everything
    .venv/bin/python benchmarks/run.py ingest               # one benchmark, all its scenarios
    .venv/bin/python benchmarks/run.py ingest:file --size 64M   # one scenario (NAME:S1,S2)
    .venv/bin/python benchmarks/run.py --list               # benchmarks and their scenarios
    make bench ARGS="vault_open"                            # the same through make
"""

from __future__ import annotations

import argparse
import ast
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


def scenarios_of(name: str) -> list[str]:
    """The module's `SCENARIOS` tuple, read from its source (importing would be slow)."""
    tree = ast.parse((BENCH_DIR / f"{name}.py").read_text())
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "SCENARIOS"):
            value = ast.literal_eval(node.value)
            return [str(x) for x in value]
    return []


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Run strongroom's benchmarks.")
    ap.add_argument("names", nargs="*", metavar="NAME[:SCENARIO,...]",
                    help="benchmarks (optionally only some of their scenarios) to run "
                         "(default: all)")
    ap.add_argument("--quick", action="store_true", help="small smoke version of each")
    ap.add_argument("--list", action="store_true", help="list benchmarks and scenarios")
    args, passthrough = ap.parse_known_args(argv)
    available = discover()
    if args.list:
        for name in available:
            print(f"{name}: {', '.join(scenarios_of(name))}")
        return 0
    selected: list[tuple[str, list[str]]] = []
    for item in args.names or available:
        name, _, only = item.partition(":")
        if name not in available:
            ap.error(f"unknown benchmark {name}; available: {', '.join(available)}")
        wanted = [x for x in only.split(",") if x]
        unknown = sorted(set(wanted) - set(scenarios_of(name)))
        if unknown:
            ap.error(f"{name} has no scenario {', '.join(unknown)}; it has: "
                     f"{', '.join(scenarios_of(name))}")
        selected.append((name, wanted))
    extra = (["--quick"] if args.quick else []) + passthrough
    failed: list[str] = []
    for name, only in selected:
        label = name + (f":{','.join(only)}" if only else "")
        print(f"=== {label}{' (quick)' if args.quick else ''} ===", flush=True)
        started = time.perf_counter()
        cmd = [sys.executable, str(BENCH_DIR / f"{name}.py"), *extra]
        if only:
            cmd += ["--only", ",".join(only)]
        rc = subprocess.run(cmd, check=False).returncode
        print(f"=== {label}: {'ok' if rc == 0 else f'FAILED (exit {rc})'}"
              f" in {time.perf_counter() - started:.0f} s ===\n", flush=True)
        if rc != 0:
            failed.append(label)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
