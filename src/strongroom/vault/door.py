"""What passes through the vault's door: blobs going in, plaintext coming out.

`Vault.store` hands back a `Stored` (hashed, encrypted, named, not yet visible);
`Vault.open_original` / `open_derivative` / `exporting` hand out an `Access`, which decrypts,
checks every digest against the catalogue and remembers what left. The custody event is
appended by the door when the `with` block ends, so a caller cannot forget it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from strongroom.errors import IntegrityError, StrongroomError
from strongroom.vault.hashing import Digests

if TYPE_CHECKING:
    from strongroom.catalogue.models import Derivative, Original
    from strongroom.vault.blobs import StagedBlob
    from strongroom.vault.chunks import ChunkRef

#: Why plaintext leaves the vault; each is the custody action recorded for it.
PURPOSES = ("downloaded", "viewed", "revealed", "exported", "published")

Sink = Callable[[bytes], object]
Decrypt = Callable[..., Digests]


@dataclass
class Stored:
    """One blob staged in the vault: encrypted, hashed and named, invisible until
    `Vault.commit`. `digests` are of the plaintext, read once."""

    digests: Digests
    name: str
    staged: StagedBlob

    @property
    def sha256(self) -> str:
        return self.digests.sha256


@dataclass
class Access:
    """Decryptions made for one purpose. Each read checks the plaintext's SHA-256 and size
    against the catalogue; what was read (completely or not) is what the door records."""

    purpose: str
    to: str
    _decrypt: Decrypt
    #: a derivative's chunks ([]: stored as one blob), from the catalogue
    _chunks: Callable[[Any], list[ChunkRef]] = lambda _row: []
    originals: list[dict[str, Any]] = field(default_factory=list)
    derivatives: list[dict[str, Any]] = field(default_factory=list)
    #: Set by `Opened`: the one row this access was opened for, and the only one it reads
    #: (its event names that row's original; anything else read through it would be hidden).
    only: Any = None

    def _check_row(self, row: Any) -> None:
        if self.only is not None and row is not self.only and (
                type(row) is not type(self.only) or row.sha256 != self.only.sha256):
            raise StrongroomError(
                f"this access was opened for {self.only.sha256} only; open "
                f"{row.sha256} through the vault so that its own record shows it")

    def original(self, o: Original, sink: Sink | None, *, sha512: bool = False,
                 md5: bool = True) -> Digests:
        """Decrypt `o` into `sink`; raises `IntegrityError` when it is not what was ingested."""
        self._check_row(o)
        entry = {"sha256": o.sha256, "bytes": 0, "complete": False}
        self.originals.append(entry)
        d = self._read(o.blob_name, f"original {o.sha256}", sink, entry, sha512=sha512, md5=md5)
        if d.sha256 != o.sha256 or d.size != o.size:
            entry["decrypted_sha256"] = d.sha256  # what really left: someone else's content?
            raise IntegrityError(f"original {o.sha256} decrypted to different content "
                                 f"(sha256 {d.sha256}, {d.size} bytes); run `strongroom verify`")
        entry["complete"] = True
        return d

    def derivative(self, d: Derivative, sink: Sink | None, *, sha512: bool = False
                   ) -> Digests:
        self._check_row(d)
        what = f"{d.kind} of {d.original_sha256}"
        entry = {"sha256": d.sha256, "original": d.original_sha256, "kind": d.kind,
                 "bytes": 0, "complete": False}
        self.derivatives.append(entry)
        chunks = self._chunks(d)
        if chunks:
            got = self._read_chunked(d, chunks, what, sink, entry, sha512=sha512)
        else:
            got = self._read(d.blob_name, what, sink, entry, sha512=sha512, md5=False)
        if got.sha256 != d.sha256 or got.size != d.size:
            entry["decrypted_sha256"] = got.sha256
            raise IntegrityError(f"{what} ({d.sha256}) decrypted to different content; run "
                                 "`strongroom verify`")
        entry["complete"] = True
        return got

    def _read_chunked(self, d: Derivative, chunks: list[ChunkRef], what: str,
                      sink: Sink | None, entry: dict[str, Any], *, sha512: bool) -> Digests:
        """A chunked derivative whole (an export, a view): each chunk in order, each checked
        against its own SHA-256; the digests returned are of the whole plaintext."""
        from strongroom.vault.chunks import covering
        from strongroom.vault.hashing import MultiHash

        whole = MultiHash(sha512=sha512, md5=False)

        def both(piece: bytes) -> None:
            whole.update(piece)
            if sink is not None:
                sink(piece)

        for c in covering(chunks, d.size, 0, d.size):
            part = f"{what}, chunk {c.index}"
            got = self._read(c.blob_name, part, both, entry, sha512=False, md5=False)
            if got.sha256 != c.sha256 or got.size != c.size:
                entry["decrypted_sha256"] = got.sha256
                raise IntegrityError(f"{part} decrypted to different content; run "
                                     "`strongroom verify`")
        return whole.digests()

    def _read(self, blob_name: str, what: str, sink: Sink | None, entry: dict[str, Any], *,
              sha512: bool, md5: bool) -> Digests:
        def counted(chunk: bytes) -> None:
            if sink is not None:
                sink(chunk)
            entry["bytes"] += len(chunk)  # after the sink took it: what really left

        return self._decrypt(blob_name, counted, sha512=sha512, md5=md5, what=what)

    def summary(self) -> dict[str, Any]:
        """What an export's event says the door decrypted: distinct items (a poster read for
        the report and again for the bag counts once), bytes read in all, and one digest
        over the sorted SHA-256 of every distinct plaintext, which anyone can recompute from
        the bag's manifests."""
        import hashlib

        originals = {e["sha256"] for e in self.originals}
        derivatives = {e["sha256"] for e in self.derivatives}
        listing = "".join(f"{d}\n" for d in sorted(originals | derivatives))
        return {"decrypted_originals": len(originals),
                "decrypted_derivatives": len(derivatives),
                "decrypted_bytes": self.bytes,
                "decrypted_sha256_list_sha256": hashlib.sha256(listing.encode()).hexdigest()}

    @property
    def bytes(self) -> int:
        return sum(e["bytes"] for e in self.originals + self.derivatives)

    def complete(self) -> bool:
        return all(e["complete"] for e in self.originals + self.derivatives)


@dataclass
class Opened:
    """One original or derivative opened through the door: `copy_to(sink)` decrypts it all
    into `sink` and checks its digest; `row` is its catalogue row."""

    row: Any
    access: Access

    def __post_init__(self) -> None:
        self.access.only = self.row

    def copy_to(self, sink: Sink | None) -> Digests:
        from strongroom.catalogue.models import Original

        if isinstance(self.row, Original):
            return self.access.original(self.row, sink)
        return self.access.derivative(self.row, sink)


def check_purpose(purpose: str) -> str:
    if purpose not in PURPOSES:
        raise StrongroomError(f"unknown purpose {purpose!r} (one of {', '.join(PURPOSES)})")
    return purpose
