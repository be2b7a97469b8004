"""The vault: the only package that touches keys, encryption and the plaintext-at-rest rules."""

from strongroom.vault.vault import Vault

__all__ = ["Vault"]
