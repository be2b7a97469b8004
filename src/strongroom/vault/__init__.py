"""The vault: the only package that touches keys, encryption and the plaintext-at-rest rules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from strongroom.vault.vault import Vault

__all__ = ["Vault"]


def __getattr__(name: str) -> Any:
    # Lazy: pipeline workers import vault.blobs/encryption without the catalogue and settings
    # that `Vault` pulls in (≈0.4 s per worker start).
    if name == "Vault":
        from strongroom.vault.vault import Vault

        return Vault
    raise AttributeError(name)
