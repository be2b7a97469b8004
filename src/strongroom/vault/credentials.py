"""The organisation's signing credentials for published clips (C2PA), checked before the
c2pa library gets them: it accepts a key of another certificate and fails only once it has
begun writing ("the signature does not match"), and it accepts a chain file that holds no
certificate at all. Here, where the project's cryptography lives, each such mistake is one
clear message before anything is decrypted or written."""

from __future__ import annotations

from strongroom.errors import StrongroomError


def certificates_pem(pem: bytes, *, what: str) -> str:
    """The PEM certificates in `pem`, re-serialised; an error if there are none."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        certs = []
    if not certs:
        raise StrongroomError(f"{what} hold no PEM certificate")
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs).decode()


def signing_credentials(chain_pem: bytes, key_pem: bytes, *, chain_name: str, key_name: str
                        ) -> tuple[bytes, bytes]:
    """(the chain as PEM, leaf first; the key as PKCS#8 PEM) for ES256 signing, after
    checking that the key is an unencrypted EC P-256 key, that it belongs to the chain's
    first certificate, and that this certificate is valid now."""
    import datetime as dt

    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        certs = x509.load_pem_x509_certificates(chain_pem)
    except ValueError:
        certs = []
    if not certs:
        raise StrongroomError(f"certificate chain {chain_name} holds no PEM certificate")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise StrongroomError(f"private key {key_name} is encrypted; give it unencrypted "
                              "(PKCS#8 PEM)") from None
    except (ValueError, UnsupportedAlgorithm):
        raise StrongroomError(f"private key {key_name} is not a PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise StrongroomError(f"private key {key_name} is not an EC P-256 key (ES256)")
    leaf = certs[0]
    raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    mine = key.public_key().public_bytes(*raw)
    if leaf.public_key().public_bytes(*raw) != mine:
        order = any(c.public_key().public_bytes(*raw) == mine for c in certs[1:])
        raise StrongroomError(
            f"private key {key_name} does not match the certificate "
            f"{leaf.subject.rfc4514_string()!r} at the start of {chain_name}"
            + (" (list the leaf certificate first, then its CA chain)" if order else ""))
    now = dt.datetime.now(dt.UTC)
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        raise StrongroomError(
            f"certificate {leaf.subject.rfc4514_string()!r} is valid only from "
            f"{leaf.not_valid_before_utc:%Y-%m-%d} to {leaf.not_valid_after_utc:%Y-%m-%d}")
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
    pkcs8 = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    return pem, pkcs8
