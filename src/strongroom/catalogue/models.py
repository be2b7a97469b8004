"""The catalogue's tables: the whole data model of DESIGN.md, so later issues only fill them.

Custody events live here too, so a change and the event that records it commit in one
transaction. Times are UTC. Sensitive free text (acquisition descriptions, real identities)
is admin-only; real identities are stored only age-encrypted (`sealed_identity`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SHA256 = String(64)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# -- provenance: how material arrived ------------------------------------------------------
class Acquisition(Base):
    """One batch of material as received (a USB stick, a drive, an upload). Can identify the
    source: admin-only. The custody log carries only a salted commitment to this row."""

    __tablename__ = "acquisition"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    description: Mapped[str] = mapped_column(Text)
    source_path: Mapped[str] = mapped_column(Text)
    medium: Mapped[str] = mapped_column(String(32))  # folder | disk_image | intake
    received_by: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[str | None] = mapped_column(String(64))
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(128))
    nonce: Mapped[str] = mapped_column(String(32))  # salt of the custody commitment
    __table_args__ = (UniqueConstraint("description", "source_path", name="uq_acquisition_key"),)


class Original(Base):
    """Content as received, bit-exact, stored once however often it was sighted."""

    __tablename__ = "original"
    sha256: Mapped[str] = mapped_column(SHA256, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    md5: Mapped[str] = mapped_column(String(32))
    sha512: Mapped[str | None] = mapped_column(String(128))
    blob_name: Mapped[str] = mapped_column(String(64), unique=True)
    blob_size: Mapped[int] = mapped_column(BigInteger)
    mime: Mapped[str | None] = mapped_column(String(128))
    first_acquisition_id: Mapped[int] = mapped_column(ForeignKey("acquisition.id"))
    ingested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Sighting(Base):
    """Where and how an original (or a symlink) was found in one acquisition."""

    __tablename__ = "sighting"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    acquisition_id: Mapped[int] = mapped_column(ForeignKey("acquisition.id"), index=True)
    original_sha256: Mapped[str | None] = mapped_column(ForeignKey("original.sha256"), index=True)
    rel_path: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))  # file | symlink | disk_image
    link_target: Mapped[str | None] = mapped_column(Text)
    size: Mapped[int | None] = mapped_column(BigInteger)
    mode: Mapped[int | None] = mapped_column(Integer)
    mtime_ns: Mapped[int | None] = mapped_column(BigInteger)
    ctime_ns: Mapped[int | None] = mapped_column(BigInteger)
    atime_ns: Mapped[int | None] = mapped_column(BigInteger)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (UniqueConstraint("acquisition_id", "rel_path", name="uq_sighting_path"),)


class IngestError(Base):
    """A file of an acquisition that could not be captured, and why (kept until it is)."""

    __tablename__ = "ingest_error"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    acquisition_id: Mapped[int] = mapped_column(ForeignKey("acquisition.id"), index=True)
    rel_path: Mapped[str] = mapped_column(Text)
    error: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (UniqueConstraint("acquisition_id", "rel_path", name="uq_ingest_error_path"),)


# -- analysis results (pipeline issue) -----------------------------------------------------
class MediaInfo(Base):
    __tablename__ = "media_info"
    original_sha256: Mapped[str] = mapped_column(ForeignKey("original.sha256"), primary_key=True)
    container: Mapped[str | None] = mapped_column(String(64))
    duration: Mapped[float | None] = mapped_column(Float)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    fps: Mapped[float | None] = mapped_column(Float)
    video_codec: Mapped[str | None] = mapped_column(String(64))
    audio_codec: Mapped[str | None] = mapped_column(String(64))
    bitrate: Mapped[int | None] = mapped_column(BigInteger)
    tags: Mapped[dict[str, str] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(32), default="ok")


class Derivative(Base):
    """Anything computed from an original; records exactly how it was produced."""

    __tablename__ = "derivative"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    original_sha256: Mapped[str] = mapped_column(ForeignKey("original.sha256"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(SHA256)
    size: Mapped[int] = mapped_column(BigInteger)
    blob_name: Mapped[str] = mapped_column(String(64))
    mime: Mapped[str | None] = mapped_column(String(128))
    step: Mapped[str] = mapped_column(String(64))
    step_version: Mapped[str] = mapped_column(String(32))
    command: Mapped[list[str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: e.g. {"t": 12.0} for a keyframe: where in the original it comes from
    meta: Mapped[dict[str, object] | None] = mapped_column(JSON)


class DerivativeChunk(Base):
    """One separately sealed piece of a chunked derivative (a video proxy the review app
    streams by byte range: `vault/chunks.py`). The chunks of a derivative tile its plaintext
    in `idx` order; its row keeps the whole plaintext's SHA-256 and size, and its `blob_name`
    is its first chunk's blob. Its `derived` event carries a digest of these rows."""

    __tablename__ = "derivative_chunk"
    derivative_id: Mapped[int] = mapped_column(ForeignKey("derivative.id"), primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    offset: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(SHA256)
    blob_name: Mapped[str] = mapped_column(String(64), index=True)


class StepRun(Base):
    """One pipeline step's outcome for one original: what makes the pipeline resumable.

    Work is pending when there is no row for (original, step) at the step's current version."""

    __tablename__ = "step_run"
    original_sha256: Mapped[str] = mapped_column(ForeignKey("original.sha256"), primary_key=True)
    step: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))  # ok | error | skipped
    result: Mapped[dict[str, object] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    command: Mapped[list[str] | None] = mapped_column(JSON)
    seconds: Mapped[float | None] = mapped_column(Float)
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FrameHash(Base):
    """PDQ hash of one sampled frame (the per-video list is the vPDQ-style signature)."""

    __tablename__ = "frame_hash"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    original_sha256: Mapped[str] = mapped_column(ForeignKey("original.sha256"), index=True)
    t: Mapped[float] = mapped_column(Float)
    pdq: Mapped[str] = mapped_column(String(64))
    quality: Mapped[int] = mapped_column(Integer)


class Facility(Base):
    __tablename__ = "facility"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    type: Mapped[str | None] = mapped_column(String(64))
    region: Mapped[str | None] = mapped_column(Text)


class VocabularyTerm(Base):
    """A term this vault added to a vocabulary (abuse types, facility types), or a shipped
    term (`catalogue/vocabulary.py`) it relabelled or retired: the shipped list lives in code,
    this table holds the vault's own changes, each an `annotated` custody event. Records keep
    the term's `code`; a retired term stays valid on them but is no longer offered."""

    __tablename__ = "vocabulary_term"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # abuse | facility
    code: Mapped[str] = mapped_column(String(64))
    label_en: Mapped[str] = mapped_column(Text)
    label_ru: Mapped[str] = mapped_column(Text)
    retired: Mapped[bool] = mapped_column(Boolean, default=False)
    __table_args__ = (UniqueConstraint("kind", "code", name="uq_vocabulary_term_kind_code"),)


class Camera(Base):
    """A camera, created by the overlay step from the label it read. People correct it: a
    rename keeps what OCR read in `read_as`; a merge points one camera at another, which then
    stands for both (its label and facility). Both are custody events."""

    __tablename__ = "camera"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(Text, unique=True)
    facility_id: Mapped[int | None] = mapped_column(ForeignKey("facility.id"))
    read_as: Mapped[str | None] = mapped_column(Text)  # the OCR label, once renamed
    merged_into: Mapped[int | None] = mapped_column(ForeignKey("camera.id"))

    @property
    def ocr_label(self) -> str:
        return self.read_as if self.read_as is not None else self.label


class Segment(Base):
    """A time range of an original, with the camera and DVR clock read from its overlay."""

    __tablename__ = "segment"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    original_sha256: Mapped[str] = mapped_column(ForeignKey("original.sha256"), index=True)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    camera_id: Mapped[int | None] = mapped_column(ForeignKey("camera.id"), index=True)
    clock_start: Mapped[datetime | None] = mapped_column(DateTime)
    clock_end: Mapped[datetime | None] = mapped_column(DateTime)
    confidence: Mapped[float | None] = mapped_column(Float)
    clock_format: Mapped[str | None] = mapped_column(String(32))
    readings: Mapped[int | None] = mapped_column(Integer)
    #: where within its second the clock was at start_s: the clock shows
    #: clock_start + floor(clock_phase + t − start_s) at video time t (None: not measured)
    clock_phase: Mapped[float | None] = mapped_column(Float)

    # what search filters read (catalogue/search.py): a camera's clips and the clips on the DVR
    # clock in a date range, each from the index alone
    __table_args__ = (
        Index("ix_segment_camera_clip", "camera_id", "original_sha256"),
        Index("ix_segment_clock", "clock_start", "clock_end", "original_sha256"),
    )


# -- case building (review issue) ------------------------------------------------------------
class Incident(Base):
    __tablename__ = "incident"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    facility_id: Mapped[int | None] = mapped_column(ForeignKey("facility.id"), index=True)
    occurred_from: Mapped[datetime | None] = mapped_column(DateTime)
    occurred_to: Mapped[datetime | None] = mapped_column(DateTime)
    abuse_types: Mapped[list[str] | None] = mapped_column(JSON)
    severity: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: one of INCIDENT_STATUSES; NULL (rows from before 0012) means "open"
    status: Mapped[str | None] = mapped_column(String(32))

    # the search's DVR date filter reads when incidents happened from the index alone
    __table_args__ = (Index("ix_incident_occurred", "occurred_from", "occurred_to"),)


class IncidentOriginal(Base):
    __tablename__ = "incident_original"
    incident_id: Mapped[int] = mapped_column(ForeignKey("incident.id"), primary_key=True)
    original_sha256: Mapped[str] = mapped_column(ForeignKey("original.sha256"), primary_key=True,
                                                 index=True)
    start_s: Mapped[float | None] = mapped_column(Float)
    end_s: Mapped[float | None] = mapped_column(Float)
    note: Mapped[str | None] = mapped_column(Text)


class Person(Base):
    __tablename__ = "person"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pseudonym: Mapped[str] = mapped_column(Text, unique=True)
    role: Mapped[str] = mapped_column(String(32))  # victim | perpetrator | witness | official
    #: a real name, if the NGO records one at all: age-encrypted to the vault's key
    #: (`Vault.seal_secret`), shown to admins only, each view a custody event
    sealed_identity: Mapped[bytes | None] = mapped_column(LargeBinary)
    note: Mapped[str | None] = mapped_column(Text)


class IncidentPerson(Base):
    __tablename__ = "incident_person"
    incident_id: Mapped[int] = mapped_column(ForeignKey("incident.id"), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), primary_key=True,
                                           index=True)
    role: Mapped[str] = mapped_column(String(32))


