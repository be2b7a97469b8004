"""What people do in the review app: accounts, sessions, reviews, reveals, exposure.

Changes to evidence (a review's status, note, labels, assignee; a reveal; a play; a
download) are custody events with the person's name, appended by the vault's door
(`Vault.annotate`, `Vault.record_seen`, `Vault.open_original`). Accounts and sessions are the
app's own bookkeeping.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from strongroom.catalogue.cases import clean_text
from strongroom.catalogue.models import (
    CONTENT_LABELS,
    REVIEW_STATUSES,
    ROLES,
    Exposure,
    Original,
    Review,
    User,
    UserSession,
)
from strongroom.errors import StrongroomError
from strongroom.review import security
from strongroom.review.security import aware, now
from strongroom.vault import Vault

#: One writer at a time from this process's threads (SQLite serialises them anyway; the lock
#: keeps a custody append and its row change from waiting on each other's busy timeouts).
WRITE_LOCK = threading.Lock()
MAX_NOTE = 4000
MAX_NAME = 64
MAX_REASON = 500
#: How long a reveal lets its session fetch the clear video.
REVEAL_FOR = timedelta(hours=2)
#: Most seconds one exposure heartbeat may add (the page sends one every few seconds).
MAX_HEARTBEAT = 30.0
DEFAULT_PREFS: dict[str, Any] = {"blur": 0, "greyscale": True, "autoplay": False,
                                 "daily_limit_minutes": 60.0}
LOCALES = ("en", "ru")


class Forbidden(StrongroomError):
    """The person's role does not allow this (HTTP 403)."""


class NotFound(StrongroomError):
    """No such clip or user (HTTP 404)."""


class LoginFailed(StrongroomError):
    """Wrong name, password or code; or the account is waiting out a back-off (HTTP 401)."""

    def __init__(self, message: str, wait: int = 0) -> None:
        super().__init__(message)
        self.wait = wait


@dataclass(frozen=True)
class Person:
    """The signed-in user, as a request sees it (detached from any database session)."""

    id: int
    username: str
    role: str
    locale: str
    prefs: dict[str, Any]
    session_id: int
    csrf: str
    stopped_until: datetime | None

    @property
    def actor(self) -> str:
        """How the custody log names them."""
        return f"{self.username} ({self.role}, review app)"

    def stopped(self) -> bool:
        return self.stopped_until is not None and self.stopped_until > now()


# -- accounts ---------------------------------------------------------------------------------
def check_username(name: str) -> str:
    """1–64 ASCII letters, digits, '.', '_', '-'; case does not count ("Admin" is "admin").
    ASCII only: the custody log names people by it, and a Cyrillic "а" or full-width
    letters would make a second "admin" that reads the same."""
    name = name.strip()
    if not (1 <= len(name) <= MAX_NAME) or not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise StrongroomError(f"a user name is 1–{MAX_NAME} Latin letters, digits, '.', '_' "
                              "or '-'")
    return name.lower()


def add_user(vault: Vault, username: str, role: str, password: str, *,
             locale: str = "en") -> str:
    """Make an account; returns its TOTP secret (shown once, to give to the person)."""
    username = check_username(username)
    if role not in ROLES:
        raise StrongroomError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
    if locale not in LOCALES:
        raise StrongroomError(f"unknown language {locale!r} (one of {', '.join(LOCALES)})")
    hashed = security.hash_password(password)
    secret = security.new_totp_secret()
    sealed = vault.seal_secret(secret.encode())
    with WRITE_LOCK, vault.write(checkpoint=False) as s:
        if s.scalar(select(User.id).where(func.lower(User.username) == username)) is not None:
            raise StrongroomError(f"there is already a user {username!r}")
        s.add(User(username=username, password_hash=hashed, totp_secret_sealed=sealed,
                   role=role, disabled=False, created_at=now(), locale=locale,
                   prefs=dict(DEFAULT_PREFS), failed_logins=0))
    return secret


