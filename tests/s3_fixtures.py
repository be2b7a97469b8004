"""A real S3 endpoint for tests: moto's server (`moto_server`) as its own process on
127.0.0.1, spoken to over HTTP by s3fs/botocore exactly as a MinIO or AWS would be."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

#: what moto accepts (it checks no signature unless told to)
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "strongroom-test", "AWS_SECRET_ACCESS_KEY": "not-a-secret",
               "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class S3:
    endpoint: str
    process: subprocess.Popen[bytes]

    def env(self, bucket: str, prefix: str = "blobs") -> dict[str, str]:
        """The environment of a command whose vault keeps its blobs in `bucket/prefix`."""
        return {**CREDENTIALS, "STRONGROOM_BLOB_STORE": f"s3://{bucket}/{prefix}",
                "STRONGROOM_S3_ENDPOINT_URL": self.endpoint}

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint,
                            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                            region_name="us-east-1")

    def new_bucket(self) -> str:
        name = "sr-" + uuid.uuid4().hex[:20]
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def start_moto(env: dict[str, str], log: Path | None = None
               ) -> tuple[subprocess.Popen[bytes], str]:
    """moto_server on a free port of 127.0.0.1 with `env` added to ours, once it accepts
    connections: the process and its endpoint URL (its output in `log`, if given)."""
    exe = Path(sys.executable).with_name("moto_server")
    if not exe.exists():
        found = shutil.which("moto_server")
        assert found, "moto_server is not installed (make test installs moto[s3] and flask)"
        exe = Path(found)
    port = free_port()
    with log.open("wb") if log is not None else open(os.devnull, "wb") as out:
        proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=out,
                                stderr=subprocess.STDOUT, env={**os.environ, **env})
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                said = log.read_text()[-2000:] if log is not None else ""
                raise RuntimeError(f"moto_server did not start: {said}") from None
            time.sleep(0.1)


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3]:
    """moto_server on a free port for the module; its log in the module's temp folder."""
    proc, endpoint = start_moto(CREDENTIALS, tmp_path_factory.mktemp("moto") / "moto.log")
    yield S3(endpoint, proc)
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
