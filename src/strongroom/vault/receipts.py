"""The recipient's side of a handover: the Ed25519 key that signs a receipt, and checking a
receipt's signature (the receipt itself is composed in `export/receipt.py`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from strongroom.errors import IntegrityError, StrongroomError
from strongroom.smallfiles import read_small


class ReceiptKey:
    """A recipient's Ed25519 private key (OpenSSH `ssh-ed25519` or PKCS#8 PEM)."""

    def __init__(self, key: Any) -> None:
        self._key = key

    @classmethod
    def load(cls, path: Path, passphrase: bytes | None) -> ReceiptKey:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import (
            load_pem_private_key,
            load_ssh_private_key,
        )

        data = read_small(path, "key")
        key: object
        try:
            if b"OPENSSH PRIVATE KEY" in data:
                key = load_ssh_private_key(data, passphrase)
            else:
                key = load_pem_private_key(data, passphrase)
        except (ValueError, TypeError) as exc:
            raise StrongroomError(f"cannot load {path} as a private key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise StrongroomError(f"{path} is not an Ed25519 key (use ssh-keygen -t ed25519)")
        return cls(key)

    def openssh_public(self) -> str:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        return str(self._key.public_key().public_bytes(
            Encoding.OpenSSH, PublicFormat.OpenSSH).decode())

    def sign(self, data: bytes) -> bytes:
        return bytes(self._key.sign(data))


def check_signature(openssh_public: str, signature: bytes, data: bytes) -> None:
    """Raise unless `signature` over `data` verifies with the named Ed25519 public key:
    `StrongroomError` for a key that is not one, `IntegrityError` for a bad signature."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_ssh_public_key

    try:
        public = load_ssh_public_key(openssh_public.encode())
    except (TypeError, ValueError):
        raise StrongroomError("not a Strongroom receipt") from None
    if not isinstance(public, Ed25519PublicKey):
        raise StrongroomError("receipts are signed with Ed25519 keys")
    try:
        public.verify(signature, data)
    except InvalidSignature:
        raise IntegrityError("the receipt's signature does not verify: it was changed or "
                             "not signed by the key it names") from None
