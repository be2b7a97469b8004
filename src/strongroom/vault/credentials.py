"""The organisation's signing credentials for published clips (C2PA), checked before the
c2pa library gets them: it accepts a key of another certificate and fails only once it has
begun writing ("the signature does not match"), and it accepts a chain file that holds no
certificate at all. Here, where the project's cryptography lives, each such mistake is one
clear message before anything is decrypted or written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strongroom.errors import StrongroomError


@dataclass(frozen=True)
class Chain:
    chain: Path  # leaf then root, PEM
    key: Path  # the leaf's private key, PKCS#8 PEM
    root: Path  # the CA certificate alone (a trust anchor)


def _certificates(pem: bytes, what: str) -> list[Any]:
    """The PEM certificates in `pem`; an error naming `what` if there are none."""
    from cryptography import x509

    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        certs = []
    if not certs:
        raise StrongroomError(f"{what} holds no PEM certificate")
    return certs


def certificates_pem(pem: bytes, *, what: str) -> str:
    """The PEM certificates in `pem`, re-serialised; an error if there are none."""
    from cryptography.hazmat.primitives import serialization

    return b"".join(c.public_bytes(serialization.Encoding.PEM)
                    for c in _certificates(pem, what)).decode()


def signing_credentials(chain_pem: bytes, key_pem: bytes, *, chain_name: str, key_name: str
                        ) -> tuple[bytes, bytes]:
    """(the chain as PEM, leaf first; the key as PKCS#8 PEM) for ES256 signing, after
    checking that the key is an unencrypted EC P-256 key, that it belongs to the chain's
    first certificate, and that this certificate is valid now."""
    import datetime as dt

    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    certs = _certificates(chain_pem, f"certificate chain {chain_name}")
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


def throwaway_chain(folder: Path, name: str) -> Chain:
    """A private CA and a signing certificate under it, valid for 30 days, written to `folder`
    (chain.pem, key.pem, root.pem): for the demo and the tests, never for real publication
    (a real organisation signs with a certificate from a CA people can check)."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} Root CA"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, name)])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False),
                         critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} signing"),
                                     x509.NameAttribute(NameOID.ORGANIZATION_NAME, name)]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    chain = folder / "chain.pem"
    chain.write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    root = folder / "root.pem"
    root.write_bytes(ca.public_bytes(pem))
    key_file = folder / "key.pem"
    key_file.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return Chain(chain, key_file, root)
