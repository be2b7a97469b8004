"""The `strongroom` command line: one-line errors, exit codes 0/1/2, `--json` everywhere."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from strongroom.errors import StrongroomError
from strongroom.progress import ExportBar, IngestBar, ProcessBar, count_bar, transfer_bar
from strongroom.settings import Settings, load_settings

if TYPE_CHECKING:
    from strongroom.vault import Vault
    from strongroom.vault.opening import Credential, Held
    from strongroom.vault.shares import Split

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

SharesFileOpt = Annotated[
    Path | None,
    typer.Option("--shares-file", help="Open the vault with k SLIP-39 shares from this file "
                 "(one per line) instead of the passphrase."),
]


def _settings(ctx: typer.Context, vault: Path, passphrase_file: Path | None = None,
              shares_file: Path | None = None) -> Settings:
    """The Settings `main()` built, for this vault (and --passphrase-file / --shares-file,
    when given)."""
    base: Settings = ctx.obj
    update: dict[str, Any] = {"vault": vault}
    if passphrase_file is not None:
        update["passphrase_file"] = passphrase_file
    if shares_file is not None:
        update["shares_file"] = shares_file
    return base.model_copy(update=update)


MIN_PASSPHRASE = 12


def _passphrase(settings: Settings, *, confirm: bool = False) -> str:
    """From --passphrase-file, else $STRONGROOM_PASSPHRASE (both as `Settings` holds them),
    else asked on the terminal. A new passphrase (`confirm`) must be at least MIN_PASSPHRASE
    characters wherever it comes from."""
    passphrase_file = settings.passphrase_file
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
    if settings.passphrase is not None:
        env = settings.passphrase.get_secret_value()
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
          shares_file: Path | None = None, *, unseal: bool = True) -> Vault:
    from strongroom.vault.opening import read_marker, start_unseal

    settings = _settings(ctx, vault, passphrase_file, shares_file)
    read_marker(settings.vault)  # "not a vault" before asking for a passphrase
    # An encrypted catalogue (every vault made since they exist) opens only with the keys;
    # `unseal=False` commands read a plaintext one (an older vault's) without them.
    unseal = unseal or _catalogue_needs_keys(settings)
    # scrypt starts now, in the `age` child, while the catalogue code is imported
    unsealing = start_unseal(settings.vault, _credential(settings)) if unseal else None
    from strongroom.vault import Vault

    return Vault.open(_without_passphrase(settings), unsealing=unsealing)


class _Terminated(BaseException):
    """SIGTERM or SIGHUP (`timeout`, a service manager, a closed ssh session) while plaintext
    leaves the vault: unwinds like Ctrl-C, so the door records what already left (marked
    incomplete) and half-written files are removed, instead of dying with nothing on record.
    A BaseException, so that no `except Exception` on the way swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _unwind_on_termination() -> Iterator[None]:
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminated(signum: int, _frame: object) -> None:
        for sig in (signal.SIGTERM, signal.SIGHUP):  # a second signal kills at once
            signal.signal(sig, signal.SIG_DFL)
        raise _Terminated(signum)

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is not signal.SIG_IGN:  # `nohup` stays in force
            previous[sig] = signal.signal(sig, terminated)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _open_with(settings: Settings, credential: Credential) -> Vault:
    from strongroom.vault import Vault
    from strongroom.vault.opening import read_marker, start_unseal

    read_marker(settings.vault)
    return Vault.open(_without_passphrase(settings),
                      unsealing=start_unseal(settings.vault, credential))


def _credential(settings: Settings) -> Credential:
    """What opens the keys: the shares of --shares-file; else the passphrase; else, for a
    vault that only shares open, k shares typed at the terminal."""
    from strongroom.vault.opening import Shares, unlocks
    from strongroom.vault.shares import read_shares_file

    if settings.shares_file is not None:
        return Shares(tuple(read_shares_file(settings.shares_file)))
    given = bool(settings.passphrase and settings.passphrase.get_secret_value()) or \
        settings.passphrase_file is not None
    if not given:
        held = _held(settings.vault)
        if held is not None:
            return held
    has_passphrase, has_shares = unlocks(settings.vault)
    if has_shares and not has_passphrase and not given:
        return Shares(tuple(_ask_shares(settings.vault)))
    return _passphrase(settings)


def _held(vault: Path) -> Held | None:
    """The unseal agent's keys, when one holds this vault's (`unseal --hold`)."""
    from strongroom.vault import agent
    from strongroom.vault.opening import Held, read_marker

    fingerprint = read_marker(vault).fingerprint
    return Held(fingerprint) if agent.holding(fingerprint) else None


def _ask_shares(vault: Path) -> list[str]:
    """k shares typed at the terminal, one person after another (not echoed)."""
    import getpass

    from strongroom.vault.opening import recorded_share_set

    if not sys.stdin.isatty():
        raise StrongroomError("this vault opens with k of its shares: use --shares-file F "
                              "(one share per line), or run in a terminal")
    recorded = recorded_share_set(vault)
    k = recorded.threshold if recorded is not None else None
    typed: list[str] = []
    while k is None or len(typed) < k:
        label = f"Share {len(typed) + 1}" + (f" of {k}" if k else " (empty line: done)")
        text = getpass.getpass(f"{label}: ").strip()
        if not text and k is None:
            break
        if text:
            typed.append(text)
    return typed


def _catalogue_needs_keys(settings: Settings) -> bool:
    from strongroom.catalogue import is_plain_sqlite
    from strongroom.vault.vault import database_of

    url = database_of(settings).resolved_database_url()
    if not url.startswith("sqlite:///"):
        return False
    db = Path(url.removeprefix("sqlite:///"))
    return db.is_file() and not is_plain_sqlite(db)


def _without_passphrase(settings: Settings) -> Settings:
    """What the vault keeps: once the keys are unsealed nothing needs the passphrase again."""
    return settings.model_copy(update={"passphrase": None, "passphrase_file": None,
                                       "new_passphrase": None, "shares_file": None})


def _emit(as_json: bool, data: Any, human: str) -> None:
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        typer.echo(human)


@app.callback()
def _root(ctx: typer.Context) -> None:
    if not isinstance(ctx.obj, Settings):  # the app run without main() (typer's test runner)
        ctx.obj = load_settings()


SharesOpt = Annotated[str | None, typer.Option(
    "--shares", metavar="K-of-N",
    help="Also split the keys into N SLIP-39 shares, any K of which open the vault.")]


@app.command()
def init(ctx: typer.Context, vault: VaultArg, passphrase_file: PassFileOpt = None,
         shares: SharesOpt = None,
         no_passphrase: Annotated[bool, typer.Option(
             "--no-passphrase", help="With --shares: only K shares open the vault.")] = False,
         as_json: JsonOpt = False) -> None:
    """Create a vault: keys sealed under a passphrase and/or K-of-N shares; prints its public
    key (and the shares, once)."""
    from strongroom.vault import Vault
    from strongroom.vault.shares import Scheme, split

    if no_passphrase and shares is None:
        raise StrongroomError("--no-passphrase needs --shares K-of-N: something must open it")
    scheme = Scheme.parse(shares) if shares is not None else None
    settings = _settings(ctx, vault, passphrase_file)
    passphrase = None if no_passphrase else _passphrase(settings, confirm=True)
    made = split(scheme) if scheme is not None else None

    def show(public: Any) -> None:  # the new vault's PublicKeys
        """Printed before the vault exists: when the shares cannot be shown, no vault is
        left sealed for shares nobody saw."""
        data: dict[str, Any] = {"vault": str(vault), "age_recipient": public.age_recipient,
                                "signing_key_fingerprint": public.fingerprint}
        if made is not None:
            data["shares"] = {"scheme": str(made.scheme), "share_set": made.identifier,
                              "mnemonics": made.mnemonics}
        _emit(as_json, data, (
            f"Created vault {vault}\n"
            f"  public key (age):         {data['age_recipient']}\n"
            f"  signing key fingerprint:  {data['signing_key_fingerprint']}\n"
            "Write the fingerprint down somewhere else: it is how anyone checks the custody "
            "log." + (_shares_text(made) if made is not None else "")))
        sys.stdout.flush()

    with Vault.create(_without_passphrase(settings), passphrase, shares=made, announce=show):
        pass


def _shares_text(made: Split) -> str:
    lines = [f"\n\n{made.scheme.count} shares (set {made.identifier}); any "
             f"{made.scheme.threshold} open the vault. They are shown only now: give each to "
             "a different person, on paper, and clear this screen."]
    lines += [f"\n  share {i}: {m}" for i, m in enumerate(made.mnemonics, 1)]
    return "".join(lines)


@app.command()
def unseal(ctx: typer.Context, vault: VaultArg, passphrase_file: PassFileOpt = None,
           shares_file: SharesFileOpt = None,
           hold: Annotated[str | None, typer.Option(
               "--hold", metavar="DURATION",
               help="Keep the keys in an agent's memory for this long (e.g. 8h, 30m; at most "
                    "24h): this user's commands then need no passphrase or shares until "
                    "`strongroom seal` or the time runs out.")] = None,
           as_json: JsonOpt = False) -> None:
    """Open the vault with k shares (typed one person after another, or --shares-file) or
    the passphrase, naming a wrong share; with --hold, keep it open for a working day."""
    from strongroom.vault.opening import Shares, recorded_share_set

    hold_s = _duration(hold) if hold is not None else None
    settings = _settings(ctx, vault, passphrase_file, shares_file)
    given = bool(settings.passphrase and settings.passphrase.get_secret_value()) or \
        settings.passphrase_file is not None
    credential = _credential(settings) if shares_file or given else \
        Shares(tuple(_ask_shares(settings.vault)))
    how = "shares" if isinstance(credential, Shares) else "passphrase"
    with _open_with(settings, credential) as v:
        data: dict[str, Any] = {"vault": str(vault), "opened": True, "with": how,
                                "signing_key_fingerprint": v.public.fingerprint}
        if hold_s is not None:
            data["held_until"] = v.hold(hold_s, how)
    recorded = recorded_share_set(settings.vault)
    if isinstance(credential, Shares) and recorded is not None:
        data["share_set"] = recorded.identifier
    _emit(as_json, data, f"The {how} open(s) the vault {vault} (signing key "
          f"{data['signing_key_fingerprint']})." + (
              f" Its keys are held in memory until {data['held_until']} (UTC), or `strongroom "
              f"seal {vault}`." if hold_s is not None else ""))


