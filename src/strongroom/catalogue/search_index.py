"""The search index: what is searchable, and how its FTS5 table follows the catalogue.

Searchable things ("documents"), each with the text it contributes (`KINDS`):
incidents (title, description), an incident's note on one of its clips, cases (name,
description), a clip's review note, cameras (label, and what OCR read before a rename),
transcripts (the `transcribe` step's result), people (the pseudonym only: a sealed identity
is age-encrypted and never read here), facilities (name, type, region). Segments carry no
text of their own: their camera is the camera document, their clock and camera are filters.

Where the index lives: `search_doc` (one row per document: kind, id, clip) and the FTS5 table
`search_fts` (rowid = `search_doc.id`, one column of normalised words, `words.terms`), both
inside the catalogue database. A SQLite catalogue is SQLCipher-encrypted page by page, so the
index is exactly as protected as the text it comes from; there is no index file of its own.
`search_fts` is an ordinary FTS5 table (it stores its normalised words as well as the
inverted index): a contentless one (`content=''`, `contentless_delete=1`) would be smaller,
but needs SQLite 3.43 (older plaintext catalogues open with the system's SQLite) and
`sqlcipher_export` (`migrate-catalogue --encrypt`) fails on it. The words shown in results are
read from the catalogue rows themselves.

The filter index (migration 0013): `search_filter_fts` (rowid = `search_doc.id` too) holds
each document's words again, in its `terms` column, and its filter facets as reserved tokens
in `facets` (`search_facets`), so that a filtered search intersects posting lists inside
FTS5. Its scores are not used: facets would count towards a document's length, so bm25 is
still taken from `search_fts`, over the words alone (`search.Fts5Search`).

How it stays in step: an `after_flush` listener on the catalogue's write sessions (bound
to their class, `IndexedSession`) re-reads every document touched by the flush — added,
changed or deleted ORM rows of the indexed tables — and rewrites its index entry on the same
connection, so the entry commits or rolls back with the change that caused it. No writer has
to remember it (the review app's `update_review` writes a `Review` row and is covered as it
is). A document's facets follow from more rows than its text (`dependents`): a segment, a
review status or a clip link re-indexes the clip's documents and its incidents' (and their
cases' and people's); an incident's facility, time, abuse types or case membership its own,
its clips', its cases' and its people's; a camera mapped to another facility or merged into
another camera every clip on it (and on the cameras merged into it). Bulk SQL statements
bypass the ORM and so the listener: the overlay step's bulk `DELETE` of a clip's segments
is followed by `clips_changed`; nothing else in Strongroom writes the indexed tables that way,
and `rebuild` (the migrations, the benchmark's bulk load) redoes everything.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    delete,
    event,
    insert,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from strongroom.catalogue.models import (
    Camera,
    CaseFile,
    CaseIncident,
    Facility,
    Incident,
    IncidentOriginal,
    IncidentPerson,
    Person,
    Review,
    SearchDoc,
    Segment,
    StepRun,
)
from strongroom.catalogue.search_facets import Facets
from strongroom.catalogue.search_facets import text_of as facets_text
from strongroom.catalogue.words import terms

FTS_TABLE = "search_fts"
#: FTS5 over the normalised words, with the stock tokenizer (any SQLCipher build reads it)
FTS_DDL = ("CREATE VIRTUAL TABLE IF NOT EXISTS search_fts USING fts5(terms, "
           "tokenize='unicode61')")
_INSERT = "INSERT INTO search_fts(rowid, terms) VALUES (:id, :terms)"
_DROP = "DELETE FROM search_fts WHERE rowid = :id"
_DROP_ALL = "DELETE FROM search_fts"
#: the filter index (migration 0013): the same words, and each document's facets
#: (`search_facets`), for filtered searches; scores still come from `search_fts`
FILTER_TABLE = "search_filter_fts"
FILTER_DDL = ("CREATE VIRTUAL TABLE IF NOT EXISTS search_filter_fts USING fts5(terms, facets, "
              "tokenize='unicode61')")
_FILTER_INSERT = ("INSERT INTO search_filter_fts(rowid, terms, facets) "
                  "VALUES (:id, :terms, :facets)")
_FILTER_DROP = "DELETE FROM search_filter_fts WHERE rowid = :id"
_FILTER_DROP_ALL = "DELETE FROM search_filter_fts"
TRANSCRIBE_STEP = "transcribe"


def is_index_table(name: str) -> bool:
    """The index's own tables (derived data: never compared, never exported)."""
    return name == "search_doc" or any(name == t or name.startswith(t + "_")
                                       for t in (FTS_TABLE, FILTER_TABLE))


