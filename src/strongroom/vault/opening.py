"""The light part of opening a vault: its marker, and the unseal started early.

Nothing here imports the catalogue (SQLAlchemy and Alembic cost ≈0.4 s of start-up), so the CLI
can start scrypt in the `age` child first and import the rest while it runs.
"""

from __future__ import annotations

import json
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from strongroom.errors import NotAVault, StrongroomError
from strongroom.vault.keys import PublicKeys, VaultKeys

VAULT_FORMAT = "strongroom-vault/1"
MARKER = "vault.json"
SEALED_KEYS = "keys.age"
CHECKPOINTS = "custody-checkpoints.jsonl"


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

    def __init__(self, path: Path, passphrase: str) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="unseal")
        self._future: Future[VaultKeys] = self._executor.submit(_unseal, path, passphrase)

    def result(self) -> VaultKeys:
        return self._future.result()

    def release(self) -> None:
        self._executor.shutdown(wait=False)


def start_unseal(path: Path, passphrase: str) -> Unsealing:
    return Unsealing(path, passphrase)


def _unseal(path: Path, passphrase: str) -> VaultKeys:
    try:
        sealed = (path / SEALED_KEYS).read_bytes()
    except OSError as exc:
        raise StrongroomError(
            f"{path}/{SEALED_KEYS} cannot be read ({exc.strerror}): the vault's keys are "
            "missing; restore them from a backup") from None
    return VaultKeys.unseal(sealed, passphrase)
