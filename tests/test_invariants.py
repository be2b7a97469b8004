"""Promises of the blob store and the pipeline about what is on disk, each proved on the real
thing: committed blobs are immutable, names cannot leave the store, and plaintext or staged
ciphertext lives only in private (0700) directories that are gone when the work is done."""

from __future__ import annotations

import dataclasses
import io
import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest

from conftest import cli, write
from strongroom.errors import StrongroomError
from strongroom.testmedia import ClipSpec, generate_clip
from strongroom.vault import Vault
from strongroom.vault.blobs import LocalBlobStore, check_name


def blob_path(store: LocalBlobStore, name: str) -> Path:
    return store.root / name[:2] / name


def stage(store: LocalBlobStore, data: bytes) -> object:
    staged = store.stage()
    staged.file.write(data)
    return staged


def tree(root: Path) -> set[Path]:
    return set(root.rglob("*"))


# -- a committed blob is never overwritten ------------------------------------------------------

def test_a_committed_blob_is_never_overwritten_by_the_blob_store(vault: Vault) -> None:
    store = vault.blobs
    assert isinstance(store, LocalBlobStore)
    name = "5e" * 32
    assert store.commit([(stage(store, b"the first bytes"), name)]) == [True]  # type: ignore[list-item]
    assert store.commit([(stage(store, b"other bytes, same name"), name)]) == [False]  # type: ignore[list-item]
    assert blob_path(store, name).read_bytes() == b"the first bytes"
    # the same inside one group: the first of the group wins, the second is reported not new
    other = "7a" * 32
    assert store.commit([(stage(store, b"one"), other),  # type: ignore[list-item]
                         (stage(store, b"two"), other)]) == [True, False]  # type: ignore[list-item]
    assert blob_path(store, other).read_bytes() == b"one"
    assert store.staging_files() == [], "a refused blob must not stay staged"


def test_a_committed_blob_is_never_overwritten_through_the_vault(vault: Vault) -> None:
    first = vault.store(io.BytesIO(b"original clip bytes"), size=19, what="first")
    assert vault.commit([first]) == [True]
    path = blob_path(vault.blobs, first.name)  # type: ignore[arg-type]
    ciphertext = path.read_bytes()
    # a second blob staged under the first one's name (as a bug or a forged catalogue would)
    second = vault.store(io.BytesIO(b"different bytes entirely"), size=24, what="second")
    assert second.name != first.name
    forged = dataclasses.replace(second, name=first.name)
    assert vault.commit([forged]) == [False]
    assert path.read_bytes() == ciphertext
    assert not blob_path(vault.blobs, second.name).exists()  # type: ignore[arg-type]
    # committing the same content again is not new either, and changes nothing
    again = vault.store(io.BytesIO(b"original clip bytes"), size=19, what="again")
    assert again.name == first.name and vault.commit([again]) == [False]
    assert path.read_bytes() == ciphertext
    assert vault.staging_files() == []


# -- a blob name outside the store is refused ---------------------------------------------------

def bad_names(outside: Path) -> list[str]:
    return [
        "../x",
        "../" + "a" * 61,
        "aa/../../" + "a" * 55,
        "/etc/passwd",
        str(outside / ("a" * 64)),
        "/" + "a" * 63,
        "A" * 64,
        "aB" * 32,
        "a" * 63,
        "a" * 65,
        "g" * 64,
        "",
        "a" * 62 + "/x",
        "a" * 32 + "." + "a" * 31,
        " " + "a" * 63,
    ]


def test_a_blob_name_outside_the_store_is_refused(vault: Vault, tmp_path: Path) -> None:
    store = vault.blobs
    assert isinstance(store, LocalBlobStore)
    outside = tmp_path / "outside"
    outside.mkdir()
    before = tree(tmp_path)
    for name in bad_names(outside):
        with pytest.raises(StrongroomError, match="invalid blob name"):
            check_name(name)
        staged = stage(store, b"payload")
        with pytest.raises(StrongroomError, match="invalid blob name"):
            store.commit([(staged, name)])  # type: ignore[list-item]
        for look in (store.exists, store.open, store.size):
            with pytest.raises(StrongroomError, match="invalid blob name"):
                look(name)
    created = tree(tmp_path) - before
    staging = store.root / ".tmp"
    assert all(staging in p.parents or p == staging for p in created), sorted(created)
    assert list(outside.iterdir()) == []
    assert store.staging_files() == [], "a refused blob must not stay staged"
    assert list(store.names()) == []


def test_a_blob_name_is_exactly_64_lowercase_hex_digits() -> None:
    with pytest.raises(StrongroomError):
        check_name("a" * 64 + "\n")


# -- the test suite's own shortcut keeps the front door shut ----------------------------------

def test_a_wrong_passphrase_is_refused_even_after_the_right_one_opened_the_vault(
        vault_path: Path) -> None:
    """conftest remembers successful unseals; a wrong passphrase must still meet scrypt."""
    assert cli("verify", vault_path, "--quick").returncode == 0
    r = cli("verify", vault_path, "--quick", env={"STRONGROOM_PASSPHRASE": "not the passphrase"})
    assert r.returncode == 2
    assert r.stderr.strip() == "error: wrong passphrase: the vault's keys did not unlock"


