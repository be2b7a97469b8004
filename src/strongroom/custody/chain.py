"""How custody events and checkpoints are hashed and signed. Small on purpose: this is what a
court's expert (and the standalone verifier of the export issue) must re-implement.

    hash      = SHA-256( canonical_json({seq, time, actor, action, subject, details, prev_hash}) )
    signature = Ed25519( "strongroom custody event v1\\n" || hash-as-32-bytes )
    checkpoint signature = Ed25519( "strongroom custody checkpoint v1\\n" ||
                                    canonical_json({seq, head_hash, time}) )

canonical_json: keys sorted, no insignificant whitespace, UTF-8, no floats (RFC 8785 agrees on
such documents). The first event's prev_hash is 64 zeros.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

GENESIS = "0" * 64
EVENT_DOMAIN = b"strongroom custody event v1\n"
CHECKPOINT_DOMAIN = b"strongroom custody checkpoint v1\n"


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(
    *, seq: int, time: str, actor: str, action: str, subject: str, details: Any, prev_hash: str
) -> str:
    body = {
        "seq": seq,
        "time": time,
        "actor": actor,
        "action": action,
        "subject": subject,
        "details": details,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def event_signing_input(hash_hex: str) -> bytes:
    return EVENT_DOMAIN + bytes.fromhex(hash_hex)


def checkpoint_signing_input(seq: int, head_hash: str, time: str) -> bytes:
    body = canonical_json({"seq": seq, "head_hash": head_hash, "time": time})
    return CHECKPOINT_DOMAIN + body.encode("utf-8")


def result_digest(result: Any) -> str:
    """SHA-256 of a step's result as canonical JSON (as the catalogue's JSON column gives it
    back), carried by its `analysed` event."""
    normal = json.loads(json.dumps(result))
    return hashlib.sha256(canonical_json(normal).encode("utf-8")).hexdigest()
