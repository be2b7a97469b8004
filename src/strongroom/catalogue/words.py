"""Words to search terms: one normal form per word, so every inflection meets its dictionary form.

Russian words become their pymorphy3 lemma (`пытки`, `пыток` → `пытка`; `избиения` →
`избиение`; `избили` → `избить`), Latin words their Snowball English stem (`beatings` →
`beat`), anything else (digits, mixed OCR readings like `KAM03`) is lower-cased. Snowball's
Russian stemmer alone leaves `пыток` (stem `пыток`) apart from `пытка` (`пытк`); the lemma
does not. A lemma links the forms of one word, not a verb to its noun: `пытали` → `пытать`,
which finds `пытал`/`пытают` but not `пытка`.

The same function normalises what is indexed and what is asked, so both sides always agree;
the normal forms are then stored as plain words and FTS5's stock `unicode61` tokenizer does
the rest (no custom tokenizer, so any SQLCipher build reads the index).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

#: A word as the index sees it: a run of letters and digits (`ОТБ-1` is `ОТБ` and `1`).
WORD = re.compile(r"[^\W_]+")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LATIN = re.compile(r"[a-z]")


@lru_cache(maxsize=1)
def _morph() -> Any:
    import pymorphy3

    return pymorphy3.MorphAnalyzer(lang="ru")


@lru_cache(maxsize=1)
def _english() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def _russian() -> Any:
    import Stemmer

    return Stemmer.Stemmer("russian")


@lru_cache(maxsize=200_000)
def normal(word: str) -> str:
    """The search term of one word (see the module docstring)."""
    w = word.lower().replace("ё", "е")
    if _CYRILLIC.search(w) and not _LATIN.search(w):
        lemma = str(_morph().parse(w)[0].normal_form).replace("ё", "е")
        return lemma if WORD.fullmatch(lemma) else w
    if w.isascii() and w.isalpha():
        return str(_english().stemWord(w))
    return w


@lru_cache(maxsize=50_000)
def stem(word: str) -> str:
    """A Snowball stem (Russian or English): what a `LIKE '%stem%'` fallback looks for where
    no index exists (PostgreSQL for now)."""
    w = word.lower().replace("ё", "е")
    if _CYRILLIC.search(w):
        return str(_russian().stemWord(w))
    if w.isascii() and w.isalpha():
        return str(_english().stemWord(w))
    return w


def words(text: str) -> Iterator[re.Match[str]]:
    return WORD.finditer(text)


def terms(text: str) -> str:
    """`text` as the index stores it: its words' normal forms, in order, space-separated."""
    return " ".join(normal(m.group()) for m in WORD.finditer(text))