class CaseFile(Base):
    """Incidents grouped for a prosecutor or a publication (`case` is an SQL keyword)."""

    __tablename__ = "case_file"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    purpose: Mapped[str] = mapped_column(String(32))  # prosecution | publication | internal
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: who it goes to (e.g. a prosecutor's office)
    recipient: Mapped[str | None] = mapped_column(Text)
    #: one of CASE_STATUSES; NULL (rows from before 0012) means "open"
    status: Mapped[str | None] = mapped_column(String(32))
    notes: Mapped[str | None] = mapped_column(Text)


class CaseIncident(Base):
    __tablename__ = "case_incident"
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id"), primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incident.id"), primary_key=True,
                                             index=True)


class ExportRequest(Base):
    """A lawyer asks for a case's export; an admin or investigator approves (and the app runs
    it) or refuses. Each step is an `annotated` event."""

    __tablename__ = "export_request"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id"), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    #: one of EXPORT_REQUEST_STATUSES
    status: Mapped[str] = mapped_column(String(32), default="requested")
    requested_by: Mapped[str] = mapped_column(String(128))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: the bag's identifier and where it was written, once done; or why it failed
    bag_id: Mapped[str | None] = mapped_column(String(128))
    output: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)


class Publication(Base):
    """A redacted part of a clip on its way out: drafted (rendered into the vault from a
    redaction spec), approved or refused by a second person (an investigator or admin), then
    published (written out signed, with its provenance). Each step is an `annotated` event on
    `publication:<id>`, and the file written out a `published` event on the original."""

    __tablename__ = "publication"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    original_sha256: Mapped[str] = mapped_column(ForeignKey("original.sha256"), index=True)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float | None] = mapped_column(Float)
    #: one of PUBLICATION_STATUSES
    status: Mapped[str] = mapped_column(String(32), default="drafted")
    #: the spec version the current draft was rendered from
    spec_version: Mapped[int] = mapped_column(Integer)
    draft_sha256: Mapped[str | None] = mapped_column(SHA256)
    requested_by: Mapped[str] = mapped_column(String(128))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: the file as written out (signed), once published
    published_sha256: Mapped[str | None] = mapped_column(SHA256)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(Text)


