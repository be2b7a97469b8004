"""The S3-compatible blob store (the server shape): the same age ciphertext under the same
keyed names, as objects `<prefix>/<first two hex>/<name>` of one bucket, through s3fs.

What holds as in the local store (`blobs.LocalBlobStore`):

- **Invisible until whole.** A blob is staged in a private local file (the vault folder's
  `.s3-staging`, per process and flocked, so a killed process's leftovers are found), then
  uploaded: in one `PutObject` when small, else as a multipart upload of `PART_SIZE` parts,
  which S3 shows under its name only once `CompleteMultipartUpload` succeeds. A process killed
  half-way leaves an unfinished multipart upload, never an object; `cleanup_stale` aborts
  those of this store's prefix that are older than a day (a younger one may be a live
  upload of another process, which S3 cannot tell apart).
- **A name is never overwritten.** Every upload is conditional (`If-None-Match: *`): if the
  name exists, the upload is refused by the server itself and the blob already there is
  kept, even when two processes race for it.
- **Bounded memory.** At most `PART_SIZE` × `UPLOAD_CONCURRENCY` of a blob is in memory
  while it uploads, whatever its size; reads go through s3fs's read-ahead buffer of
  `READ_BLOCK` bytes.

Credentials come from the standard AWS chain (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`,
a profile, an instance role), read by botocore; the endpoint of a non-AWS service from
`STRONGROOM_S3_ENDPOINT_URL`. An unreachable endpoint, a missing bucket or a refused
credential is one message naming the setting, never a traceback.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, NoReturn, cast

from strongroom.errors import BlobMissing, StorageFull, StrongroomError
from strongroom.vault.blobs import LocalBlobStore, StagedBlob, check_name

#: multipart part size: S3's minimum is 5 MiB; blobs under two parts go in one PutObject
PART_SIZE = 8 * 1024 * 1024
#: parts in flight at once (the memory bound is PART_SIZE times this)
UPLOAD_CONCURRENCY = 4
#: s3fs's read-ahead buffer for `open`
READ_BLOCK = 4 * 1024 * 1024
#: an unfinished multipart upload older than this is a dead process's, and aborted
STALE_UPLOAD_S = 24 * 3600
#: S3 allows at most 10,000 parts: a blob larger than PART_SIZE × this gets larger parts
MAX_PARTS = 9_000
#: how long one request may wait for an answer, and how often a failed one is tried again
#: (botocore's attempts × s3fs's retries): a silent endpoint costs at most a few minutes of
#: a data operation, and `check` (every command's first request) at most ~10 s
READ_TIMEOUT_S, ATTEMPTS, RETRIES = 30, 2, 2
CHECK_TIMEOUT_S = 5

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
_KEY = re.compile(r"(?:.*/)?([0-9a-f]{2})/([0-9a-f]{64})")


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` → (bucket, "some/prefix"); a clear error for anything else."""
    if not url.startswith("s3://"):
        raise StrongroomError("STRONGROOM_BLOB_STORE: not an S3 URL (use s3://bucket/prefix)")
    bucket, _, prefix = url[len("s3://"):].partition("/")
    if "@" in bucket or ":" in bucket:  # never echoed: it may hold a key and its secret
        raise StrongroomError("STRONGROOM_BLOB_STORE: the bucket part holds '@' or ':'; "
                              "credentials go in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                              "never in the URL")
    if not _BUCKET.fullmatch(bucket):
        raise StrongroomError(f"STRONGROOM_BLOB_STORE: {bucket!r} is not an S3 bucket name "
                              "(3–63 of a-z, 0-9, '.', '-')")
    prefix = prefix.strip("/")
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise StrongroomError(f"STRONGROOM_BLOB_STORE: bad prefix {prefix!r}")
    return bucket, prefix


class S3BlobStore:
    """Blobs in `s3://bucket/prefix` (see the module docstring)."""

    def __init__(self, url: str, *, endpoint_url: str = "", staging: Path | None = None,
                 stale_after: float = STALE_UPLOAD_S) -> None:
        self.url = url.rstrip("/")
        self.bucket, self.prefix = parse_s3_url(url)
        self.endpoint_url = endpoint_url
        self.stale_after = stale_after
        self._staging = LocalBlobStore(staging) if staging is not None else None
        self._fs: Any = None

    def __repr__(self) -> str:
        return f"S3BlobStore({self.url!r}, endpoint_url={self.endpoint_url!r})"

    # -- the connection ------------------------------------------------------------------
    def _connect(self, timeout: float, attempts: int, retries: int) -> Any:
        import s3fs

        fs = s3fs.S3FileSystem(
            endpoint_url=self.endpoint_url or None, use_listings_cache=False,
            skip_instance_cache=True, max_concurrency=UPLOAD_CONCURRENCY,
            default_block_size=READ_BLOCK,
            config_kwargs={"connect_timeout": min(timeout, 10), "read_timeout": timeout,
                           "retries": {"max_attempts": attempts, "mode": "standard"}})
        fs.retries = retries  # s3fs's own retries, around botocore's attempts
        return fs

    @property
    def fs(self) -> Any:
        if self._fs is None:
            self._fs = self._connect(READ_TIMEOUT_S, ATTEMPTS, RETRIES)
        return self._fs

    def _key(self, name: str) -> str:
        check_name(name)
        return "/".join(p for p in (self.bucket, self.prefix, name[:2], name) if p)

    def _where(self) -> str:
        return self.url + (f" (endpoint {self.endpoint_url})" if self.endpoint_url else "")

    def _fail(self, exc: BaseException, doing: str) -> NoReturn:
        """One clear line for what went wrong talking to S3, naming the setting to look at."""
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        name = type(exc).__name__
        if isinstance(exc, PermissionError) or "AccessDenied" in text or "InvalidAccessKey" in \
                text or "SignatureDoesNotMatch" in text or "credentials" in text.lower():
            raise StrongroomError(f"blob store {self._where()}: {doing}: access refused "
                                  f"({text}); check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
                                  ) from None
        if "ReadTimeout" in name or "Read timeout" in text:
            raise StrongroomError(f"blob store {self._where()}: {doing}: cannot reach the "
                                  f"endpoint (it does not answer: {text}); check "
                                  "STRONGROOM_S3_ENDPOINT_URL") from None
        if "EndpointConnectionError" in name or "Could not connect" in text or \
                "ConnectTimeout" in name or ("connect" in text.lower() and "endpoint" in \
                text.lower()):
            raise StrongroomError(f"blob store {self._where()}: {doing}: cannot reach the "
                                  f"endpoint ({text}); check STRONGROOM_S3_ENDPOINT_URL"
                                  ) from None
        if "NoSuchBucket" in text or "bucket does not exist" in text.lower():
            raise StrongroomError(f"blob store {self._where()}: no bucket {self.bucket!r}; "
                                  "check STRONGROOM_BLOB_STORE") from None
        if "EntityTooLarge" in text or "QuotaExceeded" in text:
            raise StorageFull(f"blob store {self._where()} is full: {text}") from None
        raise StrongroomError(f"blob store {self._where()}: {doing}: {text}") from None

    def check(self) -> str:
        """That the bucket answers to these credentials (start-up, `doctor`): what was found."""
        quick = self._connect(CHECK_TIMEOUT_S, 1, 1)
        try:
            quick.call_s3("head_bucket", Bucket=self.bucket)
        except FileNotFoundError:
            raise StrongroomError(f"blob store {self._where()}: no bucket {self.bucket!r}; "
                                  "check STRONGROOM_BLOB_STORE") from None
        except Exception as exc:  # botocore's and aiohttp's errors, whatever they are
            self._fail(exc, "checking the bucket")
        return f"bucket {self.bucket!r} reachable at {self.endpoint_url or 'AWS'}"

    def is_empty(self) -> bool:
        """Whether no blob is stored under this prefix (a new vault must not share one)."""
        return next(iter(self.names()), None) is None

    # -- staging (a private local file) -----------------------------------------------
    def _local(self) -> LocalBlobStore:
        if self._staging is None:
            raise StrongroomError(f"blob store {self._where()}: opened for reading only")
        return self._staging

    def stage(self) -> StagedBlob:
        return self._local().stage()

    def discard(self, staged: StagedBlob) -> None:
        self._local().discard(staged)

    def commit(self, staged: Iterable[tuple[StagedBlob, str]]) -> list[bool]:
        """Upload each staged blob under its name, unless the name exists (False: the blob
        already there is kept). A blob is visible only once its upload is complete."""
        local = self._local()
        items = list(staged)
        created: list[bool] = []
        try:
            for blob, name in items:
                path = local.staged_path(blob)
                blob.file.flush()
                try:
                    self.fs.put_file(str(path), self._key(name), mode="create",
                                     chunksize=part_size(blob.size),
                                     max_concurrency=UPLOAD_CONCURRENCY)
                    created.append(True)
                except FileExistsError:
                    created.append(False)
                except StrongroomError:
                    raise
                except Exception as exc:
                    self._fail(exc, f"storing blob {name}")
        finally:
            for blob, _ in items:
                local.discard(blob)
        return created

    def replace(self, staged: StagedBlob, name: str) -> None:
        """Upload a staged blob under `name` over what is there (a repair)."""
        local = self._local()
        try:
            staged.file.flush()
            self.fs.put_file(str(local.staged_path(staged)), self._key(name),
                             chunksize=part_size(staged.size),
                             max_concurrency=UPLOAD_CONCURRENCY)
        except StrongroomError:
            raise
        except Exception as exc:
            self._fail(exc, f"repairing blob {name}")
        finally:
            local.discard(staged)

    # -- reading -------------------------------------------------------------------------
    def exists(self, name: str) -> bool:
        """An object under exactly this key (a 'directory' of keys below it is not one)."""
        key = self._key(name)
        try:
            return bool(self.fs.info(key).get("type") == "file")
        except FileNotFoundError:
            return False
        except Exception as exc:
            self._fail(exc, f"looking for blob {name}")

    def open(self, name: str) -> BinaryIO:
        key = self._key(name)
        try:
            if not self.exists(name):
                raise FileNotFoundError(key)
            raw = self.fs.open(key, "rb", block_size=READ_BLOCK, cache_type="readahead")
        except FileNotFoundError:
            raise BlobMissing(f"blob {name} is missing from {self.url}") from None
        except StrongroomError:
            raise
        except Exception as exc:
            self._fail(exc, f"reading blob {name}")
        return cast(BinaryIO, _Reader(raw, self, name))

    def size(self, name: str) -> int:
        key = self._key(name)
        try:
            return int(self.fs.info(key)["size"])
        except FileNotFoundError:
            raise BlobMissing(f"blob {name} is missing from {self.url}") from None
        except Exception as exc:
            self._fail(exc, f"reading blob {name}")

    def names(self) -> Iterator[str]:
        root = "/".join(p for p in (self.bucket, self.prefix) if p)
        try:
            found = self.fs.find(root)
        except FileNotFoundError:
            return
        except Exception as exc:
            self._fail(exc, "listing the blobs")
        skip = len(root) + 1
        for key in sorted(found):
            m = _KEY.fullmatch(key[skip:])
            if m and m.group(2).startswith(m.group(1)) and "/" not in key[skip:][3:]:
                yield m.group(2)

    # -- housekeeping ----------------------------------------------------------------------
    def unfinished_uploads(self) -> list[dict[str, Any]]:
        """The multipart uploads under this store's prefix that were never completed."""
        out: list[dict[str, Any]] = []
        params: dict[str, Any] = {"Bucket": self.bucket}
        if self.prefix:
            params["Prefix"] = self.prefix + "/"
        try:
            while True:
                page = self.fs.call_s3("list_multipart_uploads", **params)
                out += page.get("Uploads", []) or []
                if not page.get("IsTruncated"):
                    return out
                params["KeyMarker"] = page.get("NextKeyMarker")
                params["UploadIdMarker"] = page.get("NextUploadIdMarker")
        except Exception as exc:
            self._fail(exc, "listing unfinished uploads")

    def cleanup_stale(self) -> int:
        """Remove what killed processes left: their local staging files, and multipart uploads
        under this prefix begun more than `stale_after` seconds ago. Returns how many."""
        removed = self._staging.cleanup_stale() if self._staging is not None else 0
        now = time.time()
        for upload in self.unfinished_uploads():
            begun = upload.get("Initiated")
            age = now - begun.timestamp() if begun is not None else float("inf")
            if age < self.stale_after:
                continue
            try:
                self.fs.call_s3("abort_multipart_upload", Bucket=self.bucket,
                                Key=upload["Key"], UploadId=upload["UploadId"])
                removed += 1
            except FileNotFoundError:
                continue  # another process aborted it first
            except Exception as exc:
                self._fail(exc, "aborting an unfinished upload")
        return removed

    def staging_files(self) -> list[Path]:
        return self._staging.staging_files() if self._staging is not None else []

    def close(self) -> None:
        if self._staging is not None:
            self._staging.close()
        if self._fs is not None:
            with contextlib.suppress(Exception):
                self._fs.close_session(self._fs.loop, self._fs.s3)
            self._fs = None


def part_size(size: int) -> int:
    """The multipart part size for a blob of `size` bytes: PART_SIZE, or larger (whole MiB)
    so that it takes at most MAX_PARTS parts."""
    need = -(-size // MAX_PARTS)
    mib = 1024 * 1024
    return max(PART_SIZE, -(-need // mib) * mib)


class _Reader:
    """An object being read: what goes wrong reading it (the object deleted or replaced
    under us, the endpoint gone) is a `BlobMissing` or one clear `StrongroomError`, as with a
    local file, never a bare exception of s3fs or botocore."""

    def __init__(self, raw: Any, store: S3BlobStore, name: str) -> None:
        self._raw, self._store, self._name = raw, store, name

    def _call(self, what: str, *args: Any) -> Any:
        try:
            return getattr(self._raw, what)(*args)
        except FileNotFoundError:
            raise BlobMissing(f"blob {self._name} is missing from {self._store.url} (it went "
                              "while being read)") from None
        except StrongroomError:
            raise
        except Exception as exc:
            self._store._fail(exc, f"reading blob {self._name}")

    def read(self, size: int = -1) -> bytes:
        return bytes(self._call("read", size))

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return int(self._call("seek", offset, whence))

    def tell(self) -> int:
        return int(self._raw.tell())

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._raw.close()

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["PART_SIZE", "S3BlobStore", "parse_s3_url", "part_size"]
