"""Crash campaign: random SIGKILLs during `ingest`, `process` and `export`; afterwards the vault
verifies and nothing is lost (issue 13, point 6).

Scenarios (`--only ingest,process,export`), one per command family. Every command is a WHOLE
`strongroom` process, spawned as a user's script would (`.venv/bin/strongroom ...`, the
passphrase in STRONGROOM_PASSPHRASE), in a new session, and killed with SIGKILL sent to its
whole process group (the CLI, its pipeline workers, ffmpeg/tesseract/age children, the PDF
renderer) at a random instant:

- **ingest**: `strongroom ingest VAULT SOURCE -a "USB stick 1 ..."` of a folder of 300 small
  files (4–128 KB, committed in groups) and two 8 MiB ones, with a duplicate inside the folder
  and a copy of a file the vault already holds (two sightings, one original).
- **process**: `strongroom process VAULT --steps probe,keyframes,overlay_ocr,perceptual_hash
  --workers 2` on four 3–4 s DVR-style clips (`strongroom.testmedia`, 384×288, burnt-in clock
  and Cyrillic camera label) waiting to be analysed.
- **export**: `strongroom export VAULT --all --include derivatives --to OUT` (signed bag, PDF
  reports: the defaults) of that vault once processed.

Kill instants: each family first runs its command uninterrupted `calibration_runs` times (each
on a fresh copy of its prepared vault); the median wall time, spawn to exit, is its window T.
Each round then kills at `uniform(0, T)` seconds after spawn, so kills land during start-up
and the unseal, mid-work and near the end in proportion to the time each takes; with
probability 1/2 the first re-run is killed too (a second uniform instant: a kill on top of
what a kill left). The instants come from `random.Random(f"{seed}:{family}:{round}")`, so
`--replay FAMILY:ROUND --window T` replays one round's instants alone (the state they hit still
depends on the machine's timing). A kill that finds the command already exited is counted as
"finished before the kill", not as a kill.

After the kills, the same command is run again to completion (exit 0), then
`strongroom verify VAULT --json` (exit 0, no problem), then `strongroom log VAULT --json` is
compared with what an uninterrupted run gives:
- ingest: the originals (SHA-256 of `ingested` events) are exactly the SHA-256s of every source
  file the vault was given, each ingested once; every source file has exactly one `sighted`
  event (its path, its original) in the new acquisition; one new acquisition only;
- process: the `analysed` (original, step, status) and `derived` (original, step, kind) events
  are exactly those of the uninterrupted run (which has every step `ok` for every original):
  none missing (lost), none twice (not idempotent); the originals are untouched;
- export: the re-run's bag passes `strongroom verify-export BAG --json`, and exactly one
  `exported` event names it. When the kill came after the bag was complete (renamed into
  place), the re-run refuses the existing folder by design (exit 2): then the killed run's bag
  must verify, and whether its `exported` event was recorded is counted.
Custody events written by each killed run (event time between its spawn and its kill) tell
whether the kill landed before or after the command's first custody event; with the processes
of its tree at that instant each kill gets a phase: `after_first_custody_event`, `unseal` (the
passphrase's `age --decrypt` running its scrypt), `children_at_work` (pipeline workers,
ffmpeg, the PDF renderer, `age -d` of a blob) or `cli_alone` (imports, opening the catalogue,
walking the source, in-process work before the first event). Processes of the killed tree
still alive after the group kill are counted, with how long they lived on (the unseal's `age`
runs in its own session, on its own pseudo-terminal), and any alive 3 s later is killed by
pid. Leftovers after the re-run: staging files and session dirs in `blobs/.tmp` (ciphertext),
pipeline work dirs in the command's private TMPDIR (plaintext), `.bag.incomplete` folders,
any file in the vault folder that is not a vault file or a blob, and any other TMPDIR file an
uninterrupted run does not leave too; a leftover whose SHA-256 is a source file's, or that
lies in a work dir or an incomplete bag, counts as plaintext.

Why a fresh copy of a prepared vault per round, rather than one vault that keeps growing:
every round then starts from the same known state, so the expected result is exact (the
calibration run's), a failure reproduces from its seed and round without replaying earlier
rounds, and the command's run time and `verify`'s cost do not drift as a vault grows, so the
window measured once stays right. The copies are small (tens of MB). Every round spawns 4–6
whole commands, so the campaign's time is mostly their start-up and unseal: about half an hour
for ~100 kills on 2 cores shared with other work (load average ~7), less on a quiet machine.
No waiting for a quiet machine by default (`--wait-quiet`): the window is measured under the
load the kills then meet. A failed round's folder is kept under
benchmarks/work/crash/ with the commands' output; the reproducer is in the results.

Writes benchmarks/results/crash.json (crash.quick.json with --quick: ~10 kills, smaller
inputs). Generated data lives in benchmarks/work/crash/ (removed afterwards unless --keep or a
round failed).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

from _machine import (
    WORK_ROOT,
    MiB,
    bench_parser,
    goal,
    load_note,
    machine_facts,
    parse_bench_args,
    passphrase_env,
    print_goals,
    result_header,
    strongroom_cli,
    wait_quiet,
    write_results,
)

WORK = WORK_ROOT / "crash"
SCENARIOS = ("ingest", "process", "export")
SEED = 20261201
STEPS = "probe,keyframes,overlay_ocr,perceptual_hash"
ACTOR = "crash campaign"
SECOND_KILL = 0.5  # chance that the first re-run of a round is killed too
KILLS_GOAL = 100
RUN_TIMEOUT_S = 600.0
VAULT_FILES = {"vault.json", "keys.age", "keys-shares.age", "custody-checkpoints.jsonl",
               "vault.lock", "catalogue.db", "catalogue.db-wal", "catalogue.db-shm"}
STAGING_LOCK = "lock"  # strongroom.vault.blobs: held in each staging session dir
WORKDIR_PREFIX = "strongroom-work-"  # strongroom.pipeline.worker: one per original
WORKDIR_NOTES = {".lock", ".task"}


@dataclass(frozen=True)
class Plan:
    ingest_kills: int
    process_kills: int
    export_kills: int
    small_files: int
    big_files: int
    big_size: int
    clips: int
    calibration_runs: int

    def kills(self, family: str) -> int:
        return int(getattr(self, f"{family}_kills"))


FULL = Plan(ingest_kills=34, process_kills=34, export_kills=34, small_files=300, big_files=2,
            big_size=8 * MiB, clips=4, calibration_runs=3)
QUICK = Plan(ingest_kills=4, process_kills=3, export_kills=3, small_files=40, big_files=1,
             big_size=2 * MiB, clips=2, calibration_runs=2)


# -- running and killing whole commands ------------------------------------------------------
@dataclass
class Run:
    """One spawn of a command: how it ended, when, and what it printed."""

    argv: list[str]
    seconds: float
    exit_code: int
    spawned: datetime
    ended: datetime
    stdout: str
    stderr: str
    kill_at: float | None = None
    killed: bool = False
    tree: list[str] = field(default_factory=list)  # its processes just before the kill
    survivors: list[str] = field(default_factory=list)  # alive after the group kill
    survived_seconds: float = 0.0  # until the last survivor was gone
    stubborn: list[str] = field(default_factory=list)  # still alive 3 s later (killed by pid)
    events: int = 0  # custody events it committed before it died

    def json_out(self) -> Any:
        try:
            return json.loads(self.stdout)
        except ValueError:
            return None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seconds": round(self.seconds, 3), "exit_code": self.exit_code}
        if self.kill_at is not None:
            out |= {"kill_at": round(self.kill_at, 3), "killed": self.killed,
                    "processes_at_kill": self.tree}
        if self.survivors:
            out |= {"survived_group_kill": self.survivors,
                    "survivors_gone_after_seconds": round(self.survived_seconds, 2)}
        if self.stubborn:
            out["alive_3s_after_kill"] = self.stubborn
        if self.exit_code not in (0, -signal.SIGKILL):
            out["stderr_tail"] = self.stderr[-600:]
        return out


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _alive(procs: Sequence[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for p in procs:
        with contextlib.suppress(psutil.Error):
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
    return alive


def _name(p: psutil.Process) -> str:
    try:
        argv = p.cmdline()[:3]
    except psutil.Error:
        return str(p.pid)
    return " ".join([str(p.pid), *(Path(a).name if i == 0 else a for i, a in enumerate(argv))])


def _program(p: psutil.Process) -> str:
    """What a process of the tree is: `age --decrypt` is the unseal (scrypt, on its own
    pseudo-terminal), `age -d` a blob being decrypted, `python` a pipeline worker or the PDF
    renderer."""
    try:
        argv = p.cmdline()
    except psutil.Error:
        return "?"
    name = Path(argv[0]).name if argv else "?"
    if name.startswith("python"):
        return "python"
    if name == "age" and len(argv) > 1:
        return f"age {argv[1]}"
    return name


def phase(events: int, programs: Sequence[str]) -> str:
    """Where a kill landed, from what it left in the custody log and what was running."""
    if events:
        return "after_first_custody_event"
    if "age --decrypt" in programs or "setsid" in programs:  # setsid only starts the unseal
        return "unseal"
    if programs:
        return "children_at_work"
    return "cli_alone"


def run(argv: Sequence[str], env: Mapping[str, str], logs: Path, label: str,
        kill_at: float | None = None) -> Run:
    """Spawn `argv` in its own session; with `kill_at`, SIGKILL its process group that many
    seconds after the spawn (unless it has exited by then)."""
    logs.mkdir(parents=True, exist_ok=True)
    out_path, err_path = logs / f"{label}.out", logs / f"{label}.err"
    tree: list[psutil.Process] = []
    programs: list[str] = []
    killed_at: float | None = None
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        spawned = datetime.now(UTC)
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                env=dict(env), start_new_session=True)
        deadline = t0 + (kill_at if kill_at is not None else RUN_TIMEOUT_S)
        while proc.poll() is None:
            left = deadline - time.perf_counter()
            if left <= 0:
                tree = _tree(proc.pid)
                programs = [_program(p) for p in tree[1:]]  # a killed one's cmdline is gone
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                killed_at = time.perf_counter() - t0
                proc.wait()
                break
            time.sleep(min(left, 0.005))
        seconds = time.perf_counter() - t0
        ended = datetime.now(UTC)
    rc = proc.returncode
    r = Run(argv=list(argv), seconds=seconds, exit_code=rc, spawned=spawned, ended=ended,
            stdout=out_path.read_text(errors="replace"),
            stderr=err_path.read_text(errors="replace"), kill_at=kill_at,
            killed=killed_at is not None and rc == -signal.SIGKILL,
            tree=programs)
    if kill_at is None and killed_at is not None:
        raise RuntimeError(f"{label}: {' '.join(argv[:3])} ... still running after "
                           f"{RUN_TIMEOUT_S:.0f} s (killed)")
    if tree:
        time.sleep(0.2)
        left_alive = _alive(tree[1:])
        r.survivors = [_name(p) for p in left_alive]
        watched = time.monotonic()
        while left_alive and time.monotonic() < watched + 3.0:
            time.sleep(0.05)
            left_alive = _alive(left_alive)
        r.survived_seconds = 0.2 + time.monotonic() - watched if r.survivors else 0.0
        r.stubborn = [_name(p) for p in left_alive]
        for p in left_alive:  # our own descendants, by pid
            with contextlib.suppress(psutil.Error):
                p.kill()
    return r


# -- inputs and prepared vaults ---------------------------------------------------------------
def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            h.update(chunk)
    return h.hexdigest()


def tree_digests(root: Path) -> dict[str, str]:
    """Every regular file under `root`: relative path → SHA-256."""
    return {p.relative_to(root).as_posix(): sha256_file(p)
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


def checked(argv: Sequence[str], env: Mapping[str, str]) -> str:
    res = subprocess.run(list(argv), env=dict(env), capture_output=True, text=True, check=False,
                         stdin=subprocess.DEVNULL)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} ... failed (exit {res.returncode}): "
                           f"{res.stderr[-500:]}")
    return res.stdout


def write_ingest_sources(root: Path, plan: Plan, seed: int) -> tuple[Path, Path]:
    """An earlier stick (ingested into the prepared vault) and the stick the rounds ingest."""
    rnd = random.Random(f"{seed}:ingest-data")
    earlier, stick = root / "stick-0", root / "stick-1"
    for i in range(6):
        path = earlier / f"CH0{i % 2}" / f"early-{i}.h264"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rnd.randbytes(rnd.choice([8, 32, 96]) * 1024))
    for i in range(plan.small_files):
        path = stick / "DVR" / f"ch{i % 4}" / f"{i:04d}.h264"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rnd.randbytes(rnd.choice([4, 16, 64, 128]) * 1024))
    for i in range(plan.big_files):  # in the middle of the walk order
        (stick / "DVR" / "ch1" / f"0050-big-{i}.dav").write_bytes(rnd.randbytes(plan.big_size))
    shutil.copy2(stick / "DVR" / "ch0" / "0000.h264", stick / "dup-of-0000.h264")
    shutil.copy2(earlier / "CH00" / "early-0.h264", stick / "also-on-stick-0.h264")
    return earlier, stick


def write_clips(root: Path, plan: Plan, seed: int) -> Path:
    from strongroom.testmedia import ClipSpec, ClockFormat, generate_clip

    rnd = random.Random(f"{seed}:clips")
    formats: list[ClockFormat] = ["DD-MM-YYYY", "YYYY/MM/DD", "DD.MM.YYYY"]
    labels = ["КАМ 03 ПФРСИ", "КАМ 07 ОТБ-1", "КАМ 11 ИК-10", "КПП-2 ВЪЕЗД"]
    folder = root / "clips"
    for i in range(plan.clips):
        start = datetime(2021, 5, 6, 8, 0) + timedelta(seconds=rnd.randrange(300 * 86400))
        generate_clip(ClipSpec(
            name=f"cam{i:02d}.mp4", duration=3 + i % 2, camera_label=labels[i % len(labels)],
            clock_start=start, clock_format=formats[i % len(formats)], source="life",
            seed=seed % 1000 + i, size=(384, 288)), folder)
    return folder


# -- the custody log, read through the CLI ---------------------------------------------------
def event_time(ev: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(str(ev["time"]))


def details(ev: Mapping[str, Any]) -> dict[str, Any]:
    d = ev.get("details")
    return d if isinstance(d, dict) else {}


def originals_of(log: Sequence[Mapping[str, Any]]) -> Counter[str]:
    return Counter(str(details(e).get("sha256")) for e in log if e["action"] == "ingested")


def multiset_diff(got: Counter[Any], want: Counter[Any]) -> tuple[list[Any], list[Any]]:
    """(missing, extra): what `want` has that `got` lacks, and what `got` has twice or more."""
    missing = sorted((want - got).elements(), key=str)
    extra = sorted((got - want).elements(), key=str)
    return missing, extra


# -- one family: its vault, its command, its checks ------------------------------------------
@dataclass
class Outcome:
    """What a round's checks found."""

    lost: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Family:
    name: str
    base: Path  # the prepared vault every round copies
    argv: Callable[[Path, Path], list[str]]  # (vault, out dir) → the command
    sources: dict[str, str] = field(default_factory=dict)  # every file given to the vault
    base_seq: int = 0  # the prepared vault's last custody event
    reference: dict[str, Any] = field(default_factory=dict)


