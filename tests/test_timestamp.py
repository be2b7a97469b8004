"""RFC 3161 timestamps against a real OpenSSL TSA on 127.0.0.1, checked by us and by openssl."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rfc3161_client import TimestampRequestBuilder

from strongroom.errors import IntegrityError, StrongroomError
from strongroom.export.timestamp import TimestampInfo, request_timestamp, verify_timestamp
from tsa import LocalTSA, forged_token, make_ca, serve_bytes

DATA = b"manifest-sha256.txt of a court bag\n" * 20


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTSA]:
    with LocalTSA(tmp_path_factory.mktemp("tsa")) as server:
        yield server


@pytest.fixture(scope="module")
def token(tsa: LocalTSA) -> bytes:
    return request_timestamp(tsa.url, DATA, timeout=10)


def one_line_naming(exc: pytest.ExceptionInfo[StrongroomError], url: str) -> None:
    message = str(exc.value)
    assert url in message
    assert "\n" not in message
    assert "Traceback" not in message


def test_openssl_accepts_the_token(tsa: LocalTSA, token: bytes, tmp_path: Path) -> None:
    (tmp_path / "data.bin").write_bytes(DATA)
    (tmp_path / "token.tsr").write_bytes(token)
    proc = tsa.openssl_verify(tmp_path / "data.bin", tmp_path / "token.tsr")
    assert proc.returncode == 0, proc.stderr
    assert "Verification: OK" in proc.stdout


def test_openssl_rejects_the_token_for_other_data(
    tsa: LocalTSA, token: bytes, tmp_path: Path
) -> None:
    (tmp_path / "data.bin").write_bytes(DATA + b"x")
    (tmp_path / "token.tsr").write_bytes(token)
    proc = tsa.openssl_verify(tmp_path / "data.bin", tmp_path / "token.tsr")
    assert proc.returncode != 0
    assert "Verification: OK" not in proc.stdout


def test_verify_gives_time_tsa_and_increasing_serials(tsa: LocalTSA, token: bytes) -> None:
    ca = tsa.ca_pem_path.read_bytes()
    first = verify_timestamp(token, DATA, ca)
    second = verify_timestamp(
        request_timestamp(tsa.url, b"other bytes", timeout=10), b"other bytes", ca
    )

    now = datetime.now(UTC)
    for info in (first, second):
        assert isinstance(info, TimestampInfo)
        assert info.time.tzinfo is not None and info.time.utcoffset() == timedelta(0)
        assert abs(now - info.time) < timedelta(minutes=1)
        assert info.tsa == "CN=Strongroom Test TSA,O=Strongroom Tests"
        assert info.hash_algorithm == "sha512"
    assert second.serial > first.serial > 0

    as_json = first.to_json()
    assert as_json == {
        "time": first.time.isoformat(),
        "tsa": first.tsa,
        "serial": first.serial,
        "hash_algorithm": "sha512",
    }
    assert datetime.fromisoformat(as_json["time"]) == first.time


def test_token_is_the_whole_der_response_over_sha512(token: bytes) -> None:
    from rfc3161_client import decode_timestamp_response

    response = decode_timestamp_response(token)
    assert response.as_bytes() == token
    assert response.tst_info.message_imprint.message == hashlib.sha512(DATA).digest()


def test_verify_refuses_other_data(tsa: LocalTSA, token: bytes) -> None:
    with pytest.raises(IntegrityError, match="does not cover this data"):
        verify_timestamp(token, DATA + b"x", tsa.ca_pem_path.read_bytes())


def test_verify_refuses_an_unrelated_ca(token: bytes, tmp_path: Path) -> None:
    other_ca, _ = make_ca(tmp_path, "/CN=Some Other Root")
    with pytest.raises(StrongroomError, match="against the given CA: unable to get local issuer"):
        verify_timestamp(token, DATA, other_ca.read_bytes())


def test_verify_refuses_a_self_signed_forgery(tsa: LocalTSA, tmp_path: Path) -> None:
    # rfc3161-client would trust an embedded certificate passed as `tsa_certificate`.
    query = TimestampRequestBuilder().data(DATA).build().as_bytes()
    forged = forged_token(tmp_path, query)
    with pytest.raises(StrongroomError, match="against the given CA: self-signed certificate"):
        verify_timestamp(forged, DATA, tsa.ca_pem_path.read_bytes())


def test_verify_refuses_a_tampered_signature(tsa: LocalTSA, token: bytes) -> None:
    tampered = token[:-1] + bytes([token[-1] ^ 0x01])  # the ECDSA signature ends the response
    with pytest.raises(IntegrityError, match="signature failure"):
        verify_timestamp(tampered, DATA, tsa.ca_pem_path.read_bytes())


@pytest.mark.parametrize("garbage", [b"", b"hello", b"\x30\x03\x02\x01\x00"])
def test_verify_refuses_garbage(tsa: LocalTSA, garbage: bytes) -> None:
    with pytest.raises(StrongroomError):
        verify_timestamp(garbage, DATA, tsa.ca_pem_path.read_bytes())


def test_verify_refuses_a_ca_file_without_certificates(token: bytes) -> None:
    with pytest.raises(StrongroomError, match="no readable PEM certificate"):
        verify_timestamp(token, DATA, b"not a certificate")


def test_request_to_a_closed_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/tsa"  # nothing listens there now
    with pytest.raises(StrongroomError, match="cannot reach") as exc:
        request_timestamp(url, DATA, timeout=5)
    one_line_naming(exc, url)


@pytest.mark.parametrize(
    ("status", "body", "expect"),
    [
        (200, b"hello", "did not send a timestamp response"),
        (503, b"busy", "HTTP 503"),
    ],
)
def test_request_to_a_server_answering_garbage(status: int, body: bytes, expect: str) -> None:
    with serve_bytes(body, status=status) as url, pytest.raises(StrongroomError) as exc:
        request_timestamp(url, DATA, timeout=5)
    assert expect in str(exc.value)
    one_line_naming(exc, url)


def test_request_times_out() -> None:
    with serve_bytes(b"late", delay=1.5) as url, pytest.raises(StrongroomError) as exc:
        request_timestamp(url, DATA, timeout=0.3)
    assert "did not answer within 0.3 s" in str(exc.value)
    one_line_naming(exc, url)


def test_request_refuses_a_replayed_response(token: bytes) -> None:
    # A valid, signed token — but for an earlier request: the nonce gives the replay away.
    with serve_bytes(token) as url, pytest.raises(StrongroomError, match="wrong nonce") as exc:
        request_timestamp(url, DATA, timeout=5)
    one_line_naming(exc, url)


def test_request_refuses_a_token_for_other_data(token: bytes) -> None:
    with serve_bytes(token) as url, pytest.raises(StrongroomError, match="something else") as exc:
        request_timestamp(url, b"different data", timeout=5)
    one_line_naming(exc, url)


def test_request_refuses_a_rejection(tsa: LocalTSA) -> None:
    rejection = tsa.reply(b"\x30\x03\x02\x01\x05")  # OpenSSL answers nonsense with a rejection
    with serve_bytes(rejection) as url, pytest.raises(StrongroomError, match="refused") as exc:
        request_timestamp(url, DATA, timeout=5)
    one_line_naming(exc, url)


def test_request_refuses_non_http_urls_and_empty_data(tsa: LocalTSA) -> None:
    with pytest.raises(StrongroomError, match="http"):
        request_timestamp("file:///etc/passwd", DATA)
    with pytest.raises(StrongroomError, match="empty"):
        request_timestamp(tsa.url, b"")
