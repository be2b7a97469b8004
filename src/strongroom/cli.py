"""The `strongroom` command line: one-line errors, exit codes 0/1/2, `--json` everywhere."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from strongroom.errors import StrongroomError
from strongroom.settings import Settings

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress

    from strongroom.vault import Vault

app = typer.Typer(
    name="strongroom",
    help="Evidence vault for leaked video archives: encrypted, bit-exact, on the record.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

VaultArg = Annotated[Path, typer.Argument(help="The vault folder.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
PassFileOpt = Annotated[
    Path | None,
    typer.Option("--passphrase-file", help="Read the passphrase from this file's first line."),
]


def _settings(ctx: typer.Context, vault: Path) -> Settings:
    base: Settings = ctx.obj
    return base.model_copy(update={"vault": vault})


MIN_PASSPHRASE = 12


def _passphrase(passphrase_file: Path | None, *, confirm: bool = False) -> str:
    """From --passphrase-file, else $STRONGROOM_PASSPHRASE, else asked on the terminal. A new
    passphrase (`confirm`) must be at least MIN_PASSPHRASE characters wherever it comes from."""
    if passphrase_file is not None:
        from strongroom.smallfiles import read_small

        try:
            lines = read_small(passphrase_file, "passphrase file", 64 * 1024).decode(
                "utf-8").splitlines()
        except UnicodeDecodeError:
            raise StrongroomError(f"passphrase file {passphrase_file} is not UTF-8 text") \
                from None
        first = lines[0] if lines else ""
        return _new_passphrase(first) if confirm else first
    env = os.environ.get("STRONGROOM_PASSPHRASE")
    if env is not None:
        return _new_passphrase(env) if confirm else env
    if not sys.stdin.isatty():
        raise StrongroomError(
            "no passphrase: use --passphrase-file or STRONGROOM_PASSPHRASE, or run in a terminal")
    import getpass

    first = getpass.getpass("Vault passphrase: ")
    if confirm:
        _new_passphrase(first)
        if getpass.getpass("Repeat passphrase: ") != first:
            raise StrongroomError("the passphrases do not match")
    return first


def _new_passphrase(text: str) -> str:
    if len(text.strip()) < MIN_PASSPHRASE:
        raise StrongroomError(f"use a passphrase of at least {MIN_PASSPHRASE} characters")
    return text


def _open(ctx: typer.Context, vault: Path, passphrase_file: Path | None = None,
          *, unseal: bool = True) -> Vault:
    from strongroom.vault import Vault

    settings = _settings(ctx, vault)
    Vault.read_marker(settings.vault)  # "not a vault" before asking for a passphrase
    return Vault.open(settings, _passphrase(passphrase_file) if unseal else None)


def _emit(as_json: bool, data: Any, human: str) -> None:
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        typer.echo(human)


def _progress(enabled: bool) -> RichProgress:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    console = Console(stderr=True)
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(),
        TextColumn("{task.fields[files]}"), DownloadColumn(), TransferSpeedColumn(),
        TimeRemainingColumn(), console=console, disable=not (enabled and console.is_terminal),
        transient=False,
    )


class _IngestBar:
    """Adapts the ingestor's progress callbacks to a rich bar (files, bytes, MB/s, ETA)."""

    def __init__(self, bar: RichProgress, label: str) -> None:
        self.bar, self.label = bar, label
        self.task = bar.add_task(label, total=None, files="")
        self.files = self.done = 0

    def start(self, files: int, total_bytes: int) -> None:
        self.files = files
        self.bar.update(self.task, total=total_bytes, files=f"0/{files} files")

    def advance(self, nbytes: int) -> None:
        self.bar.advance(self.task, nbytes)

    def file_done(self) -> None:
        self.done += 1
        self.bar.update(self.task, files=f"{self.done}/{self.files} files")


@app.callback()
def _root(ctx: typer.Context) -> None:
    ctx.obj = Settings()


@app.command()
def init(ctx: typer.Context, vault: VaultArg, passphrase_file: PassFileOpt = None,
         as_json: JsonOpt = False) -> None:
    """Create a vault: keys sealed under a passphrase; prints its public key."""
    from strongroom.vault import Vault

    settings = _settings(ctx, vault)
    with Vault.create(settings, _passphrase(passphrase_file, confirm=True)) as v:
        data = {"vault": str(vault), "age_recipient": v.public.age_recipient,
                "signing_key_fingerprint": v.public.fingerprint}
    _emit(as_json, data, (
        f"Created vault {vault}\n"
        f"  public key (age):         {data['age_recipient']}\n"
        f"  signing key fingerprint:  {data['signing_key_fingerprint']}\n"
        "Write the fingerprint down somewhere else: it is how anyone checks the custody log."))