@dataclass(frozen=True)
class Kind:
    """One kind of searchable thing: its rows, its id and clip columns, its text columns."""

    name: str
    label: str
    ref: Any  # the id column (None: keyed by the clip alone)
    sha: Any  # the clip column (None: no clip)
    columns: tuple[Any, ...]
    where: tuple[Any, ...] = field(default=())
    #: the text is a `transcribe` result (JSON), not plain columns
    transcript: bool = False

    def select(self) -> Select[Any]:
        ref = self.ref if self.ref is not None else null()
        sha = self.sha if self.sha is not None else null()
        return select(ref.label("ref"), sha.label("sha256"), *self.columns).where(*self.where)

    def as_of(self, conn: Connection) -> Kind:
        """This kind with only the text columns the database has: a migration rebuilding the
        index at an older revision (0006) reads a schema from before later columns."""
        from dataclasses import replace

        from sqlalchemy import inspect as inspect_db

        have: dict[str, set[str]] = {}
        kept = []
        for col in self.columns:
            table = col.table.name
            if table not in have:
                have[table] = {c["name"] for c in inspect_db(conn).get_columns(table)}
            if col.name in have[table]:
                kept.append(col)
        return self if len(kept) == len(self.columns) else replace(self, columns=tuple(kept))

    def text_of(self, values: Sequence[Any]) -> str:
        if self.transcript:
            return transcript_text(values[0])
        return " · ".join(str(v).strip() for v in values if v is not None and str(v).strip())


def transcript_text(result: Any) -> str:
    data = json.loads(result) if isinstance(result, str) else result
    if not isinstance(data, dict):
        return ""
    lines = data.get("segments")
    if not isinstance(lines, list):
        return ""
    return " ".join(str(x.get("text", "")).strip() for x in lines
                    if isinstance(x, dict) and str(x.get("text", "")).strip())


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("incident", "incident", Incident.id, None, (Incident.title, Incident.description)),
    Kind("incident_note", "incident's clip note", IncidentOriginal.incident_id,
         IncidentOriginal.original_sha256, (IncidentOriginal.note,),
         (IncidentOriginal.note.is_not(None),)),
    Kind("case", "case", CaseFile.id, None, (CaseFile.name, CaseFile.description,
                                              CaseFile.recipient, CaseFile.notes)),
    Kind("review", "clip review note", Review.id, Review.original_sha256, (Review.note,),
         (Review.note.is_not(None),)),
    Kind("camera", "camera", Camera.id, None, (Camera.label, Camera.read_as)),
    Kind("transcript", "transcript", None, StepRun.original_sha256, (StepRun.result,),
         (StepRun.step == TRANSCRIBE_STEP, StepRun.status == "ok"), transcript=True),
    # the pseudonym only: Person.sealed_identity is never selected
    Kind("person", "person", Person.id, None, (Person.pseudonym, Person.note)),
    Kind("facility", "facility", Facility.id, None, (Facility.name, Facility.type,
                                                      Facility.region)),
)}

#: (kind, id, clip): a document's identity; the clip only where it is part of it
DocKey = tuple[str, int | None, str | None]


def doc_key(key: DocKey) -> str:
    kind, ref, sha = key
    return f"{kind}:{'' if ref is None else ref}:{sha or ''}"


def _key_of(obj: object) -> DocKey | None:
    """The document an ORM row belongs to, from its primary key (valid for deleted rows too)."""
    state = sa_inspect(obj, raiseerr=False)
    if state is None:
        return None
    # during a flush a new row is still "pending" (no identity yet) but has its key
    identity = state.identity or tuple(state.mapper.primary_key_from_instance(obj))
    if not identity or any(v is None for v in identity):
        return None
    if isinstance(obj, Incident):
        return ("incident", identity[0], None)
    if isinstance(obj, IncidentOriginal):
        return ("incident_note", identity[0], identity[1])
    if isinstance(obj, CaseFile):
        return ("case", identity[0], None)
    if isinstance(obj, Review):
        return ("review", identity[0], None)
    if isinstance(obj, Camera):
        return ("camera", identity[0], None)
    if isinstance(obj, StepRun):
        return ("transcript", None, identity[0]) if identity[1] == TRANSCRIBE_STEP else None
    if isinstance(obj, Person):
        return ("person", identity[0], None)
    if isinstance(obj, Facility):
        return ("facility", identity[0], None)
    return None


