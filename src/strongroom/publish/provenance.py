"""C2PA provenance for a published (redacted) video: who made it, from what, and how.

A published clip travels without us: re-uploaded, re-shared, questioned. Its C2PA manifest,
signed with the organisation's certificate, lets anyone with a C2PA reader check that the file
is the one we published (every byte outside the manifest is hashed: any change shows up as a
hash mismatch) and read what we say it is: opened from an original (named only by its SHA-256,
so that the custody record can be matched without the original itself, or anything of it,
leaving the vault), then edited — faces hidden, voices masked — by Strongroom, under a
redaction spec (its SHA-256 and version) for a numbered publication.

The original is an ingredient by reference only: no data, no thumbnail, no format (a CCTV
export's container would say something about the recorder). c2pa-python drops an ingredient's
`hash` field, so its SHA-256 rides in the ingredient's `metadata` and, with the rest of our
facts, in the custom assertion `org.strongroom.provenance`.

Signing is offline: an ES256 key and a private CA chain. A self-signed chain reads back as
valid but untrusted; `read(..., trust_anchors=root.pem)` tells whether it chains to that root.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strongroom.errors import StrongroomError

#: The label of our own assertion in the manifest.
ASSERTION = "org.strongroom.provenance"
#: The key carrying the original's SHA-256 in the ingredient's metadata.
INGREDIENT_SHA256 = "org.strongroom.sha256"
#: The ingredient's title and label (what the `c2pa.opened` action points at).
ORIGINAL = "original"
MIME = "video/mp4"
#: A validation code that only means "no trust anchor given for this signer": not a failure
#: when the caller asked nothing about trust.
UNTRUSTED = "signingCredential.untrusted"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Signing:
    """The organisation's signing credentials (ES256 only: what C2PA validators all accept)."""

    cert_chain: Path  # PEM: the organisation's leaf certificate, then its CA chain
    key: Path  # its private key, PKCS#8 PEM (ES256 / P-256)
    tsa_url: str | None = None  # an RFC 3161 time-stamp authority, if any


def _c2pa() -> Any:
    """The c2pa module, imported on first use (a native library: only publishing needs it)."""
    import c2pa  # type: ignore[import-untyped]

    return c2pa


def _version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("strongroom")
    except PackageNotFoundError:
        return None


def _agent() -> dict[str, str]:
    version = _version()
    return {"name": "Strongroom", **({"version": version} if version else {})}


def _read_bytes(path: Path, what: str) -> bytes:
    """A certificate, key or trust anchors file: at most 1 MiB (`read_small`: /dev/zero or a
    pipe is one clear error, not a full memory or a wait)."""
    from strongroom.smallfiles import read_small

    path = Path(path)
    if path.is_dir():
        raise StrongroomError(f"{what} {path} is a folder, not a file")
    if not path.exists():
        raise StrongroomError(f"{what} {path} does not exist")
    return read_small(path, what)


def _credentials(signing: Signing) -> tuple[bytes, bytes]:
    """The chain and key as c2pa wants them, checked first (`vault.credentials`)."""
    from strongroom.vault.credentials import signing_credentials

    return signing_credentials(_read_bytes(signing.cert_chain, "certificate chain"),
                               _read_bytes(signing.key, "private key"),
                               chain_name=str(signing.cert_chain), key_name=str(signing.key))


