"""`strongroom export`: a BagIt 1.0 bag a court can check without us.

    NAME/
      bagit.txt  bag-info.txt                   BagIt declaration; organisation, Payload-Oxum …
      manifest-sha256.txt  manifest-sha512.txt  every payload file's digests
      tagmanifest-sha256.txt  tagmanifest-sha512.txt   the tag files' digests (incl. manifests)
      verify.py                                 standalone verifier (Python + cryptography)
      signatures/tagmanifest-*.txt.sig          Ed25519 by the vault key, over the exact bytes
      signatures/timestamps.json  *.tsr         RFC 3161 tokens over tagmanifest-sha256.txt
      data/originals/<sha256>.<ext>             bit-exact originals
      data/derivatives/<sha256>/…               with --include derivatives
      data/metadata/  originals.json|csv, acquisitions.json, duplicates.json, case.json
      data/custody/   events.jsonl, checkpoints.jsonl, vault-public.json, vault-signing-key.pem
      data/report/    report.en.html, report.fr.html, stills/

The bag is written by streaming: each original is decrypted once, and that one read feeds the
SHA-256 (checked against the catalogue: a swapped blob stops the export), the SHA-512 and the
output. With recipients, the same files go into a tar stream encrypted by `age` (see sinks.py)
and no plaintext touches the disk. The signatures directory is outside the tag manifests
because it signs them; bagit-python's validator accepts such extra tag files.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from strongroom.catalogue.models import Derivative, Original
from strongroom.custody.chain import canonical_json
from strongroom.custody.log import checkpoint_json, event_json
from strongroom.errors import BlobMissing, IntegrityError, StrongroomError
from strongroom.export.collect import (
    MIME_EXT,
    Item,
    Selection,
    acquisition_record,
    original_record,
    originals_csv,
    select_items,
)
from strongroom.export.sinks import DirSink, Sink, TarAgeSink, Volume
from strongroom.vault import Vault
from strongroom.vault.door import Access
from strongroom.vault.recipients import check_recipients

ALGORITHMS = ("sha256", "sha512")
BAGIT_TXT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"


class Progress(Protocol):
    def start(self, files: int, total_bytes: int) -> None: ...
    def advance(self, nbytes: int) -> None: ...


class _NoProgress:
    def start(self, files: int, total_bytes: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass


@dataclass
class ExportOptions:
    case: str | None = None
    everything: bool = False
    originals: list[str] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)
    tsa_urls: list[str] = field(default_factory=list)
    include_derivatives: bool = False
    reveal_stills: bool = False
    reveal_acquisitions: bool = False
    volume_size: int | None = None
    pdf: bool = True
    name: str = "bag"
    organisation: str = ""
    contact_name: str = ""
    contact_email: str = ""
    workers: int = 2


@dataclass
class ExportReport:
    bag_id: str
    description: str
    output: list[str]
    originals: int
    derivatives: int
    payload_bytes: int
    tagmanifest_sha256: str
    signing_key_fingerprint: str
    encrypted_to: list[str]
    volumes: list[Volume]
    timestamps: list[dict[str, str]]
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"bag_id": self.bag_id, "description": self.description, "output": self.output,
                "originals": self.originals, "derivatives": self.derivatives,
                "payload_bytes": self.payload_bytes,
                "tagmanifest_sha256": self.tagmanifest_sha256,
                "signing_key_fingerprint": self.signing_key_fingerprint,
                "encrypted_to": self.encrypted_to,
                "volumes": [v.to_json() for v in self.volumes],
                "timestamps": self.timestamps, "seconds": round(self.seconds, 3)}

    def to_text(self) -> str:
        """What `strongroom export` prints: what went where, the bag's identity and key, and
        for encrypted volumes the command that opens them."""
        out = "\n".join(f"  {p}" for p in self.output)
        text = (f"exported {self.description}: {self.originals} originals"
                f"{f', {self.derivatives} derivatives' if self.derivatives else ''}, "
                f"{self.payload_bytes / 1e6:.1f} MB in {self.seconds:.1f} s\n{out}\n"
                f"bag {self.bag_id}, tag manifest SHA-256 {self.tagmanifest_sha256}\n"
                f"signed by vault key {self.signing_key_fingerprint}")
        if self.encrypted_to:
            # volumes are NAME.tar.age or NAME.tar.age.NNN (export/sinks.py)
            name = (self.volumes[0].name.rpartition(".tar.age")[0] if self.volumes
                    else "bag")
            text += (f"\nencrypted to {len(self.encrypted_to)} recipient(s): decrypt with "
                     f"`cat {name}.tar.age* | age -d -i KEY | tar x`")
        return text


def _same_place(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _inside(path: Path, folder: Path) -> bool:
    """Whether `path` (which need not exist yet) is `folder` or lies under it. Two tests, since
    "inside" has more than one spelling: the resolved paths (symlinks and `..` undone), and
    the device and inode of every existing ancestor of `path` (which also sees a bind mount,
    a hard-to-resolve alias or a case-insensitive filesystem reaching the same folder)."""
    try:
        folder_stat = folder.stat()
    except OSError:
        return False
    resolved_folder = folder.resolve()
    resolved = path.resolve()
    if resolved == resolved_folder or resolved_folder in resolved.parents:
        return True
    for ancestor in (path, *path.absolute().parents):
        try:
            if _same_place(ancestor.stat(), folder_stat):
                return True
        except OSError:
            continue
    return False


def check_destination(vault: Vault, dest: Path, name: str) -> None:
    """Refuse to write an export inside the vault folder (or its blob store): a plaintext bag
    there would sit beside the ciphertext it was meant to protect, on the very disk a seizure
    takes, and outside every rule the vault keeps (encryption, custody)."""
    outputs = [dest / name, dest / f".{name}.incomplete", dest / f"{name}.tar.age"]
    for folder in vault.settings.vault_folders():
        if any(_inside(out, folder) for out in outputs):
            raise StrongroomError(f"--to {dest} would put the export inside the vault folder "
                                  f"{folder}; choose a place outside it")


def check_custody_covers(sel: Selection) -> None:
    """Refuse, before anything is written, a bag whose custody extract would not show every
    exported original's `ingested` event: the extract stops at the vault's last checkpoint,
    and a bag whose own verification fails ("originals in custody") must never reach a court.
    The same test as the verifier's, so what export accepts, verify accepts."""
    ingested: dict[str, int] = {}
    for ev in sel.events:  # only events up to the last checkpoint
        if ev.action == "ingested":
            details = json.loads(ev.details)
            if isinstance(details, dict) and isinstance(details.get("size"), int):
                ingested[str(details.get("sha256"))] = details["size"]
    uncovered = [i.original.sha256 for i in sel.items
                 if ingested.get(i.original.sha256) != i.original.size]
    if uncovered:
        last = sel.checkpoints[-1].seq if sel.checkpoints else 0
        raise IntegrityError(
            f"{len(uncovered)} original(s) have no `ingested` event up to the vault's last "
            f"checkpoint (event {last}), so the bag's custody extract would not cover them and "
            "the bag would fail its own verification; nothing was exported. Run `strongroom "
            "verify` on the vault, then export again. First: " + ", ".join(uncovered[:5])
            + (" …" if len(uncovered) > 5 else ""))


