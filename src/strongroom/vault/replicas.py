"""Copies of a vault's blobs elsewhere: moving them to another store (`migrate_store`: the
laptop shape to the server shape), keeping replicas in step (`replicate`), and comparing and
repairing the copies (`check_replicas`). What moves is the age ciphertext, byte for byte:
nothing is decrypted to copy it, and no store learns more than the vault's own did.

Each copy is checked where it landed: its bytes are read back from the target and their
SHA-256 compared with the source's, before it counts. A copy already at the target (a
re-run after an interruption) is checked the same way rather than trusted. The custody log
records each operation (`migrated`, `replicated`, `repaired`) with what it counted.

When copies of one blob differ (bit rot, a tampered disk), which one is right is decided by
the vault, not by a majority: each candidate is decrypted and its plaintext hashed, and the
one whose SHA-256 is the catalogue's is kept; the others are replaced by it. (age
authenticates every 64 KiB chunk, so a damaged copy does not even decrypt.)

Replicas are named in vault.json (`replicas`), so `verify --replicas` knows where to look.
A replica holds only blobs: the catalogue and keys are backed up with the vault folder
(`keys.age` is useless without the passphrase or shares; the catalogue is SQLCipher).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from strongroom.errors import IntegrityError, StrongroomError
from strongroom.vault.blobs import BlobStore, open_blob_store

#: read size while copying and hashing ciphertext
COPY_CHUNK = 4 * 1024 * 1024


def store_at(vault: Any, location: str) -> BlobStore:
    """A store at `location` (a folder or an `s3://` URL), staging in the vault folder;
    an S3 one checked to answer."""
    if not location.startswith("s3://"):
        root = Path(location[len("file://"):] if location.startswith("file://") else location)
        root = root.absolute()
        for folder in vault.settings.vault_folders():
            if root == folder.absolute():
                raise StrongroomError(f"{root} is the vault's own blob store")
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        location = str(root)
    store = open_blob_store(location, endpoint_url=vault.settings.s3_endpoint_url,
                            staging=vault.path / ".s3-staging")
    check = getattr(store, "check", None)
    if check is not None:
        check()
    return store


def _digest(store: BlobStore, name: str) -> str:
    h = hashlib.sha256()
    with store.open(name) as f:
        while chunk := f.read(COPY_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def copy_blob(src: BlobStore, dst: BlobStore, name: str, *, replace: bool = False) -> str:
    """Copy one blob's ciphertext from `src` to `dst` and check it there; returns its SHA-256.
    A blob `dst` has already is only checked (`replace`: overwritten, for a repair)."""
    h = hashlib.sha256()
    if not replace and dst.exists(name):
        want = _digest(src, name)
    else:
        staged = dst.stage()
        try:
            with src.open(name) as f:
                while chunk := f.read(COPY_CHUNK):
                    h.update(chunk)
                    staged.file.write(chunk)
        except BaseException:
            dst.discard(staged)
            raise
        want = h.hexdigest()
        if replace:
            dst.replace(staged, name)
        else:
            dst.commit([(staged, name)])
    got = _digest(dst, name)
    if got != want:
        raise IntegrityError(f"blob {name}: the copy differs from its source (sha256 {got} "
                             f"≠ {want}); nothing was changed in the vault")
    return want


def catalogue_blobs(vault: Any) -> list[str]:
    """Every blob the catalogue points to (originals, derivatives, chunks), sorted."""
    from strongroom.catalogue.models import Derivative, DerivativeChunk, Original

    with vault.catalogue.read() as s:
        names = set(s.scalars(select(Original.blob_name)))
        names |= set(s.scalars(select(Derivative.blob_name)))
        names |= set(s.scalars(select(DerivativeChunk.blob_name)))
    return sorted(names)


def _listing_digest(pairs: list[tuple[str, str]]) -> str:
    return hashlib.sha256("".join(f"{n} {d}\n" for n, d in pairs).encode()).hexdigest()


@dataclass
class CopyReport:
    target: str
    total: int = 0
    copied: int = 0
    already_there: int = 0
    bytes_copied: int = 0
    listing_sha256: str = ""
    problems: list[str] = field(default_factory=list)


def _copy_all(vault: Any, dst: BlobStore, target: str,
              advance: Callable[[int], None] | None) -> tuple[CopyReport, list[tuple[str, str]]]:
    report = CopyReport(target=target)
    pairs: list[tuple[str, str]] = []
    for name in catalogue_blobs(vault):
        had = dst.exists(name)
        try:
            digest = copy_blob(vault.blobs, dst, name)
        except StrongroomError as exc:
            report.problems.append(str(exc))
            continue
        pairs.append((name, digest))
        report.total += 1
        if had:
            report.already_there += 1
        else:
            report.copied += 1
            report.bytes_copied += dst.size(name)
        if advance is not None:
            advance(1)
    report.listing_sha256 = _listing_digest(pairs)
    return report, pairs


def migrate_store(vault: Any, target: str, *,
                  advance: Callable[[int], None] | None = None) -> CopyReport:
    """Copy every blob to `target`, check each copy there, then make `target` the vault's
    blob store (vault.json) with a `migrated` custody event. The old store is left as it
    was: remove it once the vault works from the new one."""
    from strongroom.vault.opening import read_marker_json

    dst = store_at(vault, target)
    try:
        report, _ = _copy_all(vault, dst, target, advance)
    finally:
        dst.close()
    if report.problems:
        raise IntegrityError(f"{len(report.problems)} blob(s) could not be copied; the vault "
                             f"still uses its old store. First: {report.problems[0]}")
    location = target if target.startswith("s3://") else str(
        Path(target.removeprefix("file://")).absolute())
    before = vault.settings.blob_location()
    with vault.write() as s:
        vault.record(s, "migrated", f"vault:{vault.public.fingerprint}", {
            "what": "blob store", "from": before, "to": location, "blobs": report.total,
            "copied": report.copied, "listing_sha256": report.listing_sha256})
    from strongroom.vault.vault import recorded_store

    marker = read_marker_json(vault.path)
    marker.pop("s3_endpoint_url", None)
    marker.update(recorded_store(vault.settings.model_copy(update={"blob_store": location})))
    vault.write_marker(marker)
    return report


def replicate(vault: Any, target: str, *,
              advance: Callable[[int], None] | None = None) -> CopyReport:
    """Bring the replica at `target` up to date (only what it lacks is copied; what it has
    is checked), name it in vault.json, and record `replicated`."""
    from strongroom.vault.opening import read_marker_json

    dst = store_at(vault, target)
    try:
        report, _ = _copy_all(vault, dst, target, advance)
    finally:
        dst.close()
    location = target if target.startswith("s3://") else str(
        Path(target.removeprefix("file://")).absolute())
    with vault.write() as s:
        vault.record(s, "replicated", f"vault:{vault.public.fingerprint}", {
            "to": location, "blobs": report.total, "copied": report.copied,
            "checked": report.already_there, "problems": len(report.problems),
            "listing_sha256": report.listing_sha256})
    marker = read_marker_json(vault.path)
    replicas = [r for r in marker.get("replicas", []) if isinstance(r, str)]
    if location not in replicas:
        marker["replicas"] = [*replicas, location]
        vault.write_marker(marker)
    return report


@dataclass
class ReplicaReport:
    replicas: list[str]
    blobs: int = 0
    diverged: list[dict[str, Any]] = field(default_factory=list)
    repaired: int = 0
    unrepairable: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unrepairable

    def as_dict(self) -> dict[str, Any]:
        return {"replicas": self.replicas, "blobs": self.blobs, "diverged": self.diverged,
                "repaired": self.repaired, "unrepairable": self.unrepairable, "ok": self.ok}

    def warnings(self) -> list[str]:
        """What `verify --replicas` adds to its report's warnings: each divergence."""
        out = []
        for entry in self.diverged:
            fixed = entry.get("repaired")
            out.append(f"blob {entry['blob']}: copies differed; " + (
                f"the good one (in {entry['good']}) was put back in {', '.join(fixed)}"
                if fixed else "no copy decrypts to what the catalogue says"))
        return out

    def problems(self) -> list[Any]:
        """What it adds to its problems: each blob with no good copy anywhere."""
        from strongroom.custody.verify import Problem

        return [Problem("replicas", f"blob:{name}", "no good copy in the vault or any "
                        "replica") for name in self.unrepairable]


