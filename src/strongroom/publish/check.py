"""`strongroom provenance`: what a published file says of where it comes from, and whether the
vault agrees — the answer to "it's a fake".

Outside the vault, anyone can check that the file is signed, unaltered since, and names an
original by its SHA-256 and the redaction spec it was made with. Inside the vault, the
organisation can show more: that it holds that original, that the spec's version has that
digest, and that its custody log recorded publishing exactly this file (its SHA-256), with
who approved it — without showing the original to anyone.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from strongroom.errors import StrongroomError

if TYPE_CHECKING:
    from strongroom.vault import Vault


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def check_file(path: Path, *, trust_anchors: Path | None = None,
               vault: Vault | None = None) -> dict[str, Any]:
    """The manifest's account of `path`, and with `vault` the vault's; "ok" when the file is
    signed, intact and (with a vault) matches its record."""
    from strongroom.publish.provenance import read

    if not path.is_file():
        raise StrongroomError(f"{path} is not a file")
    manifest = read(path, trust_anchors=trust_anchors)
    data: dict[str, Any] = {"file": str(path), "sha256": _sha256(path), **manifest}
    ok = bool(manifest.get("signed") and manifest.get("valid"))
    if trust_anchors is not None:
        ok = ok and bool(manifest.get("trusted"))
    if vault is not None:
        data["vault"] = _in_vault(vault, data)
        ok = ok and data["vault"]["ok"]
    data["ok"] = ok
    return data


def _in_vault(vault: Vault, data: dict[str, Any]) -> dict[str, Any]:
    from strongroom.catalogue.models import Original, Publication, RedactionSpec
    from strongroom.publish.spec import digest

    with vault.catalogue.read() as s:
        pub = s.scalar(select(Publication).where(
            Publication.published_sha256 == data["sha256"]).limit(1))
        if pub is None:
            return {"ok": False, "why": "this vault never published a file with these bytes"}
        spec = s.scalar(select(RedactionSpec).where(
            RedactionSpec.publication_id == pub.id,
            RedactionSpec.version == pub.spec_version))
        original = s.get(Original, pub.original_sha256)
        out = {"publication": pub.id, "original": pub.original_sha256,
               "original_held": original is not None, "spec_version": pub.spec_version,
               "spec_sha256": digest(spec.spec) if spec is not None else None,
               "approved_by": pub.decided_by, "requested_by": pub.requested_by,
               "published_at": pub.published_at.isoformat() if pub.published_at else None}
    problems = []
    if not out["original_held"]:
        problems.append("the vault no longer holds the original")
    if data.get("original_sha256") != out["original"]:
        problems.append("the manifest names another original than the vault's record")
    if data.get("redaction_spec_sha256") != out["spec_sha256"]:
        problems.append("the manifest's redaction spec differs from the vault's")
    return {**out, "ok": not problems, "problems": problems}


def text(data: dict[str, Any]) -> str:
    if not data.get("signed"):
        return f"{data['file']}: no provenance manifest (not published by Strongroom, or " \
               "stripped)"
    lines = [f"{data['file']} (SHA-256 {data['sha256']})",
             f"  signature: {'valid' if data.get('valid') else 'INVALID'}"
             + (", signer not checked (anyone can sign under any name: give the "
                "organisation's root certificate with --trust)" if data.get("trusted") is None
                else f", {'trusted' if data['trusted'] else 'NOT trusted'} signer")
             + (f" ({data['signer']})" if data.get("signer") else ""),
             f"  original: SHA-256 {data.get('original_sha256')}",
             f"  redaction spec: version {data.get('spec_version')}, SHA-256 "
             f"{data.get('redaction_spec_sha256')}",
             f"  actions: {', '.join(data.get('actions') or [])}"]
    for p in data.get("problems") or []:
        lines.append(f"  problem: {p}")
    v = data.get("vault")
    if v is not None:
        if v.get("publication") is None:
            lines.append(f"  vault: {v['why']}")
        else:
            lines.append(f"  vault: publication {v['publication']}, original "
                         f"{'held' if v['original_held'] else 'NOT held'}, approved by "
                         f"{v['approved_by']}, published {v['published_at']}")
            lines += [f"  vault problem: {p}" for p in v["problems"]]
    lines.append("OK" if data.get("ok") else "NOT OK")
    return "\n".join(lines)
