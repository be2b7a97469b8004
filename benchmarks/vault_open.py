"""Vault open: the fixed cost of a command that needs the keys, as a user runs it.

Every figure is a WHOLE command, spawned from here as a user's shell would (`.venv/bin/strongroom
...`, Python start-up, imports and the unseal included; the passphrase in STRONGROOM_PASSPHRASE):

- `strongroom verify VAULT --quick` on an empty vault: needs the keys, then does almost nothing.
  Its time is THE fixed cost of opening the vault (goal ≤ 0.5 s).
- `strongroom cat VAULT SHA256` of a 1 KB original (to /dev/null): the same, through another
  command (reported, no goal).
- `strongroom stats VAULT`: needs no keys — start-up and imports alone (the floor).
- anchor: the bare `age -d -o /dev/null keys.age`, its passphrase typed on a pseudo-terminal by
  this process (age reads passphrases only from a terminal): the unseal itself, scrypt at work
  factor 2^18.

Each command runs `--repeat` times (interleaved, so load hits all alike); time is the best run,
peak RSS the worst. Peak RSS is `ru_maxrss` of `os.wait4` on the command, as `/usr/bin/time -f
%M` reports it: the largest peak of any one process of the command's tree (strongroom's Python
and the `setsid --wait age` it runs to unseal), not their sum (goal ≤ 400 MB). Ratios: each
keyed command ÷ stats (what the unseal adds to start-up), and ÷ age -d (the anchor).

Writes benchmarks/results/vault_open.json (vault_open.quick.json with --quick).
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _machine import (
    PASSPHRASE,
    WORK_ROOT,
    CpuWatch,
    Timed,
    bench_parser,
    goal,
    machine_facts,
    noise_note,
    parse_bench_args,
    passphrase_env,
    print_goals,
    result_header,
    run_command,
    strongroom_cli,
    wait_quiet,
    write_results,
)

WORK = WORK_ROOT / "vault_open"
FIXED_COST_GOAL_S = 0.5
RSS_GOAL_MB = 400.0
SCENARIOS = ("open",)


def age_unseal(keys_age: Path, passphrase: str) -> Timed:
    """`age -d -o /dev/null keys.age`, the passphrase typed at its prompt on a pty (the bare
    unseal a user without Strongroom would run). Wall seconds from fork to exit; age's own
    ru_maxrss."""
    age = shutil.which("age")
    if age is None:
        raise SystemExit("age is not installed (make setup)")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}
    seen = b""
    with CpuWatch() as cpu:
        pid, master = pty.fork()
        if pid == 0:  # the child: age, with the pty as its controlling terminal
            os.execve(age, [age, "-d", "-o", "/dev/null", str(keys_age)], env)  # noqa: S606
        try:
            answered = False
            while True:
                ready, _, _ = select.select([master], [], [], 30.0)
                if not ready:
                    raise RuntimeError(f"age -d: no prompt within 30 s ({seen!r})")
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: age exited and closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
                if not answered and seen.rstrip().endswith(b":"):
                    os.write(master, passphrase.encode() + b"\r")
                    answered = True
        finally:
            os.close(master)
            _, status, usage = os.wait4(pid, 0)
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0:
        raise RuntimeError(f"age -d keys.age failed (exit {rc}): {seen[-300:]!r}")
    return cpu.timed(peak_rss_tree_max_mb=round(usage.ru_maxrss / 1024, 1),
                     cpu_user_seconds=round(usage.ru_utime, 2),
                     cpu_system_seconds=round(usage.ru_stime, 2))


def make_vaults(root: Path) -> tuple[Path, Path, str]:
    """An empty vault, and one holding a single 1 KB original (its SHA-256 returned)."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    cli, env = strongroom_cli(), passphrase_env()
    empty, small = root / "empty", root / "one-file"
    for v in (empty, small):
        subprocess.run([cli, "init", str(v), "--json"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
    tiny = root / "tiny.txt"
    tiny.write_bytes(b"strongroom vault-open benchmark\n" * 32)
    out = subprocess.run([cli, "ingest", str(small), str(tiny), "-a", "benchmark", "--json"],
                         env=env, check=True, capture_output=True, text=True).stdout
    if json.loads(out)["new_originals"] != 1:
        raise RuntimeError(f"ingest of the tiny file: {out}")
    import hashlib

    return empty, small, hashlib.sha256(tiny.read_bytes()).hexdigest()


def scenario_open(args: Any, goals: list[dict[str, Any]], say: Any) -> dict[str, Any]:
    empty, small, sha = make_vaults(WORK)
    cli, env = strongroom_cli(), passphrase_env()
    commands: dict[str, list[str]] = {
        "stats": [cli, "stats", str(empty)],
        "verify_quick": [cli, "verify", str(empty), "--quick"],
        "cat_tiny": [cli, "cat", str(small), sha],
    }
    runs: dict[str, list[Timed]] = {k: [] for k in [*commands, "age_d"]}

    def round_() -> None:
        for name, argv in commands.items():
            runs[name].append(run_command(argv, env=env, stderr=subprocess.DEVNULL))
        runs["age_d"].append(age_unseal(empty / "keys.age", PASSPHRASE))

    round_()  # untimed: page cache, compiled bytecode
    for k in runs:
        runs[k].clear()
    for _ in range(args.repeat):
        round_()
    best = {k: min(v, key=lambda t: t.seconds) for k, v in runs.items()}
    rss = {k: max(t.extra["peak_rss_tree_max_mb"] for t in v) for k, v in runs.items()}
    med = {k: statistics.median(t.seconds for t in v) for k, v in runs.items()}
    st, vq, cat, age = (best[k].seconds for k in ("stats", "verify_quick", "cat_tiny", "age_d"))
    ratios = {
        "verify_quick_vs_stats": round(vq / st, 3), "verify_quick_vs_age_d": round(vq / age, 3),
        "cat_tiny_vs_stats": round(cat / st, 3), "cat_tiny_vs_age_d": round(cat / age, 3),
        "unseal_cost_seconds": round(vq - st, 3)}
    say(f"vault open: whole commands, best of {args.repeat} (median) | peak RSS = max over the "
        "command's process tree (wait4 ru_maxrss), worst run")
    labels = {"stats": "strongroom stats (no unseal)",
              "verify_quick": "strongroom verify --quick (empty vault)",
              "cat_tiny": "strongroom cat (1 KB original)",
              "age_d": "anchor: age -d keys.age (pty)"}
    for k, label in labels.items():
        say(f"  {label:42}{best[k].seconds:7.3f} s ({med[k]:.3f}){rss[k]:8.0f} MB")
    say(f"  → verify --quick = {ratios['verify_quick_vs_stats']:.2f}× stats, "
        f"{ratios['verify_quick_vs_age_d']:.2f}× age -d; cat = {ratios['cat_tiny_vs_stats']:.2f}×"
        f" stats, {ratios['cat_tiny_vs_age_d']:.2f}× age -d; unseal adds "
        f"{ratios['unseal_cost_seconds']:.2f} s to start-up (age -d alone {age:.2f} s)")
    note_runs = {k: best[k] for k in best}
    say(f"  noise: {noise_note(note_runs)}")
    goal(goals, "vault open: fixed cost, whole `strongroom verify --quick` on an empty vault",
         vq, FIXED_COST_GOAL_S, "max", " s", note_runs)
    goal(goals, "vault open: whole-command peak RSS, max over its process tree "
         "(verify --quick, cat)", max(rss["verify_quick"], rss["cat_tiny"]), RSS_GOAL_MB, "max",
         " MB", note_runs)
    return {"runs": {k: best[k].to_json() | {"median_seconds": round(med[k], 3),
                                             "peak_rss_tree_max_mb_worst": rss[k],
                                             "all_seconds": [round(t.seconds, 3) for t in v]}
                     for k, v in runs.items()},
            "ratios": ratios,
            "commands": {k: [Path(a).name if i == 0 else a for i, a in enumerate(argv)]
                         for k, argv in commands.items()}
            | {"age_d": ["age", "-d", "-o", "/dev/null", "keys.age"]}}


def main(argv: Sequence[str] | None = None) -> int:
    ap = bench_parser(__doc__, repeat=7, quick_repeat=2, scenarios=SCENARIOS)
    args = parse_bench_args(ap, argv)
    if shutil.which("age") is None:
        raise SystemExit("age is not installed (make setup)")
    started = time.perf_counter()
    log: list[str] = []

    def say(text: str) -> None:
        log.append(text)
        print(text, flush=True)

    result = result_header("vault_open", args,
                           machine_facts(tools=[["age", "--version"]], packages=["strongroom"]))
    result["busy_before_start"] = round(wait_quiet(args.wait_quiet), 3)
    goals: list[dict[str, Any]] = []
    scenarios: dict[str, Any] = {}
    try:
        if "open" in args.scenarios:
            scenarios["open"] = scenario_open(args, goals, say)
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    print_goals(goals)
    result |= {
        "method": {
            "commands": "each spawned as a user runs it (.venv/bin/strongroom, passphrase in "
                        "STRONGROOM_PASSPHRASE); wall seconds from spawn to exit",
            "peak_rss": "os.wait4 ru_maxrss of the command = the largest peak RSS of any one "
                        "process in its tree (descendants waited for inside the tree count: "
                        "the unseal's age child does); a max, not a sum",
            "anchor": "age -d -o /dev/null keys.age, passphrase typed on a pty by the "
                      "benchmark; age's own ru_maxrss",
            "repeat": "one untimed warm-up round, then --repeat interleaved rounds; best time, "
                      "worst RSS",
        },
        "log": log, "scenarios": scenarios, "goals": goals,
        "all_goals_pass": all(g["pass"] for g in goals),
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    write_results("vault_open", args.quick, result, args.scenarios if args.partial else ())
    return 0


if __name__ == "__main__":
    sys.exit(main())
