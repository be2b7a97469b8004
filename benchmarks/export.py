"""Export throughput and memory: `strongroom export` / `verify-export` against bagit.py.

Scenarios (`--only export,rss_flat,breakdown`): 1–3 below are `export`, 4 is `rss_flat` (it
reuses the whole-set peaks when `export` ran first, else measures them itself), 5 is
`breakdown`.

What it measures, in one run, on data generated here (deterministic seed, distinct random
content per file; ≥ 2 GB: three 256–512 MiB files, ~32 files of 8–64 MiB and 200 files of
4–200 KB in a few sub-folders, ingested once into a vault made with the library API):

1. **Export** — `strongroom.export.bag.export(vault, dest, ExportOptions(everything=True))`
   (in-process API, default `workers=2`): each original decrypted once by `age -d`, its
   SHA-256 checked and its SHA-512 computed from the same read, written to
   `data/originals/` and fdatasync'ed; then metadata, custody extract, HTML and (default
   `pdf=True`, WeasyPrint) PDF reports in two languages, tag manifests and their Ed25519
   signatures. The same export with `pdf=False` is reported next to it (no goal), so the
   payload streaming and the report rendering can be told apart. Every export runs on a
   fresh copy of the ingested vault (catalogue copied, blobs hard-linked, untimed): an export
   records an `exported` event, and later exports show earlier ones in their custody extract
   and reports, so exports of one vault would otherwise grow from run to run.
   Anchor: `bagit.py --processes 2 DIR` (bagit-python, default algorithms SHA-256 + SHA-512,
   confirmed from the manifests it writes) making a bag in place of a fresh hard-linked copy
   (`cp -al`, untimed) of the same plaintext files. Goal: export throughput ≥ 0.8× bagit's,
   although export also decrypts (and writes the payload, which bagit, bagging in place,
   does not).
2. **Verify** — `strongroom.export.verifier.verify_bag(bag, workers=2)` on that bag (it must be
   `.ok`) vs `bagit.py --validate --processes 2` on bagit's bag. Goal ≥ 1.2× bagit's.
3. **Encrypted export** (no goal) — the same export with
   `recipients=[vault's age recipient]` (PDF reports on): one POSIX tar stream piped
   through a single `age -r` (originals one after another: no parallel workers).
4. **Memory** — peak RSS (VmHWM) of export and verify, each run in a fresh spawned process so
   the number is theirs alone. For export the high-water mark is reset after the vault is
   unlocked (`5 > /proc/self/clear_refs`), so start-up + scrypt key unlock are reported
   separately (and the RSS when `export()` was called: imports + open vault). "Flat": ≤ 200
   MB, and the peak for the whole data set is within 16 MB of the peak for a subset of ~1/20
   of it (a few mid-sized originals, so both workers are busy). `age` children not counted.
5. **Context** — `age -d` of the largest blob alone (one process, to /dev/null) and Python
   hashlib SHA-256, SHA-512 and both from one read over the plaintext (1 and 2 threads: bagit's
   per-process work, and the ceiling of hashing both algorithms on both cores). And where
   export's time goes: every blob through `age -d` two at a time (decryption alone), then
   `Vault._decrypt_blob(sha512=True)` two at a time (decryption + both digests, no writes), then
   the plaintext copied file by file with fdatasync, two at a time (the write side alone).

Throughput is always plaintext bytes of the originals (the same bytes for every tool; 1 MB =
10^6 bytes) over wall-clock seconds. strongroom's export time is the wall-clock of the
`export()` call (its report's `seconds`, which stops before the `exported` custody event is
committed, is reported too); neither includes Python start-up or the ~2 s scrypt key unlock.

Fairness: before every timed run its inputs are read once (page cache warm: every run reads
from RAM); between runs outputs are deleted and the filesystem synced (untimed). strongroom's
export makes its files durable (fdatasync per file) inside its timing; bagit writes only its
small tag files and does not sync. Best of `--repeat` (default 2; 1 with --quick) per tool.
CPU used by other processes during each run is recorded; above 5 % of the machine the output
warns that the numbers are noisy.

Prints a compact table and writes benchmarks/results/export.json (export.quick.json with
--quick) holding every number, the goals and pass/fail per goal. Generated data and the vault
live in benchmarks/work/export/ (removed afterwards unless --keep; with --keep an identical
plan's data and vault are reused). `--quick` (~100 MB, a smoke test) gives ratios dominated by
fixed costs that mean little. STRONGROOM_* settings in the environment reach the vault.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _machine import (
    PASSPHRASE,
    WORK_ROOT,
    Content,
    CpuWatch,
    Timed,
    bench_parser,
    best,
    goal,
    machine_facts,
    mbps,
    noise_note,
    parse_bench_args,
    print_goals,
    result_header,
    settle,
    source_state,
    wait_quiet,
    warm,
    write_results,
)

# Export and verify run in spawned children, and a spawned process re-imports this module as
# __mp_main__: strongroom is therefore imported inside the functions that use it, never here,
# so a child pays only for the imports its own run needs (and its peak RSS shows only those).
if TYPE_CHECKING:
    from strongroom.vault import Vault

WORK = WORK_ROOT / "export"
MiB = 1 << 20
SCENARIOS = ("export", "rss_flat", "breakdown")
SEED = 20240611
RSS_LIMIT_MB = 200.0
RSS_FLAT_MB = 16.0  # allowed growth of the peak from a ~1/20 subset to the whole data set
WORKERS = 2


# -- data set -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    big: tuple[int, ...]
    mid_count: int
    mid_range: tuple[int, int]
    small_count: int
    small_range: tuple[int, int]
    min_total: int
    dirs: int
    subset_bytes: int  # the RSS-flatness subset: mid-sized originals adding up to about this


FULL = Plan(big=(512 * MiB, 384 * MiB, 256 * MiB), mid_count=32, mid_range=(8 * MiB, 64 * MiB),
            small_count=200, small_range=(4_000, 200_000), min_total=2_000_000_000, dirs=6,
            subset_bytes=120_000_000)
QUICK = Plan(big=(48 * MiB,), mid_count=5, mid_range=(4 * MiB, 12 * MiB), small_count=24,
             small_range=(4_000, 200_000), min_total=0, dirs=3, subset_bytes=8_000_000)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def total_bytes(files: Sequence[Path]) -> int:
    return sum(p.stat().st_size for p in files)


def make_dataset(plan: Plan, folder: Path, seed: int) -> None:
    """Big, mid and small files shuffled over a few sub-folders, named like DVR exports."""
    rng = random.Random(seed)
    content = Content(seed)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    sizes = [("big", s) for s in plan.big]
    sizes += [("mid", rng.randint(*plan.mid_range)) for _ in range(plan.mid_count)]
    sizes += [("small", rng.randint(*plan.small_range)) for _ in range(plan.small_count)]
    while sum(s for _, s in sizes) < plan.min_total:
        sizes.append(("mid", rng.randint(*plan.mid_range)))
    rng.shuffle(sizes)
    for k, (kind, size) in enumerate(sizes):
        ext = "bin" if kind == "small" else "mp4"
        content.write(folder / f"cam{k % plan.dirs:02d}" / f"{kind}-{k:05d}.{ext}", size)


def load_or_make(plan: Plan, folder: Path, seed: int, reuse: bool) -> tuple[list[Path], float]:
    manifest = folder.with_name(folder.name + ".manifest.json")
    want = {"plan": asdict(plan), "seed": seed}
    if reuse and manifest.exists() and json.loads(manifest.read_text()) == want:
        return files_under(folder), 0.0
    manifest.unlink(missing_ok=True)
    t = time.perf_counter()
    make_dataset(plan, folder, seed)
    os.sync()
    manifest.write_text(json.dumps(want))
    return files_under(folder), time.perf_counter() - t


# -- vault ----------------------------------------------------------------------------------
def open_vault(path: Path) -> Vault:
    from strongroom.settings import Settings
    from strongroom.vault import Vault

    return Vault.open(Settings(vault=path), PASSPHRASE, actor="bench")


def load_or_make_vault(path: Path, folder: Path, files: Sequence[Path], data_manifest: Path,
                       reuse: bool) -> tuple[Vault, dict[str, Any]]:
    """The data set ingested once (library API); reused with --keep when the data is the same."""
    from strongroom.ingest import ingest
    from strongroom.settings import Settings
    from strongroom.vault import Vault

    manifest = path.with_name(path.name + ".manifest.json")
    want = {"data": json.loads(data_manifest.read_text()), "files": len(files)}
    if reuse and manifest.exists() and json.loads(manifest.read_text()).get("want") == want:
        return open_vault(path), json.loads(manifest.read_text())["ingest"]
    manifest.unlink(missing_ok=True)
    shutil.rmtree(path, ignore_errors=True)
    v = Vault.create(Settings(vault=path), PASSPHRASE, actor="bench")
    try:
        rep = ingest(v, folder, "export benchmark: generated DVR-like files")
        if rep.errors or rep.new_originals != len(files):
            raise RuntimeError(f"ingest incomplete: {rep.to_json()}")
    except BaseException:
        v.close()
        raise
    info = {"files": rep.files_seen, "bytes": rep.bytes_read, "seconds": round(rep.seconds, 3),
            "mb_per_s": round(mbps(rep.bytes_read, rep.seconds), 1)}
    os.sync()
    manifest.write_text(json.dumps({"want": want, "ingest": info}))
    return v, info


def run_copy(template: Path, dest: Path) -> Path:
    """A vault identical to the template for one export (which records an `exported` event,
    and later exports show earlier ones in full): catalogue and custody files copied, blobs
    (immutable, only read) hard-linked."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for p in template.iterdir():
        if p.name == "blobs":
            subprocess.run(["cp", "-al", str(p), str(dest / p.name)], check=True)
        elif p.is_dir():
            shutil.copytree(p, dest / p.name)
        else:
            shutil.copy2(p, dest / p.name)
    return dest


