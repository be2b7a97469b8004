"""The day/month order of slashed DVR dates, from what the vault's clips show.

06/12/2021 is the 6th of December or June the 12th, and a clip whose readings are all like
it cannot tell. But the recorder that made it prints every date the same way, and an archive
holds many of its clips: a clip whose clock shows a day above 12 (06/13/2021) shows the order
beyond doubt. `infer` gathers what the `overlay_ocr` results show, per shape of clock
(`overlay.date_shape`: slashes, 12- or 24-hour); an order is known when at least `MIN_CLIPS`
clips show it and none shows the other. The runner passes the known orders to the step and
reads the clips that were waiting for one again; each result names the clips that showed its
order. Should a clip processed later show the other order, the order is no longer known, and
the next `process` reads the clips placed by it again, which leaves them unplaced.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from strongroom.catalogue.models import StepRun
from strongroom.media.overlay import date_shape, order_key, orders_shown

if TYPE_CHECKING:
    from strongroom.vault import Vault

#: Clips that must show an order (and none the other) before it is applied to others.
MIN_CLIPS = 2
#: How many of those clips each placed result names (sorted SHA-256s; `clips` counts all).
SHOWN_BY_KEPT = 20


def _overlay_results(vault: Vault) -> list[tuple[str, dict[str, Any]]]:
    with vault.catalogue.read() as s:
        return [(sha, data or {}) for sha, data in s.execute(
            select(StepRun.original_sha256, StepRun.result).where(
                StepRun.step == "overlay_ocr", StepRun.status == "ok"))]


def infer(vault: Vault) -> dict[str, dict[str, Any]]:
    """{key: {"order": "MM/DD" | "DD/MM", "clips": n, "shown_by": [sha256, …]}} for every
    shape of clock on one camera label (`overlay.order_key`) whose order its clips show
    without contradiction. A clip shows an order on two readings of one clock at least
    (`overlay.orders_shown`: one reading may be a misread); any clip whose readings show the
    other order, even once and on any camera, leaves the shape's order unknown everywhere:
    a vault whose recorders use both orders must not lend one's to the other."""
    shown: dict[str, dict[str, set[str]]] = {}
    doubted: dict[str, set[str]] = {}
    for sha, data in _overlay_results(vault):
        readings = [(float(t), datetime.fromisoformat(clock), fmt)
                    for t, clock, fmt in data.get("readings") or []]
        confirmed, seen = orders_shown(readings)
        shape = next((s for r in readings if (s := date_shape(r[2])) is not None), None)
        if shape is None:
            continue
        doubted.setdefault(shape, set()).update(seen)
        key = order_key(shape, data.get("label"))
        if key is None or len(seen) != 1 or confirmed != seen:
            continue
        (order,) = confirmed
        shown.setdefault(key, {}).setdefault(order, set()).add(sha)
    known = {}
    for key, by_order in sorted(shown.items()):
        shape = key.split(" on ", 1)[0]
        if len(by_order) != 1 or len(doubted.get(shape, set())) != 1:
            continue  # the vault holds recorders of both orders: none is known
        ((order, clips),) = by_order.items()
        if len(clips) >= MIN_CLIPS:
            known[key] = {"order": order, "clips": len(clips),
                          "shown_by": sorted(clips)[:SHOWN_BY_KEPT]}
    return known


def waiting(vault: Vault, known: dict[str, dict[str, Any]]) -> list[str]:
    """Clips to read again: unplaced for want of an order that is known now, and placed by
    an order that is no longer the one known."""
    out = []
    for sha, data in _overlay_results(vault):
        used = data.get("date_order")
        shape = data.get("date_shape")
        key = order_key(shape, data.get("label")) if shape else None
        if ((data.get("status") == "date_ambiguous" and key in known)
                or (used and (known.get(used.get("key") or "") or {}).get("order")
                    != used.get("order"))):
            out.append(sha)
    return sorted(out)
