"""The intake's data folder: what arrived, encrypted on arrival, and nothing that identifies.

    intake.json                 the vault's public key and the salt for codenames
    server.key                  signs session tokens (0600; opens nothing stored here)
    sources/<id>/source.json    a source's public key and its identity wrapped by its codename
    sources/<id>/messages/      <n>-<from>.age: messages, replies and receipts, each encrypted
                                to the vault and to the source
    uploads/<id>/info.json      length, owner, day last touched, metadata encrypted to the vault
    uploads/<id>/<offset>-<length>.age
                                the upload's bytes, in pieces of at most `segment` bytes, each
                                an age file encrypted to the vault *before* it is written

A piece becomes part of an upload only by a rename, after its ciphertext is on disk: a killed
server leaves whole pieces and `.part-*` files that the next request removes, so an upload's
offset is always the sum of its whole pieces. No file holds a time finer than the day.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import json
import os
import re
import secrets
import shutil
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strongroom.fsio import fsync_dir
from strongroom.intake import codenames, seal

FORMAT = "strongroom.intake/1"
DAY = 86400
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
_SOURCE_ID = re.compile(r"[0-9a-f]{64}")
_PIECE = re.compile(r"(\d{16})-(\d{12})\.age")
_MESSAGE = re.compile(r"(\d{6})-(source|org|receipt)\.age")
FINGERPRINT = re.compile(r"[0-9a-f]{32}")


class IntakeError(Exception):
    """Refused, with a message a source or an operator can act on. `status` is the HTTP code."""

    def __init__(self, message: str, status: int = 400,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


class Busy(IntakeError):
    def __init__(self) -> None:
        super().__init__("this upload is receiving another request; retry after it ends", 423)


@dataclass(frozen=True)
class Limits:
    max_file: int = 100 * 10**9
    quota_total: int = 2 * 10**12
    quota_source: int = 300 * 10**9
    expire_days: int = 7
    segment: int = 4 * 2**20
    messages_per_source: int = 1000
    message_bytes: int = 64 * 1024


def today() -> int:
    """The start of the current UTC day: the only time the intake writes down."""
    return int(time.time()) // DAY * DAY


def day_text(day: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(day))


@dataclass
class Session:
    source_id: str
    identity: str


@dataclass
class Upload:
    id: str
    source: str
    length: int
    offset: int
    done: bool
    imported: bool
    touched: int
    fingerprint: str | None
    meta: bytes  # the tus metadata as JSON, encrypted to the vault
    form: bool = False  # sent by the plain form: cannot resume

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "length": self.length, "offset": self.offset, "done": self.done,
                "imported": self.imported, "fingerprint": self.fingerprint}


@dataclass
class Message:
    seq: int
    sender: str  # source | org | receipt
    ciphertext: bytes


class Store:
    def __init__(self, root: Path, recipient: str | None = None, *,
                 limits: Limits | None = None, cost: codenames.Cost | None = None) -> None:
        self.root = root
        self.limits = limits or Limits()
        self.cost = cost or codenames.Cost()
        self._argon = threading.BoundedSemaphore(2)  # Argon2id at most twice at once
        self.recipient, self.salt = self._open(recipient)
        self.server_key = self._server_key()

    def recover(self) -> None:
        """At a server's start: drop creations a kill interrupted, and what `sweep` drops."""
        for new in (self.root / "uploads").glob(".new-*"):
            _remove_upload(new)
        for up in self.uploads():  # a form cut off by the kill cannot resume: it only holds quota
            if up.form and not up.done:
                with contextlib.suppress(IntakeError):
                    self.purge(up.id)
        self.sweep()

    # -- the folder -----------------------------------------------------------------------
    def _open(self, recipient: str | None) -> tuple[str, bytes]:
        marker = self.root / "intake.json"
        if marker.exists():
            data = json.loads(read_small(marker))
            if data.get("format") != FORMAT:
                raise IntakeError(f"{marker}: not a Strongroom intake folder")
            if recipient is not None and recipient != data["recipient"]:
                raise IntakeError(
                    f"{self.root} already encrypts to {data['recipient']}; refusing to mix two "
                    "vaults' submissions in one folder")
            return str(data["recipient"]), bytes.fromhex(data["salt"])
        if recipient is None:
            raise IntakeError(f"{self.root} is not an intake folder yet: give --public-key")
        seal.check_recipient(recipient)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        for sub in ("sources", "uploads"):
            (self.root / sub).mkdir(mode=0o700, exist_ok=True)
        salt = secrets.token_bytes(16)
        _write_new(marker, json.dumps({"format": FORMAT, "recipient": recipient,
                                       "salt": salt.hex()}, indent=1).encode())
        return recipient, salt

    def _server_key(self) -> bytes:
        path = self.root / "server.key"
        with contextlib.suppress(FileExistsError):
            _write_new(path, secrets.token_bytes(32))
        key = read_small(path)
        if len(key) != 32:
            raise IntakeError(f"{path} is damaged: remove it (sources sign in again)")
        return key

    # -- sources --------------------------------------------------------------------------
    def new_source(self, lang: str = "ru") -> tuple[str, Session]:
        for _ in range(3):
            codename = codenames.generate(lang)
            derived = self._derive(codename)
            folder = self.root / "sources" / derived.source_id
            try:
                folder.mkdir(mode=0o700)
            except FileExistsError:  # 2^-77: draw again rather than share a folder
                continue
            key = seal.new_source_key()
            (folder / "messages").mkdir(mode=0o700)
            _write_new(folder / "source.json", json.dumps({
                "public": key.public, "wrapped": seal.wrap(derived.wrap_key, key.identity),
                "day": day_text(today())}).encode())
            _settle(folder / "messages")
            _settle(folder)
            return codename, Session(derived.source_id, key.identity)
        raise IntakeError("could not make a new codename; try again", 503)

    def unlock(self, codename: str) -> Session | None:
        """The source behind `codename`, or None. Costs one Argon2id either way, and a wrong
        codename fails the same check (Fernet's HMAC) as a right one passes."""
        if not codenames.plausible(codename):
            return None
        derived = self._derive(codename)
        path = self.root / "sources" / derived.source_id / "source.json"
        try:
            wrapped = json.loads(read_small(path))["wrapped"]
        except (OSError, ValueError, KeyError, TypeError, IntakeError):
            wrapped = seal.wrap(secrets.token_bytes(32), "x")  # same work as a real check
        identity = seal.unwrap(derived.wrap_key, wrapped)
        return Session(derived.source_id, identity) if identity else None

    def epoch(self, source_id: str) -> int:
        """The source's sign-out count: a session token names the one it was made in."""
        try:
            return int(read_small(self._source_dir(source_id) / "epoch") or 0)
        except FileNotFoundError:
            return 0
        except ValueError:
            return -1  # damaged: no token matches

    def end_sessions(self, source_id: str) -> None:
        """Sign the source out everywhere: every token made before now stops working."""
        folder = self._source_dir(source_id)
        with _locked(folder / ".lock"):
            _replace(folder / "epoch", str(self.epoch(source_id) + 1).encode())

    def _derive(self, codename: str) -> codenames.Derived:
        with self._argon:
            return codenames.derive(codename, self.salt, self.cost)

    def source_public(self, source_id: str) -> str:
        data = json.loads(read_small(self._source_dir(source_id) / "source.json"))
        return str(data["public"])

    def source_ids(self) -> list[str]:
        return sorted(p.name for p in (self.root / "sources").iterdir()
                      if _SOURCE_ID.fullmatch(p.name))

    def _source_dir(self, source_id: str) -> Path:
        if not _SOURCE_ID.fullmatch(source_id):
            raise IntakeError("no such source", 404)
        folder = self.root / "sources" / source_id
        if not _real_dir(folder):
            raise IntakeError("no such source", 404)
        return folder

    # -- messages -------------------------------------------------------------------------
    def pin(self, source_id: str) -> bytes | None:
        """The vault's signed record of this source's public key (`import-intake` and
        `intake-reply` write it the first time they see the source), or None."""
        try:
            return read_small(self._source_dir(source_id) / "pin.json")
        except FileNotFoundError:
            return None

    def write_pin(self, source_id: str, data: bytes) -> None:
        with contextlib.suppress(FileExistsError):
            _write_new(self._source_dir(source_id) / "pin.json", data)

    def add_message(self, source_id: str, sender: str, body: bytes,
                    public: str | None = None) -> int:
        """`public`: the source key to encrypt to (the vault's pinned one, for replies and
        receipts); by default the one in the source's folder."""
        if sender not in ("source", "org", "receipt"):
            raise ValueError(sender)
        if len(body) > self.limits.message_bytes and sender != "receipt":
            raise IntakeError(f"a message holds at most {self.limits.message_bytes} bytes", 413)
        folder = self._source_dir(source_id) / "messages"
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)  # a kill during the source's creation left none
        if not _real_dir(folder):
            raise IntakeError("this source's messages folder is not a folder", 500)
        sealed = seal.encrypt(body, [self.recipient, public or self.source_public(source_id)])
        with _locked(folder / ".lock"):
            found = [m for p in folder.iterdir() if (m := _MESSAGE.fullmatch(p.name))]
            # only what the source writes is capped: a receipt or a reply always gets through
            if sender == "source" and sum(1 for m in found if m.group(2) == "source") \
                    >= self.limits.messages_per_source:
                raise IntakeError("too many messages; wait for an answer", 429)
            seq = max((int(m.group(1)) for m in found), default=0) + 1
            _write_new(folder / f"{seq:06d}-{sender}.age", sealed)
        _settle(folder)
        return seq

    def messages(self, source_id: str) -> list[Message]:
        folder = self._source_dir(source_id) / "messages"
        if not _real_dir(folder):
            return []
        found = []
        for p in folder.iterdir():
            m = _MESSAGE.fullmatch(p.name)
            if m:
                with contextlib.suppress(OSError, IntakeError):
                    found.append(Message(int(m.group(1)), m.group(2),
                                         read_small(p, MESSAGE_FILE_MAX)))
        return sorted(found, key=lambda x: x.seq)

    # -- uploads --------------------------------------------------------------------------
    def create_upload(self, source_id: str, length: int, metadata: dict[str, bytes], *,
                      form: bool = False) -> Upload:
        self._source_dir(source_id)
        if length < 0:
            raise IntakeError("Upload-Length must be a whole number of bytes")
        if length > self.limits.max_file:
            raise IntakeError(f"a file may hold at most {self.limits.max_file} bytes", 413)
        self.sweep()
        with _locked(self.root / "uploads" / ".create.lock"):  # quota checks and creation
            return self._create(source_id, length, metadata, form)

    def _create(self, source_id: str, length: int, metadata: dict[str, bytes],
                form: bool) -> Upload:
        uploads = self.uploads()
        mine = sum(u.length for u in uploads if u.source == source_id and not u.imported)
        if mine + length > self.limits.quota_source:
            raise IntakeError("this codename's space is used up until the organisation takes "
                              "what was sent", 413)
        # What arrived counts in all, not what was announced: empty creations by new
        # codenames cannot reserve the whole intake.
        held = sum(u.offset for u in uploads if not u.imported)
        if held + length > self.limits.quota_total:
            raise IntakeError("the intake is full; try again later", 507)
        free = shutil.disk_usage(self.root).free
        if length + self.limits.segment * 2 > free:
            raise IntakeError("the intake is full; try again later", 507)
        fp = metadata.get("fingerprint", b"").decode("ascii", "replace")
        fingerprint = fp if FINGERPRINT.fullmatch(fp) else None
        kept = {k: base64.b64encode(v).decode() for k, v in metadata.items()
                if k != "fingerprint"}
        # bound to its source inside what only the vault reads: `import-intake` checks it
        kept["_source"] = base64.b64encode(source_id.encode()).decode()
        meta = seal.encrypt(json.dumps(kept, sort_keys=True).encode(), [self.recipient])
        uid = secrets.token_hex(16)
        # Made complete under another name, then renamed: no request ever sees an upload
        # folder without its info.
        new = self.root / "uploads" / f".new-{uid}"
        new.mkdir(mode=0o700)
        up = Upload(uid, source_id, length, 0, length == 0, False, today(), fingerprint, meta,
                    form)
        self._save(new, up)
        os.rename(new, self.root / "uploads" / uid)
        fsync_dir(self.root / "uploads")
        _settle(self.root / "uploads" / uid)
        return up

    def upload(self, uid: str, source_id: str | None = None) -> Upload:
        """The upload, if it exists and (when `source_id` is given) belongs to that source;
        another source's upload is as absent as one that never existed."""
        folder = self._upload_dir(uid)
        if not _real_dir(folder):
            raise IntakeError("no such upload", 404)
        try:
            info = json.loads(read_small(folder / "info.json"))
            owner, length = str(info["source"]), int(info["length"])
            touched, meta = int(info["touched"]), base64.b64decode(info["meta"])
            fp = info.get("fingerprint")
        except (OSError, ValueError, KeyError, TypeError, IntakeError):  # damaged: absent
            raise IntakeError("no such upload", 404) from None
        if source_id is not None and owner != source_id:
            raise IntakeError("no such upload", 404)
        pieces = self._pieces(folder)
        offset = pieces[-1][0] + pieces[-1][1] if pieces else 0
        # complete when its pieces reach its length (not a flag a kill could leave behind)
        return Upload(uid, owner, length, offset, offset == length,
                      (folder / "imported").exists(), touched,
                      fp if isinstance(fp, str) else None, meta, bool(info.get("form")))

    def uploads(self, source_id: str | None = None) -> list[Upload]:
        found = []
        for p in sorted((self.root / "uploads").iterdir()):
            if _UPLOAD_ID.fullmatch(p.name):
                with contextlib.suppress(IntakeError):
                    found.append(self.upload(p.name, source_id))
        return found

    def expired(self, up: Upload) -> bool:
        return not up.done and up.touched < today() - self.limits.expire_days * DAY

    def pieces(self, uid: str) -> list[Path]:
        folder = self._upload_dir(uid)
        return [folder / f"{o:016d}-{n:012d}.age" for o, n in self._pieces(folder)]

    def _upload_dir(self, uid: str) -> Path:
        if not _UPLOAD_ID.fullmatch(uid):
            raise IntakeError("no such upload", 404)
        return self.root / "uploads" / uid

    @staticmethod
    def _pieces(folder: Path) -> list[tuple[int, int]]:
        """The whole pieces from offset 0 on, in order. Anything after a gap cannot be
        used (a gap is never left by this code: it would be damage) and is not counted."""
        found = []
        with contextlib.suppress(FileNotFoundError):
            for p in folder.iterdir():
                m = _PIECE.fullmatch(p.name)
                if m:
                    found.append((int(m.group(1)), int(m.group(2))))
        found.sort()
        whole, end = [], 0
        for off, n in found:
            if off != end:
                break
            whole.append((off, n))
            end += n
        return whole

    def _save(self, folder: Path, up: Upload) -> None:
        info = {"source": up.source, "length": up.length, "done": up.done,
                "touched": up.touched, "fingerprint": up.fingerprint,
                "meta": base64.b64encode(up.meta).decode(), "form": up.form}
        _replace(folder / "info.json", json.dumps(info).encode())
        _settle(folder)

    @contextlib.contextmanager
    def receiving(self, uid: str, source_id: str, offset: int, *,
                  eager: bool = False) -> Iterator[Receiver]:
        """One PATCH: the upload locked against any other request, the offset checked, the
        receiver's pieces committed by `Receiver.commit` (or dropped). `eager`: each piece
        joins the upload as soon as it is on disk (a PATCH without a checksum: a kill then
        costs the source at most one piece, not the whole request)."""
        folder = self._upload_dir(uid)
        with _locked(folder / ".lock", wait=False):
            up = self.upload(uid, source_id)
            if self.expired(up):
                raise IntakeError("this upload expired; start it again", 410)
            for p in folder.glob(".part-*"):  # left by a killed server
                p.unlink(missing_ok=True)
            if offset != up.offset:
                raise IntakeError(f"Upload-Offset {offset} does not match the {up.offset} "
                                  "bytes received so far", 409)
            receiver = Receiver(self, folder, up, eager)
            try:
                yield receiver
            finally:
                receiver.drop()

    def terminate(self, uid: str, source_id: str) -> None:
        folder = self._upload_dir(uid)
        with _locked(folder / ".lock", wait=False):
            self.upload(uid, source_id)
            _remove_upload(folder)

    def mark_imported(self, uid: str) -> None:
        folder = self._upload_dir(uid)
        with contextlib.suppress(FileExistsError):
            _write_new(folder / "imported", b"")

    def purge(self, uid: str) -> None:
        folder = self._upload_dir(uid)
        with _locked(folder / ".lock", wait=False):
            _remove_upload(folder)

    def sweep(self) -> int:
        """Remove expired uploads and pieces left half-written by a killed server."""
        removed = 0
        for p in (self.root / "uploads").iterdir():
            if not _UPLOAD_ID.fullmatch(p.name):
                continue
            try:
                with _locked(p / ".lock", wait=False):
                    for part in p.glob(".part-*"):
                        part.unlink(missing_ok=True)
                    if self.expired(self.upload(p.name)):
                        _remove_upload(p)
                        removed += 1
            except (Busy, IntakeError, FileNotFoundError):
                continue
        return removed


