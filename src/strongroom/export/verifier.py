#!/usr/bin/env python3
"""Verify a Strongroom handover bag, without Strongroom and without its vault.

    python3 verify.py BAG [--expect-key FINGERPRINT] [--tsa-cert CA.pem] [--json]

Needs Python 3.9+ and the `cryptography` package (pip install cryptography); `openssl` on PATH
to check RFC 3161 timestamps. Exit code 0 when every check passed, 1 when one failed, 2 when
the command was used wrongly or BAG is not a bag at all (missing, not a folder, or a folder
with no `bagit.txt`, manifest or `data` in it): one line on stderr, or with `--json` an
object with an "error" key on stdout. This same file is `strongroom verify-export`.

What is checked, and what each check proves:
0. Regular files only: nothing in the bag is a symbolic link (or a FIFO, socket, device).
   A link to an identical copy elsewhere would hash the same, yet the bag would no longer
   hold the evidence; every link found is named, none is followed, and every file is opened
   without following links on the way (O_NOFOLLOW at each step).
1. BagIt 1.0 structure: `bagit.txt`, `bag-info.txt` (Payload-Oxum: file count and bytes),
   every payload file listed in every manifest and every listed file present.
2. Every payload file's SHA-256 and SHA-512 and every tag file's digests: nothing changed.
   Every file outside `data/` is either listed in the tag manifests or one of the fixed names
   in `signatures/` below; anything else is named, and not opened.
3. The tag manifests' Ed25519 signatures (`signatures/*.sig`) by the vault's signing key, whose
   fingerprint is printed (compare it with the one given to you separately: `--expect-key`).
   The tag manifests cover the manifests, which cover every file: one signature seals the bag.
   The signature is over the tag manifest's bytes exactly, so OpenSSL checks it too:
   `openssl pkeyutl -verify -pubin -inkey data/custody/vault-signing-key.pem -rawin
    -in tagmanifest-sha256.txt -sigfile signatures/tagmanifest-sha256.txt.sig`
4. The custody extract (`data/custody/events.jsonl`): every event of the vault's log from the
   first to the last checkpoint, linked by hashes and each signed by the same key. Events about
   material outside this bag are redacted to their hash, link and signature, which still proves
   that nothing was inserted, removed or reordered. Event format, as in Strongroom's
   `custody/chain.py`:
       hash      = SHA-256( canonical_json({seq, time, actor, action, subject, details,
                                            prev_hash}) )
       signature = Ed25519( "strongroom custody event v1\\n" || hash as 32 bytes )
       checkpoint signature = Ed25519( "strongroom custody checkpoint v1\\n" ||
                                       canonical_json({seq, head_hash, time}) )
   canonical_json: keys sorted, separators "," and ":", UTF-8, no ASCII escaping.
5. Each original in `data/originals/` has an `ingested` event in that log with the same
   SHA-256 and size: the file is the one the vault took in, on the date the event gives.
6. RFC 3161 timestamp tokens over `tagmanifest-sha256.txt`, with `openssl ts -verify` against
   the TSA certificate you trust (`--tsa-cert`). Tokens have fixed names,
   `signatures/tagmanifest-sha256.txt.tsaN.tsr`, and always cover `tagmanifest-sha256.txt`;
   their number is announced in the signed `bag-info.txt` (`Strongroom-Timestamp-Tokens`), so
   a removed token is noticed. `signatures/timestamps.json` is an unsigned listing (which TSA
   URL gave which token): a path in it is never followed, an entry naming anything other than
   a token of that form is a failed check.
"""

from __future__ import annotations

import argparse
import base64
import errno
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

ALGORITHMS = ("sha256", "sha512")
EVENT_DOMAIN = b"strongroom custody event v1\n"
CHECKPOINT_DOMAIN = b"strongroom custody checkpoint v1\n"
GENESIS = "0" * 64
CHUNK = 4 * 1024 * 1024
#: The only token files a bag has: one per TSA, always over tagmanifest-sha256.txt.
TOKEN_NAME = re.compile(r"tagmanifest-sha256\.txt\.tsa([1-9][0-9]{0,2})\.tsr")
#: The other files of `signatures/` (it sits outside the tag manifests because it signs them).
SIGNATURE_FILES = frozenset({f"tagmanifest-{a}.txt.sig" for a in ALGORITHMS}
                            | {"timestamps.json"})
