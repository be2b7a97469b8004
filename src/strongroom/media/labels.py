"""A camera label from many OCR reads of one overlay line: per-character consensus, one script
per word, and a small vocabulary that corrects (never invents) words.

Frames of one clip read the same burned-in label differently: a Latin K for a Cyrillic К, one
Cyrillic letter for another, a stray "!" or "|", two words run together, a digit misread.
`consensus` turns the reads of a clip into one `LabelRead`:

1. Each read is cleaned: upper case (not Georgian, whose capitals are a display style), single
   spaces, box-edge punctuation stripped. Reads with fewer than 3 letters/digits are not labels.
2. Reads are compared on *keys*: Latin look-alike capitals fold to their Cyrillic twin
   (K = К, P = Р …) and digit look-alikes to the digit (O = О = 0, З = 3, I = 1).
3. Centre-star alignment: the medoid read (least confidence-weighted edit distance to the
   others) is the centre, every other read is aligned to it by an edit-distance DP; characters
   a read has in excess become insertion columns, characters it lacks become gaps, so a stray
   character or a dropped space in one read shifts nothing. A read further than half its length
   from the medoid is an outlier and does not vote.
4. Each column is voted on, each read weighing its tesseract confidence; a column most reads
   leave empty (a gap) is dropped; a tie goes to the medoid read. Within the winning key the
   most-voted character is kept.
5. Each word then gets one script (`canonical` applies the same rules to a single text): a word
   of digits and digit look-alikes, at least half digits, is a number ("1З" → "13", "О7" → "07";
   "В1", "D3" are not numbers); otherwise the word is Cyrillic or Latin by the majority of the
   reads, each read voting with the letters only one script has (Д, Я …; D, R …). A word spelt
   only with look-alikes ("КАМ"/"KAM") takes the script of the vocabulary word it spells, else
   that of the rest of the label, else Cyrillic, so that one camera's label always comes out in
   one form. A look-alike digit between letters is a letter ("КОРИД0Р" → "КОРИДОР"); after
   a prefix of one or two letters, a number at least half of whose characters are digits is
   digits ("CHO4" → "CH04"). Words in other scripts are left as read.
6. Vocabulary correction (`VOCABULARY`): see `_correct`.

`correct_look` is the vocabulary for a reader with no Cyrillic (ocr.py's recogniser): the
Cyrillic word its Latin read stands for, through the strings it gives for each letter
(`LOOKS`: "KIII" is КПП, "XHNA9" ЖИЛАЯ), when exactly one word is that near.

Confidence is the mean, over the label's non-space characters, of the support of the winning
character: the summed confidence (0–1) of the reads that voted for it divided by the number of
reads that looked like a label (outliers included, garbage reads not). So 3 reads that agree at
tesseract confidence 90 give 0.9; a character one of 3 such reads disputes gives 0.6. A label
is `uncertain` below `UNCERTAIN_BELOW`, or when only one read took part in the vote; it is
returned all the same.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

#: A label whose confidence is below this is marked uncertain (the same 0.6 as ocr.py's
#: MIN_LABEL_CONFIDENCE, below which a read is tried again on its strokes).
UNCERTAIN_BELOW = 0.6
#: A read with fewer letters/digits than this is not a label (a box edge, a bar, noise).
MIN_ALNUM = 3

#: Camera, place and facility words of Russian prison and DVR labels, upper case.
VOCABULARY: frozenset[str] = frozenset({
    # Russian
    "КАМЕРА", "КАМ", "КОРИДОР", "КОРПУС", "ЭТАЖ", "БЛОК", "ОТРЯД", "ДВОР", "ПРОГУЛОЧНЫЙ",
    "ШИЗО", "ПКТ", "ЕПКТ", "СИЗО", "ИК", "ИВС", "ОТБ", "ПФРСИ", "КПП", "ПЛАЦ", "СТОЛОВАЯ",
    "ДЕЖУРНАЯ", "ЧАСТЬ", "КАРАНТИН", "ЛОКАЛЬНЫЙ", "УЧАСТОК", "ПЕРИМЕТР", "ЖИЛАЯ", "ЗОНА", "ВХОД",
    "ВЫХОД", "МЕДЧАСТЬ", "БОЛЬНИЦА", "КАБИНЕТ", "ДОПРОС", "ЛЕСТНИЦА", "ВОРОТА", "ПОСТ",
    # English
    "CAM", "CAMERA", "CH", "CORRIDOR", "YARD", "GATE", "ENTRANCE", "EXIT", "BLOCK", "FLOOR",
    "CELL", "HALL", "DOOR", "ROOM",
})

#: Box edges and OCR noise at either end of a line, and dashes.
_EDGE = " .,:;!?|_-[](){}'\"‘’`—–«»"
_SPACES = re.compile(r"\s+")
_LATIN = "ABCEHKMOPTXY"
_CYRILLIC = "АВСЕНКМОРТХУ"
_TO_CYRILLIC = str.maketrans(_LATIN, _CYRILLIC)
_TO_LATIN = str.maketrans(_CYRILLIC, _LATIN)
#: Letters OCR gives for a digit (and the digit they stand for).
_DIGIT_OF = {"O": "0", "О": "0", "З": "3", "I": "1"}

_CYR, _LAT = "cyrillic", "latin"
#: One or two letters, then a number some of whose digits read as letters ("CHO4").
_CHANNEL = re.compile(r"([^\W\d_]{1,2}?)([0-9OОЗI]*\d[0-9OОЗI]*)")


@dataclass(frozen=True)
class LabelRead:
    text: str
    confidence: float  # 0..1, see the module docstring
    uncertain: bool
    raw: tuple[str, ...]  # the reads as OCR gave them
    corrected: tuple[tuple[str, str], ...]  # (word read, vocabulary word) pairs applied


def _key(c: str) -> str:
    """The class a character is compared by: look-alikes share one."""
    return _DIGIT_OF.get(c) or c.translate(_TO_CYRILLIC)


#: The class a character is compared by (look-alikes share one), for aligning reads.
key = _key


def _keys(text: str) -> str:
    return "".join(_key(c) for c in text)


def _is_cyrillic(c: str) -> bool:
    return "\u0400" <= c <= "\u04ff" and c.isalpha()


def _is_latin(c: str) -> bool:
    return c.isalpha() and (c.isascii() or "\u00c0" <= c <= "\u024f")


def _evidence(c: str | None) -> str | None:
    """The script a letter proves: only letters without a look-alike in the other script (or
    among the digits) prove anything."""
    if c is None or c in _DIGIT_OF or c in _LATIN or c in _CYRILLIC:
        return None
    if _is_cyrillic(c):
        return _CYR
    if _is_latin(c):
        return _LAT
    return None


def _clean(text: str) -> str:
    # Georgian Mkhedruli has no case in use: str.upper would turn it into Mtavruli capitals.
    up = "".join(c if "\u10d0" <= c <= "\u10ff" else c.upper() for c in text)
    return _SPACES.sub(" ", up).strip(_EDGE)


def _distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j - 1] + (ca != cb), prev[j] + 1, cur[j - 1] + 1))
        prev = cur
    return prev[-1]


def _align(centre: str, other: str) -> tuple[list[str | None], list[list[str]]]:
    """`other` aligned to `centre` by keys: for each character of `centre` the character of
    `other` in its place (None: a gap), and for each slot 0..len(centre) the characters `other`
    has in excess before that position."""
    ka, kb = _keys(centre), _keys(other)
    n, m = len(ka), len(kb)
    d = [[i + j if i == 0 or j == 0 else 0 for j in range(m + 1)] for i in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i][j] = min(d[i - 1][j - 1] + (ka[i - 1] != kb[j - 1]),
                          d[i - 1][j] + 1, d[i][j - 1] + 1)
    at: list[str | None] = [None] * n
    extra: list[list[str]] = [[] for _ in range(n + 1)]
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and d[i][j] == d[i - 1][j - 1] + (ka[i - 1] != kb[j - 1]):
            at[i - 1] = other[j - 1]
            i, j = i - 1, j - 1
        elif i > 0 and d[i][j] == d[i - 1][j] + 1:
            i -= 1
        else:
            extra[i].append(other[j - 1])
            j -= 1
    for slot in extra:
        slot.reverse()
    return at, extra


@dataclass(frozen=True)
class _Column:
    char: str  # the winning character
    entries: tuple[str | None, ...]  # each voting read's character (None: a gap)
    support: float


@dataclass(frozen=True)
class _Read:
    text: str  # cleaned
    weight: float  # vote weight: summed confidence (0–1) of the identical reads, floored
    conf: float  # summed confidence (0–1) of the identical reads
    count: int


def _columns(reads: list[_Read], candidates: int) -> tuple[list[_Column], list[_Read]]:
    """Centre-star alignment and vote; also the reads that voted (the centre first)."""
    keys = [_keys(r.text) for r in reads]
    dist = [[0] * len(keys) for _ in keys]
    for i, a in enumerate(keys):
        for j in range(i + 1, len(keys)):
            dist[i][j] = dist[j][i] = _distance(a, keys[j])
    centre = min(range(len(reads)),
                 key=lambda i: (sum(r.weight * dist[i][j] for j, r in enumerate(reads)),
                                -reads[i].weight, i))
    others = [i for i in range(len(reads)) if i != centre
              and dist[centre][i] * 2 <= max(len(keys[centre]), len(keys[i]))]
    voters = [reads[centre], *(reads[i] for i in others)]
    text = reads[centre].text
    aligned = [_align(text, reads[i].text) for i in others]
    rows: list[tuple[str | None, ...]] = []
    for slot in range(len(text) + 1):
        width = max((len(extra[slot]) for _, extra in aligned), default=0)
        for x in range(width):
            rows.append((None, *(extra[slot][x] if x < len(extra[slot]) else None
                                 for _, extra in aligned)))
        if slot < len(text):
            rows.append((text[slot], *(at[slot] for at, _ in aligned)))
    columns = []
    for entries in rows:
        tally: dict[str | None, float] = {}
        for r, c in zip(voters, entries, strict=True):
            k = None if c is None else _key(c)
            tally[k] = tally.get(k, 0.0) + r.weight
        centre_key = None if entries[0] is None else _key(entries[0])
        win = max(tally, key=lambda k: (tally[k], k == centre_key))
        if win is None:
            continue  # most reads have nothing here: a stray character
        chars: dict[str, float] = {}
        for r, c in zip(voters, entries, strict=True):
            if c is not None and _key(c) == win:
                chars[c] = chars.get(c, 0.0) + r.weight
        char = max(sorted(chars), key=lambda c: (chars[c], c == entries[0]))
        support = sum(r.conf for r, c in zip(voters, entries, strict=True)
                      if c is not None and _key(c) == win)
        columns.append(_Column(char, entries, support / candidates))
    return columns, voters


def _words(columns: list[_Column]) -> list[list[_Column]]:
    words: list[list[_Column]] = [[]]
    for col in columns:
        if col.char == " ":
            if words[-1]:
                words.append([])
        else:
            words[-1].append(col)
    return [w for w in words if w]


def _script_of(counts: dict[str, float]) -> str | None:
    cyr, lat = counts.get(_CYR, 0.0), counts.get(_LAT, 0.0)
    return None if cyr == lat else _CYR if cyr > lat else _LAT


def _script(word: list[_Column], voters: list[_Read], context: dict[str, float],
            chars: str) -> str | None:
    """Cyrillic or Latin for a word, spelt `chars` (None: neither, leave its letters as
    read)."""
    # the reads vote, each by the letters only one script has
    votes: dict[str, float] = {}
    for n, read in enumerate(voters):
        mine: dict[str, float] = {}
        for col in word:
            s = _evidence(col.entries[n])
            if s is not None:
                mine[s] = mine.get(s, 0.0) + 1
        s = _script_of(mine)
        if s is not None:
            votes[s] = votes.get(s, 0.0) + read.weight
    if (s := _script_of(votes)) is not None:
        return s
    # only look-alikes: the vocabulary word a run of its letters spells
    spelled = {_VOCAB_SCRIPT[k] for run in re.findall(r"[^\W\d_]+", chars)
               if (k := _keys(run)) in _VOCAB_SCRIPT}
    if len(spelled) == 1:
        return spelled.pop()
    if (s := _script_of(context)) is not None:
        return s
    if any(c in _LATIN or c in _CYRILLIC for c in chars):
        return _CYR  # no evidence at all: one fixed choice keeps one camera's label one string
    return None


def _shape(word: list[_Column], voters: list[_Read], context: dict[str, float]) -> str:
    """The word in one script, digits in numbers and letters in words."""
    chars = [c.char for c in word]
    channel = _CHANNEL.fullmatch("".join(chars))
    if channel is not None and 2 * sum(c.isdigit() for c in channel[2]) >= len(channel[2]):
        # a channel prefix and its number: "CHO4" is CH04, "СНО1" CH01
        chars = list(channel[1]) + [_DIGIT_OF.get(c, c) for c in channel[2]]
    digits = sum(c.isdigit() for c in chars)
    if digits and digits * 2 >= len(chars) and all(c.isdigit() or c in _DIGIT_OF for c in chars):
        return "".join(_DIGIT_OF.get(c, c) for c in chars)
    script = _script(word, voters, context, "".join(chars))
    out = []
    for i, c in enumerate(chars):
        between_letters = 0 < i < len(chars) - 1 and chars[i - 1].isalpha() \
            and chars[i + 1].isalpha()
        if between_letters and script == _CYR:
            c = {"0": "О", "3": "З"}.get(c, c)
        elif between_letters and script == _LAT:
            c = {"0": "O", "1": "I"}.get(c, c)
        if script == _CYR:
            c = c.translate(_TO_CYRILLIC)
        elif script == _LAT:
            c = "3" if c == "З" else c.translate(_TO_LATIN)
        out.append(c)
    return "".join(out)


def spelt_as(word: str) -> str | None:
    """The vocabulary word `word` spells, look-alikes aside (no letter misread), or None."""
    return _VOCAB_BY_KEY.get(_keys(word))


def correct(word: str) -> str | None:
    """The vocabulary word `word` is a misread of, or None (see `_correct`)."""
    return _correct(word)


def _correct(word: str) -> str | None:
    """The vocabulary word `word` is a misread of, or None.

    Compared on keys (look-alikes equal). A word spelt exactly as a vocabulary word, look-alikes
    aside, becomes it — also a word with digits ("ШИЗ0") or of 1–2 letters ("ИK"). Otherwise
    only a word of ≥3 letters, all Cyrillic or Latin, no digits, is corrected, and only when
    exactly one vocabulary word is within edit distance 1 (2 for words of ≥7 letters). A word
    far from every vocabulary word stays as read; one word always stays one word.
    """
    key = _keys(word)
    if key in _VOCAB_BY_KEY:
        return _VOCAB_BY_KEY[key]
    if len(word) <= 2 or not all(_is_cyrillic(c) or _is_latin(c) for c in word):
        return None
    limit = 2 if len(word) >= 7 else 1
    near = [v for k, v in _VOCAB_BY_KEY.items() if _distance(key, k) <= limit]
    return near[0] if len(near) == 1 else None


#: What a reader with no Cyrillic (the recogniser: Latin, digits, some Greek and CJK) gives for
#: each Cyrillic capital, upper-cased as `consensus` leaves it: "KAMEPA" is КАМЕРА,
#: "KIII" or "KNN" КПП, "XHNA9" ЖИЛАЯ. Besides these, a letter stands for its look-alikes.
LOOKS: dict[str, tuple[str, ...]] = {
    "А": ("A",), "Б": ("6", "B"), "В": ("B", "8"), "Г": ("R", "F", "P", "「", "T"),
    "Д": ("A", "D", "J", "Q", "I", "1"), "Е": ("E",), "Ж": ("X", "K", "XK", ")K", "KV"),
    "З": ("3",), "И": ("U", "H", "N", "V", "W", "M", "И"), "Й": ("N", "M", "H", "Y", "И"),
    "Л": ("N", "J", "JI", "I", "U"), "Н": ("H",), "О": ("0",),
    "П": ("N", "I", "II", "TI", "1I", "T", "H", "7", "1", "III", "M"), "У": ("Y", "V", "4", "9"),
    "Ф": ("Φ", "O"), "Ц": ("U", "L", "LI", "LL"), "Ч": ("4", "Y", "H"),
    "Ш": ("III", "II", "W", "LV", "LU", "V", "N", "IH"), "Щ": ("W", "III"), "Ъ": ("B",),
    "Ы": ("BI", "BL", "B"), "Ь": ("B", "6"), "Э": ("3",), "Ю": ("IO",), "Я": ("9", "A", "R", "H"),
}


#: A camera number, maybe after a short prefix ("CH31", "D15", "10-2"): never a word's letters.
_PREFIXED_NUMBER = re.compile(r"[^\W\d_]{0,3}\d+(?:[-/]\d+)?")


def _look_cost(read: str, word: str) -> int:
    """Edit distance from a Latin read to the Cyrillic `word`, a letter matching for free the
    strings `LOOKS` lists for it (1–3 characters of the read) and its look-alikes."""
    read = read.translate(_TO_LATIN)
    inf = len(read) + len(word) + 1
    n, m = len(word), len(read)
    d = [[inf] * (m + 1) for _ in range(n + 1)]
    d[0] = list(range(m + 1))
    for i in range(1, n + 1):
        c = word[i - 1]
        looks = LOOKS.get(c, ())
        for j in range(m + 1):
            best = d[i - 1][j] + 1  # the read lacks this letter
            if j:
                best = min(best, d[i][j - 1] + 1,  # the read has a letter too many
                           d[i - 1][j - 1] + (_key(read[j - 1]) != _key(c)))
            for look in looks:
                k = len(look)
                if k <= j and read[j - k:j] == look:
                    best = min(best, d[i - 1][j - k])
            d[i][j] = best
    return d[n][m]


@functools.lru_cache(maxsize=4096)
def correct_look(read: str) -> str | None:
    """The Cyrillic vocabulary word a read by a reader with no Cyrillic stands for, or None:
    the one vocabulary word within `_look_cost` 0 (1 for words of ≥4 letters, 2 for ≥7) when
    no other word is as near. A read with no Latin letter, or of fewer than 2 characters, or
    that is a number, maybe after a prefix ("CH31" is no СИЗО), stands for none."""
    read = read.translate(_TO_LATIN)  # the recogniser's look-alikes may be folded already
    if len(read) < 2 or not any(c.isascii() and c.isalpha() for c in read) \
            or any(_is_cyrillic(c) and c != "И" for c in read) or _PREFIXED_NUMBER.fullmatch(read):
        return None
    costs: dict[int, list[str]] = {}
    for v in _CYRILLIC_VOCAB:
        if abs(len(v) - len(read)) <= 3:
            costs.setdefault(_look_cost(read, v), []).append(v)
    if not costs:
        return None
    best = min(costs)
    near = costs[best]
    if len(near) != 1:
        return None
    limit = 0 if len(near[0]) < 4 else 1 if len(near[0]) < 7 else 2
    return near[0] if best <= limit else None


_VOCAB_BY_KEY = {_keys(v): v for v in VOCABULARY}
_VOCAB_SCRIPT = {k: _CYR if any(map(_is_cyrillic, v)) else _LAT for k, v in _VOCAB_BY_KEY.items()}
_CYRILLIC_VOCAB = tuple(sorted(v for v in VOCABULARY if any(map(_is_cyrillic, v))))
if len(_VOCAB_BY_KEY) != len(VOCABULARY):
    raise RuntimeError("two vocabulary words are look-alikes")


def _label(columns: list[_Column], voters: list[_Read], *,
           correct: bool) -> tuple[str, tuple[tuple[str, str], ...]]:
    words = _words(columns)
    evidence = [[s for c in w if (s := _evidence(c.char)) is not None] for w in words]
    out: list[str] = []
    corrected: list[tuple[str, str]] = []
    for n, word in enumerate(words):
        context: dict[str, float] = {}
        for m, found in enumerate(evidence):
            if m != n:
                for s in found:
                    context[s] = context.get(s, 0.0) + 1
        shaped = _shape(word, voters, context)
        fixed = _correct(shaped) if correct else None
        if fixed is not None:
            read = "".join(c.char for c in word)
            if read.translate(_TO_CYRILLIC) != fixed.translate(_TO_CYRILLIC):
                corrected.append((read, fixed))
            shaped = fixed
        out.append(shaped)
    return _clean(" ".join(out)), tuple(corrected)


def consensus(reads: Sequence[tuple[str, float]]) -> LabelRead | None:
    """One label from the (text, tesseract mean confidence 0–100) reads of one overlay line over
    several frames; None only when no read has 3 letters/digits. See the module docstring."""
    cleaned: dict[str, _Read] = {}
    for text, conf in reads:
        t = _clean(text)
        if sum(c.isalnum() for c in t) < MIN_ALNUM:
            continue
        w = min(max(conf, 0.0), 100.0) / 100
        old = cleaned.get(t, _Read(t, 0.0, 0.0, 0))
        # a read at confidence 0 still votes, barely
        cleaned[t] = _Read(t, old.weight + max(w, 1e-3), old.conf + w, old.count + 1)
    if not cleaned:
        return None
    candidates = sum(r.count for r in cleaned.values())
    columns, voters = _columns(list(cleaned.values()), candidates)
    text, corrected = _label(columns, voters, correct=True)
    chars = [c for c in columns if c.char != " "]
    confidence = round(sum(c.support for c in chars) / len(chars), 3) if chars else 0.0
    confidence = min(confidence, 1.0)
    usable = sum(r.count for r in voters)
    return LabelRead(text=text, confidence=confidence,
                     uncertain=confidence < UNCERTAIN_BELOW or usable < 2,
                     raw=tuple(t for t, _ in reads), corrected=corrected)


def canonical(text: str) -> str:
    """One camera's label in one form, to compare and merge labels: upper case, single spaces,
    box-edge punctuation stripped, look-alikes folded to one script per word and digits in
    numbers, by the rules `consensus` applies (but no vocabulary correction)."""
    t = _clean(text)
    if not t:
        return ""
    columns, voters = _columns([_Read(t, 1.0, 1.0, 1)], 1)
    return _label(columns, voters, correct=False)[0]