def list_users(vault: Vault) -> list[dict[str, Any]]:
    with vault.catalogue.read() as s:
        return [{"id": u.id, "username": u.username, "role": u.role, "disabled": u.disabled,
                 "locale": u.locale, "locked": bool(aware(u.locked_until)
                                                    and aware(u.locked_until) > now())}  # type: ignore[operator]
                for u in s.scalars(select(User).order_by(User.username))]


def _end_sessions(s: Session, *where: Any) -> int:
    """Delete the sessions matching `where`, ending their reveals first: a later session
    may get the same id, and must not inherit a grant."""
    ids = list(s.scalars(select(UserSession.id).where(*where)))
    if not ids:
        return 0
    s.execute(update(Exposure).where(Exposure.session_id.in_(ids), Exposure.until > now())
              .values(until=now()))
    s.execute(delete(UserSession).where(UserSession.id.in_(ids)))
    return len(ids)


def set_disabled(vault: Vault, user_id: int, disabled: bool) -> None:
    """Disable an account (its sessions end now) or enable it again."""
    with WRITE_LOCK, vault.write(checkpoint=False) as s:
        u = s.get(User, user_id)
        if u is None:
            raise NotFound("no such user")
        u.disabled = disabled
        if disabled:
            _end_sessions(s, UserSession.user_id == user_id)


def unlock(vault: Vault, user_id: int) -> None:
    """End a lockout or back-off now (an admin, after checking with the person)."""
    with WRITE_LOCK, vault.write(checkpoint=False) as s:
        u = s.get(User, user_id)
        if u is None:
            raise NotFound("no such user")
        u.failed_logins, u.locked_until = 0, None


# -- sessions ---------------------------------------------------------------------------------
#: Failed sign-ins for names that do not exist, kept like a real account's (in memory), so
#: that a locked account and an unknown name answer alike. Bounded: the oldest go first.
_PHANTOMS: dict[str, tuple[int, datetime | None]] = {}
_MAX_PHANTOMS = 10_000
_WRONG = "wrong user name, password or code"


def _refusal(gate: security.Gate) -> LoginFailed:
    return LoginFailed(
        (f"too many failed attempts: this account is locked for {gate.wait // 60 + 1} more "
         "minute(s); an admin can unlock it sooner") if gate.locked else
        f"too many failed attempts: wait {gate.wait} s before the next one", gate.wait)


def _phantom_attempt(name: str, at: datetime) -> LoginFailed:
    """What a real account would answer after the same failures (it never succeeds)."""
    with WRITE_LOCK:
        failed, until = _PHANTOMS.pop(name, (0, None))
        gate = security.gate(failed, until, at)
        if gate.open:
            failed += 1
            until = security.after_failure(failed, at)
        _PHANTOMS[name] = (failed, until)
        while len(_PHANTOMS) > _MAX_PHANTOMS:
            _PHANTOMS.pop(next(iter(_PHANTOMS)))
    return _wrong() if gate.open else _refusal(gate)


def _wrong() -> LoginFailed:
    return LoginFailed(_WRONG)


