"""k-of-n unsealing: the vault's key bundle opened by any k of n people, each holding one SLIP-39
mnemonic share, with no passphrase.

A random 32-byte secret S is split with SLIP-39 (one group, group threshold 1, k-of-n members)
and the bundle is sealed into `keys-shares.age` with age's scrypt passphrase mode, the
passphrase being S in lowercase hex (64 characters). Both halves are public standards with
independent tools, so in a disaster the keys come back without Strongroom:

    pip install 'shamir-mnemonic[cli]'
    shamir recover                       # type k shares; it prints "Your master secret is: HEX"
    age -d -o keys.json keys-shares.age  # type those 64 hex digits at the passphrase prompt

Choices, with what justified them:
- Shares are made *without* SLIP-39's "extendable" flag (the library's default since 0.3 sets
  it): extendable shares fail the checksum in every implementation older than 2024, and we
  never extend a set — a rekey makes a new S. The plain form is read by every SLIP-39 tool.
- Iteration exponent 1 (the library's default): the PBKDF2 inside SLIP-39 stretches a weak
  passphrase, and we use none over a 256-bit secret; split and combine take ≈5 ms each here.
- The passphrase scrypt of age (2^18, ≈0.5 s) is paid once per unseal, as for `keys.age`.
- `combine` decodes each share itself before the library combines them, so every error names
  the share at fault by its position as given. With more than k shares it also names an altered
  share (valid words and checksum, wrong value): k shares that pass SLIP-39's 32-bit digest fix
  the polynomial, and a share that does not lie on it is named.
"""

from __future__ import annotations

import itertools
import re
import secrets
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shamir_mnemonic import EncryptedMasterSecret, MnemonicError, Share, generate_mnemonics
from shamir_mnemonic.shamir import ShareGroup, recover_ems
from shamir_mnemonic.wordlist import WORD_INDEX_MAP

from strongroom.errors import NotEnoughShares, StrongroomError, WrongPassphrase, WrongShare
from strongroom.vault import passphrase

SHARES_FILE = "keys-shares.age"
SECRET_BYTES = 32
#: Words in one share of a 32-byte secret: 7 of metadata and checksum, 26 of value.
SHARE_WORDS = 33
#: SLIP-39 allows at most 16 members in a group (4 bits of member index).
MAX_SHARES = 16
ITERATION_EXPONENT = 1
MAX_SHARES_FILE = 64 * 1024
#: Beyond this many k-subsets, an altered share among many is reported without a name.
_MAX_SUBSETS = 2000

_SCHEME = re.compile(r"(\d{1,3})\s*(?:-?\s*of\s*-?|/)\s*(\d{1,3})", re.IGNORECASE)


@dataclass(frozen=True)
class Scheme:
    """How many shares exist (count) and how many open the keys (threshold)."""

    threshold: int
    count: int

    def __post_init__(self) -> None:
        k, n = self.threshold, self.count
        if k < 1:
            raise StrongroomError(f"{self}: the threshold must be at least 1")
        if n > MAX_SHARES:
            raise StrongroomError(f"{self}: SLIP-39 allows at most {MAX_SHARES} shares")
        if k > n:
            raise StrongroomError(f"{self} cannot be met: the threshold exceeds the number of "
                                  "shares")
        if k == 1 and n > 1:
            raise StrongroomError(f"{self} would be {n} copies of one secret (SLIP-39 refuses "
                                  "it): use a threshold of 2 or more, or 1-of-1")

    @classmethod
    def parse(cls, text: str) -> Scheme:
        """"3-of-5", "3of5", "3 of 5" or "3/5"."""
        match = _SCHEME.fullmatch(text.strip())
        if match is None:
            shown = _printable(text.strip(), 40)
            raise StrongroomError(f'"{shown}" is not a share scheme: write it like 3-of-5')
        return cls(int(match[1]), int(match[2]))

    def __str__(self) -> str:
        return f"{self.threshold}-of-{self.count}"


@dataclass(frozen=True)
class ShareSet:
    """What a vault records publicly about its current shares (the identifier is readable from
    every share's first two words anyway): enough to name a share of another set."""

    identifier: int
    threshold: int
    count: int

    @property
    def scheme(self) -> Scheme:
        return Scheme(self.threshold, self.count)