class RedactionSpec(Base):
    """What a publication hides where, one version per change (detection, then each person's
    correction): the tracks of boxes by frame, how they are hidden, whether the voice is
    masked. Versions are never changed, only added."""

    __tablename__ = "redaction_spec"
    __table_args__ = (UniqueConstraint("publication_id", "version",
                                       name="uq_redaction_spec_version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    publication_id: Mapped[int] = mapped_column(ForeignKey("publication.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, object]] = mapped_column(JSON)
    sha256: Mapped[str] = mapped_column(SHA256)
    made_by: Mapped[str] = mapped_column(String(128))
    made_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


#: Where an incident's documentation stands.
INCIDENT_STATUSES = ("open", "verified", "disputed", "closed")
#: Where a case stands.
CASE_STATUSES = ("open", "ready", "sent", "closed")
#: Roles of a person in an incident.
PERSON_ROLES = ("victim", "perpetrator", "witness", "official")
EXPORT_REQUEST_STATUSES = ("requested", "approved", "refused", "running", "done", "failed")
PUBLICATION_STATUSES = ("drafted", "approved", "refused", "published")


class DuplicateDecision(Base):
    """A person's judgement on a near-duplicate group, which the grouping then respects
    (`catalogue/dupes.py`): `confirmed` (these `members` are copies of one recording, `best`
    the one to cite), `best` (the copy to cite, chosen over the automatic one) or `distinct`
    (the clips in `members` are not copies of those in `apart`). A split is kept as pairs of
    SHA-256s, not as a group number, so it holds however the groups are recomputed when new
    clips arrive. Each row is an `annotated` custody event with the person's name."""

    __tablename__ = "duplicate_decision"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    decision: Mapped[str] = mapped_column(String(16))  # confirmed | best | distinct
    best_sha256: Mapped[str | None] = mapped_column(ForeignKey("original.sha256"))
    members: Mapped[list[str]] = mapped_column(JSON)
    apart: Mapped[list[str] | None] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str] = mapped_column(String(128))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# -- people who use the vault (the review app) -------------------------------------------------