@dataclass(frozen=True)
class Orig:
    sha256: str
    size: int
    blob_name: str


def originals(v: Vault) -> list[Orig]:
    """In the order export writes them (ingested_at, sha256)."""
    from sqlalchemy import select

    from strongroom.catalogue.models import Original

    with v.catalogue.read() as s:
        rows = s.scalars(select(Original).order_by(Original.ingested_at, Original.sha256)).all()
        return [Orig(r.sha256, r.size, r.blob_name) for r in rows]


# -- children (spawned: their peak RSS is theirs alone) -------------------------------------
def _status_kb(key: bytes) -> int:
    with open("/proc/self/status", "rb") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    return 0


def _hwm_kb() -> int:
    return _status_kb(b"VmHWM:")


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def child_export(vault_path: str, dest: str, encrypted: bool, pdf: bool,
                 only: list[str]) -> dict[str, Any]:
    """One export in this (fresh) process; the clock runs around `export()` only."""
    from strongroom.export.bag import ExportOptions, export

    t0 = time.perf_counter()
    v = open_vault(Path(vault_path))
    try:
        unlock_s = time.perf_counter() - t0
        opts = ExportOptions(everything=not only, originals=list(only), organisation="bench",
                             workers=WORKERS, pdf=pdf)
        if encrypted:
            opts.recipients = [v.public.age_recipient]
        startup_kb, base_kb = _hwm_kb(), _status_kb(b"VmRSS:")
        exact = _reset_hwm()
        with CpuWatch() as cpu:
            rep = export(v, Path(dest), opts)
        peak_kb = _hwm_kb()
    finally:
        v.close()
    return {"seconds": cpu.seconds, "report_seconds": rep.seconds,
            "originals": rep.originals, "payload_bytes": rep.payload_bytes,
            "output": rep.output, "volumes": [vol.to_json() for vol in rep.volumes],
            "peak_rss_mb": peak_kb / 1024,
            "peak_rss_whole_process_mb": max(peak_kb, startup_kb) / 1024,
            "peak_rss_startup_unlock_mb": startup_kb / 1024, "peak_rss_exact": exact,
            "rss_before_mb": base_kb / 1024,
            "unlock_seconds": unlock_s, "cpu": cpu.as_dict()}