@app.command()
def ingest(
    ctx: typer.Context,
    vault: VaultArg,
    source: Annotated[Path, typer.Argument(help="Folder, mounted drive, or disk-image file.")],
    acquisition: Annotated[str, typer.Option(
        "--acquisition", "-a", help="How it arrived: medium, serial, received by whom, when.")],
    received_by: Annotated[str | None, typer.Option(help="Who received the material.")] = None,
    received_at: Annotated[str | None, typer.Option(help="When it was received.")] = None,
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Capture a source: every file hashed, encrypted and recorded, once."""
    from strongroom.ingest import ingest as run_ingest
    from strongroom.ingest.source import shown

    with _open(ctx, vault, passphrase_file) as v, _progress(not as_json) as bar:
        report = run_ingest(
            v, source, acquisition, received_by=received_by, received_at=received_at,
            progress=_IngestBar(bar, "ingest"),
        )
    data = report.to_json()
    lines = [
        f"{data['new_originals']} new, {data['duplicates']} duplicate(s), "
        f"{data['already_ingested']} already in this acquisition, {data['symlinks']} symlink(s), "
        f"{data['errors']} error(s) — {data['bytes_read'] / 1e6:.1f} MB in {data['seconds']} s "
        f"({data['mb_per_s']} MB/s)"
    ]
    lines += [f"  error: {shown(e['path'])}: {e['error']}" for e in report.errors]
    _emit(as_json, data, "\n".join(lines))


@app.command()
def verify(
    ctx: typer.Context,
    vault: VaultArg,
    quick: Annotated[bool, typer.Option(
        "--quick", help="Check the custody log and catalogue only, not every blob.")] = False,
    checkpoints: Annotated[Path | None, typer.Option(
        "--checkpoints", help="An off-site copy of custody-checkpoints.jsonl to compare with.")
    ] = None,
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the custody chain, checkpoints, catalogue and every blob; exit 1 on any problem."""
    from strongroom.catalogue.queries import vault_stats

    with _open(ctx, vault, passphrase_file) as v:
        total = vault_stats(v)["original_bytes"]
        with _progress(not as_json) as bar:
            task = bar.add_task("fixity", total=0 if quick else total, files="")
            report = v.verify(fixity=not quick, checkpoints_copy=checkpoints,
                              advance=lambda n: bar.advance(task, n))
    data = report.to_json()
    lines = [
        f"{'OK' if report.ok else 'PROBLEMS FOUND'}: {report.events} custody events "
        f"(head {report.head_hash[:16]}…, last checkpoint {report.last_checkpoint}), "
        f"{report.originals} originals, {report.blobs_checked} blobs re-hashed "
        f"({report.bytes_checked / 1e6:.1f} MB)"
    ]
    lines += [f"  problem: [{p.check}] {p.subject}: {p.message}" for p in report.problems]
    lines += [f"  warning: {w}" for w in report.warnings]
    _emit(as_json, data, "\n".join(lines))
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def log(
    ctx: typer.Context,
    vault: VaultArg,
    action: Annotated[str | None, typer.Option(help="Only events of this action.")] = None,
    limit: Annotated[int, typer.Option(help="Last N events (0: all).", min=0,
                                       max=2**62)] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Print the custody log (no passphrase needed)."""
    from sqlalchemy import select

    from strongroom.catalogue.models import CustodyEvent
    from strongroom.custody.log import event_json

    with _open(ctx, vault, unseal=False) as v, v.catalogue.read() as s:
        q = select(CustodyEvent).order_by(CustodyEvent.seq.desc())
        if action:
            q = q.where(CustodyEvent.action == action)
        if limit:
            q = q.limit(limit)
        events = [event_json(e) for e in reversed(s.scalars(q).all())]
    human = "\n".join(
        f"{e['seq']:>6}  {e['time'][:19]}  {e['actor']:<20}  {e['action']:<14}  {e['subject']}"
        for e in events)
    _emit(as_json, events, human or "(no events)")


@app.command()
def cat(
    ctx: typer.Context,
    vault: VaultArg,
    sha256: Annotated[str, typer.Argument(help="SHA-256 (or a unique prefix) of an original.")],
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write to this file (checked before it appears).")] = None,
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Decrypt one original to stdout or a file; logged as a download."""
    if as_json and output is None:
        raise StrongroomError("--json needs --output (stdout carries the file itself)")
    if output is not None:
        _check_output_file(output)
    elif sys.stdout is None or sys.stdout.closed:
        raise StrongroomError("standard output is closed: give --output FILE")
    with _open(ctx, vault, passphrase_file) as v:
        # The door records `downloaded` when each block ends: what left and whether it was
        # all of it. For a file that is before it appears under its name, so an access the
        # log does not show never happens, and a failed one is not logged as complete.
        if output is None:
            with v.open_original(sha256, to="stdout") as opened:
                try:
                    d = opened.copy_to(sys.stdout.buffer.write)
                    sys.stdout.buffer.flush()
                except OSError as exc:
                    # The reader went away (closed stdout, a full disk behind a redirect).
                    raise StrongroomError(
                        f"cannot write to standard output: {exc.strerror}") from None
        else:
            tmp = output.with_name(f".{output.name}.partial")
            try:
                with v.open_original(sha256, to="file") as opened:
                    try:
                        with open(tmp, "xb") as f:
                            d = opened.copy_to(f.write)
                    except OSError as exc:
                        raise StrongroomError(f"cannot write {output}: {exc.strerror}") \
                            from None
                os.replace(tmp, output)
            finally:
                tmp.unlink(missing_ok=True)
    if as_json:
        _emit(True, {"sha256": d.sha256, "md5": d.md5, "size": d.size, "output": str(output),
                     "verified": True}, "")


def _check_output_file(output: Path) -> None:
    """Before anything is decrypted: the file must be new, in a folder that exists."""
    if output.is_dir():
        raise StrongroomError(f"{output} is a folder: give a file name")
    if output.exists() or output.is_symlink():
        raise StrongroomError(f"{output} exists; nothing is overwritten")
    if not output.parent.is_dir():
        raise StrongroomError(f"cannot write {output}: {output.parent} is not a folder")


@app.command()
def stats(ctx: typer.Context, vault: VaultArg, as_json: JsonOpt = False) -> None:
    """Counts and sizes (no passphrase needed)."""
    from strongroom.catalogue.queries import vault_stats

    with _open(ctx, vault, unseal=False) as v:
        data = vault_stats(v)
    human = "\n".join(f"{k.replace('_', ' '):>22}: {val}" for k, val in data.items())
    _emit(as_json, data, human)


class _ProcessBar:
    """Adapts the pipeline runner's callbacks to a rich bar (originals done, errors)."""

    def __init__(self, bar: RichProgress) -> None:
        self.bar = bar
        self.task = bar.add_task("process", total=None, files="")
        self.errors = 0

    def start(self, tasks: int) -> None:
        self.bar.update(self.task, total=tasks, files=f"0/{tasks} originals")

    def task_done(self, sha256: str, outcomes: list[Any]) -> None:
        self.errors += sum(1 for o in outcomes if o.status == "error")
        self.bar.advance(self.task, 1)
        t = self.bar.tasks[self.task]
        self.bar.update(self.task, files=f"{int(t.completed)}/{int(t.total or 0)} originals, "
                                         f"{self.errors} error(s)")


def _count_bar(enabled: bool) -> RichProgress:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[files]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console, disable=not (enabled and console.is_terminal),
    )


@app.command()
def process(
    ctx: typer.Context,
    vault: VaultArg,
    steps: Annotated[str | None, typer.Option(
        help="Comma-separated steps (default: all but optional ones, e.g. transcribe).")] = None,
    workers: Annotated[int | None, typer.Option(
        help="Worker processes (default: STRONGROOM_WORKERS, else one per CPU).")] = None,
    retry_errors: Annotated[bool, typer.Option(
        "--retry-errors", help="Run again the steps that failed last time.")] = False,
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run every pending analysis step on every original (resumable). Exit 1 when any step
    failed (each failure is listed, and kept for `--retry-errors`)."""
    from strongroom.pipeline.runner import process as run_process

    if workers is not None and workers < 1:
        raise StrongroomError(f"--workers must be at least 1, not {workers}")
    names = steps.split(",") if steps else None
    with _open(ctx, vault, passphrase_file) as v, _count_bar(not as_json) as bar:
        report = run_process(v, steps=names, workers=workers, retry_errors=retry_errors,
                             progress=_ProcessBar(bar))
    data = report.to_json()
    ran = ", ".join(f"{k} {n}" for k, n in sorted(report.ran.items())) or "nothing pending"
    lines = [f"{report.tasks} of {report.originals} originals had pending work: {ran}; "
             f"{report.derivatives} derivative(s), {len(report.errors)} error(s) "
             f"in {data['seconds']} s"]
    if report.skipped:
        lines.append("  skipped: " + ", ".join(f"{k} {n}" for k, n in
                                               sorted(report.skipped.items())))
    lines += [f"  off: {k}: {why}" for k, why in report.off.items()]
    if report.worker_deaths:
        lines.append(f"  {report.worker_deaths} worker(s) died; their work dirs were removed")
    lines += [f"  error: {e.get('file') or '?'} ({e['original'][:12]}…) {e['step']}: "
              f"{e['error']}" for e in report.errors]
    if report.errors:
        failed = len({e["original"] for e in report.errors})
        lines.append(f"{len(report.errors)} step(s) failed on {failed} original(s); "
                     "`strongroom process --retry-errors` runs them again")
    _emit(as_json, data, "\n".join(lines))
    if report.errors:
        raise typer.Exit(1)


@app.command()
def timeline(
    ctx: typer.Context,
    vault: VaultArg,
    camera: Annotated[str | None, typer.Option(help="Only this camera label.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Per camera: segments in DVR-clock order, gaps and overlaps flagged (no passphrase)."""
    from strongroom.catalogue.timeline import timelines

    with _open(ctx, vault, unseal=False) as v, v.catalogue.read() as s:
        data = timelines(s, camera)
    if camera is not None and not data:
        raise StrongroomError(f"no segments for camera {camera!r}")
    lines = []
    for label, entries in data.items():
        lines.append(f"{label}  ({len(entries)} segment(s))")
        for e in entries:
            flags = []
            if e.gap_before_s is not None:
                flags.append(f"gap {e.gap_before_s:.0f} s before")
            if e.overlaps:
                flags.append("overlaps " + ", ".join(o[:12] + "…" for o in e.overlaps)
                             + " (possible duplicate)")
            if e.partial:
                flags.append(f"PARTIAL clip ({e.partial})")
            lines.append(f"  {e.clock_start:%Y-%m-%d %H:%M:%S} → {e.clock_end:%H:%M:%S}  "
                         f"{e.original[:16]}…  [{e.start_s:.1f}–{e.end_s:.1f} s]"
                         + (f"  {'; '.join(flags)}" if flags else ""))
    _emit(as_json, {k: [e.to_json() for e in es] for k, es in data.items()},
          "\n".join(lines) or "(no segments with a DVR clock yet: run `strongroom process`)")


@app.command()
def dupes(ctx: typer.Context, vault: VaultArg, as_json: JsonOpt = False) -> None:
    """Near-duplicate groups (PDQ per second), each with its best-quality member."""
    from strongroom.catalogue.dupes import near_duplicate_groups

    with _open(ctx, vault, unseal=False) as v, v.catalogue.read() as s:
        groups = near_duplicate_groups(s)
    lines = []
    for i, g in enumerate(groups, 1):
        lines.append(f"group {i}: best {g.best}")
        for m in g.members:
            res = f"{m.width}×{m.height}" if m.width else "?"
            how = ("best" if m.original == g.best else
                   f"{(m.match_to_best or 0):.0%} of its frames in best, "
                   f"{(m.best_to_member or 0):.0%} back, median distance {m.median_distance}")
            lines.append(f"  {m.original[:16]}…  {res}  {m.duration or 0:.1f} s  ({how})")
    _emit(as_json, [g.to_json() for g in groups], "\n".join(lines) or "(no near-duplicates)")


@app.command()
def cameras(
    ctx: typer.Context,
    vault: VaultArg,
    label: Annotated[str | None, typer.Argument(help="A camera label, to map it.")] = None,
    facility: Annotated[str | None, typer.Option(
        help="Map the camera to this facility (created if new).")] = None,
    facility_type: Annotated[str | None, typer.Option(
        "--type", help="Facility type, e.g. СИЗО, ИК, ОТБ.")] = None,
    region: Annotated[str | None, typer.Option(help="Facility region.")] = None,
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List cameras found in overlays, or map one to a facility (logged)."""
    from strongroom.catalogue.places import list_cameras, map_camera

    if label is None:
        if facility is not None:
            raise StrongroomError("name the camera label to map")
        with _open(ctx, vault, unseal=False) as v:
            rows = list_cameras(v)
        _emit(as_json, rows, "\n".join(
            f"{r['label']:<32} {r['segments']:>4} segment(s)  {r['facility'] or '(no facility)'}"
            for r in rows) or "(no cameras yet: run `strongroom process`)")
        return
    if facility is None:
        raise StrongroomError("give --facility to map the camera to")
    with _open(ctx, vault, passphrase_file) as v:
        data = map_camera(v, label, facility, facility_type=facility_type, region=region)
    _emit(as_json, data, f"{label} → {facility}")


@app.command("contact-sheet")
def contact_sheet(
    ctx: typer.Context,
    vault: VaultArg,
    sha256: Annotated[str, typer.Argument(help="SHA-256 (or a unique prefix) of an original.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="JPEG file to write.")],
    reveal: Annotated[bool, typer.Option(
        "--reveal", help="Unblurred, in colour (logged). Default: blurred greyscale.")] = False,
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write an original's contact sheet (grid of timestamped thumbnails)."""
    from strongroom.pipeline.views import write_contact_sheet

    with _open(ctx, vault, passphrase_file) as v:
        data = write_contact_sheet(v, sha256, output, reveal=reveal)
    _emit(as_json, data, f"wrote {output} ({'revealed' if reveal else 'blurred'})")


def _size(text: str | None) -> int | None:
    if not text:
        return None
    units = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    num, unit = (t[:-1], t[-1]) if t and t[-1] in units else (t, "")
    try:
        value = int(float(num) * units[unit])
    except ValueError:
        raise StrongroomError(f"not a size: {text!r} (e.g. 4G, 700M)") from None
    if value < 1024 * 1024:
        raise StrongroomError("volumes must be at least 1M")
    return value


@app.command()
def export(
    ctx: typer.Context,
    vault: VaultArg,
    to: Annotated[Path, typer.Option("--to", help="Folder to write the bag (or volumes) in.")],
    case: Annotated[str | None, typer.Option("--case", help="Export one case.")] = None,
    everything: Annotated[bool, typer.Option("--all", help="Export every original.")] = False,
    original: Annotated[list[str] | None, typer.Option(
        "--original", help="Export this original (SHA-256 or prefix); repeatable.")] = None,
    recipient: Annotated[list[str] | None, typer.Option(
        "--recipient", "-r", help="Encrypt to this age or SSH public key; repeatable.")] = None,
    tsa: Annotated[list[str] | None, typer.Option(
        "--tsa", help="RFC 3161 timestamp authority URL; repeatable.")] = None,
    include: Annotated[list[str] | None, typer.Option(
        "--include", help="Also export: derivatives.")] = None,
    reveal_stills: Annotated[bool, typer.Option(
        "--reveal-stills", help="Unblurred stills in the report (for prosecutors).")] = False,
    reveal_acquisitions: Annotated[bool, typer.Option(
        "--reveal-acquisitions",
        help="Include acquisition records (may identify the source!).")] = False,
    volume_size: Annotated[str | None, typer.Option(
        "--volume-size", help="Split encrypted output into volumes, e.g. 4G.")] = None,
    pdf: Annotated[bool, typer.Option("--pdf/--no-pdf", help="PDF reports too.")] = True,
    name: Annotated[str, typer.Option("--name", help="Name of the bag folder.")] = "bag",
    organisation: Annotated[str, typer.Option(
        "--organisation", envvar="STRONGROOM_ORGANISATION",
        help="Source-Organization in bag-info.txt and the report.")] = "",
    contact_name: Annotated[str, typer.Option(
        "--contact-name", envvar="STRONGROOM_CONTACT_NAME", help="Contact-Name.")] = "",
    contact_email: Annotated[str, typer.Option(
        "--contact-email", envvar="STRONGROOM_CONTACT_EMAIL", help="Contact-Email.")] = "",
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a signed BagIt bag of a case, some originals or everything; logged as exported."""
    from strongroom.export.bag import ExportOptions
    from strongroom.export.bag import export as run_export

    extra = set(include or []) - {"derivatives"}
    if extra:
        raise StrongroomError(f"--include knows only 'derivatives', not {sorted(extra)}")
    if volume_size and not recipient:
        raise StrongroomError("--volume-size applies to encrypted output: add --recipient")
    if "/" in name or name.startswith("."):
        raise StrongroomError("--name is a plain folder name")
    opts = ExportOptions(
        case=case, everything=everything, originals=original or [],
        recipients=recipient or [], tsa_urls=tsa or [],
        include_derivatives="derivatives" in (include or []), reveal_stills=reveal_stills,
        reveal_acquisitions=reveal_acquisitions, volume_size=_size(volume_size), pdf=pdf,
        name=name, organisation=organisation, contact_name=contact_name,
        contact_email=contact_email)
    with _open(ctx, vault, passphrase_file) as v, _progress(not as_json) as bar:
        report = run_export(v, to, opts, _ExportBar(bar))
    out = "\n".join(f"  {p}" for p in report.output)
    human = (f"exported {report.description}: {report.originals} originals"
             f"{f', {report.derivatives} derivatives' if report.derivatives else ''}, "
             f"{report.payload_bytes / 1e6:.1f} MB in {report.seconds:.1f} s\n{out}\n"
             f"bag {report.bag_id}, tag manifest SHA-256 {report.tagmanifest_sha256}\n"
             f"signed by vault key {report.signing_key_fingerprint}"
             + (f"\nencrypted to {len(report.encrypted_to)} recipient(s): decrypt with "
                f"`cat {opts.name}.tar.age* | age -d -i KEY | tar x`" if report.encrypted_to
                else ""))
    _emit(as_json, report.to_json(), human)


class _ExportBar:
    def __init__(self, bar: RichProgress) -> None:
        self.bar = bar
        self.task = bar.add_task("export", total=None, files="")

    def start(self, files: int, total_bytes: int) -> None:
        self.bar.update(self.task, total=total_bytes, files=f"{files} files")

    def advance(self, nbytes: int) -> None:
        self.bar.advance(self.task, nbytes)


@app.command("verify-export")
def verify_export(
    bag: Annotated[Path, typer.Argument(help="The bag folder (decrypted and unpacked).")],
    expect_key: Annotated[str | None, typer.Option(
        "--expect-key", help="The signing key fingerprint you were given separately.")] = None,
    tsa_cert: Annotated[Path | None, typer.Option(
        "--tsa-cert", help="CA certificate of the timestamp authority, to check tokens.")] = None,
    workers: Annotated[int, typer.Option("--workers", help="Files hashed at once.", min=0,
                                         max=64)] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Check a handover bag anywhere, without the vault: digests, signatures, custody, tokens."""
    from strongroom.export.verifier import NotABag, summary, verify_bag

    if tsa_cert is not None and not tsa_cert.is_file():
        raise StrongroomError(f"--tsa-cert {tsa_cert} is not a file")

    def token_check(token: bytes, data: bytes, cert: Path) -> str:
        from strongroom.export.timestamp import verify_timestamp
        from strongroom.smallfiles import read_small

        try:
            info = verify_timestamp(token, data, read_small(cert, "certificate"))
        except (StrongroomError, OSError) as exc:
            raise ValueError(str(exc)) from None
        return f"{info.time.isoformat()} by {info.tsa}"

    try:
        with _progress(not as_json) as bar:
            task = bar.add_task("verify", total=None, files="")
            result = verify_bag(bag, expect_key=expect_key, tsa_cert=tsa_cert,
                                workers=workers or os.cpu_count() or 2,
                                progress=lambda n: bar.advance(task, n), verify_token=token_check)
    except NotABag as exc:  # a usage error (exit 2), not a failed check; main() says it
        raise StrongroomError(str(exc)) from None
    _emit(as_json, result.to_json(), summary(result))
    if not result.ok:
        raise typer.Exit(1)


@app.command("handed-over")
def handed_over(
    ctx: typer.Context,
    vault: VaultArg,
    bag_id: Annotated[str, typer.Argument(help="The export's bag identifier.")],
    to: Annotated[str, typer.Option("--to", help="Who received it (name, institution).")],
    how: Annotated[str, typer.Option("--how", help="How: courier, media serials …")] = "",
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record that an export was handed over, to whom and how."""
    from strongroom.export.receipt import record_handover

    with _open(ctx, vault, passphrase_file) as v:
        details = record_handover(v, bag_id, to, how)
    _emit(as_json, details, f"recorded: {bag_id} handed over to {to}")


@app.command()
def receipt(
    bag: Annotated[Path, typer.Argument(help="The bag as received (decrypted, unpacked).")],
    sign_with: Annotated[Path, typer.Option(
        "--sign-with", help="Your Ed25519 private key (ssh-keygen -t ed25519, or PEM).")],
    recipient: Annotated[str, typer.Option("--name", help="Who signs (name, office).")] = "",
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
    as_json: JsonOpt = False,
) -> None:
    """(Recipient) Verify a bag and sign a receipt for it; send the receipt back."""
    from strongroom.export.receipt import write_receipt

    doc, out = write_receipt(bag, sign_with, recipient, output, workers=os.cpu_count() or 2)
    _emit(as_json, {**doc, "file": str(out)}, f"bag verified; receipt written to {out}")


@app.command("import-receipt")
def import_receipt(
    ctx: typer.Context,
    vault: VaultArg,
    receipt_file: Annotated[Path, typer.Argument(help="The receipt JSON the recipient sent.")],
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a recipient's signed receipt and record it as `received`."""
    from strongroom.export.receipt import import_receipt as run_import

    with _open(ctx, vault, passphrase_file) as v:
        body = run_import(v, receipt_file)
    _emit(as_json, body, f"recorded: {body['bag_id']} received by {body['recipient'] or '?'} "
                         f"at {body['received_at']} (bag verified: {body['bag_verified']})")


@app.command()
def demo(
    ctx: typer.Context,
    vault: Annotated[Path, typer.Argument(help="Where to build the demo vault.")] = Path(
        "demo-vault"),
    force: Annotated[bool, typer.Option(
        "--force", help="Rebuild a demo vault that an earlier `demo` made there.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Build a demo vault from generated DVR-style clips and run every capability on it."""
    from strongroom.demo import run_demo

    data = run_demo(_settings(ctx, vault), show_progress=not as_json, force=force)
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


def main(argv: list[str] | None = None) -> None:
    """Run the CLI. Every failure is one line on stderr (and, with --json, a JSON object on
    stdout) with exit code 2 — 1 when a check found a problem — never a traceback."""
    from typer import Abort
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

    args = sys.argv[1:] if argv is None else argv
    as_json = "--json" in args
    command = typer.main.get_command(app)
    try:
        code = command.main(args=args, prog_name="strongroom", standalone_mode=False)
    except NoArgsIsHelpError as exc:  # `strongroom` alone: the help, which is no error
        if exc.format_message().strip():
            typer.echo(exc.format_message())
        sys.exit(0)
    except UsageError as exc:
        if exc.ctx is not None:
            typer.echo(exc.ctx.get_usage(), err=True)
        _fail(as_json, exc.format_message(), 2)
    except ClickException as exc:
        _fail(as_json, exc.format_message(), exc.exit_code)
    except StrongroomError as exc:
        _fail(as_json, str(exc), exc.exit_code)
    except (KeyboardInterrupt, Abort):
        _fail(as_json, "interrupted; nothing half-written was kept", 130)
    except Exception as exc:
        _fail(as_json, _unexpected(exc), 2)
    sys.exit(code if isinstance(code, int) else 0)


def _unexpected(exc: Exception) -> str:
    """One line for an error no code path turned into a StrongroomError."""
    if os.environ.get("STRONGROOM_DEBUG"):
        import traceback

        traceback.print_exception(exc)
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror}{where}"
    if isinstance(exc, RecursionError):
        return "too deeply nested to handle"
    return (f"unexpected {type(exc).__name__}: {exc} — please report it "
            "(STRONGROOM_DEBUG=1 shows where)")


def _fail(as_json: bool, message: str, code: int) -> None:
    message = " ".join(message.split())  # one line, whatever the message held
    if as_json:
        with contextlib.suppress(OSError):
            typer.echo(json.dumps({"error": message, "exit_code": code}, ensure_ascii=False))
    with contextlib.suppress(OSError):
        typer.echo(f"error: {message}", err=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