def _plain_ok(vault: Any, store: BlobStore, name: str, sha256: str) -> bool:
    """Whether this copy decrypts to the plaintext the catalogue names."""
    from strongroom.vault.encryption import decrypt_stream
    from strongroom.vault.hashing import MultiHash

    hasher = MultiHash(md5=False)
    try:
        with store.open(name) as f:
            decrypt_stream(f, vault.keys.identity_text(), None, hasher, what=f"blob {name}")
    except StrongroomError:
        return False
    return hasher.digests().sha256 == sha256


def _expected(vault: Any) -> dict[str, str | None]:
    """Blob name → the SHA-256 its plaintext must have (None: a chunk, checked by bytes)."""
    from strongroom.catalogue.models import Derivative, DerivativeChunk, Original

    with vault.catalogue.read() as s:
        out: dict[str, str | None] = {
            row[0]: row[1] for row in s.execute(select(Original.blob_name, Original.sha256))}
        chunked = set(s.scalars(select(DerivativeChunk.blob_name)))
        for row in s.execute(select(Derivative.blob_name, Derivative.sha256)):
            out[row[0]] = None if row[0] in chunked else row[1]
        for blob in chunked:
            out[blob] = None
    return out


def check_replicas(vault: Any, *, repair: bool = True,
                   advance: Callable[[int], None] | None = None) -> ReplicaReport:
    """Compare every blob's ciphertext across the vault's store and its replicas; where
    copies differ or one is missing, find the good copy by decrypting, and (with `repair`)
    put it back everywhere, recording `repaired`."""
    from strongroom.vault.opening import read_marker_json

    locations = [r for r in read_marker_json(vault.path).get("replicas", [])
                 if isinstance(r, str)]
    report = ReplicaReport(replicas=locations)
    if not locations:
        return report
    stores: list[tuple[str, BlobStore]] = [(vault.settings.blob_location(), vault.blobs)]
    try:
        for loc in locations:
            stores.append((loc, store_at(vault, loc)))
        expected = _expected(vault)
        for name, sha256 in sorted(expected.items()):
            report.blobs += 1
            digests: dict[str, str | None] = {}
            for loc, store in stores:
                digests[loc] = _digest(store, name) if store.exists(name) else None
            if advance is not None:
                advance(1)
            if len(set(digests.values())) == 1 and None not in digests.values():
                continue
            entry: dict[str, Any] = {"blob": name, "copies": digests}
            report.diverged.append(entry)
            good = _good_copy(vault, stores, digests, name, sha256)
            if good is None:
                report.unrepairable.append(name)
                entry["repaired"] = False
                continue
            entry["good"] = good
            if not repair:
                continue
            source = dict(stores)[good]
            fixed = []
            for loc, store in stores:
                if digests[loc] != digests[good]:
                    copy_blob(source, store, name, replace=True)
                    fixed.append(loc)
            entry["repaired"] = fixed
            with vault.write() as s:
                vault.record(s, "repaired", f"blob:{name}", {
                    "from": good, "to": fixed,
                    "before": {loc: d for loc, d in digests.items()},
                    "sha256": digests[good]})
            report.repaired += 1
    finally:
        for _loc, store in stores[1:]:
            store.close()
    return report