def login(vault: Vault, username: str, password: str, code: str, *,
          clock: float | None = None) -> str:
    """A new session's token, or `LoginFailed`. One answer for every wrong part, and the
    same back-off for a name that does not exist, so nobody learns which names exist.

    Each attempt is counted as a failure *before* the password is checked (and the count
    reset on success): simultaneous guesses cannot all pass the gate while Argon2 runs, and
    a TOTP code is accepted once only, checked again in the transaction that starts the
    session. `clock`: the Unix time the TOTP code is checked at (tests; None is now)."""
    at = now()
    name = username.strip()[:MAX_NAME].lower()
    with WRITE_LOCK, vault.write(checkpoint=False) as s:
        u = s.scalar(select(User).where(func.lower(User.username) == name))
        if u is not None:
            gate = security.gate(u.failed_logins or 0, u.locked_until, at)
            if gate.open:  # reserve the attempt: it is a failure until it succeeds
                u.failed_logins = (u.failed_logins or 0) + 1
                u.locked_until = security.after_failure(u.failed_logins, at)
            state = (u.id, u.password_hash, u.totp_secret_sealed, u.totp_last_step,
                     u.disabled)
    if u is None:
        security.verify_password(None, password)  # the same time as a real check
        raise _phantom_attempt(name, at)
    if not gate.open:
        raise _refusal(gate)
    user_id, stored, sealed, last_step, disabled = state
    step = None
    if security.verify_password(stored, password) and not disabled and sealed is not None:
        secret = vault.open_secret(sealed).decode()
        step = security.totp_step(secret, code, last_step, at=clock)
    if step is None:
        raise _wrong()
    token = security.new_token()
    with WRITE_LOCK, vault.write(checkpoint=False) as s:
        u = s.get(User, user_id)
        if u is None or (u.totp_last_step is not None and step <= u.totp_last_step):
            raise _wrong()  # this code was used meanwhile
        u.failed_logins, u.locked_until, u.totp_last_step = 0, None, step
        s.add(UserSession(user_id=user_id, token_hash=security.token_hash(token),
                          created_at=at, expires_at=at + security.ABSOLUTE,
                          last_seen_at=at, csrf_token=security.new_token()))
    return token


def person(vault: Vault, token: str | None) -> Person | None:
    """Who holds `token`, if its session is alive (and notes that it was used now)."""
    if not token or len(token) > 100:
        return None
    at = now()
    digest = security.token_hash(token)
    with vault.catalogue.read() as s:
        row = s.execute(select(UserSession, User).join(User, User.id == UserSession.user_id)
                        .where(UserSession.token_hash == digest)).first()
        if row is None:
            return None
        sess, user = row
        expires, seen = aware(sess.expires_at), aware(sess.last_seen_at)
        alive = (not user.disabled and expires is not None and expires > at
                 and seen is not None and seen + security.IDLE > at)
        who = Person(user.id, user.username, user.role, user.locale,
                     {**DEFAULT_PREFS, **(user.prefs or {})}, sess.id, sess.csrf_token or "",
                     aware(user.stopped_until))
        stale = seen is None or (at - seen) > timedelta(seconds=30)
    if not alive:
        with WRITE_LOCK, vault.write(checkpoint=False) as s:
            _end_sessions(s, UserSession.id == who.session_id)
        return None
    if stale:  # idle expiry runs from the last request (written at most every 30 s)
        with WRITE_LOCK, vault.write(checkpoint=False) as s:
            live = s.get(UserSession, who.session_id)
            if live is not None:
                live.last_seen_at = at
    return who


def logout(vault: Vault, who: Person, *, everywhere: bool = False) -> int:
    with WRITE_LOCK, vault.write(checkpoint=False) as s:
        return _end_sessions(s, UserSession.user_id == who.id if everywhere
                             else UserSession.id == who.session_id)


# -- preferences --------------------------------------------------------------------------------
def set_prefs(vault: Vault, who: Person, *, blur: int | None = None,
              greyscale: bool | None = None, autoplay: bool | None = None,
              daily_limit_minutes: float | None = None, locale: str | None = None
              ) -> Person:
    """Change this person's settings; returns them as they now are."""
    if blur is not None and not 0 <= blur <= 3:
        raise StrongroomError("blur is 0 (none) to 3 (strong)")
    if daily_limit_minutes is not None and not 0.05 <= daily_limit_minutes <= 24 * 60:
        raise StrongroomError("the daily limit is between 0.05 and 1440 minutes")
    if locale is not None and locale not in LOCALES:
        raise StrongroomError(f"unknown language {locale!r} (one of {', '.join(LOCALES)})")
    with WRITE_LOCK, vault.write(checkpoint=False) as s:
        u = s.get(User, who.id)
        if u is None:
            raise NotFound("no such user")
        prefs = {**DEFAULT_PREFS, **(u.prefs or {})}
        for key, value in (("blur", blur), ("greyscale", greyscale), ("autoplay", autoplay),
                           ("daily_limit_minutes", daily_limit_minutes)):
            if value is not None:
                prefs[key] = value
        u.prefs = prefs
        if locale is not None:
            u.locale = locale
        return replace(who, prefs=prefs, locale=u.locale)


