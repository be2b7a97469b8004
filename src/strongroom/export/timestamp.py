"""RFC 3161 trusted timestamps: a third party's signed statement that these bytes existed then.

Our own signatures prove *who* vouches for an export, but anyone holding the key could sign a
back-dated manifest. A timestamp authority (TSA) closes that gap: we send it only a hash of the
data (SHA-512, plus a random nonce), and it returns a token, signed with a certificate dedicated
to timestamping, binding that hash to the TSA's clock. A court — or its expert, with nothing but
`openssl ts -verify` and the TSA's CA certificate — can then check that these exact bytes existed
no later than the token's time, without trusting us or our machines. The TSA never sees the data.

`request_timestamp` asks a TSA over HTTP and checks the answer is a granted token for our hash
and nonce; it returns the whole DER TimeStampResp (the `.tsr` file `openssl ts` reads).
`verify_timestamp` checks such a response against the data and a trusted root CA.
"""

from __future__ import annotations

import hashlib
import http.client
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from strongroom.errors import IntegrityError, StrongroomError

if TYPE_CHECKING:
    from cryptography.x509 import Certificate
    from rfc3161_client import TimeStampRequest, TimeStampResponse

MAX_RESPONSE_BYTES = 1 << 20  # real responses are a few KiB; refuse to buffer a runaway body
QUERY_CONTENT_TYPE = "application/timestamp-query"
REPLY_CONTENT_TYPE = "application/timestamp-reply"

# Message-imprint hash algorithms we accept, by OID: name and hashlib constructor name.
_HASHES = {
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}
_PKI_STATUS = {
    0: "granted",
    1: "granted with modifications",
    2: "rejection",
    3: "waiting",
    4: "revocation warning",
    5: "revocation notification",
}


@dataclass(frozen=True)
class TimestampInfo:
    """What a verified timestamp token attests."""

    time: datetime  # genTime, UTC
    tsa: str  # the token's TSA name, else the signing certificate's subject (RFC 4514)
    serial: int  # the TSA's serial number for this token
    hash_algorithm: str  # of the message imprint: sha256 | sha384 | sha512

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time.isoformat(),
            "tsa": self.tsa,
            "serial": self.serial,
            "hash_algorithm": self.hash_algorithm,
        }


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _build_request(data: bytes) -> tuple[TimeStampRequest, str]:
    """A TimeStampReq (nonce, certReq) for SHA-512 of data, or SHA-256 if the library balks."""
    from rfc3161_client import HashAlgorithm, TimestampRequestBuilder

    error: Exception | None = None
    for algorithm, name in ((HashAlgorithm.SHA512, "sha512"), (HashAlgorithm.SHA256, "sha256")):
        try:
            request = (
                TimestampRequestBuilder()
                .data(data)
                .hash_algorithm(algorithm)
                .nonce(nonce=True)
                .cert_request(cert_request=True)
                .build()
            )
        except (ValueError, TypeError) as exc:
            error = exc
            continue
        return request, name
    raise StrongroomError(f"cannot build a timestamp request: {_one_line(error)}")