class BagWriter:
    """Files in, manifests out. Thread-safe for payload files written in parallel."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.payload: dict[str, dict[str, str]] = {}
        self.payload_bytes = 0
        self.tags: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def _note(self, table: dict[str, dict[str, str]], rel: str, digests: dict[str, str],
              size: int) -> None:
        with self._lock:
            table[rel] = digests
            if table is self.payload:
                self.payload_bytes += size

    def add_bytes(self, rel: str, data: bytes, *, tag: bool = False) -> None:
        with self.sink.open_file(rel, len(data)) as write:
            write(data)
        digests = {a: hashlib.new(a, data).hexdigest() for a in ALGORITHMS}
        self._note(self.tags if tag else self.payload, rel, digests, len(data))

    def add_untracked(self, rel: str, data: bytes) -> None:
        """A tag file outside the tag manifests (the signatures over them)."""
        with self.sink.open_file(rel, len(data)) as write:
            write(data)

    def add_decrypted(self, access: Access, rel: str, row: Original | Derivative,
                      progress: Progress) -> None:
        """Decrypt one original or derivative into the bag through the vault's door, which
        checks its SHA-256 and size against the catalogue. A SHA-512 recorded at ingest
        (STRONGROOM_SHA512) is reused, since equal SHA-256 proves the bytes are the ones it
        was computed from; otherwise it is computed from the same read."""
        known512 = row.sha512 if isinstance(row, Original) else None
        with self.sink.open_file(rel, row.size) as write:
            def out(chunk: bytes) -> None:
                write(chunk)
                progress.advance(len(chunk))

            if isinstance(row, Original):
                d = access.original(row, out, sha512=known512 is None, md5=False)
            else:
                d = access.derivative(row, out, sha512=True)
        digest512 = known512 or d.sha512
        if digest512 is None:
            raise IntegrityError(f"{rel}: no SHA-512 computed")
        self._note(self.payload, rel, {"sha256": d.sha256, "sha512": digest512}, row.size)

    def manifest(self, table: dict[str, dict[str, str]], alg: str) -> bytes:
        return "".join(f"{table[rel][alg]}  {_encode_path(rel)}\n"
                       for rel in sorted(table)).encode("utf-8")


def _encode_path(rel: str) -> str:
    return rel.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _json(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=2, sort_keys=False) + "\n").encode()


def export(vault: Vault, dest: Path, opts: ExportOptions,
           progress: Progress | None = None) -> ExportReport:
    """Write the bag (or its encrypted volumes) under `dest`; record `exported` on success."""
    progress = progress or _NoProgress()
    started = time.perf_counter()
    check_destination(vault, dest, opts.name)
    if opts.recipients:
        check_recipients(opts.recipients)
    with vault.catalogue.read() as s:
        sel = select_items(s, case=opts.case, everything=opts.everything, shas=opts.originals)
        derivs = [(i, d) for i in sel.items for d in i.derivatives] \
            if opts.include_derivatives else []
    check_custody_covers(sel)
    missing = [i.original.sha256 for i in sel.items if not vault.has_blob(i.original.blob_name)]
    missing += [f"{d.kind} of {d.original_sha256}" for _, d in derivs
                if not vault.has_blob(d.blob_name)]
    if missing:
        raise BlobMissing(f"{len(missing)} blob(s) missing from the vault, nothing exported: "
                          + ", ".join(missing[:20]) + (" …" if len(missing) > 20 else ""))
    bag_id = f"strongroom-export-{datetime.now(UTC):%Y%m%d}-{uuid.uuid4().hex[:12]}"
    with vault.exporting(bag_id) as access:
        report = _write_bag(vault, access, dest, opts, sel, derivs, bag_id, progress, started)
    return report


def _write_bag(vault: Vault, access: Access, dest: Path, opts: ExportOptions, sel: Selection,
               derivs: list[tuple[Item, Derivative]], bag_id: str, progress: Progress,
               started: float) -> ExportReport:
    stills = _stills(access, sel)
    deriv_files = {d.id: (f"data/derivatives/{i.original.sha256}/{d.kind}-{d.sha256[:16]}"
                          f".{_mime_ext(d.mime)}") for i, d in derivs}
    records = [original_record(i, deriv_files) for i in sel.items]
    dupes = _duplicates(vault, sel)
    sel.shown = custody_subjects(vault, sel)
    from strongroom.export.report import prepare_reports, write_reports

    reports = prepare_reports(vault.public.fingerprint, sel, records, dupes, stills, opts,
                              bag_id)
    sink: Sink = (TarAgeSink(dest, opts.name, opts.recipients, opts.volume_size)
                  if opts.recipients else DirSink(dest / opts.name))
    pdf_pool = _pdf_pool() if reports.printable else None
    try:
        # PDFs render in a child process while the originals stream (that is disk-bound and
        # leaves CPU idle); the renderer's memory never joins this process's.
        from strongroom.export.report import to_pdf

        pdf_jobs = {lang: pdf_pool.submit(to_pdf, page) for lang, page
                    in reports.printable.items()} if pdf_pool is not None else {}
        writer = BagWriter(sink)
        total = sum(i.original.size for i in sel.items) + sum(d.size for _, d in derivs)
        progress.start(len(sel.items) + len(derivs), total)
        jobs: list[Callable[[], None]] = [
            _job(writer, access, i.file, i.original, progress) for i in sel.items]
        jobs += [_job(writer, access, deriv_files[d.id], d, progress) for _, d in derivs]
        _run(jobs, opts.workers if isinstance(sink, DirSink) else 1)
        _write_metadata(writer, sel, records, dupes, opts)
        _write_custody(writer, vault, sel)
        write_reports(writer, reports, {lang: f.result() for lang, f in pdf_jobs.items()})
        tag_manifests = _write_tags(writer, vault, sel, opts, bag_id)
        timestamps = _sign(writer, vault, tag_manifests, opts.tsa_urls)
        volumes = sink.finish()
        digest = hashlib.sha256(tag_manifests["sha256"]).hexdigest()
        # On the record before anyone can find it under its name: a kill after this leaves
        # a recorded bag under the scratch name, never an unrecorded one under the real name.
        vault.record_export(access, bag_id, {
            "bag_id": bag_id, "description": sel.description,
            "case": sel.case.name if sel.case else None,
            "originals": sel.shas, "derivatives": len(derivs),
            "payload_bytes": writer.payload_bytes, "tagmanifest_sha256": digest,
            "encrypted_to": opts.recipients,
            "volumes": [v.to_json() for v in volumes],
            "stills_revealed": opts.reveal_stills,
            "acquisition_records_revealed": opts.reveal_acquisitions,
            "custody_extract_to_seq": sel.events[-1].seq if sel.events else 0,
        })
    except BaseException:
        sink.abort()
        raise
    finally:
        if pdf_pool is not None:
            pdf_pool.shutdown(wait=True, cancel_futures=True)
    sink.publish()
    output = ([str(dest / v.name) for v in volumes] if volumes else [str(dest / opts.name)])
    return ExportReport(
        bag_id=bag_id, description=sel.description, output=output, originals=len(sel.items),
        derivatives=len(derivs), payload_bytes=writer.payload_bytes,
        tagmanifest_sha256=digest, signing_key_fingerprint=vault.public.fingerprint,
        encrypted_to=opts.recipients, volumes=volumes, timestamps=timestamps,
        seconds=time.perf_counter() - started)


def _pdf_pool() -> Executor:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))


def _mime_ext(mime: str | None) -> str:
    return MIME_EXT.get(mime or "", "bin")


def _job(writer: BagWriter, access: Access, rel: str, row: Original | Derivative,
         progress: Progress) -> Callable[[], None]:
    return lambda: writer.add_decrypted(access, rel, row, progress)


def _run(jobs: list[Callable[[], None]], workers: int) -> None:
    if workers <= 1:
        for job in jobs:
            job()
        return
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(job) for job in jobs]
        try:
            for f in futures:
                f.result()
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def _stills(access: Access, sel: Selection) -> dict[str, bytes]:
    """The poster frame of each original, when the pipeline made one (decrypted through the
    export's door, so the `exported` event counts them)."""
    out = {}
    for item in sel.items:
        posters = [d for d in item.derivatives if d.kind == "poster"]
        if posters:
            chunks: list[bytes] = []
            access.derivative(posters[-1], chunks.append)
            out[item.original.sha256] = b"".join(chunks)
    return out


def _write_metadata(writer: BagWriter, sel: Selection, records: list[dict[str, Any]],
                    dupes: list[dict[str, Any]], opts: ExportOptions) -> None:
    from strongroom.custody.log import acquisition_commitment

    writer.add_bytes("data/metadata/originals.json", _json(records))
    writer.add_bytes("data/metadata/originals.csv", originals_csv(records))
    writer.add_bytes("data/metadata/acquisitions.json", _json([
        acquisition_record(a, acquisition_commitment(a), opts.reveal_acquisitions)
        for a in sel.acquisitions]))
    writer.add_bytes("data/metadata/duplicates.json", _json(dupes))
    if sel.case is not None:
        writer.add_bytes("data/metadata/case.json", _json({
            "name": sel.case.name, "purpose": sel.case.purpose,
            "description": sel.case.description, "incidents": sel.incidents}))


def _duplicates(vault: Vault, sel: Selection) -> list[dict[str, Any]]:
    """Near-duplicate groups touching the exported originals (members outside are named)."""
    from strongroom.catalogue.dupes import near_duplicate_groups

    wanted = set(sel.shas)
    with vault.catalogue.read() as s:
        groups = near_duplicate_groups(s)
    out = []
    for g in groups:
        if any(m.original in wanted for m in g.members):
            j = g.to_json()
            for m in j["members"]:
                m["in_this_bag"] = m["original"] in wanted
            out.append(j)
    return out


def custody_subjects(vault: Vault, sel: Selection) -> set[str]:
    """Subjects of the events shown in full: the exported originals, their acquisitions and
    cameras, the vault itself (creation, fixity checks), the case and its incidents, and earlier
    exports (with their handovers and receipts) that included any of these originals."""
    subjects = {f"original:{sha}" for sha in sel.shas}
    subjects |= {f"acquisition:{a.id}" for a in sel.acquisitions}
    from sqlalchemy import select

    from strongroom.catalogue.models import Camera

    cameras = {seg.camera_id for i in sel.items for seg, _, _ in i.segments
               if seg.camera_id is not None}
    with vault.catalogue.read() as s:  # and the cameras they were merged into
        cameras |= set(s.scalars(select(Camera.merged_into).where(
            Camera.id.in_(cameras), Camera.merged_into.is_not(None))))
    subjects |= {f"camera:{c}" for c in cameras if c is not None}
    subjects.add(f"vault:{vault.public.fingerprint}")
    if sel.case is not None:
        subjects.add(f"case:{sel.case.id}")
        subjects |= {f"incident:{i['id']}" for i in sel.incidents}
    shas = set(sel.shas)
    for ev in sel.events:
        if ev.action == "exported" and shas & set(json.loads(ev.details).get("originals", [])):
            subjects.add(ev.subject)
    return subjects


def _write_custody(writer: BagWriter, vault: Vault, sel: Selection) -> None:
    lines = []
    for ev in sel.events:
        if ev.subject in sel.shown:
            lines.append(canonical_json(event_json(ev)))
        else:  # hash, link and signature still prove the chain has no hole here
            lines.append(canonical_json({"seq": ev.seq, "prev_hash": ev.prev_hash,
                                         "hash": ev.hash, "signature": ev.signature,
                                         "redacted": True}))
    writer.add_bytes("data/custody/events.jsonl", "".join(f"{ln}\n" for ln in lines).encode())
    writer.add_bytes("data/custody/checkpoints.jsonl", "".join(
        canonical_json(checkpoint_json(cp)) + "\n" for cp in sel.checkpoints).encode())
    writer.add_bytes("data/custody/vault-public.json", _json(vault.public.to_json()))
    writer.add_bytes("data/custody/vault-signing-key.pem", vault.public.signing_pem())


def _write_tags(writer: BagWriter, vault: Vault, sel: Selection, opts: ExportOptions,
                bag_id: str) -> dict[str, bytes]:
    """Declaration, bag-info, manifests and verify.py; returns the tag manifests by algorithm."""
    from importlib.resources import files

    info = {
        "Source-Organization": opts.organisation or "(not set: --organisation)",
        "Contact-Name": opts.contact_name, "Contact-Email": opts.contact_email,
        "External-Identifier": bag_id,
        "External-Description": f"Strongroom handover: {sel.description}, "
                                f"{len(sel.items)} original(s)",
        "Bagging-Date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "Payload-Oxum": f"{writer.payload_bytes}.{len(writer.payload)}",
        "Bag-Software-Agent": f"strongroom {_version()}",
        "Strongroom-Signing-Key-Fingerprint": vault.public.fingerprint,
        "Strongroom-Custody-Extract-To-Seq": str(sel.events[-1].seq if sel.events else 0),
        # Signed (bag-info.txt is in the tag manifests) and written before the tokens exist:
        # a verifier can tell a removed token from a bag that never had one.
        "Strongroom-Timestamp-Tokens": str(len(opts.tsa_urls)),
    }
    bag_info = "".join(f"{k}: {_one_line(v)}\n" for k, v in info.items() if v).encode("utf-8")
    writer.add_bytes("bagit.txt", BAGIT_TXT, tag=True)
    writer.add_bytes("bag-info.txt", bag_info, tag=True)
    for alg in ALGORITHMS:
        writer.add_bytes(f"manifest-{alg}.txt", writer.manifest(writer.payload, alg), tag=True)
    verifier = files("strongroom.export").joinpath("verifier.py").read_bytes()
    writer.add_bytes("verify.py", verifier, tag=True)
    tag_manifests = {alg: writer.manifest(writer.tags, alg) for alg in ALGORITHMS}
    for alg, data in tag_manifests.items():
        writer.add_untracked(f"tagmanifest-{alg}.txt", data)
    return tag_manifests


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("strongroom")
    except PackageNotFoundError:
        return "unknown"


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _sign(writer: BagWriter, vault: Vault, tag_manifests: dict[str, bytes],
          tsa_urls: list[str]) -> list[dict[str, str]]:
    for alg, data in tag_manifests.items():
        writer.add_untracked(f"signatures/tagmanifest-{alg}.txt.sig", vault.sign(data))
    stamps: list[dict[str, str]] = []
    if tsa_urls:
        from strongroom.export.timestamp import request_timestamp

        for n, url in enumerate(tsa_urls, 1):
            token = request_timestamp(url, tag_manifests["sha256"])
            name = f"tagmanifest-sha256.txt.tsa{n}.tsr"
            writer.add_untracked(f"signatures/{name}", token)
            stamps.append({"tsa": url, "token": name, "data": "tagmanifest-sha256.txt"})
        writer.add_untracked("signatures/timestamps.json", _json(stamps))
    return stamps

