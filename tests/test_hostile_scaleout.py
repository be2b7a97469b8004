"""Hostile tests of issue 18's scale-out (parts 1-2): the S3 blob store, `strongroom doctor`
and the Dask executor, attacked as a hostile user, a defence lawyer or a careless admin would.

Each attack that holds is a plain test; each that shows a real problem is kept as
`xfail(strict=True, reason="BREAK: ...")`, so that fixing it turns the test red until the
marker goes.

The slow attacks (a port that accepts and never answers, a port that answers garbage, a
cluster with no worker) are started together, each as its own `strongroom` process, by the
module fixture `slow`, and each test only collects its own result: the file runs in about the
time of the slowest one."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import CLI, PASSPHRASE, cli, cli_env
from s3_fixtures import CREDENTIALS, S3, free_port, s3, start_moto  # noqa: F401 - fixture
from strongroom.errors import BlobMissing, StrongroomError
from strongroom.vault.s3blobs import S3BlobStore, parse_s3_url

#: how long a command may take against a port that accepts and never answers: the S3 client
#: is configured with a 10 s connect and a 60 s read timeout, Dask's client with 5-10 s
HANG_LIMIT_S3 = 75.0
HANG_LIMIT_DASK = 45.0


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in CREDENTIALS.items():
        monkeypatch.setenv(k, v)


# -- helpers ---------------------------------------------------------------------------------
def _env(s3: S3, bucket: str, prefix: str = "blobs") -> dict[str, str]:
    return s3.env(bucket, prefix)


def _files(folder: Path, n: int, size: int = 1000) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"f{i}.bin").write_bytes(os.urandom(size + i))
    return folder


def _verify(vault: Path, env: dict[str, str], *extra: str) -> tuple[int, dict[str, Any]]:
    r = cli("verify", vault, "--json", *extra, env=env)
    assert r.stdout.startswith("{"), (r.returncode, r.stdout, r.stderr)
    return r.returncode, json.loads(r.stdout)


def _s3_vault(s3: S3, tmp_path: Path, n: int = 3, prefix: str = "blobs"
              ) -> tuple[Path, str, dict[str, str]]:
    bucket = s3.new_bucket()
    env = _env(s3, bucket, prefix)
    vault = tmp_path / "vault"
    r = cli("init", vault, env=env)
    assert r.returncode == 0, r.stderr
    r = cli("ingest", vault, _files(tmp_path / "src", n), "-a", "USB 1", env=env)
    assert r.returncode == 0, r.stderr
    return vault, bucket, env


class _Server:
    """A TCP port on 127.0.0.1 that accepts every connection and then either says nothing
    ever ('hang') or answers a few bytes of garbage and closes ('garbage')."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(200)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.mode == "garbage":
                conn.recv(65536)
                conn.sendall(b"\x00\xffGARBAGE, not HTTP and not Dask\r\n\r\n" * 10)
                time.sleep(0.2)
                conn.close()
            else:
                while conn.recv(65536):
                    pass
        except OSError:
            pass

    def close(self) -> None:
        self.stopped = True
        for c in [self.sock, *self.conns]:
            with contextlib.suppress(OSError):
                c.close()


@dataclass
class _Run:
    """One `strongroom` process started by the `slow` fixture, watched by a thread that kills
    it (its process group) once `limit` seconds have passed."""
    argv: list[str]
    proc: subprocess.Popen[str]
    started: float
    limit: float
    out: str = ""
    err: str = ""
    elapsed: float = 0.0
    timed_out: bool = False
    watcher: threading.Thread | None = None

    def watch(self) -> None:
        try:
            self.out, self.err = self.proc.communicate(timeout=self.limit)
        except subprocess.TimeoutExpired:
            self.timed_out = True
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.out, self.err = self.proc.communicate()
        self.elapsed = time.monotonic() - self.started

    def result(self) -> _Run:
        assert self.watcher is not None
        self.watcher.join()
        return self


