"""Handover and receipt: the two custody events after `exported`.

`handed_over` is the sender's statement (to whom, how, which bag). A receipt is the recipient's:
a small JSON document, signed with the recipient's own Ed25519 key (an OpenSSH `ssh-ed25519`
key or a PKCS#8 PEM key), naming the bag by its identifier and the SHA-256 of its signed tag
manifest, and that the bag verified when it arrived (a bag that does not verify gets no
receipt: the recipient reports the problems instead). Imported back into the vault it becomes
a `received` event that carries the signature, so the log shows both sides of the handover.

    body      = {"type": "strongroom receipt v1", bag_id, tagmanifest_sha256, payload_oxum,
                 received_at, recipient, recipient_key, bag_verified}
    signature = Ed25519( "strongroom receipt v1\\n" || canonical_json(body) )
"""

from __future__ import annotations

import base64
import errno
import json
import os
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from strongroom.catalogue.models import CustodyEvent
from strongroom.custody import events
from strongroom.custody.chain import canonical_json
from strongroom.errors import IntegrityError, StrongroomError
from strongroom.export.verifier import NotABag, Result, printable, verify_bag
from strongroom.smallfiles import read_small
from strongroom.vault import Vault
from strongroom.vault.receipts import ReceiptKey, check_signature

RECEIPT_TYPE = "strongroom receipt v1"
DOMAIN = b"strongroom receipt v1\n"
#: Exactly what `export` writes as External-Identifier (bag.py): it names the receipt file.
BAG_ID = re.compile(r"strongroom-export-[0-9]{8}-[0-9a-f]{12}")


def make_receipt(result: Result, key: ReceiptKey, recipient: str) -> dict[str, Any]:
    """The signed receipt for a bag that verified (`result`). Everything it names comes from
    that verification, so the digest is of the very tag manifest whose signature was checked,
    not of a file read again later."""
    info = result.info.get("bag_info", {})
    bag_id = bag_identifier(info.get("External-Identifier"))
    digest = result.info.get("tagmanifest_sha256")
    if not result.ok or not isinstance(digest, str):
        raise IntegrityError(f"{result.bag} did not verify; no receipt was written")
    body = {
        "type": RECEIPT_TYPE, "bag_id": bag_id,
        "tagmanifest_sha256": digest,
        "payload_oxum": info.get("Payload-Oxum"),
        "received_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "recipient": recipient, "recipient_key": key.openssh_public(),
        "bag_verified": True,
    }
    sig = key.sign(DOMAIN + canonical_json(body).encode("utf-8"))
    return {"receipt": body, "signature": base64.b64encode(sig).decode()}


def bag_identifier(value: object) -> str:
    """A bag's External-Identifier, accepted only in the exact form `export` gives it: it
    becomes part of a file name, so "../important" or "/etc/x" must never get that far."""
    if not isinstance(value, str) or not BAG_ID.fullmatch(value):
        shown = printable(repr(value))[:120]
        raise IntegrityError(f"the bag's External-Identifier {shown} is not one Strongroom "
                             "gives (strongroom-export-YYYYMMDD-<12 hex>); no receipt was "
                             "written")
    return value


