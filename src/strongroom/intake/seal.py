"""The intake's only cryptography, all of it standard: age (pyrage) to encrypt what arrives to
the vault's public key (and a source's own key), Fernet (`cryptography`) to wrap a source's age
identity under its codename's key and to make session tokens.

The intake is a separate app on a separate host: it never imports the vault, and it has no key
that opens what it stores. What it encrypts to the vault can be read only on the vault machine.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any


class BadToken(Exception):
    """A session token that is forged, damaged or expired."""


def check_recipient(recipient: str) -> str:
    from pyrage import x25519

    try:
        x25519.Recipient.from_str(recipient)
    except Exception:  # pyrage raises its own error types
        # never echoed: a private key pasted by mistake must not reach a terminal or a log
        raise ValueError("--public-key is not an age public key (age1…); the vault's is "
                         "printed by `strongroom init`") from None
    return recipient


def encrypt(data: bytes, recipients: list[str]) -> bytes:
    import pyrage
    from pyrage import x25519

    out: bytes = pyrage.encrypt(data, [x25519.Recipient.from_str(r) for r in recipients])
    return out


@dataclass(frozen=True)
class SourceKey:
    public: str
    identity: str  # AGE-SECRET-KEY-1…, held only while a source is signed in


def new_source_key() -> SourceKey:
    from pyrage import x25519

    ident = x25519.Identity.generate()
    return SourceKey(str(ident.to_public()), str(ident))


def decrypt_for_source(data: bytes, identity: str) -> bytes | None:
    """A message for this source, or None when it is not one this identity opens."""
    import pyrage
    from pyrage import x25519

    try:
        out: bytes = pyrage.decrypt(data, [x25519.Identity.from_str(identity)])
    except pyrage.DecryptError:
        return None
    return out


def _fernet(key: bytes) -> Any:
    from cryptography.fernet import Fernet

    return Fernet(base64.urlsafe_b64encode(key))


def wrap(key: bytes, secret: str) -> str:
    token: bytes = _fernet(key).encrypt(secret.encode())
    return token.decode()


def unwrap(key: bytes, wrapped: str) -> str | None:
    """The secret, or None when `key` is not the one it was wrapped with (Fernet's HMAC is
    checked in constant time)."""
    from cryptography.fernet import InvalidToken

    try:
        plain: bytes = _fernet(key).decrypt(wrapped.encode())
    except InvalidToken:
        return None
    return plain.decode()


def make_token(server_key: bytes, claims: dict[str, Any]) -> str:
    token: bytes = _fernet(server_key).encrypt(json.dumps(claims).encode())
    return token.decode()


def read_token(server_key: bytes, token: str, ttl: int) -> dict[str, Any]:
    from cryptography.fernet import InvalidToken

    try:
        plain: bytes = _fernet(server_key).decrypt(token.encode("ascii"), ttl=ttl)
        claims: dict[str, Any] = json.loads(plain)
    except (InvalidToken, UnicodeEncodeError, ValueError):
        raise BadToken from None
    return claims


def fingerprint(codename_key: bytes, sha256: str, size: int) -> str:
    """Names a file among one source's uploads, so `strongroom send` finds the upload to
    resume; without the codename it says nothing about the content."""
    import hmac

    return hmac.new(codename_key, f"{sha256}:{size}".encode(), "sha256").hexdigest()[:32]