#: Tag files the tag manifests must list, or the signature would not seal the payload.
REQUIRED_TAGS = ("bagit.txt", "bag-info.txt", "manifest-sha256.txt", "manifest-sha512.txt")
#: The most read of a file that is small by design (key, signature, token, listing): a crafted
#: giant one must not fill memory (a 300 MB "listing" once took 675 MB of RSS).
SMALL = 1024 * 1024
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO planted in the bag must not block open()


class NotABag(Exception):
    """BAG is missing, not a folder, or holds nothing of a bag: a usage error (exit 2), not a
    failed check (exit 1), so a script can tell "wrong path" from "tampered evidence"."""


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Result:
    bag: str
    checks: list[Check] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems and all(c.ok for c in self.checks)

    def check(self, name: str, problems: list[str], detail: str = "") -> None:
        self.problems.extend(printable(f"{name}: {p}") for p in problems)
        self.checks.append(Check(name, not problems, printable(detail) if not problems else
                                 f"{len(problems)} problem(s)"))

    def to_json(self) -> dict[str, Any]:
        return {"bag": self.bag, "ok": self.ok, "info": self.info,
                "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
                "problems": self.problems}

    def to_text(self) -> str:
        return summary(self)


def printable(text: str) -> str:
    """File names that are not UTF-8 arrive as surrogate escapes, and crafted JSON can hold
    lone surrogates; neither can be printed or written as UTF-8, so a report naming them
    would crash. Show such bytes as backslash escapes instead."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(signing_public: bytes) -> str:
    digest = hashlib.sha256(signing_public).hexdigest()[:32]
    return ":".join(digest[i : i + 4] for i in range(0, 32, 4))


def _ed25519_ok(public: bytes, signature: bytes, data: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, data)
        return True
    except (InvalidSignature, ValueError):
        return False


def _b64(text: Any) -> bytes:
    try:
        return base64.b64decode(str(text), validate=True)
    except ValueError:
        return b""


# -- reading the bag without following links ------------------------------------------------
@dataclass
class Inventory:
    """What the bag folder holds, seen without following any link: its regular files (path
    relative to the bag, with "/" → size) and a named problem for everything else."""

    files: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def not_a_bag(bag: Path) -> str | None:
    """Why BAG is not a bag at all, or None. The path the user names may itself be a link to
    the bag folder (their choice); what is inside the bag is checked by `take_inventory`."""
    shown = printable(str(bag))
    try:
        st = os.stat(bag)
    except FileNotFoundError:
        return f"{shown}: no such file or folder"
    except OSError as exc:
        return f"{shown}: {exc.strerror or exc}"
    if not stat.S_ISDIR(st.st_mode):
        return f"{shown} is not a folder (decrypt and unpack the bag first)"
    try:
        names = set(os.listdir(bag))
    except OSError as exc:
        return f"{shown} cannot be read: {exc.strerror or exc}"
    marks = {"bagit.txt", "bag-info.txt", "data"} | {
        f"{kind}-{alg}.txt" for kind in ("manifest", "tagmanifest") for alg in ALGORITHMS}
    if not names & marks:
        return f"{shown} is not a bag: no bagit.txt, manifest or data folder in it"
    return None


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device")):
        if test(mode):
            return name
    return "special file"


def take_inventory(bag: Path) -> Inventory:
    """Walk the bag with lstat only (an explicit stack: no recursion limit on deep trees). A
    link is never followed, so a linked `data` or a link to a folder inside it is reported,
    not skipped and not hashed in place of the evidence."""
    inv = Inventory()
    pending = [""]
    while pending:
        rel_dir = pending.pop()
        try:
            with os.scandir(os.path.join(bag, rel_dir) if rel_dir else bag) as it:
                entries = list(it)
        except OSError as exc:
            inv.problems.append(f"{rel_dir or '.'} cannot be listed: {exc.strerror or exc}")
            continue
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                st = entry.stat(follow_symlinks=False)
                mode, size = st.st_mode, st.st_size
            except OSError as exc:
                inv.problems.append(f"{rel} cannot be examined: {exc.strerror or exc}")
                continue
            if stat.S_ISLNK(mode):
                try:
                    target = os.readlink(os.path.join(bag, rel))
                except OSError:
                    target = "?"
                inv.problems.append(f"{rel} is a symbolic link (to {target}): a bag must hold "
                                    "its files, not point to them; it was not followed")
            elif stat.S_ISDIR(mode):
                pending.append(rel)
            elif stat.S_ISREG(mode):
                inv.files[rel] = size
            else:
                inv.problems.append(f"{rel} is a {_kind(mode)}, not a regular file")
    inv.problems.sort()
    return inv


def open_in_bag(bag: Path, rel: str) -> BinaryIO:
    """Open one regular file of the bag for reading, following no link on the way.

    The inventory has already named every link; this closes the gap between that look and the
    read: each folder on the way is opened with O_NOFOLLOW relative to the one before, so a
    link swapped in meanwhile makes the open fail instead of reading elsewhere. `rel` must be
    a plain relative path (no empty, "." or ".." parts)."""
    parts = rel.split("/")
    if not rel or any(p in ("", ".", "..") for p in parts):
        raise OSError(errno.EINVAL, f"not a plain path inside the bag: {rel}")
    if _NOFOLLOW and _DIRECTORY and os.open in os.supports_dir_fd:
        dir_fd = os.open(bag, os.O_RDONLY | _DIRECTORY)
        try:
            for part in parts[:-1]:
                next_fd = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW, dir_fd=dir_fd)
                os.close(dir_fd)
                dir_fd = next_fd
            fd = os.open(parts[-1], os.O_RDONLY | _NOFOLLOW | _NONBLOCK, dir_fd=dir_fd)
        finally:
            os.close(dir_fd)
    else:  # no dir_fd (Windows): look at each step first
        path = bag
        for part in parts:
            path = path / part
            if path.is_symlink():
                raise OSError(errno.ELOOP, f"{rel} passes through a symbolic link")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, f"{rel} is not a regular file")
        return os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise


def read_in_bag(bag: Path, rel: str, limit: int | None = None) -> bytes:
    """A whole file of the bag; with `limit`, refuse one larger than that (ValueError)."""
    with open_in_bag(bag, rel) as f:
        if limit is None:
            return f.read()
        data = b""
        while len(data) <= limit and (chunk := f.read(limit + 1 - len(data))):
            data += chunk
    if len(data) > limit:
        raise ValueError(f"{rel} is larger than {limit:,} bytes, far more than a genuine one")
    return data


def _digests(bag: Path, rel: str, algorithms: tuple[str, ...],
             progress: Callable[[int], None] | None = None) -> dict[str, str]:
    hashers = {a: hashlib.new(a) for a in algorithms}
    with open_in_bag(bag, rel) as f:
        while chunk := f.read(CHUNK):
            for h in hashers.values():
                h.update(chunk)
            if progress is not None:
                progress(len(chunk))
    return {a: h.hexdigest() for a, h in hashers.items()}


# -- BagIt ------------------------------------------------------------------------------------
def _decode_path(raw: str) -> str:
    return raw.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def read_manifest(bag: Path, name: str, problems: list[str]) -> dict[str, str]:
    entries: dict[str, str] = {}
    text = read_in_bag(bag, name).decode("utf-8", errors="replace")
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        digest, sep, rel = line.partition(" ")
        rel = _decode_path(rel.lstrip(" *"))
        if not sep or not rel or any(c not in "0123456789abcdef" for c in digest.lower()):
            problems.append(f"{name} line {n} is malformed")
            continue
        norm = os.path.normpath(rel)
        if norm.startswith(("..", "/")) or os.path.isabs(rel):
            problems.append(f"{name} line {n} points outside the bag: {rel}")
            continue
        entries[rel] = digest.lower()
    return entries


def hash_files(root: Path, rels: list[str], algorithms: tuple[str, ...], workers: int,
               progress: Callable[[int], None] | None = None,
               sizes: dict[str, int] | None = None) -> dict[str, dict[str, str] | str]:
    """Every algorithm from one read of each file, files in parallel threads (hashlib and
    reads release the GIL), largest first so the threads finish together. A file that cannot
    be opened safely gives the reason (a string) instead of its digests."""
    lock = threading.Lock()

    def advance(n: int) -> None:
        if progress is not None:
            with lock:
                progress(n)

    def one(rel: str) -> tuple[str, dict[str, str] | str]:
        try:
            return rel, _digests(root, rel, algorithms, advance)
        except OSError as exc:
            return rel, str(exc.strerror or exc)

    known = sizes or {}
    order = sorted(rels, key=lambda r: -known.get(r, 0))  # big files first
    with ThreadPoolExecutor(max(1, workers)) as pool:
        return dict(pool.map(one, order))


def check_bag(bag: Path, files: dict[str, int], result: Result, workers: int,
              progress: Callable[[int], None] | None = None) -> dict[str, dict[str, str]]:
    """BagIt structure and every digest; returns the payload manifests by algorithm. Only
    files the inventory found as regular files are opened."""
    problems: list[str] = []
    if "bagit.txt" not in files:
        problems.append("bagit.txt is missing")
    else:
        text = read_in_bag(bag, "bagit.txt", SMALL).decode("utf-8", errors="replace")
        if "BagIt-Version: 1.0" not in text or "Tag-File-Character-Encoding: UTF-8" not in text:
            problems.append("bagit.txt is not a BagIt 1.0 UTF-8 declaration")
    info = read_bag_info(bag) if "bag-info.txt" in files else {}
    result.info["bag_info"] = info
    manifests: dict[str, dict[str, str]] = {}
    for alg in ALGORITHMS:
        name = f"manifest-{alg}.txt"
        if name in files:
            manifests[alg] = read_manifest(bag, name, problems)
        else:
            problems.append(f"{name} is missing")
    on_disk = sorted(r for r in files if r.startswith("data/"))
    for alg, entries in manifests.items():
        for rel in sorted(set(on_disk) - set(entries)):
            problems.append(f"{rel} is in the bag but not in manifest-{alg}.txt")
        for rel in sorted(set(entries) - set(on_disk)):
            problems.append(f"{rel} is listed in manifest-{alg}.txt but missing")
    oxum = info.get("Payload-Oxum", "")
    total = sum(files[r] for r in on_disk)
    if oxum != f"{total}.{len(on_disk)}":
        problems.append(f"Payload-Oxum {oxum or '(none)'} but the payload is "
                        f"{total}.{len(on_disk)} (bytes.files)")
    result.check("bagit structure", problems,
                 f"{len(on_disk)} payload files, {total:,} bytes")
    present = [r for r in on_disk if all(r in m for m in manifests.values())]
    digests = hash_files(bag, present, tuple(manifests), workers, progress, files)
    bad = []
    for rel in sorted(digests):
        got = digests[rel]
        if isinstance(got, str):
            bad.append(f"{rel}: cannot be read safely ({got})")
            continue
        bad += [f"{rel}: {alg} differs (file changed)" for alg in manifests
                if got[alg] != manifests[alg][rel]]
    result.check("payload digests", bad, f"{len(digests)} files × {', '.join(manifests)}")
    tag_bad: list[str] = []
    tag_count = 0
    listed: set[str] = set()
    for alg in ALGORITHMS:
        tm = f"tagmanifest-{alg}.txt"
        if tm not in files:
            tag_bad.append(f"{tm} is missing")
            continue
        entries = read_manifest(bag, tm, tag_bad)
        tag_bad += [f"{name} is not listed in {tm}, so the signature does not cover it"
                    for name in REQUIRED_TAGS if name not in entries]
        for rel, want in entries.items():
            listed.add(rel)
            if rel.startswith(("data/", "tagmanifest-")) or rel == "data":
                tag_bad.append(f"{tm} lists {rel}, which is not a tag file")
            elif rel not in files:
                tag_bad.append(f"{rel} is listed in {tm} but missing")
            else:
                try:
                    if _digests(bag, rel, (alg,))[alg] != want:
                        tag_bad.append(f"{rel}: {alg} differs (tag file changed)")
                except OSError as exc:
                    tag_bad.append(f"{rel}: cannot be read safely ({exc.strerror or exc})")
                tag_count += 1
    for rel in sorted(files):
        if rel.startswith("data/") or rel in listed or rel in (
                f"tagmanifest-{a}.txt" for a in ALGORITHMS):
            continue
        folder, _, name = rel.partition("/")
        if folder == "signatures" and (name in SIGNATURE_FILES or TOKEN_NAME.fullmatch(name)):
            continue
        tag_bad.append(f"{rel} is covered by no signed manifest (added after signing?); "
                       "it was not opened")
    result.check("tag files", tag_bad, f"{tag_count} digests")
    return manifests


def read_bag_info(bag: Path) -> dict[str, str]:
    info: dict[str, str] = {}
    try:
        text = read_in_bag(bag, "bag-info.txt", SMALL).decode("utf-8", errors="replace")
    except (OSError, ValueError):
        return info
    key = ""
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and key:
            info[key] += " " + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip()
            info[key] = value.strip()
    return info


# -- signatures -------------------------------------------------------------------------------
def load_vault_key(bag: Path, result: Result) -> bytes | None:
    rel = "data/custody/vault-public.json"
    try:
        public = json.loads(read_in_bag(bag, rel, SMALL).decode("utf-8", errors="replace"))
        key = _b64(public["signing_public"])
    except (OSError, ValueError, KeyError, TypeError):
        result.check("vault key", [f"cannot read {rel}"])
        return None
    if len(key) != 32:
        result.check("vault key", ["signing_public is not an Ed25519 public key"])
        return None
    fp = fingerprint(key)
    result.info["vault_key_fingerprint"] = fp
    recipient = public.get("age_recipient")
    result.info["vault_age_recipient"] = printable(str(recipient)[:200]) if recipient else None
    return key


def check_signatures(bag: Path, key: bytes, result: Result, expect_key: str | None) -> None:
    problems: list[str] = []
    fp = fingerprint(key)
    if expect_key is not None and expect_key.replace(":", "").lower() != fp.replace(":", ""):
        problems.append(f"the bag is signed by key {fp}, not the expected {expect_key}")
    for alg in ALGORITHMS:
        tm = f"tagmanifest-{alg}.txt"
        sig = f"signatures/{tm}.sig"
        try:
            signature = read_in_bag(bag, sig, SMALL)
        except (OSError, ValueError):
            problems.append(f"{sig} is missing")
            continue
        try:
            signed = read_in_bag(bag, tm)
        except OSError:
            signed = None
        if signed is None or not _ed25519_ok(key, signature, signed):
            problems.append(f"{sig} does not verify: {tm} was changed or the signature "
                            "replaced")
        elif alg == "sha256":  # what a receipt names: the bytes whose signature verified
            result.info["tagmanifest_sha256"] = hashlib.sha256(signed).hexdigest()
    detail = f"tag manifests signed by vault key {fp}" + (
        " (as expected)" if expect_key else " (compare with the fingerprint you were given)")
    result.check("manifest signature", problems, detail)


def check_timestamps(bag: Path, files: dict[str, int], result: Result, tsa_cert: Path | None,
                     verify_token: Callable[[bytes, bytes, Path], str] | None) -> None:
    """Tokens are found by their fixed names, never by a path read from the bag; the signed
    bag-info.txt says how many there must be."""
    name = "RFC 3161 timestamps"
    problems: list[str] = []
    tokens = sorted((m.group(0) for m in (TOKEN_NAME.fullmatch(r[len("signatures/"):])
                                          for r in files if r.startswith("signatures/")) if m),
                    key=lambda t: int(t.split(".tsa", 1)[1].split(".", 1)[0]))
    announced = result.info.get("bag_info", {}).get("Strongroom-Timestamp-Tokens")
    if announced is not None:
        if not re.fullmatch(r"[0-9]{1,3}", announced):
            problems.append(f"bag-info.txt: Strongroom-Timestamp-Tokens {announced!r} is not "
                            "a number")
        else:
            expected = [f"tagmanifest-sha256.txt.tsa{n}.tsr" for n in range(1, int(announced) + 1)]
            problems += [f"signatures/{t} is missing: the signed bag-info.txt announces "
                         f"{announced} token(s)" for t in expected if t not in tokens]
            problems += [f"signatures/{t} is not announced in the signed bag-info.txt"
                         for t in tokens if t not in expected]
    labels: dict[str, str] = {}
    if "signatures/timestamps.json" in files:
        try:
            listing = json.loads(read_in_bag(bag, "signatures/timestamps.json", SMALL))
        except (OSError, ValueError):
            listing = None
        if not isinstance(listing, list):
            problems.append("signatures/timestamps.json is not a JSON list")
            listing = []
        for n, entry in enumerate(listing, 1):
            token = entry.get("token") if isinstance(entry, dict) else None
            if not isinstance(token, str) or not TOKEN_NAME.fullmatch(token) or \
                    entry.get("data") != "tagmanifest-sha256.txt":
                problems.append(f"signatures/timestamps.json entry {n} names "
                                f"{json.dumps(entry, ensure_ascii=False)[:200]}: a token is "
                                "signatures/tagmanifest-sha256.txt.tsaN.tsr over "
                                "tagmanifest-sha256.txt; nothing it names was opened")
            elif token not in tokens:
                problems.append(f"signatures/timestamps.json lists {token}, which is not in "
                                "the bag")
            else:
                labels[token] = str(entry.get("tsa") or "")[:200]
    if not tokens and not problems:
        result.checks.append(Check(name, True, "none in this bag"))
        return
    if tsa_cert is None:
        if problems:
            result.check(name, problems)
        else:
            result.checks.append(Check(name, True,
                                       f"{len(tokens)} token(s) not checked: give --tsa-cert"))
        return
    verify_token = verify_token or openssl_verify_token
    times = []
    try:
        data = read_in_bag(bag, "tagmanifest-sha256.txt")
    except OSError:
        problems.append("tagmanifest-sha256.txt, which the tokens cover, cannot be read")
        tokens = []
    for token in tokens:
        label = labels.get(token) or token
        try:
            when = verify_token(read_in_bag(bag, f"signatures/{token}", SMALL), data, tsa_cert)
            times.append(printable(f"{label}: {when}"))
        except (OSError, ValueError) as exc:
            problems.append(f"{token} ({label}): {exc}")
    result.info["timestamps"] = times
    result.check(name, problems, "; ".join(times))


def openssl_verify_token(token: bytes, data: bytes, tsa_cert: Path) -> str:
    """`openssl ts -verify`; returns the token's time. Raises ValueError when it fails."""
    import tempfile

    openssl = shutil.which("openssl")
    if openssl is None:
        raise ValueError("openssl is not installed, cannot check the token")
    with tempfile.TemporaryDirectory() as tmp:
        tok, dat = Path(tmp, "t.tsr"), Path(tmp, "d")
        tok.write_bytes(token)
        dat.write_bytes(data)
        ok = subprocess.run([openssl, "ts", "-verify", "-data", str(dat), "-in", str(tok),
                             "-CAfile", str(tsa_cert)], capture_output=True, text=True)
        if ok.returncode != 0 or "Verification: OK" not in ok.stdout:
            out = (ok.stderr or ok.stdout).strip()
            raise ValueError("openssl ts -verify failed: "
                             + (out.splitlines()[-1] if out else "no output"))
        text = subprocess.run([openssl, "ts", "-reply", "-in", str(tok), "-text"],
                              capture_output=True, text=True).stdout
    for line in text.splitlines():
        if line.startswith("Time stamp:"):
            return line.split(":", 1)[1].strip()
    return "time unknown"


