"""A real RFC 3161 timestamp authority on 127.0.0.1 for tests: OpenSSL's `openssl ts -reply`.

`LocalTSA(directory)` makes, with the `openssl` CLI, a self-signed root CA and a TSA certificate
it issues (critical EKU timeStamping), writes an OpenSSL config with a `[tsa]` section and serves
HTTP POSTs of `application/timestamp-query` bodies on a free port in a background thread. Use it
as a context manager (or call `stop()`); `url`, `ca_pem_path` and `tsa_cert_path` are what a
client and `openssl ts -verify` need. `serve_bytes` stands in for a broken TSA and
`forged_token` signs a token with a self-signed certificate no CA issued. Import them like the
other helpers (`from tsa import LocalTSA`: tests/ is on sys.path, there is no tests/__init__.py);
the `tsa` fixture lives in test_timestamp.py.

Gotchas: no `certs =` line in the TSA section (the extra embedded certificates' order then trips
rfc3161-client's parser), and `openssl ts -reply` rewrites the serial file, so replies are made
one at a time under a lock.
"""

from __future__ import annotations

import contextlib
import http.server
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Self

POLICY = "1.2.3.4.1"
CA_SUBJECT = "/O=Strongroom Tests/CN=Strongroom Test Root CA"
TSA_SUBJECT = "/O=Strongroom Tests/CN=Strongroom Test TSA"


def _openssl(*args: str | Path) -> None:
    proc = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {proc.stderr.strip()}")


def make_ca(directory: Path, subject: str = CA_SUBJECT) -> tuple[Path, Path]:
    """A self-signed root CA (P-256). Returns (certificate PEM, key PEM)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "ca.pem", directory / "ca.key"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", key, "-out", cert, "-days", "3650", "-subj", subject,
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return cert, key


def make_tsa_cert(directory: Path, ca_cert: Path, ca_key: Path) -> tuple[Path, Path]:
    """A TSA certificate issued by the CA. Returns (certificate PEM, key PEM)."""
    cert, key, csr, ext = (directory / n for n in ("tsa.pem", "tsa.key", "tsa.csr", "tsa.ext"))
    ext.write_text(
        "[tsa_ext]\n"
        "basicConstraints = critical,CA:FALSE\n"
        "keyUsage = critical,digitalSignature,nonRepudiation\n"
        "extendedKeyUsage = critical,timeStamping\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid,issuer\n"
    )
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", key, "-out", csr, "-subj", TSA_SUBJECT,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-set_serial", "2",
        "-days", "3650", "-sha256", "-extfile", ext, "-extensions", "tsa_ext", "-out", cert,
    )  # fmt: skip
    return cert, key


def write_config(directory: Path, tsa_cert: Path, tsa_key: Path) -> Path:
    config, serial = directory / "tsa.cnf", directory / "tsaserial"
    serial.write_text("01\n")
    config.write_text(
        "[ tsa ]\n"
        "default_tsa = tsa_config\n"
        "\n"
        "[ tsa_config ]\n"
        f"serial = {serial}\n"
        "crypto_device = builtin\n"
        f"signer_cert = {tsa_cert}\n"
        f"signer_key = {tsa_key}\n"
        "signer_digest = sha256\n"
        f"default_policy = {POLICY}\n"
        "digests = sha256, sha384, sha512\n"
        "accuracy = secs:1, millisecs:0, microsecs:0\n"
        "clock_precision_digits = 0\n"
        "ordering = no\n"
        "tsa_name = yes\n"
        "ess_cert_id_chain = no\n"
        "ess_cert_id_alg = sha256\n"
    )
    return config


def forged_token(directory: Path, query: bytes) -> bytes:
    """A well-formed TimeStampResp for `query`, signed by a self-signed "TSA" no CA issued."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "forged.pem", directory / "forged.key"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", key, "-out", cert, "-days", "30", "-subj", "/CN=Forged TSA",
        "-addext", "basicConstraints=critical,CA:FALSE",
        "-addext", "keyUsage=critical,digitalSignature,nonRepudiation",
        "-addext", "extendedKeyUsage=critical,timeStamping",
    )  # fmt: skip
    config = write_config(directory, cert, key)
    (directory / "forged.tsq").write_bytes(query)
    _openssl(
        "ts", "-reply", "-config", config, "-queryfile", directory / "forged.tsq",
        "-out", directory / "forged.tsr",
    )  # fmt: skip
    return (directory / "forged.tsr").read_bytes()


class LocalTSA:
    """An OpenSSL-backed TSA serving HTTP on 127.0.0.1 in a daemon thread."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca_pem_path, ca_key = make_ca(directory)
        self.tsa_cert_path, tsa_key = make_tsa_cert(directory, self.ca_pem_path, ca_key)
        self.config_path = write_config(directory, self.tsa_cert_path, tsa_key)
        self._lock = threading.Lock()
        self._requests = 0
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}/tsa"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="local-tsa", daemon=True
        )
        self._thread.start()

    def openssl_verify(self, data: Path, token: Path) -> subprocess.CompletedProcess[str]:
        """`openssl ts -verify` of a token over a file, trusting this TSA's root."""
        return subprocess.run(
            ["openssl", "ts", "-verify", "-data", data, "-in", token,
             "-CAfile", self.ca_pem_path, "-untrusted", self.tsa_cert_path],
            capture_output=True, text=True,
        )  # fmt: skip

    def reply(self, query: bytes) -> bytes:
        """Answer one DER TimeStampReq with a DER TimeStampResp (one at a time)."""
        with self._lock:
            self._requests += 1
            query_file = self.directory / f"query-{self._requests}.tsq"
            reply_file = self.directory / f"reply-{self._requests}.tsr"
            query_file.write_bytes(query)
            _openssl(
                "ts", "-reply", "-config", self.config_path,
                "-queryfile", query_file, "-out", reply_file,
            )  # fmt: skip
            return reply_file.read_bytes()

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        tsa = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                query = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    body, status = tsa.reply(query), 200
                except RuntimeError as exc:
                    body, status = str(exc).encode(), 500
                self.send_response(status)
                ctype = "application/timestamp-reply" if status == 200 else "text/plain"
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def serve_bytes(body: bytes, *, status: int = 200, delay: float = 0.0) -> Iterator[str]:
    """A stand-in for a broken TSA: answers every POST with `body`. Yields its URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            time.sleep(delay)
            with contextlib.suppress(ConnectionError):  # a client that timed out has left
                self.send_response(status)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="fixed-tsa", daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/tsa"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
