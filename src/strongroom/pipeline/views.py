"""Showing analysis output to a person: decrypted, blurred unless revealed, on the record."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from sqlalchemy import select

from strongroom.catalogue.models import Derivative
from strongroom.errors import IntegrityError, StrongroomError
from strongroom.vault import Vault

BLUR_RADIUS = 6


def shield(jpeg: bytes) -> bytes:
    """Greyscale and blurred: enough to see layout and time stamps' places, not the people."""
    from PIL import Image, ImageFilter

    img = Image.open(io.BytesIO(jpeg)).convert("L").filter(ImageFilter.GaussianBlur(BLUR_RADIUS))
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=80)
    return out.getvalue()


def latest_derivative(vault: Vault, sha256: str, kind: str) -> Derivative:
    with vault.catalogue.read() as s:
        row = s.scalars(select(Derivative).where(
            Derivative.original_sha256 == sha256, Derivative.kind == kind,
        ).order_by(Derivative.id.desc()).limit(1)).first()
    if row is None:
        raise StrongroomError(f"no {kind.replace('_', ' ')} for {sha256[:16]}… yet "
                              "(run `strongroom process`)")
    return row


def read_derivative(vault: Vault, row: Derivative) -> bytes:
    chunks: list[bytes] = []
    what = f"{row.kind} of {row.original_sha256}"
    d = vault.decrypt_blob(row.blob_name, chunks.append, what=what)
    data = b"".join(chunks)
    if d.sha256 != row.sha256:
        raise IntegrityError(f"{row.kind} {row.sha256} decrypted to different content")
    return data


def write_contact_sheet(vault: Vault, sha256: str, output: Path, *, reveal: bool
                        ) -> dict[str, Any]:
    original = vault.find_original(sha256)
    row = latest_derivative(vault, original.sha256, "contact_sheet")
    data = read_derivative(vault, row)
    if not reveal:
        data = shield(data)
    with vault.write() as s:
        vault.record(s, "viewed", f"original:{original.sha256}", {
            "what": "contact_sheet", "derivative": row.sha256, "revealed": reveal,
            "to": "file"})
    tmp = output.with_name(f".{output.name}.partial")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    return {"original": original.sha256, "derivative": row.sha256, "output": str(output),
            "revealed": reveal}