# -- custody ----------------------------------------------------------------------------------
def check_custody(bag: Path, key: bytes, result: Result,
                  manifests: dict[str, dict[str, str]], files: dict[str, int]) -> None:
    problems: list[str] = []
    events: list[dict[str, Any]] = []
    for n, line in enumerate(_lines(bag, "data/custody/events.jsonl", problems), 1):
        try:
            events.append(json.loads(line))
        except ValueError:
            problems.append(f"events.jsonl line {n} is not JSON")
    prev = GENESIS
    by_seq: dict[int, dict[str, Any]] = {}
    full = 0
    for i, ev in enumerate(events, 1):
        if not isinstance(ev, dict):
            problems.append(f"events.jsonl line {i} is not an event")
            break
        seq = ev.get("seq")
        if seq != i:
            problems.append(f"event #{i} has seq {seq}: events are missing or reordered")
            break
        if ev.get("prev_hash") != prev:
            problems.append(f"event {seq}: prev_hash does not link to event {i - 1}")
        if not ev.get("redacted"):
            full += 1
            body = {k: ev.get(k) for k in ("seq", "time", "actor", "action", "subject",
                                            "details", "prev_hash")}
            h = hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()
            if h != ev.get("hash"):
                problems.append(f"event {seq} ({ev.get('action')}): content does not match "
                                "its hash (edited)")
        h_hex = str(ev.get("hash", ""))
        try:
            signed = EVENT_DOMAIN + bytes.fromhex(h_hex)
        except ValueError:
            signed = b""
        if len(h_hex) != 64 or not _ed25519_ok(key, _b64(ev.get("signature")), signed):
            problems.append(f"event {seq}: signature does not verify")
        prev = h_hex
        by_seq[i] = ev
    checkpoints = []
    for n, line in enumerate(_lines(bag, "data/custody/checkpoints.jsonl", problems), 1):
        try:
            checkpoints.append(json.loads(line))
        except ValueError:
            problems.append(f"checkpoints.jsonl line {n} is not JSON")
    last_cp = 0
    for cp in checkpoints:
        if not isinstance(cp, dict):
            problems.append("checkpoints.jsonl holds a line that is not a checkpoint")
            continue
        seq = cp.get("seq")
        signed = CHECKPOINT_DOMAIN + canonical_json(
            {"seq": seq, "head_hash": cp.get("head_hash"), "time": cp.get("time")}).encode()
        if not _ed25519_ok(key, _b64(cp.get("signature")), signed):
            problems.append(f"checkpoint {seq}: signature does not verify")
        elif not isinstance(seq, int) or seq not in by_seq or \
                by_seq[seq].get("hash") != cp.get("head_hash"):
            problems.append(f"checkpoint {seq}: the log's event {seq} is not the one it signed")
        elif seq > last_cp:
            last_cp = seq
    if events and last_cp != len(events):
        problems.append(f"the log ends at event {len(events)} but the last checkpoint is "
                        f"{last_cp}: events after it cannot be trusted")
    result.info["custody_events"] = {"total": len(events), "shown": full,
                                     "redacted": len(events) - full, "checkpoint": last_cp}
    result.check("custody chain", problems,
                 f"{len(events)} events ({full} shown, {len(events) - full} redacted), "
                 f"sealed by checkpoint {last_cp}")
    # Each original: ingested by the vault, with the same digest and size.
    ingested: dict[str, dict[str, Any]] = {}
    for ev in events:
        if isinstance(ev, dict) and ev.get("action") == "ingested" and \
                isinstance(ev.get("details"), dict):
            ingested[str(ev["details"].get("sha256"))] = ev
    orig_problems = []
    originals = sorted(r for r in manifests.get("sha256", {}) if r.startswith("data/originals/"))
    for rel in originals:
        digest = manifests["sha256"][rel]
        name = rel.rsplit("/", 1)[-1].split(".", 1)[0]
        seen = ingested.get(digest)
        if name != digest:
            orig_problems.append(f"{rel}: its name is not its SHA-256 {digest}")
        if seen is None:
            orig_problems.append(f"{rel}: no `ingested` event for SHA-256 {digest}")
        elif rel in files and seen["details"].get("size") != files[rel]:
            orig_problems.append(f"{rel}: size differs from the `ingested` event {seen['seq']}")
    result.check("originals in custody", orig_problems,
                 f"{len(originals)} originals each match their `ingested` event")