def has_index(conn: Connection) -> bool:
    """Whether this catalogue has the index (SQLite at revision 0006 or later, PostgreSQL at
    0015 or later)."""
    if conn.dialect.name == "postgresql":
        return conn.execute(text(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = 'search_doc' AND column_name = 'terms'")).first() is not None
    if conn.dialect.name != "sqlite":
        return False
    return conn.execute(text("SELECT 1 FROM sqlite_master WHERE name = :n"),
                        {"n": FTS_TABLE}).first() is not None


#: PostgreSQL (migration 0015): a document's normalised words as a tsvector, beside its row;
#: the 'simple' configuration only splits them (they are lemmas and stems already)
_PG_TERMS = "UPDATE search_doc SET terms = to_tsvector('simple', :terms) WHERE id = :id"
_PG_INSERT = ("INSERT INTO search_doc (id, key, kind, ref, sha256, terms) VALUES "
              "(:id, :key, :kind, :ref, :sha256, to_tsvector('simple', :terms))")


def has_filter_index(conn: Connection) -> bool:
    """Whether this catalogue has the filter index (SQLite at revision 0013 or later)."""
    if conn.dialect.name != "sqlite":
        return False
    return conn.execute(text("SELECT 1 FROM sqlite_master WHERE name = :n"),
                        {"n": FILTER_TABLE}).first() is not None


def read_docs(conn: Connection | Session, kind: Kind, *, ref: int | None = None,
              sha: str | None = None) -> Iterator[tuple[int | None, str | None, str]]:
    """(id, clip, text) of the documents of `kind` (only the one with `ref`/`sha` if given)."""
    q = kind.select()
    if ref is not None and kind.ref is not None:
        q = q.where(kind.ref == ref)
    if sha is not None and kind.sha is not None:
        q = q.where(kind.sha == sha)
    for row in conn.execute(q):
        yield row[0], row[1], kind.text_of(row[2:])


def refresh(conn: Connection, keys: Iterable[DocKey]) -> None:
    """Rewrite the index entries of these documents from the rows as they now are."""
    fts = text(_INSERT)
    drop = text(_DROP)
    pg = conn.dialect.name == "postgresql"
    facets = Facets(conn) if has_filter_index(conn) else None
    for key in keys:
        kind, ref, sha = key
        name = doc_key(key)
        found = [d for d in read_docs(conn, KINDS[kind], ref=ref, sha=sha) if d[2]]
        existing = conn.execute(select(SearchDoc.id).where(SearchDoc.key == name)).scalar()
        if existing is not None and not pg:
            conn.execute(drop, {"id": existing})
            if facets is not None:
                conn.execute(text(_FILTER_DROP), {"id": existing})
        if not found:
            if existing is not None:
                conn.execute(delete(SearchDoc).where(SearchDoc.id == existing))
            continue
        _, clip, body = found[0]
        if existing is None:
            existing = conn.execute(insert(SearchDoc).values(
                key=name, kind=kind, ref=ref, sha256=clip).returning(SearchDoc.id)).scalar_one()
        else:
            conn.execute(update(SearchDoc).where(SearchDoc.id == existing)
                         .values(sha256=clip))
        words = terms(body)
        if pg:
            conn.execute(text(_PG_TERMS), {"id": existing, "terms": words})
            continue
        conn.execute(fts, {"id": existing, "terms": words})
        if facets is not None:
            conn.execute(text(_FILTER_INSERT), {"id": existing, "terms": words, "facets":
                                                facets_text(facets.of(kind, ref, clip))})


def rebuild(conn: Connection, *, batch: int = 5000) -> int:
    """Index every document afresh (the migration; a bulk load); returns how many."""
    if conn.dialect.name == "postgresql":
        return _rebuild_pg(conn, batch)
    conn.execute(text(_DROP_ALL))
    conn.execute(delete(SearchDoc))
    facets = Facets(conn) if has_filter_index(conn) else None
    if facets is not None:
        conn.execute(text(_FILTER_DROP_ALL))
        facets.load_all()
    next_id = 1
    docs: list[dict[str, Any]] = []
    words: list[dict[str, Any]] = []

    def flush() -> None:
        if docs:
            conn.execute(insert(SearchDoc), docs)
            conn.execute(text(_INSERT), [{"id": w["id"], "terms": w["terms"]} for w in words])
            if facets is not None:
                conn.execute(text(_FILTER_INSERT), words)
            docs.clear()
            words.clear()

    for kind, key_ref, key_sha, sha, body in _every_doc(conn):
        docs.append({"id": next_id, "key": doc_key((kind, key_ref, key_sha)),
                     "kind": kind, "ref": key_ref, "sha256": sha})
        words.append({"id": next_id, "terms": terms(body), "facets": facets_text(
            facets.of(kind, key_ref, sha)) if facets is not None else ""})
        next_id += 1
        if len(docs) >= batch:
            flush()
    flush()
    return next_id - 1


def _every_doc(conn: Connection) -> Iterator[tuple[str, int | None, str | None, str | None,
                                                  str]]:
    """(kind, the key's id, the key's clip, the clip, text) of every document with text."""
    for every in KINDS.values():
        kind = every.as_of(conn)
        for ref, sha, body in read_docs(conn, kind):
            if body:
                yield (kind.name, ref if kind.ref is not None else None,
                       sha if kind.name in ("incident_note", "transcript") else None, sha, body)


def _rebuild_pg(conn: Connection, batch: int) -> int:
    conn.execute(delete(SearchDoc))
    rows: list[dict[str, Any]] = []
    count = 0
    for kind, key_ref, key_sha, sha, body in _every_doc(conn):
        count += 1
        rows.append({"id": count, "key": doc_key((kind, key_ref, key_sha)), "kind": kind,
                     "ref": key_ref, "sha256": sha, "terms": terms(body)})
        if len(rows) >= batch:
            conn.execute(text(_PG_INSERT), rows)
            rows.clear()
    if rows:
        conn.execute(text(_PG_INSERT), rows)
    # the rows took their ids: the sequence goes on after them
    conn.execute(text("SELECT setval(pg_get_serial_sequence('search_doc', 'id'), :n, false)"),
                 {"n": count + 1})
    return count


def _values(obj: object, name: str) -> list[Any]:
    """An attribute's current value and, for a changed row, the value it had."""
    state = sa_inspect(obj, raiseerr=False)
    out = [getattr(obj, name, None)]
    if state is not None and name in state.attrs:
        out += list(state.attrs[name].history.deleted or ())
    return [v for v in out if v is not None]


def _changed(obj: object, *names: str) -> bool:
    state = sa_inspect(obj, raiseerr=False)
    return state is not None and any(state.attrs[n].history.has_changes() for n in names)


def dependents(conn: Connection, keys: set[DocKey], *, clips: Iterable[str] = (),
               incidents: Iterable[int] = (), cameras: Iterable[int] = (),
               remapped: Iterable[int] = ()) -> set[DocKey]:
    """`keys` and every document whose facets (`search_facets`) follow from these clips
    (segments, review status), incidents (facility, dates, abuse types, clips, cases),
    cameras (segments' days) and remapped cameras (facility, merge)."""
    out = set(keys)
    clips, incidents = set(clips), set(incidents)
    frontier = set(remapped)
    chained: set[int] = set()
    while frontier:  # a remapped camera and every camera merged into it
        chained |= frontier
        frontier = set(conn.execute(select(Camera.id).where(
            Camera.merged_into.in_(sorted(frontier)))).scalars()) - chained
    out |= {("camera", c, None) for c in set(cameras) | chained}
    if chained:
        clips |= set(conn.execute(select(Segment.original_sha256).where(
            Segment.camera_id.in_(sorted(chained))).distinct()).scalars())
    # a clip's own facets reach its incidents; an incident's abuse types and cases its clips
    incidents |= set(conn.execute(select(IncidentOriginal.incident_id).where(
        IncidentOriginal.original_sha256.in_(sorted(clips)))).scalars())
    clips |= set(conn.execute(select(IncidentOriginal.original_sha256).where(
        IncidentOriginal.incident_id.in_(sorted(incidents)))).scalars())
    ids = sorted(incidents)
    out |= {("incident", i, None) for i in incidents}
    out |= {("case", k, None) for k in conn.execute(select(CaseIncident.case_id).where(
        CaseIncident.incident_id.in_(ids))).scalars()}
    out |= {("person", p, None) for p in conn.execute(select(IncidentPerson.person_id).where(
        IncidentPerson.incident_id.in_(ids))).scalars()}
    shas = sorted(clips)
    out |= {("incident_note", i, sha) for i, sha in conn.execute(select(
        IncidentOriginal.incident_id, IncidentOriginal.original_sha256).where(or_(
            IncidentOriginal.incident_id.in_(ids), IncidentOriginal.original_sha256.in_(shas))))}
    out |= {("review", r, None) for r in conn.execute(select(Review.id).where(
        Review.original_sha256.in_(shas))).scalars()}
    out |= {("transcript", None, sha) for sha in clips}
    return out


def _after_flush(session: Session, _context: object) -> None:
    keys: set[DocKey] = set()
    clips: set[str] = set(session.info.pop(_CHANGED_CLIPS, ()))
    incidents: set[int] = set()
    cameras: set[int] = set()
    remapped: set[int] = set()
    for obj in chain(session.new, session.dirty, session.deleted):
        if (k := _key_of(obj)) is not None:
            keys.add(k)
        if isinstance(obj, Segment):
            clips.update(_values(obj, "original_sha256"))
            cameras.update(_values(obj, "camera_id"))
        elif isinstance(obj, Review):
            clips.update(_values(obj, "original_sha256"))
        elif isinstance(obj, Incident):
            incidents.update(_values(obj, "id"))
        elif isinstance(obj, IncidentOriginal):
            incidents.update(_values(obj, "incident_id"))
            clips.update(_values(obj, "original_sha256"))
        elif isinstance(obj, CaseIncident):
            keys.update(("case", k, None) for k in _values(obj, "case_id"))
            incidents.update(_values(obj, "incident_id"))
        elif isinstance(obj, IncidentPerson):
            keys.update(("person", p, None) for p in _values(obj, "person_id"))
        elif isinstance(obj, Camera) and obj not in session.new and (
                obj in session.deleted or _changed(obj, "facility_id", "merged_into")):
            remapped.update(_values(obj, "id"))
    if not (keys or clips or incidents or cameras or remapped):
        return
    conn = session.connection()
    if has_index(conn):
        if has_filter_index(conn):
            keys = dependents(conn, keys, clips=clips, incidents=incidents, cameras=cameras,
                              remapped=remapped)
        refresh(conn, sorted(keys, key=doc_key))


_CHANGED_CLIPS = "search_index.changed_clips"


def clips_changed(session: Session, clips: Iterable[str]) -> None:
    """Bulk SQL changed these clips' segments (bypassing the ORM): re-index what follows
    from them at the next flush (now)."""
    session.info.setdefault(_CHANGED_CLIPS, set()).update(clips)
    session.flush()
    pending = session.info.pop(_CHANGED_CLIPS, None)
    if pending:  # the flush had nothing else to write, so no listener ran
        conn = session.connection()
        if has_filter_index(conn):
            refresh(conn, sorted(dependents(conn, set(), clips=pending), key=doc_key))


class IndexedSession(Session):
    """The catalogue's write sessions: every flush keeps the index in step (`_after_flush`).

    The listener is bound to this class once, at import. (It was bound to each catalogue's
    `sessionmaker` after asking `event.contains`, which answers by the `id()` of the
    sessionmaker: a catalogue made after another was freed could get its address, be told the
    listener was there, and write a whole vault with no index: the search tests failed now and
    then on an empty index.)"""


event.listen(IndexedSession, "after_flush", _after_flush)


__all__ = ["FILTER_DDL", "FILTER_TABLE", "FTS_DDL", "FTS_TABLE", "KINDS", "DocKey",
           "IndexedSession", "Kind", "clips_changed", "dependents", "doc_key",
           "has_filter_index", "has_index", "is_index_table", "read_docs", "rebuild", "refresh"]