def _check_mp4(src: Path) -> None:
    """`src` must be a whole MP4 (ISO BMFF): an `ftyp` box first, a `moov` and an `mdat`, and
    top-level boxes that end exactly at the end of the file. c2pa refuses text only with "Box
    size extends beyond asset bounds", and signs a truncated MP4 without a word."""
    import struct

    kinds: list[bytes] = []
    try:
        with open(src, "rb") as f:
            end = os.fstat(f.fileno()).st_size
            at = 0
            while at < end:
                f.seek(at)
                head = f.read(16)
                size, kind = struct.unpack(">I4s", head[:8]) if len(head) >= 8 else (0, b"")
                if size == 1 and len(head) == 16:
                    size = struct.unpack(">Q", head[8:])[0]
                elif size == 0 and kind:
                    size = end - at  # "to the end of the file"
                if size < 8 or at + size > end:
                    break
                kinds.append(kind)
                at += size
    except FileNotFoundError:
        raise StrongroomError(f"{src} does not exist") from None
    except IsADirectoryError:
        raise StrongroomError(f"{src} is a folder, not a video") from None
    except OSError as exc:
        raise StrongroomError(f"cannot read {src}: {exc.strerror}") from None
    if not kinds or kinds[0] != b"ftyp":
        raise StrongroomError(f"{src} is not an MP4 video (no ftyp box at its start)")
    if at != end:
        raise StrongroomError(f"{src} is not a complete MP4 video: its last {end - at} bytes "
                              "are not a whole box (truncated or damaged)")
    for kind, what in ((b"moov", "index (moov)"), (b"mdat", "media data (mdat)")):
        if kind not in kinds:
            raise StrongroomError(f"{src} is not a complete MP4 video: it has no {what}")


def _check_facts(original_sha256: str, spec_sha256: str, spec_version: int, publication: int,
                 organisation: str, description: str, tsa_url: str | None) -> None:
    for name, value in (("original_sha256", original_sha256), ("spec_sha256", spec_sha256)):
        if not isinstance(value, str) or not _HEX64.fullmatch(value):
            raise StrongroomError(f"{name} must be 64 lower-case hex digits, not {value!r}")
    for name, number in (("spec_version", spec_version), ("publication", publication)):
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise StrongroomError(f"{name} must be a whole number ≥ 0, not {number!r}")
    for name, text in (("organisation", organisation), ("description", description)):
        if not isinstance(text, str) or not text.strip():
            raise StrongroomError(f"{name} must be given")
    if tsa_url is not None and not re.fullmatch(r"https?://\S+", tsa_url):
        raise StrongroomError(f"time-stamp authority {tsa_url!r} is not an http(s) URL")


def _manifest(title: str, *, original_sha256: str, spec_sha256: str, spec_version: int,
              publication: int, organisation: str, description: str) -> dict[str, Any]:
    agent = _agent()
    return {
        "claim_generator_info": [agent],
        "title": title,
        "format": MIME,
        "ingredients": [{
            "title": ORIGINAL, "label": ORIGINAL, "relationship": "parentOf",
            "metadata": {INGREDIENT_SHA256: original_sha256},
        }],
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [
                # C2PA: the first action is c2pa.created or c2pa.opened. `c2pa.redacted` would
                # mean an assertion was removed, not pixels hidden: that is an edit.
                {"action": "c2pa.opened", "parameters": {"ingredientIds": [ORIGINAL]}},
                {"action": "c2pa.edited", "description": description, "softwareAgent": agent},
            ]}},
            {"label": ASSERTION, "data": {
                "original_sha256": original_sha256, "redaction_spec_sha256": spec_sha256,
                "spec_version": spec_version, "publication": publication,
                "organisation": organisation,
            }},
        ],
    }


def _place(tmp: Path, dst: Path) -> None:
    """Give `tmp` the name `dst` unless that name exists (a hard link fails atomically if it
    does); filesystems without hard links get a checked rename."""
    try:
        os.link(tmp, dst)
    except FileExistsError:
        raise StrongroomError(f"{dst} exists; nothing is overwritten") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK):
            raise StrongroomError(f"cannot write {dst}: {exc.strerror}") from None
        if dst.exists() or dst.is_symlink():
            raise StrongroomError(f"{dst} exists; nothing is overwritten") from None
        os.rename(tmp, dst)