def _lines(bag: Path, rel: str, problems: list[str]) -> list[str]:
    try:
        text = read_in_bag(bag, rel).decode("utf-8", errors="replace")
    except OSError:
        problems.append(f"{rel.rsplit('/', 1)[-1]} is missing")
        return []
    return [ln for ln in text.splitlines() if ln.strip()]


# -- all together -----------------------------------------------------------------------------
def _guarded(result: Result, name: str, check: Callable[..., Any], *args: Any) -> Any:
    try:
        return check(*args)
    except Exception as exc:
        result.check(name, [f"cannot be read: {type(exc).__name__}: {exc}"])
        return None


def verify_bag(bag: Path, *, expect_key: str | None = None, tsa_cert: Path | None = None,
               workers: int = 2, progress: Callable[[int], None] | None = None,
               verify_token: Callable[[bytes, bytes, Path], str] | None = None) -> Result:
    """Every check on BAG; raises NotABag when BAG is not a bag at all (a usage error)."""
    reason = not_a_bag(bag)
    if reason is not None:
        raise NotABag(reason)
    result = Result(printable(str(bag)))
    # A crafted bag must give a failed check, never a crash of the verifier.
    try:
        inventory = take_inventory(bag)
    except Exception as exc:  # listing is already guarded per folder; this is a last resort
        inventory = Inventory(problems=[f"cannot be listed: {type(exc).__name__}: {exc}"])
    files = inventory.files
    result.check("regular files only", inventory.problems,
                 f"{len(files)} files, no links or special files")
    manifests = _guarded(result, "bagit structure", check_bag, bag, files, result, workers,
                         progress)
    key = _guarded(result, "vault key", load_vault_key, bag, result)
    if key is not None:
        _guarded(result, "manifest signature", check_signatures, bag, key, result, expect_key)
        _guarded(result, "custody chain", check_custody, bag, key, result, manifests or {},
                 files)
    _guarded(result, "RFC 3161 timestamps", check_timestamps, bag, files, result, tsa_cert,
             verify_token)
    return result