def new_events(fam: Family, log: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [e for e in log if int(e["seq"]) > fam.base_seq]


def check_originals(fam: Family, log: Sequence[Mapping[str, Any]], o: Outcome) -> None:
    """The originals are exactly the source files' SHA-256s, each ingested once."""
    got = originals_of(log)
    want = Counter(set(fam.sources.values()))
    missing, extra = multiset_diff(got, want)
    o.lost += [f"original {s}" for s in missing]
    o.duplicates += [f"original {s} ingested again" for s in extra if s in want]
    o.problems += [f"original {s} is no source file's" for s in extra if s not in want]


def check_ingest(fam: Family, log: Sequence[Mapping[str, Any]], final: Run, out: Path,
                 o: Outcome) -> None:
    check_originals(fam, log, o)
    new = new_events(fam, log)
    acquired = [e for e in new if e["action"] == "acquired"]
    if len(acquired) != 1:
        o.duplicates.append(f"{len(acquired)} acquisitions recorded for one source")
    report = final.json_out()
    if isinstance(report, dict):
        o.notes["rerun"] = {k: report.get(k) for k in
                            ("new_originals", "already_ingested", "duplicates", "errors")}
        if report.get("errors"):
            o.problems.append(f"the re-run reported errors: {report.get('error_list')}")
    got = Counter((str(details(e).get("path")), str(details(e).get("original")))
                  for e in new if e["action"] == "sighted")
    want = Counter((k, v) for k, v in fam.reference["stick"].items())
    missing, extra = multiset_diff(got, want)
    o.lost += [f"sighting {p} ({s[:12]})" for p, s in missing]
    o.duplicates += [f"sighting {p} ({s[:12]}) twice" for p, s in extra]


Triple = tuple[str, str, str]


def step_events(new: Sequence[Mapping[str, Any]]) -> tuple[Counter[Triple], Counter[Triple]]:
    analysed = Counter((str(e["subject"]).removeprefix("original:"),
                        str(details(e).get("step")), str(details(e).get("status")))
                       for e in new if e["action"] == "analysed")
    derived = Counter((str(e["subject"]).removeprefix("original:"),
                       str(details(e).get("step")), str(details(e).get("kind")))
                      for e in new if e["action"] == "derived")
    return analysed, derived


def check_process(fam: Family, log: Sequence[Mapping[str, Any]], final: Run, out: Path,
                  o: Outcome) -> None:
    check_originals(fam, log, o)
    analysed, derived = step_events(new_events(fam, log))
    for what, got, want in (("analysis", analysed, fam.reference["analysed"]),
                            ("derivative", derived, fam.reference["derived"])):
        missing, extra = multiset_diff(got, want)
        o.lost += [f"{what} {' '.join(k)}" for k in missing]
        o.duplicates += [f"{what} {' '.join(k)} twice" for k in extra]
    report = final.json_out()
    if isinstance(report, dict):
        o.notes["rerun"] = {"ran": report.get("ran"), "errors": report.get("errors"),
                            "worker_deaths": report.get("worker_deaths")}
        if report.get("errors"):
            o.problems.append(f"the re-run reported step errors: {report.get('error_list')}")


def bag_id_of(bag: Path) -> str | None:
    with contextlib.suppress(OSError):
        for line in (bag / "bag-info.txt").read_text().splitlines():
            if line.startswith("External-Identifier:"):
                return line.split(":", 1)[1].strip()
    return None


def check_export(fam: Family, log: Sequence[Mapping[str, Any]], final: Run, out: Path,
                 o: Outcome) -> None:
    check_originals(fam, log, o)
    bag = out / "bag"
    bag_id = bag_id_of(bag)
    exported = Counter(str(details(e).get("bag_id")) for e in new_events(fam, log)
                       if e["action"] == "exported")
    o.notes["bag_id"] = bag_id
    if bag_id is None:
        o.lost.append("the export's bag (no bag/bag-info.txt after the re-run)")
    elif exported[bag_id] > 1:
        o.duplicates.append(f"{exported[bag_id]} exported events for {bag_id}")
    elif exported[bag_id] == 0:
        o.notes["bag_without_exported_event"] = bag_id
    others = sorted(k for k in exported if k != bag_id)
    if others:
        o.problems.append(f"exported events for bags that are not on disk: {others}")


# -- leftovers --------------------------------------------------------------------------------
def scan_leftovers(vault: Path, tmp: Path, out: Path, source_shas: set[str],
                   normal: set[str]) -> dict[str, Any]:
    """What the killed runs left that the re-run did not remove (`normal`: TMPDIR files an
    uninterrupted run leaves too)."""
    found: dict[str, list[str]] = {"staging_files": [], "staging_dirs": [], "workdirs": [],
                                   "incomplete_bags": [], "unexpected_vault_files": [],
                                   "tmp_files": [], "plaintext_files": []}
    plaintext_places: list[Path] = []
    for p in sorted(vault.rglob("*")):
        parts = p.relative_to(vault).parts
        if len(parts) == 1 and (parts[0] in VAULT_FILES or parts[0] == "blobs"):
            continue
        blob_dir = len(parts) == 2 and p.is_dir() and len(parts[1]) == 2
        blob = len(parts) == 3 and p.is_file() and len(parts[2]) == 64
        if parts[0] == "blobs" and parts[1] != ".tmp" and (blob_dir or blob):
            continue
        if parts[:2] == ("blobs", ".tmp"):
            if len(parts) == 2:
                continue
            if len(parts) == 3 and p.is_dir():
                if not [c for c in p.iterdir() if c.name != STAGING_LOCK]:
                    found["staging_dirs"].append(p.name)
                continue
            if p.name != STAGING_LOCK:
                found["staging_files"].append("/".join(parts[2:]))
                plaintext_places.append(p)  # ciphertext, unless its digest says otherwise
            continue
        if p.is_file() or p.is_symlink():
            found["unexpected_vault_files"].append("/".join(parts))
            plaintext_places.append(p)
    for p in sorted(tmp.rglob("*")):
        rel = p.relative_to(tmp).parts
        if rel[0].startswith(WORKDIR_PREFIX):
            if len(rel) == 1:
                found["workdirs"].append(rel[0])
            elif p.is_file() and p.name not in WORKDIR_NOTES:
                found["plaintext_files"].append("TMPDIR/" + "/".join(rel))
        elif p.is_file() and "/".join(rel) not in normal:
            found["tmp_files"].append("/".join(rel))
            plaintext_places.append(p)
    for p in sorted(out.iterdir()):
        if p.name != "bag":
            found["incomplete_bags"].append(p.name)
            found["plaintext_files"] += [f"{p.name}/{f.relative_to(p)}" for f in p.rglob("*")
                                         if f.is_file()]
    for p in plaintext_places:
        with contextlib.suppress(OSError):
            if p.is_file() and not p.is_symlink() and sha256_file(p) in source_shas:
                found["plaintext_files"].append(str(p.relative_to(p.parents[1])))
    return {"counts": {k: len(v) for k, v in found.items()},
            "names": {k: v[:10] for k, v in found.items() if v}}


# -- a round -----------------------------------------------------------------------------------
CHECKS: dict[str, Callable[[Family, Sequence[Mapping[str, Any]], Run, Path, Outcome], None]] = {
    "ingest": check_ingest, "process": check_process, "export": check_export}


def kill_plan(seed: int, family: str, index: int, window: float) -> list[float]:
    """The round's kill instants (seconds after spawn): one, sometimes two."""
    rnd = random.Random(f"{seed}:{family}:{index}")
    kills = [rnd.uniform(0, window)]
    if rnd.random() < SECOND_KILL:
        kills.append(rnd.uniform(0, window))
    return kills


def fresh_round(fam: Family, label: str) -> tuple[Path, Path, Path, Path, dict[str, str]]:
    rd = WORK / fam.name / label
    shutil.rmtree(rd, ignore_errors=True)
    (rd / "tmp").mkdir(parents=True)
    (rd / "out").mkdir()
    vault = rd / "vault"
    shutil.copytree(fam.base, vault, symlinks=True)
    env = passphrase_env(TMPDIR=str(rd / "tmp"), STRONGROOM_ACTOR=ACTOR)
    return rd, vault, rd / "tmp", rd / "out", env


def crash_round(fam: Family, index: int, window: float, seed: int,
                say: Callable[[str], None]) -> dict[str, Any]:
    cli = strongroom_cli()
    rd, vault, tmp, out, env = fresh_round(fam, f"round-{index:03d}")
    argv = fam.argv(vault, out)
    logs = rd / "logs"
    kills: list[Run] = []
    for n, at in enumerate(kill_plan(seed, fam.name, index, window)):
        r = run(argv, env, logs, f"killed-{n}", kill_at=at)
        kills.append(r)
        if fam.name == "export" and (out / "bag").exists():
            break  # complete: any further run refuses the existing bag
    killed_bag = bag_id_of(out / "bag") if fam.name == "export" else None
    final = run(argv, env, logs, "rerun")
    o = Outcome()
    rerun_ok = final.exit_code == 0
    if not rerun_ok and killed_bag is not None and final.exit_code == 2 \
            and "already exists" in final.stderr:
        o.notes["rerun_refused_complete_bag"] = killed_bag
        rerun_ok = True  # by design: a bag is never replaced
    if not rerun_ok:
        o.problems.append(f"re-run failed (exit {final.exit_code}): {final.stderr[-300:]}")
    verify = run([cli, "verify", str(vault), "--json"], env, logs, "verify")
    report = verify.json_out()
    verify_ok = verify.exit_code == 0 and isinstance(report, dict) and report.get("ok") is True
    if not verify_ok:
        o.problems.append(f"verify failed (exit {verify.exit_code}): "
                          f"{(report or {}).get('problems') if isinstance(report, dict) else ''}"
                          f" {verify.stderr[-300:]}")
    verify_warnings = report.get("warnings", []) if isinstance(report, dict) else []
    export_ok: bool | None = None
    if fam.name == "export":
        vx = run([cli, "verify-export", str(out / "bag"), "--json"], env, logs, "verify-export")
        vx_report = vx.json_out()
        export_ok = vx.exit_code == 0 and isinstance(vx_report, dict) and vx_report.get("ok")
        if not export_ok:
            o.problems.append(f"verify-export of the bag failed (exit {vx.exit_code}): "
                              f"{vx.stdout[-300:]} {vx.stderr[-200:]}")
    log_run = run([cli, "log", str(vault), "--json"], env, logs, "log")
    log = log_run.json_out()
    if log_run.exit_code != 0 or not isinstance(log, list):
        o.problems.append(f"log failed (exit {log_run.exit_code}): {log_run.stderr[-300:]}")
        log = []
    else:
        CHECKS[fam.name](fam, log, final, out, o)
    for r in kills:  # custody events the killed run committed before it died
        r.events = sum(1 for e in log if int(e["seq"]) > fam.base_seq
                       and r.spawned <= event_time(e) <= r.ended)
    leftovers = scan_leftovers(vault, tmp, out, set(fam.sources.values()),
                               set(fam.reference["tmp_baseline"]))
    failed = bool(o.problems or o.lost or o.duplicates)
    landed = [r for r in kills if r.killed]
    result: dict[str, Any] = {
        "round": index,
        "kills": [r.to_json() | {"window_fraction": round((r.kill_at or 0) / window, 3),
                                 "custody_events_before_kill": r.events,
                                 "phase": phase(r.events, r.tree)}
                  for r in kills],
        "rerun": final.to_json() | o.notes,
        "verify_ok": verify_ok,
        "verify_warnings": verify_warnings,
        "leftovers": leftovers["counts"],
    }
    if export_ok is not None:
        result["verify_export_ok"] = export_ok
    if leftovers["names"]:
        result["leftover_names"] = leftovers["names"]
    if o.lost:
        result["lost"] = o.lost[:20] + ([f"… {len(o.lost)} in all"] if len(o.lost) > 20 else [])
    if o.duplicates:
        result["duplicates"] = o.duplicates[:20]
    if o.problems:
        result["problems"] = o.problems
    finding = o.notes.get("bag_without_exported_event")
    if finding:
        result["finding"] = (f"a complete bag that verifies ({finding}) has no `exported` event "
                             "in the custody log: the kill came between its rename into place "
                             "and the event; the re-run refuses the existing folder (every "
                             "time: SIGKILL the export as soon as OUT/bag exists)")
    if failed or finding:
        result["reproducer"] = {
            "seed": seed, "family": fam.name, "round": index, "window_seconds": round(window, 3),
            "kill_at_seconds": [round(r.kill_at or 0, 3) for r in kills],
            "command": [Path(a).name if i == 0 else a for i, a in enumerate(argv)],
            "replay": f"python benchmarks/crash.py --seed {seed} --replay {fam.name}:{index} "
                      f"--window {window:.3f}"}
        if failed:
            result["reproducer"]["kept"] = str(rd.relative_to(WORK_ROOT.parent.parent))
    if not failed:
        shutil.rmtree(rd, ignore_errors=True)
    first = kills[0]
    say(f"  {fam.name} {index:3d}: kill at {first.kill_at or 0:5.2f} s of {window:.2f}"
        + (f" (+{kills[1].kill_at or 0:.2f} s)" if len(kills) > 1 else "")
        + f" → {'killed' if first.killed else f'exit {first.exit_code}'} "
        f"({phase(first.events, first.tree)}); re-run exit {final.exit_code} "
        f"{final.seconds:.1f} s; verify {'ok' if verify_ok else 'FAILED'}"
        + (f"; lost {len(o.lost)}" if o.lost else "")
        + (f"; dup {len(o.duplicates)}" if o.duplicates else "")
        + (f"; leftovers {sum(leftovers['counts'].values())}"
           if sum(leftovers["counts"].values()) else "")
        + ("  FAILED: " + "; ".join(o.problems)[:300] if o.problems else "")
        + (f"  FINDING: bag {finding} has no `exported` event" if finding else "")
        + ("" if landed or len(kills) > 1 else "  (finished before the kill)"))
    return result


# -- families ----------------------------------------------------------------------------------
def calibrate(fam: Family, runs: int, say: Callable[[str], None]) -> tuple[float, list[float]]:
    """Run the command uninterrupted on fresh copies; the first is also the reference state.
    Returns the median wall time (the kill window) and every run's seconds."""
    cli = strongroom_cli()
    seconds = []
    for n in range(runs):
        rd, vault, tmp, out, env = fresh_round(fam, f"calibration-{n}")
        r = run(fam.argv(vault, out), env, rd / "logs", "run")
        if r.exit_code != 0:
            raise RuntimeError(f"{fam.name} calibration run failed: {r.stderr[-500:]}")
        seconds.append(r.seconds)
        if n == 0:  # the same checks as after a kill: the reference, and what is normal
            checked([cli, "verify", str(vault), "--json"], env)
            if fam.name == "export":
                checked([cli, "verify-export", str(out / "bag"), "--json"], env)
            log = json.loads(checked([cli, "log", str(vault), "--json"], env))
            reference_state(fam, log, vault)
            times = [(event_time(e) - r.spawned).total_seconds() for e in new_events(fam, log)
                     if event_time(e) <= r.ended]
            fam.reference["custody_events_at_seconds"] = [round(min(times), 3),
                                                          round(max(times), 3)]
            fam.reference["tmp_baseline"] = sorted(
                p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
        if n > 0 or fam.name != "process":
            shutil.rmtree(rd, ignore_errors=True)
    window = statistics.median(seconds)
    first, last = fam.reference["custody_events_at_seconds"]
    say(f"{fam.name}: window {window:.2f} s (median of {runs} uninterrupted runs: "
        + ", ".join(f"{s:.2f}" for s in seconds) + f" s; {load_note()}); an uninterrupted "
        f"run's custody events from {first:.2f} to {last:.2f} s after spawn")
    return window, seconds


def reference_state(fam: Family, log: list[dict[str, Any]], vault: Path) -> None:
    """What an uninterrupted run leaves, checked against the ground truth."""
    new = new_events(fam, log)
    if fam.name == "ingest":
        want = dict(fam.reference["stick"])
        got = {str(details(e).get("path")): str(details(e).get("original"))
               for e in new if e["action"] == "sighted"}
        if got != want or set(originals_of(log)) != set(fam.sources.values()):
            raise RuntimeError("an uninterrupted ingest does not give the expected vault")
    elif fam.name == "process":
        analysed, derived = step_events(new)
        steps = STEPS.split(",")
        shas = set(originals_of(log))
        want = Counter((s, st, "ok") for s in shas for st in steps)
        if analysed != want:
            raise RuntimeError(f"an uninterrupted process does not run every step ok: "
                               f"{sorted(analysed)} vs {sorted(want)}")
        fam.reference |= {"analysed": analysed, "derived": derived, "vault": vault}


def prepare(name: str, plan: Plan, seed: int, families: dict[str, Family],
            say: Callable[[str], None]) -> Family:
    cli = strongroom_cli()
    env = passphrase_env(STRONGROOM_ACTOR=ACTOR)
    root = WORK / name
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    base = root / "base"
    started = time.perf_counter()
    if name == "ingest":
        earlier, stick = write_ingest_sources(root / "sources", plan, seed)
        checked([cli, "init", str(base), "--json"], env)
        checked([cli, "ingest", str(base), str(earlier), "-a", "USB stick 0, received by A.B."],
                env)
        fam = Family(name, base, lambda v, o: [
            cli, "ingest", str(v), str(stick), "-a", "USB stick 1, SanDisk 64 GB, received by "
            "A.B. 2021-10-14", "--json"])
        fam.reference["stick"] = tree_digests(stick)
        fam.sources = {f"stick-0/{k}": v for k, v in tree_digests(earlier).items()} | {
            f"stick-1/{k}": v for k, v in fam.reference["stick"].items()}
    elif name == "process":
        clips = write_clips(root / "sources", plan, seed)
        checked([cli, "init", str(base), "--json"], env)
        checked([cli, "ingest", str(base), str(clips), "-a", "DVR export, USB stick 2"], env)
        fam = Family(name, base, lambda v, o: [
            cli, "process", str(v), "--steps", STEPS, "--workers", "2", "--json"])
        fam.sources = tree_digests(clips)
    else:  # export: the processed vault of the process family (made here if it did not run)
        proc = families.get("process")
        if proc is None or "vault" not in proc.reference:
            proc = prepare("process", plan, seed, families, say)
            _rd, vault, _tmp, out, penv = fresh_round(proc, "calibration-0")
            checked(proc.argv(vault, out), penv)
        else:
            vault = Path(proc.reference["vault"])
        shutil.copytree(vault, base, symlinks=True)
        fam = Family(name, base, lambda v, o: [
            cli, "export", str(v), "--all", "--include", "derivatives", "--to", str(o),
            "--json"])
        fam.sources = dict(proc.sources)
    log = json.loads(checked([cli, "log", str(base), "--json"], env))
    fam.base_seq = max(int(e["seq"]) for e in log)
    say(f"{name}: prepared vault with {len(set(originals_of(log)))} original(s), "
        f"{fam.base_seq} custody events ({time.perf_counter() - started:.1f} s)")
    return fam


# -- the campaign ------------------------------------------------------------------------------
def summarise(name: str, window: float, calibration: list[float],
              rounds: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    kills = [k for r in rounds for k in r["kills"] if k["killed"]]
    fractions = [k["window_fraction"] for k in kills]
    leftover_totals: Counter[str] = Counter()
    for r in rounds:
        leftover_totals.update(r["leftovers"])
    survivors = [s for r in rounds for k in r["kills"] for s in k.get("survived_group_kill", [])]
    stubborn = [s for r in rounds for k in r["kills"] for s in k.get("alive_3s_after_kill", [])]
    return {
        "window_seconds": round(window, 3),
        "calibration_seconds": [round(s, 3) for s in calibration],
        "rounds": len(rounds),
        "kills": len(kills),
        "second_kills": sum(1 for r in rounds for k in r["kills"][1:] if k["killed"]),
        "finished_before_kill": sum(1 for r in rounds for k in r["kills"] if not k["killed"]),
        "kills_before_first_custody_event": sum(1 for k in kills
                                                if k["custody_events_before_kill"] == 0),
        "kills_after_first_custody_event": sum(1 for k in kills
                                               if k["custody_events_before_kill"] > 0),
        "kills_by_phase": dict(sorted(Counter(k["phase"] for k in kills).items())),
        "kills_by_window_third": [sum(1 for f in fractions if lo <= f < hi)
                                  for lo, hi in ((0, 1 / 3), (1 / 3, 2 / 3), (2 / 3, 1.01))],
        "kill_seconds_min_median_max": [round(min(k["kill_at"] for k in kills), 3),
                                        round(statistics.median(k["kill_at"] for k in kills), 3),
                                        round(max(k["kill_at"] for k in kills), 3)]
        if kills else [],
        "processes_survived_group_kill": len(survivors),
        "survivors_gone_after_seconds_max": max(
            [k.get("survivors_gone_after_seconds", 0.0) for r in rounds for k in r["kills"]],
            default=0.0),
        "processes_alive_3s_after_kill": len(stubborn),
        "reruns_failed": sum(1 for r in rounds
                             if any(p.startswith("re-run failed") for p in r.get("problems", []))),
        "reruns_refused_complete_bag": sum(1 for r in rounds
                                           if "rerun_refused_complete_bag" in r["rerun"]),
        "bags_without_exported_event": sum(1 for r in rounds
                                           if "bag_without_exported_event" in r["rerun"]),
        "verify_failures": sum(1 for r in rounds if not r["verify_ok"]),
        "verify_export_failures": sum(1 for r in rounds if r.get("verify_export_ok") is False),
        "rounds_with_verify_warnings": sum(1 for r in rounds if r["verify_warnings"]),
        "lost_items": sum(len(r.get("lost", [])) for r in rounds),
        "duplicated_items": sum(len(r.get("duplicates", [])) for r in rounds),
        "other_problems": sum(len([p for p in r.get("problems", [])
                                   if not p.startswith(("re-run failed", "verify failed"))])
                              for r in rounds),
        "leftovers_after_rerun": dict(sorted(leftover_totals.items())),
        "failed_rounds": [r["round"] for r in rounds
                          if r.get("problems") or r.get("lost") or r.get("duplicates")],
        "finding_rounds": [r["round"] for r in rounds if "finding" in r],
        "wall_seconds": round(seconds, 1),
    }


def parse_replay(text: str) -> tuple[str, list[int]]:
    family, _, rounds = text.partition(":")
    if family not in SCENARIOS or not rounds:
        raise SystemExit(f"--replay FAMILY:ROUND[,ROUND] (FAMILY one of {', '.join(SCENARIOS)})")
    return family, [int(x) for x in rounds.split(",")]


def main(argv: Sequence[str] | None = None) -> int:
    ap = bench_parser(__doc__, repeat=1, quick_repeat=1, scenarios=SCENARIOS)
    ap.add_argument("--seed", type=int, default=SEED, help=f"campaign seed (default {SEED})")
    ap.add_argument("--replay", default="", metavar="FAMILY:ROUND[,ROUND]",
                    help="run only these rounds of one family (a failure's reproducer)")
    ap.add_argument("--window", type=float, default=None, metavar="SECONDS",
                    help="kill window instead of measuring one (with --replay: the failure's)")
    # no waiting for a quiet machine by default: the window is measured under the same load
    ap.set_defaults(wait_quiet=0.0)
    args = parse_bench_args(ap, argv)
    plan = QUICK if args.quick else FULL
    replay = parse_replay(args.replay) if args.replay else None
    if replay:
        args.scenarios = [replay[0]]
        args.partial = True
    started = time.perf_counter()
    log: list[str] = []

    def say(text: str) -> None:
        log.append(text)
        print(text, flush=True)

    result = result_header("crash", args, machine_facts(
        tools=[["age", "--version"], ["ffmpeg", "-version"]], packages=["strongroom"]))
    result["busy_before_start"] = round(wait_quiet(args.wait_quiet), 3)
    families: dict[str, Family] = {}
    scenarios: dict[str, Any] = {}
    say(f"crash campaign, seed {args.seed}: SIGKILL to the process group at uniform(0, window) "
        "after spawn; re-run, verify, compare the custody log")
    failed_any = False
    try:
        for name in args.scenarios:
            t0 = time.perf_counter()
            fam = families[name] = prepare(name, plan, args.seed, families, say)
            window, calibration = calibrate(fam, 1 if args.window else plan.calibration_runs,
                                            say)
            if args.window:
                window = args.window
            rounds: list[dict[str, Any]] = []
            indices = replay[1] if replay else None
            index = 0
            while True:
                if indices is not None:
                    if index >= len(indices):
                        break
                    i = indices[index]
                else:
                    landed = sum(1 for r in rounds for k in r["kills"] if k["killed"])
                    if landed >= plan.kills(name) or index >= 3 * plan.kills(name):
                        break
                    i = index
                rounds.append(crash_round(fam, i, window, args.seed, say))
                index += 1
            summary = summarise(name, window, calibration, rounds, time.perf_counter() - t0)
            summary |= {
                "uninterrupted_custody_events_at_seconds":
                    fam.reference["custody_events_at_seconds"],
                "tmp_files_an_uninterrupted_run_leaves": fam.reference["tmp_baseline"]}
            failed_any |= bool(summary["failed_rounds"])
            scenarios[name] = {"summary": summary, "rounds": rounds}
            say(f"{name}: {summary['kills']} kills in {summary['rounds']} rounds "
                f"({summary['kills_before_first_custody_event']} before the first custody "
                f"event; by phase {summary['kills_by_phase']}); re-runs failed "
                f"{summary['reruns_failed']}, verify failures "
                f"{summary['verify_failures']}, lost {summary['lost_items']}, duplicated "
                f"{summary['duplicated_items']}, leftovers {summary['leftovers_after_rerun']}; "
                f"{summary['wall_seconds']:.0f} s")
    finally:
        if not (args.keep or failed_any):
            shutil.rmtree(WORK, ignore_errors=True)
    totals = {k: sum(s["summary"][k] for s in scenarios.values()) for k in (
        "kills", "finished_before_kill", "kills_before_first_custody_event",
        "kills_after_first_custody_event", "processes_survived_group_kill",
        "processes_alive_3s_after_kill", "reruns_failed", "verify_failures",
        "verify_export_failures", "lost_items", "duplicated_items", "other_problems",
        "bags_without_exported_event", "reruns_refused_complete_bag")}
    leftovers: Counter[str] = Counter()
    phases: Counter[str] = Counter()
    for s in scenarios.values():
        leftovers.update(s["summary"]["leftovers_after_rerun"])
        phases.update(s["summary"]["kills_by_phase"])
    totals["leftovers_after_rerun"] = dict(sorted(leftovers.items()))
    totals["kills_by_phase"] = dict(sorted(phases.items()))
    total_seconds = time.perf_counter() - started
    goals: list[dict[str, Any]] = []
    if not (args.partial or args.quick):
        goal(goals, "SIGKILLs landed during ingest, process and export", totals["kills"],
             KILLS_GOAL, "min")
    goal(goals, "re-runs after a kill that failed", totals["reruns_failed"], 0, "max")
    goal(goals, "`verify` / `verify-export` failures after a kill",
         totals["verify_failures"] + totals["verify_export_failures"], 0, "max")
    goal(goals, "items lost (originals, sightings, analyses, derivatives, bags)",
         totals["lost_items"], 0, "max")
    goal(goals, "items recorded twice by a re-run", totals["duplicated_items"], 0, "max")
    goal(goals, "complete bags with no `exported` event in the custody log",
         totals["bags_without_exported_event"], 0, "max")
    goal(goals, "plaintext files left after the re-run",
         totals["leftovers_after_rerun"].get("plaintext_files", 0), 0, "max")
    print_goals(goals)
    result |= {
        "method": {
            "commands": "each a whole `strongroom` process (.venv/bin/strongroom, passphrase "
                        "in STRONGROOM_PASSPHRASE, STRONGROOM_ACTOR set, TMPDIR private per "
                        "round), spawned in a new session",
            "kill": "SIGKILL to the whole process group at uniform(0, window) seconds after "
                    "spawn (5 ms polling); window = median wall time of `calibration_runs` "
                    "uninterrupted runs on fresh copies; with probability "
                    f"{SECOND_KILL} the first re-run is killed too; instants from "
                    "random.Random(f'{seed}:{family}:{round}')",
            "vaults": "a fresh copy of a prepared vault per round (same known start state: "
                      "exact expected result, rounds reproducible alone, no drift of run time "
                      "or verify cost)",
            "after": "the same command re-run to completion, then `verify --json` (and "
                     "`verify-export --json` for export), then `log --json` compared with "
                     "the uninterrupted run: originals = source files' SHA-256s, one "
                     "sighting per source file, every step's analysis and derivatives once, "
                     "one `exported` event for the bag on disk",
            "custody_events_before_kill": "events of the killed run: event time between "
                                          "its spawn and its kill",
            "leftovers": "after the re-run: blobs/.tmp staging files and dirs, pipeline work "
                         "dirs in TMPDIR, .bag.incomplete folders, unexpected files in the "
                         "vault folder, other TMPDIR files; plaintext = SHA-256 of a source "
                         "file, or inside a work dir or an incomplete bag",
            "steps": STEPS,
            "plan": dict(vars(plan)),
        },
        "seed": args.seed,
        "replay": args.replay or None,
        "log": log, "totals": totals, "scenarios": scenarios, "goals": goals,
        "all_goals_pass": all(g["pass"] for g in goals),
        "total_seconds": round(total_seconds, 1),
    }
    only = ([*args.scenarios, "replay"] if replay else args.scenarios) if args.partial else ()
    write_results("crash", args.quick, result, only)
    return 0 if result["all_goals_pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
