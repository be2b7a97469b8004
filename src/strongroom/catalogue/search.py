"""One search over the catalogue's words: incidents, cases, notes, cameras, transcripts, people,
facilities; Russian and English by meaning of the word, not its ending (`words.py`).

`search(session, "пытка", Filters(facility="ОТБ-1"))` → `Results`: each hit says what matched
(kind, id, the clip's SHA-256 where there is one) and shows the matched words in context,
marked. The CLI (`strongroom search`) and, later, the review app's search box call it alike;
the app renders `Hit.parts` (text, is-a-hit pairs) so that it can escape the text and mark
hits itself.

Backends, behind one `Search` protocol: `Fts5Search` (SQLite; the index of `search_index.py`
inside the encrypted catalogue) and `LikeSearch` (PostgreSQL until a `to_tsvector('russian',
…)` backend plugs in: each word's Snowball stem as `ILIKE '%stem%'` over the same text, so
`пытка` still finds `пытки` there, though not `пыток`; slow, as the benchmark shows).

Filters. `Fts5Search` filters inside FTS5: every document also carries its facets (facility,
camera, DVR days, review status, abuse types, cases) as reserved tokens in the filter index
(`search_facets`, migration 0013), so a filter is one more AND-term and FTS5 intersects the
posting lists; a date range's edge day, only partly inside the range, is checked exactly in
SQL for the few documents on it. The listener of `search_index` rewrites a document's facets
when anything they follow from changes (a camera mapped to a facility, a clip's segments or
review status, a case membership). `LikeSearch` (and `Fts5Search` on a catalogue without the
filter index) filters with SQL over the live rows (`_Filter`): each filter worked out once per
search as a set (of incidents, clips, cameras, ...) that each hit is looked up in. Both give
the same hits (`tests/test_search_filters.py` checks it).

Ranking: FTS5 ranks (bm25 over the words alone) the newest `RANK_WINDOW` matching documents
that pass the filters, and returns the best of those. A query matching fewer is ranked in
full, exactly; one matching more (a word in tens of thousands of documents) is not ranked
beyond the window — scoring costs about a microsecond a document, tens of milliseconds for
such a word — and the results say there is more, to narrow the search. (Through the SQL
filters, a status or abuse-type filter, checked hit by hit, is ranked in full instead.)

A query is words, all of which must match (in any field of one thing), and "quoted phrases".
Everything else (FTS operators, stray quotes, brackets, `*`) is read as text: the query
reaching FTS5 is built by us from normalised words, so no syntax error can come from it.

Searching is not a custody event: it reads catalogue text (no evidence bytes, nothing
decrypted from the blob store) that the same person can read through other commands that are
not logged either (`timeline`, `cameras list`); and logging queries would write the words
people search for — names, places, what happened to whom — into the append-only custody log
that goes into every handover bag. Opening a clip found by a search is logged as always.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Protocol

from sqlalchemy import (
    DateTime,
    Integer,
    Text,
    and_,
    bindparam,
    cast,
    column,
    exists,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    text,
    true,
    union_all,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql import CompoundSelect, Select
from sqlalchemy.sql.elements import ColumnElement

from strongroom.catalogue.models import (
    REVIEW_STATUSES,
    Camera,
    CaseFile,
    CaseIncident,
    Facility,
    Incident,
    IncidentOriginal,
    IncidentPerson,
    Review,
    SearchDoc,
    Segment,
)
from strongroom.catalogue.search_facets import (
    NOTHING,
    abuse_token,
    camera_token,
    case_token,
    day_token,
    days_cover,
    facility_token,
    status_token,
)
from strongroom.catalogue.search_index import (
    FILTER_TABLE,
    FTS_TABLE,
    KINDS,
    has_filter_index,
    has_index,
)
from strongroom.catalogue.words import WORD, normal, stem
from strongroom.errors import StrongroomError

MAX_QUERY_CHARS = 500
MAX_QUERY_WORDS = 32
DEFAULT_LIMIT = 50
#: how many of the newest matching documents are ranked (`Fts5Search`)
RANK_WINDOW = 10_000
SNIPPET_BEFORE = 60
SNIPPET_CHARS = 220

Expr = ColumnElement[Any]
Cond = ColumnElement[bool]
#: what a backend finds: (kind, id, clip), best first
Found = tuple[str, int | None, str | None]


# -- the query -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Query:
    """What was asked: groups of words (a lone word, or a quoted phrase), all required."""

    text: str
    groups: tuple[tuple[str, ...], ...]

    @property
    def words(self) -> list[str]:
        return [w for g in self.groups for w in g]

    def terms(self) -> set[str]:
        return {normal(w) for w in self.words}

    def fts(self) -> str:
        """The FTS5 expression: each group as a quoted string of normal forms (no operator
        of the user's can reach FTS5)."""
        return " ".join('"' + " ".join(normal(w) for w in g) + '"' for g in self.groups)


_QUOTED = re.compile(r'"([^"]*)(?:"|$)')


def parse_query(text_: str) -> Query:
    text_ = text_.strip()
    if len(text_) > MAX_QUERY_CHARS:
        raise StrongroomError(f"the query is too long (over {MAX_QUERY_CHARS} characters)")
    groups: list[tuple[str, ...]] = []
    rest = []
    pos = 0
    for m in _QUOTED.finditer(text_):
        rest.append(text_[pos:m.start()])
        phrase = tuple(w.group() for w in WORD.finditer(m.group(1)))
        if phrase:
            groups.append(phrase)
        pos = m.end()
    rest.append(text_[pos:])
    groups += [(w.group(),) for w in WORD.finditer(" ".join(rest))]
    if not groups:
        raise StrongroomError("nothing to search for: give at least one word")
    if sum(len(g) for g in groups) > MAX_QUERY_WORDS:
        raise StrongroomError(f"the query has too many words (over {MAX_QUERY_WORDS})")
    return Query(text_, tuple(dict.fromkeys(groups)))


# -- filters -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Filters:
    """What the hits must belong to. Names as people see them; `date_from`/`date_to` on the DVR
    clock (naive, as segments hold it); `status` a clip review status."""

    facility: str | None = None
    region: str | None = None
    camera: str | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    abuse_type: str | None = None
    status: str | None = None
    case: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("facility", "region", "camera", "abuse_type", "status", "case"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        for name in ("date_from", "date_to"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.isoformat(sep=" ")
        return out


def parse_clock(value: str, *, end: bool = False) -> datetime:
    """A DVR clock time `YYYY-MM-DD[ HH:MM[:SS]]`; a bare date is the day's start (or, for
    the `end` of a range, its last second)."""
    value = value.strip()
    try:
        if len(value) == 10:
            day = datetime.strptime(value, "%Y-%m-%d")
            return datetime.combine(day.date(), time(23, 59, 59) if end else time(0))
        return datetime.fromisoformat(value.replace("T", " "))
    except ValueError:
        raise StrongroomError(f"not a date or time: {value!r} (use YYYY-MM-DD or "
                              "YYYY-MM-DD HH:MM:SS, on the DVR clock)") from None


class _Filter:
    """One filter as predicates on each kind of thing; a kind it does not apply to fails.

    Most predicates are `column IN (a set)`, the set a common table expression that does not
    depend on the row (`_set`): the database works each set out once per search, from the
    indexes of migration 0008, however many kinds of thing use it, and then only looks each hit
    up in it, rather than running a chain of subqueries for each of tens of thousands of hits.
    Filters that most things pass (`by_hit`) are checked hit by hit instead, in rank order,
    which stops once enough hits pass (`Fts5Search`)."""

    #: names this filter's sets within one statement (`resolve` numbers the filters)
    tag = "f"
    #: checked hit by hit (a correlated subquery) rather than as a set: for filters that
    #: most things pass, where a set would be large and few hits need checking
    by_hit = False

    def _set(self, name: str, make: Callable[[], Any]) -> Select[Any]:
        sets: dict[str, Any] = self.__dict__.setdefault("_sets", {})
        if name not in sets:
            sets[name] = make().cte(f"{self.tag}_{name}").prefix_with("MATERIALIZED")
        return select(*sets[name].c)

    def facets(self) -> list[str]:
        """The facet tokens (`search_facets`) of which a passing document holds one: the
        filter as FTS5 terms (`Fts5Search`)."""
        raise NotImplementedError

    def recheck(self) -> tuple[list[str], Cond, dict[str, Any]] | None:
        """Tokens of `facets()` that only some of their documents pass, the exact test for
        those (correlated with the filter index's row) and its parameters (a date range's
        edge days); None: the tokens are exact."""
        return None

    def incident(self, i: Expr) -> Cond:
        return false()

    def clip(self, sha: Expr) -> Cond:
        return false()

    def camera(self, c: Expr) -> Cond:
        return false()

    def facility(self, f: Expr) -> Cond:
        return false()

    def case(self, c: Expr) -> Cond:
        ci = CaseIncident.__table__.alias()
        return c.in_(select(ci.c.case_id).where(self.incident(ci.c.incident_id)))

    def person(self, p: Expr) -> Cond:
        ip = IncidentPerson.__table__.alias()
        return p.in_(select(ip.c.person_id).where(self.incident(ip.c.incident_id)))

    def for_kind(self, kind: str, ref: Expr, sha: Expr) -> Cond:
        if kind == "incident":
            return self.incident(ref)
        if kind == "incident_note":
            return or_(self.incident(ref), self.clip(sha))
        if kind in ("review", "transcript"):
            return self.clip(sha)
        if kind == "camera":
            return self.camera(ref)
        if kind == "facility":
            return self.facility(ref)
        if kind == "case":
            return self.case(ref)
        if kind == "person":
            return self.person(ref)
        return false()


def _clips_where(*where: Any) -> Select[Any]:
    """The clips with a segment such that each of `where(segment)`."""
    seg = Segment.__table__.alias()
    return select(seg.c.original_sha256).where(*[w(seg) for w in where]).distinct()


def _incidents_of(clips: Select[Any]) -> Select[Any]:
    """The incidents linked to any of these clips."""
    io = IncidentOriginal.__table__.alias()
    return select(io.c.incident_id).where(io.c.original_sha256.in_(clips))


class _Place(_Filter):
    """Facility and/or region: the facility's ids and the cameras mapped to them."""

    def __init__(self, facilities: list[int], cameras: list[int]) -> None:
        self.f, self.c = facilities, cameras

    def facets(self) -> list[str]:
        return [facility_token(f) for f in self.f]

    def _clips(self) -> Select[Any]:
        return self._set("clips", lambda: _clips_where(lambda s: s.c.camera_id.in_(self.c)))

    def _incidents(self) -> Select[Any]:
        inc = Incident.__table__.alias()
        return self._set("incidents", lambda: select(inc.c.id).where(
            inc.c.facility_id.in_(self.f)).union_all(_incidents_of(self._clips())))

    def incident(self, i: Expr) -> Cond:
        return i.in_(self._incidents())

    def clip(self, sha: Expr) -> Cond:
        return sha.in_(self._clips())

    def camera(self, c: Expr) -> Cond:
        return c.in_(self.c)

    def facility(self, f: Expr) -> Cond:
        return f.in_(self.f)


class _CameraFilter(_Filter):
    def __init__(self, cameras: list[int]) -> None:
        self.c = cameras

    def facets(self) -> list[str]:
        # a camera's documents carry the tokens of the cameras it is merged into
        return [camera_token(self.c[0])]

    def _clips(self) -> Select[Any]:
        return self._set("clips", lambda: _clips_where(lambda s: s.c.camera_id.in_(self.c)))

    def incident(self, i: Expr) -> Cond:
        return i.in_(self._set("incidents", lambda: _incidents_of(self._clips())))

    def clip(self, sha: Expr) -> Cond:
        return sha.in_(self._clips())

    def camera(self, c: Expr) -> Cond:
        return c.in_(self.c)


#: the filter index's table, shared by the statements and the cached rechecks that
#: correlate with it
_FILTER_FTS = table(FILTER_TABLE, column("rowid"))
#: `_exact_when` by (has a start, has an end)
_RECHECKS: dict[tuple[bool, bool], Cond] = {}


def _exact_when(has_start: bool, has_end: bool) -> Cond:
    """The date filter on the filter index's current document, exactly and correlated (for
    the few on a range's edge day): `:when_start`/`:when_end` as `_When` reads them."""
    start = bindparam("when_start", type_=DateTime()) if has_start else None
    end = bindparam("when_end", type_=DateTime()) if has_end else None
    seg, inc = Segment.__table__.alias(), Incident.__table__.alias()
    io, d = IncidentOriginal.__table__.alias(), SearchDoc.__table__.alias()

    def overlaps(s: Any) -> Cond:
        conds: list[Cond] = [s.c.clock_start.is_not(None)]
        if start is not None:
            conds.append(s.c.clock_end >= start)
        if end is not None:
            conds.append(s.c.clock_start <= end)
        return and_(*conds)

    def clip(sha: Expr) -> Cond:
        return exists(select(1).select_from(seg).where(seg.c.original_sha256 == sha,
                                                       overlaps(seg)))

    def incident(i: Expr) -> Cond:
        conds: list[Cond] = [inc.c.id == i, inc.c.occurred_from.is_not(None)]
        if start is not None:
            conds.append(func.coalesce(inc.c.occurred_to, inc.c.occurred_from) >= start)
        if end is not None:
            conds.append(inc.c.occurred_from <= end)
        return or_(exists(select(1).select_from(inc).where(*conds)),
                   exists(select(1).select_from(io.join(
                       seg, seg.c.original_sha256 == io.c.original_sha256))
                       .where(io.c.incident_id == i, overlaps(seg))))

    ci, ip = CaseIncident.__table__.alias(), IncidentPerson.__table__.alias()
    by_kind = {
        "incident": incident(d.c.ref),
        "incident_note": or_(incident(d.c.ref), clip(d.c.sha256)),
        "review": clip(d.c.sha256),
        "transcript": clip(d.c.sha256),
        "camera": exists(select(1).select_from(seg).where(seg.c.camera_id == d.c.ref,
                                                          overlaps(seg))),
        "case": exists(select(1).select_from(ci).where(ci.c.case_id == d.c.ref,
                                                       incident(ci.c.incident_id))),
        "person": exists(select(1).select_from(ip).where(ip.c.person_id == d.c.ref,
                                                         incident(ip.c.incident_id))),
    }
    return exists(select(1).select_from(d).where(d.c.id == _FILTER_FTS.c.rowid, or_(
        *[and_(d.c.kind == k, cond) for k, cond in by_kind.items()])))


class _When(_Filter):
    def __init__(self, start: datetime | None, end: datetime | None) -> None:
        self.start, self.end = start, end
        first = self.start.date() if self.start is not None else None
        last = self.end.date() if self.end is not None else None
        self.edges: list[str] = []
        if self.start is not None and first is not None and self.start.time() != time(0):
            self.edges.append(day_token(first))  # the first day, only partly in the range
            first += timedelta(days=1)
        if self.end is not None and last is not None and self.end.time() != time.max:
            if day_token(last) not in self.edges:
                self.edges.append(day_token(last))
            last -= timedelta(days=1)
        self.inner = days_cover(first, last) if first is None or last is None or \
            first <= last else []

    def facets(self) -> list[str]:
        return self.inner + self.edges

    def recheck(self) -> tuple[list[str], Cond, dict[str, Any]] | None:
        if not self.edges:
            return None
        shape = (self.start is not None, self.end is not None)
        if shape not in _RECHECKS:  # built once: SQLAlchemy takes milliseconds to build it
            _RECHECKS[shape] = _exact_when(*shape)
        params = {name: value for name, value in (("when_start", self.start),
                                                  ("when_end", self.end)) if value is not None}
        return self.edges, _RECHECKS[shape], params

    def _overlaps(self, s: Any) -> Cond:
        conds: list[Cond] = [s.c.clock_start.is_not(None)]
        if self.start is not None:
            conds.append(s.c.clock_end >= self.start)
        if self.end is not None:
            conds.append(s.c.clock_start <= self.end)
        return and_(*conds)

    def _clips(self) -> Select[Any]:
        return self._set("clips", lambda: _clips_where(self._overlaps))

    def _incidents(self) -> Select[Any]:
        inc = Incident.__table__.alias()
        conds: list[Cond] = [inc.c.occurred_from.is_not(None)]
        if self.start is not None:
            conds.append(func.coalesce(inc.c.occurred_to, inc.c.occurred_from) >= self.start)
        if self.end is not None:
            conds.append(inc.c.occurred_from <= self.end)
        return self._set("incidents", lambda: select(inc.c.id).where(*conds).union_all(
            _incidents_of(self._clips())))

    def incident(self, i: Expr) -> Cond:
        return i.in_(self._incidents())

    def clip(self, sha: Expr) -> Cond:
        return sha.in_(self._clips())

    def camera(self, c: Expr) -> Cond:
        seg = Segment.__table__.alias()
        return c.in_(self._set("cameras", lambda: select(seg.c.camera_id)
                               .where(self._overlaps(seg)).distinct()))


def _like_escape(value: str) -> str:
    return value.replace("!", "!!").replace("%", "!%").replace("_", "!_")


class _AbuseType(_Filter):
    """Checked hit by hit, like `_When` (a common abuse type is a large share of incidents)."""

    by_hit = True

    def __init__(self, abuse_type: str) -> None:
        # the JSON list as stored (json.dumps: non-ASCII as \\u escapes), one quoted element
        self.pattern = "%" + _like_escape(json.dumps(abuse_type)) + "%"
        self.abuse_type = abuse_type

    def facets(self) -> list[str]:
        return [abuse_token(self.abuse_type)]

    def _has(self, inc: Any) -> Cond:
        return cast(inc.c.abuse_types, Text).like(self.pattern, escape="!")

    def incident(self, i: Expr) -> Cond:
        inc = Incident.__table__.alias()
        return exists(select(1).select_from(inc).where(inc.c.id == i, self._has(inc)))

    def clip(self, sha: Expr) -> Cond:
        io, inc = IncidentOriginal.__table__.alias(), Incident.__table__.alias()
        return exists(select(1).select_from(io.join(inc, inc.c.id == io.c.incident_id))
                      .where(io.c.original_sha256 == sha, self._has(inc)))


class _Status(_Filter):
    """Checked hit by hit, like `_When` ("unreviewed" is most clips)."""

    by_hit = True

    def __init__(self, status: str) -> None:
        self.status = status

    def facets(self) -> list[str]:
        return [status_token(self.status)]

    def clip(self, sha: Expr) -> Cond:
        rv = Review.__table__.alias()
        if self.status == "unreviewed":  # no review row yet is unreviewed too
            return ~exists(select(1).select_from(rv).where(rv.c.original_sha256 == sha,
                                                           rv.c.status != "unreviewed"))
        return exists(select(1).select_from(rv).where(rv.c.original_sha256 == sha,
                                                      rv.c.status == self.status))

    def incident(self, i: Expr) -> Cond:
        io = IncidentOriginal.__table__.alias()
        return exists(select(1).select_from(io).where(io.c.incident_id == i,
                                                      self.clip(io.c.original_sha256)))


class _Case(_Filter):
    def __init__(self, cases: list[int]) -> None:
        self.k = cases

    def facets(self) -> list[str]:
        return [case_token(k) for k in self.k]

    def _incidents(self) -> Select[Any]:
        ci = CaseIncident.__table__.alias()
        return self._set("incidents", lambda: select(ci.c.incident_id)
                         .where(ci.c.case_id.in_(self.k)))

    def incident(self, i: Expr) -> Cond:
        return i.in_(self._incidents())

    def clip(self, sha: Expr) -> Cond:
        io = IncidentOriginal.__table__.alias()
        return sha.in_(self._set("clips", lambda: select(io.c.original_sha256).where(
            io.c.incident_id.in_(self._incidents())).distinct()))

    def case(self, c: Expr) -> Cond:
        return c.in_(self.k)


def _with_merged(session: Session, cameras: list[int]) -> list[int]:
    """These cameras and every camera merged into them (which they stand for)."""
    out = list(dict.fromkeys(cameras))
    frontier = out
    while frontier:
        frontier = [c for c in session.scalars(select(Camera.id).where(
            Camera.merged_into.in_(frontier))) if c not in out]
        out += frontier
    return out


def resolve(session: Session, filters: Filters) -> list[_Filter]:
    """The filters as predicates; an unknown facility, region, camera, case or status is an
    error that names it (never an empty result that looks like "nothing happened there")."""
    out: list[_Filter] = []
    if filters.facility is not None or filters.region is not None:
        q = select(Facility.id)
        if filters.facility is not None:
            if session.scalar(select(Facility.id).where(Facility.name == filters.facility)) \
                    is None:
                raise StrongroomError(f"no facility {filters.facility!r}")
            q = q.where(Facility.name == filters.facility)
        if filters.region is not None:
            if session.scalar(select(Facility.id).where(Facility.region == filters.region)) \
                    is None:
                raise StrongroomError(f"no facility in region {filters.region!r}")
            q = q.where(Facility.region == filters.region)
        facilities = list(session.scalars(q))
        cameras = _with_merged(session, list(session.scalars(
            select(Camera.id).where(Camera.facility_id.in_(facilities)))))
        out.append(_Place(facilities, cameras))
    if filters.camera is not None:
        cam = session.scalar(select(Camera.id).where(Camera.label == filters.camera))
        if cam is None:
            raise StrongroomError(f"no camera {filters.camera!r}")
        out.append(_CameraFilter(_with_merged(session, [cam])))
    if filters.date_from is not None or filters.date_to is not None:
        if (filters.date_from is not None and filters.date_to is not None
                and filters.date_to < filters.date_from):
            raise StrongroomError("the date range ends before it starts")
        out.append(_When(filters.date_from, filters.date_to))
    if filters.abuse_type is not None:
        out.append(_AbuseType(filters.abuse_type))
    if filters.status is not None:
        if filters.status not in REVIEW_STATUSES:
            raise StrongroomError(f"no review status {filters.status!r} (one of: "
                                  f"{', '.join(REVIEW_STATUSES)})")
        out.append(_Status(filters.status))
    if filters.case is not None:
        case = session.scalar(select(CaseFile.id).where(CaseFile.name == filters.case))
        if case is None:
            raise StrongroomError(f"no case {filters.case!r}")
        out.append(_Case([case]))
    out.sort(key=lambda f: f.by_hit)  # sets first: a look-up is cheaper
    for n, f in enumerate(out):
        f.tag = f"filter{n}"
    return out


def _kind_conditions(kind: str, ref: Expr, sha: Expr, filters: Sequence[_Filter]) -> Cond:
    return and_(true(), *[f.for_kind(kind, ref, sha) for f in filters])


# -- backends ------------------------------------------------------------------------------
class Search(Protocol):
    """A way to find things: best first, at most `limit`."""

    name: str

    def find(self, session: Session, query: Query, filters: Sequence[_Filter],
             limit: int) -> list[Found]: ...


class Fts5Search:
    """SQLite: the FTS5 index inside the catalogue, best match (bm25) first.

    Without filters, one statement: FTS5 walks the matching documents newest first (by rowid,
    in its own order, no sorting), the first `RANK_WINDOW` get their bm25 score and the best
    `limit` of those come back. With filters, the same from the filter index (`_filtered`).
    Within the window that is exactly "best first"; beyond it (a very common word, in tens of
    thousands of documents) the older matches are not ranked, which keeps a search fast
    however much matches (scoring costs about a microsecond a document); `Results.more` then
    says to narrow the search. On a catalogue without the filter index (before migration
    0013) filters are the SQL of `_Filter`, and a `by_hit` filter ranks every match, checked
    best first until `limit` pass."""

    name = "fts5"

    def find(self, session: Session, query: Query, filters: Sequence[_Filter],
             limit: int) -> list[Found]:
        if filters and has_filter_index(session.connection()):
            return self._filtered(session, query, filters, limit)
        fts = table(FTS_TABLE, column("rowid"))
        d = SearchDoc.__table__
        inner = (select(d.c.kind, d.c.ref, d.c.sha256, fts.c.rowid.label("doc"),
                        func.bm25(literal_column(FTS_TABLE)).label("score"))
                 .select_from(fts.join(d, d.c.id == fts.c.rowid))
                 .where(text("search_fts MATCH :fts").bindparams(fts=query.fts()))
                 .order_by(fts.c.rowid.desc()).limit(RANK_WINDOW))
        if any(f.by_hit for f in filters):
            # in rank order (FTS5 sorts every match by bm25 itself), each filter checked on
            # each hit in turn, until `limit` pass: exact ranking, and a filter most things
            # pass is checked on few hits
            ranked = table(FTS_TABLE, column("rowid"), column("rank"))
            q = (select(d.c.kind, d.c.ref, d.c.sha256)
                 .select_from(ranked.join(d, d.c.id == ranked.c.rowid))
                 .where(text("search_fts MATCH :fts").bindparams(fts=query.fts()),
                        or_(*[and_(d.c.kind == k, _kind_conditions(k, d.c.ref, d.c.sha256,
                                                                     filters))
                              for k in KINDS]))
                 .order_by(ranked.c.rank).limit(limit))
            return [(r[0], r[1], r[2]) for r in session.execute(q)]
        if filters:
            inner = inner.where(or_(*[and_(d.c.kind == k, _kind_conditions(
                k, d.c.ref, d.c.sha256, filters)) for k in KINDS]))
        w = inner.subquery()
        q = select(w.c.kind, w.c.ref, w.c.sha256).order_by(w.c.score, w.c.doc.desc()).limit(limit)
        return [(r[0], r[1], r[2]) for r in session.execute(q)]

    def _filtered(self, session: Session, query: Query, filters: Sequence[_Filter],
                  limit: int) -> list[Found]:
        """With filters, from the filter index (migration 0013): the user's words in its
        `terms` column AND, for each filter, one of its facet tokens in `facets` — FTS5
        intersects the posting lists — newest first, the first `RANK_WINDOW` (exactly the
        documents the SQL filters pass). Those candidates are then scored by `search_fts`
        (bm25 over the words alone, as without filters: the facets would change the
        documents' lengths), and the best `limit` returned."""
        match = "terms : (" + query.fts() + ")"
        recheck = None
        for f in filters:
            r = f.recheck() if recheck is None else None
            if r is not None:
                recheck = (f, r)
                continue
            match += " AND facets : (" + " OR ".join(f.facets() or [NOTHING]) + ")"
        ff = _FILTER_FTS
        d = SearchDoc.__table__
        params: dict[str, Any] = {}
        found: Select[Any] | CompoundSelect[Any] = select(ff.c.rowid.label("id")).where(
            text("search_filter_fts MATCH :m1").bindparams(m1=match))
        if recheck is not None:
            # a date range's edge day lies only partly in the range: a document on it (and on
            # no day inside) is checked exactly, correlated, after FTS5 has found it
            f, (edges, exact, params) = recheck
            inner = [t for t in f.facets() if t not in edges]
            on_edge = select(ff.c.rowid.label("id")).where(
                text("search_filter_fts MATCH :m2").bindparams(
                    m2=f"{match} AND facets : ({' OR '.join(edges)})"), exact)
            found = (select(ff.c.rowid.label("id")).where(
                text("search_filter_fts MATCH :m1").bindparams(
                    m1=f"{match} AND facets : ({' OR '.join(inner)})")).union(on_edge)
                if inner else on_edge)
        found_q = found.subquery()
        cand = (select(found_q.c.id).order_by(found_q.c.id.desc()).limit(RANK_WINDOW)
                .cte("candidate").prefix_with("MATERIALIZED"))
        fts = table(FTS_TABLE, column("rowid"))
        # FTS5 walks the query's matches between the oldest and the newest candidate, each
        # looked up among the candidates (`+`: not a rowid look-up per candidate, which costs
        # FTS5 milliseconds each for a common word); only those get their bm25 score
        scored = select(fts.c.rowid.label("doc"),
                        func.bm25(literal_column(FTS_TABLE)).label("score")).where(
            text("search_fts MATCH :fts").bindparams(fts=query.fts()),
            fts.c.rowid >= select(func.min(cand.c.id)).scalar_subquery(),
            fts.c.rowid <= select(func.max(cand.c.id)).scalar_subquery(),
            literal_column("+search_fts.rowid").in_(select(cand.c.id))).subquery()
        q = (select(d.c.kind, d.c.ref, d.c.sha256).select_from(
            scored.join(d, d.c.id == scored.c.doc))
             .order_by(scored.c.score, scored.c.doc.desc()).limit(limit))
        return [(r[0], r[1], r[2]) for r in session.connection().execute(q, params)]


class LikeSearch:
    """No index: each word's Snowball stem as a substring of the same text (PostgreSQL for
    now, and the benchmark's baseline). Case-blind on PostgreSQL (ILIKE); SQLite's LIKE folds
    ASCII only, so a capitalised form of each stem is tried too."""

    name = "like"

    def find(self, session: Session, query: Query, filters: Sequence[_Filter],
             limit: int) -> list[Found]:
        postgres = session.get_bind().dialect.name == "postgresql"
        selects = []
        for every in KINDS.values():
            kind = every.as_of(session.connection())
            ref = kind.ref if kind.ref is not None else literal(None, type_=Integer)
            sha = kind.sha if kind.sha is not None else literal(None, type_=Text)
            words = [self._word(w, kind.columns, kind.transcript, postgres)
                     for w in query.words]
            selects.append(select(literal(kind.name).label("kind"), ref.label("ref"),
                                  sha.label("sha256"))
                           .where(*kind.where, *words,
                                  _kind_conditions(kind.name, ref, sha, filters)))
        u = union_all(*selects).subquery()
        q = select(u.c.kind, u.c.ref, u.c.sha256).limit(limit)
        return [(r[0], r[1], r[2]) for r in session.execute(q)]

    @staticmethod
    def _word(word: str, columns: Sequence[Any], transcript: bool, postgres: bool) -> Cond:
        s = stem(word)
        forms = [s] if postgres else list(dict.fromkeys([s, s[:1].upper() + s[1:]]))
        conds = []
        for col in columns:
            target = cast(col, Text) if transcript else col
            for form in forms:
                shown = json.dumps(form)[1:-1] if transcript else form
                pattern = "%" + _like_escape(shown) + "%"
                conds.append(target.ilike(pattern, escape="!") if postgres
                             else target.like(pattern, escape="!"))
        return or_(*conds)


class PgSearch:
    """PostgreSQL (migration 0015): the normalised words of each document as a `tsvector`
    (`search_doc.terms`, GIN-indexed) matched by a `tsquery` of the normal forms asked — the
    same lemmas and stems as FTS5 on SQLite, so both find the same documents — best
    `ts_rank` first. Filters are the exact SQL of `_Filter`."""

    name = "postgresql"

    def find(self, session: Session, query: Query, filters: Sequence[_Filter],
             limit: int) -> list[Found]:
        d = SearchDoc.__table__
        tsq = func.to_tsquery("simple", _tsquery(query))
        vector: ColumnElement[Any] = literal_column("search_doc.terms")
        q = select(d.c.kind, d.c.ref, d.c.sha256).where(vector.op("@@")(tsq))
        if filters:
            q = q.where(or_(*[and_(d.c.kind == k, _kind_conditions(k, d.c.ref, d.c.sha256,
                                                                     filters))
                              for k in KINDS]))
        q = q.order_by(func.ts_rank(vector, tsq).desc(), d.c.id.desc()).limit(limit)
        return [(r[0], r[1], r[2]) for r in session.execute(q)]


def _tsquery(query: Query) -> str:
    """The tsquery text: each group's normal forms in order (`<->`), groups ANDed; every
    lexeme quoted, so no operator of the user's reaches PostgreSQL."""
    def lexeme(word: str) -> str:
        return "'" + normal(word).replace("'", "''").replace("\\", "\\\\") + "'"

    return " & ".join("(" + " <-> ".join(lexeme(w) for w in g) + ")" for g in query.groups)


def backend_for(session: Session) -> Search:
    """FTS5 where the catalogue has the index (SQLite), a tsvector on PostgreSQL, else the
    LIKE fallback."""
    conn = session.connection()
    if not has_index(conn):
        return LikeSearch()
    return PgSearch() if conn.dialect.name == "postgresql" else Fts5Search()


# -- results ---------------------------------------------------------------------------------
@dataclass
class Hit:
    kind: str
    id: int | str  # the row's id; a transcript's is its clip
    sha256: str | None
    #: the snippet: (text, is_hit) in order; `snippet()` renders it with brackets
    parts: list[tuple[str, bool]]
    #: an incident's (or a case's) clips
    clips: list[str] = field(default_factory=list)

    def snippet(self, mark: tuple[str, str] = ("[", "]")) -> str:
        return "".join(f"{mark[0]}{t}{mark[1]}" if hit else t for t, hit in self.parts)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "id": self.id, "sha256": self.sha256,
                               "snippet": self.snippet()}
        if self.clips:
            out["clips"] = self.clips
        return out

    def to_text(self) -> str:
        where = f"{KINDS[self.kind].label} {self.id}"
        if self.sha256 and self.sha256 != self.id:
            where += f" (clip {self.sha256[:12]})"
        elif self.clips:
            where += f" (clips {', '.join(c[:12] for c in self.clips)})"
        return f"{where}: {self.snippet()}"


@dataclass
class Results:
    query: str
    filters: Filters
    backend: str
    hits: list[Hit]
    #: more hits than `limit` exist
    more: bool

    def to_json(self) -> dict[str, Any]:
        return {"query": self.query, "filters": self.filters.to_json(), "backend": self.backend,
                "hits": [h.to_json() for h in self.hits], "more": self.more}

    def to_text(self) -> str:
        if not self.hits:
            return f"no matches for {self.query!r}"
        lines = [h.to_text() for h in self.hits]
        if self.more:
            lines.append(f"(more than {len(self.hits)} matches: narrow the search)")
        return "\n".join(lines)


def highlight(body: str, query: Query, *, stems: bool = False) -> list[tuple[str, bool]]:
    """A window of `body` around its first matching word, matching words marked. A word
    matches when its normal form is one the query asked for (with `stems`, also when it holds
    a query word's stem: what the LIKE fallback matched)."""
    wanted = query.terms()
    stemmed = [stem(w) for w in query.words] if stems else []
    spans = [(m.start(), m.end()) for m in WORD.finditer(body)
             if normal(m.group()) in wanted
             or any(s and s in m.group().lower().replace("ё", "е") for s in stemmed)]
    start = 0
    if spans and spans[0][0] > SNIPPET_BEFORE:
        start = body.rfind(" ", 0, spans[0][0] - SNIPPET_BEFORE) + 1
    end = min(len(body), start + SNIPPET_CHARS)
    if end < len(body):
        end = max(body.rfind(" ", start, end), spans[0][1] if spans else start + 1)
    parts: list[tuple[str, bool]] = [("…", False)] if start > 0 else []
    pos = start
    for a, b in spans:
        if a < start or b > end:
            continue
        if a > pos:
            parts.append((body[pos:a], False))
        parts.append((body[a:b], True))
        pos = b
    if end > pos:
        parts.append((body[pos:end], False))
    if end < len(body):
        parts.append(("…", False))
    return parts


def search(session: Session, query: str, filters: Filters | None = None, *,
           limit: int = DEFAULT_LIMIT, backend: Search | None = None) -> Results:
    """Find `query` in the catalogue (see the module docstring). Reads only."""
    if limit < 1:
        raise StrongroomError("the limit must be at least 1")
    filters = filters or Filters()
    parsed = parse_query(query)
    predicates = resolve(session, filters)
    engine = backend or backend_for(session)
    found = engine.find(session, parsed, predicates, limit + 1)
    shown = found[:limit]
    bodies = _bodies(session, shown)
    clips_of: dict[int, list[str]] = {}
    incidents = sorted({ref for kind, ref, _ in shown if kind == "incident" and ref is not None})
    if incidents:
        for i, linked in session.connection().execute(
                select(IncidentOriginal.incident_id, IncidentOriginal.original_sha256)
                .where(IncidentOriginal.incident_id.in_(incidents))
                .order_by(IncidentOriginal.original_sha256)):
            clips_of.setdefault(i, []).append(linked)
    hits = []
    for kind, ref, sha in shown:
        clip, body = bodies.get((kind, ref, sha), (sha, ""))
        clips = clips_of.get(ref, []) if kind == "incident" and ref is not None else []
        hits.append(Hit(kind=kind, id=ref if ref is not None else (clip or ""), sha256=clip,
                        parts=highlight(body, parsed, stems=engine.name == "like"),
                        clips=clips))
    return Results(query=parsed.text, filters=filters, backend=engine.name, hits=hits,
                   more=len(found) > limit)


def _bodies(session: Session, found: Sequence[Found]
            ) -> dict[Found, tuple[str | None, str]]:
    """(clip, text) of each found thing, read with one query per kind."""
    out: dict[Found, tuple[str | None, str]] = {}
    by_kind: dict[str, list[Found]] = {}
    for f in found:
        by_kind.setdefault(f[0], []).append(f)
    for kind, wanted in by_kind.items():
        k = KINDS[kind]
        q = k.select()
        if k.ref is not None:
            q = q.where(k.ref.in_(sorted({r for _, r, _ in wanted if r is not None})))
        elif k.sha is not None:
            q = q.where(k.sha.in_(sorted({sh for _, _, sh in wanted if sh is not None})))
        rows: dict[tuple[int | None, str | None], tuple[str | None, str]] = {}
        for row in session.connection().execute(q):
            rows.setdefault((row[0], row[1]), (row[1], k.text_of(row[2:])))
            rows.setdefault((row[0], None), (row[1], k.text_of(row[2:])))
        for f in wanted:
            _, ref, sha = f
            key = (ref if k.ref is not None else None, sha if k.sha is not None else None)
            if key in rows:
                out[f] = rows[key]
    return out
