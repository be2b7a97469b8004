#!/usr/bin/env python3
"""Verify a Strongroom handover bag, without Strongroom and without its vault.

    python3 verify.py BAG [--expect-key FINGERPRINT] [--tsa-cert CA.pem] [--json]

Needs Python 3.9+ and the `cryptography` package (pip install cryptography); `openssl` on PATH
to check RFC 3161 timestamps. Exit code 0 when every check passed, 1 when one failed, 2 when
the command was used wrongly. This same file is `strongroom verify-export`.

What is checked, and what each check proves:
1. BagIt 1.0 structure: `bagit.txt`, `bag-info.txt` (Payload-Oxum: file count and bytes),
   every payload file listed in every manifest and every listed file present.
2. Every payload file's SHA-256 and SHA-512 and every tag file's digests: nothing changed.
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
6. RFC 3161 timestamp tokens over `tagmanifest-sha256.txt` (`signatures/*.tsr`), with
   `openssl ts -verify` against the TSA certificate you trust (`--tsa-cert`).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ALGORITHMS = ("sha256", "sha512")
EVENT_DOMAIN = b"strongroom custody event v1\n"
CHECKPOINT_DOMAIN = b"strongroom custody checkpoint v1\n"
GENESIS = "0" * 64
CHUNK = 4 * 1024 * 1024


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
        self.problems.extend(f"{name}: {p}" for p in problems)
        self.checks.append(Check(name, not problems, detail if not problems else
                                 f"{len(problems)} problem(s)"))

    def to_json(self) -> dict[str, Any]:
        return {"bag": self.bag, "ok": self.ok, "info": self.info,
                "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
                "problems": self.problems}


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


# -- BagIt ------------------------------------------------------------------------------------
def _decode_path(raw: str) -> str:
    return raw.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def read_manifest(path: Path, problems: list[str]) -> dict[str, str]:
    entries: dict[str, str] = {}
    for n, line in enumerate(path.read_text("utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        digest, sep, rel = line.partition(" ")
        rel = _decode_path(rel.lstrip(" *"))
        if not sep or not rel or any(c not in "0123456789abcdef" for c in digest.lower()):
            problems.append(f"{path.name} line {n} is malformed")
            continue
        norm = os.path.normpath(rel)
        if norm.startswith(("..", "/")) or os.path.isabs(rel):
            problems.append(f"{path.name} line {n} points outside the bag: {rel}")
            continue
        entries[rel] = digest.lower()
    return entries


def hash_files(root: Path, rels: list[str], algorithms: tuple[str, ...], workers: int,
               progress: Callable[[int], None] | None = None) -> dict[str, dict[str, str]]:
    """Every algorithm from one read of each file, files in parallel threads (hashlib and
    reads release the GIL), largest first so the threads finish together."""
    lock = threading.Lock()

    def one(rel: str) -> tuple[str, dict[str, str]]:
        hashers = {a: hashlib.new(a) for a in algorithms}
        with open(root / rel, "rb", buffering=0) as f:
            while chunk := f.read(CHUNK):
                for h in hashers.values():
                    h.update(chunk)
                if progress is not None:
                    with lock:
                        progress(len(chunk))
        return rel, {a: h.hexdigest() for a, h in hashers.items()}

    order = sorted(rels, key=lambda r: -(root / r).stat().st_size)  # big files first
    with ThreadPoolExecutor(max(1, workers)) as pool:
        return dict(pool.map(one, order))


def check_bag(bag: Path, result: Result, workers: int,
              progress: Callable[[int], None] | None = None) -> dict[str, dict[str, str]]:
    """BagIt structure and every digest; returns the payload manifests by algorithm."""
    problems: list[str] = []
    declaration = bag / "bagit.txt"
    if not declaration.is_file():
        result.check("bagit structure", [f"no bagit.txt in {bag}"])
        return {}
    text = declaration.read_text("utf-8", errors="replace")
    if "BagIt-Version: 1.0" not in text or "Tag-File-Character-Encoding: UTF-8" not in text:
        problems.append("bagit.txt is not a BagIt 1.0 UTF-8 declaration")
    info = read_bag_info(bag)
    result.info["bag_info"] = info
    manifests: dict[str, dict[str, str]] = {}
    for alg in ALGORITHMS:
        path = bag / f"manifest-{alg}.txt"
        if path.is_file():
            manifests[alg] = read_manifest(path, problems)
        else:
            problems.append(f"manifest-{alg}.txt is missing")
    on_disk = sorted(str(p.relative_to(bag)) for p in (bag / "data").rglob("*") if p.is_file()
                     ) if (bag / "data").is_dir() else []
    for alg, entries in manifests.items():
        for rel in sorted(set(on_disk) - set(entries)):
            problems.append(f"{rel} is in the bag but not in manifest-{alg}.txt")
        for rel in sorted(set(entries) - set(on_disk)):
            problems.append(f"{rel} is listed in manifest-{alg}.txt but missing")
    oxum = info.get("Payload-Oxum", "")
    total = sum((bag / r).stat().st_size for r in on_disk)
    if oxum != f"{total}.{len(on_disk)}":
        problems.append(f"Payload-Oxum {oxum or '(none)'} but the payload is "
                        f"{total}.{len(on_disk)} (bytes.files)")
    result.check("bagit structure", problems,
                 f"{len(on_disk)} payload files, {total:,} bytes")
    present = [r for r in on_disk if all(r in m for m in manifests.values())]
    digests = hash_files(bag, present, tuple(manifests), workers, progress)
    bad = [f"{rel}: {alg} differs (file changed)" for rel in sorted(digests)
           for alg, want in ((a, manifests[a][rel]) for a in manifests)
           if digests[rel][alg] != want]
    result.check("payload digests", bad, f"{len(digests)} files × {', '.join(manifests)}")
    tag_bad: list[str] = []
    tag_count = 0
    for alg in ALGORITHMS:
        tm = bag / f"tagmanifest-{alg}.txt"
        if not tm.is_file():
            tag_bad.append(f"tagmanifest-{alg}.txt is missing")
            continue
        for rel, want in read_manifest(tm, tag_bad).items():
            path = bag / rel
            if not path.is_file():
                tag_bad.append(f"{rel} is listed in {tm.name} but missing")
            elif hashlib.new(alg, path.read_bytes()).hexdigest() != want:
                tag_bad.append(f"{rel}: {alg} differs (tag file changed)")
            tag_count += 1
    result.check("tag files", tag_bad, f"{tag_count} digests")
    return manifests


def read_bag_info(bag: Path) -> dict[str, str]:
    info: dict[str, str] = {}
    path = bag / "bag-info.txt"
    if not path.is_file():
        return info
    key = ""
    for line in path.read_text("utf-8", errors="replace").splitlines():
        if line[:1] in (" ", "\t") and key:
            info[key] += " " + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip()
            info[key] = value.strip()
    return info


# -- signatures -------------------------------------------------------------------------------
def load_vault_key(bag: Path, result: Result) -> bytes | None:
    path = bag / "data" / "custody" / "vault-public.json"
    try:
        public = json.loads(path.read_text("utf-8", errors="replace"))
        key = _b64(public["signing_public"])
    except (OSError, ValueError, KeyError, TypeError):
        result.check("vault key", [f"cannot read {path.relative_to(bag)}"])
        return None
    if len(key) != 32:
        result.check("vault key", ["signing_public is not an Ed25519 public key"])
        return None
    fp = fingerprint(key)
    result.info["vault_key_fingerprint"] = fp
    result.info["vault_age_recipient"] = public.get("age_recipient")
    return key


def check_signatures(bag: Path, key: bytes, result: Result, expect_key: str | None) -> None:
    problems: list[str] = []
    fp = fingerprint(key)
    if expect_key is not None and expect_key.replace(":", "").lower() != fp.replace(":", ""):
        problems.append(f"the bag is signed by key {fp}, not the expected {expect_key}")
    for alg in ALGORITHMS:
        tm = bag / f"tagmanifest-{alg}.txt"
        sig = bag / "signatures" / f"{tm.name}.sig"
        if not sig.is_file():
            problems.append(f"{sig.relative_to(bag)} is missing")
        elif not tm.is_file() or not _ed25519_ok(key, sig.read_bytes(), tm.read_bytes()):
            problems.append(f"{sig.relative_to(bag)} does not verify: {tm.name} was changed "
                            "or the signature replaced")
    detail = f"tag manifests signed by vault key {fp}" + (
        " (as expected)" if expect_key else " (compare with the fingerprint you were given)")
    result.check("manifest signature", problems, detail)


def check_timestamps(bag: Path, result: Result, tsa_cert: Path | None,
                     verify_token: Callable[[bytes, bytes, Path], str] | None) -> None:
    listing = bag / "signatures" / "timestamps.json"
    if not listing.is_file():
        result.checks.append(Check("RFC 3161 timestamps", True, "none in this bag"))
        return
    try:
        tokens = json.loads(listing.read_text("utf-8", errors="replace"))
    except ValueError:
        result.check("RFC 3161 timestamps", ["signatures/timestamps.json is not JSON"])
        return
    if tsa_cert is None:
        result.checks.append(Check("RFC 3161 timestamps", True,
                                   f"{len(tokens)} token(s) not checked: give --tsa-cert"))
        return
    verify_token = verify_token or openssl_verify_token
    problems: list[str] = []
    times = []
    for t in tokens:
        data_file = bag / str(t.get("data", ""))
        token_file = bag / "signatures" / str(t.get("token", ""))
        if not data_file.is_file() or not token_file.is_file():
            problems.append(f"token {t.get('token')} or its data {t.get('data')} is missing")
            continue
        try:
            when = verify_token(token_file.read_bytes(), data_file.read_bytes(), tsa_cert)
            times.append(f"{t.get('tsa')}: {when}")
        except ValueError as exc:
            problems.append(f"{token_file.name} ({t.get('tsa')}): {exc}")
    result.info["timestamps"] = times
    result.check("RFC 3161 timestamps", problems, "; ".join(times))


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
                  manifests: dict[str, dict[str, str]]) -> None:
    events_path = bag / "data" / "custody" / "events.jsonl"
    cps_path = bag / "data" / "custody" / "checkpoints.jsonl"
    problems: list[str] = []
    events: list[dict[str, Any]] = []
    for n, line in enumerate(_lines(events_path, problems), 1):
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
    for n, line in enumerate(_lines(cps_path, problems), 1):
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
        elif (bag / rel).is_file() and seen["details"].get("size") != (bag / rel).stat().st_size:
            orig_problems.append(f"{rel}: size differs from the `ingested` event {seen['seq']}")
    result.check("originals in custody", orig_problems,
                 f"{len(originals)} originals each match their `ingested` event")


def _lines(path: Path, problems: list[str]) -> list[str]:
    try:
        return [ln for ln in path.read_text("utf-8", errors="replace").splitlines() if ln.strip()]
    except OSError:
        problems.append(f"{path.name} is missing")
        return []


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
    result = Result(str(bag))
    if not bag.is_dir():
        result.check("bagit structure", [f"{bag} is not a folder"])
        return result
    # A crafted bag must give a failed check, never a crash of the verifier.
    manifests = _guarded(result, "bagit structure", check_bag, bag, result, workers, progress)
    key = load_vault_key(bag, result)
    if key is not None:
        _guarded(result, "manifest signature", check_signatures, bag, key, result, expect_key)
        _guarded(result, "custody chain", check_custody, bag, key, result, manifests or {})
    _guarded(result, "RFC 3161 timestamps", check_timestamps, bag, result, tsa_cert,
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
    result = verify_bag(args.bag, expect_key=args.expect_key, tsa_cert=args.tsa_cert,
                        workers=args.workers)
    print(json.dumps(result.to_json(), indent=2, ensure_ascii=False) if args.json
          else summary(result))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