def child_verify(bag: str) -> dict[str, Any]:
    from strongroom.export.verifier import verify_bag

    startup_kb, base_kb = _hwm_kb(), _status_kb(b"VmRSS:")
    exact = _reset_hwm()
    with CpuWatch() as cpu:
        res = verify_bag(Path(bag), workers=WORKERS)
    peak_kb = _hwm_kb()
    return {"seconds": cpu.seconds, "ok": res.ok, "problems": res.problems[:10],
            "checks": [f"{'OK' if c.ok else 'FAIL'} {c.name}: {c.detail}" for c in res.checks],
            "peak_rss_mb": peak_kb / 1024,
            "peak_rss_whole_process_mb": max(peak_kb, startup_kb) / 1024,
            "peak_rss_startup_mb": startup_kb / 1024, "peak_rss_exact": exact,
            "rss_before_mb": base_kb / 1024,
            "cpu": cpu.as_dict()}


def in_child(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """`fn(*args)` in a freshly spawned process (its VmHWM starts from nothing)."""
    ctx = multiprocessing.get_context("spawn")
    t = time.perf_counter()
    with ProcessPoolExecutor(1, mp_context=ctx) as pool:
        out = pool.submit(fn, *args).result()
    out["child_wall_seconds"] = time.perf_counter() - t
    return out


# -- measuring ------------------------------------------------------------------------------
def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    settle()


def from_child(res: dict[str, Any], nbytes: int) -> Timed:
    extra = {k: v for k, v in res.items() if k not in ("seconds", "cpu")}
    return Timed(res["seconds"], nbytes, res["cpu"], extra)


def bagit_cli() -> list[str]:
    here = Path(sys.executable).parent / "bagit.py"
    found = str(here) if here.exists() else shutil.which("bagit.py")
    if not found:
        raise SystemExit("bagit.py not found (uv sync installs bagit with the dev group)")
    return [sys.executable, found]


def run_bagit(args: list[str], nbytes: int, expect: str | None = None) -> Timed:
    with CpuWatch() as cpu:
        res = subprocess.run([*bagit_cli(), *args], capture_output=True, text=True,
                             check=False)
    if res.returncode != 0 or (expect and expect not in res.stderr):
        raise RuntimeError(f"bagit.py {' '.join(args)} failed ({res.returncode}): "
                           f"{res.stderr[-2000:]}")
    return cpu.timed(nbytes)


def age_decrypt(identity: str, stdin: Any) -> subprocess.Popen[bytes]:
    """`age -d -i /dev/fd/N < stdin > /dev/null`, the identity through a pipe (never on disk)."""
    r, w = os.pipe()
    try:
        os.write(w, identity.encode() + b"\n")
        os.close(w)
        w = -1
        return subprocess.Popen(
            ["age", "-d", "-i", f"/dev/fd/{r}"], stdin=stdin, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, pass_fds=(r,))
    finally:
        os.close(r)
        if w != -1:
            os.close(w)


def age_d_blobs(v: Vault, origs: Sequence[Orig], nbytes: int, parallel: int) -> Timed:
    identity = v.keys.identity_text()

    def one(o: Orig) -> None:
        with v.blobs.open(o.blob_name) as f:
            proc = age_decrypt(identity, f)
            _, err = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"age -d failed: {err.decode(errors='replace')}")

    with CpuWatch() as cpu:
        if parallel == 1:
            for o in origs:
                one(o)
        else:
            with ThreadPoolExecutor(parallel) as pool:
                list(pool.map(one, origs))
    return cpu.timed(nbytes)


