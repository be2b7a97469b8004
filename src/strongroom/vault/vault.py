"""`Vault`: the one object that owns a vault's keys, blob store, catalogue and custody log.

Build it with `Vault.create(settings, passphrase)` or `Vault.open(settings, passphrase)` and
hand it to whatever needs it (datasette's pattern). Its SQLite catalogue is encrypted
(SQLCipher, keyed from the vault's master secret), so it opens only unsealed; a vault made
before that, whose catalogue is still plain SQLite, can also be opened *sealed* (no
passphrase): catalogue reads work, anything that decrypts, names blobs or signs raises
`VaultSealed`.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from strongroom.catalogue.db import Catalogue, is_plain_sqlite, sqlite_path
from strongroom.catalogue.models import CustodyEvent, Derivative, Original
from strongroom.errors import (
    IntegrityError,
    NotAVault,
    RangeNotSatisfiable,
    StorageFull,
    StrongroomError,
    UnknownOriginal,
    VaultExists,
    VaultSealed,
)
from strongroom.fsio import fsync_dir
from strongroom.settings import Settings
from strongroom.vault.blobs import BlobStore, StagedBlob, open_blob_store
from strongroom.vault.door import Access, Opened, Stored, check_purpose
from strongroom.vault.hashing import Digests, MultiHash
from strongroom.vault.keys import PublicKeys, VaultKeys
from strongroom.vault.opening import (
    CHECKPOINTS,
    MARKER,
    S3_STAGING,
    SEALED_KEYS,
    SHARES_KEYS,
    VAULT_FORMAT,
    Unsealing,
    read_marker,
    read_marker_json,
    start_unseal,
    unlocks,
)

#: vault.json's "catalogue" value for a SQLCipher 4 catalogue.
CATALOGUE_CIPHER = "sqlcipher4"

if TYPE_CHECKING:
    from strongroom.custody.verify import VerifyReport
    from strongroom.vault.chunks import ChunkRef, SealedChunk
    from strongroom.vault.shares import Split
    from strongroom.vault.worker import Sealed, WorkerKeys


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


_OWN_FILES = {MARKER, SEALED_KEYS, SHARES_KEYS, CHECKPOINTS, "catalogue.db",
              "catalogue.db-wal", "catalogue.db-shm", "blobs"}


def default_actor(settings: Settings) -> str:
    """Who the custody log names when no actor is given: the configured one (STRONGROOM_ACTOR,
    read by `Settings`), else this process's user@host."""
    return settings.actor or f"{getpass.getuser()}@{socket.gethostname()}"