@dataclass(frozen=True)
class Split:
    """A fresh secret and its shares. Neither is ever shown by repr: a log line must not leak
    the keys."""

    secret: bytes = field(repr=False)
    mnemonics: list[str] = field(repr=False)
    identifier: int
    scheme: Scheme

    @property
    def share_set(self) -> ShareSet:
        return ShareSet(self.identifier, self.scheme.threshold, self.scheme.count)


def split(scheme: Scheme) -> Split:
    """A new random secret, split into `scheme.count` shares of which any `scheme.threshold`
    recover it."""
    secret = secrets.token_bytes(SECRET_BYTES)
    groups = generate_mnemonics(1, [(scheme.threshold, scheme.count)], secret, b"",
                                extendable=False, iteration_exponent=ITERATION_EXPONENT)
    mnemonics = list(groups[0])
    identifier = Share.from_mnemonic(mnemonics[0]).identifier
    return Split(secret, mnemonics, identifier, scheme)


def combine(mnemonics: Sequence[str], *, expected: ShareSet | None = None) -> bytes:
    """The secret S from k or more shares. Blank entries are skipped; the others are numbered
    from 1 in the order given, and every error names the share at fault where it can.

    `expected` is the vault's recorded share set: a share of any other set is then named even if
    all the shares given agree among themselves."""
    given = [m for m in mnemonics if m.strip()]
    if not given:
        raise NotEnoughShares("no shares given")
    shares = [_decode(pos, text) for pos, text in enumerate(given, start=1)]
    reference = _reference(shares, expected)
    for pos, share in enumerate(shares, start=1):
        if _set_of(share) != reference:
            raise WrongShare(f"share {pos} belongs to another share set (another vault's, or "
                             "one replaced by rekey)")
    seen: dict[int, int] = {}
    for pos, share in enumerate(shares, start=1):
        first = seen.setdefault(share.index, pos)
        if first != pos:
            if shares[first - 1] == share:
                raise WrongShare(f"share {pos} repeats share {first}")
            raise WrongShare(f"shares {first} and {pos} are the same member of the share set "
                             "but differ: one of them is altered")
    threshold = reference[-1]
    if len(shares) < threshold:
        raise NotEnoughShares(f"{_count(len(shares), 'share')} given, {threshold} needed")
    return _recover(shares, threshold).decrypt(b"")


def seal(bundle: bytes, secret: bytes) -> bytes:
    """`bundle` sealed for keys-shares.age: age scrypt, passphrase = `secret` in lowercase hex."""
    _check_secret(secret)
    return passphrase.seal(bundle, secret.hex())


def unseal(sealed: bytes, secret: bytes) -> bytes:
    """The bundle inside keys-shares.age, opened with the secret the shares recovered."""
    _check_secret(secret)
    try:
        return passphrase.unseal(sealed, secret.hex(), what=SHARES_FILE)
    except WrongPassphrase:
        raise WrongShare(f"these shares do not open {SHARES_FILE} (a share set replaced by "
                         "rekey?)") from None