def decrypt_hash(v: Vault, origs: Sequence[Orig], nbytes: int) -> Timed:
    """What export does per original minus the writes: decrypt + SHA-256 + SHA-512."""
    def one(o: Orig) -> None:
        d = v._decrypt_blob(o.blob_name, None, sha512=True, md5=False, what=o.sha256)
        if d.sha256 != o.sha256:
            raise RuntimeError(f"blob of {o.sha256} decrypted to {d.sha256}")

    with CpuWatch() as cpu, ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(one, origs))
    return cpu.timed(nbytes)


def copy_fdatasync(files: Sequence[Path], out: Path, nbytes: int) -> Timed:
    """The write side of export alone: each file copied in 1 MiB chunks, fdatasync'ed."""
    out.mkdir(parents=True)

    def one(k_p: tuple[int, Path]) -> None:
        k, p = k_p
        fd = os.open(out / f"{k:05d}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with open(p, "rb", buffering=0) as src, os.fdopen(fd, "wb", buffering=0) as dst:
            while chunk := src.read(MiB):
                dst.write(chunk)
            os.fdatasync(fd)

    with CpuWatch() as cpu, ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(one, enumerate(files)))
    return cpu.timed(nbytes)


def hash_files(files: Sequence[Path], algorithms: Sequence[str], threads: int,
               nbytes: int) -> Timed:
    """Every algorithm from one read of each file (bagit's per-file work), `threads` files at
    a time."""
    def one(p: Path) -> None:
        hashers = [hashlib.new(a) for a in algorithms]
        buf = bytearray(MiB)
        view = memoryview(buf)
        with open(p, "rb", buffering=0) as f:
            while n := f.readinto(buf):
                for h in hashers:
                    h.update(view[:n])

    order = sorted(files, key=lambda p: -p.stat().st_size)
    with CpuWatch() as cpu:
        if threads == 1:
            for p in order:
                one(p)
        else:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(one, order))
    return cpu.timed(nbytes)


def bag_algorithms(bag: Path) -> list[str]:
    return sorted(p.name[len("manifest-"):-len(".txt")] for p in bag.glob("manifest-*.txt"))


def bag_payload(bag: Path) -> list[Path]:
    return files_under(bag / "data")


# -- report helpers -------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    return machine_facts(tools=[["age", "--version"]],
                         packages=["bagit", "cryptography", "pyrage"])


def fmt_s(x: float) -> str:
    return f"{x:.2f} s" if x < 10 else f"{x:.1f} s"


