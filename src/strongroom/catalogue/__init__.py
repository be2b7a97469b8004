"""The catalogue: what the vault knows about its originals, and the custody log (SQLAlchemy).

Only what the CLI needs before its heavy imports lives here."""

from __future__ import annotations

from pathlib import Path

#: The first 16 bytes of every plaintext SQLite database; an SQLCipher file starts with salt.
PLAIN_SQLITE_HEADER = b"SQLite format 3\x00"


def is_plain_sqlite(path: Path) -> bool:
    """Whether `path` is an unencrypted SQLite database (by its header)."""
    try:
        with path.open("rb") as f:
            return f.read(16) == PLAIN_SQLITE_HEADER
    except OSError:
        return False