def _start(argv: list[str | Path], env: dict[str, str], limit: float) -> _Run:
    args = [str(a) for a in argv]
    proc = subprocess.Popen([*CLI, *args], env=cli_env(env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    run = _Run(args, proc, time.monotonic(), limit)
    run.watcher = threading.Thread(target=run.watch, daemon=True)
    run.watcher.start()
    return run


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the Dask scheduler did not start") from None
            time.sleep(0.1)


@pytest.fixture(scope="module", autouse=True)
def slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, _Run]]:
    """Starts every slow attack at once (see the module docstring)."""
    from strongroom.testmedia import still_clip

    base = tmp_path_factory.mktemp("slow")
    hang, garbage = _Server("hang"), _Server("garbage")
    sched_port = free_port()
    scheduler = subprocess.Popen(
        [str(Path(sys.executable).with_name("dask")), "scheduler", "--host", "127.0.0.1",
         "--port", str(sched_port), "--no-dashboard"], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    vault = base / "vault"
    source = base / "usb"
    source.mkdir()
    still_clip(source / "cam.mp4", 320, 240, frames=5)
    assert cli("init", vault).returncode == 0
    assert cli("ingest", vault, source, "-a", "USB 1").returncode == 0
    s3_at = {**CREDENTIALS, "STRONGROOM_BLOB_STORE": "s3://some-bucket/blobs",
             "AWS_SECRET_ACCESS_KEY": "hostile-secret-Zq81"}
    runs = {
        "s3 hang doctor": _start(["doctor", "--json"], {
            **s3_at, "STRONGROOM_S3_ENDPOINT_URL": f"http://127.0.0.1:{hang.port}"},
            HANG_LIMIT_S3),
        "s3 garbage doctor": _start(["doctor", "--json"], {
            **s3_at, "STRONGROOM_S3_ENDPOINT_URL": f"http://127.0.0.1:{garbage.port}"},
            HANG_LIMIT_S3),
        "dask hang doctor": _start(["doctor", "--json"], {
            "STRONGROOM_EXECUTOR": f"dask://127.0.0.1:{hang.port}"}, HANG_LIMIT_DASK),
        "dask hang process": _start(["process", vault, "--steps", "probe", "--json"], {
            "STRONGROOM_EXECUTOR": f"dask://127.0.0.1:{hang.port}"}, HANG_LIMIT_DASK),
        "dask garbage doctor": _start(["doctor", "--json"], {
            "STRONGROOM_EXECUTOR": f"dask://127.0.0.1:{garbage.port}"}, HANG_LIMIT_DASK),
        "dask garbage process": _start(["process", vault, "--steps", "probe", "--json"], {
            "STRONGROOM_EXECUTOR": f"dask://127.0.0.1:{garbage.port}"}, HANG_LIMIT_DASK),
    }
    try:
        _wait_port(sched_port, scheduler)
        empty = {"STRONGROOM_EXECUTOR": f"dask://127.0.0.1:{sched_port}"}
        runs["no workers doctor"] = _start(["doctor", "--json"], empty, HANG_LIMIT_DASK)
        runs["no workers process"] = _start(["process", vault, "--steps", "probe", "--json"],
                                            empty, HANG_LIMIT_DASK)
        yield runs
    finally:
        for run in runs.values():
            if run.proc.poll() is None:
                os.killpg(run.proc.pid, signal.SIGKILL)
            run.result()
        os.killpg(scheduler.pid, signal.SIGTERM)
        try:
            scheduler.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(scheduler.pid, signal.SIGKILL)
        hang.close()
        garbage.close()


def _check(run: _Run, name: str) -> dict[str, Any]:
    data = json.loads(run.out)
    return next(c for c in data["checks"] if c["name"] == name)


# -- s3:// URLs and prefixes -----------------------------------------------------------------
@pytest.mark.parametrize("url", [
    "s3://bucket-x/../other", "s3://bucket-x/a/../../other", "s3://bucket-x/a/./b",
    "s3://bucket-x/a//b", "s3://../x", "s3://bucket-x/..", "s3://bucket-x/%2F..",
    "s3:///bucket-x/x", "s3://Bucket-X/x", "s3://bucket_x/x"])
def test_urls_that_try_to_escape_are_refused(url: str, tmp_path: Path) -> None:
    if url == "s3://bucket-x/%2F..":  # not an escape: a literal key, kept literal below
        assert parse_s3_url(url) == ("bucket-x", "%2F..")
        return
    with pytest.raises(StrongroomError):
        parse_s3_url(url)
    r = cli("init", tmp_path / "v", env={"STRONGROOM_BLOB_STORE": url})
    assert r.returncode == 2 and "STRONGROOM_BLOB_STORE" in r.stderr
    assert not (tmp_path / "v").exists()


@pytest.mark.parametrize("prefix", ["evidence 2024/é ü/%2e%2e/a+b=c&d?x=1#frag",
                                    "star*[ab]{c,d}/..%2f..%2fother/~'quote\""])
def test_odd_prefixes_are_literal_keys(prefix: str, s3: S3, tmp_path: Path) -> None:
    vault, bucket, env = _s3_vault(s3, tmp_path, n=1, prefix=prefix)
    keys = s3.keys(bucket)
    assert len(keys) == 1 and all(k.startswith(prefix + "/") for k in keys), keys
    code, report = _verify(vault, env)
    assert code == 0 and report["ok"] and report["originals"] == 1


def test_credentials_in_the_url_are_not_echoed(tmp_path: Path) -> None:
    r = cli("init", tmp_path / "v",
            env={"STRONGROOM_BLOB_STORE": "s3://AKIAEXAMPLE:wJalrSECRETkey@bucket-x/blobs"})
    assert r.returncode == 2
    assert "wJalrSECRETkey" not in r.stdout + r.stderr, r.stderr


def test_a_typo_in_the_scheme_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    monkeypatch.chdir(tmp_path)
    r = cli("init", tmp_path / "v", env={"STRONGROOM_BLOB_STORE": "s3:/evidence/blobs"})
    assert not (tmp_path / "s3:").exists()
    assert r.returncode == 2, "s3:/evidence/blobs accepted as a folder"


def test_a_file_url_with_a_host_is_not_a_relative_folder(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    monkeypatch.chdir(tmp_path)
    r = cli("init", tmp_path / "v", env={"STRONGROOM_BLOB_STORE": "file://localhost/srv/b"})
    assert not (tmp_path / "localhost").exists()
    assert r.returncode == 2


# -- crafted bucket contents -----------------------------------------------------------------
def test_crafted_bucket_contents_are_found_by_verify(s3: S3, tmp_path: Path) -> None:
    vault, bucket, env = _s3_vault(s3, tmp_path, n=4)
    client = s3.client()
    keys = s3.keys(bucket)
    assert len(keys) == 4
    # junk under the prefix: odd keys, a folder marker, a non-hex name, a name in the
    # wrong shard, a name one level too deep, a sibling prefix that shares the start
    name0 = keys[0].rsplit("/", 1)[1]
    for k in ["blobs/ab/", "blobs/README", "blobs/zz/" + "f" * 64,
              "blobs/ab/ab" + "0" * 62 + ".tmp", "blobs/00/" + name0,
              "blobs/x/" + name0[:2] + "/" + name0, "blobs2" + name0[:2] + "/" + name0,
              "blobs/" + name0[:2] + "/" + "A" * 64]:
        client.put_object(Bucket=bucket, Key=k, Body=b"junk")
    code, report = _verify(vault, env)
    assert code == 0 and report["ok"] and report["originals"] == 4, report
    # now the evidence itself: deleted; replaced by a longer one; by garbage of the same
    # size; by a 'directory' of the same name (the object gone, a key under it)
    client.delete_object(Bucket=bucket, Key=keys[0])
    body = client.get_object(Bucket=bucket, Key=keys[1])["Body"].read()
    client.put_object(Bucket=bucket, Key=keys[1], Body=body + b"x")
    body = client.get_object(Bucket=bucket, Key=keys[2])["Body"].read()
    client.put_object(Bucket=bucket, Key=keys[2], Body=b"\0" * len(body))
    client.delete_object(Bucket=bucket, Key=keys[3])
    client.put_object(Bucket=bucket, Key=keys[3] + "/x", Body=b"junk")
    code, report = _verify(vault, env)
    assert code == 1 and not report["ok"]
    assert len({p["subject"] for p in report["problems"]}) == 4, report["problems"]
    code, report = _verify(vault, env, "--quick")
    assert code == 1 and len({p["subject"] for p in report["problems"]}) == 3  # same size: full


def test_a_directory_of_the_blob_name_is_not_the_blob(s3: S3, tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    store = S3BlobStore(f"s3://{bucket}/blobs", endpoint_url=s3.endpoint,
                        staging=tmp_path / "staging")
    name = "ab" + "0" * 62
    s3.client().put_object(Bucket=bucket, Key=f"blobs/ab/{name}/planted", Body=b"x")
    try:
        assert not store.exists(name)
        with pytest.raises(BlobMissing):
            store.open(name).read()
    finally:
        store.close()


def test_a_huge_replacement_is_reported_without_reading_it(s3: S3, tmp_path: Path) -> None:
    vault, bucket, env = _s3_vault(s3, tmp_path, n=1)
    key = s3.keys(bucket)[0]
    s3.client().put_object(Bucket=bucket, Key=key, Body=b"\0" * (32 * 1024 * 1024))
    started = time.monotonic()
    code, report = _verify(vault, env)
    assert code == 1 and "were stored" in report["problems"][0]["message"]
    assert time.monotonic() - started < 30


def test_a_blob_deleted_while_verify_reads_it(s3: S3, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = s3.new_bucket()
    env = _env(s3, bucket)
    vault = tmp_path / "vault"
    assert cli("init", vault, env=env).returncode == 0
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024))  # through the age binary
    assert cli("ingest", vault, src, "-a", "USB 1", env=env).returncode == 0
    client = s3.client()
    real = S3BlobStore.open

    def open_then_lose(self: S3BlobStore, name: str) -> Any:
        f = real(self, name)
        client.delete_object(Bucket=self.bucket, Key=self._key(name).split("/", 1)[1])
        return f

    monkeypatch.setattr(S3BlobStore, "open", open_then_lose)
    r = cli("verify", vault, "--json", env=env)
    assert "unexpected" not in r.stdout + r.stderr, r.stderr
    assert r.returncode == 1 and json.loads(r.stdout)["problems"], r.stdout


def test_a_blob_over_78_gib_fits_in_the_part_limit(s3: S3, tmp_path: Path) -> None:
    import math

    from s3fs.core import MAX_UPLOAD_PARTS, calculate_chunksize

    bucket = s3.new_bucket()
    store = S3BlobStore(f"s3://{bucket}/blobs", endpoint_url=s3.endpoint,
                        staging=tmp_path / "staging")
    planned: list[int] = []

    def put_file(lpath: str, rpath: str, **kw: Any) -> None:
        # what s3fs's _put_file does with the size and the part size it is given, without
        # sending 100 GiB: the number of parts it would upload
        size = os.path.getsize(lpath)
        planned.append(math.ceil(size / calculate_chunksize(size, chunksize=kw["chunksize"])))

    store.fs.put_file = put_file
    staged = store.stage()
    os.ftruncate(staged.file.fileno(), 100 * 1024**3)  # sparse: a 100 GiB disk image's blob
    try:
        store.commit([(staged, "ab" + "0" * 62)])
    finally:
        store.close()
    assert planned and planned[0] <= MAX_UPLOAD_PARTS, f"{planned[0]} parts"


# -- vault.json and the environment --------------------------------------------------------
def test_a_different_store_named_for_an_s3_vault_is_refused(s3: S3, tmp_path: Path) -> None:
    vault, bucket, env = _s3_vault(s3, tmp_path, n=1)
    other = s3.new_bucket()
    for wrong in (f"s3://{other}/blobs", f"s3://{bucket}/blobs/sub", str(tmp_path / "f"),
                  f"file://{tmp_path / 'f'}"):
        cmds: list[list[str | Path]] = [["ingest", vault, tmp_path / "src", "-a", "x"],
                                        ["verify", vault]]
        for cmd in cmds:
            r = cli(*cmd, env={**env, "STRONGROOM_BLOB_STORE": wrong})
            assert r.returncode == 2 and "this vault's blobs are in" in r.stderr, (wrong, r)
    assert s3.keys(other) == [] and not (tmp_path / "f").exists()
    # vault.json edited to point at another bucket: the blobs are not there, and verify says
    marker = json.loads((vault / "vault.json").read_text())
    marker["blob_store"] = f"s3://{other}/blobs"
    (vault / "vault.json").write_text(json.dumps(marker))
    only = {k: v for k, v in env.items() if k != "STRONGROOM_BLOB_STORE"}
    code, report = _verify(vault, only)
    assert code == 1 and "is missing from" in report["problems"][0]["message"]


def test_an_s3_store_named_for_a_local_vault_is_refused(s3: S3, tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    assert cli("init", vault).returncode == 0
    src = _files(tmp_path / "src", 1)
    assert cli("ingest", vault, src, "-a", "USB 1").returncode == 0
    bucket = s3.new_bucket()
    (src / "later.bin").write_bytes(os.urandom(999))
    r = cli("ingest", vault, src, "-a", "USB 2", env=_env(s3, bucket))
    assert s3.keys(bucket) == [], "new evidence went to a bucket the vault does not know"
    assert r.returncode == 2


@pytest.mark.parametrize("recorded", ["relative-blobs", "http://evil.example/x"])
def test_vault_json_pointing_at_a_local_path_is_refused(recorded: str, s3: S3, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    vault, _, env = _s3_vault(s3, tmp_path, n=1)
    marker = json.loads((vault / "vault.json").read_text())
    marker["blob_store"] = recorded
    (vault / "vault.json").write_text(json.dumps(marker))
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    only = {k: v for k, v in env.items() if k != "STRONGROOM_BLOB_STORE"}
    (tmp_path / "src" / "new.bin").write_bytes(os.urandom(777))
    r = cli("ingest", vault, tmp_path / "src", "-a", "USB 2", env=only)
    assert list(work.iterdir()) == [], "evidence written under the working directory"
    assert r.returncode == 2


def test_doctor_reports_a_malformed_recorded_store(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    assert cli("init", vault).returncode == 0
    marker = json.loads((vault / "vault.json").read_text())
    marker["blob_store"] = "s3://NOT_A_BUCKET/x"
    (vault / "vault.json").write_text(json.dumps(marker))
    r = cli("doctor", vault, "--json")
    assert r.returncode == 1 and r.stdout.startswith("{"), r.stderr
    assert not _checks(r.stdout)["blob store"]["ok"]


def _checks(out: str) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in json.loads(out)["checks"]}


@pytest.fixture
def second_s3(tmp_path: Path) -> Iterator[str]:
    """A second, unrelated S3 service (another moto_server)."""
    proc, endpoint = start_moto(CREDENTIALS)
    try:
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(10)


def test_another_endpoint_with_the_same_bucket_name_is_refused(s3: S3, second_s3: str,
                                                               tmp_path: Path) -> None:
    import boto3  # type: ignore[import-untyped]

    vault, bucket, env = _s3_vault(s3, tmp_path, n=1)
    other = boto3.client("s3", endpoint_url=second_s3, region_name="us-east-1")
    other.create_bucket(Bucket=bucket)
    (tmp_path / "src" / "new.bin").write_bytes(os.urandom(555))
    r = cli("ingest", vault, tmp_path / "src", "-a", "USB 2",
            env={**env, "STRONGROOM_S3_ENDPOINT_URL": second_s3})
    stored = other.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert stored == [], "evidence went to another S3 service"
    assert r.returncode == 2


def test_a_second_vault_in_the_same_prefix_is_refused(s3: S3, tmp_path: Path) -> None:
    _, _, env = _s3_vault(s3, tmp_path, n=1)
    r = cli("init", tmp_path / "second", env=env)
    assert r.returncode == 2, "a second vault made in the first one's prefix"


# -- kill -9 and concurrency -----------------------------------------------------------------
def test_kill_9_during_an_s3_ingest_then_rerun(s3: S3, tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    env = _env(s3, bucket)
    vault = tmp_path / "vault"
    assert cli("init", vault, env=env).returncode == 0
    src = _files(tmp_path / "src", 3, 2000)
    with (src / "big.bin").open("wb") as f:
        for _ in range(24):
            f.write(os.urandom(1024 * 1024))  # multipart: 3 parts
    client = s3.client()
    proc = subprocess.Popen([*CLI, "ingest", str(vault), str(src), "-a", "USB 1"],
                            env=cli_env(env), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while not client.list_multipart_uploads(Bucket=bucket).get("Uploads"):
        assert proc.poll() is None and time.monotonic() < deadline, "ingest ended first"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not any("big" in k for k in s3.keys(bucket))
    code, report = _verify(vault, env)
    assert code == 0  # orphans and staging files are warnings
    r = cli("ingest", vault, src, "-a", "USB 1", "--json", env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["new_originals"] == 4
    assert len(s3.keys(bucket)) == 4  # nothing lost, nothing twice
    code, report = _verify(vault, env)
    assert code == 0 and report["ok"] and report["originals"] == 4
    assert report["warnings"] == [], report["warnings"]
    # moto dates every multipart upload 2010, so the killed one counts as stale and is gone
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert [p for p in (vault / ".s3-staging").rglob("*") if p.is_file()] == []


def test_two_ingests_at_once_into_one_bucket(s3: S3, tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    env = _env(s3, bucket)
    vault = tmp_path / "vault"
    assert cli("init", vault, env=env).returncode == 0
    shared = [os.urandom(3000 + i) for i in range(15)]
    # under two parts: one conditional PutObject each. (A multipart one would race with the
    # other ingest's cleanup_stale, which aborts uploads older than a day: moto dates every
    # upload 2010, so there it aborts the live upload of the other ingest.)
    big = os.urandom(12 * 1024 * 1024)
    for s in ("s1", "s2"):
        (tmp_path / s).mkdir()
        for i, d in enumerate(shared):
            (tmp_path / s / f"f{i}.bin").write_bytes(d)
        (tmp_path / s / "big.bin").write_bytes(big)
        (tmp_path / s / "own.bin").write_bytes(os.urandom(5000))
    procs = [subprocess.Popen([*CLI, "ingest", str(vault), str(tmp_path / s), "-a", s,
                               "--json"], env=cli_env(env), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for s in ("s1", "s2")]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    reports = [json.loads(o) for o, _ in outs]
    assert sum(r["new_originals"] for r in reports) == 18
    assert len(s3.keys(bucket)) == 18
    code, report = _verify(vault, env)
    assert code == 0 and report["ok"] and report["originals"] == 18, report


# -- credentials and secrets ---------------------------------------------------------------
@pytest.fixture
def auth_s3() -> Iterator[tuple[str, dict[str, str]]]:
    """A moto_server that checks signatures (INITIAL_NO_AUTH_ACTION_COUNT: the first few
    requests make an IAM user and its key), with a bucket that user may use."""
    import boto3

    proc, endpoint = start_moto({"INITIAL_NO_AUTH_ACTION_COUNT": "4"})
    try:
        try:
            iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                               aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
                               aws_secret_access_key="bootstrap")
            iam.create_user(UserName="u")
            key = iam.create_access_key(UserName="u")["AccessKey"]
            iam.put_user_policy(UserName="u", PolicyName="all", PolicyDocument=json.dumps({
                "Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
            good = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"],
                    "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
            boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                         aws_access_key_id=good["AWS_ACCESS_KEY_ID"],
                         aws_secret_access_key=good["AWS_SECRET_ACCESS_KEY"]
                         ).create_bucket(Bucket="auth-bucket")
        except Exception as exc:  # an older moto without auth in server mode
            pytest.skip(f"moto cannot enforce credentials here: {exc}")
        yield endpoint, good
    finally:
        proc.terminate()
        proc.wait(10)


def test_wrong_credentials_are_one_line_without_the_secret(auth_s3: tuple[str, dict[str, str]],
                                                           tmp_path: Path) -> None:
    endpoint, good = auth_s3
    base = {"AWS_DEFAULT_REGION": "us-east-1", "STRONGROOM_BLOB_STORE": "s3://auth-bucket/b",
            "STRONGROOM_S3_ENDPOINT_URL": endpoint}
    bad = {**base, "AWS_ACCESS_KEY_ID": good["AWS_ACCESS_KEY_ID"],
           "AWS_SECRET_ACCESS_KEY": "wrong-Secret-hunter2"}
    started = time.monotonic()
    r = cli("init", tmp_path / "v", env=bad)
    assert r.returncode == 2 and "access refused" in r.stderr
    assert "AWS_SECRET_ACCESS_KEY" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "hunter2" not in r.stdout + r.stderr and not (tmp_path / "v").exists()
    r = cli("doctor", "--json", env=bad)
    assert r.returncode == 1 and "hunter2" not in r.stdout + r.stderr
    assert not _checks(r.stdout)["blob store"]["ok"]
    assert time.monotonic() - started < 60
    # the right key works, and a vault made with it refuses the wrong one later
    assert cli("init", tmp_path / "v", env={**base, **good}).returncode == 0
    r = cli("verify", tmp_path / "v", env=bad)
    assert r.returncode == 2 and "access refused" in r.stderr and "hunter2" not in r.stderr


def test_no_secret_in_any_output(s3: S3, postgres_url: str, tmp_path: Path) -> None:
    pg_secret = "Pg-Secret-7731"
    db_url = postgres_url.replace("postgres@", f"postgres:{pg_secret}@")  # trust auth
    aws_secret = "Aws-Secret-4419"
    bucket = s3.new_bucket()
    env = {**_env(s3, bucket), "AWS_SECRET_ACCESS_KEY": aws_secret,
           "STRONGROOM_DATABASE_URL": db_url}
    vault = tmp_path / "vault"
    src = _files(tmp_path / "src", 2)
    runs = [cli("doctor", "--json", env=env), cli("doctor", env=env),
            cli("init", vault, env=env),
            cli("ingest", vault, src, "-a", "USB 1", "--json", env=env),
            cli("verify", vault, "--json", env=env), cli("stats", vault, "--json", env=env),
            cli("doctor", vault, "--json", env=env), cli("doctor", vault, env=env),
            # failures: no bucket, nothing listening, no database
            cli("doctor", env={**env, "STRONGROOM_BLOB_STORE": "s3://no-such-bucket-9/b"}),
            cli("init", tmp_path / "v2", env={**env, "STRONGROOM_BLOB_STORE":
                                              "s3://no-such-bucket-9/b"}),
            cli("doctor", env={**env, "STRONGROOM_S3_ENDPOINT_URL":
                               f"http://127.0.0.1:{free_port()}",
                               "STRONGROOM_DATABASE_URL": db_url.rsplit("/", 1)[0]
                               + "/no_such_db"}),
            cli("verify", vault, env={**env, "STRONGROOM_PASSPHRASE": "wrong " + PASSPHRASE})]
    assert [r.returncode for r in runs[:8]] == [0] * 8, [(r.args, r.stderr) for r in runs]
    for r in runs:
        text = r.stdout + r.stderr
        for secret in (pg_secret, aws_secret, PASSPHRASE):
            assert secret not in text, (r.args, secret, text[:500])
    assert "***" in runs[0].stdout  # the database URL is shown, its password hidden


def test_doctor_hides_a_password_given_as_a_query_parameter() -> None:
    url = f"postgresql+psycopg://someone@127.0.0.1:{free_port()}/db?password=Hunter2-q"
    r = cli("doctor", "--json", env={"STRONGROOM_DATABASE_URL": url})
    assert r.returncode == 1
    assert "Hunter2-q" not in r.stdout + r.stderr


@pytest.mark.xfail(strict=True, reason="BREAK: a database password holding an unescaped '@' "
                   "is half printed by doctor (and by init's catalogue error)")
def test_a_password_with_an_at_sign_is_not_half_printed(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://someone:pass@Word-tail9@127.0.0.1:{free_port()}/db"
    for r in (cli("doctor", env={"STRONGROOM_DATABASE_URL": url}),
              cli("init", tmp_path / "v", env={"STRONGROOM_DATABASE_URL": url})):
        assert r.returncode != 0
        assert "Word-tail9" not in r.stdout + r.stderr, r.stdout + r.stderr


# -- endpoints and clusters that misbehave (results of the `slow` fixture) -----------------
def test_doctor_against_a_silent_s3_endpoint_returns(slow: dict[str, _Run]) -> None:
    run = slow["s3 hang doctor"].result()
    assert not run.timed_out, f"killed, still running after {run.elapsed:.0f} s"
    assert run.proc.returncode == 1 and "cannot reach" in _check(run, "blob store")["found"]


def test_doctor_against_a_garbage_s3_endpoint(slow: dict[str, _Run]) -> None:
    run = slow["s3 garbage doctor"].result()
    assert not run.timed_out and run.proc.returncode == 1, (run.elapsed, run.err)
    check = _check(run, "blob store")
    assert not check["ok"] and "Traceback" not in run.err
    assert "hostile-secret-Zq81" not in run.out + run.err


def test_doctor_against_a_silent_dask_port_returns(slow: dict[str, _Run]) -> None:
    run = slow["dask hang doctor"].result()
    assert not run.timed_out, f"killed, still running after {run.elapsed:.0f} s"
    assert run.proc.returncode == 1 and not _check(run, "executor")["ok"]


def test_process_against_a_silent_dask_port_returns(slow: dict[str, _Run]) -> None:
    run = slow["dask hang process"].result()
    assert not run.timed_out, f"killed, still running after {run.elapsed:.0f} s"
    assert run.proc.returncode == 2 and "STRONGROOM_EXECUTOR" in run.out + run.err


def test_doctor_against_a_garbage_dask_port(slow: dict[str, _Run]) -> None:
    run = slow["dask garbage doctor"].result()
    assert not run.timed_out
    assert "unexpected" not in run.err and "Traceback" not in run.err, run.err[-800:]
    assert run.proc.returncode == 1 and not _check(run, "executor")["ok"]


def test_process_against_a_garbage_dask_port(slow: dict[str, _Run]) -> None:
    run = slow["dask garbage process"].result()
    assert not run.timed_out
    assert "unexpected" not in run.out + run.err and "Traceback" not in run.err, run.err[-800:]
    assert run.proc.returncode == 2 and "STRONGROOM_EXECUTOR" in run.out + run.err


def test_doctor_reports_a_cluster_without_workers(slow: dict[str, _Run]) -> None:
    run = slow["no workers doctor"].result()
    assert not run.timed_out and run.proc.returncode == 1, run.err
    check = _check(run, "executor")
    assert not check["ok"] and "0 worker(s)" in check["found"]


def test_process_on_a_cluster_without_workers_returns(slow: dict[str, _Run]) -> None:
    run = slow["no workers process"].result()
    assert not run.timed_out, f"killed, still running after {run.elapsed:.0f} s"
    assert run.proc.returncode != 0 and "worker" in run.out + run.err