@app.command()
def seal(ctx: typer.Context, vault: VaultArg, as_json: JsonOpt = False) -> None:
    """Drop the keys an unseal agent (`unseal --hold`) or a review server (`serve`) holds for
    this vault; logged."""

    from strongroom.vault import agent
    from strongroom.vault.opening import read_marker

    settings = _settings(ctx, vault)
    if agent.seal_server(read_marker(settings.vault).fingerprint):
        _emit(as_json, {"vault": str(vault), "sealed": True, "server": True},
              f"The review server of {vault} stopped and dropped its keys.")
        return
    held = _held(settings.vault)
    if held is None:
        _emit(as_json, {"vault": str(vault), "sealed": False},
              f"No unseal agent or review server holds the keys of {vault}.")
        return
    with _open_with(settings, held) as v:
        v.release()
    _emit(as_json, {"vault": str(vault), "sealed": True},
          f"The unseal agent dropped the keys of {vault}.")


def _duration(text: str) -> float:
    import re

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text.lower())
    if m is None:
        raise StrongroomError(f"a duration such as 8h, 30m or 90s, not {text!r}")
    seconds = float(m[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m[2]]
    if not 1 <= seconds <= 24 * 3600:
        raise StrongroomError("hold the keys for 1 s to 24 h")
    return seconds


@app.command()
def rekey(ctx: typer.Context, vault: VaultArg, passphrase_file: PassFileOpt = None,
          shares_file: SharesFileOpt = None,
          shares: Annotated[str | None, typer.Option(
              "--shares", metavar="K-of-N",
              help="Make a new share set (the old shares stop opening the vault).")] = None,
          new_passphrase: Annotated[bool, typer.Option(
              "--new-passphrase", help="Seal the keys under a new passphrase (asked twice, "
              "or the second line of --passphrase-file).")] = False,
          drop_passphrase: Annotated[bool, typer.Option(
              "--drop-passphrase", help="Only the shares open the vault afterwards.")] = False,
          drop_shares: Annotated[bool, typer.Option(
              "--drop-shares", help="Only the passphrase opens the vault afterwards.")] = False,
          as_json: JsonOpt = False) -> None:
    """Re-wrap the vault's keys (the blobs are not re-encrypted): a new share set, a new
    passphrase, or one of the two removed. Logged as a custody event."""
    from strongroom.vault.shares import Scheme, split

    scheme = Scheme.parse(shares) if shares is not None else None
    settings = _settings(ctx, vault, passphrase_file, shares_file)
    fresh = _second_passphrase(settings) if new_passphrase else None
    made = split(scheme) if scheme is not None else None

    def show(changes: dict[str, Any]) -> None:
        """Printed before anything changes: the old shares stay valid until the new ones
        have been shown."""
        data: dict[str, Any] = {"vault": str(vault), "changed": changes}
        if made is not None:
            data["shares"] = {"scheme": str(made.scheme), "share_set": made.identifier,
                              "mnemonics": made.mnemonics}
        _emit(as_json, data, f"Re-wrapping the keys of {vault}: {json.dumps(changes)}"
              + (_shares_text(made) if made is not None else ""))
        sys.stdout.flush()

    with _open(ctx, vault, passphrase_file, shares_file) as v:
        try:
            v.rekey(passphrase=fresh, shares=made, drop_passphrase=drop_passphrase,
                    drop_shares=drop_shares, announce=show)
        except StrongroomError as exc:
            if made is None:
                raise
            raise type(exc)(f"{exc} — the shares printed above may not be in effect: check "
                            "them with `strongroom unseal VAULT --shares-file F`") from None


@app.command("migrate-catalogue")
def migrate_catalogue(
    ctx: typer.Context, vault: VaultArg,
    encrypt: Annotated[bool, typer.Option(
        "--encrypt", help="Encrypt a plaintext SQLite catalogue in place (SQLCipher 4).")
    ] = False,
    passphrase_file: PassFileOpt = None,
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Convert the catalogue of a vault made before catalogue encryption existed; then checks
    the custody log and the catalogue (`verify --quick`)."""
    if not encrypt:
        raise StrongroomError("say what to do: --encrypt")
    with _open(ctx, vault, passphrase_file, shares_file) as v:
        details = v.encrypt_catalogue()
        report = v.verify(fixity=False)
    data = {"vault": str(vault), "encrypted": details, "verify": report.to_json()}
    rows = details.get("rows")
    done = (f"{sum(rows.values())} rows in {len(rows)} tables carried over" if rows else
            "finished what an interrupted run had begun")
    _emit(as_json, data, f"The catalogue of {vault} is now encrypted (SQLCipher 4); {done}.\n"
          + report.to_text() + "\nCopies and backups of the old catalogue.db are still in "
          "clear: replace them.")
    if not report.ok:
        raise typer.Exit(1)


def _second_passphrase(settings: Settings) -> str:
    """The new passphrase of `rekey --new-passphrase`: the second line of --passphrase-file,
    else $STRONGROOM_NEW_PASSPHRASE, else asked twice on the terminal."""
    import getpass

    from strongroom.smallfiles import read_small

    if settings.passphrase_file is not None:
        lines = read_small(settings.passphrase_file, "passphrase file", 64 * 1024).decode(
            "utf-8", "strict").splitlines()
        if len(lines) < 2 or not lines[1]:
            raise StrongroomError("rekey --new-passphrase with --passphrase-file reads the new "
                                  "passphrase from its second line, which is empty")
        return _new_passphrase(lines[1])
    if settings.new_passphrase is not None:
        return _new_passphrase(settings.new_passphrase.get_secret_value())
    if not sys.stdin.isatty():
        raise StrongroomError("no new passphrase: put it on the second line of "
                              "--passphrase-file or in STRONGROOM_NEW_PASSPHRASE")
    first = _new_passphrase(getpass.getpass("New vault passphrase: "))
    if getpass.getpass("Repeat new passphrase: ") != first:
        raise StrongroomError("the passphrases do not match")
    return first


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
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Capture a source: every file hashed, encrypted and recorded, once."""
    with _open(ctx, vault, passphrase_file, shares_file) as v, transfer_bar(not as_json) as bar:
        from strongroom.ingest import ingest as run_ingest  # after the unseal has started

        report = run_ingest(
            v, source, acquisition, received_by=received_by, received_at=received_at,
            progress=IngestBar(bar, "ingest"),
        )
    _emit(as_json, report.to_json(), report.to_text())


@app.command()
def verify(
    ctx: typer.Context,
    vault: VaultArg,
    quick: Annotated[bool, typer.Option(
        "--quick", help="Check the custody log and catalogue only, not every blob.")] = False,
    checkpoints: Annotated[Path | None, typer.Option(
        "--checkpoints", help="An off-site copy of custody-checkpoints.jsonl to compare with.")
    ] = None,
    schedule: Annotated[int | None, typer.Option(
        "--schedule", metavar="DAYS", min=1, max=3650,
        help="Re-hash only today's share of the blobs, so that a daily run checks them all "
             "every DAYS days (for cron / a systemd timer).")] = None,
    replicas: Annotated[bool, typer.Option(
        "--replicas", help="Also compare every blob with its copies in the vault's replicas "
        "(`replicate`), and put a good copy back where one is damaged or missing.")] = False,
    passphrase_file: PassFileOpt = None,
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the custody chain, checkpoints, catalogue and every blob; exit 1 on any problem."""
    if quick and schedule is not None:
        raise StrongroomError("--quick re-hashes no blob and --schedule re-hashes today's "
                              "share: choose one")
    copies = None
    with _open(ctx, vault, passphrase_file, shares_file) as v:
        from strongroom.catalogue.queries import vault_stats  # after the unseal has started

        total = vault_stats(v)["original_bytes"]
        if replicas:
            from strongroom.vault.replicas import check_replicas

            copies = check_replicas(v)
        with transfer_bar(not as_json) as bar:
            task = bar.add_task("fixity", total=0 if quick or schedule else total, files="")
            report = v.verify(fixity=not quick, checkpoints_copy=checkpoints,
                              advance=lambda n: bar.advance(task, n), schedule=schedule)
    if copies is not None:
        report.warnings.extend(copies.warnings())
        report.problems.extend(copies.problems())
    if not report.ok:
        # the alert: stderr (cron mails it), the exit code, and the signed `verified` event
        # with its problem count that the review app shows as a banner
        print(f"ALERT: strongroom verify found {len(report.problems)} problem(s) in {vault}",
              file=sys.stderr)
    data = report.to_json()
    if copies is not None:
        data["replicas"] = copies.as_dict()
    _emit(as_json, data, report.to_text())
    if not report.ok:
        raise typer.Exit(1)


def _copy_report(report: Any) -> str:
    lines = [f"{report.total} blob(s) at {report.target}: {report.copied} copied "
             f"({report.bytes_copied / 1024**2:.1f} MiB), {report.already_there} already "
             "there and checked"]
    lines += [f"  problem: {p}" for p in report.problems]
    return "\n".join(lines)


@app.command("migrate-store")
def migrate_store(
    ctx: typer.Context, vault: VaultArg,
    target: Annotated[str, typer.Argument(help="The new blob store: s3://bucket/prefix or a "
                                          "folder.")],
    passphrase_file: PassFileOpt = None, shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Move the vault's blobs to another store (the laptop shape to the server shape): each
    copied as ciphertext and checked there, then the vault uses the new store (vault.json,
    custody event `migrated`). The old store is left for you to remove."""
    from dataclasses import asdict

    from strongroom.vault import replicas

    with _open(ctx, vault, passphrase_file, shares_file) as v, count_bar(not as_json) as bar:
        task = bar.add_task("copying blobs", total=None, files="")
        report = replicas.migrate_store(v, target, advance=lambda n: bar.advance(task, n))
    _emit(as_json, asdict(report), _copy_report(report) + "\nthe vault now uses " + target)


@app.command("migrate-db")
def migrate_db(
    ctx: typer.Context, vault: VaultArg,
    target: Annotated[str, typer.Argument(
        help="The new catalogue database, empty: postgresql+psycopg://user@host/db (the "
             "password from PGPASSWORD or ~/.pgpass, or in the URL).")],
    passphrase_file: PassFileOpt = None, shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Move the vault's catalogue to PostgreSQL: every row copied and counted, the custody
    chain checked there, custody event `migrated`; then the vault uses it (vault.json names
    it, without its password). The old catalogue file is left for you to remove."""
    from strongroom.vault import replicas

    with _open(ctx, vault, passphrase_file, shares_file) as v, count_bar(not as_json) as bar:
        task = bar.add_task("copying rows", total=None, files="")
        data = replicas.migrate_db(v, target, advance=lambda n: bar.advance(task, n))
    _emit(as_json, data, f"{sum(data['rows'].values())} rows in {len(data['rows'])} tables "
          f"moved to {data['to']}; custody chain checked there. The vault now uses it.")


@app.command()
def replicate(
    ctx: typer.Context, vault: VaultArg,
    target: Annotated[str, typer.Argument(help="The replica: a folder (another disk) or "
                                          "s3://bucket/prefix.")],
    passphrase_file: PassFileOpt = None, shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Keep an encrypted replica of the vault's blobs at TARGET: copy what it lacks, check
    what it has; `verify --replicas` compares and repairs the copies. Exit 1 on a problem."""
    from dataclasses import asdict

    from strongroom.vault import replicas

    with _open(ctx, vault, passphrase_file, shares_file) as v, count_bar(not as_json) as bar:
        task = bar.add_task("replicating", total=None, files="")
        report = replicas.replicate(v, target, advance=lambda n: bar.advance(task, n))
    _emit(as_json, asdict(report), _copy_report(report))
    if report.problems:
        raise typer.Exit(1)


@app.command()
def log(
    ctx: typer.Context,
    vault: VaultArg,
    action: Annotated[str | None, typer.Option(help="Only events of this action.")] = None,
    limit: Annotated[int, typer.Option(help="Last N events (0: all).", min=0,
                                       max=2**62)] = 0,
    passphrase_file: PassFileOpt = None,
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the custody log."""
    from sqlalchemy import select

    from strongroom.catalogue.models import CustodyEvent
    from strongroom.custody.log import event_json

    with _open(ctx, vault, passphrase_file, shares_file, unseal=False) as v, \
            v.catalogue.read() as s:
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
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Decrypt one original to stdout or a file; logged as a download."""
    from strongroom.fsio import new_private_file

    if as_json and output is None:
        raise StrongroomError("--json needs --output (stdout carries the file itself)")
    if output is not None:
        _check_output_file(output)
    elif sys.stdout is None or sys.stdout.closed:
        raise StrongroomError("standard output is closed: give --output FILE")
    with _unwind_on_termination(), _open(ctx, vault, passphrase_file, shares_file) as v:
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
            # A private temporary file (0600, a name no other command uses), linked into
            # place only if `output` is still free: two `cat`s to one name, or a symlink
            # planted beside it, can neither take nor remove the other's plaintext.
            with new_private_file(output) as f, \
                    v.open_original(sha256, to="file") as opened:
                try:
                    d = opened.copy_to(f.write)
                    f.flush()
                except OSError as exc:
                    raise StrongroomError(f"cannot write {output}: {exc.strerror}") \
                        from None
    if as_json:
        _emit(True, {"sha256": d.sha256, "md5": d.md5, "size": d.size, "output": str(output),
                     "verified": True}, "")


def _check_output_file(output: Path) -> None:
    """Before anything is decrypted: the file must be new, in a folder that exists."""
    from strongroom.fsio import check_new_output

    check_new_output(output)


@app.command()
def doctor(ctx: typer.Context,
           vault: Annotated[Path | None, typer.Argument(
               help="A vault folder to check too (its marker, where its blobs are).")] = None,
           as_json: JsonOpt = False) -> None:
    """Check the database, blob store, executor and tools these settings use (no passphrase
    needed; nothing is written). Exit 1 if any check fails."""
    from strongroom.doctor import as_json as checks_json
    from strongroom.doctor import diagnose

    base: Settings = ctx.obj
    settings = base.model_copy(update={"vault": vault}) if vault is not None else base
    checks = diagnose(settings, vault=vault is not None)
    width = max(len(c.name) for c in checks)
    human = "\n".join(f"{'ok ' if c.ok else 'BAD'} {c.name:<{width}}  {c.found}"
                      + (f"  [{c.setting}]" if not c.ok and c.setting else "")
                      for c in checks)
    _emit(as_json, checks_json(checks), human)
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


@app.command()
def stats(ctx: typer.Context, vault: VaultArg, passphrase_file: PassFileOpt = None,
          shares_file: SharesFileOpt = None, as_json: JsonOpt = False) -> None:
    """Counts and sizes."""
    from strongroom.catalogue.queries import vault_stats

    with _open(ctx, vault, passphrase_file, shares_file, unseal=False) as v:
        data = vault_stats(v)
    human = "\n".join(f"{k.replace('_', ' '):>22}: {val}" for k, val in data.items())
    _emit(as_json, data, human)


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
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run every pending analysis step on every original (resumable). Exit 1 when any step
    failed (each failure is listed, and kept for `--retry-errors`)."""
    from strongroom.pipeline.runner import process as run_process

    if workers is not None and workers < 1:
        raise StrongroomError(f"--workers must be at least 1, not {workers}")
    names = steps.split(",") if steps else None
    with _open(ctx, vault, passphrase_file, shares_file) as v, count_bar(not as_json) as bar:
        report = run_process(v, steps=names, workers=workers, retry_errors=retry_errors,
                             progress=ProcessBar(bar))
    _emit(as_json, report.to_json(), report.to_text())
    if report.errors:
        raise typer.Exit(1)


@app.command()
def timeline(
    ctx: typer.Context,
    vault: VaultArg,
    camera: Annotated[str | None, typer.Option(help="Only this camera label.")] = None,
    passphrase_file: PassFileOpt = None,
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Per camera: segments in DVR-clock order, gaps and overlaps flagged; clips with no DVR
    clock listed apart."""
    from strongroom.catalogue.timeline import timeline as build

    with _open(ctx, vault, passphrase_file, shares_file, unseal=False) as v, \
            v.catalogue.read() as s:
        data = build(s, camera)
    if camera is not None and not data.cameras:
        raise StrongroomError(f"no segments for camera {camera!r}")
    _emit(as_json, data.to_json(), data.to_text())


@app.command()
def search(
    ctx: typer.Context,
    vault: VaultArg,
    query: Annotated[str, typer.Argument(help='Words (all must match, any inflection) and '
                                         '"quoted phrases".')],
    facility: Annotated[str | None, typer.Option(help="Only this facility.")] = None,
    region: Annotated[str | None, typer.Option(help="Only facilities of this region.")] = None,
    camera: Annotated[str | None, typer.Option(help="Only this camera label.")] = None,
    date_from: Annotated[str | None, typer.Option(
        "--from", metavar="DATE", help="DVR clock from (YYYY-MM-DD[ HH:MM:SS]).")] = None,
    date_to: Annotated[str | None, typer.Option(
        "--to", metavar="DATE", help="DVR clock to (a bare date: to its end).")] = None,
    abuse_type: Annotated[str | None, typer.Option("--type", help="Only incidents of this "
                                                   "abuse type (and their clips).")] = None,
    status: Annotated[str | None, typer.Option(help="Only clips with this review status "
                                               "(and their incidents).")] = None,
    case: Annotated[str | None, typer.Option(help="Only this case's incidents and clips.")
                    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many hits.")] = 50,
    passphrase_file: PassFileOpt = None,
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search incidents, cases, notes, cameras, transcripts, pseudonyms and facilities
    (Russian and English, any inflection). Reads the catalogue only: not a custody event."""
    from strongroom.catalogue.search import Filters, parse_clock
    from strongroom.catalogue.search import search as find

    filters = Filters(
        facility=facility, region=region, camera=camera,
        date_from=None if date_from is None else parse_clock(date_from),
        date_to=None if date_to is None else parse_clock(date_to, end=True),
        abuse_type=abuse_type, status=status, case=case)
    with _open(ctx, vault, passphrase_file, shares_file, unseal=False) as v, \
            v.catalogue.read() as s:
        results = find(s, query, filters, limit=limit)
    _emit(as_json, results.to_json(), results.to_text())


@app.command()
def dupes(
    ctx: typer.Context, vault: VaultArg,
    confirm: Annotated[str | None, typer.Option(
        metavar="SHA256", help="Confirm the group holding this clip: all its members are "
                               "copies of one recording (logged).")] = None,
    best: Annotated[str | None, typer.Option(
        metavar="SHA256", help="Make this clip its group's best copy, the one to cite "
                               "(logged; with --confirm: confirm with it as best).")] = None,
    split: Annotated[str | None, typer.Option(
        metavar="SHA256", help="Split this clip out of its group: not a copy of the others; "
                               "never grouped with them again (logged).")] = None,
    note: Annotated[str | None, typer.Option(help="Why (kept with the decision).")] = None,
    passphrase_file: PassFileOpt = None,
    shares_file: SharesFileOpt = None, as_json: JsonOpt = False,
) -> None:
    """Near-duplicate groups (PDQ per second), each with its best-quality member and the
    decisions people made (confirmed, best copy chosen, clips split out). With --confirm,
    --best or --split: record one decision (clips by at least 8 hex digits of their
    SHA-256), then print the group as it now stands."""
    from strongroom.catalogue.dupes import Decision, decide, near_duplicate_groups

    chosen = [x for x in (confirm, best, split) if x is not None]
    if split is not None and (confirm is not None or best is not None):
        raise StrongroomError("one decision at a time: --confirm (with --best), --best or "
                              "--split")
    if chosen:
        with _open(ctx, vault, passphrase_file, shares_file) as v:
            group, *rest = [v.find_original(x).sha256 for x in chosen]
            what = (Decision(group, "confirmed", best=rest[0] if rest else None, note=note)
                    if confirm is not None else
                    Decision(group, "best", best=group, note=note) if best is not None else
                    Decision(group, "distinct", members=(group,), note=note))
            data = decide(v, what)
        shown = data["group"]
        _emit(as_json, data, f"recorded: {data['decision']['decision']}" + (
            f"; the group now has {len(shown['members'])} members, best {shown['best']}"
            if shown else "; no group remains"))
        return
    if note is not None:
        raise StrongroomError("--note goes with --confirm, --best or --split")
    with _open(ctx, vault, passphrase_file, shares_file, unseal=False) as v, \
            v.catalogue.read() as s:
        groups = near_duplicate_groups(s)
    _emit(as_json, [g.to_json() for g in groups],
          "\n".join(g.to_text(i) for i, g in enumerate(groups, 1)) or "(no near-duplicates)")


clocks_app = typer.Typer(
    help="DVR clocks: which way round the vault's slashed dates are (06/05: 6 May or 5 June).",
    no_args_is_help=True)
app.add_typer(clocks_app, name="clocks")


@clocks_app.command("orders")
def clocks_orders(ctx: typer.Context, vault: VaultArg, passphrase_file: PassFileOpt = None,
                  shares_file: SharesFileOpt = None, as_json: JsonOpt = False) -> None:
    """How many clips show each day/month order, the order in force and why, and how many
    clips are unplaced for want of one."""
    from strongroom.catalogue.date_order import summary, summary_text

    with _open(ctx, vault, passphrase_file, shares_file, unseal=False) as v:
        rows = summary(v)
    _emit(as_json, rows, summary_text(rows))


@clocks_app.command("order")
def clocks_order(
    ctx: typer.Context,
    vault: VaultArg,
    order: Annotated[str, typer.Argument(
        help="DD/MM or MM/DD: how the recorder writes dates; auto: the clips decide again.")],
    passphrase_file: PassFileOpt = None,
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Say which way round the vault's slashed dates are (logged); `process` then places the
    clips that waited for it."""
    from strongroom.catalogue.date_order import set_order

    with _open(ctx, vault, passphrase_file, shares_file) as v:
        data = set_order(v, None if order == "auto" else order)
    _emit(as_json, data, f"{data['shape']} dates: {data['order'] or 'decided by the clips'} "
                         f"(was {data['previous'] or 'decided by the clips'}); run `strongroom "
                         "process` to read the clips it concerns again")


cameras_app = typer.Typer(
    help="Cameras read from overlays: list them, map one to a facility, correct a label "
         "OCR misread, or say that two cameras are one (each change logged).",
    no_args_is_help=True)
app.add_typer(cameras_app, name="cameras")
LabelArg = Annotated[str, typer.Argument(help="A camera label, as `cameras list` shows it.")]


@cameras_app.command("list")
def cameras_list(ctx: typer.Context, vault: VaultArg, passphrase_file: PassFileOpt = None,
                 shares_file: SharesFileOpt = None, as_json: JsonOpt = False) -> None:
    """Every camera: segments, facility, what OCR read, what it was merged into."""
    from strongroom.catalogue.places import cameras_text, list_cameras

    with _open(ctx, vault, passphrase_file, shares_file, unseal=False) as v:
        rows = list_cameras(v)
    _emit(as_json, rows, cameras_text(rows))


@cameras_app.command("map")
def cameras_map(
    ctx: typer.Context,
    vault: VaultArg,
    label: LabelArg,
    facility: Annotated[str, typer.Option(
        help="Map the camera to this facility (created if new).")],
    facility_type: Annotated[str | None, typer.Option(
        "--type", help="Facility type: a code of `vocabulary list --kind facility`, or its "
                       "abbreviation, e.g. СИЗО, ИК, ОТБ.")] = None,
    region: Annotated[str | None, typer.Option(help="Facility region.")] = None,
    passphrase_file: PassFileOpt = None,
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Map a camera to a facility (logged)."""
    from strongroom.catalogue.places import map_camera

    with _open(ctx, vault, passphrase_file, shares_file) as v:
        data = map_camera(v, label, facility, facility_type=facility_type, region=region)
    _emit(as_json, data, f"{label} → {facility}")


@cameras_app.command("rename")
def cameras_rename(
    ctx: typer.Context,
    vault: VaultArg,
    old: LabelArg,
    new: Annotated[str, typer.Argument(help="The label as a person reads it.")],
    passphrase_file: PassFileOpt = None,
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Correct a camera label OCR misread (logged; what OCR read stays on record)."""
    from strongroom.catalogue.places import rename_camera

    with _open(ctx, vault, passphrase_file, shares_file) as v:
        data = rename_camera(v, old, new)
    _emit(as_json, data, f"{old} → {data['camera']}  (OCR read {data['ocr_label']})")


@cameras_app.command("merge")
def cameras_merge(
    ctx: typer.Context,
    vault: VaultArg,
    source: Annotated[str, typer.Argument(help="The camera that is really TARGET.")],
    target: Annotated[str, typer.Argument(help="The camera it is; keeps its label.")],
    passphrase_file: PassFileOpt = None,
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Say two cameras are one: SOURCE's clips show under TARGET from now on (logged)."""
    from strongroom.catalogue.places import merge_cameras

    with _open(ctx, vault, passphrase_file, shares_file) as v:
        data = merge_cameras(v, source, target)
    _emit(as_json, data, f"{', '.join(data['merged'])} → {target}")


vocabulary_app = typer.Typer(
    help="Abuse types and facility types: the shipped terms and this vault's own (each change "
         "logged).", no_args_is_help=True)
app.add_typer(vocabulary_app, name="vocabulary")
KindArg = Annotated[str, typer.Argument(help="abuse or facility.")]
CodeArg = Annotated[str, typer.Argument(help="The term's code, as `vocabulary list` shows it.")]


@vocabulary_app.command("list")
def vocabulary_list(
    ctx: typer.Context,
    vault: VaultArg,
    kind: Annotated[str | None, typer.Option(help="abuse or facility (default: both).")
                    ] = None,
    retired: Annotated[bool, typer.Option("--retired", help="Show retired terms too.")
                       ] = False,
    passphrase_file: PassFileOpt = None,
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The terms offered for new records: code, English and Russian label."""
    from strongroom.catalogue.vocabulary import listing, terms_text

    with _open(ctx, vault, passphrase_file, shares_file, unseal=False) as v:
        rows = listing(v, kind, retired=retired)
    _emit(as_json, rows, terms_text(rows))


@vocabulary_app.command("add")
def vocabulary_add(
    ctx: typer.Context,
    vault: VaultArg,
    kind: KindArg,
    code: Annotated[str, typer.Argument(help="A new code: lower-case words, e.g. 'mock "
                                             "execution'.")],
    en: Annotated[str, typer.Option("--en", help="English label.")],
    ru: Annotated[str, typer.Option("--ru", help="Russian label.")],
    passphrase_file: PassFileOpt = None,
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a term to a vocabulary (logged)."""
    from strongroom.catalogue.vocabulary import add

    with _open(ctx, vault, passphrase_file, shares_file) as v:
        data = add(v, kind, code, en=en, ru=ru)
    _emit(as_json, data, f"{data['kind']} {data['code']!r}: {data['en']} / {data['ru']}")


@vocabulary_app.command("relabel")
def vocabulary_relabel(
    ctx: typer.Context,
    vault: VaultArg,
    kind: KindArg,
    code: CodeArg,
    en: Annotated[str | None, typer.Option("--en", help="New English label.")] = None,
    ru: Annotated[str | None, typer.Option("--ru", help="New Russian label.")] = None,
    passphrase_file: PassFileOpt = None,
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Give a term new labels (logged); records keep its code."""
    from strongroom.catalogue.vocabulary import relabel

    with _open(ctx, vault, passphrase_file, shares_file) as v:
        data = relabel(v, kind, code, en=en, ru=ru)
    _emit(as_json, data, f"{data['kind']} {data['code']!r}: {data['en']} / {data['ru']}")


@vocabulary_app.command("retire")
def vocabulary_retire(
    ctx: typer.Context,
    vault: VaultArg,
    kind: KindArg,
    code: CodeArg,
    passphrase_file: PassFileOpt = None,
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Stop offering a term (logged); records that have it keep it."""
    from strongroom.catalogue.vocabulary import retire

    with _open(ctx, vault, passphrase_file, shares_file) as v:
        data = retire(v, kind, code)
    _emit(as_json, data, f"{data['kind']} {data['code']!r} retired: no longer offered; "
                         "records that have it keep it")


@app.command("contact-sheet")
def contact_sheet(
    ctx: typer.Context,
    vault: VaultArg,
    sha256: Annotated[str, typer.Argument(help="SHA-256 (or a unique prefix) of an original.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="JPEG file to write.")],
    reveal: Annotated[bool, typer.Option(
        "--reveal", help="Unblurred, in colour (logged). Default: blurred greyscale.")] = False,
    passphrase_file: PassFileOpt = None,
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write an original's contact sheet (grid of timestamped thumbnails)."""
    from strongroom.pipeline.views import write_contact_sheet

    _check_output_file(output)
    with _unwind_on_termination(), _open(ctx, vault, passphrase_file, shares_file) as v:
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
    organisation: Annotated[str | None, typer.Option(
        "--organisation", help="Source-Organization in bag-info.txt and the report "
                               "(default: STRONGROOM_ORGANISATION).")] = None,
    contact_name: Annotated[str | None, typer.Option(
        "--contact-name", help="Contact-Name (default: STRONGROOM_CONTACT_NAME).")] = None,
    contact_email: Annotated[str | None, typer.Option(
        "--contact-email", help="Contact-Email (default: STRONGROOM_CONTACT_EMAIL).")] = None,
    passphrase_file: PassFileOpt = None,
    shares_file: SharesFileOpt = None,
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
    settings: Settings = ctx.obj
    opts = ExportOptions(
        case=case, everything=everything, originals=original or [],
        recipients=recipient or [], tsa_urls=tsa or [],
        include_derivatives="derivatives" in (include or []), reveal_stills=reveal_stills,
        reveal_acquisitions=reveal_acquisitions, volume_size=_size(volume_size), pdf=pdf,
        name=name,
        organisation=settings.organisation if organisation is None else organisation,
        contact_name=settings.contact_name if contact_name is None else contact_name,
        contact_email=settings.contact_email if contact_email is None else contact_email)
    with _unwind_on_termination(), _open(ctx, vault, passphrase_file, shares_file) as v, \
            transfer_bar(not as_json) as bar:
        report = run_export(v, to, opts, ExportBar(bar))
    _emit(as_json, report.to_json(), report.to_text())


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
    from strongroom.export.verifier import NotABag, verify_bag

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
        with transfer_bar(not as_json) as bar:
            task = bar.add_task("verify", total=None, files="")
            result = verify_bag(bag, expect_key=expect_key, tsa_cert=tsa_cert,
                                workers=workers or os.cpu_count() or 2,
                                progress=lambda n: bar.advance(task, n), verify_token=token_check)
    except NotABag as exc:  # a usage error (exit 2), not a failed check; main() says it
        raise StrongroomError(str(exc)) from None
    _emit(as_json, result.to_json(), result.to_text())
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
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record that an export was handed over, to whom and how."""
    from strongroom.export.receipt import record_handover

    with _open(ctx, vault, passphrase_file, shares_file) as v:
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
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a recipient's signed receipt and record it as `received`."""
    from strongroom.export.receipt import import_receipt as run_import

    with _open(ctx, vault, passphrase_file, shares_file) as v:
        body = run_import(v, receipt_file)
    _emit(as_json, body, f"recorded: {body['bag_id']} received by {body['recipient'] or '?'} "
                         f"at {body['received_at']} (bag verified: {body['bag_verified']})")


@app.command()
def serve(
    ctx: typer.Context,
    vault: VaultArg,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8765,
    ssl_certfile: Annotated[Path | None, typer.Option(
        "--ssl-certfile", help="Serve HTTPS with this certificate (PEM).")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(
        "--ssl-keyfile", help="... and this private key (PEM).")] = None,
    hours: Annotated[float, typer.Option(
        "--hours", min=0.01, max=24, help="Stop serving (and drop the keys) after this "
                                          "many hours.")] = 12,
    passphrase_file: PassFileOpt = None,
    shares_file: SharesFileOpt = None,
) -> None:
    """Serve the review app: unseals the vault once, keeps its keys in this process's memory
    only, and drops them when it stops (Ctrl-C, SIGTERM or after --hours)."""
    from strongroom.review.serve import check_address, serve_app

    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise StrongroomError("give both --ssl-certfile and --ssl-keyfile, or neither")
    check_address(host, ssl_certfile is not None)  # before anyone types a passphrase
    with _open(ctx, vault, passphrase_file, shares_file) as v:
        serve_app(v, host=host,
                  port=port, certfile=ssl_certfile, keyfile=ssl_keyfile, hours=hours)


@app.command("intake-serve")
def intake_serve(
    data: Annotated[Path, typer.Option("--data", help="The intake's own data folder (made on "
                                                      "first use).")],
    public_key: Annotated[str | None, typer.Option(
        "--public-key", help="The vault's age public key (age1...): what arrives is encrypted "
                             "to it. Needed the first time only.")] = None,
    vault: Annotated[Path | None, typer.Option(
        "--vault", help="Take the public key from this vault's folder instead (nothing is "
                        "unsealed).")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on (an onion service points "
                                           "here).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8780,
    max_file_gb: Annotated[float, typer.Option("--max-file-gb", min=0.000001,
                                               help="Largest file accepted, GB.")] = 100.0,
    quota_gb: Annotated[float, typer.Option("--quota-gb", min=0.000001,
                                            help="All uploads not yet imported, GB.")] = 2000.0,
    source_quota_gb: Annotated[float, typer.Option(
        "--source-quota-gb", min=0.000001, help="One codename's uploads not yet imported, GB."
    )] = 300.0,
    expire_days: Annotated[int, typer.Option(
        "--expire-days", min=1, max=365, help="Drop an unfinished upload untouched this "
                                              "long.")] = 7,
    public: Annotated[bool, typer.Option(
        "--public", help="Allow an address other than loopback (sources' addresses are then "
                         "seen on the network: serve behind an onion service instead).")
    ] = False,
) -> None:
    """Serve the intake for sources: tus uploads and messages, encrypted on arrival to the
    vault's public key. Holds no private key; runs on its own host."""
    import ipaddress

    import uvicorn

    from strongroom.intake.app import IntakeSettings, create_app
    from strongroom.intake.store import IntakeError, Limits
    from strongroom.review.serve import uvicorn_config

    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not public:
        raise StrongroomError(f"the intake listens on loopback only (an onion service points "
                              f"there); {host} would show sources' addresses to the network: "
                              "add --public if that is really meant")
    for folder in (data.absolute(), *data.absolute().parents):
        if (folder / "vault.json").exists():
            raise StrongroomError(f"{data} is inside the vault {folder}: the intake runs on its "
                                  "own host, with its own folder")
    if vault is not None:
        from strongroom.vault.opening import read_marker

        if public_key is not None:
            raise StrongroomError("give --public-key or --vault, not both")
        if data.absolute() in (vault.absolute(), *vault.absolute().parents):
            raise StrongroomError(f"{data} holds the vault {vault}: the intake runs on its own "
                                  "host, with its own folder")
        public_key = read_marker(vault).age_recipient
    gb = 10**9
    limits = Limits(max_file=int(max_file_gb * gb), quota_total=int(quota_gb * gb),
                    quota_source=int(source_quota_gb * gb), expire_days=expire_days)
    try:
        application = create_app(IntakeSettings(data, public_key, limits))
    except (IntakeError, ValueError) as exc:
        raise StrongroomError(str(exc)) from None
    config = uvicorn_config(application, host, port)
    config.access_log = False  # addresses and exact times stay out of every log
    print(f"Serving the intake on http://{host}:{port}/ from {data} (Ctrl-C stops it).",
          flush=True)
    uvicorn.Server(config).run()


@app.command("import-intake")
def import_intake(
    ctx: typer.Context,
    vault: VaultArg,
    data: Annotated[Path, typer.Argument(help="The intake's data folder (or a copy of it).")],
    purge_imported: Annotated[bool, typer.Option(
        "--purge-imported", help="Then delete the intake's copies of what is now in the "
                                 "vault.")] = False,
    received_by: Annotated[str | None, typer.Option(help="Who imported it.")] = None,
    passphrase_file: PassFileOpt = None,
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Take what sources sent through the intake into the vault (one acquisition per source),
    and leave each source a receipt in the intake folder. Safe to re-run."""
    with _open(ctx, vault, passphrase_file, shares_file) as v, transfer_bar(not as_json) as bar:
        from strongroom.ingest.intake import import_intake as run_import

        report = run_import(v, data, purge=purge_imported, received_by=received_by,
                            progress=IngestBar(bar, "import"))
    _emit(as_json, report.to_json(), report.to_text())
    if report.mismatches or report.to_json()["errors"]:
        raise typer.Exit(1)


@app.command("intake-messages")
def intake_messages(
    ctx: typer.Context,
    vault: VaultArg,
    data: Annotated[Path, typer.Argument(help="The intake's data folder (or a copy of it).")],
    passphrase_file: PassFileOpt = None,
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Read the sources' messages (and the replies and receipts sent to them)."""
    with _open(ctx, vault, passphrase_file, shares_file) as v:
        from strongroom.ingest.intake import read_messages

        found = read_messages(v, data)
    from strongroom.ingest.source import shown  # a source's words: no terminal escapes

    lines = []
    for src in found:
        lines.append(f"source {src['source']}:")
        lines += [f"  #{m['seq']} {m['from']}: {shown(m['text'])}" for m in src["messages"]]
    _emit(as_json, found, "\n".join(lines) or "no messages")


@app.command("intake-reply")
def intake_reply(
    ctx: typer.Context,
    vault: VaultArg,
    data: Annotated[Path, typer.Argument(help="The intake's data folder.")],
    source: Annotated[str, typer.Argument(help="The source (the start of its id, as "
                                               "`intake-messages` shows it).")],
    text: Annotated[str, typer.Argument(help="The reply.")],
    passphrase_file: PassFileOpt = None,
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer a source: the reply is encrypted to that source and to the vault."""
    with _open(ctx, vault, passphrase_file, shares_file) as v:
        from strongroom.ingest.intake import reply

        data_out = reply(v, data, source, text)
    _emit(as_json, data_out, f"reply #{data_out['seq']} left for source {data_out['source']}")


@app.command()
def send(
    url: Annotated[str, typer.Argument(help="The intake's address (an .onion address through "
                                            "torsocks, or http://127.0.0.1:8780).")],
    files: Annotated[list[Path] | None, typer.Argument(help="The files to send.")] = None,
    codename: Annotated[str | None, typer.Option(
        "--codename", help="Your codename (seven words), to resume or add to earlier "
                           "uploads. Without it you get a new one.")] = None,
    lang: Annotated[str, typer.Option(help="Words of a new codename: ru or en.")] = "ru",
    chunk_mb: Annotated[int, typer.Option("--chunk-mb", min=1, max=512,
                                          help="Bytes per request, MB.")] = 8,
    give_up_after: Annotated[float, typer.Option(
        "--give-up-after", min=1, help="Stop after the intake is unreachable this many "
                                       "seconds (run again to resume).")] = 300.0,
    read: Annotated[bool, typer.Option(
        "--read", help="Show the replies and receipts for --codename (no files needed).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Send files to an organisation's intake, resumably: run the same command again (with
    --codename) after an interruption and it goes on where it stopped."""
    from strongroom.intake.client import SendError
    from strongroom.intake.client import read as read_messages
    from strongroom.intake.client import send as run_send

    if lang not in ("ru", "en"):
        raise StrongroomError("--lang is ru or en")
    if read:
        if not codename:
            raise StrongroomError("--read needs --codename")
        try:
            found = read_messages(url, codename, give_up_after=give_up_after)
        except SendError as exc:
            raise StrongroomError(str(exc)) from None
        _emit(as_json, found, _inbox_text(found))
        if not files:
            return
    if not files:
        raise StrongroomError("name the files to send (or --read with --codename)")
    said: dict[str, str] = {}

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def remember(name: str) -> None:
        said["codename"] = name

    with transfer_bar(not as_json) as bar:
        def progress(label: str, total: int, done: int) -> Any:
            task = bar.add_task(label, total=total, files="", completed=done)
            return lambda n: bar.advance(task, n)

        try:
            report = run_send(url, files, codename=codename, lang=lang,
                              chunk=chunk_mb * 2**20, give_up_after=give_up_after, say=say,
                              on_codename=remember, progress=progress)
        except SendError as exc:
            name = codename or said.get("codename")
            again = f" Run it again with --codename '{name}' to resume." if name else ""
            raise StrongroomError(f"{exc}.{again}") from None
    lines = [f"{f.name}: {f.size} bytes, SHA-256 {f.sha256}"
             + (f" (resumed at {f.resumed_from})" if f.resumed_from else "")
             for f in report.files]
    lines.append(f"codename: {report.codename}")
    _emit(as_json, report.to_json(), "\n".join(lines))


def _inbox_text(found: list[dict[str, Any]]) -> str:
    """What `send --read` prints; every text from the intake shown escaped (a hacked intake
    must not write control codes into the source's terminal)."""
    from strongroom.ingest.source import shown

    lines = []
    for m in found:
        if m.get("receipt"):
            lines.append(f"#{m['seq']} receipt (compare with sha256sum):")
            lines += [shown(f"  {f['sha256']}  {f['name']}  ({f['size']} bytes, {f['status']})")
                      for f in m["receipt"].get("files", [])]
        else:
            who = "you" if m["from"] == "source" else "the organisation"
            lines.append(f"#{m['seq']} {who}: {shown(str(m.get('text', '')))}")
    return "\n".join(lines) or "no messages yet"


incident_app = typer.Typer(help="Incidents: what happened, when on the DVR clock, in which "
                                "clip.", no_args_is_help=True)
app.add_typer(incident_app, name="incident")
case_app = typer.Typer(help="Cases: incidents grouped for a recipient.", no_args_is_help=True)
app.add_typer(case_app, name="case")


@incident_app.command("add")
def incident_add(
    ctx: typer.Context,
    vault: VaultArg,
    sha256: Annotated[str, typer.Argument(help="The clip (at least 8 hex digits of its "
                                               "SHA-256).")],
    start: Annotated[str | None, typer.Option(
        "--from", help="Start in the clip: HH:MM:SS, MM:SS or seconds.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="End in the clip.")] = None,
    dvr_from: Annotated[str | None, typer.Option(
        "--dvr-from", help="Start on the DVR clock: 'YYYY-MM-DD HH:MM:SS' (where the clip "
                           "has segments).")] = None,
    dvr_to: Annotated[str | None, typer.Option("--dvr-to", help="End on the DVR clock.")
                      ] = None,
    kind: Annotated[list[str] | None, typer.Option(
        "--type", help="An abuse type (repeat for several).")] = None,
    severity: Annotated[int | None, typer.Option(min=1, max=5, help="1 (lowest) to 5.")] = None,
    title: Annotated[str | None, typer.Option(help="Short title (default: camera and DVR "
                                                   "time).")] = None,
    description: Annotated[str | None, typer.Option(help="What happened.")] = None,
    passphrase_file: PassFileOpt = None,
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Mark an incident on a clip (logged, with a digest of the whole record)."""
    from strongroom.catalogue.cases import NewIncident, add_incident, parse_dvr, parse_offset

    new = NewIncident(
        sha256=sha256, start_s=parse_offset(start) if start is not None else None,
        end_s=parse_offset(end) if end is not None else None,
        dvr_from=parse_dvr(dvr_from) if dvr_from is not None else None,
        dvr_to=parse_dvr(dvr_to) if dvr_to is not None else None,
        title=title, description=description, abuse_types=tuple(kind or ()),
        severity=severity)
    with _open(ctx, vault, passphrase_file, shares_file) as v:
        data = add_incident(v, new)
    when = (f"{data['dvr_from']} – {data['dvr_to']} (DVR clock)" if data["dvr_from"]
            else "no DVR clock read")
    _emit(as_json, data, f"Incident {data['incident']}: {data['title']}; "
          f"{data['start_s']:.1f}–{data['end_s']:.1f} s of {data['original'][:12]}; {when}.")


@incident_app.command("edit")
def incident_edit(
    ctx: typer.Context,
    vault: VaultArg,
    incident: Annotated[int, typer.Argument(help="The incident's number.")],
    title: Annotated[str | None, typer.Option(help="New title.")] = None,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    kind: Annotated[list[str] | None, typer.Option(
        "--type", help="The abuse types (repeat; replaces the old list).")] = None,
    severity: Annotated[int | None, typer.Option(min=1, max=5, help="1 to 5.")] = None,
    status: Annotated[str | None, typer.Option(
        help="open, verified, disputed or closed.")] = None,
    facility: Annotated[str | None, typer.Option(help="The facility's name.")] = None,
    passphrase_file: PassFileOpt = None,
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change what an incident says (logged; the old version stays in its history)."""
    from strongroom.catalogue.cases import edit_incident

    with _open(ctx, vault, passphrase_file, shares_file) as v:
        data = edit_incident(v, incident, title=title, description=description,
                             abuse_types=tuple(kind) if kind else None, severity=severity,
                             status=status, facility=facility)
    _emit(as_json, data, f"Incident {incident}: changed {', '.join(data['changed'])}.")


@incident_app.command("link")
def incident_link(
    ctx: typer.Context,
    vault: VaultArg,
    incident: Annotated[int, typer.Argument(help="The incident's number.")],
    sha256: Annotated[str, typer.Argument(help="Another clip showing it (8+ hex digits).")],
    start: Annotated[str | None, typer.Option(
        "--from", help="Start in that clip (default: where its DVR clock shows the "
                       "incident's time, else the whole clip).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="End in that clip.")] = None,
    note: Annotated[str | None, typer.Option(help="Why it is linked.")] = None,
    passphrase_file: PassFileOpt = None,
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Link one more clip to an incident: another camera at the same time, a copy (logged)."""
    from strongroom.catalogue.cases import link_clip, parse_offset

    with _open(ctx, vault, passphrase_file, shares_file) as v:
        data = link_clip(v, incident, sha256,
                         start_s=parse_offset(start) if start is not None else None,
                         end_s=parse_offset(end) if end is not None else None, note=note)
    _emit(as_json, data, f"Incident {incident} is also in {data['original'][:12]} "
          f"({data['start_s']:.1f}–{data['end_s']:.1f} s).")


@incident_app.command("add-person")
def incident_add_person(
    ctx: typer.Context,
    vault: VaultArg,
    incident: Annotated[int, typer.Argument(help="The incident's number.")],
    pseudonym: Annotated[str, typer.Argument(help="e.g. 'Victim 12' (made when new).")],
    role: Annotated[str, typer.Option(help="victim, perpetrator, witness or official.")
                    ] = "victim",
    passphrase_file: PassFileOpt = None,
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Put a person, by pseudonym, in an incident (logged)."""
    from strongroom.catalogue.people import involve

    with _open(ctx, vault, passphrase_file, shares_file) as v:
        data = involve(v, incident, pseudonym, role)
    _emit(as_json, data, f"{data['pseudonym']} ({role}) is in incident {incident}"
          f"{' (new person)' if data['new_person'] else ''}.")


@incident_app.command("history")
def incident_history(
    ctx: typer.Context,
    vault: VaultArg,
    incident: Annotated[int, typer.Argument(help="The incident's number.")],
    passphrase_file: PassFileOpt = None,
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every version of an incident: when, by whom, what it said, checked against the log."""
    from strongroom.catalogue.cases import history

    with _open(ctx, vault, passphrase_file, shares_file) as v:
        versions = history(v, "incident", incident)
    lines = []
    for r in versions:
        view = r["view"] or {}
        lines.append(f"#{r['seq']} {r['time'][:19]} {r['actor']}: {r['change']}"
                     f"{'' if r['matches_log'] else '  (DOES NOT MATCH THE LOG)'}")
        lines.append(f"    {view.get('title')}: {view.get('description') or ''}")
    _emit(as_json, {"incident": incident, "versions": versions}, "\n".join(lines))


@case_app.command("add")
def case_add(
    ctx: typer.Context,
    vault: VaultArg,
    name: Annotated[str, typer.Argument(help="The case's name.")],
    purpose: Annotated[str, typer.Option(
        help="prosecution, publication or internal.")] = "prosecution",
    description: Annotated[str | None, typer.Option(help="What the case is about.")] = None,
    recipient: Annotated[str | None, typer.Option(
        help="Who it goes to (e.g. a prosecutor's office).")] = None,
    passphrase_file: PassFileOpt = None,
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a case (logged); `case add-incident` fills it, `export --case` hands it over."""
    from strongroom.catalogue.cases import add_case

    with _open(ctx, vault, passphrase_file, shares_file) as v:
        data = add_case(v, name, purpose=purpose, description=description,
                        recipient=recipient)
    _emit(as_json, data, f"Case {data['case']}: {data['name']} ({data['purpose']}).")


@case_app.command("add-incident")
def case_add_incident(
    ctx: typer.Context,
    vault: VaultArg,
    case: Annotated[str, typer.Argument(help="The case's name.")],
    incident: Annotated[int, typer.Argument(help="The incident's number.")],
    passphrase_file: PassFileOpt = None,
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Put an incident in a case (logged)."""
    from strongroom.catalogue.cases import add_to_case

    with _open(ctx, vault, passphrase_file, shares_file) as v:
        data = add_to_case(v, case, incident)
    _emit(as_json, data, f"Incident {incident} is in {data['name']!r} "
          f"({data['incidents']} incident(s)).")


person_app = typer.Typer(help="People in incidents, by pseudonym.", no_args_is_help=True)
app.add_typer(person_app, name="person")


@person_app.command("add")
def person_add(
    ctx: typer.Context,
    vault: VaultArg,
    pseudonym: Annotated[str, typer.Argument(help="e.g. 'Victim 12'.")],
    role: Annotated[str, typer.Option(help="victim, perpetrator, witness or official.")
                    ] = "victim",
    note: Annotated[str | None, typer.Option(help="A note (no real names).")] = None,
    identity_stdin: Annotated[bool, typer.Option(
        "--identity-stdin", help="Read a real identity from the first line of standard "
                                 "input and seal it (only if you must record one).")] = False,
    passphrase_file: PassFileOpt = None,
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a person by pseudonym (logged); a real identity, if given, is sealed."""
    from strongroom.catalogue.people import add_person

    identity = sys.stdin.readline().strip() if identity_stdin else None
    if identity_stdin and not identity:
        raise StrongroomError("--identity-stdin: nothing on standard input")
    with _open(ctx, vault, passphrase_file, shares_file) as v:
        data = add_person(v, pseudonym, role, identity=identity, note=note)
    _emit(as_json, data, f"Person {data['person']}: {data['pseudonym']} ({role})"
          f"{', identity sealed' if data['identity_recorded'] else ''}.")


@person_app.command("list")
def person_list(
    ctx: typer.Context,
    vault: VaultArg,
    passphrase_file: PassFileOpt = None,
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Everyone by pseudonym (never a sealed identity)."""
    from strongroom.catalogue.people import list_people

    with _open(ctx, vault, passphrase_file, shares_file) as v, v.catalogue.read() as s:
        rows = list_people(s)
    _emit(as_json, {"people": rows}, "\n".join(
        f"{r['id']:>4}  {r['pseudonym']}  ({r['role']}, {r['incidents']} incident(s))"
        f"{'  [identity sealed]' if r['identity_recorded'] else ''}" for r in rows)
        or "(nobody yet)")


publish_app = typer.Typer(
    help="Redacted publication: draft a part of a clip with every face hidden, have a second "
         "person approve it, then write it out signed with its provenance (C2PA).",
    no_args_is_help=True)
app.add_typer(publish_app, name="publish")
PubArg = Annotated[int, typer.Argument(help="The publication's number (`publish list`).")]


def _publication_text(d: dict[str, Any]) -> str:
    text = (f"Publication {d['publication']}: {d['status']}, spec version {d['spec_version']}; "
            f"draft {str(d.get('draft') or '')[:16]}…")
    if "faces_found" in d:
        text += (f"; {d['faces_found']} face detection(s) in {d['tracks']} track(s) over "
                 f"{d['frames']} frames; sound {d['audio']}")
    if d.get("warning"):
        text += f"\nwarning: {d['warning']}"
    return text + ("\nNext: a second person (investigator or admin) runs `strongroom publish "
                   f"approve VAULT {d['publication']} --user NAME`."
                   if d["status"] == "drafted" else "")


@publish_app.command("draft")
def publish_draft(
    ctx: typer.Context,
    vault: VaultArg,
    sha256: Annotated[str, typer.Argument(help="The clip (at least 8 hex digits of its "
                                               "SHA-256).")],
    start: Annotated[str | None, typer.Option(
        "--from", help="Start in the clip: HH:MM:SS, MM:SS or seconds.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="End in the clip.")] = None,
    hide: Annotated[str, typer.Option(help="blur (strong) or fill (solid).")] = "blur",
    mask_voice: Annotated[bool, typer.Option("--mask-voice", help="Shift the voices' pitch "
                                                                 "and formants.")] = False,
    no_audio: Annotated[bool, typer.Option("--no-audio", help="Leave the sound out.")] = False,
    hide_label: Annotated[bool, typer.Option(
        "--hide-label", help="Hide the camera label too (as OCR read it); the DVR clock "
                             "stays: it is evidence of time.")] = False,
    scale: Annotated[float, typer.Option(help="Enlarge frames for the face detector (small "
                                              "faces: 1.5 or 2).")] = 1.0,
    note: Annotated[str | None, typer.Option(help="Why this is published.")] = None,
    passphrase_file: PassFileOpt = None,
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Redact a range of a clip into a draft kept in the vault (faces found, tracked and
    hidden on every frame); nothing is written outside the vault."""
    from strongroom.catalogue.cases import parse_offset
    from strongroom.publish.drafts import draft
    from strongroom.publish.render import Options

    options = Options(start=parse_offset(start) if start is not None else 0.0,
                      end=parse_offset(end) if end is not None else None, hide=hide,
                      scale=scale, mask_voice=mask_voice, keep_audio=not no_audio).check()
    with _open(ctx, vault, passphrase_file, shares_file) as v:
        data = draft(v, sha256, options, note=note, hide_label=hide_label)
    _emit(as_json, data, _publication_text(data))


@publish_app.command("list")
def publish_list(ctx: typer.Context, vault: VaultArg, passphrase_file: PassFileOpt = None,
                 shares_file: SharesFileOpt = None, as_json: JsonOpt = False) -> None:
    """Every publication: its clip, range, status and who asked and decided."""
    from strongroom.publish.drafts import listing

    with _open(ctx, vault, passphrase_file, shares_file) as v:
        rows = listing(v)
    _emit(as_json, {"publications": rows}, "\n".join(
        f"{r['publication']:>4}  {r['status']:<9}  {r['original'][:12]}  "
        f"{r['start']:.1f}–{'end' if r['end'] is None else format(r['end'], '.1f')} s  "
        f"spec v{r['spec_version']}  asked by {r['requested_by']}"
        + (f", decided by {r['decided_by']}" if r["decided_by"] else "") for r in rows)
        or "(no publications yet)")


@publish_app.command("spec")
def publish_spec(
    ctx: typer.Context, vault: VaultArg, publication: PubArg,
    version: Annotated[int | None, typer.Option(help="A version (default: the current).")
                       ] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write it to this new "
                                                                      "file.")] = None,
    passphrase_file: PassFileOpt = None, shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The redaction spec (JSON: tracks of boxes by frame) to read or correct; hand a
    corrected one back with `publish revise`. It is JSON with or without --json."""
    from strongroom.publish.drafts import spec_of

    if output is not None:
        _check_output_file(output)
    with _open(ctx, vault, passphrase_file, shares_file) as v:
        spec = spec_of(v, publication, version)
    text = json.dumps(spec, ensure_ascii=False, indent=1)
    if output is None:
        typer.echo(text)
        return
    from strongroom.fsio import new_private_file

    with new_private_file(output) as f:
        f.write(text.encode("utf-8"))


@publish_app.command("revise")
def publish_revise(
    ctx: typer.Context, vault: VaultArg, publication: PubArg,
    spec_file: Annotated[Path, typer.Argument(help="A corrected redaction spec (JSON).")],
    passphrase_file: PassFileOpt = None, shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Render a new draft from a corrected spec (a new version; any approval is void)."""
    from strongroom.publish.drafts import revise
    from strongroom.smallfiles import read_small

    text = read_small(spec_file, "redaction spec", 64 * 1024 * 1024).decode("utf-8", "replace")
    with _open(ctx, vault, passphrase_file, shares_file) as v:
        data = revise(v, publication, text)
    _emit(as_json, data, _publication_text(data))


def _sign_in(user: str, user_password_file: Path | None, totp: str | None) -> tuple[str, str]:
    if user_password_file is not None:
        from strongroom.smallfiles import read_small

        lines = read_small(user_password_file, "password file", 64 * 1024).decode(
            "utf-8", "replace").splitlines()
        password = lines[0] if lines else ""
    else:
        password = typer.prompt(f"Password for {user}", hide_input=True)
    code = totp if totp is not None else typer.prompt(f"TOTP code for {user}")
    return password, code


def _decide(ctx: typer.Context, vault: Path, publication: int, approve: bool, user: str,
            user_password_file: Path | None, totp: str | None, version: int | None,
            passphrase_file: Path | None, shares_file: Path | None, as_json: bool) -> None:
    from strongroom.publish.drafts import decide

    password, code = _sign_in(user, user_password_file, totp)
    with _open(ctx, vault, passphrase_file, shares_file) as v:
        data = decide(v, publication, approve=approve, username=user, password=password,
                      code=code, version=version)
    _emit(as_json, data, f"Publication {publication} {data['status']} by {data['by']} "
                         f"(spec version {data['spec_version']}, draft {data['draft'][:16]}…)")


UserOpt = Annotated[str, typer.Option("--user", help="The deciding review-app user (an "
                                                     "investigator or admin).")]
UserPassOpt = Annotated[Path | None, typer.Option(
    "--user-password-file", help="Read that user's password from this file's first line.")]
TotpOpt = Annotated[str | None, typer.Option("--totp", help="That user's current TOTP code.")]
SeenOpt = Annotated[int | None, typer.Option(
    "--version", help="The spec version you looked at (`publish show`): refused if the draft "
                      "changed since.")]


@publish_app.command("approve")
def publish_approve(ctx: typer.Context, vault: VaultArg, publication: PubArg, user: UserOpt,
                    user_password_file: UserPassOpt = None, totp: TotpOpt = None,
                    version: SeenOpt = None, passphrase_file: PassFileOpt = None,
                    shares_file: SharesFileOpt = None, as_json: JsonOpt = False) -> None:
    """Approve the current draft, as a second person (signed in with password and TOTP)."""
    _decide(ctx, vault, publication, True, user, user_password_file, totp, version,
            passphrase_file, shares_file, as_json)


@publish_app.command("refuse")
def publish_refuse(ctx: typer.Context, vault: VaultArg, publication: PubArg, user: UserOpt,
                   user_password_file: UserPassOpt = None, totp: TotpOpt = None,
                   version: SeenOpt = None, passphrase_file: PassFileOpt = None,
                   shares_file: SharesFileOpt = None, as_json: JsonOpt = False) -> None:
    """Refuse the current draft (a corrected spec can make a new one)."""
    _decide(ctx, vault, publication, False, user, user_password_file, totp, version,
            passphrase_file, shares_file, as_json)


@publish_app.command("show")
def publish_show(
    ctx: typer.Context, vault: VaultArg, publication: PubArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="The new file to write the "
                                                                "draft to.")],
    passphrase_file: PassFileOpt = None, shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the current draft (redacted, not signed) to a new file to look at before
    deciding; logged as viewed. It says which spec version it is: approve with --version."""
    from strongroom.publish.drafts import show

    _check_output_file(output)
    with _open(ctx, vault, passphrase_file, shares_file) as v, _unwind_on_termination():
        data = show(v, publication, output)
    _emit(as_json, data, f"Draft of publication {publication}, spec version "
                         f"{data['spec_version']}, written to {output}; approve it with "
                         f"--version {data['spec_version']}")


@publish_app.command("out")
def publish_out(
    ctx: typer.Context, vault: VaultArg, publication: PubArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="The new file to write.")],
    no_faces_ok: Annotated[bool, typer.Option(
        "--no-faces-ok", help="Publish a clip in which no face was found or marked.")] = False,
    organisation: Annotated[str | None, typer.Option(
        help="Who signs (default: STRONGROOM_ORGANISATION).")] = None,
    passphrase_file: PassFileOpt = None, shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write an approved draft out, signed with the organisation's C2PA credentials
    (STRONGROOM_C2PA_CERT, STRONGROOM_C2PA_KEY); logged as `published` on the original."""
    from strongroom.publish.drafts import publish
    from strongroom.publish.provenance import Signing

    settings = _settings(ctx, vault)
    if settings.c2pa_cert is None or settings.c2pa_key is None:
        raise StrongroomError("no signing credentials: set STRONGROOM_C2PA_CERT (the "
                              "organisation's certificate chain, PEM) and STRONGROOM_C2PA_KEY "
                              "(its private key)")
    signing = Signing(cert_chain=settings.c2pa_cert, key=settings.c2pa_key,
                      tsa_url=settings.c2pa_tsa_url or None)
    _check_output_file(output)
    with _open(ctx, vault, passphrase_file, shares_file) as v, _unwind_on_termination():
        data = publish(v, publication, output, signing=signing,
                       organisation=organisation or settings.organisation or "",
                       no_faces_ok=no_faces_ok)
    _emit(as_json, data, f"Published {output} (SHA-256 {data['sha256']}), from original "
                         f"{data['original'][:16]}…, spec version {data['spec_version']}, "
                         f"approved by {data['approved_by']}")


@app.command()
def provenance(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A published file.")],
    vault: Annotated[Path | None, typer.Option(
        "--vault", help="Also confirm, inside this vault, the link to the original.")] = None,
    trust: Annotated[Path | None, typer.Option(
        help="Trust anchors (PEM): the organisation's root certificate.")] = None,
    passphrase_file: PassFileOpt = None, shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Read a published file's C2PA manifest: is it signed and intact, which original and
    redaction spec it comes from; with --vault, whether the vault holds that original and
    recorded publishing exactly this file."""
    from strongroom.publish.check import check_file, text

    if vault is None:
        data = check_file(file, trust_anchors=trust)
    else:
        with _open(ctx, vault, passphrase_file, shares_file) as v:
            data = check_file(file, trust_anchors=trust, vault=v)
    _emit(as_json, data, text(data))
    if not data.get("ok"):
        raise typer.Exit(1)


user_app = typer.Typer(help="Accounts of the review app.", no_args_is_help=True)
app.add_typer(user_app, name="user")


@user_app.command("add")
def user_add(
    ctx: typer.Context,
    vault: VaultArg,
    name: Annotated[str, typer.Argument(help="The user name (letters, digits, . _ -).")],
    role: Annotated[str, typer.Option(help="admin, investigator, lawyer or reviewer.")],
    locale: Annotated[str, typer.Option(help="Interface language: en or ru.")] = "en",
    user_password_file: Annotated[Path | None, typer.Option(
        "--user-password-file", help="Read the new user's password from this file's first "
                                     "line (else it is asked for twice).")] = None,
    passphrase_file: PassFileOpt = None,
    shares_file: SharesFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make an account; prints its TOTP secret and a QR code for an authenticator app, once."""
    from strongroom.review.actions import add_user
    from strongroom.review.security import check_password_rules, totp_uri

    if user_password_file is not None:
        from strongroom.smallfiles import read_small

        lines = read_small(user_password_file, "password file", 64 * 1024).decode(
            "utf-8", "replace").splitlines()
        password = lines[0] if lines else ""
    else:
        password = typer.prompt(f"Password for {name}", hide_input=True,
                                confirmation_prompt=True)
    check_password_rules(password)
    with _open(ctx, vault, passphrase_file, shares_file) as v:
        secret = add_user(v, name, role, password, locale=locale)
    uri = totp_uri(secret, name)
    data = {"username": name, "role": role, "totp_secret": secret, "totp_uri": uri}
    _emit(as_json, data, f"Made {name} ({role}). Their TOTP secret, shown only now: {secret}\n"
          f"Scan this with an authenticator app:\n{_qr(uri)}")


@user_app.command("totp")
def user_totp(
    secret: Annotated[str, typer.Argument(help="A TOTP secret (base32), as `user add` "
                                               "printed it.")],
) -> None:
    """Print the current TOTP code for a secret (for scripts and the demo)."""
    from strongroom.review.security import current_totp

    try:
        typer.echo(current_totp(secret.strip().replace(" ", "").upper()))
    except Exception:  # pyotp raises binascii errors for bad base32
        raise StrongroomError("that is not a TOTP secret (base32 letters and digits)") \
            from None


def _qr(text: str) -> str:
    import io

    import qrcode

    qr = qrcode.QRCode(border=1)
    qr.add_data(text)
    out = io.StringIO()
    qr.print_ascii(out=out)
    return out.getvalue()


@app.command()
def demo(
    ctx: typer.Context,
    vault: Annotated[Path, typer.Argument(help="Where to build the demo vault.")] = Path(
        "demo-vault"),
    force: Annotated[bool, typer.Option(
        "--force", help="Rebuild a demo vault that an earlier `demo` made there.")] = False,
    no_serve: Annotated[bool, typer.Option(
        "--no-serve", help="Build and check the demo vault, then stop (for scripts).")] = False,
    port: Annotated[int, typer.Option(min=1, max=65535,
                                      help="Port for the review app.")] = 8765,
    as_json: JsonOpt = False,
) -> None:
    """Build a demo vault from generated DVR-style clips, run every capability on it, then
    serve the review app on 127.0.0.1 (unless --no-serve)."""
    from strongroom.demo import DEMO_PASSPHRASE, run_demo

    settings = _without_passphrase(_settings(ctx, vault))
    data = run_demo(settings, show_progress=not as_json, force=force)
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
    if no_serve:
        return
    from strongroom.review.serve import serve_app
    from strongroom.vault import Vault

    accounts = data["review"]
    lines = [f"\nReview app: http://127.0.0.1:{port}/  (sign in with a user name, its password "
             "and the current TOTP code)"]
    for name in ("admin", "investigator"):
        a = accounts[name]
        lines.append(f"  {name:<13} password: {a['password']!r:<30} TOTP secret: "
                     f"{a['totp_secret']}")
    lines.append(f"  current code:  strongroom user totp SECRET   (all four accounts: "
                 f"{Path(data['vault']).parent / (Path(data['vault']).name + '-media')}"
                 "/logins.txt)")
    typer.echo("\n".join(lines), err=True)
    if settings.intake_data is None:  # the Intake page shows what the demo's source wrote
        from strongroom.demo import demo_folders

        settings = settings.model_copy(
            update={"intake_data": demo_folders(settings.vault)[1] / "intake"})
    with Vault.open(settings, DEMO_PASSPHRASE, actor="demo") as v:
        serve_app(v, host="127.0.0.1", port=port, certfile=None, keyfile=None, hours=12)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI. Every failure is one line on stderr (and, with --json, a JSON object on
    stdout) with exit code 2 — 1 when a check found a problem — never a traceback."""
    from typer import Abort
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

    args = sys.argv[1:] if argv is None else argv
    as_json = "--json" in args
    command = typer.main.get_command(app)
    settings: Settings | None = None
    try:
        settings = load_settings()  # the one Settings of this run, handed to every command
        code = command.main(args=args, prog_name="strongroom", standalone_mode=False,
                            obj=settings)
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
    except _Terminated as exc:
        import signal

        _fail(as_json, f"stopped by {signal.Signals(exc.signum).name}; nothing half-written "
              "was kept", 128 + exc.signum)
    except Exception as exc:
        _fail(as_json, _unexpected(exc, debug=settings is not None and settings.debug), 2)
    if code == 130:  # typer turns Ctrl-C into a silent exit 130: say it, as for any error
        _fail(as_json, "interrupted; nothing half-written was kept", 130)
    sys.exit(code if isinstance(code, int) else 0)


def _unexpected(exc: Exception, *, debug: bool) -> str:
    """One line for an error no code path turned into a StrongroomError; with `debug`
    (STRONGROOM_DEBUG) the traceback too, on stderr."""
    if debug:
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