# -- scenarios ------------------------------------------------------------------------------
@dataclass
class Ctx:
    """What the scenarios share: options, the data set, the ingested vault, output."""

    args: argparse.Namespace
    plan: Plan
    folder: Path
    files: list[Path]
    vault_path: Path
    origs: list[Orig]
    blobs: list[Path]
    out: Path
    say: Callable[[str], None]
    goals: list[dict[str, Any]]
    #: peak RSS of the whole-set export and verify, once a scenario measured them
    peaks: dict[str, float] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return sum(o.size for o in self.origs)

    def export(self, dest: Path, encrypted: bool, pdf: bool,
               only: Sequence[str] = ()) -> dict[str, Any]:
        """One export in a fresh process, on a fresh copy of the vault."""
        run_vault = self.out / "vault-run"
        run_copy(self.vault_path, run_vault)
        settle()
        warm(self.blobs)
        res = in_child(child_export, str(run_vault), str(dest), encrypted, pdf, list(only))
        if res["originals"] != (len(only) or len(self.origs)):
            raise RuntimeError(f"export wrote {res['originals']} originals")
        remove(run_vault)
        return res

    def verify(self, bag: Path) -> dict[str, Any]:
        warm(bag_payload(bag))
        res = in_child(child_verify, str(bag))
        if not res["ok"]:
            raise RuntimeError(f"verify_bag failed on {bag}: {res['problems']}")
        return res


def scenario_export(ctx: Ctx) -> dict[str, Any]:
    """Export, verify, export without PDF, encrypted export; bagit.py make and validate."""
    nbytes, out, say = ctx.nbytes, ctx.out, ctx.say
    tries: dict[str, list[Timed]] = {
        k: [] for k in ("export", "verify", "export_no_pdf", "export_encrypted",
                        "bagit_make", "bagit_validate")}
    bagit_algs: list[str] = []
    for n in range(ctx.args.repeat):
        step = f"round {n + 1}/{ctx.args.repeat}:"
        print(f"{step} export ...", flush=True)
        dest = out / "export"
        tries["export"].append(from_child(ctx.export(dest, False, True), nbytes))
        print(f"{step} verify-export ...", flush=True)
        tries["verify"].append(from_child(ctx.verify(dest / "bag"), nbytes))
        remove(dest)
        print(f"{step} export without PDF reports ...", flush=True)
        dest = out / "export-no-pdf"
        tries["export_no_pdf"].append(from_child(ctx.export(dest, False, False), nbytes))
        remove(dest)
        print(f"{step} encrypted export ...", flush=True)
        dest = out / "export-encrypted"
        res = ctx.export(dest, True, True)
        res["archive_bytes"] = sum(vol["size"] for vol in res["volumes"])
        tries["export_encrypted"].append(from_child(res, nbytes))
        remove(dest)
        print(f"{step} bagit.py make ...", flush=True)
        bagdir = out / "bagit-bag"
        subprocess.run(["cp", "-al", str(ctx.folder), str(bagdir)], check=True)
        settle()
        warm(files_under(bagdir))
        tries["bagit_make"].append(run_bagit(["--processes", str(WORKERS), str(bagdir)],
                                             nbytes))
        bagit_algs = bag_algorithms(bagdir)
        settle()
        print(f"{step} bagit.py --validate ...", flush=True)
        warm(bag_payload(bagdir))
        tries["bagit_validate"].append(run_bagit(
            ["--validate", "--processes", str(WORKERS), str(bagdir)], nbytes, "is valid"))
        remove(bagdir)
    runs = {k: best(t) for k, t in tries.items()}
    for k in ("export", "verify", "export_no_pdf", "export_encrypted"):
        for key in ("peak_rss_mb", "peak_rss_whole_process_mb"):
            runs[k].extra[key] = max(t.extra[key] for t in tries[k])
    ctx.peaks |= {"export": runs["export"].extra["peak_rss_mb"],
                  "export_no_pdf": runs["export_no_pdf"].extra["peak_rss_mb"],
                  "verify": runs["verify"].extra["peak_rss_mb"]}
    ex, vf, enc = runs["export"], runs["verify"], runs["export_encrypted"]
    nopdf, mk, va = runs["export_no_pdf"], runs["bagit_make"], runs["bagit_validate"]
    ratio_export = mk.seconds / ex.seconds
    ratio_verify = va.seconds / vf.seconds
    ratio_export_report = mk.seconds / ex.extra["report_seconds"]
    ratio_no_pdf = mk.seconds / nopdf.seconds
    largest = max(o.size for o in ctx.origs)
    rep_note = f", best of {ctx.args.repeat}" if ctx.args.repeat > 1 else ""
    say(f"export benchmark: {len(ctx.origs)} files, {nbytes / 1e6:,.0f} MB of plaintext "
        f"originals (largest {largest / MiB:.0f} MiB){rep_note}; {WORKERS} workers / processes")
    say(f"  {'':46}{'seconds':>9}{'MB/s':>8}{'peak RSS':>11}")

    def row(label: str, t: Timed, rss: float | None = None) -> None:
        say(f"  {label:46}{t.seconds:9.2f}{t.mb_per_s:8.0f}"
            + (f"{rss:8.0f} MB" if rss is not None else ""))

    row("strongroom export (bag folder, PDF reports)", ex, ex.extra["peak_rss_mb"])
    row("strongroom export, pdf=False", nopdf, nopdf.extra["peak_rss_mb"])
    row("bagit.py --processes 2 (make, in place)", mk)
    say(f"    → export {ratio_export:.2f}× bagit make (goal ≥ 0.8; by the report's seconds "
        f"{ex.extra['report_seconds']:.2f} s: {ratio_export_report:.2f}×; without PDF "
        f"reports {ratio_no_pdf:.2f}×)")
    row("strongroom verify_bag(workers=2)", vf, vf.extra["peak_rss_mb"])
    row("bagit.py --validate --processes 2", va)
    say(f"    → verify {ratio_verify:.2f}× bagit validate (goal ≥ 1.2)")
    row("strongroom export, encrypted (tar | age -r)", enc, enc.extra["peak_rss_mb"])
    say(f"    bagit's manifests: {', '.join(bagit_algs)}; strongroom's bag: sha256, sha512")
    say(f"  peak RSS: export's RSS when export() was called {ex.extra['rss_before_mb']:.0f} MB "
        f"(imports, open vault); start-up + unseal before it peaked at "
        f"{ex.extra['peak_rss_startup_unlock_mb']:.0f} MB; verify's RSS when verify_bag() was "
        f"called {vf.extra['rss_before_mb']:.0f} MB (age children not counted)")
    say(f"  noise: {noise_note(runs)}")
    goal(ctx.goals, "export throughput ≥ 0.8× bagit.py --processes 2 (make)", ratio_export, 0.8,
         "min", "×", {"export": ex, "bagit_make": mk})
    goal(ctx.goals, "verify-export throughput ≥ 1.2× bagit.py --validate --processes 2",
         ratio_verify, 1.2, "min", "×", {"verify": vf, "bagit_validate": va})
    goal(ctx.goals, "export peak RSS (after the unseal)", ex.extra["peak_rss_mb"], RSS_LIMIT_MB,
         "max", " MB", {"export": ex})
    goal(ctx.goals, "verify-export peak RSS", vf.extra["peak_rss_mb"], RSS_LIMIT_MB, "max",
         " MB", {"verify": vf})
    return {"bagit_manifest_algorithms": bagit_algs,
            "runs": {k: r.to_json() for k, r in runs.items()},
            "ratios": {"export_vs_bagit_make": round(ratio_export, 3),
                       "export_report_seconds_vs_bagit_make": round(ratio_export_report, 3),
                       "verify_vs_bagit_validate": round(ratio_verify, 3),
                       "export_no_pdf_vs_bagit_make": round(ratio_no_pdf, 3),
                       "export_encrypted_vs_bagit_make": round(mk.seconds / enc.seconds, 3)}}