#: Roles, weakest first within each line of work: admin > investigator > lawyer; a reviewer
#: sees only the clips assigned to them.
ROLES = ("admin", "investigator", "lawyer", "reviewer")
#: Review statuses of a clip, in the order a review goes.
REVIEW_STATUSES = ("unreviewed", "in review", "no incident", "incident", "needs second look")
#: Content labels shown before any player (what a person should expect to see).
CONTENT_LABELS = ("violence", "sexual violence", "death", "minors", "nudity", "self-harm")


class User(Base):
    __tablename__ = "user_account"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(128), unique=True)
    display_name: Mapped[str | None] = mapped_column(Text)
    password_hash: Mapped[str] = mapped_column(Text)  # Argon2id
    #: the TOTP secret, age-encrypted to the vault's key (never in clear, even in the catalogue)
    totp_secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    role: Mapped[str] = mapped_column(String(32))  # one of ROLES
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: interface language ("en" or "ru")
    locale: Mapped[str] = mapped_column(String(8), default="en")
    #: {"blur": 0-3, "greyscale": bool, "autoplay": bool, "daily_limit_minutes": int}
    prefs: Mapped[dict[str, object] | None] = mapped_column(JSON)
    #: the last TOTP time step accepted: a code is good once
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: "Stop for today": the queue stays hidden until then
    stopped_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class UserSession(Base):
    __tablename__ = "user_session"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: the absolute expiry; the idle one runs from `last_seen_at`
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    csrf_token: Mapped[str | None] = mapped_column(String(64))


