"""Multi-hash in one pass: SHA-256 (primary), MD5 (legacy forensic tools), SHA-512 (optional).

`fan_out` feeds every chunk of one read to several consumers running in their own threads.
hashlib and file/pipe writes release the GIL on large buffers, so SHA-256, MD5 and the
encryptor really do run at the same time on different cores.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

CHUNK = 1024 * 1024
_QUEUE_DEPTH = 4  # chunks in flight per consumer: bounds memory to ~depth × CHUNK × consumers


@dataclass(frozen=True)
class Digests:
    sha256: str
    md5: str | None  # None when not asked for (exports hash SHA-256 + SHA-512 only)
    size: int
    sha512: str | None = None


class MultiHash:
    """The set of digests Strongroom records for every original."""

    def __init__(self, sha512: bool = False, md5: bool = True) -> None:
        self._sha256 = hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False) if md5 else None
        self._sha512 = hashlib.sha512() if sha512 else None
        self.size = 0

    def updaters(self) -> list[Callable[[bytes], object]]:
        """One callable per algorithm, to run in parallel under `fan_out`."""
        ups: list[Callable[[bytes], object]] = [self._count, self._sha256.update]
        if self._md5 is not None:
            ups.append(self._md5.update)
        if self._sha512 is not None:
            ups.append(self._sha512.update)
        return ups

    def _count(self, chunk: bytes) -> None:
        self.size += len(chunk)

    def update(self, chunk: bytes) -> None:
        for up in self.updaters():
            up(chunk)

    def digests(self) -> Digests:
        return Digests(
            sha256=self._sha256.hexdigest(),
            md5=self._md5.hexdigest() if self._md5 is not None else None,
            size=self.size,
            sha512=self._sha512.hexdigest() if self._sha512 is not None else None,
        )


def fan_out(
    read: Callable[[int], bytes],
    consumers: Sequence[Callable[[bytes], object]],
    chunk_size: int = CHUNK,
) -> int:
    """Read until EOF and give every chunk to every consumer, each consumer in its own thread.

    Returns the number of bytes read. The first exception raised by a consumer is re-raised
    after all threads have stopped (a consumer that failed keeps draining so the reader never
    blocks on it).
    """
    queues: list[queue.Queue[bytes | None]] = [queue.Queue(_QUEUE_DEPTH) for _ in consumers]
    errors: list[BaseException] = []

    def work(q: queue.Queue[bytes | None], consume: Callable[[bytes], object]) -> None:
        failed = False
        while (item := q.get()) is not None:
            if failed:
                continue
            try:
                consume(item)
            except BaseException as exc:  # re-raised in the calling thread
                errors.append(exc)
                failed = True

    threads = [
        threading.Thread(target=work, args=pair, daemon=True)
        for pair in zip(queues, consumers, strict=True)
    ]
    for t in threads:
        t.start()
    total = 0
    try:
        while not errors and (chunk := read(chunk_size)):
            total += len(chunk)
            for q in queues:
                q.put(chunk)
    finally:
        for q in queues:
            q.put(None)
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    return total