def scenario_rss_flat(ctx: Ctx) -> dict[str, Any]:
    """Peak RSS on the whole set against a ~1/20 subset (a few mid-sized originals, so both
    workers are busy). Reuses the whole-set peaks of `export` when it ran before."""
    out, say = ctx.out, ctx.say
    if not {"export", "export_no_pdf", "verify"} <= ctx.peaks.keys():
        print("memory on the whole set ...", flush=True)
        dest = out / "export-whole"
        ctx.peaks["export"] = ctx.export(dest, False, True)["peak_rss_mb"]
        ctx.peaks["verify"] = ctx.verify(dest / "bag")["peak_rss_mb"]
        remove(dest)
        ctx.peaks["export_no_pdf"] = ctx.export(dest, False, False)["peak_rss_mb"]
        remove(dest)
    print("memory on a subset ...", flush=True)
    subset: list[Orig] = []
    for o in sorted((o for o in ctx.origs if o.size >= MiB), key=lambda o: o.size):
        if sum(s.size for s in subset) >= ctx.plan.subset_bytes and len(subset) >= 2:
            break
        subset.append(o)
    sub_bytes = sum(o.size for o in subset)
    dest = out / "export-subset"
    sub_export = ctx.export(dest, False, True, [o.sha256 for o in subset])
    sub_verify = ctx.verify(dest / "bag")
    remove(dest)
    dest = out / "export-subset-no-pdf"
    sub_export_no_pdf = ctx.export(dest, False, False, [o.sha256 for o in subset])
    remove(dest)
    pk = ctx.peaks
    say(f"  peak RSS, export: {pk['export']:.0f} MB for {ctx.nbytes / 1e6:,.0f} MB vs "
        f"{sub_export['peak_rss_mb']:.0f} MB for a {sub_bytes / 1e6:,.0f} MB subset "
        f"({len(subset)} originals); pdf=False {pk['export_no_pdf']:.0f} MB vs "
        f"{sub_export_no_pdf['peak_rss_mb']:.0f} MB")
    say(f"  peak RSS, verify: {pk['verify']:.0f} MB vs {sub_verify['peak_rss_mb']:.0f} MB for "
        "the subset bag")
    goal(ctx.goals, "export RSS flat: whole set's peak − subset's", pk["export"]
         - sub_export["peak_rss_mb"], RSS_FLAT_MB, "max", " MB")
    goal(ctx.goals, "verify RSS flat: whole bag's peak − subset bag's", pk["verify"]
         - sub_verify["peak_rss_mb"], RSS_FLAT_MB, "max", " MB")
    return {"whole_set_peaks_mb": dict(pk), "originals": len(subset), "bytes": sub_bytes,
            "export": from_child(sub_export, sub_bytes).to_json(),
            "verify": from_child(sub_verify, sub_bytes).to_json(),
            "export_no_pdf": from_child(sub_export_no_pdf, sub_bytes).to_json()}