class Exposure(Base):
    """How long a person looked at revealed (unblurred) material: one row per reveal. A row
    also grants its session the clear video of that clip until `until`."""

    __tablename__ = "exposure"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    original_sha256: Mapped[str] = mapped_column(ForeignKey("original.sha256"))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    revealed: Mapped[bool] = mapped_column(Boolean, default=False)
    session_id: Mapped[int | None] = mapped_column(Integer)
    until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: the clear video was played (the `viewed` custody event is recorded once per reveal)
    played: Mapped[bool] = mapped_column(Boolean, default=False)


class Review(Base):
    """Where one clip's review stands: status, note, content labels, who it is assigned to.
    Every change is an `annotated` custody event carrying a digest of the row."""

    __tablename__ = "review"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    original_sha256: Mapped[str] = mapped_column(ForeignKey("original.sha256"), unique=True)
    status: Mapped[str] = mapped_column(String(32), default="unreviewed", index=True)
    note: Mapped[str | None] = mapped_column(Text)
    labels: Mapped[list[str] | None] = mapped_column(JSON)
    assigned_to: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), index=True)
    updated_by: Mapped[str | None] = mapped_column(String(128))
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Revision(Base):
    """What a case, an incident or a clip's review said after each change, by whom and when:
    the history a lawyer shows ("how did this description evolve?"). One row per `annotated`
    event (`event_seq`), holding the very record whose SHA-256 that event carries, so each
    version can be checked against the signed log."""

    __tablename__ = "revision"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    row_id: Mapped[int] = mapped_column(Integer)
    event_seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                           unique=True)
    view: Mapped[dict[str, object] | None] = mapped_column(JSON)


# -- search (catalogue/search_index.py) ---------------------------------------------------------
class SearchDoc(Base):
    """One searchable thing (an incident, a case, a clip's review note, a camera, ...): what it
    is and where it lives. Its words, normalised (lemmas, stems), are in the FTS5 table
    `search_fts` under rowid = `id`, inside this (encrypted) database; derived data, rebuilt by
    `search_index.rebuild`."""

    __tablename__ = "search_doc"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: "incident:12:", "review:3:<sha256>", "transcript::<sha256>": one row per thing
    key: Mapped[str] = mapped_column(String(96), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    ref: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(SHA256)


# -- chain of custody --------------------------------------------------------------------------
class CustodyEvent(Base):
    """One link of the hash chain. `details` holds the canonical JSON exactly as hashed."""

    __tablename__ = "custody_event"
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                     autoincrement=False)
    time: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32), index=True)
    subject: Mapped[str] = mapped_column(String(128), index=True)
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    signature: Mapped[str] = mapped_column(String(128))


class CustodyCheckpoint(Base):
    """A signed statement "the chain had `seq` events ending in `head_hash`"."""

    __tablename__ = "custody_checkpoint"
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                     autoincrement=False)
    head_hash: Mapped[str] = mapped_column(String(64))
    time: Mapped[str] = mapped_column(String(40))
    signature: Mapped[str] = mapped_column(String(128))
    tsa_token: Mapped[bytes | None] = mapped_column(LargeBinary)
