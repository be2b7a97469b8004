"""Derivatives stored as separately sealed chunks, so a byte range decrypts only what it covers.

A video proxy is what the review app streams with HTTP Range: a seek an hour into a proxy
sealed as one age blob would first decrypt everything before it (`benchmarks/seek.py`
measures that anchor). So the worker cuts a proxy's plaintext into fixed-size chunks and
seals each as its own age blob; the runner stores them like any blob (keyed names, staged,
synced, linked into place) and the catalogue lists them in `derivative_chunk`. The derivative
keeps its identity: the SHA-256 and size of the whole plaintext, which the chunks in order
must still add up to (`verify` checks both, per chunk and whole).

`CHUNK_SIZE` is 1 MiB: a seek then decrypts 1–3 chunks for the ~2 MB a browser asks for
(~10 ms with pyrage on this 2-core machine), while the per-blob cost stays small (an age
header and an X25519 unwrap, ~250 bytes and ~0.1 ms per chunk; a one-hour 720p proxy is a few
hundred files). Smaller chunks buy nothing a person notices and multiply files; 4 MiB would
still be far inside the 0.5 s goal but makes every short seek decrypt 4 MiB.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from strongroom.errors import IntegrityError, StrongroomError

#: Plaintext bytes per chunk (the last chunk of a derivative may be shorter).
CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True)
class SealedChunk:
    """One chunk of a file, sealed: where it sits in the plaintext, its digest, its ciphertext."""

    index: int
    offset: int
    size: int
    sha256: str
    ciphertext: bytes


@dataclass(frozen=True)
class SealedChunks:
    """A whole file sealed as chunks: the digest and size of the whole plaintext, and each
    chunk. What a worker hands back for a chunked derivative (only ciphertext crosses)."""

    sha256: str
    size: int
    chunk_size: int
    chunks: list[SealedChunk] = field(default_factory=list)


@dataclass(frozen=True)
class ChunkRef:
    """A chunk as the catalogue lists it (`derivative_chunk`)."""

    index: int
    offset: int
    size: int
    sha256: str
    blob_name: str


def seal_chunks(path: Path, recipient: str, chunk_size: int = CHUNK_SIZE) -> SealedChunks:
    """Cut `path` into `chunk_size` pieces and seal each to `recipient` (in memory, with
    pyrage: a chunk is too small for the `age` binary's start-up to pay). An empty file is one
    empty chunk, so every chunked derivative has a first blob."""
    import pyrage
    from pyrage import x25519

    if chunk_size <= 0:
        raise StrongroomError(f"chunk size must be positive, not {chunk_size}")
    to = [x25519.Recipient.from_str(recipient)]
    whole = hashlib.sha256()
    chunks: list[SealedChunk] = []
    offset = 0
    with open(path, "rb") as f:
        while True:
            data = f.read(chunk_size)
            if not data and chunks:
                break
            whole.update(data)
            try:
                cipher = pyrage.encrypt(data, to)
            except pyrage.EncryptError as exc:
                raise StrongroomError(f"cannot seal {path.name}: {exc}") from None
            chunks.append(SealedChunk(len(chunks), offset, len(data),
                                      hashlib.sha256(data).hexdigest(), cipher))
            offset += len(data)
            if len(data) < chunk_size:
                break
    return SealedChunks(whole.hexdigest(), offset, chunk_size, chunks)


def covering(chunks: list[ChunkRef], size: int, start: int, end: int) -> list[ChunkRef]:
    """The chunks that hold plaintext bytes [start, end) of a derivative of `size` bytes,
    after checking that the list tiles [0, size) exactly: a chunk list edited by hand must
    not serve other bytes at an offset."""
    ordered = sorted(chunks, key=lambda c: c.index)
    at = 0
    for i, c in enumerate(ordered):
        if c.index != i or c.offset != at or c.size < 0:
            raise IntegrityError("the derivative's chunk list is damaged (gaps, overlaps or "
                                  "renumbering); run `strongroom verify`")
        at += c.size
    if at != size:
        raise IntegrityError(f"the derivative's chunks add up to {at} bytes, not its {size}; "
                              "run `strongroom verify`")
    return [c for c in ordered if c.offset < end and c.offset + c.size > start]
