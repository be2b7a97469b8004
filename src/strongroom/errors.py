"""The exceptions Strongroom raises on purpose, each with a message fit to show a user.

The CLI prints `str(error)` as one line and exits with `error.exit_code`; the web apps (later)
turn them into 4xx pages. Anything else escaping is a bug.
"""

from __future__ import annotations


class StrongroomError(Exception):
    """Base class: a clear, one-line problem the user can act on."""

    exit_code = 2


class NotAVault(StrongroomError):
    """The folder is missing or holds no Strongroom vault."""


class VaultExists(StrongroomError):
    """`init` refuses to overwrite an existing vault."""


class WrongPassphrase(StrongroomError):
    """The passphrase does not unlock the vault's keys."""


class UnsealTooCostly(StrongroomError):
    """The keys' scrypt work factor is more than this machine accepts right now: the
    passphrase may well be right (a loaded or slower machine than the one that sealed it)."""


class VaultSealed(StrongroomError):
    """An operation needs the private keys but the vault was opened without them."""


class SourceError(StrongroomError):
    """An ingest source (folder, drive, image) is missing or unreadable."""


class StorageFull(StrongroomError):
    """The blob store or catalogue ran out of space; nothing half-written is kept."""


class UnknownOriginal(StrongroomError):
    """No original with that SHA-256 (or prefix) is in the catalogue."""


class IntegrityError(StrongroomError):
    """A check found evidence that something changed: exit code 1, not a usage error."""

    exit_code = 1


class BlobMissing(IntegrityError):
    """A blob the catalogue points to is not in the store."""


class RangeNotSatisfiable(StrongroomError):
    """A byte range outside a derivative's plaintext (the web app answers 416)."""


class MediaError(StrongroomError):
    """An external media tool failed on a file (used by the pipeline)."""


class WrongShare(StrongroomError):
    """A SLIP-39 share is mistyped, damaged, repeated, altered or of another share set; the
    message names it by its position as given ("share 2") wherever that can be told."""


class NotEnoughShares(StrongroomError):
    """Fewer distinct valid shares were given than the share set's threshold."""
