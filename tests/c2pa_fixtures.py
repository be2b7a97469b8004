"""A private CA and an organisation's signing certificate for C2PA tests (what a real NGO
would get from its own CA or a commercial one): `vault.credentials.throwaway_chain`."""

from __future__ import annotations

from pathlib import Path

from strongroom.vault.credentials import Chain, throwaway_chain


def make_chain(folder: Path, name: str = "Test NGO") -> Chain:
    return throwaway_chain(folder, name)
