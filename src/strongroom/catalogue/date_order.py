"""The day/month order of slashed DVR dates, from what the vault's clips show.

06/12/2021 is the 6th of December or June the 12th, and a clip whose readings are all like
it cannot tell. But a recorder prints every date the same way, and an archive holds many of
its clips: a clip whose clock shows a day above 12 (06/13/2021) on two readings at least
shows the order beyond doubt (`overlay.orders_shown`; one reading may be a misread). `infer`
gathers what the `overlay_ocr` results show, per shape of clock and camera label as OCR read
it (`overlay.order_key`: a vault may hold two recorders whose orders differ, one of which
never shows a day above 12); an order is known for a camera when at least `MIN_CLIPS` of its
clips show it and no clip of the vault, on any camera, shows the other. The runner passes the
known orders to the step and reads the clips that were waiting for one again; each result
names the clips that showed its order. Should a clip processed later show the other order,
the order is no longer known, and the next `process` reads the clips placed by it again,
which leaves them unplaced.

A person who knows the recorders can say the order for the whole vault (`strongroom clocks
order`, a custody event): it stands while no clip shows the other order, and the results it
places name the event.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from strongroom.catalogue.models import StepRun
from strongroom.errors import StrongroomError
from strongroom.media.overlay import date_shape, in_force, order_key, orders_shown

if TYPE_CHECKING:
    from strongroom.vault import Vault

#: Clips that must show an order (and none the other) before it is applied to others.
MIN_CLIPS = 2
#: How many of those clips each placed result names (sorted SHA-256s; `clips` counts all).
SHOWN_BY_KEPT = 20
ORDERS = ("DD/MM", "MM/DD")
#: The one shape there is (`overlay.date_shape`): slashed dates, day and month first.
SHAPE = "??/??/YYYY"


def _overlay_results(vault: Vault) -> list[tuple[str, dict[str, Any]]]:
    with vault.catalogue.read() as s:
        return [(sha, data or {}) for sha, data in s.execute(
            select(StepRun.original_sha256, StepRun.result).where(
                StepRun.step == "overlay_ocr", StepRun.status == "ok"))]


def _evidence(vault: Vault) -> tuple[dict[str, dict[str, set[str]]],
                                      dict[str, dict[str, set[str]]]]:
    """({camera key: {order: clips that show it beyond doubt}},
    {shape: {order: clips any of whose readings show it, doubts too}})."""
    per_camera: dict[str, dict[str, set[str]]] = {}
    per_shape: dict[str, dict[str, set[str]]] = {}
    for sha, data in _overlay_results(vault):
        readings = [(float(t), datetime.fromisoformat(clock), fmt)
                    for t, clock, fmt in data.get("readings") or []]
        confirmed, seen = orders_shown(readings)
        shape = next((s for r in readings if (s := date_shape(r[2])) is not None), None)
        if shape is None:
            continue
        for order in seen:
            per_shape.setdefault(shape, {}).setdefault(order, set()).add(sha)
        key = order_key(shape, data.get("label"))
        if key is None or len(seen) != 1 or confirmed != seen:
            continue
        (order,) = confirmed
        per_camera.setdefault(key, {}).setdefault(order, set()).add(sha)
    return per_camera, per_shape


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


def infer(vault: Vault, *, evidence: tuple[dict[str, dict[str, set[str]]],
                                            dict[str, dict[str, set[str]]]] | None = None,
          said: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """{key: {"order": "MM/DD" | "DD/MM", "clips": n, "shown_by": [sha256, …]}}: per camera
    key (`overlay.order_key`) the order its clips show, and per shape the order a person
    said (then with "set_by", "at" and "event"); none while any clip of the vault shows the
    other order."""
    per_camera, per_shape = evidence if evidence is not None else _evidence(vault)
    known = {}
    for key, by_order in sorted(per_camera.items()):
        shape = key.split(" on ", 1)[0]
        if len(by_order) != 1 or len(per_shape.get(shape, {})) != 1:
            continue  # the vault holds recorders of both orders: none is known
        ((order, clips),) = by_order.items()
        if len(clips) >= MIN_CLIPS:
            known[key] = {"order": order, "clips": len(clips),
                          "shown_by": sorted(clips)[:SHOWN_BY_KEPT]}
    for shape, word in (said if said is not None else decisions(vault)).items():
        if word["order"] not in ORDERS or set(per_shape.get(shape, {})) - {word["order"]}:
            continue  # taken back, or a clip shows the other order since it was said
        clips = per_shape.get(shape, {}).get(word["order"], set())
        known[shape] = {"order": word["order"], "clips": len(clips),
                        "shown_by": sorted(clips)[:SHOWN_BY_KEPT], "set_by": word["set_by"],
                        "at": word["at"], "event": word["event"]}
    return known


def waiting(vault: Vault, known: dict[str, dict[str, Any]]) -> list[str]:
    """Clips to read again: unplaced for want of an order that is known now, and placed by
    an order that is no longer the one known."""
    out = []
    for sha, data in _overlay_results(vault):
        used = data.get("date_order")
        if ((data.get("status") == "date_ambiguous"
             and in_force(known, data.get("date_shape"), data.get("label")))
                or (used and (known.get(used.get("key") or "") or {}).get("order")
                    != used.get("order"))):
            out.append(sha)
    return sorted(out)


def set_order(vault: Vault, order: str | None, shape: str = SHAPE) -> dict[str, Any]:
    """A person says which way round the vault's slashed dates are (None: the clips decide
    again). Logged; the next `process` reads the clips it concerns again."""
    from strongroom.custody import events

    if order is not None and order not in ORDERS:
        raise StrongroomError(f"the order must be DD/MM, MM/DD or auto, not {order!r}")
    previous = decisions(vault).get(shape)
    other = {"DD/MM": "MM/DD", "MM/DD": "DD/MM"}.get(order or "")
    against = len(_evidence(vault)[1].get(shape, {}).get(other or "", ()))
    if against:
        raise StrongroomError(
            f"{against} clip(s) of this vault show {other} (a day above 12): its recorders "
            f"do not all write {order}, and one order for the whole vault would put some "
            "clips a month off")
    if (previous or {}).get("order") == order:
        raise StrongroomError(f"the order of {shape} dates is already "
                              f"{order or 'decided by the clips'}")
    with vault.write() as s:
        events.date_order_set(vault, s, shape=shape, order=order, previous=previous)
    return {"shape": shape, "order": order, "previous": (previous or {}).get("order")}


def summary(vault: Vault) -> list[dict[str, Any]]:
    """`strongroom clocks orders`: per shape, how many clips show each order, what a person
    said, the orders in force (the person's, or per camera), and how many clips wait."""
    evidence = _evidence(vault)
    per_shape = evidence[1]
    said = decisions(vault)
    known = infer(vault, evidence=evidence, said=said)
    unplaced: dict[str, int] = {}
    for _sha, data in _overlay_results(vault):
        if data.get("status") == "date_ambiguous" and data.get("date_shape"):
            unplaced[data["date_shape"]] = unplaced.get(data["date_shape"], 0) + 1
    rows = []
    for shape in sorted(set(per_shape) | set(said) | set(unplaced) | {SHAPE}):
        rows.append({
            "shape": shape,
            "clips_showing": {o: len(per_shape.get(shape, {}).get(o, ())) for o in ORDERS},
            "said": (said.get(shape) or {}).get("order"),
            "order": (known.get(shape) or {}).get("order"),
            "cameras": {key.split(" on ", 1)[1]: k["order"] for key, k in known.items()
                        if key.startswith(shape + " on ")},
            "unplaced": unplaced.get(shape, 0),
        })
    return rows


def summary_text(rows: list[dict[str, Any]]) -> str:
    lines = []
    for r in rows:
        seen = ", ".join(f"{n} clip(s) show {o}" for o, n in r["clips_showing"].items())
        if r["order"]:
            why = f"{r['order']} for every camera, as a person said"
        elif r["cameras"]:
            why = "per camera, as its clips show: " + ", ".join(
                f"{cam} {order}" for cam, order in sorted(r["cameras"].items()))
        else:
            why = "? (not known: `strongroom clocks order VAULT DD/MM|MM/DD` to say it)"
        if r["said"] and not r["order"]:
            why += f"; a person said {r['said']}, but a clip shows the other order since"
        lines.append(f"{r['shape']}: {seen}; order {why}; {r['unplaced']} clip(s) unplaced "
                     "for want of one")
    return "\n".join(lines)
