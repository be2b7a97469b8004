"""The benchmark harness measures what it claims: whole commands' peak RSS includes children,
goals print PASS/FAIL with their figure, every benchmark lists its scenarios."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def machine() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("_machine")
    finally:
        sys.path.remove(str(BENCH))


def test_whole_command_peak_rss_counts_a_grandchild(machine: ModuleType) -> None:
    # the shell stays small; its child touches 150 MB: the command's peak must show it
    grow = f"{sys.executable} -c 'b = bytearray(150 << 20); b[::4096] = b\"x\" * len(b[::4096])'"
    t = machine.run_command(["sh", "-c", f"{grow}; true"])
    assert t.extra["peak_rss_tree_max_mb"] >= 150
    assert t.extra["exit_code"] == 0 and t.seconds > 0


def test_a_failed_command_is_an_error_unless_asked(machine: ModuleType) -> None:
    with pytest.raises(RuntimeError):
        machine.run_command(["sh", "-c", "exit 3"])
    assert machine.run_command(["sh", "-c", "exit 3"], check=False).extra["exit_code"] == 3


def test_goal_lines_say_pass_or_fail_with_figure_target_and_load(machine: ModuleType) -> None:
    goals: list[dict[str, object]] = []
    machine.goal(goals, "fixed cost", 1.25, 0.5, "max", " s")
    machine.goal(goals, "ratio", 0.9, 0.8, "min", "×")
    lines = [machine.goal_line(g) for g in goals]
    assert lines[0].startswith("  FAIL  fixed cost: 1.25 s (goal ≤ 0.5 s) [load average ")
    assert lines[1].startswith("  PASS  ratio: 0.9× (goal ≥ 0.8×) [load average ")
    assert all("cores" in line for line in lines)


def test_sizes_parse_in_binary_units(machine: ModuleType) -> None:
    assert machine.parse_size("1G") == 1 << 30
    assert machine.parse_size("64MiB") == 64 << 20
    assert machine.parse_size("4096") == 4096


def test_the_runner_lists_every_benchmark_with_its_scenarios() -> None:
    out = subprocess.run([sys.executable, str(BENCH / "run.py"), "--list"], check=True,
                         capture_output=True, text=True).stdout
    listed = dict(line.split(": ", 1) for line in out.splitlines())
    assert set(listed) == {"crash", "export", "fuzz", "ingest", "intake", "overlay", "pipeline",
                           "redact", "scaleout", "search", "seek", "vault_open"}
    assert listed["scaleout"] == "dask, s3, pg"
    assert listed["intake"] == "resume"
    assert listed["redact"] == "faces"
    assert listed["search"] == "search"
    assert listed["seek"] == "seek, chunk_size"
    assert listed["overlay"] == "corpus"
    assert listed["vault_open"] == "open"
    assert "file" in listed["ingest"]
