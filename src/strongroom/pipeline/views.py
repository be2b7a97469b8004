"""Showing analysis output to a person: decrypted, blurred unless revealed, on the record."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from sqlalchemy import select

from strongroom.catalogue.models import Derivative
from strongroom.errors import StrongroomError
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


def write_contact_sheet(vault: Vault, sha256: str, output: Path, *, reveal: bool
                        ) -> dict[str, Any]:
    """Decrypt the original's contact sheet, blurred unless `reveal`, into `output`. The
    door records `viewed` (or `revealed`) before the file appears under its name."""
    from strongroom.fsio import check_new_output, new_private_file

    # Nothing is decrypted (nor recorded as seen) for a file that cannot be written.
    check_new_output(output)
    original = vault.find_original(sha256)
    row = latest_derivative(vault, original.sha256, "contact_sheet")
    chunks: list[bytes] = []
    with vault.open_derivative(row, purpose="revealed" if reveal else "viewed", to="file",
                               details={"what": "contact_sheet", "derivative": row.sha256,
                                        "revealed": reveal}) as opened:
        opened.copy_to(chunks.append)
    data = b"".join(chunks)
    if not reveal:
        data = shield(data)
    # Never through a symlink planted beside `output`, never over an existing file.
    with new_private_file(output) as f:
        f.write(data)
    return {"original": original.sha256, "derivative": row.sha256, "output": str(output),
            "revealed": reveal}
