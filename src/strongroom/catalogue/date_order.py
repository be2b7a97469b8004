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

A person who knows the recorder can say the order (`strongroom clocks order`, a custody event):
that stands over what the clips show, and the results it places name the event.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from strongroom.catalogue.models import StepRun
from strongroom.errors import StrongroomError
from strongroom.media.overlay import date_order_shown, date_shape

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


ORDERS = ("DD/MM", "MM/DD")
#: The one shape there is (`overlay.date_shape`): slashed dates, day and month first.
SHAPE = "??/??/YYYY"


def _shown(vault: Vault) -> dict[str, dict[str, set[str]]]:
    """{shape: {order: clips whose readings show it beyond doubt}}."""
    shown: dict[str, dict[str, set[str]]] = {}
    for sha, data in _overlay_results(vault):
        for _t, clock, fmt in data.get("readings") or []:
            order = date_order_shown(datetime.fromisoformat(clock), fmt)
            shape = date_shape(fmt)
            if order is not None and shape is not None:
                shown.setdefault(shape, {}).setdefault(order, set()).add(sha)
    return shown


def decisions(vault: Vault) -> dict[str, dict[str, Any]]:
    """{shape: {"order", "set_by", "at", "event"}}: what people last said, per shape
    (`order` None: taken back)."""
    from strongroom.catalogue.models import CustodyEvent

    out: dict[str, dict[str, Any]] = {}
    with vault.catalogue.read() as s:
        for ev in s.scalars(select(CustodyEvent).where(
                CustodyEvent.action == "annotated",
                CustodyEvent.subject.startswith("date_order:")).order_by(CustodyEvent.seq)):
            details = json.loads(ev.details)
            out[str(details.get("shape"))] = {"order": details.get("order"),
                                              "set_by": ev.actor, "at": ev.time,
                                              "event": ev.seq}
    return out


def infer(vault: Vault) -> dict[str, dict[str, Any]]:
    """{shape: {"order": "MM/DD" | "DD/MM", "clips": n, "shown_by": [sha256, …]}} for every
    shape whose order the clips show without contradiction, or a person said (then with
    "set_by", "at" and "event")."""
    shown = _shown(vault)
    known = {}
    for shape, by_order in sorted(shown.items()):
        if len(by_order) != 1:
            continue  # the vault holds recorders of both orders: none is known
        ((order, clips),) = by_order.items()
        if len(clips) >= MIN_CLIPS:
            known[shape] = {"order": order, "clips": len(clips),
                            "shown_by": sorted(clips)[:SHOWN_BY_KEPT]}
    for shape, said in decisions(vault).items():
        if said["order"] in ORDERS:
            clips = shown.get(shape, {}).get(said["order"], set())
            known[shape] = {"order": said["order"], "clips": len(clips),
                            "shown_by": sorted(clips)[:SHOWN_BY_KEPT], "set_by": said["set_by"],
                            "at": said["at"], "event": said["event"]}
    return known


def set_order(vault: Vault, order: str | None, shape: str = SHAPE) -> dict[str, Any]:
    """A person says which way round the vault's slashed dates are (None: the clips decide
    again). Logged; the next `process` reads the clips it concerns again."""
    from strongroom.custody import events

    if order is not None and order not in ORDERS:
        raise StrongroomError(f"the order must be DD/MM, MM/DD or auto, not {order!r}")
    previous = decisions(vault).get(shape)
    other = {"DD/MM": "MM/DD", "MM/DD": "DD/MM"}.get(order or "")
    against = len(_shown(vault).get(shape, {}).get(other or "", ()))
    if against:
        raise StrongroomError(
            f"{against} clip(s) of this vault show {other} beyond doubt (a day above 12): "
            f"its recorders do not all write {order}, and one order for the whole vault would "
            f"put some clips a month off")
    if (previous or {}).get("order") == order:
        raise StrongroomError(f"the order of {shape} dates is already "
                              f"{order or 'decided by the clips'}")
    with vault.write() as s:
        events.date_order_set(vault, s, shape=shape, order=order, previous=previous)
    return {"shape": shape, "order": order, "previous": (previous or {}).get("order")}


def summary(vault: Vault) -> list[dict[str, Any]]:
    """`strongroom clocks orders`: per shape, how many clips show each order, what a person
    said, the order in force, and how many clips wait for one."""
    shown, said, known = _shown(vault), decisions(vault), infer(vault)
    waiting_clips: dict[str, int] = {}
    for _sha, data in _overlay_results(vault):
        if data.get("status") == "date_ambiguous" and data.get("date_shape"):
            waiting_clips[data["date_shape"]] = waiting_clips.get(data["date_shape"], 0) + 1
    rows = []
    for shape in sorted(set(shown) | set(said) | set(waiting_clips) | {SHAPE}):
        k = known.get(shape) or {}
        rows.append({
            "shape": shape,
            "clips_showing": {o: len(shown.get(shape, {}).get(o, ())) for o in ORDERS},
            "said": (said.get(shape) or {}).get("order"),
            "order": k.get("order"),
            "from": ("person" if "set_by" in k else "clips") if k else None,
            "unplaced": waiting_clips.get(shape, 0),
        })
    return rows


def summary_text(rows: list[dict[str, Any]]) -> str:
    lines = []
    for r in rows:
        seen = ", ".join(f"{n} clip(s) show {o}" for o, n in r["clips_showing"].items())
        why = {"person": "as a person said", "clips": f"as {MIN_CLIPS}+ clips show, none the "
               "other"}.get(r["from"] or "", "not known: `strongroom clocks order VAULT "
                                            "DD/MM|MM/DD` to say it")
        lines.append(f"{r['shape']}: {seen}; order {r['order'] or '?'} ({why}); "
                     f"{r['unplaced']} clip(s) unplaced for want of it")
    return "\n".join(lines)


def waiting(vault: Vault, known: dict[str, dict[str, Any]]) -> list[str]:
    """Clips to read again: unplaced for want of an order that is known now, and placed by
    an order that is no longer the one known."""
    out = []
    for sha, data in _overlay_results(vault):
        used = data.get("date_order")
        if ((data.get("status") == "date_ambiguous" and data.get("date_shape") in known)
                or (used and (known.get(used.get("shape")) or {}).get("order")
                    != used.get("order"))):
            out.append(sha)
    return sorted(out)