# -- private, short-lived directories -------------------------------------------------------

@dataclasses.dataclass
class Seen:
    """Directories a watcher saw, with the permission bits each had, and what they held."""

    modes: dict[Path, set[int]] = dataclasses.field(default_factory=dict)
    held: dict[Path, set[str]] = dataclasses.field(default_factory=dict)


class _Inotify:
    """Linux inotify through libc: creations are queued by the kernel, so a directory that
    lives for a millisecond on a loaded machine is still counted (polling alone missed one)."""

    CREATE, MOVED_TO, ISDIR = 0x100, 0x80, 0x40000000

    def __init__(self) -> None:
        import ctypes

        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self.paths: dict[int, Path] = {}

    def add(self, path: Path) -> None:
        wd = self.libc.inotify_add_watch(self.fd, os.fsencode(path), self.CREATE | self.MOVED_TO)
        if wd >= 0:  # -1: the dir is already gone
            self.paths[wd] = path

    def events(self, timeout: float) -> Iterator[tuple[Path, str, bool]]:
        """(watched dir, name created in it, is a dir) for what arrived within `timeout`."""
        import select
        import struct

        if not select.select([self.fd], [], [], timeout)[0]:
            return
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        at = 0
        while at < len(data):
            wd, mask, _cookie, size = struct.unpack_from("iIII", data, at)
            name = data[at + 16:at + 16 + size].rstrip(b"\0").decode()
            at += 16 + size
            if wd in self.paths:
                yield self.paths[wd], name, bool(mask & self.ISDIR)

    def close(self) -> None:
        os.close(self.fd)


@contextmanager
def watching(parent: Path, pattern: str) -> Iterator[Seen]:
    """Every `parent/pattern` directory created while the body runs, as a process on the same
    machine could see it: its mode, looked at the moment inotify reports it (and sampled every
    millisecond after), and the names created inside it (from inotify, so a file that lived
    for an instant counts)."""
    seen = Seen()
    stop = threading.Event()
    watch = _Inotify()
    watch.add(parent)

    def look(d: Path) -> None:
        try:
            seen.modes.setdefault(d, set()).add(stat.S_IMODE(d.lstat().st_mode))
            seen.held.setdefault(d, set()).update(f.name for f in d.iterdir())
        except FileNotFoundError:
            seen.modes.setdefault(d, set())  # removed before we looked: still counted

    def sample() -> None:
        while not stop.is_set():
            for where, name, is_dir in watch.events(0.001):
                if where == parent and is_dir and Path(name).match(pattern):
                    watch.add(parent / name)
                    look(parent / name)
                elif where != parent:
                    seen.held.setdefault(where, set()).add(name)
            for d in parent.glob(pattern):
                look(d)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    try:
        yield seen
    finally:
        stop.set()
        watcher.join()
        watch.close()


def test_pipeline_work_dirs_are_0700_while_in_use_and_gone_after_a_run(
        vault_path: Path, tmp_path: Path) -> None:
    from strongroom.pipeline.worker import WORKDIR_PREFIX

    clips = tmp_path / "usb"
    for i in range(2):
        generate_clip(ClipSpec(name=f"cam0{i}.mp4", duration=2, camera_label=f"КАМ 0{i}",
                               clock_start=datetime(2020, 3, 14, 2, 17, i), size=(320, 240),
                               source="life", seed=i), clips)
    assert cli("ingest", vault_path, clips, "-a", "stick").returncode == 0
    work = tmp_path / "work"
    work.mkdir()
    with watching(work, WORKDIR_PREFIX + "*") as seen:
        r = cli("process", vault_path, "--workers", "1", "--steps", "probe,keyframes",
                env={"STRONGROOM_WORK_DIR": str(work)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(seen.modes) == 2, f"expected one work dir per original, saw {seen.modes}"
    assert any(seen.modes.values()), "no work dir lived long enough to look at its mode"
    assert all(modes <= {0o700} for modes in seen.modes.values()), seen.modes
    assert all("original" in held for held in seen.held.values()), \
        "never saw the plaintext the dir exists for: the watcher looked at the wrong thing"
    assert list(work.iterdir()) == [], "a work dir (plaintext) outlived the run"


def test_blob_staging_dirs_are_0700_and_gone_after_ingest(vault_path: Path,
                                                          source: Path) -> None:
    staging = vault_path / "blobs" / ".tmp"
    write(source / "more" / "big.bin", os.urandom(16 * 1024 * 1024))
    with watching(staging, "*") as seen:
        r = cli("ingest", vault_path, source, "-a", "stick")
    assert r.returncode == 0, r.stderr
    assert seen.modes, "never saw a staging dir during ingest"
    assert any(seen.modes.values()), "no staging dir lived long enough to look at its mode"
    assert all(modes <= {0o700} for modes in seen.modes.values()), seen.modes
    assert stat.S_IMODE(staging.stat().st_mode) == 0o700
    assert list(staging.iterdir()) == [], "a staging dir outlived the ingest"