def summary(result: Result) -> str:
    lines = [f"bag: {result.bag}"]
    info = result.info.get("bag_info", {})
    for k in ("External-Identifier", "External-Description", "Source-Organization",
              "Bagging-Date"):
        if k in info:
            lines.append(f"  {k}: {info[k]}")
    if "vault_key_fingerprint" in result.info:
        lines.append(f"  signing key fingerprint: {result.info['vault_key_fingerprint']}")
    for c in result.checks:
        lines.append(f"  [{'OK' if c.ok else 'FAIL'}] {c.name}: {c.detail}")
    for p in result.problems:
        lines.append(f"  problem: {p}")
    lines.append("RESULT: " + ("every check passed" if result.ok else "VERIFICATION FAILED"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Verify a Strongroom handover bag.")
    ap.add_argument("bag", type=Path)
    ap.add_argument("--expect-key", help="the vault signing key fingerprint you were given")
    ap.add_argument("--tsa-cert", type=Path, help="CA certificate of the timestamp authority")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    try:
        result = verify_bag(args.bag, expect_key=args.expect_key, tsa_cert=args.tsa_cert,
                            workers=args.workers)
    except NotABag as exc:
        if args.json:
            print(json.dumps({"error": str(exc)}, ensure_ascii=False))
        else:
            print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result.to_json(), indent=2, ensure_ascii=False) if args.json
          else summary(result))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
