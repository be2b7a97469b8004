"""The light part of opening a vault: its marker, and the unseal started early.

Nothing here imports the catalogue (SQLAlchemy and Alembic cost ≈0.4 s of start-up), so the CLI
can start scrypt in the `age` child first and import the rest while it runs.
"""

from __future__ import annotations

import json
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strongroom.errors import NotAVault, StrongroomError
from strongroom.vault.keys import PublicKeys, VaultKeys

VAULT_FORMAT = "strongroom-vault/1"
MARKER = "vault.json"
SEALED_KEYS = "keys.age"
#: The same key bundle, sealed for k of n SLIP-39 shares (see `vault/shares.py`).
SHARES_KEYS = "keys-shares.age"
CHECKPOINTS = "custody-checkpoints.jsonl"
#: Where an S3 blob store stages blobs before it uploads them (ciphertext, per process).
S3_STAGING = ".s3-staging"


@dataclass(frozen=True)
class Shares:
    """k (or more) SLIP-39 mnemonic shares, as people typed or a shares file held them."""

    mnemonics: tuple[str, ...] = field(repr=False)


@dataclass(frozen=True)
class Held:
    """The keys an unseal agent holds for the vault with this signing-key fingerprint."""

    fingerprint: str


#: What opens the keys: a passphrase (keys.age), shares (keys-shares.age), or an agent.
Credential = str | Shares | Held


def read_marker_json(path: Path) -> dict[str, Any]:
    """vault.json as a dict ({} when unreadable: `read_marker` reports that)."""
    try:
        data = json.loads((path / MARKER).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def unlocks(path: Path) -> tuple[bool, bool]:
    """(the passphrase opens it: keys.age exists, shares open it: keys-shares.age exists)."""
    return (path / SEALED_KEYS).is_file(), (path / SHARES_KEYS).is_file()


def read_marker(path: Path) -> PublicKeys:
    """The vault's public keys from its marker file; raises `NotAVault` when `path` is not a
    vault (cheaply, before anyone is asked for a passphrase)."""
    try:
        marker = json.loads((path / MARKER).read_text("utf-8"))
        if marker.get("format") != VAULT_FORMAT:
            raise NotAVault(f"{path}: unsupported vault format {marker.get('format')!r}")
        return PublicKeys.from_json(marker["public"])
    except FileNotFoundError:
        raise NotAVault(f"{path} is not a Strongroom vault (no {MARKER})") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NotAVault(f"{path}: unreadable {MARKER}: {exc}") from None


class Unsealing:
    """keys.age being unsealed on a thread (the work is in the `age` child process). Its
    errors (wrong passphrase, missing or damaged keys) are raised by `result()`."""

    def __init__(self, path: Path, credential: Credential) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="unseal")
        self._future: Future[VaultKeys] = self._executor.submit(_unseal, path, credential)

    def result(self) -> VaultKeys:
        return self._future.result()

    def release(self) -> None:
        self._executor.shutdown(wait=False)


def start_unseal(path: Path, credential: Credential) -> Unsealing:
    return Unsealing(path, credential)


def _unseal(path: Path, credential: Credential) -> VaultKeys:
    if isinstance(credential, Shares):
        return _unseal_shares(path, credential)
    if isinstance(credential, Held):
        from strongroom.vault.agent import held_bundle

        bundle = held_bundle(credential.fingerprint)
        if bundle is None:
            raise StrongroomError("the unseal agent stopped (sealed, or its time ran out): "
                                  "unseal the vault again")
        return VaultKeys.from_bundle(bundle, "the unseal agent's keys")
    passphrase = credential
    try:
        sealed = (path / SEALED_KEYS).read_bytes()
    except FileNotFoundError:
        if (path / SHARES_KEYS).is_file():
            raise StrongroomError(
                "this vault opens only with k of its shares, not a passphrase: give them "
                "with --shares-file F (one per line) or type them at a terminal") from None
        raise StrongroomError(
            f"{path}/{SEALED_KEYS} is missing: the vault's keys are gone; restore them from a "
            "backup") from None
    except OSError as exc:
        raise StrongroomError(
            f"{path}/{SEALED_KEYS} cannot be read ({exc.strerror}): the vault's keys are "
            "missing; restore them from a backup") from None
    return VaultKeys.unseal(sealed, passphrase)


def _unseal_shares(path: Path, given: Shares) -> VaultKeys:
    from strongroom.errors import WrongShare
    from strongroom.vault import shares as sh

    try:
        sealed = (path / SHARES_KEYS).read_bytes()
    except FileNotFoundError:
        raise StrongroomError(
            "this vault has no shares: `strongroom rekey VAULT --shares K-of-N` makes them, "
            "with its passphrase") from None
    except OSError as exc:
        raise StrongroomError(f"{path}/{SHARES_KEYS} cannot be read ({exc.strerror}): restore "
                              "it from a backup") from None
    secret = sh.combine(given.mnemonics)
    try:
        plain = sh.unseal(sealed, secret)
    except WrongShare:
        recorded = recorded_share_set(path)
        if recorded is not None:
            # Shares of an earlier set (rekey replaced it) or of another vault: name them.
            sh.combine(given.mnemonics, expected=recorded)
        raise
    return VaultKeys.from_bundle(plain, SHARES_KEYS)


def recorded_share_set(path: Path) -> Any:
    """The vault's current share set (`shares.ShareSet`) as vault.json records it, or None."""
    from strongroom.vault.shares import ShareSet

    info: Any = read_marker_json(path).get("shares")
    try:
        return ShareSet(int(info["identifier"]), int(info["threshold"]), int(info["count"]))
    except (TypeError, KeyError, ValueError):
        return None