def stop_for_today(vault: Vault, who: Person) -> datetime:
    """Hide the queue until the next local midnight."""
    local = datetime.now().astimezone()
    tomorrow = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    with WRITE_LOCK, vault.write(checkpoint=False) as s:
        u = s.get(User, who.id)
        if u is not None:
            u.stopped_until = tomorrow
    return tomorrow


# -- clips: who may see which -------------------------------------------------------------------
def may_see(vault: Vault, who: Person, sha256: str) -> Review | None:
    """The clip's review row; `NotFound` for an unknown clip, `Forbidden` for a reviewer
    whose assignments do not include it."""
    with vault.catalogue.read() as s:
        if s.get(Original, sha256) is None:
            raise NotFound("no such clip")
        review = s.scalar(select(Review).where(Review.original_sha256 == sha256))
        if review is not None:
            s.expunge(review)
    if who.role == "reviewer" and (review is None or review.assigned_to != who.id):
        raise Forbidden("this clip is not assigned to you")
    return review


def _review_row(s: Session, sha256: str) -> Review:
    review = s.scalar(select(Review).where(Review.original_sha256 == sha256))
    if review is None:
        review = Review(original_sha256=sha256, status="unreviewed", labels=[])
        s.add(review)
    return review


def update_review(vault: Vault, who: Person, sha256: str, *, status: str | None = None,
                  note: str | None = None, labels: list[str] | None = None,
                  assign_to: str | None = None, unassign: bool = False) -> None:
    """Change a clip's review; one `annotated` custody event with the person's name."""
    may_see(vault, who, sha256)
    if who.role == "lawyer":
        raise Forbidden("a lawyer reads reviews; investigators and reviewers change them")
    if (assign_to is not None or unassign) and who.role not in ("admin", "investigator"):
        raise Forbidden("only investigators and admins assign clips")
    if status is not None and status not in REVIEW_STATUSES:
        raise StrongroomError(f"unknown status {status!r} (one of {', '.join(REVIEW_STATUSES)})")
    if labels is not None:
        unknown = sorted(set(labels) - set(CONTENT_LABELS))
        if unknown:
            raise StrongroomError(f"unknown content label(s) {', '.join(unknown)} "
                                  f"(one of {', '.join(CONTENT_LABELS)})")
    clean_note = clean_text(note, MAX_NOTE, "note") if note is not None else None
    changed: list[str] = []
    with WRITE_LOCK, vault.write() as s:
        review = _review_row(s, sha256)
        if status is not None and status != review.status:
            review.status = status
            changed.append("status")
        if note is not None and clean_note != review.note:
            review.note = clean_note
            changed.append("note")
        if labels is not None and sorted(set(labels)) != sorted(review.labels or []):
            review.labels = sorted(set(labels))
            changed.append("labels")
        if assign_to is not None or unassign:
            target = None
            if assign_to is not None:
                user = s.scalar(select(User).where(User.username == assign_to))
                if user is None or user.disabled:
                    raise NotFound(f"no active user {assign_to!r}")
                target = user.id
            if target != review.assigned_to:
                review.assigned_to = target
                changed.append("assignee")
        if not changed:
            return
        review.updated_by, review.updated_at = who.username, now()
        s.flush()
        vault.annotate(s, "review", review.id, "+".join(changed), actor=who.actor,
                       details={"original": sha256,
                                **({"status": review.status} if "status" in changed else {})})