def read_shares_file(path: Path) -> list[str]:
    """The shares in a text file, one per line (UTF-8, at most 64 KiB); blank lines and lines
    starting with `#` are ignored."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_SHARES_FILE + 1)
    except FileNotFoundError:
        raise StrongroomError(f"shares file {path} does not exist") from None
    except OSError as exc:
        raise StrongroomError(f"cannot read shares file {path}: {exc.strerror or exc}"
                              ) from None
    if len(raw) > MAX_SHARES_FILE:
        raise StrongroomError(f"shares file {path} is larger than 64 KiB: it is not a list of "
                              "shares")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise StrongroomError(f"shares file {path} is not UTF-8 text (byte {exc.start})"
                              ) from None
    lines = [line.strip() for line in text.splitlines()]
    found = [line for line in lines if line and not line.startswith("#")]
    if not found:
        raise StrongroomError(f"shares file {path} holds no shares (only blank or # lines)")
    return found


# --- decoding and recovery ------------------------------------------------------------------

_SetKey = tuple[int, bool, int, int, int, int, int]


def _decode(pos: int, text: str) -> Share:
    words = text.lower().split()
    for number, word in enumerate(words, start=1):
        if word not in WORD_INDEX_MAP:
            # the word itself is never shown: a passphrase file given by mistake must not
            # end up on a terminal, in cron mail or in a CI log
            raise WrongShare(f"share {pos}: word {number} is not a SLIP-39 word (mistyped, or "
                             "not a shares file?)")
    if len(words) != SHARE_WORDS:
        raise WrongShare(f"share {pos} has {len(words)} words, a share has {SHARE_WORDS}: a "
                         "word is missing or extra")
    try:
        return Share.from_mnemonic(" ".join(words))
    except MnemonicError as exc:
        why = "checksum" if "checksum" in str(exc) else "not a valid SLIP-39 share"
        raise WrongShare(f"share {pos} is mistyped or damaged ({why})") from None


def _set_of(share: Share) -> _SetKey:
    """Everything that all shares of one set have in common; the threshold last."""
    return (share.identifier, share.extendable, share.iteration_exponent, share.group_index,
            share.group_threshold, share.group_count, share.member_threshold)


def _reference(shares: list[Share], expected: ShareSet | None) -> _SetKey:
    """The share set the others are measured against: the vault's recorded one, or else the one
    most of the given shares belong to (ties: the first given)."""
    if expected is not None:
        ref = (expected.identifier, False, ITERATION_EXPONENT, 0, 1, 1, expected.threshold)
        for pos, share in enumerate(shares, start=1):
            if share.identifier == expected.identifier and share.index >= expected.count:
                raise WrongShare(f"share {pos} is member {share.index + 1} of a set of "
                                 f"{expected.count}: it is altered")
        # extendable and the exponent are ours to choose at split, not the vault's to record:
        # take them from a share of the right identifier rather than refuse a valid set
        for share in shares:
            if share.identifier == expected.identifier:
                ref = (ref[0], share.extendable, share.iteration_exponent, *ref[3:])
                break
        return ref
    votes = Counter(_set_of(s) for s in shares)
    most = max(votes.values())
    return next(_set_of(s) for s in shares if votes[_set_of(s)] == most)


def _ems(shares: Sequence[Share]) -> EncryptedMasterSecret | None:
    """The encrypted secret from exactly `threshold` shares of one set, or None when SLIP-39's
    digest says they do not fit together."""
    group = ShareGroup()
    for share in shares:
        group.add(share)
    try:
        return recover_ems({shares[0].group_index: group})
    except MnemonicError:
        return None


def _recover(shares: list[Share], k: int) -> EncryptedMasterSecret:
    """Recover from any k shares that fit, then check every other share against them."""
    found: tuple[tuple[int, ...], EncryptedMasterSecret] | None = None
    for subset in itertools.islice(_fewest_left_out(len(shares), k), _MAX_SUBSETS):
        ems = _ems([shares[i] for i in subset])
        if ems is not None:
            found = subset, ems
            break
    if found is None:
        raise WrongShare("the shares do not fit together: one of them is wrong (a share of the "
                         "same set, altered)")
    subset, ems = found
    base = [shares[i] for i in subset[: k - 1]]
    odd = [i + 1 for i in range(len(shares))
           if i not in subset and _ems([*base, shares[i]]) != ems]
    if odd:
        fit = ", ".join(str(i + 1) for i in subset)
        listed = ", ".join(str(i) for i in odd)
        if len(odd) == 1:
            raise WrongShare(f"share {listed} does not fit with shares {fit}: it is altered (a "
                             "share of the same set, changed)")
        raise WrongShare(f"shares {listed} do not fit with shares {fit}: they are altered "
                         "(shares of the same set, changed)")
    return ems


def _fewest_left_out(n: int, k: int) -> Iterator[tuple[int, ...]]:
    """k-subsets of range(n): the first k shares, then the first k once one share is left out,
    then two, …; so a set free of e altered shares comes within the first C(n, ≤e) tries.
    (n ≤ 16: shares of one set have distinct 4-bit member indices.)"""
    tried: set[tuple[int, ...]] = set()
    for e in range(n - k + 1):
        for left_out in itertools.combinations(range(n), e):
            subset = tuple(i for i in range(n) if i not in left_out)[:k]
            if subset not in tried:
                tried.add(subset)
                yield subset


def _check_secret(secret: bytes) -> None:
    if len(secret) != SECRET_BYTES:
        raise StrongroomError(f"a share secret is {SECRET_BYTES} bytes, not {len(secret)}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _printable(text: str, limit: int) -> str:
    shown = "".join(c if c.isprintable() else "?" for c in text[:limit])
    return shown + ("…" if len(text) > limit else "")
