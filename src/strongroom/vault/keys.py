"""Vault keys: the age identity that encrypts blobs, the Ed25519 key that signs custody, and
the index key that names blobs — created once, stored only sealed under a passphrase.

The sealed bundle is an ordinary age file encrypted with age's scrypt passphrase mode, so in a
disaster `age -d keys.age` with the passphrase recovers every key without Strongroom.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from strongroom.errors import StrongroomError, UnsealTooCostly, WrongPassphrase

BUNDLE_FORMAT = "strongroom-keys/1"
_INDEX_KEY_INFO = b"strongroom/index-key/v1"
_CATALOGUE_KEY_INFO = b"strongroom/catalogue-key/v1"


def fingerprint(signing_public: bytes) -> str:
    """A short, speakable identifier of the signing key, printed in reports and at init."""
    digest = hashlib.sha256(signing_public).hexdigest()[:32]
    return ":".join(digest[i : i + 4] for i in range(0, 32, 4))


@dataclass(frozen=True)
class PublicKeys:
    """What anyone may hold: enough to encrypt to the vault and to check its signatures."""

    age_recipient: str
    signing_public: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.signing_public)

    def verify(self, signature: bytes, data: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.signing_public).verify(signature, data)
        except (InvalidSignature, ValueError):
            return False
        return True

    def signing_pem(self) -> bytes:
        """The signing key as a PEM SubjectPublicKeyInfo (what `openssl` and courts read)."""
        return Ed25519PublicKey.from_public_bytes(self.signing_public).public_bytes(
            Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)

    def to_json(self) -> dict[str, str]:
        return {
            "age_recipient": self.age_recipient,
            "signing_public": base64.b64encode(self.signing_public).decode(),
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PublicKeys:
        return cls(str(data["age_recipient"]), base64.b64decode(data["signing_public"]))


class VaultKeys:
    """The unsealed private keys. Lives only in memory."""

    def __init__(self, age_identity: str, signing_private: bytes, master_secret: bytes) -> None:
        from pyrage import x25519

        self._age_identity_str = age_identity
        self.age_identity = x25519.Identity.from_str(age_identity)
        self._signing = Ed25519PrivateKey.from_private_bytes(signing_private)
        self._signing_private = signing_private
        self._master = master_secret
        self.index_key = _derive(master_secret, _INDEX_KEY_INFO)
        #: SQLCipher's raw key for the SQLite catalogue (never passed through its PBKDF2: it
        #: is already a uniformly random 256-bit key).
        self.catalogue_key = _derive(master_secret, _CATALOGUE_KEY_INFO)
        self.public = PublicKeys(
            age_recipient=str(self.age_identity.to_public()),
            signing_public=self._signing.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
        )

    @classmethod
    def generate(cls) -> VaultKeys:
        import os

        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat
        from pyrage import x25519

        signing = Ed25519PrivateKey.generate()
        raw = signing.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return cls(str(x25519.Identity.generate()), raw, os.urandom(32))

    def sign(self, data: bytes) -> bytes:
        return self._signing.sign(data)

    def storage_name(self, sha256_hex: str) -> str:
        """Blob name = HMAC-SHA256(index_key, sha256): whoever holds the disk cannot test for a
        known video by hashing it."""
        return hmac.new(self.index_key, sha256_hex.encode("ascii"), hashlib.sha256).hexdigest()

    def identity_text(self) -> str:
        """The age secret key, for handing to the `age` binary through a pipe (never a file)."""
        return self._age_identity_str

    def bundle(self) -> bytes:
        """The private keys as the JSON that keys.age holds (only ever sealed)."""
        return json.dumps({
            "format": BUNDLE_FORMAT,
            "age_identity": self._age_identity_str,
            "signing_private": base64.b64encode(self._signing_private).decode(),
            "master_secret": base64.b64encode(self._master).decode(),
        }).encode()

    def seal(self, passphrase: str) -> bytes:
        from strongroom.vault.passphrase import seal

        return seal(self.bundle(), passphrase)

    @classmethod
    def unseal(cls, sealed: bytes, passphrase: str) -> VaultKeys:
        from strongroom.vault import passphrase as pp

        if pp.typable(passphrase):
            plain = pp.unseal(sealed, passphrase)
        else:
            plain = _unseal_in_process(sealed, passphrase)
        return cls.from_bundle(plain)

    @classmethod
    def from_bundle(cls, plain: bytes, what: str = "keys.age") -> VaultKeys:
        """The keys from an unsealed bundle (`bundle()`'s JSON)."""
        try:
            bundle = json.loads(plain)
            if bundle.get("format") != BUNDLE_FORMAT:
                raise StrongroomError(f"unknown key bundle format {bundle.get('format')!r}")
            return cls(
                bundle["age_identity"],
                base64.b64decode(bundle["signing_private"]),
                base64.b64decode(bundle["master_secret"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StrongroomError(f"{what} holds no Strongroom key bundle ({exc})") from None


def _derive(master_secret: bytes, info: bytes) -> bytes:
    """One 256-bit key per purpose from the master secret (HKDF-SHA256, RFC 5869)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master_secret)


def _unseal_in_process(sealed: bytes, passphrase: str) -> bytes:
    """pyrage, for a passphrase no terminal can carry (sealed before such passphrases were
    refused). rage caps the work factor by this machine's current speed: a distinct error."""
    import pyrage

    try:
        plain: bytes = pyrage.passphrase.decrypt(sealed, passphrase)
    except pyrage.DecryptError as exc:
        why = str(exc)
        if "Excessive work" in why:
            raise UnsealTooCostly(
                "keys.age needs more scrypt work than this machine accepts right now; the "
                "passphrase was not checked: retry when the machine is less loaded") from None
        if why.strip() == "Decryption failed":
            raise WrongPassphrase("wrong passphrase: the vault's keys did not unlock") from None
        raise StrongroomError(f"keys.age is damaged ({why}): restore it from a backup") from None
    return plain
