"""Handover and receipt: the two custody events after `exported`.

`handed_over` is the sender's statement (to whom, how, which bag). A receipt is the recipient's:
a small JSON document, signed with the recipient's own Ed25519 key (an OpenSSH `ssh-ed25519`
key or a PKCS#8 PEM key), naming the bag by its identifier and the SHA-256 of its signed tag
manifest, and whether the bag verified when it arrived. Imported back into the vault it becomes
a `received` event that carries the signature, so the log shows both sides of the handover.

    body      = {"type": "strongroom receipt v1", bag_id, tagmanifest_sha256, payload_oxum,
                 received_at, recipient, recipient_key, bag_verified}
    signature = Ed25519( "strongroom receipt v1\\n" || canonical_json(body) )
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from strongroom.catalogue.models import CustodyEvent
from strongroom.custody.chain import canonical_json
from strongroom.errors import IntegrityError, StrongroomError
from strongroom.vault import Vault

RECEIPT_TYPE = "strongroom receipt v1"
DOMAIN = b"strongroom receipt v1\n"


def _load_private(path: Path, passphrase: bytes | None) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        load_pem_private_key,
        load_ssh_private_key,
    )

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StrongroomError(f"cannot read key {path}: {exc.strerror}") from None
    key: object
    try:
        if b"OPENSSH PRIVATE KEY" in data:
            key = load_ssh_private_key(data, passphrase)
        else:
            key = load_pem_private_key(data, passphrase)
    except (ValueError, TypeError) as exc:
        raise StrongroomError(f"cannot load {path} as a private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise StrongroomError(f"{path} is not an Ed25519 key (use ssh-keygen -t ed25519)")
    return key


def _openssh_public(public_raw: bytes) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return Ed25519PublicKey.from_public_bytes(public_raw).public_bytes(
        Encoding.OpenSSH, PublicFormat.OpenSSH).decode()


def make_receipt(bag: Path, key_path: Path, recipient: str, *, verified: bool,
                 passphrase: bytes | None = None) -> dict[str, Any]:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from strongroom.export.verifier import read_bag_info

    tm = bag / "tagmanifest-sha256.txt"
    info = read_bag_info(bag)
    if not tm.is_file() or "External-Identifier" not in info:
        raise StrongroomError(f"{bag} is not a Strongroom bag (no tag manifest or identifier)")
    key = _load_private(key_path, passphrase)
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    body = {
        "type": RECEIPT_TYPE, "bag_id": info["External-Identifier"],
        "tagmanifest_sha256": hashlib.sha256(tm.read_bytes()).hexdigest(),
        "payload_oxum": info.get("Payload-Oxum"),
        "received_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "recipient": recipient, "recipient_key": _openssh_public(raw),
        "bag_verified": verified,
    }
    sig = key.sign(DOMAIN + canonical_json(body).encode("utf-8"))
    return {"receipt": body, "signature": base64.b64encode(sig).decode()}


def check_receipt(doc: Any) -> dict[str, Any]:
    """The receipt's body when its signature verifies; IntegrityError otherwise."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_ssh_public_key

    try:
        body = doc["receipt"]
        sig = base64.b64decode(doc["signature"], validate=True)
        if body["type"] != RECEIPT_TYPE:
            raise ValueError
        public = load_ssh_public_key(str(body["recipient_key"]).encode())
    except (KeyError, TypeError, ValueError):
        raise StrongroomError("not a Strongroom receipt") from None
    if not isinstance(public, Ed25519PublicKey):
        raise StrongroomError("receipts are signed with Ed25519 keys")
    try:
        public.verify(sig, DOMAIN + canonical_json(body).encode("utf-8"))
    except InvalidSignature:
        raise IntegrityError("the receipt's signature does not verify: it was changed or "
                             "not signed by the key it names") from None
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
        doc = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise StrongroomError(f"cannot read receipt {path}: {exc}") from None
    body = check_receipt(doc)
    exported = _export_event(vault, str(body["bag_id"]))
    if body["tagmanifest_sha256"] != exported["tagmanifest_sha256"]:
        raise IntegrityError(f"the receipt is for a different bag than export {body['bag_id']} "
                             "(tag manifest differs): the bag was changed before it was signed")
    with vault.write() as s:
        vault.record(s, "received", f"export:{body['bag_id']}", {
            **body, "signature": doc["signature"], "export_event": exported["seq"]})
    return body


def record_handover(vault: Vault, bag_id: str, to: str, how: str) -> dict[str, Any]:
    exported = _export_event(vault, bag_id)
    details = {"bag_id": bag_id, "to": to, "how": how,
               "tagmanifest_sha256": exported["tagmanifest_sha256"],
               "originals": len(exported.get("originals", [])),
               "volumes": exported.get("volumes", []), "export_event": exported["seq"]}
    with vault.write() as s:
        vault.record(s, "handed_over", f"export:{bag_id}", details)
    return details