def write_receipt(bag: Path, key_path: Path, recipient: str, output: Path | None = None, *,
                  passphrase: bytes | None = None, workers: int = 2) -> tuple[dict[str, Any], Path]:
    """Verify BAG, sign a receipt for it, and write it to `output` (default: beside the bag,
    `<bag id>.receipt.json`); returns the receipt and where it went.

    A receipt says "I received this bag and it verified", so none is written for a bag that
    does not verify (IntegrityError, exit 1). The file is created, never replaced: a receipt
    must not destroy whatever already has its name.
    """
    key = ReceiptKey.load(key_path, passphrase)  # a wrong key fails before hashing gigabytes
    try:
        result = verify_bag(bag, workers=workers)
    except NotABag as exc:
        raise StrongroomError(str(exc)) from None
    if not result.ok:
        first = result.problems[0] if result.problems else "a check failed"
        raise IntegrityError(f"the bag does not verify ({len(result.problems)} problem(s); "
                             f"first: {first}); no receipt was written. `strongroom "
                             "verify-export` lists them all")
    doc = make_receipt(result, key, recipient)
    out = output if output is not None else \
        bag.resolve().parent / f"{doc['receipt']['bag_id']}.receipt.json"
    if out.resolve() == bag.resolve() or bag.resolve() in out.resolve().parents:
        raise StrongroomError(f"{out} is inside the bag; a receipt written there would change "
                              "the bag it is about. Choose another --output")
    create_new(out, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return doc, out


def create_new(path: Path, data: bytes) -> None:
    """Write a new file at `path`, never replacing one (nor following a link planted there).

    The bytes go to a private temporary name in the same folder, are synced, then hard-linked
    to `path`: link() fails if anything has that name, and the file appears whole or not at
    all. Filesystems without hard links (FAT and exFAT, usual on USB sticks) fall back to an
    exclusive create, which also never replaces a file."""
    folder = path.parent
    tmp = folder / f".{path.name}.{secrets.token_hex(6)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(tmp, flags, 0o644)
    except OSError as exc:
        raise StrongroomError(f"cannot write the receipt in {folder}: "
                              f"{exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise StrongroomError(f"{path} already exists; a receipt never replaces a file, "
                                  "choose another --output") from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
                raise StrongroomError(f"cannot write the receipt {path}: "
                                      f"{exc.strerror or exc}") from None
            _create_exclusive(path, data, flags)
    except OSError as exc:
        raise StrongroomError(f"cannot write the receipt {path}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _create_exclusive(path: Path, data: bytes, flags: int) -> None:
    try:
        fd = os.open(path, flags, 0o644)
    except FileExistsError:
        raise StrongroomError(f"{path} already exists; a receipt never replaces a file, "
                              "choose another --output") from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def check_receipt(doc: Any) -> dict[str, Any]:
    """The receipt's body when its signature verifies; IntegrityError otherwise."""
    try:
        body = doc["receipt"]
        sig = base64.b64decode(doc["signature"], validate=True)
        if body["type"] != RECEIPT_TYPE:
            raise ValueError
        key = str(body["recipient_key"])
    except (KeyError, TypeError, ValueError):
        raise StrongroomError("not a Strongroom receipt") from None
    check_signature(key, sig, DOMAIN + canonical_json(body).encode("utf-8"))
    return dict(body)


def _export_event(vault: Vault, bag_id: str) -> dict[str, Any]:
    with vault.catalogue.read() as s:
        ev = s.scalars(select(CustodyEvent).where(
            CustodyEvent.action == "exported", CustodyEvent.subject == f"export:{bag_id}")).first()
        if ev is None:
            raise StrongroomError(f"this vault has no export {bag_id}")
        details: dict[str, Any] = json.loads(ev.details)
        details["seq"] = ev.seq
        return details


def import_receipt(vault: Vault, path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(read_small(path, "receipt").decode("utf-8"))
    except ValueError as exc:
        raise StrongroomError(f"cannot read receipt {path}: {exc}") from None
    body = check_receipt(doc)
    exported = _export_event(vault, str(body["bag_id"]))
    with vault.catalogue.read() as s:
        known = s.scalars(select(CustodyEvent.details).where(
            CustodyEvent.action == "received", CustodyEvent.subject == f"export:{body['bag_id']}"))
        if any(json.loads(d).get("signature") == doc["signature"] for d in known):
            raise StrongroomError(f"this receipt for {body['bag_id']} is already recorded")
    if body["tagmanifest_sha256"] != exported["tagmanifest_sha256"]:
        raise IntegrityError(f"the receipt is for a different bag than export {body['bag_id']} "
                             "(tag manifest differs): the bag was changed before it was signed")
    with vault.write() as s:
        events.received(vault, s, str(body["bag_id"]), body, doc["signature"], exported["seq"])
    return body


def record_handover(vault: Vault, bag_id: str, to: str, how: str) -> dict[str, Any]:
    exported = _export_event(vault, bag_id)
    details = {"bag_id": bag_id, "to": to, "how": how,
               "tagmanifest_sha256": exported["tagmanifest_sha256"],
               "originals": len(exported.get("originals", [])),
               "volumes": exported.get("volumes", []), "export_event": exported["seq"]}
    with vault.write() as s:
        events.handed_over(vault, s, bag_id, details)
    return details
