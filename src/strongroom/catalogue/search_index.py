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

How it stays in step: a `after_flush` listener on the catalogue's write sessions
(`install`, called by `Catalogue`) re-reads every document touched by the flush — added,
changed or deleted ORM rows of the indexed tables — and rewrites its index entry on the same
connection, so the entry commits or rolls back with the change that caused it. No writer has
to remember it (the review app's `update_review` writes a `Review` row and is covered as it
is). Bulk SQL statements bypass the ORM and so the listener; nothing in Strongroom writes the
indexed tables that way (the overlay step's bulk `DELETE` is of segments, which hold no text),
and `rebuild` (the migration, the benchmark's bulk load) redoes everything.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from sqlalchemy import Connection, Select, delete, event, insert, null, select, text, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session, sessionmaker

from strongroom.catalogue.models import (
    Camera,
    CaseFile,
    Facility,
    Incident,
    IncidentOriginal,
    Person,
    Review,
    SearchDoc,
    StepRun,
)
from strongroom.catalogue.words import terms

FTS_TABLE = "search_fts"
#: FTS5 over the normalised words, with the stock tokenizer (any SQLCipher build reads it)
FTS_DDL = ("CREATE VIRTUAL TABLE IF NOT EXISTS search_fts USING fts5(terms, "
           "tokenize='unicode61')")
_INSERT = "INSERT INTO search_fts(rowid, terms) VALUES (:id, :terms)"
_DROP = "DELETE FROM search_fts WHERE rowid = :id"
_DROP_ALL = "DELETE FROM search_fts"
TRANSCRIBE_STEP = "transcribe"


def is_index_table(name: str) -> bool:
    """The index's own tables (derived data: never compared, never exported)."""
    return name == "search_doc" or name == FTS_TABLE or name.startswith(FTS_TABLE + "_")


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
    """Whether this catalogue has the index (SQLite at revision 0006 or later)."""
    if conn.dialect.name != "sqlite":
        return False
    return conn.execute(text("SELECT 1 FROM sqlite_master WHERE name = :n"),
                        {"n": FTS_TABLE}).first() is not None


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
    for key in keys:
        kind, ref, sha = key
        name = doc_key(key)
        found = [d for d in read_docs(conn, KINDS[kind], ref=ref, sha=sha) if d[2]]
        existing = conn.execute(select(SearchDoc.id).where(SearchDoc.key == name)).scalar()
        if existing is not None:
            conn.execute(drop, {"id": existing})
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
        conn.execute(fts, {"id": existing, "terms": terms(body)})


def rebuild(conn: Connection, *, batch: int = 5000) -> int:
    """Index every document afresh (the migration; a bulk load); returns how many."""
    conn.execute(text(_DROP_ALL))
    conn.execute(delete(SearchDoc))
    next_id = 1
    docs: list[dict[str, Any]] = []
    words: list[dict[str, Any]] = []

    def flush() -> None:
        if docs:
            conn.execute(insert(SearchDoc), docs)
            conn.execute(text(_INSERT),
                         words)
            docs.clear()
            words.clear()

    for every in KINDS.values():
        kind = every.as_of(conn)
        for ref, sha, body in read_docs(conn, kind):
            if not body:
                continue
            key_ref = ref if kind.ref is not None else None
            key_sha = sha if kind.name in ("incident_note", "transcript") else None
            docs.append({"id": next_id, "key": doc_key((kind.name, key_ref, key_sha)),
                         "kind": kind.name, "ref": key_ref, "sha256": sha})
            words.append({"id": next_id, "terms": terms(body)})
            next_id += 1
            if len(docs) >= batch:
                flush()
    flush()
    return next_id - 1


def _after_flush(session: Session, _context: object) -> None:
    keys = {k for obj in chain(session.new, session.dirty, session.deleted)
            if (k := _key_of(obj)) is not None}
    if not keys:
        return
    conn = session.connection()
    if has_index(conn):
        refresh(conn, sorted(keys, key=doc_key))


def install(sessions: sessionmaker[Session]) -> None:
    """Keep the index in step with every write made through these sessions."""
    if not event.contains(sessions, "after_flush", _after_flush):
        event.listen(sessions, "after_flush", _after_flush)


__all__ = ["FTS_DDL", "FTS_TABLE", "KINDS", "DocKey", "Kind", "doc_key", "has_index",
           "install", "is_index_table", "read_docs", "rebuild", "refresh"]
