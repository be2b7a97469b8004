"""Ingest under hostile input (issue 10): colliding names, concurrent runs, the vault as its own
source, sources nested deeper than PATH_MAX, and a final checkpoint however the groups fall."""

from __future__ import annotations

import hashlib
import json
import os
import random
import stat
import unicodedata
from pathlib import Path

import pytest
from sqlalchemy import select

from conftest import cli, write
from strongroom.catalogue.models import (
    Sighting,
)
from strongroom.custody.verify import verify
from strongroom.ingest import ingest
from strongroom.ingest.source import path_bytes, path_text, shown, walk
from strongroom.vault import Vault


def raw_file(folder: Path, name: bytes, data: bytes) -> None:
    with open(os.path.join(os.fsencode(folder), name), "wb") as f:
        f.write(data)


def sightings(vault: Vault) -> dict[str, Sighting]:
    with vault.catalogue.read() as s:
        return {x.rel_path: x for x in s.scalars(select(Sighting))}


# -- names --------------------------------------------------------------------------------
def test_file_names_are_stored_injectively(vault: Vault, vault_path: Path,
                                           tmp_path: Path) -> None:
    """The issue's 7 files: a literal `clip\\xff.mp4` beside `clip<byte FF>.mp4` (and friends,
    and an NFC/NFD pair) all get their own path, whose bytes lead back to the very file."""
    src = tmp_path / "stick"
    src.mkdir()
    nfc = unicodedata.normalize("NFC", "café.mp4").encode()
    nfd = unicodedata.normalize("NFD", "café.mp4").encode()
    assert nfc != nfd
    names = [b"clip\\xff.mp4", b"clip\xff.mp4", b"clip\\\\xff.mp4", b"a\\b.mp4",
             b"plain.mp4", nfc, nfd]
    for i, name in enumerate(names):
        raw_file(src, name, f"content {i}".encode())
    r = cli("ingest", vault_path, src, "-a", "stick with colliding names", "--json")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    out = json.loads(r.stdout)
    assert (out["new_originals"], out["errors"]) == (7, 0)

    seen = sightings(vault)
    assert len(seen) == 7
    for rel, row in seen.items():
        data = (src / os.fsdecode(path_bytes(rel))).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row.original_sha256, rel
    assert {path_bytes(rel) for rel in seen} == set(names)
    # Plain UTF-8 names are recorded as they always were (older vaults still match).
    assert {"plain.mp4", nfc.decode(), nfd.decode()} <= set(seen)

    again = json.loads(cli("ingest", vault_path, src, "-a", "stick with colliding names",
                           "--json").stdout)
    assert (again["new_originals"], again["already_ingested"], again["errors"]) == (0, 7, 0)


def test_recorded_names_give_back_their_exact_bytes() -> None:
    """`path_text` is injective and `path_bytes` undoes it, for any bytes a name can hold."""
    rnd = random.Random(10)
    pieces = [b"\\", b"x", b"f", b"\xff", b"\xc3", b"\xa9", b"a", b"\xe2\x82", b"\xac", b"/",
              b"%", b"\x1b", "ё".encode()]
    recorded: dict[str, bytes] = {}
    for _ in range(20000):
        raw = b"".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 8)))
        text = path_text(raw)
        assert path_bytes(text) == raw
        assert recorded.setdefault(text, raw) == raw, f"{raw!r} and {recorded[text]!r} collide"
    for _ in range(2000):
        raw = rnd.randbytes(rnd.randint(0, 16))
        assert path_bytes(path_text(raw)) == raw
    assert path_text("Камера 03/0001.h264".encode()) == "Камера 03/0001.h264"
    assert path_text(b"clip\xff.mp4") == "clip\\xff.mp4"  # as older vaults recorded it
    assert path_text(b"clip\\xff.mp4") == "clip\\\\xff.mp4"
    with pytest.raises(ValueError):
        path_bytes("stray \\q")
    assert shown("evil\x1b[2J\u202egnp.exe") == "evil\\x1b[2J\\u202egnp.exe"


# -- deep sources -------------------------------------------------------------------------
DEPTH = 1500


def _make_deep(root: Path, depth: int) -> list[bytes]:
    """A chain of `depth` folders (9 bytes a level: ~13 KB, far beyond PATH_MAX), created with
    folder handles so no path is ever long. A file at the bottom and one half-way."""
    root.mkdir()
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    names: list[bytes] = []
    try:
        for level in range(depth):
            name = f"d{level:07d}".encode()
            names.append(name)
            os.mkdir(name, dir_fd=fd)
            nxt = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nxt
            if level in (depth // 2, depth - 1):
                f = os.open(b"clip.mp4", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
                os.write(f, f"level {level}".encode())
                os.close(f)
    finally:
        os.close(fd)
    return names


def _remove_deep(root: Path) -> None:
    """shutil.rmtree recurses once per level (RecursionError here on Python 3.11): pull each
    level's one sub-folder up into `root` instead, and remove the emptied level."""
    top = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        current = next(iter(os.listdir(top)), None)
        spare = ["up-a", "up-b"]
        while current is not None:
            fd = os.open(current, os.O_RDONLY | os.O_DIRECTORY, dir_fd=top)
            sub = None
            try:
                for name in os.listdir(fd):
                    if stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                        sub = spare[0] if current != spare[0] else spare[1]
                        os.rename(name, sub, src_dir_fd=fd, dst_dir_fd=top)
                    else:
                        os.unlink(name, dir_fd=fd)
            finally:
                os.close(fd)
            os.rmdir(current, dir_fd=top)
            current = sub
    finally:
        os.close(top)
    root.rmdir()


def test_deeply_nested_source_is_walked_without_recursion_error(vault: Vault,
                                                                 tmp_path: Path) -> None:
    src = tmp_path / "deep"
    names = _make_deep(src, DEPTH)
    try:
        report = ingest(vault, src, "a stick nested 1,500 folders deep")
        assert report.errors == []
        assert report.new_originals == 2
        bottom = "/".join(n.decode() for n in names) + "/clip.mp4"
        middle = "/".join(n.decode() for n in names[:DEPTH // 2 + 1]) + "/clip.mp4"
        assert len(os.fsencode(src) + b"/" + bottom.encode()) > 4096  # beyond PATH_MAX
        seen = sightings(vault)
        assert set(seen) == {bottom, middle}
        assert seen[bottom].original_sha256 == hashlib.sha256(
            f"level {DEPTH - 1}".encode()).hexdigest()
        assert seen[middle].original_sha256 == hashlib.sha256(
            f"level {DEPTH // 2}".encode()).hexdigest()
        assert verify(vault).ok
    finally:
        _remove_deep(src)


def test_the_walk_keeps_its_order_sorted_by_name_depth_first(tmp_path: Path) -> None:
    src = tmp_path / "stick"
    for rel in ("b", "a/y/z", "a/x", "a-b", "a/y/a", "c/d/e/f"):
        write(src / rel, b".")
    assert [e.rel_path for e in walk(src)] == [
        "a/x", "a/y/a", "a/y/z", "a-b", "b", "c/d/e/f"]
