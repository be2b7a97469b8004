"""`strongroom import-intake VAULT DATA`: what sources sent through the intake becomes
evidence.

Each complete upload is decrypted a piece at a time (in memory, by the vault's door) straight
into the vault's store, the same way a USB stick's file is: hashed, re-encrypted, named, its
sighting and custody events committed in one transaction. Each source's submissions are one
acquisition, "intake submission <id>", where <id> is the start of the source's folder name (a
hash of its codename: it names no one). A file whose SHA-256 differs from the one
`strongroom send` computed on the source's machine is kept and reported.

Afterwards each source gets a receipt in the intake folder: the files taken, with size and
SHA-256, encrypted to the vault and to that source only. Re-running is safe: what is in the
vault is not stored again. `--purge-imported` then removes the intake's copies.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from strongroom.catalogue.models import Sighting
from strongroom.errors import IntegrityError, StrongroomError
from strongroom.ingest.batch import Batch
from strongroom.ingest.ingestor import IngestReport, acquisition_for
from strongroom.ingest.source import Entry
from strongroom.ingest.stage import NoProgress, Progress, Staged
from strongroom.vault import Vault

#: Largest piece file read into memory (the intake writes 4 MiB pieces by default).
MAX_PIECE = 256 * 1024 * 1024


@dataclass
class ImportReport:
    folder: str
    sources: int = 0
    uploads: int = 0
    incomplete: int = 0
    already: int = 0
    receipts: int = 0
    purged: int = 0
    ingest: IngestReport = field(default_factory=IngestReport)
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"folder": self.folder, "sources": self.sources, "uploads": self.uploads,
                "incomplete": self.incomplete, "already_imported": self.already,
                "new_originals": self.ingest.new_originals,
                "duplicates": self.ingest.duplicates, "receipts": self.receipts,
                "purged": self.purged, "mismatches": self.mismatches,
                "errors": self.errors + self.ingest.errors}

    def to_text(self) -> str:
        d = self.to_json()
        lines = [f"{d['uploads']} upload(s) from {d['sources']} source(s): "
                 f"{d['new_originals']} new original(s), {d['duplicates']} duplicate(s), "
                 f"{d['already_imported']} imported before, {d['incomplete']} still arriving; "
                 f"{d['receipts']} receipt(s) written, {d['purged']} purged"]
        from strongroom.ingest.source import shown  # names come from sources: no escapes

        lines += [shown(f"  MISMATCH {m['upload']}: {m['name']}: sent as {m['claimed']}, "
                        f"arrived as {m['sha256']}") for m in self.mismatches]
        lines += [shown(f"  error: {e['path']}: {e['error']}") for e in d["errors"]]
        return "\n".join(lines)


def import_intake(vault: Vault, folder: Path, *, purge: bool = False,
                  received_by: str | None = None,
                  progress: Progress | None = None) -> ImportReport:
    from strongroom.export.bag import _inside

    progress = progress or NoProgress()
    vault.require_keys()
    if _inside(folder, vault.settings.vault) or _inside(vault.settings.vault, folder):
        raise StrongroomError(f"{folder}: an intake folder cannot be inside the vault, nor the "
                              "vault inside it")
    store = _store_for(vault, folder)
    report = ImportReport(str(folder))
    todo = []
    for sid in store.source_ids():
        ups = store.uploads(sid)
        for u in ups:
            if u.offset > u.length:  # its record was edited: pieces beyond its length
                report.errors.append({"path": u.id, "error": (
                    f"its pieces hold {u.offset} bytes, its record says {u.length}: damaged "
                    "or tampered with on the intake; not taken")})
        report.incomplete += sum(1 for u in ups if u.offset < u.length)
        ready = [u for u in ups if u.done and (not u.imported or purge)]
        if ready:
            todo.append((sid, ready))
    progress.start(sum(len(r) for _, r in todo), sum(u.length for _, r in todo for u in r))
    for sid, ready in todo:
        report.sources += 1
        _import_source(vault, store, sid, ready, report, received_by, progress, purge)
    with vault.write(checkpoint=True):
        pass
    return report


def source_key(vault: Vault, store: Any, sid: str) -> str:
    """The source's public key as the vault first saw it. The first time, the vault signs it
    into the source's folder (`pin.json`); afterwards a key changed on the intake's disk (to
    have replies and receipts encrypted to someone else) is refused."""
    import base64

    from strongroom.intake.store import IntakeError

    try:
        public = store.source_public(sid)
        pinned = store.pin(sid)
    except (IntakeError, OSError, ValueError, KeyError, TypeError) as exc:
        raise StrongroomError(f"source {sid[:16]}: its folder on the intake is damaged: "
                              f"{exc}") from None
    statement = f"strongroom intake source key\n{sid}\n{public}\n".encode()
    if pinned is None:
        signature = base64.b64encode(vault.sign(statement)).decode()
        store.write_pin(sid, json.dumps({"public": public, "signature": signature}).encode())
        return str(public)
    try:
        data = json.loads(pinned)
        first = str(data["public"])
        signature_ok = vault.public.verify(base64.b64decode(data["signature"]),
                                           f"strongroom intake source key\n{sid}\n{first}\n"
                                           .encode())
    except (ValueError, KeyError, TypeError):
        signature_ok, first = False, ""
    if not signature_ok:
        raise StrongroomError(f"source {sid[:16]}: the vault's record of its key was forged or "
                              "damaged on the intake: nothing is sent to it")
    if first != public:
        raise StrongroomError(f"source {sid[:16]}: its key changed on the intake since the vault "
                              "first saw it (someone edited the intake's disk): nothing is sent "
                              "to it")
    return first


def _receipted(vault: Vault, store: Any, sid: str) -> set[str]:
    """The uploads an earlier receipt to this source already listed (a run killed between the
    receipt and the marks must not send a second one)."""
    done: set[str] = set()
    for m in store.messages(sid):
        if m.sender != "receipt":
            continue
        try:
            data = json.loads(vault.open_intake_small(m.ciphertext, what="a receipt"))
            done.update(str(f["upload"]) for f in data.get("files", []) if "upload" in f)
        except (IntegrityError, ValueError, TypeError, AttributeError):
            continue
    return done


def _import_source(vault: Vault, store: Any, sid: str, ready: list[Any], report: ImportReport,
                   received_by: str | None, progress: Progress, purge: bool) -> None:
    from strongroom.intake.store import IntakeError

    label = sid[:16]
    acq = acquisition_for(vault, f"intake:{label}", "intake", f"intake submission {label}",
                          received_by, None)
    with vault.catalogue.read() as s:
        known = {r.rel_path: r for r in s.scalars(
            select(Sighting).where(Sighting.acquisition_id == acq))}
    receipt = []
    imported = []
    receipted = _receipted(vault, store, sid)
    for up in ready:
        report.uploads += 1
        try:
            meta = _metadata(vault, up)
            if meta.get("_source", sid) != sid:
                raise IntegrityError(f"upload {up.id} was made by another source than the one "
                                     "the intake's folder now files it under: not taken")
        except IntegrityError as exc:
            report.errors.append({"path": up.id, "error": str(exc)})
            continue
        name = _safe_name(meta.get("filename", ""))
        rel = f"{up.id}/{name}"
        seen = known.get(rel)
        if seen is not None:
            report.already += 1
            sha = seen.original_sha256 or ""
            progress.advance(up.length)
        else:
            try:
                sha = _store_one(vault, store, acq, up, rel, meta, report, progress)
            except IntegrityError as exc:
                report.errors.append({"path": rel, "error": str(exc)})
                progress.file_done()
                continue
        progress.file_done()
        claimed = meta.get("sha256", "")
        status = "received"
        if claimed and claimed != sha:
            status = "differs from the SHA-256 computed before sending"
            report.mismatches.append({"upload": up.id, "name": name, "claimed": claimed,
                                      "sha256": sha})
        if up.id not in receipted:
            receipt.append({"upload": up.id, "name": name, "size": up.length, "sha256": sha,
                            "status": status})
        imported.append(up)
    if receipt:
        body = json.dumps({"files": receipt}, ensure_ascii=False).encode("utf-8")
        try:
            store.add_message(sid, "receipt", body, source_key(vault, store, sid))
            report.receipts += 1
        except (IntakeError, StrongroomError) as exc:
            report.errors.append({"path": f"source {label}", "error": f"no receipt: {exc}"})
    for up in imported:
        store.mark_imported(up.id)
        if purge:
            try:
                store.purge(up.id)
            except IntakeError as exc:  # e.g. the intake is answering a request about it
                report.errors.append({"path": up.id, "error": f"not purged: {exc}"})
                continue
            report.purged += 1


def _store_one(vault: Vault, store: Any, acq: int, up: Any, rel: str, meta: dict[str, str],
               report: ImportReport, progress: Progress) -> str:
    pieces = [(p, int(p.name.split("-")[1].split(".")[0])) for p in store.pieces(up.id)]
    if sum(n for _, n in pieces) != up.length:
        raise IntegrityError(f"{rel}: its pieces hold {sum(n for _, n in pieces)} of "
                             f"{up.length} bytes")
    for path, _ in pieces:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            raise IntegrityError(f"{rel}: {path.name} is not a plain file")
        if st.st_size > MAX_PIECE:
            raise IntegrityError(f"{rel}: a piece is larger than the intake ever writes")
    reader = vault.intake_reader(pieces, what=rel)
    stored = vault.store(_Counted(reader, progress), size=up.length, what=rel)
    if stored.digests.size != up.length:
        vault.discard(stored)
        raise IntegrityError(f"{rel}: {stored.digests.size} bytes decrypted, {up.length} "
                             "announced")
    mtime = int(meta["mtime"]) if meta.get("mtime", "").isdigit() else 0
    st = os.stat_result((0o100600, 0, 0, 1, 0, 0, up.length, 0, mtime, 0,
                         0.0, float(mtime), 0.0, 0, mtime * 10**9, 0))
    entry = Entry(rel, Path(store.root) / "uploads" / up.id, "file", st)
    batch = Batch(vault, acq, report.ingest)
    batch.add(Staged(entry, stored))
    try:
        batch.commit(checkpoint=False)
    except BaseException:
        batch.discard()
        raise
    report.ingest.bytes_read += up.length
    return stored.digests.sha256


class _Counted:
    def __init__(self, reader: Any, progress: Progress) -> None:
        self.reader, self.progress = reader, progress

    def read(self, n: int = -1) -> bytes:
        data: bytes = self.reader.read(n)
        self.progress.advance(len(data))
        return data


def _metadata(vault: Vault, up: Any) -> dict[str, str]:
    """The tus metadata the intake encrypted on arrival: names and values as text."""
    import base64

    raw = vault.open_intake_small(up.meta, what=f"upload {up.id}")
    try:
        data = json.loads(raw)
        return {str(k): base64.b64decode(v).decode("utf-8", "replace") for k, v in data.items()}
    except (ValueError, AttributeError) as exc:
        raise IntegrityError(f"upload {up.id}: metadata unreadable: {exc}") from None


def _safe_name(name: str) -> str:
    """A file name is metadata, never a path: the last component, no control characters."""
    import unicodedata

    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    # no control or format characters (C0, C1, bidi overrides): a name must look like itself
    name = "".join("_" if unicodedata.category(c) in ("Cc", "Cf") else c for c in name).strip()
    if name in ("", ".", ".."):
        return "unnamed"
    return name[:200]


def _store_for(vault: Vault, folder: Path) -> Any:
    from strongroom.intake.store import IntakeError, Store

    try:
        store = Store(folder)
    except (IntakeError, OSError, ValueError, KeyError) as exc:
        raise StrongroomError(f"{folder}: not an intake folder: {exc}") from None
    if store.recipient != vault.public.age_recipient:
        raise StrongroomError(
            f"{folder} encrypts to {store.recipient}, not to this vault "
            f"({vault.public.age_recipient}): it belongs to another vault")
    return store


def read_messages(vault: Vault, folder: Path) -> list[dict[str, Any]]:
    """Every source's messages, replies and receipts, oldest first, decrypted in memory."""
    vault.require_keys()
    store = _store_for(vault, folder)
    found = []
    for sid in store.source_ids():
        shown = []
        for m in store.messages(sid):
            try:
                text = vault.open_intake_small(m.ciphertext, what=f"message {m.seq}").decode(
                    "utf-8", "replace")
            except IntegrityError as exc:
                text = f"(unreadable: {exc})"
            shown.append({"seq": m.seq, "from": m.sender, "text": text})
        if shown:
            try:
                source_key(vault, store, sid)  # first contact: the vault pins the source's key
            except StrongroomError as exc:
                shown.append({"seq": 0, "from": "warning", "text": str(exc)})
            found.append({"source": sid[:16], "messages": shown})
    return found


def reply(vault: Vault, folder: Path, source: str, text: str) -> dict[str, Any]:
    """Leave a reply for one source (given by the start of its id, at least 8 hex digits)."""
    vault.require_keys()
    store = _store_for(vault, folder)
    if not re.fullmatch(r"[0-9a-f]{8,64}", source):
        raise StrongroomError("name the source by the start of its id (8+ hex digits)")
    matches = [sid for sid in store.source_ids() if sid.startswith(source)]
    if len(matches) != 1:
        raise StrongroomError(f"{len(matches)} sources start with {source}")
    if not text.strip():
        raise StrongroomError("the reply is empty")
    seq = store.add_message(matches[0], "org", text.encode("utf-8"),
                            source_key(vault, store, matches[0]))
    return {"source": matches[0][:16], "seq": seq}
