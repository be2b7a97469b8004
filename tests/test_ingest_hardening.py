"""Ingest under hostile input (issue 10): colliding names, concurrent runs, the vault as its own
source, sources nested deeper than PATH_MAX, and a final checkpoint however the groups fall."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import stat
import subprocess
import unicodedata
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conftest import CLI, Template, cli, cli_env, open_vault, sql, write
from strongroom.catalogue.models import (
    Acquisition,
    CustodyCheckpoint,
    CustodyEvent,
    IngestError,
    Original,
    Sighting,
)
from strongroom.custody.log import read_checkpoint_file
from strongroom.custody.verify import verify
from strongroom.errors import SourceError
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


def test_a_symlink_recorded_by_an_older_vault_is_still_recognised(vault: Vault,
                                                                   tmp_path: Path) -> None:
    """Before names were injective, a backslash in a link target was stored undoubled; such a
    link re-ingested is the same link, not a "changed" file."""
    src = tmp_path / "stick"
    write(src / "clip.mp4", b"clip")
    (src / "link").symlink_to("dir\\clip.mp4")
    ingest(vault, src, "stick")
    assert sightings(vault)["link"].link_target == "dir\\\\clip.mp4"
    sql(vault.path, "DROP TRIGGER IF EXISTS sighting_no_update")
    sql(vault.path, "UPDATE sighting SET link_target = ? WHERE rel_path = 'link'",
        ("dir\\clip.mp4",))
    again = ingest(vault, src, "stick")
    assert (again.already_ingested, again.errors) == (2, [])


def test_a_refused_row_is_one_files_error_and_the_group_is_still_recorded(
        vault: Vault, tmp_path: Path) -> None:
    """Belt and braces: should the catalogue ever refuse one sighting of a commit group (here
    a real SQLite constraint trigger does), that file is reported and the rest committed."""
    src = tmp_path / "stick"
    for name in ("a.bin", "b.bin", "c.bin", "d.bin"):
        write(src / name, os.urandom(1000))
    (src / "link").symlink_to("a.bin")
    sql(vault.path, "CREATE TRIGGER refuse_c BEFORE INSERT ON sighting WHEN NEW.rel_path = "
                    "'c.bin' BEGIN SELECT RAISE(ABORT, 'UNIQUE constraint failed: test'); END")
    report = ingest(vault, src, "stick")
    assert [e["path"] for e in report.errors] == ["c.bin"]
    assert "could not be recorded" in report.errors[0]["error"]
    assert (report.new_originals, report.symlinks) == (3, 1)
    assert set(sightings(vault)) == {"a.bin", "b.bin", "d.bin", "link"}
    assert _last_checkpoint_is_head(vault)


# -- concurrency ----------------------------------------------------------------------------
def _popen_ingest(vault: Path, source: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, "ingest", str(vault), str(source), "-a", "USB stick 1", "--json"],
        env=cli_env({"STRONGROOM_COMMIT_FILES": "4"}),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_ingests_of_one_source_at_once_do_not_crash(template: Template, vault_path: Path,
                                                         tmp_path: Path) -> None:
    """Both runs succeed; together they record every file exactly once (one acquisition, one
    sighting and one `sighted` event per path, each content stored once)."""
    src = tmp_path / "stick"
    rnd = random.Random(12)
    for i in range(60):
        write(src / f"ch{i % 3}" / f"{i:03d}.h264", rnd.randbytes(rnd.choice([1, 30, 200]) * 1024))
    shutil.copy2(src / "ch0" / "000.h264", src / "dup.h264")
    (src / "latest").symlink_to("ch0/000.h264")
    os.mkfifo(src / "fifo")
    files = 60 + 1 + 1  # the fifo is an error, not a sighting
    for trial in range(4):
        vault = tmp_path / f"vault-{trial}"
        shutil.copytree(vault_path, vault)
        procs = [_popen_ingest(vault, src), _popen_ingest(vault, src)]
        results = [p.communicate(timeout=300) for p in procs]
        for p, (_out, err) in zip(procs, results, strict=True):
            assert p.returncode == 0, err
            assert "Traceback" not in err
        reports = [json.loads(out) for out, _ in results]
        assert sum(r["new_originals"] for r in reports) == 60, reports
        assert all(r["error_list"] == [{"path": "fifo", "error": r["error_list"][0]["error"]}]
                   for r in reports), reports
        assert sorted(r["acquisition_id"] for r in reports) == [1, 1]
        v = open_vault(vault, template.keys)
        try:
            with v.catalogue.read() as s:
                assert s.scalar(select(func.count()).select_from(Acquisition)) == 1
                assert s.scalar(select(func.count()).select_from(Original)) == 60
                assert s.scalar(select(func.count()).select_from(Sighting)) == files
                assert [e.rel_path for e in s.scalars(select(IngestError))] == ["fifo"]
                paths = [json.loads(e.details)["path"] for e in s.scalars(
                    select(CustodyEvent).where(CustodyEvent.action == "sighted"))]
            assert sorted(paths) == sorted(set(paths)) and len(paths) == files
            report = verify(v)
            assert report.ok, report.problems
            assert _last_checkpoint_is_head(v)
        finally:
            v.close()
        shutil.rmtree(vault)


# -- checkpoints ----------------------------------------------------------------------------
def _last_checkpoint_is_head(vault: Vault) -> bool:
    with vault.catalogue.read() as s:
        head = s.scalar(select(func.max(CustodyEvent.seq)))
        signed = s.scalar(select(func.max(CustodyCheckpoint.seq)))
    published = read_checkpoint_file(vault.checkpoint_file)
    return bool(head == signed == published.checkpoints[-1]["seq"])


@pytest.mark.parametrize("shape", ["exactly commit_files files", "a file of commit_bytes"])
def test_ingest_ends_with_a_checkpoint_over_its_last_event(
        vault_path: Path, template: Template, tmp_path: Path, shape: str) -> None:
    """The last commit group filling inside the loop (64 files, or one file of 256 MiB, with
    the defaults) used to leave the final hand-over empty, and the ingest unsigned."""
    src = tmp_path / "stick"
    if shape == "exactly commit_files files":
        settings = {"commit_files": 4}
        for i in range(8):
            write(src / f"{i}.bin", os.urandom(100))
    else:
        # One worker: files finish in walk order, so the big one is the last of the run.
        settings = {"commit_bytes": 64 * 1024, "ingest_workers": 1}
        write(src / "a-small.bin", os.urandom(100))
        write(src / "z-big.bin", os.urandom(64 * 1024))
    v = open_vault(vault_path, template.keys, **settings)
    try:
        report = ingest(v, src, "stick")
        assert report.new_originals == len(list(src.iterdir()))
        assert _last_checkpoint_is_head(v)
        # A re-run that records nothing still leaves the head signed.
        ingest(v, src, "stick")
        assert _last_checkpoint_is_head(v)
    finally:
        v.close()


# -- the vault as a source ----------------------------------------------------------------
def _as_source(vault_path: Path, tmp_path: Path, how: str) -> Path:
    if how == "the vault":
        return vault_path
    if how == "a folder inside it":
        return vault_path / "blobs"
    if how == "a file inside it":
        return vault_path / "catalogue.db"
    if how == "its parent":
        return vault_path.parent
    if how == "a symlink to it":
        (tmp_path / "innocent").symlink_to(vault_path)
        return tmp_path / "innocent"
    if how == "a path through a symlink into it":
        (tmp_path / "innocent").symlink_to(vault_path)
        return tmp_path / "innocent" / "blobs" / ".."
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["the vault", "a folder inside it", "a file inside it",
                                 "its parent", "a symlink to it",
                                 "a path through a symlink into it"])
def test_ingest_refuses_the_vault_itself_as_source(vault: Vault, vault_path: Path,
                                                   tmp_path: Path, how: str) -> None:
    source = _as_source(vault_path, tmp_path, how)
    with pytest.raises(SourceError, match="the vault"):
        ingest(vault, source, "the vault itself")
    with vault.catalogue.read() as s:
        assert s.scalar(select(func.count()).select_from(Acquisition)) == 0


def test_ingest_vault_vault_on_the_command_line_is_one_clear_line(vault_path: Path) -> None:
    r = cli("ingest", vault_path, vault_path, "-a", "oops")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "the vault" in r.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="bind mounts need root")
def test_ingest_refuses_the_vault_bind_mounted_at_or_inside_the_source(
        vault: Vault, vault_path: Path, tmp_path: Path) -> None:
    """A bind mount has no symlink to resolve: the walk compares device and inode."""
    src = tmp_path / "stick"
    write(src / "clip.mp4", b"clip")
    mount = src / "mnt"
    mount.mkdir()
    r = subprocess.run(["mount", "--bind", str(vault_path), str(mount)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot bind-mount: {r.stderr.strip()}")
    try:
        with pytest.raises(SourceError, match="the vault"):
            ingest(vault, mount, "the vault, bind-mounted")
        report = ingest(vault, src, "a stick with the vault mounted inside")
    finally:
        subprocess.run(["umount", str(mount)], check=True)
    assert report.new_originals == 1
    assert [e["path"] for e in report.errors] == ["mnt"]
    assert "vault itself" in report.errors[0]["error"]


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