def ready(signing: Signing, *, organisation: str) -> None:
    """Everything `sign` checks before it signs that does not depend on the file: the
    credentials, the organisation's name, the time-stamp URL. Called before the draft leaves
    the vault, so that a missing key is an error with nothing on the record."""
    _check_facts("0" * 64, "0" * 64, 0, 0, organisation, "-", signing.tsa_url)
    _credentials(signing)


def sign(src: Path, dst: Path, *, signing: Signing, original_sha256: str, spec_sha256: str,
         spec_version: int, publication: int, organisation: str,
         description: str, title: str | None = None) -> dict[str, Any]:
    """Write `dst` (which must not exist): the MP4 `src` carrying a signed C2PA manifest that
    says it was opened from the original `original_sha256` and edited (`description`) by
    Strongroom under redaction spec `spec_sha256` version `spec_version`, for publication
    `publication` of `organisation`; its title is `title` (default: `dst`'s name).

    The signed file is written beside `dst` under a temporary name, read back and checked,
    and only then given its name: no half-written or unverifiable file is left on any failure.
    Returns {"manifest_label", "sha256", "size"} of the file written."""
    import tempfile

    from strongroom.fsio import check_new_output, fsync_dir

    src, dst = Path(src), Path(dst)
    _check_facts(original_sha256, spec_sha256, spec_version, publication, organisation,
                 description, signing.tsa_url)
    _check_mp4(src)
    check_new_output(dst)
    chain, key = _credentials(signing)
    manifest = _manifest(title or dst.name, original_sha256=original_sha256,
                         spec_sha256=spec_sha256, spec_version=spec_version,
                         publication=publication, organisation=organisation,
                         description=description)
    c2pa = _c2pa()
    try:
        fd, name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".partial", dir=dst.parent)
    except OSError as exc:
        raise StrongroomError(f"cannot write {dst}: {exc.strerror}") from None
    tmp = Path(name)
    try:
        try:
            with os.fdopen(fd, "w+b") as out:
                info = c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain, key,
                                           signing.tsa_url)
                # The builder makes a ~1 MB thumbnail of the asset unless told not to.
                settings = c2pa.Settings.from_dict({"builder": {"thumbnail": {"enabled": False}}})
                with (settings, c2pa.Signer.from_info(info) as signer,
                      c2pa.Context(settings=settings) as context,
                      c2pa.Builder(manifest, context=context) as builder,
                      open(src, "rb") as source):
                    builder.sign(signer, MIME, source, out)
                out.flush()
                os.fsync(out.fileno())
        except c2pa.C2paError as exc:
            raise StrongroomError(f"signing {src} failed: {exc}") from None
        except OSError as exc:
            raise StrongroomError(f"signing {src} into {dst} failed: {exc.strerror}") from None
        found = read(tmp)
        if not found["signed"] or not found["valid"]:
            problems = "; ".join(found["problems"]) or "no manifest found"
            raise StrongroomError(f"the signed copy of {src} does not verify: {problems}")
        sha256, size = _digest(tmp)
        _place(tmp, dst)
        fsync_dir(dst.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return {"manifest_label": found["manifest_label"], "sha256": sha256, "size": size}


def _digest(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _anchors(path: Path) -> str:
    """The trust anchors' PEM, checked to hold at least one certificate (c2pa would otherwise
    just report every signer untrusted)."""
    from strongroom.vault.credentials import certificates_pem

    return certificates_pem(_read_bytes(path, "trust anchors"), what=f"trust anchors {path}")


def _problems(store: dict[str, Any], *, trust_asked: bool) -> list[str]:
    """Every failure code the validation found ("code: explanation"), in the active manifest
    and in its ingredients; "untrusted" only when the caller gave trust anchors."""
    results = store.get("validation_results")
    if isinstance(results, dict):
        failures = list((results.get("activeManifest") or {}).get("failure") or [])
        for delta in results.get("ingredientDeltas") or []:
            failures += (delta.get("validationDeltas") or {}).get("failure") or []
    else:
        failures = list(store.get("validation_status") or [])
    seen: list[str] = []
    for failure in failures:
        code = str(failure.get("code", "?"))
        if code == UNTRUSTED and not trust_asked:
            continue
        text = f"{code}: {failure['explanation']}" if failure.get("explanation") else code
        if text not in seen:
            seen.append(text)
    return seen


def read(path: Path, *, trust_anchors: Path | None = None) -> dict[str, Any]:
    """What the C2PA manifest of `path` says and whether it holds.

    `signed`: a manifest was found and read; `valid`: its signature and every hash hold (the
    file is as signed); `trusted`: the signer chains to one of `trust_anchors` (None when none
    are given); our assertion's facts (None when absent, e.g. a file someone else signed);
    `actions` in order; `signer`: the organisation (or common name) in the signing
    certificate; `problems`: the validation failures. A file without a manifest reads as
    `signed: False`, not as an error; one whose manifest cannot be decoded as `signed: False`
    with the reason among the problems."""
    path = Path(path)
    anchors = _anchors(trust_anchors) if trust_anchors is not None else None
    result: dict[str, Any] = {
        "signed": False, "valid": False, "trusted": None if anchors is None else False,
        "manifest_label": None, "original_sha256": None, "redaction_spec_sha256": None,
        "spec_version": None, "publication": None, "organisation": None, "actions": [],
        "signer": None, "problems": [],
    }
    c2pa = _c2pa()
    config: dict[str, Any] = {"verify": {"verify_trust": True}}
    if anchors is not None:
        config["trust"] = {"trust_anchors": anchors}
    try:
        with open(path, "rb") as f, c2pa.Context.from_dict(config) as context:
            # The format is only a hint: the library goes by the bytes.
            reader = c2pa.Reader.try_create(MIME, f, None, context)
            if reader is None:
                return result
            with reader:
                store = json.loads(reader.json())
    except FileNotFoundError:
        raise StrongroomError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise StrongroomError(f"{path} is a folder, not a file") from None
    except OSError as exc:
        raise StrongroomError(f"cannot read {path}: {exc.strerror}") from None
    except c2pa.C2paError as exc:
        result["problems"] = [f"no readable manifest: {exc}"]
        return result
    return _summary(store, result, trust_asked=anchors is not None)


def _summary(store: dict[str, Any], result: dict[str, Any], *,
             trust_asked: bool) -> dict[str, Any]:
    label = store.get("active_manifest")
    manifest = (store.get("manifests") or {}).get(label) or {}
    state = store.get("validation_state")
    problems = _problems(store, trust_asked=trust_asked)
    result.update(signed=True, manifest_label=label, problems=problems,
                  valid=state in ("Valid", "Trusted") if state else not problems)
    if trust_asked:
        result["trusted"] = state == "Trusted"
    info = manifest.get("signature_info") or {}
    result["signer"] = info.get("issuer") or info.get("common_name")
    for assertion in manifest.get("assertions") or []:
        name, data = assertion.get("label", ""), assertion.get("data") or {}
        if name == "c2pa.actions" or name.startswith("c2pa.actions.v"):
            result["actions"] += [a.get("action") for a in data.get("actions") or []]
        elif name == ASSERTION:
            for key in ("original_sha256", "redaction_spec_sha256", "spec_version",
                        "publication", "organisation"):
                result[key] = data.get(key)
    for ingredient in manifest.get("ingredients") or []:
        claimed = (ingredient.get("metadata") or {}).get(INGREDIENT_SHA256)
        if ingredient.get("relationship") != "parentOf" or claimed is None:
            continue
        if result["original_sha256"] is None:
            result["original_sha256"] = claimed
        elif claimed != result["original_sha256"]:
            result["problems"].append(
                f"strongroom.original.mismatch: the ingredient names original {claimed}, "
                f"the {ASSERTION} assertion {result['original_sha256']}")
            result["valid"] = False
    return result