# -- reveals and exposure ------------------------------------------------------------------------
def reveal(vault: Vault, who: Person, sha256: str) -> int:
    """Record the reveal (custody `revealed`, with the person's name) and grant this session
    the clear video for `REVEAL_FOR`; returns the exposure row's id."""
    may_see(vault, who, sha256)
    at = now()
    vault.record_seen("revealed", sha256, actor=who.actor,
                      details={"what": "review proxy and poster, unblurred",
                               "session": who.session_id})
    with WRITE_LOCK, vault.write(checkpoint=False) as s:
        row = Exposure(user_id=who.id, original_sha256=sha256, started_at=at, seconds=0.0,
                       revealed=True, session_id=who.session_id, until=at + REVEAL_FOR,
                       played=False)
        s.add(row)
        s.flush()
        return row.id


def hide(vault: Vault, who: Person, sha256: str) -> None:
    """End this session's reveals of the clip: the clear video is refused from now on."""
    with WRITE_LOCK, vault.write(checkpoint=False) as s:
        for row in s.scalars(select(Exposure).where(
                Exposure.user_id == who.id, Exposure.session_id == who.session_id,
                Exposure.original_sha256 == sha256, Exposure.revealed.is_(True))):
            row.until = now()


def grant(vault: Vault, who: Person, sha256: str) -> Exposure | None:
    """This session's live reveal of the clip, if any."""
    with vault.catalogue.read() as s:
        rows = s.scalars(select(Exposure).where(
            Exposure.user_id == who.id, Exposure.session_id == who.session_id,
            Exposure.original_sha256 == sha256, Exposure.revealed.is_(True))
            .order_by(Exposure.id.desc()).limit(1)).all()
        for row in rows:
            until = aware(row.until)
            if until is not None and until > now():
                s.expunge(row)
                return row
    return None


def note_played(vault: Vault, who: Person, sha256: str, row: Exposure) -> None:
    """The first clear bytes served under a reveal: custody `viewed`, once per reveal."""
    if row.played:
        return
    with WRITE_LOCK:
        with vault.write(checkpoint=False) as s:
            live = s.get(Exposure, row.id)
            if live is None or live.played:
                return
            live.played = True
        vault.record_seen("viewed", sha256, actor=who.actor,
                          details={"what": "review proxy, unblurred", "reveal": row.id,
                                   "session": who.session_id})


def add_exposure(vault: Vault, who: Person, sha256: str, seconds: float) -> float:
    """Seconds of revealed video on screen (from the page's heartbeat, at most
    `MAX_HEARTBEAT` per call, only under a live reveal); returns today's total."""
    if not 0 <= seconds <= 3600:
        raise StrongroomError("seconds must be between 0 and 3600")
    row = grant(vault, who, sha256)
    if row is not None:
        with WRITE_LOCK, vault.write(checkpoint=False) as s:
            live = s.get(Exposure, row.id)
            started = aware(live.started_at) if live is not None else None
            if live is not None and started is not None:
                # never more than the time that passed since the reveal (and a little slack)
                elapsed = (now() - started).total_seconds() + 2.0
                live.seconds = min((live.seconds or 0.0) + min(seconds, MAX_HEARTBEAT),
                                   elapsed)
    return exposure_today(vault, who.id)


def exposure_today(vault: Vault, user_id: int) -> float:
    start = datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    with vault.catalogue.read() as s:
        total = s.scalar(select(func.coalesce(func.sum(Exposure.seconds), 0.0)).where(
            Exposure.user_id == user_id, Exposure.started_at >= start))
    return float(total or 0.0)


def exposure_week(vault: Vault, user_id: int) -> float:
    start = (datetime.now().astimezone() - timedelta(days=7))
    with vault.catalogue.read() as s:
        total = s.scalar(select(func.coalesce(func.sum(Exposure.seconds), 0.0)).where(
            Exposure.user_id == user_id, Exposure.started_at >= start))
    return float(total or 0.0)


def needs_break(vault: Vault, who: Person) -> bool:
    limit = float(who.prefs.get("daily_limit_minutes") or 0)
    return limit > 0 and exposure_today(vault, who.id) >= limit * 60


def check_reason(reason: str | None) -> str:
    clean = clean_text(reason, MAX_REASON, "reason")
    if not clean:
        raise StrongroomError("say why you download the original (it goes in the custody log)")
    return clean
