"""Accounts of the review app: Argon2id passwords, TOTP, session tokens, back-off and lockout.

Standards and well-kept libraries only: argon2-cffi (RFC 9106 Argon2id, its default
parameters), pyotp (RFC 6238 TOTP, 30 s steps, 6 digits). Session tokens are 256 random bits;
the catalogue keeps only their SHA-256, so a copy of the catalogue opens no session. TOTP
secrets are sealed to the vault's key by the vault itself (`Vault.seal_secret`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

#: Failed logins before each further one costs a growing wait (2, 4, 8 … seconds).
BACKOFF_AFTER = 3
#: Failed logins in a row that lock the account for `LOCKOUT`.
LOCKOUT_AFTER = 10
LOCKOUT = timedelta(hours=1)
#: Longest back-off between two attempts.
MAX_BACKOFF = timedelta(minutes=15)
#: A session ends after this long without a request, and in any case after `ABSOLUTE`.
IDLE = timedelta(minutes=30)
ABSOLUTE = timedelta(hours=12)
#: Longest password accepted (Argon2 hashes anything, but a 1 MB "password" is an attack).
MAX_PASSWORD = 1024
MIN_PASSWORD = 12


def now() -> datetime:
    return datetime.now(UTC)


def aware(t: datetime | None) -> datetime | None:
    """SQLite gives back naive datetimes for what was stored as UTC."""
    return None if t is None else (t if t.tzinfo else t.replace(tzinfo=UTC))


# -- passwords -----------------------------------------------------------------------------
def hash_password(password: str) -> str:
    from argon2 import PasswordHasher

    check_password_rules(password)
    return PasswordHasher().hash(password)


#: Passwords long enough for the length rule that guessers try first.
_COMMON = {"123456789012", "1234567890123", "qwertyuiopas", "passwordpassword",
           "password1234", "iloveyou1234", "adminadminadmin", "qwerty123456",
           "111111111111", "000000000000", "abcdefghijkl", "123123123123"}


def check_password_rules(password: str) -> None:
    """At least MIN_PASSWORD characters, not blank, not one character repeated, not only
    digits, not a well-known one (NIST SP 800-63B: length, and a blocklist; no composition
    rules)."""
    from strongroom.errors import StrongroomError

    if len(password) > MAX_PASSWORD:
        raise StrongroomError(f"a password may have at most {MAX_PASSWORD} characters")
    if len(password.strip()) < MIN_PASSWORD:
        raise StrongroomError(f"a password needs at least {MIN_PASSWORD} characters "
                              "(a few words are easier to remember)")
    if len(set(password)) < 4 or password.isdigit() or password.lower() in _COMMON:
        raise StrongroomError("that password is too easy to guess: a few words are better")


#: Verified against when the user does not exist, so both answers take the same time.
_DUMMY_HASH: list[str] = []


def verify_password(stored: str | None, password: str) -> bool:
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError

    hasher = PasswordHasher()
    if len(password) > MAX_PASSWORD:
        return False
    if stored is None:
        if not _DUMMY_HASH:
            _DUMMY_HASH.append(hasher.hash(secrets.token_urlsafe(16)))
        stored = _DUMMY_HASH[0]
        password = "\0" + password  # never matches
    try:
        return hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


# -- TOTP ------------------------------------------------------------------------------------
def new_totp_secret() -> str:
    import pyotp

    return pyotp.random_base32()  # 160 bits, as RFC 4226 recommends


def totp_uri(secret: str, username: str, issuer: str = "Strongroom") -> str:
    import pyotp

    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def current_totp(secret: str, at: float | None = None) -> str:
    import pyotp

    return str(pyotp.TOTP(secret).at(int(at if at is not None else time.time())))


def totp_step(secret: str, code: str, last_step: int | None,
              at: float | None = None) -> int | None:
    """The time step `code` belongs to (this one or either neighbour, for clock drift), or
    None when it is wrong or was already used (a code is good once: `last_step`)."""
    import pyotp

    code = code.strip().replace(" ", "")
    if not re.fullmatch(r"[0-9]{6}", code, flags=re.ASCII):
        return None  # ASCII digits only: "١٢٣٤٥٦" passes isdigit() and broke compare_digest
    totp = pyotp.TOTP(secret)
    t = int(at if at is not None else time.time())
    step = t // totp.interval
    for s in (step, step - 1, step + 1):
        if secrets.compare_digest(str(totp.at(s * totp.interval)), code):
            if last_step is not None and s <= last_step:
                return None  # replayed
            return s
    return None


# -- sessions and forms ---------------------------------------------------------------------
def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two tokens; any text (compare_digest refuses non-ASCII str)."""
    return bool(a) and bool(b) and secrets.compare_digest(
        str(a).encode("utf-8", "surrogatepass"), str(b).encode("utf-8", "surrogatepass"))


# -- back-off and lockout --------------------------------------------------------------------
@dataclass(frozen=True)
class Gate:
    """Whether a login may be tried now; `wait` seconds otherwise."""

    open: bool
    wait: int = 0
    locked: bool = False


def gate(failed: int, locked_until: datetime | None, at: datetime) -> Gate:
    until = aware(locked_until)
    if until is not None and until > at:
        return Gate(False, int((until - at).total_seconds()) + 1,
                    locked=failed >= LOCKOUT_AFTER)
    return Gate(True)


def after_failure(failed: int, at: datetime) -> datetime | None:
    """When the next attempt may come after the `failed`-th failure in a row."""
    if failed >= LOCKOUT_AFTER:
        return at + LOCKOUT
    if failed >= BACKOFF_AFTER:
        return at + min(timedelta(seconds=2 ** (failed - BACKOFF_AFTER + 1)), MAX_BACKOFF)
    return None