class Vault:
    def __init__(
        self, settings: Settings, public: PublicKeys, keys: VaultKeys | None, actor: str, *,
        lock: int | None = None,
    ) -> None:
        from strongroom.custody.log import CustodyLog

        settings = database_of(blob_store_of(settings))
        self.settings = settings
        self.path = settings.vault
        # An S3 store is asked first whether its bucket answers: an unreachable endpoint or a
        # refused credential is one message naming the setting, before anything is opened.
        self.blobs: BlobStore = _blob_store(settings)
        self.public = public
        self._keys = keys
        self.actor = actor
        # A flock on the vault folder, held shared while this object is open (`lock`: one
        # its caller took already); `encrypt_catalogue` needs it alone.
        self._lock = lock if lock is not None else _hold_vault_lock(self.path)
        self.catalogue = Catalogue(settings.resolved_database_url(),
                                   key=_catalogue_key(settings, keys))
        self.checkpoint_file = self.path / CHECKPOINTS
        self._custody = CustodyLog(keys, self.checkpoint_file) if keys is not None else None
        #: events appended by this object since its last checkpoint (see `close`)
        self._unsigned_events = False

    # -- lifecycle ----------------------------------------------------------------------
    @classmethod
    def create(cls, settings: Settings, passphrase: str | None, actor: str | None = None, *,
               shares: Split | None = None,
               announce: Callable[[PublicKeys], None] | None = None) -> Vault:
        """Make a new vault in a new or empty folder, its keys sealed under `passphrase`
        (keys.age) and/or for `shares` (keys-shares.age: any k of the split's n shares open
        it). Never deletes anything it did not create in this same call: a folder holding any
        vault file (even without `vault.json`, e.g. a vault whose marker was lost) is refused,
        naming the file. `announce(public)` runs last, before the vault exists (its marker is
        written): the CLI shows the new shares there, and if that fails, no vault is left
        sealed for shares nobody saw."""
        if passphrase is None and shares is None:
            raise StrongroomError("a vault needs a passphrase, shares, or both")
        path = settings.vault
        _check_new_vault_folder(path)
        store = _blob_store(settings)  # an S3 bucket that does not answer: nothing is made
        try:
            if settings.resolved_blob_root() is None and next(iter(store.names()), None):
                raise StrongroomError(f"{settings.blob_location()} already holds blobs (another "
                                      "vault's?): give this vault a prefix of its own")
        finally:
            store.close()
        created: list[Path] = []
        lock = None
        try:
            if not path.exists():
                _make_dirs(path, created)
            # Two `init`s of one new folder: the second must fail, not replace the first's keys.
            try:
                lock = _lock_folder(path)
            except VaultExists:
                # the other `init` holds the folder now, even one this call made: removing it
                # would pull the other's vault from under it (its keys.age.tmp vanished)
                created.clear()
                raise
            _check_new_vault_folder(path)
            keys = VaultKeys.generate()
            if passphrase is not None:
                _write_private(path / SEALED_KEYS, keys.seal(passphrase))
                created.append(path / SEALED_KEYS)
            if shares is not None:
                _write_private(path / SHARES_KEYS, _seal_for_shares(keys, shares))
                created.append(path / SHARES_KEYS)
            blob_root = settings.resolved_blob_root()
            if blob_root is not None and not blob_root.exists():
                _make_dirs(blob_root, created)
            # the folder's lock passes to the vault (shared once it exists)
            vault = cls(settings, keys.public, keys, actor or default_actor(settings),
                        lock=lock)
            lock = None
            db = sqlite_path(settings.resolved_database_url())
            if db is not None:
                created += [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
                # SQLite makes the file (and its -wal, -shm) with the mode it finds: 0600
                if not db.exists():
                    os.close(os.open(db, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            try:
                vault.catalogue.upgrade()
                with vault.write() as session:
                    vault.record(session, "vault_created", f"vault:{keys.public.fingerprint}", {
                        "format": VAULT_FORMAT,
                        "age_recipient": keys.public.age_recipient,
                        "signing_key_fingerprint": keys.public.fingerprint,
                        **_unlock_details(passphrase is not None, shares),
                    })
                created.append(path / CHECKPOINTS)
                marker: dict[str, Any] = {
                    "format": VAULT_FORMAT,
                    "created": datetime.now(UTC).isoformat(timespec="seconds"),
                    "public": keys.public.to_json(),
                }
                if vault.catalogue.encrypted:
                    marker["catalogue"] = CATALOGUE_CIPHER
                marker.update(recorded_store(settings))
                if settings.database_url:  # a later command needs no setting to find it
                    from strongroom.catalogue.transfer import without_password

                    marker["database"] = without_password(settings.database_url)
                if shares is not None:
                    marker["shares"] = asdict(shares.share_set)
                if announce is not None:
                    announce(keys.public)
                _write_private(path / MARKER, json.dumps(marker, indent=2).encode() + b"\n")
            except BaseException:
                vault.close()
                raise
        except BaseException:
            _remove_created(created)
            raise
        finally:
            if lock is not None:
                os.close(lock)
        vault._share_lock()
        return vault

    @classmethod
    def open(
        cls, settings: Settings, passphrase: str | None = None, actor: str | None = None, *,
        unsealing: Unsealing | None = None,
    ) -> Vault:
        """Open a vault; with `passphrase` (or an `unsealing` already started with
        `start_unseal`, as the CLI does before its heavy imports) its keys are unsealed."""
        public = cls.read_marker(settings.vault)
        # the database and bucket vault.json names (`migrate-db`, `migrate-store`), before
        # the catalogue is looked for: the old catalogue file may be gone
        settings = database_of(blob_store_of(settings))
        path = settings.vault
        # Before looking at the catalogue: a `migrate-catalogue` running now replaces it.
        lock = _hold_vault_lock(path)
        try:
            return cls._open_locked(settings, public, passphrase, actor, unsealing, lock)
        except BaseException:
            if lock is not None:
                os.close(lock)
            raise

    @classmethod
    def _open_locked(cls, settings: Settings, public: PublicKeys, passphrase: str | None,
                     actor: str | None, unsealing: Unsealing | None, lock: int | None
                     ) -> Vault:
        path = settings.vault
        db = sqlite_path(settings.resolved_database_url())
        if db is not None and not db.is_file():
            # Opening would silently create an empty catalogue, and `verify` would then
            # report an empty, "intact" vault.
            raise NotAVault(f"{path}: the catalogue {db.name} is missing: restore it from a "
                            "backup")
        if db is not None and db.stat().st_size == 0:
            raise NotAVault(f"{path}: the catalogue {db.name} is empty: restore it from a "
                            "backup")
        encrypted = db is not None and not is_plain_sqlite(db)
        if db is not None and not encrypted and marker_cipher(path) is not None:
            # A plaintext catalogue where an encrypted one belongs: swapped in so that what
            # people record next lands on the disk in clear.
            raise NotAVault(
                f"{path}: the catalogue {db.name} is not encrypted, but this vault's catalogue "
                "is: it was replaced; restore it from a backup")
        if unsealing is None and passphrase is not None:
            unsealing = start_unseal(path, passphrase)
        if encrypted and unsealing is None:
            raise VaultSealed("this vault's catalogue is encrypted: it opens only with the "
                              "passphrase (or k of its shares)")
        try:
            # An encrypted catalogue opens with a key from the unsealed keys. A plaintext one
            # (made before encryption) is opened and checked while scrypt (≈0.7 s of one core
            # in the `age` child) runs; a damaged catalogue is still the error reported first.
            keys = unsealing.result() if encrypted and unsealing is not None else None
            if keys is not None and keys.public != public:
                raise StrongroomError(
                    f"{path}/{MARKER} does not match the sealed keys (public key replaced?)")
            vault = cls(settings, public, keys, actor or default_actor(settings), lock=lock)
            try:
                vault.catalogue.upgrade()
                vault._check_catalogue_is_ours()
                if unsealing is not None and keys is None:
                    vault._adopt(unsealing.result())
                if vault._keys is not None:
                    vault._check_first_event_signed()
            except BaseException:
                vault._lock = None  # the caller closes it
                vault.close()
                raise
        finally:
            if unsealing is not None:
                unsealing.release()
        return vault

    def _check_catalogue_is_ours(self) -> None:
        """The log must begin with this vault's `vault_created` event. Otherwise the catalogue
        was emptied, replaced or taken from another vault, and every command working on it
        (an ingest starting a new chain at event 1, a `verify` finding nothing wrong with
        nothing) would hide that."""
        with self.catalogue.read() as s:
            first = s.execute(select(CustodyEvent.action, CustodyEvent.details)
                              .order_by(CustodyEvent.seq).limit(1)).first()
        try:
            created = first is not None and first[0] == "vault_created"
            fingerprint = json.loads(first[1]).get("signing_key_fingerprint") \
                if first is not None and created else None
        except (ValueError, AttributeError, TypeError):
            created, fingerprint = False, None
        if created and fingerprint != self.public.fingerprint:
            raise NotAVault(
                f"{self.path}/{MARKER} does not match the sealed keys and the custody log "
                "(public key replaced?), or the catalogue is another vault's: restore it from "
                "a backup")
        if not created:
            raise NotAVault(
                f"{self.path}: the catalogue holds no custody log of this vault (emptied, "
                "replaced, or from another vault): restore it from a backup")

    def _check_first_event_signed(self) -> None:
        """The first event must be signed by these keys: a catalogue forged from public data
        (the fingerprint) — say a plaintext one planted with vault.json's "catalogue" entry
        removed, so that what people record next lands on disk in clear — has no valid
        signature, however it copies the fingerprint."""
        from strongroom.custody.chain import event_hash, event_signing_input

        with self.catalogue.read() as s:
            ev = s.scalars(select(CustodyEvent).order_by(CustodyEvent.seq).limit(1)).first()
        ok = False
        if ev is not None:
            try:
                recomputed = event_hash(seq=ev.seq, time=ev.time, actor=ev.actor,
                                        action=ev.action, subject=ev.subject,
                                        details=json.loads(ev.details), prev_hash=ev.prev_hash)
                import base64

                ok = recomputed == ev.hash and self.keys.public.verify(
                    base64.b64decode(ev.signature), event_signing_input(ev.hash))
            except (ValueError, TypeError):
                ok = False
        if not ok:
            raise NotAVault(
                f"{self.path}: the catalogue's first custody event is not signed by this "
                "vault's keys: the catalogue was replaced or forged; restore it from a backup")

    def hold(self, seconds: float, how: str) -> str:
        """Hand the keys to an unseal agent for `seconds` (`unseal --hold`) and record it;
        returns until when (UTC, ISO 8601)."""
        from strongroom.vault import agent

        expires = agent.start(self.public.fingerprint, self.keys.bundle(), seconds)
        until = datetime.fromtimestamp(expires, UTC).isoformat(timespec="seconds")
        with self.write() as s:
            self.record(s, "unsealed", f"vault:{self.public.fingerprint}",
                        {"with": how, "held_until": until})
        return until

    def release(self) -> None:
        """Record `sealed`, then tell the unseal agent to drop the keys (`strongroom seal`)."""
        from strongroom.vault import agent

        with self.write() as s:
            self.record(s, "sealed", f"vault:{self.public.fingerprint}", {"agent": True})
        agent.seal(self.public.fingerprint)

    def serving(self, on_seal: Callable[[], None], *, hours: float, where: str) -> Callable[
            [str], None]:
        """A review server holds the keys from now on: record `unsealed`, and let `strongroom
        seal` reach it (`on_seal`). Returns the function to call when it stops, with why;
        it records `sealed`."""
        from strongroom.vault import agent

        with self.write() as s:
            self.record(s, "unsealed", f"vault:{self.public.fingerprint}",
                        {"by": "review server", "at": where, "for_hours": hours})
        stop_listening = agent.listen_for_seal(self.public.fingerprint, on_seal)

        def stopped(why: str) -> None:
            stop_listening()
            with self.write() as s:
                self.record(s, "sealed", f"vault:{self.public.fingerprint}",
                            {"by": "review server", "why": why})

        return stopped

    def _share_lock(self) -> None:
        import fcntl

        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_SH)

    def _adopt(self, keys: VaultKeys) -> None:
        from strongroom.custody.log import CustodyLog

        if keys.public != self.public:
            # Someone swapped vault.json's public keys: signatures checked against them
            # would mean nothing.
            raise StrongroomError(
                f"{self.path}/{MARKER} does not match the sealed keys (public key replaced?)"
            )
        self._keys = keys
        self._custody = CustodyLog(keys, self.checkpoint_file)

    def encrypt_catalogue(self) -> dict[str, Any]:
        """Convert a plaintext SQLite catalogue (made before encryption existed) in place into
        an SQLCipher one: exported to a new file, compared table by table, fsynced and renamed
        over the old one, then vault.json says so and a `catalogue_encrypted` event records
        it. Needs the vault to itself: any other command holding it open is refused (its
        later writes would go to the replaced file)."""
        import fcntl

        from strongroom.catalogue.db import encrypt_sqlite

        keys = self.keys
        db = sqlite_path(self.catalogue.url)
        if db is None:
            raise StrongroomError("this catalogue is PostgreSQL: its encryption at rest is the "
                                  "server's (see docs/threat-model.md)")
        if self.catalogue.encrypted or not is_plain_sqlite(db):
            return self._finish_encryption()
        if self._lock is None:
            raise StrongroomError(f"cannot lock the vault folder {self.path}")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StrongroomError("another command has this vault open: let it finish, then "
                                  "run this again") from None
        try:
            self.checkpoint()
            self.catalogue.dispose()
            tables = encrypt_sqlite(db, keys.catalogue_key)
            self.catalogue = Catalogue(self.catalogue.url, key=keys.catalogue_key)
            return self._finish_encryption(tables)
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_SH)

    def _finish_encryption(self, tables: dict[str, int] | None = None) -> dict[str, Any]:
        """A `catalogue_encrypted` event says when, then vault.json says the catalogue is
        encrypted (in that order: once vault.json says so, all is done — or the vault was
        made encrypted). After the swap, or in a re-run when an earlier run stopped between
        the steps (a kill, a full disk)."""
        from sqlalchemy import func

        marker = read_marker_json(self.path)
        if tables is None and marker.get("catalogue") == CATALOGUE_CIPHER:
            raise StrongroomError("the catalogue is already encrypted")
        with self.catalogue.read() as s:
            recorded = s.scalar(select(func.count()).select_from(CustodyEvent)
                                .where(CustodyEvent.action == "catalogue_encrypted"))
        details: dict[str, Any] = {"cipher": CATALOGUE_CIPHER}
        if tables is not None:
            details["rows"] = tables
        else:
            details["finished"] = "an earlier run stopped after the swap"
        if tables is not None or not recorded:
            with self.write() as session:
                self.record(session, "catalogue_encrypted", "catalogue", details)
        marker["catalogue"] = CATALOGUE_CIPHER
        _write_private(self.path / MARKER, json.dumps(marker, indent=2).encode() + b"\n")
        return details

    @staticmethod
    def read_marker(path: Path) -> PublicKeys:
        """The vault's public keys from its marker file; raises `NotAVault` (cheaply, before
        anyone is asked for a passphrase) when `path` is not a vault."""
        return read_marker(path)

    def close(self) -> None:
        """Sign the head if this object appended events after its last checkpoint: every
        command that appends events ends with a checkpoint over its last event, whatever
        path its last write took (an ingest whose last group was committed without one)."""
        try:
            if self._unsigned_events:
                self.checkpoint()
        except StrongroomError:
            pass  # already failing (full disk, damaged catalogue): the error in flight says why
        finally:
            self.blobs.close()
            self.catalogue.dispose()
            if self._lock is not None:
                os.close(self._lock)
                self._lock = None

    def checkpoint(self) -> None:
        """Sign the chain's current head now (nothing happens when it is already signed)."""
        with self.write():
            pass

    def rekey(self, *, passphrase: str | None = None, shares: Split | None = None,
              drop_passphrase: bool = False, drop_shares: bool = False,
              announce: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Re-wrap the keys (never the blobs: they stay encrypted to the same age identity):
        seal them under a new `passphrase`, for a new share set `shares`, or stop one of the
        two from opening the vault. The old share set stops opening this vault's
        keys-shares.age (not a backup copy of it: see docs/threat-model.md). Refuses to leave
        the vault with no way in, checked under the writer lock (two rekeys at once cannot
        each drop one of the two). `announce(changes)` runs before anything changes — the
        CLI shows the new shares there — and if it raises, nothing changes. Returns and
        records what changed (never a secret)."""
        keys = self.keys
        if (passphrase is not None and drop_passphrase) or (shares is not None and drop_shares):
            raise StrongroomError("give a new passphrase or drop it, not both (same for shares)")
        if passphrase is None and shares is None and not drop_passphrase and not drop_shares:
            raise StrongroomError("nothing to change: give --new-passphrase, --shares K-of-N, "
                                  "--drop-passphrase or --drop-shares")
        with self.write() as session:  # the catalogue's writer lock: one rekey at a time
            session.connection()  # take it now (BEGIN IMMEDIATE), not at the first statement
            has_passphrase, has_shares = unlocks(self.path)
            if drop_passphrase and not has_passphrase:
                raise StrongroomError("this vault has no passphrase to drop")
            if drop_shares and not has_shares:
                raise StrongroomError("this vault has no shares to drop")
            if not ((has_passphrase or passphrase is not None) and not drop_passphrase) and \
                    not ((has_shares or shares is not None) and not drop_shares):
                raise StrongroomError("that would leave no way to open the vault: keep a "
                                      "passphrase or a share set")
            changes: dict[str, Any] = {}
            if passphrase is not None or drop_passphrase:
                changes["passphrase"] = ("removed" if drop_passphrase else
                                         "replaced" if has_passphrase else "added")
            if shares is not None:
                changes["shares"] = {"scheme": str(shares.scheme),
                                     "share_set": shares.identifier,
                                     "change": "replaced" if has_shares else "added"}
            if drop_shares:
                changes["shares"] = {"change": "removed"}
            if announce is not None:
                announce(changes)
            self._rewrap(keys, passphrase, shares, drop_passphrase, drop_shares)
            self.record(session, "keys_rewrapped", f"vault:{self.public.fingerprint}", changes)
        return changes

    def _rewrap(self, keys: VaultKeys, passphrase: str | None, shares: Split | None,
                drop_passphrase: bool, drop_shares: bool) -> None:
        marker = read_marker_json(self.path)
        # New seals first (each file replaced atomically), removals last: a crash part-way
        # leaves every way in that existed before, or the new one, never none.
        if passphrase is not None:
            _write_private(self.path / SEALED_KEYS, keys.seal(passphrase))
        if shares is not None:
            _write_private(self.path / SHARES_KEYS, _seal_for_shares(keys, shares))
            marker["shares"] = asdict(shares.share_set)
        if drop_shares:
            marker.pop("shares", None)
        _write_private(self.path / MARKER, json.dumps(marker, indent=2).encode() + b"\n")
        if drop_passphrase:
            (self.path / SEALED_KEYS).unlink()
        if drop_shares:
            (self.path / SHARES_KEYS).unlink()
        fsync_dir(self.path)

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- keys ---------------------------------------------------------------------------
    @property
    def keys(self) -> VaultKeys:
        if self._keys is None:
            raise VaultSealed("this needs the vault's passphrase")
        return self._keys

    def require_keys(self) -> None:
        """Raise `VaultSealed` now when the vault was opened without its passphrase."""
        self.keys  # noqa: B018

    @property
    def sealed(self) -> bool:
        return self._keys is None

    # -- catalogue + custody ------------------------------------------------------------
    @contextmanager
    def write(self, *, checkpoint: bool = True) -> Iterator[Session]:
        """One write transaction. With `checkpoint`, the chain's new head is signed in the same
        transaction and published to the checkpoint file once it has committed."""
        published = []
        with self.catalogue.write() as session:
            yield session
            if checkpoint and self._custody is not None:
                cp = self._custody.checkpoint(session)
                if cp is not None:
                    published.append(cp)
        if checkpoint:
            self._unsigned_events = False
        if self._custody is not None and published:
            with self.catalogue.read() as session:
                self._custody.publish(session, published[-1].seq)

    def record(self, session: Session, action: str, subject: str,
               details: dict[str, Any], *, actor: str | None = None) -> CustodyEvent:
        """Append one custody event in `session`'s transaction. Rows that carry a time of their
        own should take it from the returned event (`event_time`), so the log covers it.
        `actor`: who did it, when not the vault's own actor (a user of the review app)."""
        if self._custody is None:
            raise VaultSealed("recording custody needs the vault's passphrase")
        event = self._custody.append(
            session, actor=actor or self.actor, action=action, subject=subject, details=details
        )
        self._unsigned_events = True
        return event

    def annotate(self, session: Session, kind: str, row_id: int, what: str, *,
                 actor: str | None = None, details: dict[str, Any] | None = None
                 ) -> CustodyEvent:
        """Record that a case, an incident or a clip's review was made or changed (`what`),
        with a digest of all it now says: `verify` then catches any later edit made around
        this door. The details carry only the digest (and `details`), never the (sensitive)
        text."""
        from strongroom.catalogue.evidence import annotated_kinds, record_view
        from strongroom.catalogue.models import Revision
        from strongroom.custody.chain import result_digest

        if kind not in annotated_kinds():
            raise ValueError(f"cannot annotate {kind!r}")
        session.flush()
        view = record_view(session, kind, row_id)
        event = self.record(session, "annotated", f"{kind}:{row_id}", {
            **(details or {}), kind: row_id, "change": what,
            "row_sha256": None if view is None else result_digest(view),
            "version_kept": True}, actor=actor)
        # the version itself, for its history (the event holds only its digest)
        session.add(Revision(kind=kind, row_id=row_id, event_seq=event.seq, view=view))
        return event

    # -- the review app: what people do with evidence, each on the record ------------------
    def record_seen(self, action: str, sha256: str, *, actor: str,
                    details: dict[str, Any]) -> CustodyEvent:
        """`revealed` (a person chose to see a clip unblurred) or `viewed` (they played it
        unblurred) on `original:<sha256>`, by `actor`, in its own transaction."""
        if action not in ("revealed", "viewed"):
            raise ValueError(f"not a way of seeing: {action!r}")
        original = self.find_original(sha256)
        with self.write() as s:
            return self.record(s, action, f"original:{original.sha256}", details, actor=actor)

    def open_identity(self, person_id: int, *, actor: str) -> str | None:
        """A person's sealed real identity, in clear, for an admin: the view is a `viewed`
        custody event on `person:<id>` with the admin's name, committed before the name is
        returned (so no one reads it off the record). None when none was recorded."""
        from strongroom.catalogue.models import Person

        with self.write() as s:
            person = s.get(Person, person_id)
            if person is None:
                raise StrongroomError(f"no person {person_id}")
            if person.sealed_identity is None:
                return None
            name = self.open_secret(person.sealed_identity).decode("utf-8")
            self.record(s, "viewed", f"person:{person_id}", {"sealed_identity": True},
                        actor=actor)
        return name

    def seal_secret(self, secret: bytes) -> bytes:
        """`secret` age-encrypted to the vault's key (a user's TOTP secret): the catalogue
        never holds it in clear, even where the catalogue itself is not encrypted."""
        import pyrage

        return bytes(pyrage.encrypt(secret, [pyrage.x25519.Recipient.from_str(
            self.public.age_recipient)]))

    def open_secret(self, sealed: bytes) -> bytes:
        import pyrage

        return bytes(pyrage.decrypt(sealed, [pyrage.x25519.Identity.from_str(
            self.keys.identity_text())]))

    # -- originals ----------------------------------------------------------------------
    def find_original(self, sha256_prefix: str) -> Original:
        prefix = sha256_prefix.strip().lower()
        if len(prefix) < 8 or any(c not in "0123456789abcdef" for c in prefix):
            raise UnknownOriginal("give at least 8 hex digits of the SHA-256")
        with self.catalogue.read() as s:
            rows = s.scalars(
                select(Original).where(Original.sha256.like(prefix + "%")).limit(2)
            ).all()
        if not rows:
            raise UnknownOriginal(f"no original with SHA-256 {prefix}…")
        if len(rows) > 1:
            raise UnknownOriginal(f"SHA-256 prefix {prefix} is ambiguous")
        return rows[0]

    # -- the door: blobs in --------------------------------------------------------------
    def store(self, src: Readable, *, size: int, what: str) -> Stored:
        """Read `src` once: hash the plaintext, encrypt it into a staged blob and name it.
        Nothing is visible until `commit`; on any error the staged blob is gone. A full blob
        store is `StorageFull`, naming `what`; a source read error propagates unchanged."""
        from strongroom.fsio import is_disk_full
        from strongroom.vault.encryption import encrypt_stream

        keys = self.keys
        blob = self.blobs.stage()
        reader: Any = _WritebackReader(src, blob)  # read() is all encrypt_stream uses
        hasher = MultiHash(sha512=self.settings.sha512)
        try:
            encrypt_stream(reader, blob.file, keys.public.age_recipient, hasher,
                           expected_size=size,
                           binary_threshold=self.settings.age_binary_threshold)
            blob.file.flush()
        except OSError as exc:
            self.blobs.discard(blob)
            if is_disk_full(exc):
                raise StorageFull(
                    f"the vault's blob store is full while storing {what}; nothing "
                    "half-written was kept — free space and re-run to continue") from exc
            raise
        except BaseException:
            self.blobs.discard(blob)
            raise
        digests = hasher.digests()
        return Stored(digests=digests, name=keys.storage_name(digests.sha256), staged=blob)

    def store_sealed(self, sealed: Sequence[Sealed | SealedChunk]) -> list[str]:
        """Commit ciphertext a pipeline worker made (`WorkerKeys.seal`, or each chunk of
        `WorkerKeys.seal_chunks`); returns blob names, in order."""
        keys = self.keys
        staged = []
        try:
            for item in sealed:
                blob = self.blobs.stage()
                staged.append((blob, keys.storage_name(item.sha256)))
                blob.file.write(item.ciphertext)
        except BaseException:
            for blob, _ in staged:
                self.blobs.discard(blob)
            raise
        self.blobs.commit(staged)
        return [name for _, name in staged]

    def commit(self, stored: Sequence[Stored]) -> list[bool]:
        """Make staged blobs durable, then visible (never overwriting one); per blob, whether
        it was new. Each is gone from staging afterwards, committed or not."""
        return self.blobs.commit([(s.staged, s.name) for s in stored])

    def discard(self, stored: Stored) -> None:
        self.blobs.discard(stored.staged)

    def has_blob(self, name: str) -> bool:
        return self.blobs.exists(name)

    def blob_size(self, name: str) -> int:
        """The ciphertext's size on disk (recorded at ingest; `verify --quick` checks it)."""
        return self.blobs.size(name)

    def write_marker(self, marker: dict[str, Any]) -> None:
        """Replace vault.json (atomically, 0600) by `marker`: where its blobs are, its
        replicas (`replicas.py`)."""
        _write_private(self.path / MARKER, json.dumps(marker, indent=2).encode() + b"\n")

    def blob_names(self) -> Iterator[str]:
        return self.blobs.names()

    def staging_files(self) -> list[Path]:
        return self.blobs.staging_files()

    def cleanup_staging(self) -> int:
        """Remove what killed processes left half-staged; returns how many files."""
        return self.blobs.cleanup_stale()

    # -- the door: plaintext out ---------------------------------------------------------
    @contextmanager
    def open_original(self, sha256: str, *, purpose: str = "downloaded", to: str,
                      details: dict[str, Any] | None = None, actor: str | None = None
                      ) -> Iterator[Opened]:
        """Decrypt one original (`opened.copy_to(sink)` checks its digest). When the
        block ends, `purpose` is recorded on `original:<sha256>` with the bytes that left and
        whether they were all of it; nothing is recorded if nothing left. The event is
        appended *before* the caller's next step (a file renamed into place, a page sent)."""
        original = self.find_original(sha256)
        with self._access(purpose, to) as access:
            yield Opened(original, access)
            self._record_access(access, f"original:{original.sha256}", details, actor=actor)

    @contextmanager
    def open_derivative(self, row: Derivative, *, purpose: str = "viewed", to: str,
                        details: dict[str, Any] | None = None) -> Iterator[Opened]:
        """As `open_original`, for something the pipeline made from an original (a contact
        sheet); recorded on the original it was made from. The row must be the catalogue's
        own: a made-up one could name any blob and have it recorded as a harmless view."""
        with self.catalogue.read() as s:
            known = s.scalar(select(Derivative).where(
                Derivative.blob_name == row.blob_name, Derivative.sha256 == row.sha256,
                Derivative.original_sha256 == row.original_sha256,
                Derivative.kind == row.kind, Derivative.size == row.size).limit(1))
        if known is None:
            raise StrongroomError(f"no {row.kind} {row.sha256[:16]}… of original "
                                  f"{row.original_sha256[:16]}… in the catalogue")
        with self._access(purpose, to) as access:
            yield Opened(known, access)
            self._record_access(access, f"original:{row.original_sha256}", details)

    # -- the door: derivatives by byte range (the review app's player) -------------------
    def derivative_size(self, derivative: Derivative) -> int:
        """The plaintext size of a derivative in the catalogue (what an HTTP response's
        Content-Range names as the whole)."""
        return self._known_derivative(derivative)[0].size

    def read_range(self, derivative: Derivative, start: int, end: int) -> Iterator[bytes]:
        """Plaintext bytes [start, end) of a derivative, as pieces, for HTTP Range.

        A chunked derivative (the video proxies: `vault/chunks.py`) decrypts only the chunks
        the range covers, in memory, never to disk, and checks each chunk's SHA-256 before
        any of its bytes is yielded: a damaged chunk raises `IntegrityError` naming it. A
        derivative stored as one blob (posters, thumbnails; proxies made before chunking) is
        decrypted whole in memory and checked first, up to `IN_MEMORY_MAX` bytes.

        The row, range and keys are checked now, when called (`RangeNotSatisfiable` for a
        range outside the plaintext or an empty one, `StrongroomError` for a row that is not
        the catalogue's own, `VaultSealed`), so a web app can answer 416 or 404 before it
        starts a response; decryption happens as the pieces are taken.

        Records no custody event: the review app records what a person did with these bytes
        (a reveal, a play of the clear proxy) with that person's name, which the vault does
        not know. Never use it to hand plaintext out of the vault without such a record."""
        known, chunks = self._known_derivative(derivative)
        self.keys  # noqa: B018 - a sealed vault fails here, not at the first piece
        _check_range(known, start, end)
        if not chunks:
            if known.size > IN_MEMORY_MAX:
                raise StrongroomError(
                    f"{known.kind} {known.sha256[:16]}… is stored as one {known.size}-byte "
                    "blob, too big to read by range: `strongroom process` makes a chunked one")
            return _sliced(self._read_whole(known), start, end)
        from strongroom.vault.chunks import covering

        return self._read_chunks(known, covering(chunks, known.size, start, end), start, end)

    def read_derivative_bytes(self, derivative: Derivative) -> bytes:
        """A small derivative's whole plaintext (a poster, a thumbnail), checked against its
        SHA-256; at most `IN_MEMORY_MAX` bytes. Records no custody event (see `read_range`)."""
        known, chunks = self._known_derivative(derivative)
        self.keys  # noqa: B018
        if known.size > IN_MEMORY_MAX:
            raise StrongroomError(f"{known.kind} {known.sha256[:16]}… is {known.size} bytes: "
                                  "read it by range")
        if not chunks:
            return self._read_whole(known)
        from strongroom.vault.chunks import covering

        data = b"".join(self._read_chunks(known, covering(chunks, known.size, 0, known.size),
                                          0, known.size))
        import hashlib

        if hashlib.sha256(data).hexdigest() != known.sha256:
            raise IntegrityError(f"{_what(known)}: its chunks no longer add up to its "
                                 "SHA-256; run `strongroom verify`")
        return data

    def _known_derivative(self, row: Derivative) -> tuple[Derivative, list[ChunkRef]]:
        """The catalogue's own row for `row` (a made-up one could name any blob) and its
        chunks (none: one blob)."""
        from strongroom.catalogue.models import DerivativeChunk
        from strongroom.vault.chunks import ChunkRef

        with self.catalogue.read() as s:
            known = s.get(Derivative, row.id) if isinstance(row.id, int) else None
            if known is None or (known.sha256, known.blob_name, known.original_sha256,
                                 known.kind, known.size) != (
                    row.sha256, row.blob_name, row.original_sha256, row.kind, row.size):
                raise StrongroomError(f"no {row.kind} {str(row.sha256)[:16]}… of original "
                                      f"{str(row.original_sha256)[:16]}… in the catalogue")
            chunks = [ChunkRef(c.idx, c.offset, c.size, c.sha256, c.blob_name)
                      for c in s.scalars(select(DerivativeChunk).where(
                          DerivativeChunk.derivative_id == known.id))]
        return known, chunks

    def _chunks_of(self, row: Derivative) -> list[ChunkRef]:
        """A derivative's chunks as the catalogue lists them ([]: one blob)."""
        from strongroom.catalogue.models import DerivativeChunk
        from strongroom.vault.chunks import ChunkRef

        if not isinstance(row.id, int):
            return []
        with self.catalogue.read() as s:
            return [ChunkRef(c.idx, c.offset, c.size, c.sha256, c.blob_name)
                    for c in s.scalars(select(DerivativeChunk).where(
                        DerivativeChunk.derivative_id == row.id))]

    def _read_whole(self, known: Derivative) -> bytes:
        """A derivative stored as one blob (at most `IN_MEMORY_MAX`), decrypted in memory:
        a list page's thumbnails start no `age` process each."""
        import hashlib

        plain = self._decrypt_chunk(known.blob_name, what=_what(known))
        if len(plain) != known.size or hashlib.sha256(plain).hexdigest() != known.sha256:
            raise IntegrityError(f"{_what(known)} ({known.sha256}) decrypted to different "
                                 "content; run `strongroom verify`")
        return plain

    def _read_chunks(self, known: Derivative, refs: list[ChunkRef], start: int, end: int
                     ) -> Iterator[bytes]:
        import hashlib

        for c in refs:
            what = f"{_what(known)}, chunk {c.index}"
            plain = self._decrypt_chunk(c.blob_name, what=what)
            if len(plain) != c.size or hashlib.sha256(plain).hexdigest() != c.sha256:
                raise IntegrityError(f"{what} decrypted to different content (sha256 "
                                     f"{hashlib.sha256(plain).hexdigest()}, {len(plain)} "
                                     "bytes); run `strongroom verify`")
            lo, hi = max(start - c.offset, 0), min(end - c.offset, c.size)
            yield plain if (lo, hi) == (0, c.size) else plain[lo:hi]

    @contextmanager
    def exporting(self, bag_id: str) -> Iterator[Access]:
        """Decryptions for one export. The caller ends it with `record_export` once the bag is
        complete; an export that fails records nothing (its output is removed)."""
        with self._access("exported", f"export:{bag_id}", record_failure=False) as access:
            yield access

    def record_export(self, access: Access, bag_id: str, details: dict[str, Any]) -> None:
        """`exported` on `export:<bag_id>`: what the bag holds, and every original and
        derivative the door decrypted for it."""
        with self.write() as s:
            self.record(s, "exported", f"export:{bag_id}", {
                **details, **access.summary()})

    @contextmanager
    def _access(self, purpose: str, to: str, *, record_failure: bool = True
                ) -> Iterator[Access]:
        access = Access(check_purpose(purpose), to, self._decrypt_blob, self._chunks_of)
        try:
            yield access
        except BaseException:
            if record_failure and access.bytes:
                # What already left is on the record, marked incomplete.
                with contextlib.suppress(StrongroomError):
                    self._record_access(access, None, None)
            raise

    def _record_access(self, access: Access, subject: str | None,
                       details: dict[str, Any] | None, *, actor: str | None = None) -> None:
        items = access.originals + access.derivatives
        if not items or (access.bytes == 0 and not access.complete()):
            return
        if subject is None:
            first = items[0]
            subject = f"original:{first.get('original', first['sha256'])}"
        with self.write() as s:
            self.record(s, access.purpose, subject, {
                **(details or {}), "to": access.to, "bytes": access.bytes,
                "complete": access.complete(),
                "read": [{k: e[k] for k in ("sha256", "kind", "decrypted_sha256") if k in e}
                         for e in items]}, actor=actor)

    def _decrypt_blob(self, name: str, sink: Callable[[bytes], object] | None, *,
                      sha512: bool = False, md5: bool = True, what: str) -> Digests:
        """Decrypt one blob, hashing the plaintext and feeding it to `sink` (None: hash
        only). Private: plaintext leaves only through `Access`, and fixity through `verify`."""
        from strongroom.vault.encryption import decrypt_stream

        hasher = MultiHash(sha512=sha512, md5=md5)
        with self.blobs.open(name) as f:
            decrypt_stream(f, self.keys.identity_text(), sink, hasher, what=what)
        return hasher.digests()

    def _decrypt_chunk(self, name: str, *, what: str) -> bytes:
        """One chunk's plaintext, in memory (pyrage: a 1 MiB blob decrypts in ~2 ms, less
        than starting `age`). Private like `_decrypt_blob`: callers check its digest."""
        from strongroom.vault.encryption import decrypt_bytes

        with self.blobs.open(name) as f:
            cipher = f.read()
        return decrypt_bytes(cipher, self.keys.age_identity, what=what)

    # -- intake ---------------------------------------------------------------------------
    def intake_reader(self, pieces: Sequence[tuple[Path, int]], *, what: str) -> Readable:
        """The plaintext of one intake upload, for `store` only: its pieces (age files the
        intake encrypted to this vault's public key on arrival, with their plaintext lengths)
        decrypted one at a time in memory. The ingest that stores it records it."""
        inside = [f.resolve() for f in self.settings.vault_folders()]
        for path, _ in pieces:
            where = path.resolve()
            if any(where == root or root in where.parents for root in inside):
                raise StrongroomError(f"{what}: {path} is inside the vault, not an intake "
                                      "upload")
        return _IntakeReader(self, list(pieces), what)

    def open_intake_small(self, ciphertext: bytes, *, what: str) -> bytes:
        """Something small the intake encrypted to this vault: an upload's metadata (file name,
        the hash `send` computed) or a source's message. In memory; it holds no evidence."""
        from strongroom.vault.encryption import decrypt_bytes

        if len(ciphertext) > 16 * 1024 * 1024 + 64 * 1024:  # a receipt of many files
            raise IntegrityError(f"{what}: larger than the intake writes")
        return decrypt_bytes(ciphertext, self.keys.age_identity, what=what)

    # -- signing, verifying, workers ------------------------------------------------------
    def sign(self, data: bytes) -> bytes:
        """An Ed25519 signature by the vault's signing key (bags' tag manifests)."""
        return self.keys.sign(data)

    def worker_keys(self) -> WorkerKeys:
        """What a pipeline worker needs: decrypt originals, seal what it makes."""
        from strongroom.vault.worker import WorkerKeys

        keys = self.keys
        return WorkerKeys(identity=keys.identity_text(), recipient=keys.public.age_recipient,
                          blob_root=_resolved(self.settings.blob_location()),
                          s3_endpoint=self.settings.s3_endpoint_url)

    def verify(self, *, fixity: bool = True, checkpoints_copy: Path | None = None,
               advance: Callable[[int], None] | None = None,
               schedule: int | None = None) -> VerifyReport:
        """Check the custody chain, checkpoints, catalogue and (with `fixity`) every blob,
        and record the check itself: `fixity_checked` (what was re-hashed), then
        `verified`. With `schedule` (a cycle in days), fixity re-hashes only the share of
        blobs due today (`custody.fixity`), and the event lists them. Needs the keys;
        nothing here changes what it checks."""
        from strongroom.custody.verify import verify as run_verify

        self.keys  # noqa: B018 - sealed vaults fail before the long read, not after it
        due = None
        if schedule is not None:
            from strongroom.custody.fixity import due as due_now

            with self.catalogue.read() as s:
                due = due_now(s, schedule)
        report = run_verify(self, fixity=fixity, checkpoints_copy=checkpoints_copy,
                            advance=advance, only=due.blobs if due is not None else None)
        if due is not None:
            report.scheduled = {"cycle_days": due.cycle_days, "blobs_total": due.total,
                                "overdue_before": due.overdue}
            if due.overdue:
                report.warnings.append(
                    f"{due.overdue} blob(s) had not been re-hashed for {due.cycle_days} days "
                    "(missed scheduled runs?)")
        with self.write() as s:
            if fixity:
                self.record(s, "fixity_checked", f"vault:{self.public.fingerprint}", {
                    "originals": report.originals, "blobs_checked": report.blobs_checked,
                    "bytes_checked": report.bytes_checked,
                    "problems": sum(p.check == "fixity" for p in report.problems),
                    "failed": sorted(set(report.failed_blobs)),
                    **({"scheduled": report.scheduled, "blobs": sorted(due.blobs)}
                       if due is not None else {})})
            self.record(s, "verified", f"vault:{self.public.fingerprint}", {
                "ok": report.ok, "events_checked": report.events,
                "head_hash": report.head_hash, "originals": report.originals,
                "blobs_checked": report.blobs_checked, "problems": len(report.problems),
                "fixity": fixity, "offsite_checkpoints": report.offsite_checkpoints,
            })
        return report


#: The most a derivative read whole into memory may hold (`read_derivative_bytes`, and a
#: range of a derivative stored as one blob): posters and thumbnails are a few hundred KB.
IN_MEMORY_MAX = 64 * 1024 * 1024


def _what(d: Derivative) -> str:
    return f"{d.kind} of {d.original_sha256}"


def _check_range(d: Derivative, start: int, end: int) -> None:
    if type(start) is not int or type(end) is not int:
        raise RangeNotSatisfiable("a byte range is two whole numbers")
    if not 0 <= start < end <= d.size:
        raise RangeNotSatisfiable(
            f"bytes [{start}, {end}) are not inside the {d.size} bytes of {d.kind} "
            f"{d.sha256[:16]}… (a range is half-open, non-empty, within the file)")


def _sliced(data: bytes, start: int, end: int) -> Iterator[bytes]:
    yield data[start:end]


class _WritebackReader:
    """Reads `src` for the encryptor, asking the kernel every few MiB to start writing the
    blob so far: the disk works while the rest is encrypted, and the final sync is short."""

    EVERY = 16 * 1024 * 1024

    def __init__(self, src: Readable, blob: StagedBlob) -> None:
        self._src, self._blob, self._unsynced = src, blob, 0

    def read(self, n: int = -1) -> bytes:
        data = self._src.read(n)
        if data:
            self._unsynced += len(data)
            if self._unsynced >= self.EVERY:
                self._blob.start_writeback()
                self._unsynced = 0
        return data or b""


class _IntakeReader:
    """Reads an intake upload's pieces in order, each decrypted in memory and checked against
    the length its name announces (a piece cut short or swapped is an error, not a shorter
    original)."""

    def __init__(self, vault: Vault, pieces: list[tuple[Path, int]], what: str) -> None:
        self._vault, self._pieces, self._what = vault, pieces, what
        self._buffer = b""

    def read(self, n: int = -1) -> bytes:
        from strongroom.vault.encryption import decrypt_bytes

        while not self._buffer and self._pieces:
            path, length = self._pieces.pop(0)
            plain = decrypt_bytes(path.read_bytes(), self._vault.keys.age_identity,
                                  what=f"{self._what} ({path.name})")
            if len(plain) != length:
                raise IntegrityError(f"{self._what}: {path.name} holds {len(plain)} bytes, "
                                     f"not {length}")
            self._buffer = plain
        if n < 0:
            n = len(self._buffer)
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out


def event_time(event: CustodyEvent) -> datetime:
    """The event's time as a datetime, for the catalogue row it records."""
    return datetime.fromisoformat(event.time)


def _seal_for_shares(keys: VaultKeys, split: Split) -> bytes:
    from strongroom.vault import shares

    return shares.seal(keys.bundle(), split.secret)


def _unlock_details(passphrase: bool, split: Split | None) -> dict[str, Any]:
    """What opens a new vault, for its `vault_created` event (no secret)."""
    details: dict[str, Any] = {"passphrase": passphrase}
    if split is not None:
        details["shares"] = {"scheme": str(split.scheme), "share_set": split.identifier}
    return details


def _blob_store(settings: Settings) -> BlobStore:
    """The vault's blob store; an S3 one checked to answer (`S3BlobStore.check`)."""
    location = settings.blob_location()
    store = open_blob_store(location, endpoint_url=settings.s3_endpoint_url,
                            staging=settings.vault / S3_STAGING)
    check = getattr(store, "check", None)
    if check is not None:
        try:
            check()
        except BaseException:
            store.close()
            raise
    return store


def recorded_store(settings: Settings) -> dict[str, str]:
    """What vault.json says of a blob store named by a setting (nothing for the default, the
    vault's own `blobs` folder): its absolute location, and an S3 store's endpoint."""
    if not settings.blob_store:
        return {}
    location = settings.blob_location()
    if settings.resolved_blob_root() is not None:
        return {"blob_store": str(Path(location).absolute())}
    return {"blob_store": location, "s3_endpoint_url": settings.s3_endpoint_url}


def _same_store(a: str, b: str) -> bool:
    if a.startswith("s3://") or b.startswith("s3://"):
        return a.rstrip("/") == b.rstrip("/")
    return Path(a.removeprefix("file://")).absolute() == Path(b.removeprefix("file://")
                                                               ).absolute()


def blob_store_of(settings: Settings) -> Settings:
    """`settings` with the blob store vault.json names (and an S3 store's endpoint), where
    the environment names none. A store the environment names that is not the vault's — an
    S3 bucket for a vault whose blobs are in its folder, another bucket or endpoint — is
    refused: evidence would go where the rest of it is not."""
    from strongroom.settings import check_blob_location

    marker = read_marker_json(settings.vault)
    if not marker:  # a vault being made (its vault.json is written last), or none at all
        return settings
    recorded = marker.get("blob_store")
    if recorded is None or recorded == "":
        default = settings.vault / "blobs"
        if settings.blob_store and not _same_store(settings.blob_location(), str(default)):
            raise StrongroomError(
                f"this vault keeps its blobs in {default}; STRONGROOM_BLOB_STORE names "
                f"{settings.blob_location()} (`migrate-store` moves them there)")
        return settings
    try:
        if not isinstance(recorded, str):
            raise StrongroomError("not a string")
        check_blob_location(recorded)
        if not recorded.startswith(("s3://", "/", "file:///")):
            raise StrongroomError("not an absolute folder or an s3:// URL")
    except StrongroomError as exc:
        raise StrongroomError(f"{settings.vault}/{MARKER}: its blob_store is not valid "
                              f"({exc}); restore vault.json from a backup") from None
    if settings.blob_store and not _same_store(settings.blob_store, recorded):
        raise StrongroomError(f"this vault's blobs are in {recorded} ({MARKER}), not in "
                              f"{settings.blob_store} (STRONGROOM_BLOB_STORE)")
    update: dict[str, str] = {"blob_store": recorded}
    endpoint = marker.get("s3_endpoint_url")
    if recorded.startswith("s3://") and isinstance(endpoint, str):
        if not settings.s3_endpoint_url:
            update["s3_endpoint_url"] = endpoint
        elif settings.s3_endpoint_url.rstrip("/") != endpoint.rstrip("/"):
            raise StrongroomError(
                f"this vault's blobs are in {recorded} at {endpoint or 'AWS'} ({MARKER}), not "
                f"at {settings.s3_endpoint_url} (STRONGROOM_S3_ENDPOINT_URL)")
    return settings.model_copy(update=update)


def database_of(settings: Settings) -> Settings:
    """`settings` with the database vault.json names (`migrate-db`; written without its
    password, which comes from STRONGROOM_DATABASE_URL, PGPASSWORD or ~/.pgpass), where the
    environment names none; a different one named by both is refused."""
    recorded = read_marker_json(settings.vault).get("database")
    if not isinstance(recorded, str) or not recorded:
        return settings
    if not settings.database_url:
        return settings.model_copy(update={"database_url": recorded})
    from strongroom.catalogue.transfer import without_password

    if without_password(settings.database_url) != recorded:
        raise StrongroomError(f"this vault's catalogue is in {recorded} ({MARKER}), not in "
                              "the database STRONGROOM_DATABASE_URL names")
    return settings


def _resolved(location: str) -> str:
    return location if location.startswith("s3://") else str(Path(location).resolve())


def _hold_vault_lock(path: Path) -> int | None:
    """A shared flock on the vault folder itself, held while a `Vault` is open (None where
    the folder cannot be opened or locked). A folder, not a lock file: nobody deletes a
    vault folder as a "stale lock"."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
    except OSError:
        os.close(fd)
        return None
    return fd


def _catalogue_key(settings: Settings, keys: VaultKeys | None) -> bytes | None:
    """The SQLCipher key for this vault's SQLite catalogue: new catalogues are encrypted; one
    that exists as plain SQLite (made before encryption) is opened as it is."""
    db = sqlite_path(settings.resolved_database_url())
    if keys is None or db is None:
        return None
    if db.is_file() and is_plain_sqlite(db):
        return None
    return keys.catalogue_key


def marker_cipher(path: Path) -> str | None:
    """What vault.json says encrypts the catalogue (None: nothing, or an older vault)."""
    try:
        value = json.loads((path / MARKER).read_text("utf-8")).get("catalogue")
    except (OSError, ValueError, AttributeError):
        return None
    return str(value) if value else None


def _write_private(path: Path, data: bytes) -> None:
    """Replace `path` atomically by a new 0600 file holding `data`. The temporary file is
    always a new one (a leftover of any mode, or a planted symlink, is removed first, never
    written through), and it is fsynced before the rename, the folder after."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _check_new_vault_folder(path: Path) -> None:
    if (path / MARKER).exists():
        raise VaultExists(f"{path} is already a Strongroom vault")
    for parent in path.absolute().parents:
        if (parent / MARKER).is_file():
            raise VaultExists(f"{path} is inside the vault {parent}; choose a folder outside it")
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise VaultExists(f"{path} exists and is not a folder")
    if path.exists():
        try:
            names = sorted(p.name for p in path.iterdir())
        except OSError as exc:
            raise VaultExists(f"{path} cannot be read: {exc.strerror}") from None
        own = [n for n in names if n in _OWN_FILES or n.startswith((SEALED_KEYS, SHARES_KEYS))]
        if own:
            raise VaultExists(
                f"{path} holds vault files ({', '.join(own)}): it may be a vault whose "
                f"{MARKER} was lost; nothing was changed. Choose a new or empty folder")
        if names:
            raise VaultExists(f"{path} is not empty; choose a new or empty folder")
    else:
        parent = path.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise StrongroomError(f"cannot create {path}: {parent} is not a folder")


def _make_dirs(path: Path, created: list[Path]) -> None:
    """mkdir -p, remembering each folder made, so a failed `create` removes exactly those."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            continue  # made meanwhile by someone else: not ours to remove
        except OSError as exc:
            raise StrongroomError(f"cannot create {d}: {exc.strerror}") from None
        created.append(d)


def _lock_folder(path: Path) -> int:
    import fcntl

    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise VaultExists(f"another `init` is creating a vault in {path}") from None
    return fd


def _remove_created(created: list[Path]) -> None:
    import shutil

    for p in reversed(created):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