def _post(url: str, body: bytes, timeout: float) -> bytes:
    """POST a query; return the body of a 200 answer. Every failure is one StrongroomError line."""
    request = urllib.request.Request(  # noqa: S310 - scheme checked by the caller
        url,
        data=body,
        method="POST",
        headers={"Content-Type": QUERY_CONTENT_TYPE, "Accept": REPLY_CONTENT_TYPE},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status = response.status
            payload: bytes = response.read(MAX_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise StrongroomError(
            f"timestamp authority {url} answered HTTP {exc.code} {_one_line(exc.reason)}"
        ) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise StrongroomError(
                f"timestamp authority {url} did not answer within {timeout:g} s"
            ) from None
        reason = exc.reason.strerror if isinstance(exc.reason, OSError) else exc.reason
        raise StrongroomError(
            f"cannot reach timestamp authority {url}: {_one_line(reason or exc.reason)}"
        ) from None
    except TimeoutError:
        raise StrongroomError(
            f"timestamp authority {url} did not answer within {timeout:g} s"
        ) from None
    except (OSError, http.client.HTTPException) as exc:
        detail = _one_line(exc) or type(exc).__name__
        raise StrongroomError(f"timestamp authority {url} broke off the answer: {detail}") from None
    if status != 200:
        raise StrongroomError(f"timestamp authority {url} answered HTTP {status}, expected 200")
    if len(payload) > MAX_RESPONSE_BYTES:
        raise StrongroomError(
            f"timestamp authority {url} sent more than {MAX_RESPONSE_BYTES} bytes; "
            "that is not a timestamp response"
        )
    return payload


def request_timestamp(url: str, data: bytes, *, timeout: float = 30.0) -> bytes:
    """Have the TSA at `url` timestamp `data`; return the DER TimeStampResp it sent.

    Only the hash leaves this machine. The answer must be a granted token over our hash with our
    nonce; its signature is checked later, against a CA, by `verify_timestamp`.
    """
    from rfc3161_client import PKIStatus, decode_timestamp_response

    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise StrongroomError(f"timestamp authority URL must be http:// or https://, not {url!r}")
    if not data:
        raise StrongroomError("cannot timestamp empty data")
    request, hash_name = _build_request(data)
    payload = _post(url, request.as_bytes(), timeout)

    try:
        response = decode_timestamp_response(payload)
    except ValueError:
        raise StrongroomError(
            f"timestamp authority {url} did not send a timestamp response "
            f"({len(payload)} bytes that are not an RFC 3161 TimeStampResp)"
        ) from None
    if response.status != PKIStatus.GRANTED:
        status = _PKI_STATUS.get(response.status, f"status {response.status}")
        reason = "; ".join(_one_line(s) for s in response.status_string)
        raise StrongroomError(
            f"timestamp authority {url} refused the request ({status}"
            + (f": {reason})" if reason else ")")
        )
    try:
        info = response.tst_info
        imprint = info.message_imprint
        algorithm, digest, nonce = imprint.hash_algorithm.dotted_string, imprint.message, info.nonce
    except ValueError as exc:
        raise StrongroomError(
            f"timestamp authority {url} sent a granted response without a usable token: "
            f"{_one_line(exc)}"
        ) from None
    if _HASHES.get(algorithm) != hash_name or digest != hashlib.new(hash_name, data).digest():
        raise StrongroomError(
            f"timestamp authority {url} timestamped something else (message imprint mismatch)"
        )
    if nonce != request.nonce:
        raise StrongroomError(
            f"timestamp authority {url} answered with the wrong nonce (a replayed or "
            "mixed-up response)"
        )
    return payload


def _load_roots(ca_pem: bytes) -> list[Certificate]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    try:
        roots = x509.load_pem_x509_certificates(ca_pem)
    except ValueError:
        raise StrongroomError("the timestamp CA file holds no readable PEM certificate") from None
    unique = {root.fingerprint(hashes.SHA256()): root for root in roots}
    return list(unique.values())


def _tsa_name(response: TimeStampResponse) -> str:
    from cryptography import x509

    try:
        name = response.tst_info.name
    except ValueError:
        name = None
    if isinstance(name, x509.DirectoryName):
        return name.value.rfc4514_string()
    if name is not None:
        return str(name.value)
    signer = _embedded_signer(response)
    return signer.subject.rfc4514_string() if signer else "unnamed timestamp authority"


def _embedded_signer(response: TimeStampResponse) -> Certificate | None:
    """The embedded certificate matching the token's SignerInfo, or None."""
    from cryptography import x509

    signers = response.signed_data.signer_infos
    if len(signers) != 1:
        return None
    signer = next(iter(signers))
    for der in response.signed_data.certificates:
        cert = x509.load_der_x509_certificate(der)
        if cert.issuer == signer.issuer and cert.serial_number == signer.serial_number:
            return cert
    return None


def _verification_reason(exc: Exception) -> str:
    """rfc3161-client's messages can embed an OpenSSL error stack; keep the readable part."""
    text = str(exc)
    chain_error = re.search(r'data: "Verify error: ([^"]+)"', text)
    if chain_error:  # e.g. "unable to get local issuer certificate"
        return chain_error.group(1)
    reasons = re.findall(r'reason: "([^"]+)"', text)
    if reasons:  # the outermost, e.g. "signature failure"
        return str(reasons[-1])
    return _one_line(text.split(": ErrorStack", 1)[0])


def verify_timestamp(response_der: bytes, data: bytes, ca_pem: bytes) -> TimestampInfo:
    """Check a DER TimeStampResp covers `data` and is signed by a TSA chaining to `ca_pem`.

    `ca_pem` holds the trusted root(s) (PEM, one or more). The token must embed the TSA's
    certificate (we always ask for it); that certificate must chain to a root, carry a critical
    timeStamping EKU and have been valid at the token's time. Raises IntegrityError (a
    StrongroomError) saying what is wrong.
    """
    from rfc3161_client import (
        PKIStatus,
        VerificationError,
        VerifierBuilder,
        decode_timestamp_response,
    )

    try:
        response = decode_timestamp_response(response_der)
    except ValueError:
        raise IntegrityError("the timestamp is not a readable RFC 3161 TimeStampResp") from None
    if response.status != PKIStatus.GRANTED:
        status = _PKI_STATUS.get(response.status, f"status {response.status}")
        raise IntegrityError(f"the timestamp response is not a granted token ({status})")
    try:
        info = response.tst_info
        algorithm_oid = info.message_imprint.hash_algorithm.dotted_string
        imprint = info.message_imprint.message
        signer = _embedded_signer(response)
    except ValueError as exc:
        raise IntegrityError(f"the timestamp token is malformed: {_one_line(exc)}") from None
    hash_name = _HASHES.get(algorithm_oid)
    if hash_name is None:
        raise IntegrityError(
            f"the timestamp uses hash algorithm {algorithm_oid}; only SHA-256/384/512 are accepted"
        )

    if signer is None:
        raise IntegrityError(
            "the timestamp token does not embed the TSA certificate that signed it"
        )
    # Only the roots go into the builder. Its `tsa_certificate()` joins the *trusted* set that
    # rfc3161-client hands to PKCS7_verify, so passing the embedded certificate there would let a
    # self-signed forgery verify against any CA. Embedded certificates are untrusted chain
    # material; PKCS7_verify finds the signer among them and must chain it to a root.
    builder = VerifierBuilder()
    for root in _load_roots(ca_pem):
        builder = builder.add_root_certificate(root)
    try:
        # Signature, chain, EKU and status against the token's own imprint first, so a bad
        # signature and other data are reported as what they are.
        builder.build().verify(response, imprint)
    except (VerificationError, ValueError) as exc:
        raise IntegrityError(
            "the timestamp's signature or TSA certificate does not verify against the given CA: "
            f"{_verification_reason(exc)}"
        ) from None
    if imprint != hashlib.new(hash_name, data).digest():
        raise IntegrityError(
            f"the timestamp does not cover this data: its {hash_name.upper()} imprint differs"
        )

    time = info.gen_time
    time = time.replace(tzinfo=UTC) if time.tzinfo is None else time.astimezone(UTC)
    return TimestampInfo(
        time=time, tsa=_tsa_name(response), serial=info.serial_number, hash_algorithm=hash_name
    )
