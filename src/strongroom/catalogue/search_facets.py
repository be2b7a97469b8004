"""Filter facets: what each search document belongs to, as reserved words, so that a filtered
search is one FTS5 query (posting lists intersected inside FTS5) rather than SQL sets built
from a million segments.

Each document of `search_index` gets, besides its words, a `facets` text of reserved tokens
in the second column of `search_filter_fts` (`search_index.FILTER_TABLE`):

- `zzfac<id>`: a facility (`_Place`; a region is the OR of its facilities);
- `zzcam<id>`: a camera (`_CameraFilter`; a camera stands for the cameras merged into it, so a
  segment's camera carries the tokens of every camera it is merged into, and their facilities);
- `zzd<YYYYMMDD>`, `zzm<YYYYMM>`, `zzy<YYYY>`: every DVR day (and month, year) a segment or an
  incident's occurrence touches (`_When`); a range is an OR of whole years, months and days,
  and an edge day only partly inside the range is re-checked exactly, in SQL;
- `zzst<hex>`: a clip's review status ("unreviewed" where it has no review row);
- `zzab<hex>`: an abuse type (ASCII case folded, as SQLite's LIKE compares it);
- `zzcase<id>`: a case.

Which documents get which tokens mirrors, filter by filter, the SQL predicates of `search.py`
(which the LIKE backend still uses): a clip's documents (review note, transcript) its own
segments, status and its incidents' abuse types and cases; an incident its facility and
occurrence, its abuse types and cases, and its clips' segments and statuses; an incident's
clip note the union of both; a case its incidents' (and its own case token); a person their
incidents'; a camera its merged-into chain's cameras and facilities and its own segments'
days; a facility itself.

The user's words are matched in the `terms` column only (`terms : (…)`), so a typed
`zzcam7` is an ordinary word there and never a filter.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, select

from strongroom.catalogue.models import (
    Camera,
    CaseIncident,
    Incident,
    IncidentOriginal,
    IncidentPerson,
    Review,
    Segment,
)

#: a token that no document holds (an empty filter)
NOTHING = "zznothing"


def _hex(value: str) -> str:
    return value.encode().hex()


def _ascii_lower(value: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in value)


def status_token(status: str) -> str:
    return "zzst" + _hex(status)


def abuse_token(abuse_type: str) -> str:
    return "zzab" + _hex(_ascii_lower(abuse_type))


def facility_token(facility: int) -> str:
    return f"zzfac{facility}"


def camera_token(camera: int) -> str:
    return f"zzcam{camera}"


def case_token(case: int) -> str:
    return f"zzcase{case}"


def day_token(day: date) -> str:
    return f"zzd{day.year:04d}{day.month:02d}{day.day:02d}"


def _days(start: datetime, end: datetime | None) -> tuple[str, ...]:
    """The day, month and year tokens of every day from `start` to `end`."""
    first = start.date()
    return _day_span(first, end.date() if end is not None and end >= start else first)


@lru_cache(maxsize=65_536)
def _day_span(first: date, last: date) -> tuple[str, ...]:
    out: list[str] = []
    d = first
    while True:
        if d == first or d.day == 1:
            out += [f"zzm{d.year:04d}{d.month:02d}", f"zzy{d.year:04d}"]
        out.append(day_token(d))
        if d >= last:
            return tuple(dict.fromkeys(out))
        d += timedelta(days=1)


# -- date ranges as tokens --------------------------------------------------------------------
def _digits(head: str, lo: int, hi: int, width: int, prefix: str = "") -> list[str]:
    """FTS5 terms for `head` followed by each number lo..hi of `width` digits: whole runs of
    a last digit as one prefix query (`zzd2021031*`: the 10th to the 19th), so that a range
    is an OR of few terms."""
    if lo == 0 and hi == 10 ** width - 1:
        return [f"{head}{prefix}*"]
    if width == 1:
        return [f"{head}{prefix}{d}" for d in range(lo, hi + 1)]
    step = 10 ** (width - 1)
    out: list[str] = []
    for digit in range(lo // step, hi // step + 1):
        a = max(lo, digit * step) - digit * step
        b = min(hi, digit * step + step - 1) - digit * step
        out += _digits(head, a, b, width - 1, prefix + str(digit))
    return out


def _month_end(d: date) -> date:
    nxt = date(d.year + 1, 1, 1) if d.month == 12 else date(d.year, d.month + 1, 1)
    return nxt - timedelta(days=1)


def days_cover(first: date | None, last: date | None) -> list[str]:
    """FTS5 terms (OR'ed) that a document holds iff it touches a day in first..last (None:
    unbounded): runs of whole years, then of whole months, then of days, each run as few
    terms as prefix queries allow (day 00, month 00 and days past a month's end never exist,
    so a run may stretch over them)."""
    first = first or date.min
    last = last or date.max
    out: list[str] = []
    cur = first
    while cur <= last:
        if cur.month == 1 and cur.day == 1 and date(cur.year, 12, 31) <= last:
            end_year = last.year if last.month == 12 and last.day == 31 else last.year - 1
            out += _digits("zzy", 0 if cur.year == 1 else cur.year, end_year, 4)
            if end_year >= date.max.year:
                break
            cur = date(end_year + 1, 1, 1)
        elif cur.day == 1 and _month_end(cur) <= last:
            end_month = cur.month
            while end_month < 12 and _month_end(date(cur.year, end_month + 1, 1)) <= last:
                end_month += 1
            out += _digits(f"zzm{cur.year:04d}", 0 if cur.month == 1 else cur.month,
                           19 if end_month == 12 else end_month, 2)
            if cur.year == date.max.year and end_month == 12:
                break
            cur = _month_end(date(cur.year, end_month, 1)) + timedelta(days=1)
        else:
            end = min(last, _month_end(cur))
            out += _digits(f"zzd{cur.year:04d}{cur.month:02d}", 0 if cur.day == 1 else cur.day,
                           39 if end == _month_end(cur) else end.day, 2)
            if end == date.max:
                break
            cur = end + timedelta(days=1)
    # the stretch over days and months that never exist needs no term of its own
    return [t for t in out if not _never(t)]


def _never(term: str) -> bool:
    if term.endswith("*"):
        return False
    if term.startswith("zzd"):
        return not 1 <= int(term[-2:]) <= 31
    if term.startswith("zzm"):
        return not 1 <= int(term[-2:]) <= 12
    return term == "zzy0000"


# -- what each document belongs to --------------------------------------------------------------
class Facets:
    """Works out documents' facet tokens, reading (and caching) what it needs. `load_all`
    reads everything up front for a full rebuild; otherwise each clip, incident, … is read
    when first asked for."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._chain: dict[int, frozenset[str]] | None = None
        self._clip_own: dict[str, frozenset[str]] = {}
        self._clip_inc: dict[str, frozenset[str]] = {}
        self._incident: dict[int, frozenset[str]] = {}
        self._camera_days: dict[int, set[str]] = {}
        self._all = False

    # cameras: each camera's own and merged-into chain's camera and facility tokens
    def chain(self, camera: int | None) -> frozenset[str]:
        if camera is None:
            return frozenset()
        if self._chain is None:
            rows = {c: (f, m) for c, f, m in self.conn.execute(
                select(Camera.id, Camera.facility_id, Camera.merged_into))}
            chains: dict[int, frozenset[str]] = {}
            for c in rows:
                tokens: set[str] = set()
                seen: set[int] = set()
                cur: int | None = c
                while cur is not None and cur not in seen and cur in rows:
                    seen.add(cur)
                    tokens.add(camera_token(cur))
                    fac, cur = rows[cur]
                    if fac is not None:
                        tokens.add(facility_token(fac))
                chains[c] = frozenset(tokens)
            self._chain = chains
        return self._chain.get(camera, frozenset())

    def camera(self, camera: int) -> frozenset[str]:
        tokens = set(self.chain(camera))
        if self._all:
            return frozenset(tokens | self._camera_days.get(camera, set()))
        for start, end in self.conn.execute(select(Segment.clock_start, Segment.clock_end).where(
                Segment.camera_id == camera, Segment.clock_start.is_not(None))):
            if start is not None:
                tokens.update(_days(start, end))
        return frozenset(tokens)

    def load_all(self) -> None:
        """Read every clip's and incident's facets at once (a full rebuild)."""
        own: dict[str, set[str]] = {}
        for sha, cam, start, end in self.conn.execute(select(
                Segment.original_sha256, Segment.camera_id, Segment.clock_start,
                Segment.clock_end)):
            t = own.setdefault(sha, set())
            t.update(self.chain(cam))
            if start is not None:
                days = _days(start, end)
                t.update(days)
                if cam is not None:
                    self._camera_days.setdefault(cam, set()).update(days)
        statuses = dict(self.conn.execute(select(Review.original_sha256, Review.status)).all())
        for sha in set(own) | set(statuses):
            own.setdefault(sha, set())
        links: dict[int, list[str]] = {}
        for i, sha in self.conn.execute(select(IncidentOriginal.incident_id,
                                               IncidentOriginal.original_sha256)):
            links.setdefault(i, []).append(sha)
            own.setdefault(sha, set())
        for sha, t in own.items():
            t.add(status_token(statuses.get(sha) or "unreviewed"))
            self._clip_own[sha] = frozenset(t)
        cases: dict[int, set[str]] = {}
        for k, i in self.conn.execute(select(CaseIncident.case_id, CaseIncident.incident_id)):
            cases.setdefault(i, set()).add(case_token(k))
        clip_inc: dict[str, set[str]] = {}
        for i, fac, start, end, types in self.conn.execute(select(
                Incident.id, Incident.facility_id, Incident.occurred_from, Incident.occurred_to,
                Incident.abuse_types)):
            mine = self._incident_own(fac, start, end, types) | cases.get(i, set())
            for sha in links.get(i, []):
                clip_inc.setdefault(sha, set()).update(
                    t for t in mine if t.startswith(("zzab", "zzcase")))
                mine |= self._clip_own.get(sha, frozenset())
            self._incident[i] = frozenset(mine)
        self._clip_inc = {sha: frozenset(t) for sha, t in clip_inc.items()}
        self._all = True

    @staticmethod
    def _incident_own(facility: int | None, start: datetime | None, end: datetime | None,
                      types: Any) -> set[str]:
        out: set[str] = set()
        if facility is not None:
            out.add(facility_token(facility))
        if start is not None:
            out.update(_days(start, end if end is not None else start))
        if isinstance(types, str):
            import json

            types = json.loads(types)
        if isinstance(types, list):
            out.update(abuse_token(str(t)) for t in types)
        return out

    def clip_own(self, sha: str) -> frozenset[str]:
        """A clip's own facets: its segments' cameras, facilities and days, its status."""
        if sha not in self._clip_own:
            if self._all:
                return frozenset({status_token("unreviewed")})
            t: set[str] = set()
            for cam, start, end in self.conn.execute(select(
                    Segment.camera_id, Segment.clock_start, Segment.clock_end)
                    .where(Segment.original_sha256 == sha)):
                t.update(self.chain(cam))
                if start is not None:
                    t.update(_days(start, end))
            status = self.conn.execute(select(Review.status).where(
                Review.original_sha256 == sha)).scalar()
            t.add(status_token(status or "unreviewed"))
            self._clip_own[sha] = frozenset(t)
        return self._clip_own[sha]

    def clip(self, sha: str) -> frozenset[str]:
        """A clip's facets: its own, and its incidents' abuse types and cases."""
        if sha not in self._clip_inc:
            if self._all:
                return self.clip_own(sha)
            t: set[str] = set()
            for i in self.conn.execute(select(IncidentOriginal.incident_id).where(
                    IncidentOriginal.original_sha256 == sha)).scalars():
                t.update(x for x in self.incident(i) if x.startswith(("zzab", "zzcase")))
            self._clip_inc[sha] = frozenset(t)
        return self.clip_own(sha) | self._clip_inc[sha]

    def incident(self, incident: int) -> frozenset[str]:
        if incident not in self._incident:
            if self._all:
                return frozenset()
            row = self.conn.execute(select(
                Incident.facility_id, Incident.occurred_from, Incident.occurred_to,
                Incident.abuse_types).where(Incident.id == incident)).first()
            if row is None:
                return frozenset()
            t = self._incident_own(row[0], row[1], row[2], row[3])
            t.update(case_token(k) for k in self.conn.execute(select(CaseIncident.case_id)
                     .where(CaseIncident.incident_id == incident)).scalars())
            for sha in self.conn.execute(select(IncidentOriginal.original_sha256).where(
                    IncidentOriginal.incident_id == incident)).scalars():
                t.update(self.clip_own(sha))
            self._incident[incident] = frozenset(t)
        return self._incident[incident]

    def _union(self, incidents: Iterable[int]) -> set[str]:
        out: set[str] = set()
        for i in incidents:
            out.update(self.incident(i))
        return out

    def of(self, kind: str, ref: int | None, sha: str | None) -> frozenset[str]:
        """The facet tokens of one document."""
        if kind == "incident" and ref is not None:
            return self.incident(ref)
        if kind == "incident_note" and ref is not None and sha is not None:
            return self.incident(ref) | self.clip(sha)
        if kind in ("review", "transcript") and sha is not None:
            return self.clip(sha)
        if kind == "camera" and ref is not None:
            return self.camera(ref)
        if kind == "facility" and ref is not None:
            return frozenset({facility_token(ref)})
        if kind == "case" and ref is not None:
            t = {x for x in self._union(self.conn.execute(select(CaseIncident.incident_id)
                                                          .where(CaseIncident.case_id == ref))
                                        .scalars()) if not x.startswith("zzcase")}
            return frozenset(t | {case_token(ref)})
        if kind == "person" and ref is not None:
            return frozenset(self._union(self.conn.execute(select(IncidentPerson.incident_id)
                                         .where(IncidentPerson.person_id == ref)).scalars()))
        return frozenset()


def text_of(tokens: Iterable[str]) -> str:
    """The facets column: the tokens, space-padded (so `instr(' tok ')` finds a whole one)."""
    return " " + " ".join(sorted(tokens)) + " "


__all__ = ["NOTHING", "Facets", "abuse_token", "camera_token", "case_token", "day_token",
           "days_cover", "facility_token", "status_token", "text_of"]