class Receiver:
    """The body of one PATCH, encrypted a piece at a time into `.part-*` files (ciphertext
    only), renamed into the upload as each is written (`eager`) or all at once by `commit`."""

    def __init__(self, store: Store, folder: Path, up: Upload, eager: bool = False) -> None:
        self.store, self.folder, self.up, self.eager = store, folder, up, eager
        self.buffer = bytearray()
        self.received = 0
        self.kept = 0  # bytes of this request already part of the upload (eager)
        self.parts: list[tuple[int, int, Path]] = []

    @property
    def room(self) -> int:
        return self.up.length - self.up.offset - self.received

    def feed(self, data: bytes) -> bool:
        """Take bytes; True when a piece is due (`flush` it off the event loop)."""
        if len(data) > self.room:
            raise IntakeError("more bytes than the Upload-Length announced", 413)
        self.buffer += data
        self.received += len(data)
        return len(self.buffer) >= self.store.limits.segment

    def flush(self, final: bool = False) -> None:
        seg = self.store.limits.segment
        while len(self.buffer) >= seg or (final and self.buffer):
            piece = bytes(self.buffer[:seg])
            del self.buffer[:seg]
            start = self.up.offset + self.kept + sum(n for _, n, _ in self.parts)
            path = self.folder / f".part-{secrets.token_hex(8)}"
            _write_new(path, seal.encrypt(piece, [self.store.recipient]), sync=True)
            if self.eager:
                os.rename(path, self.folder / f"{start:016d}-{len(piece):012d}.age")
                fsync_dir(self.folder)
                self.kept += len(piece)
            else:
                self.parts.append((start, len(piece), path))

    def commit(self, *, final_length: bool = False) -> Upload:
        """Everything received becomes part of the upload: renamed in order, so a kill
        between two renames leaves a shorter upload, never a gap. `final_length`: the upload
        (a form's file, whose size was not known) ends here."""
        self.flush(final=True)
        held = self.kept + sum(n for _, n, _ in self.parts)
        if final_length:
            self.up.length = self.up.offset + held
        for start, n, path in self.parts:
            os.rename(path, self.folder / f"{start:016d}-{n:012d}.age")
        fsync_dir(self.folder)
        self.up.offset += held
        self.kept = 0
        self.parts.clear()
        self.up.done = self.up.offset == self.up.length
        if self.up.touched != today() or self.up.done or final_length:
            self.up.touched = today()
            self.store._save(self.folder, self.up)
        _settle(self.folder)
        return self.up

    def drop(self) -> None:
        self.buffer.clear()
        for _, _, path in self.parts:
            path.unlink(missing_ok=True)
        if self.parts or self.kept:
            _settle(self.folder)
        self.parts.clear()


