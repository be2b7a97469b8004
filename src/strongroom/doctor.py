"""`strongroom doctor`: what this machine and these settings give a vault, checked one by one
without the passphrase — the catalogue's database, the blob store, the executor, the tools.

Each check says what it found (a version, a bucket, a revision) or what is wrong and which
setting to look at. Nothing is written: the database is only connected to and read, the
bucket only asked whether it answers, a folder only checked for access.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from strongroom.errors import StrongroomError
from strongroom.settings import Settings


@dataclass
class Check:
    name: str
    ok: bool
    found: str
    setting: str = ""


def _safe_url(url: str) -> str:
    """The URL without its password (it may be printed, logged, pasted into an issue)."""
    from sqlalchemy.engine import make_url

    try:
        u = make_url(url)
        if any(k.lower() in ("password", "passfile", "sslpassword") for k in u.query):
            u = u.set(query={k: ("***" if k.lower() in ("password", "passfile",
                                                          "sslpassword") else v)
                             for k, v in u.query.items()})
        return u.render_as_string(hide_password=True)
    except Exception:  # a malformed URL: say nothing of what it holds
        return "(unreadable URL)"


def check_database(settings: Settings) -> Check:
    from strongroom.catalogue import is_plain_sqlite
    from strongroom.catalogue.db import sqlite_path
    from strongroom.catalogue.migrate import HEAD

    url = settings.resolved_database_url()
    shown = _safe_url(url)
    db = sqlite_path(url)
    if db is not None:
        if not db.exists():
            return Check("database", False, f"SQLite {db}: no such file (run `strongroom "
                         "init`)", "STRONGROOM_DATABASE_URL")
        how = "plaintext" if is_plain_sqlite(db) else "encrypted (SQLCipher; its key is " \
            "in the sealed keys, so its revision is read when the vault is opened)"
        return Check("database", True, f"SQLite {db}, {how}")
    from sqlalchemy import create_engine, text

    engine = create_engine(url, connect_args={"connect_timeout": 5} if url.startswith(
        "postgresql") else {})
    try:
        with engine.connect() as conn:
            version = conn.execute(text("SELECT version()")).scalar() if \
                engine.dialect.name == "postgresql" else engine.dialect.name
            from strongroom.catalogue.migrate import current

            revision = current(engine)
    except Exception as exc:
        first = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or ["?"])[0]
        return Check("database", False, f"{shown}: cannot connect ({first})",
                     "STRONGROOM_DATABASE_URL")
    finally:
        engine.dispose()
    where = f"{shown}: {str(version).split(' on ')[0]}"
    if revision is None:
        return Check("database", True, f"{where}, empty (`strongroom init` makes the schema)")
    if revision != HEAD:
        return Check("database", True, f"{where}, catalogue revision {revision} (opening the "
                     f"vault upgrades it to {HEAD})")
    return Check("database", True, f"{where}, catalogue revision {revision} (current)")


def check_blob_store(settings: Settings) -> Check:
    location = settings.blob_location()
    if location.startswith("s3://"):
        from strongroom.vault.s3blobs import S3BlobStore

        try:
            store = S3BlobStore(location, endpoint_url=settings.s3_endpoint_url)
        except StrongroomError as exc:
            return Check("blob store", False, str(exc), "STRONGROOM_BLOB_STORE")
        try:
            return Check("blob store", True, f"{location}: {store.check()}")
        except StrongroomError as exc:
            text = str(exc)
            setting = "STRONGROOM_S3_ENDPOINT_URL" if "ENDPOINT" in text else \
                "AWS_ACCESS_KEY_ID" if "AWS_" in text else "STRONGROOM_BLOB_STORE"
            return Check("blob store", False, text, setting)
        finally:
            store.close()
    root = Path(location)
    if not root.is_dir():
        return Check("blob store", False, f"{root}: no such folder", "STRONGROOM_BLOB_STORE")
    if not os.access(root, os.W_OK | os.X_OK):
        return Check("blob store", False, f"{root}: not writable by this user",
                     "STRONGROOM_BLOB_STORE")
    free = shutil.disk_usage(root).free
    return Check("blob store", True, f"folder {root}, {free / 1024**3:.1f} GiB free")


def check_executor(settings: Settings) -> Check:
    kind = settings.executor
    cpus = os.cpu_count() or 1
    workers = settings.workers or cpus
    if kind == "process":
        return Check("executor", True, f"local process pool, {workers} worker(s) on {cpus} "
                     "CPU(s)")
    if kind == "inline":
        return Check("executor", True, "inline (in the command's own process; for debugging)")
    from strongroom.pipeline.cluster import is_dask, scheduler_address

    if not is_dask(kind):
        return Check("executor", False, f"{kind!r}: not an executor this version runs (use "
                     "'process', 'inline' or dask://scheduler:8786)", "STRONGROOM_EXECUTOR")
    from strongroom.pipeline.cluster import connect

    address = scheduler_address(kind)
    try:
        client = connect(address, timeout=10)
    except StrongroomError as exc:
        return Check("executor", False, str(exc), "STRONGROOM_EXECUTOR")
    try:
        workers = client.scheduler_info().get("workers", {})
    finally:
        client.close()
    threads = sum(int(w.get("nthreads", 1)) for w in workers.values())
    return Check("executor", bool(workers), f"Dask scheduler {address}: {len(workers)} "
                 f"worker(s), {threads} thread(s)" + ("" if workers else " — start some with "
                                                       f"`dask worker {address}`"),
                 "" if workers else "STRONGROOM_EXECUTOR")


def _version(argv: list[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0].split(" Copyright")[0].strip() if lines else argv[0]


def check_tools() -> list[Check]:
    out = []
    for name, argv, needed_for in (
            ("ffmpeg", ["ffmpeg", "-version"], "the pipeline, publication"),
            ("ffprobe", ["ffprobe", "-version"], "the pipeline"),
            ("age", ["age", "--version"], "fast encryption, and reading exports' age files"),
            ("tesseract", ["tesseract", "--version"], "overlay OCR")):
        found = _version(argv)
        out.append(Check(name, found is not None, found or f"not installed (needed for "
                         f"{needed_for}; `make setup` installs it)"))
    langs = _version(["tesseract", "--list-langs"]) if shutil.which("tesseract") else None
    if langs is not None:
        listed = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True,
                                timeout=20, check=False).stdout.split()
        out.append(Check("tesseract Russian", "rus" in listed,
                         "rus" if "rus" in listed else "no Russian data (apt install "
                         "tesseract-ocr-rus)"))
    return out


def check_vault(settings: Settings) -> Check:
    from strongroom.vault.opening import read_marker, read_marker_json, unlocks

    path = settings.vault
    try:
        public = read_marker(path)
    except StrongroomError as exc:
        return Check("vault", False, str(exc))
    marker = read_marker_json(path)
    passphrase, shares = unlocks(path)
    how = " and ".join(w for w, on in (("a passphrase", passphrase), ("shares", shares)) if on)
    where = f", blobs in {marker['blob_store']}" if marker.get("blob_store") else ""
    return Check("vault", True, f"{path}: signing key {public.fingerprint[:16]}…, opened by "
                 f"{how or 'nothing (no sealed keys!)'}{where}")


def diagnose(settings: Settings, *, vault: bool) -> list[Check]:
    """Every check, in the order a person fixes them."""
    checks: list[Check] = []
    if vault:
        checks.append(check_vault(settings))
        from strongroom.vault.vault import blob_store_of

        try:
            settings = blob_store_of(settings)
        except StrongroomError as exc:
            checks.append(Check("blob store", False, str(exc), "STRONGROOM_BLOB_STORE"))
    if vault or settings.database_url:
        checks.append(check_database(settings))
    else:
        checks.append(Check("database", True, "SQLite inside each vault folder (the default)"))
    if any(c.name == "blob store" for c in checks):
        pass
    elif vault or settings.blob_store:
        checks.append(check_blob_store(settings))
    else:
        checks.append(Check("blob store", True, "a folder inside each vault (the default)"))
    checks.append(check_executor(settings))
    checks += check_tools()
    return checks


def as_json(checks: list[Check]) -> dict[str, object]:
    return {"ok": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]}


__all__ = ["Check", "as_json", "diagnose"]