def scenario_breakdown(ctx: Ctx) -> dict[str, Any]:
    """Context (age -d alone, hashlib alone) and where export's time goes."""
    print("context: age -d, hashlib ...", flush=True)
    nbytes, files, say = ctx.nbytes, ctx.files, ctx.say
    v = open_vault(ctx.vault_path)
    try:
        largest = max(ctx.origs, key=lambda o: o.size)
        warm(ctx.blobs)
        cx: dict[str, Timed] = {"age_d_largest": age_d_blobs(v, [largest], largest.size, 1)}
        warm(files)
        cx["hashlib_sha256_1thread"] = hash_files(files, ["sha256"], 1, nbytes)
        cx["hashlib_sha512_1thread"] = hash_files(files, ["sha512"], 1, nbytes)
        cx["hashlib_both_1thread"] = hash_files(files, ["sha256", "sha512"], 1, nbytes)
        cx["hashlib_both_2threads"] = hash_files(files, ["sha256", "sha512"], 2, nbytes)
        print("where export's time goes ...", flush=True)
        warm(ctx.blobs)
        parts: dict[str, Timed] = {
            "age_d_2_at_a_time": age_d_blobs(v, ctx.origs, nbytes, WORKERS)}
        warm(ctx.blobs)
        parts["decrypt_blob_sha256_sha512_2_threads"] = decrypt_hash(v, ctx.origs, nbytes)
    finally:
        v.close()
    warm(files)
    parts["copy_fdatasync_2_threads"] = copy_fdatasync(files, ctx.out / "copy", nbytes)
    remove(ctx.out / "copy")
    say(f"  context: age -d of the largest blob ({largest.size / MiB:.0f} MiB, 1 process) "
        f"{cx['age_d_largest'].mb_per_s:.0f} MB/s | hashlib (1 thread) sha256 "
        f"{cx['hashlib_sha256_1thread'].mb_per_s:.0f}, sha512 "
        f"{cx['hashlib_sha512_1thread'].mb_per_s:.0f}, both from one read "
        f"{cx['hashlib_both_1thread'].mb_per_s:.0f} MB/s; both, 2 files at a time "
        f"{cx['hashlib_both_2threads'].mb_per_s:.0f} MB/s")
    say(f"  noise: {noise_note(cx)}")
    p = parts
    say(f"  where export's time goes (all originals, 2 at a time): age -d alone "
        f"{fmt_s(p['age_d_2_at_a_time'].seconds)} ({p['age_d_2_at_a_time'].mb_per_s:.0f} MB/s)"
        f" | + SHA-256 + SHA-512 (Vault._decrypt_blob, no writes) "
        f"{fmt_s(p['decrypt_blob_sha256_sha512_2_threads'].seconds)} "
        f"({p['decrypt_blob_sha256_sha512_2_threads'].mb_per_s:.0f} MB/s) | plaintext "
        f"copy + fdatasync alone {fmt_s(p['copy_fdatasync_2_threads'].seconds)} "
        f"({p['copy_fdatasync_2_threads'].mb_per_s:.0f} MB/s)")
    say(f"  noise: {noise_note(parts)}")
    return {"context": {k: t.to_json() for k, t in cx.items()},
            "export_breakdown": {k: t.to_json() for k, t in parts.items()}}


SCENARIO_FUNCS: dict[str, Callable[[Ctx], dict[str, Any]]] = {
    "export": scenario_export, "rss_flat": scenario_rss_flat, "breakdown": scenario_breakdown}