def _good_copy(vault: Any, stores: list[tuple[str, BlobStore]],
               digests: dict[str, str | None], name: str, sha256: str | None) -> str | None:
    """The location of a copy that is right: decrypts to `sha256` (a chunk, whose whole is
    checked by `verify`: the copy most stores agree on, if it decrypts at all)."""
    tried: set[str] = set()
    by_votes = sorted((loc for loc, d in digests.items() if d is not None),
                      key=lambda loc: -list(digests.values()).count(digests[loc]))
    for loc in by_votes:
        if digests[loc] in tried:
            continue
        tried.add(str(digests[loc]))
        store = dict(stores)[loc]
        if sha256 is not None and _plain_ok(vault, store, name, sha256):
            return loc
        if sha256 is None and _decrypts(vault, store, name):
            return loc
    return None


def _decrypts(vault: Any, store: BlobStore, name: str) -> bool:
    from strongroom.vault.encryption import decrypt_stream
    from strongroom.vault.hashing import MultiHash

    try:
        with store.open(name) as f:
            decrypt_stream(f, vault.keys.identity_text(), None, MultiHash(md5=False),
                           what=f"blob {name}")
    except StrongroomError:
        return False
    return True


def migrate_db(vault: Any, target_url: str,
               advance: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Move the catalogue to the (empty) database at `target_url`: every row copied and
    counted (`catalogue.transfer`), the custody chain and catalogue checked there
    (`verify --quick`), a `migrated` event recorded there, then vault.json names it
    (without its password). The old catalogue file is left as it was."""
    from strongroom.catalogue.transfer import copy_catalogue, without_password
    from strongroom.vault.opening import read_marker_json
    from strongroom.vault.vault import Vault

    if target_url.startswith("sqlite"):
        raise StrongroomError("migrate-db moves a catalogue to PostgreSQL "
                              "(postgresql+psycopg://user@host/db)")
    if vault.settings.resolved_database_url() == target_url:
        raise StrongroomError("that is the vault's own database")
    rows = copy_catalogue(vault.catalogue.engine, target_url, advance=advance)
    shown = without_password(target_url)
    moved = Vault(vault.settings.model_copy(update={"database_url": target_url}),
                  vault.public, vault.keys, vault.actor)
    try:
        report = moved.verify(fixity=False)
        if not report.ok:
            raise IntegrityError(f"the copy in {shown} does not check: "
                                 f"{report.problems[0]}; the vault still uses its old "
                                 "catalogue")
        with moved.write() as s:
            moved.record(s, "migrated", f"vault:{vault.public.fingerprint}", {
                "what": "catalogue", "from": without_password(
                    vault.settings.resolved_database_url()), "to": shown,
                "rows": sum(rows.values()), "tables": rows})
    finally:
        moved.close()
    marker = read_marker_json(vault.path)
    marker["database"] = shown
    vault.write_marker(marker)
    return {"to": shown, "rows": rows, "verify": report.to_json()}


__all__ = ["CopyReport", "ReplicaReport", "check_replicas", "copy_blob", "migrate_db",
           "migrate_store", "replicate", "store_at"]
