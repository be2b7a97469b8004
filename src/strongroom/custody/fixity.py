"""Scheduled fixity: re-hash a rotating share of the blobs on each run, so that daily runs
check the whole archive every `cycle_days` days at a bounded daily cost.

What was checked when is read back from the custody log itself (no second bookkeeping to
drift from it): a scheduled run's `fixity_checked` event lists the blob names it re-hashed;
a full run (`verify` without `--quick`) checked every blob that existed then. Each run takes
the ceil(total / cycle_days) blobs checked least recently (never-checked first), so a blob
waits at most `cycle_days` runs; a missed day shows up as blobs *overdue*. A blob whose last
check failed is checked again on every run, beyond that share, until it passes: the alert
does not clear itself while the damage is there.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from strongroom.catalogue.models import CustodyEvent, Derivative, Original

#: Oldest possible "last checked" (never checked)
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Due:
    """The blobs a scheduled run re-hashes, and how the archive stands."""

    blobs: frozenset[str]
    total: int
    #: blobs not re-hashed within the cycle before this run (0 when runs were never missed)
    overdue: int
    cycle_days: int


def _when(text: str) -> datetime:
    t = datetime.fromisoformat(text)
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def due(s: Session, cycle_days: int, now: datetime | None = None) -> Due:
    """Which blobs this run re-hashes (see the module's docstring)."""
    if cycle_days < 1:
        raise ValueError("the cycle is at least one day")
    now = now or datetime.now(UTC)
    last: dict[str, datetime] = {}
    full: list[datetime] = []
    failing: set[str] = set()
    for time, details in s.execute(select(CustodyEvent.time, CustodyEvent.details)
                                   .where(CustodyEvent.action == "fixity_checked")
                                   .order_by(CustodyEvent.seq)):
        when = _when(time)
        data = json.loads(details)
        names = data.get("blobs")
        failed = {str(n) for n in data.get("failed") or []}
        if isinstance(names, list):
            for name in names:
                last[str(name)] = when
            failing = (failing - {str(n) for n in names}) | failed
        else:
            full.append(when)
            failing = failed  # a full run checked them all
    born: dict[str, datetime] = {}
    for name, at in s.execute(select(Original.blob_name, Original.ingested_at)):
        born[name] = _when(at.isoformat())
    for name, at in s.execute(select(Derivative.blob_name, Derivative.created_at)):
        born.setdefault(name, _when(at.isoformat()))

    def checked(name: str) -> datetime:
        after_birth = [t for t in full if t >= born[name]]
        return max([last.get(name, _NEVER), *after_birth[-1:]])

    order = sorted(born, key=lambda n: (checked(n), n))
    quota = math.ceil(len(order) / cycle_days) if order else 0
    horizon = now - timedelta(days=cycle_days)
    overdue = sum(1 for n in order if checked(n) < horizon and born[n] < horizon)
    return Due(frozenset(order[:quota]) | (failing & set(born)), len(order), overdue,
               cycle_days)