# -- files -----------------------------------------------------------------------------------
def _write_new(path: Path, data: bytes, *, sync: bool = True) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if sync:
            os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        path.unlink(missing_ok=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise IntakeError("the intake is full; try again later", 507) from None
        raise
    else:
        os.close(fd)
    _settle(path)


#: The largest message, reply or receipt file read back (a receipt lists many files).
MESSAGE_FILE_MAX = 16 * 1024 * 1024


def read_small(path: Path, cap: int = 1024 * 1024) -> bytes:
    """A small file of the data folder, read without following a symlink, without blocking on
    a FIFO or a device put in its place, without moving its access time, and at most `cap`
    bytes: a doctored folder must not hang, flood or redirect the intake or the import."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_NOATIME", 0))
    except PermissionError:  # O_NOATIME needs the file's owner
        fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > cap:
            raise IntakeError(f"{path.name}: not a plain file of at most {cap} bytes", 500)
        data = b""
        while len(data) <= cap and (block := os.read(fd, 1 << 20)):
            data += block
        if len(data) > cap:
            raise IntakeError(f"{path.name}: larger than {cap} bytes", 500)
        return data
    finally:
        os.close(fd)


def _real_dir(path: Path) -> bool:
    """A folder, not a symlink to one (a doctored data folder must not send writes or reads
    elsewhere)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".part-{secrets.token_hex(8)}")
    _write_new(tmp, data)
    os.rename(tmp, path)
    fsync_dir(path.parent)
    _settle(path)


def _settle(path: Path) -> None:
    """Only the day survives in the times of a file and of its folder (a seized disk should
    not date an upload to the second, to be matched with traffic logs). The inode change time
    cannot be set: mount the data folder on an encrypted volume."""
    for p in (path, path.parent):
        with contextlib.suppress(OSError):
            os.utime(p, (today(), today()), follow_symlinks=False)


def _remove_upload(folder: Path) -> None:
    for p in folder.iterdir():
        if p.name != ".lock":
            p.unlink(missing_ok=True)
    (folder / ".lock").unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()
    _settle(folder)


@contextlib.contextmanager
def _locked(path: Path, *, wait: bool = True) -> Iterator[None]:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except FileNotFoundError:
        raise IntakeError("no such upload", 404) from None
    _settle(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise Busy() from None
        yield
    finally:
        os.close(fd)


