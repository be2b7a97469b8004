"""What a pipeline worker process may do with the vault, and nothing more.

`Vault.worker_keys()` hands a worker a `WorkerKeys`: it can decrypt one original into a private
file (checking its SHA-256) and seal what the steps made to the vault's public key, so only
ciphertext travels back. It cannot name blobs, sign custody or touch the catalogue: those stay
with the runner's `Vault`. Picklable, handed over once when the worker starts (never on disk).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from strongroom.errors import IntegrityError, StrongroomError
from strongroom.vault.blobs import open_blob_store
from strongroom.vault.chunks import CHUNK_SIZE, SealedChunks, seal_chunks
from strongroom.vault.encryption import decrypt_stream
from strongroom.vault.hashing import MultiHash


@dataclass(frozen=True)
class Sealed:
    """A file a step made, encrypted to the vault: its plaintext digest and the ciphertext."""

    sha256: str
    size: int
    ciphertext: bytes


@dataclass(frozen=True)
class WorkerKeys:
    identity: str
    recipient: str
    #: the blob store: a folder, or an `s3://` URL (credentials: the worker's AWS_* variables)
    blob_root: str
    s3_endpoint: str = ""

    def __repr__(self) -> str:  # never print the identity
        return f"WorkerKeys(recipient={self.recipient!r}, blob_root={self.blob_root!r})"

    def decrypt_original(self, blob_name: str, sha256: str, dest: Path) -> None:
        """Decrypt an original into `dest` (created 0600, must not exist) and check that the
        plaintext still has its SHA-256."""
        store = open_blob_store(self.blob_root, endpoint_url=self.s3_endpoint)
        hasher = MultiHash(md5=False)
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out, store.open(blob_name) as src:
            decrypt_stream(src, self.identity, out.write, hasher, what=f"original {sha256}")
        if hasher.digests().sha256 != sha256:
            raise IntegrityError(f"original {sha256}: decrypted content does not match its "
                                 "SHA-256 (run `strongroom verify`)")

    def seal(self, path: Path) -> Sealed:
        """Encrypt a step's output file to the vault's public key."""
        import pyrage
        from pyrage import x25519

        data = path.read_bytes()
        try:
            cipher = pyrage.encrypt(data, [x25519.Recipient.from_str(self.recipient)])
        except pyrage.EncryptError as exc:
            raise StrongroomError(f"cannot seal {path.name}: {exc}") from None
        return Sealed(sha256=hashlib.sha256(data).hexdigest(), size=len(data), ciphertext=cipher)

    def seal_chunks(self, path: Path, chunk_size: int = CHUNK_SIZE) -> SealedChunks:
        """Encrypt a step's output as separately sealed chunks (`vault/chunks.py`): what the
        review app streams by byte range."""
        return seal_chunks(path, self.recipient, chunk_size)