def main(argv: Sequence[str] | None = None) -> int:
    ap = bench_parser(__doc__, repeat=2, quick_repeat=1, scenarios=SCENARIOS)
    args = parse_bench_args(ap, argv)
    if shutil.which("age") is None:
        raise SystemExit("age is not installed (make setup)")
    bagit_cli()
    plan = QUICK if args.quick else FULL
    suffix = "-quick" if args.quick else ""
    folder, vault_path, out = WORK / f"data{suffix}", WORK / f"vault{suffix}", WORK / "out"
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    log: list[str] = []

    def say(text: str) -> None:
        log.append(text)
        print(text, flush=True)

    result = result_header("export", args, machine())
    goals: list[dict[str, Any]] = []
    scenarios: dict[str, Any] = {}
    try:
        print(f"generating data in {folder} ...", flush=True)
        files, gen_s = load_or_make(plan, folder, SEED, reuse=args.keep)
        nbytes, nfiles = total_bytes(files), len(files)
        print(f"ingesting {nfiles} files, {nbytes / 1e6:,.0f} MB into {vault_path} ...",
              flush=True)
        v, ingested = load_or_make_vault(vault_path, folder, files,
                                         folder.with_name(folder.name + ".manifest.json"),
                                         reuse=args.keep)
        try:
            origs = originals(v)
        finally:
            v.close()  # the template is only copied from now on
        if len(origs) != nfiles or sum(o.size for o in origs) != nbytes:
            raise RuntimeError("the vault does not hold exactly the generated files")
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        result["busy_before_start"] = round(wait_quiet(args.wait_quiet), 3)
        print("page cache warmed before every timed run (all runs read from RAM); outputs "
              "deleted and fs synced between runs; every export on a fresh copy of the same "
              "vault; strongroom timed around the export() / verify_bag() call in a fresh "
              "process (no start-up, no key unseal)\n", flush=True)
        ctx = Ctx(args, plan, folder, files, vault_path, origs,
                  files_under(vault_path / "blobs"), out, say, goals)
        for name in args.scenarios:
            scenarios[name] = SCENARIO_FUNCS[name](ctx)
    finally:
        shutil.rmtree(out, ignore_errors=True)
        if not args.keep:
            for p in (folder, vault_path):
                shutil.rmtree(p, ignore_errors=True)
                p.with_name(p.name + ".manifest.json").unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                WORK.rmdir()  # only when nothing else is kept there
    print_goals(goals)
    result |= {
        "source_at_end": source_state(),
        "method": {
            "page_cache": "inputs read once before every timed run; all runs read from RAM",
            "between_runs": "outputs deleted and filesystem synced (untimed)",
            "export": "strongroom.export.bag.export(vault, dest, ExportOptions(everything=True, "
                      f"organisation='bench', workers={WORKERS})) in a fresh spawned process; "
                      "wall-clock of the call (report_seconds: the report's own seconds)",
            "export_no_pdf": "the same with pdf=False (no WeasyPrint PDF reports)",
            "export_encrypted": "the same with recipients=[vault.public.age_recipient]",
            "vault_copies": "every export on a fresh copy of the ingested vault (catalogue "
                            "copied, blobs hard-linked): later exports show earlier ones",
            "verify": f"strongroom.export.verifier.verify_bag(bag, workers={WORKERS}) in a "
                      "fresh spawned process; must be .ok",
            "bagit_make": f"{Path(bagit_cli()[1]).name} --processes {WORKERS} DIR on a fresh "
                          "`cp -al` copy of the plaintext folder (copy untimed)",
            "bagit_validate": f"bagit.py --validate --processes {WORKERS} on bagit's bag",
            "throughput": "plaintext bytes of the originals / wall seconds; 1 MB = 10^6 bytes",
            "rss": "VmHWM of the child at the end, reset (clear_refs 5) after the vault unlock "
                   "(export) or after imports (verify); children (age) not counted",
            "age_d": "age -d -i /dev/fd/N < blob > /dev/null",
            "hashlib": "every algorithm from one 1 MiB readinto of each file, largest first",
            "noise": "CPU used by other processes during each timed run (other_cpu_share)",
        },
        "dataset": {"plan": asdict(plan), "seed": SEED, "files": nfiles, "bytes": nbytes,
                    "largest_bytes": max(o.size for o in origs),
                    "generate_seconds": round(gen_s, 1)},
        "ingest": ingested,
        "log": log,
        **scenarios,
        "goals": goals,
        "all_goals_pass": all(g["pass"] for g in goals),
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    write_results("export", args.quick, result, args.scenarios if args.partial else ())
    return 0


if __name__ == "__main__":
    sys.exit(main())
