"""Codenames: how a source comes back without an account.

A codename is seven words drawn with `secrets` from a word list (Russian: 2,048 words, 77 bits;
English: the EFF list of 7,772 words, 90 bits). The intake stores no codename: Argon2id
(RFC 9106, argon2-cffi) turns it, with the installation's salt, into 64 bytes; the first half
names the source's folder, the second half is the key that unwraps the source's own age
identity (see `seal.py`). A seized intake host holds neither the codename nor anything that
tests one faster than Argon2id allows.
"""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import resources

LANGUAGES = ("ru", "en")
WORDS = 7


@cache
def words(lang: str) -> tuple[str, ...]:
    if lang not in LANGUAGES:
        raise ValueError(f"no word list for {lang!r}")
    text = resources.files("strongroom.intake").joinpath("words", f"{lang}.txt").read_text("utf-8")
    return tuple(w for w in text.split() if w)


def generate(lang: str = "ru", n: int = WORDS) -> str:
    pool = words(lang)
    return " ".join(secrets.choice(pool) for _ in range(n))


def normalise(codename: str) -> str:
    """What a person may type differently and still mean the same codename: case, ё/е,
    extra spaces, compatibility forms of letters."""
    text = unicodedata.normalize("NFKC", codename).casefold().replace("ё", "е")
    return " ".join(text.split())


def plausible(codename: str) -> bool:
    """Seven words of one list (checked before any Argon2id work is spent on it)."""
    parts = normalise(codename).split(" ")
    if len(parts) != WORDS:
        return False
    return any(all(p in _set(lang) for p in parts) for lang in LANGUAGES)


@cache
def _set(lang: str) -> frozenset[str]:
    return frozenset(normalise(w) for w in words(lang))


@dataclass(frozen=True)
class Cost:
    """Argon2id cost. The default takes about 0.3 s and 64 MiB on one core."""

    time: int = 3
    memory_kib: int = 64 * 1024
    lanes: int = 1


@dataclass(frozen=True)
class Derived:
    source_id: str  # hex, names the source's folder
    wrap_key: bytes  # 32 bytes: unwraps the source's identity


def derive(codename: str, salt: bytes, cost: Cost) -> Derived:
    from argon2.low_level import Type, hash_secret_raw

    raw = hash_secret_raw(normalise(codename).encode("utf-8"), salt, time_cost=cost.time,
                          memory_cost=cost.memory_kib, parallelism=cost.lanes, hash_len=64,
                          type=Type.ID)
    return Derived(raw[:32].hex(), raw[32:])
