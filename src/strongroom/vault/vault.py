"""`Vault`: the one object that owns a vault's keys, blob store, catalogue and custody log.

Build it with `Vault.create(settings, passphrase)` or `Vault.open(settings, passphrase)` and
hand it to whatever needs it (datasette's pattern). Opened without a passphrase it is *sealed*:
catalogue reads work, anything that decrypts, names blobs or signs raises `VaultSealed`.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from strongroom.catalogue.db import Catalogue
from strongroom.catalogue.models import Original
from strongroom.errors import (
    NotAVault,
    StrongroomError,
    UnknownOriginal,
    VaultExists,
    VaultSealed,
)
from strongroom.settings import Settings
from strongroom.vault.blobs import LocalBlobStore
from strongroom.vault.hashing import Digests, MultiHash
from strongroom.vault.keys import PublicKeys, VaultKeys

VAULT_FORMAT = "strongroom-vault/1"
MARKER = "vault.json"
SEALED_KEYS = "keys.age"
CHECKPOINTS = "custody-checkpoints.jsonl"
_OWN_FILES = {MARKER, SEALED_KEYS, CHECKPOINTS, "catalogue.db", "catalogue.db-wal",
              "catalogue.db-shm", "blobs"}


def default_actor() -> str:
    return os.environ.get("STRONGROOM_ACTOR") or f"{getpass.getuser()}@{socket.gethostname()}"


class Vault:
    def __init__(
        self, settings: Settings, public: PublicKeys, keys: VaultKeys | None, actor: str
    ) -> None:
        from strongroom.custody.log import CustodyLog

        self.settings = settings
        self.path = settings.vault
        self.public = public
        self._keys = keys
        self.actor = actor
        self.catalogue = Catalogue(settings.resolved_database_url())
        self.blobs = LocalBlobStore(settings.resolved_blob_root())
        self.checkpoint_file = self.path / CHECKPOINTS
        self._custody = CustodyLog(keys, self.checkpoint_file) if keys is not None else None

    # -- lifecycle ----------------------------------------------------------------------
    @classmethod
    def create(cls, settings: Settings, passphrase: str, actor: str | None = None) -> Vault:
        path = settings.vault
        if (path / MARKER).exists():
            raise VaultExists(f"{path} is already a Strongroom vault")
        if path.exists():
            if not path.is_dir():
                raise VaultExists(f"{path} exists and is not a folder")
            stray = {p.name for p in path.iterdir()} - _OWN_FILES
            if stray:
                raise VaultExists(f"{path} is not empty; choose a new or empty folder")
            _remove_partial_init(path)  # an earlier init died before writing the marker
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        keys = VaultKeys.generate()
        sealed = keys.seal(passphrase)
        _write_private(path / SEALED_KEYS, sealed)
        settings.resolved_blob_root().mkdir(mode=0o700, exist_ok=True)
        vault = cls(settings, keys.public, keys, actor or default_actor())
        vault.catalogue.upgrade()
        with vault.write() as session:
            vault.record(session, "vault_created", f"vault:{keys.public.fingerprint}", {
                "format": VAULT_FORMAT,
                "age_recipient": keys.public.age_recipient,
                "signing_key_fingerprint": keys.public.fingerprint,
            })
        marker = {
            "format": VAULT_FORMAT,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "public": keys.public.to_json(),
        }
        _write_private(path / MARKER, json.dumps(marker, indent=2).encode() + b"\n")
        return vault

    @classmethod
    def open(
        cls, settings: Settings, passphrase: str | None = None, actor: str | None = None
    ) -> Vault:
        public = cls.read_marker(settings.vault)
        path = settings.vault
        keys = None
        if passphrase is not None:
            keys = VaultKeys.unseal((path / SEALED_KEYS).read_bytes(), passphrase)
            if keys.public != public:
                # Someone swapped vault.json's public keys: signatures checked against them
                # would mean nothing.
                raise StrongroomError(
                    f"{path}/{MARKER} does not match the sealed keys (public key replaced?)"
                )
        vault = cls(settings, public, keys, actor or default_actor())
        vault.catalogue.upgrade()
        return vault

    @staticmethod
    def read_marker(path: Path) -> PublicKeys:
        """The vault's public keys from its marker file; raises `NotAVault` (cheaply, before
        anyone is asked for a passphrase) when `path` is not a vault."""
        try:
            marker = json.loads((path / MARKER).read_text("utf-8"))
            if marker.get("format") != VAULT_FORMAT:
                raise NotAVault(f"{path}: unsupported vault format {marker.get('format')!r}")
            return PublicKeys.from_json(marker["public"])
        except FileNotFoundError:
            raise NotAVault(f"{path} is not a Strongroom vault (no {MARKER})") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise NotAVault(f"{path}: unreadable {MARKER}: {exc}") from None

    def close(self) -> None:
        self.blobs.close()
        self.catalogue.dispose()

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
        if self._custody is not None:
            for cp in published:
                self._custody.publish(cp)

    def record(self, session: Session, action: str, subject: str, details: dict[str, Any]) -> None:
        """Append one custody event in `session`'s transaction."""
        if self._custody is None:
            raise VaultSealed("recording custody needs the vault's passphrase")
        self._custody.append(
            session, actor=self.actor, action=action, subject=subject, details=details
        )

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

    def decrypt_blob(
        self, name: str, sink: Callable[[bytes], object] | None, *, sha512: bool = False,
        md5: bool = True, what: str | None = None,
    ) -> Digests:
        """Decrypt one blob, hashing the plaintext and feeding it to `sink` (None: hash only)."""
        from strongroom.vault.encryption import decrypt_stream

        hasher = MultiHash(sha512=sha512, md5=md5)
        with self.blobs.open(name) as f:
            decrypt_stream(f, self.keys.identity_text(), sink, hasher, what=what or f"blob {name}")
        return hasher.digests()


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _remove_partial_init(path: Path) -> None:
    import shutil

    for name in _OWN_FILES:
        p = path / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
