"""Reading a DVR's burned-in overlay: parse clock text, and fit readings into segments.

OCR gives (video time t, text) pairs. `parse_clock` turns text into a wall-clock reading in
any of the common DVR formats; `fit_segments` checks the readings against each other — a DVR
clock advances one second per second of video, so `clock − t` must stay constant within a
segment — rejects outliers, splits where the clock jumps (an export that concatenates
recordings), and estimates each segment's clock to the second from the intersection of the
readings' one-second windows.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

#: OCR look-alikes inside the digit positions of a clock.
_DIGIT_FIXES = str.maketrans({
    "O": "0", "o": "0", "О": "0", "о": "0", "D": "0", "Q": "0",
    "I": "1", "l": "1", "|": "1", "i": "1", "!": "1",
    "Z": "2", "z": "2", "З": "3", "з": "3", "A": "4", "Ч": "4", "S": "5", "s": "5",
    "б": "6", "G": "6", "T": "7", "B": "8", "В": "8", "g": "9",
    "—": "-", "–": "-", "_": "-", "‚": ",", "\\": "/",
})

_SEP = r"\s*([-./])\s*"
_TIME = r"(\d{1,2})\s*[:.;]\s*(\d{2})\s*[:.;]\s*(\d{2})"
_PATTERNS = [
    # YYYY/MM/DD, YYYY-MM-DD, YYYY.MM.DD
    ("Y", re.compile(r"(\d{4})" + _SEP + r"(\d{1,2})" + _SEP + r"(\d{1,2})\D{0,12}?" + _TIME)),
    # DD-MM-YYYY, DD.MM.YYYY, DD/MM/YYYY (Russian order; US MM/DD only when DD > 12 forces it)
    ("D", re.compile(r"(\d{1,2})" + _SEP + r"(\d{1,2})" + _SEP + r"(\d{4})\D{0,12}?" + _TIME)),
]
#: AM/PM, also in the Cyrillic look-alikes a Russian+English engine reads ("РМ").
_AMPM = re.compile(r"\b([AaPpАаРр])\.?\s?[MmМм]\b")

#: Month names a DVR prints, by their first three letters (Russian and English; full names and
#: the genitive "марта" start the same way). "май"/"мая" are the only Russian pair that needs
#: both spellings.
_MONTHS = {
    **{m: i for i, m in enumerate(("янв", "фев", "мар", "апр", "май", "июн", "июл", "авг",
                                   "сен", "окт", "ноя", "дек"), 1)},
    "мая": 5,
    **{m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug",
                                   "sep", "oct", "nov", "dec"), 1)},
}
#: Latin letters OCR gives for Cyrillic ones in a Russian month name ("MAP" for "МАР").
_TO_CYRILLIC = str.maketrans("abcehkmnoptxy", "авсенкмпортху")
_WORD = r"([^\W\d_]{3,9})\.?"
_NAMED = [
    # 14 мар 2020, 14 March 2020, Сб 14 мар 2020 (a weekday before is skipped)
    ("DMonY", re.compile(r"(\d{1,2})\s*" + _WORD + r"\s*(\d{4})\D{0,12}?" + _TIME)),
    # Mar 14 2020, Sat Mar 14, 2020
    ("MonDY", re.compile(_WORD + r"\s*(\d{1,2}),?\s*(\d{4})\D{0,12}?" + _TIME)),
]


def _month(word: str) -> int | None:
    w = word.lower()[:3]
    return _MONTHS.get(w) or _MONTHS.get(w.translate(_TO_CYRILLIC))


def _month_exact(word: str) -> int | None:
    """The Russian month `word` starts with, look-alikes aside, or None."""
    w = word.lower().translate(_TO_CYRILLIC)[:3]
    return 5 if w == "мая" else next(
        (n for n, name in enumerate(_RUSSIAN_MONTHS, 1) if name == w), None)


def _month_near(word: str) -> int | None:
    """The Russian month tesseract read as `word`, one letter misread at most ("пюл" for
    "июл", "МЕЙ" for "май"): the one month within that distance, never one of two ("мад" is
    as near "мар" as "май": neither); or the month a longer word ends in, exactly, where junk
    ran into it ("ПЕЛапр"). Never an English month: "janp" is "апр" misread, not January."""
    exact = _month_exact(word)
    w = word.lower().translate(_TO_CYRILLIC)
    if exact is not None or len(w) < 3:
        return exact
    near = {number for number, name in enumerate(_RUSSIAN_MONTHS, 1)
            if sum(a != b for a, b in zip(w[:3], name, strict=True)) <= 1}
    if len(near) == 1:
        return near.pop()
    return _month_exact(w[-3:]) if len(w) > 3 else None


#: Marks a format whose day and month could be either way round (both ≤ 12, slashes).
AMBIGUOUS = " day/month?"
#: Marks a reading whose clock shows a weekday that its date does not fall on (`03-05-2021
#: Fri` read as the 3rd of May, a Monday: a recorder that writes MM-DD-YYYY, or a digit
#: misread). It is never placed: `ocr.read_overlay` drops it, with every reading of that
#: date, and flags the clip.
WEEKDAY_DISAGREES = " weekday?"
#: Russian weekdays as a clock writes them, Monday first.
_WEEKDAYS = ("пн", "вт", "ср", "чт", "пт", "сб", "вс")
#: Weekdays as DVRs write them: English and Russian, short and whole.
_WEEKDAY_WORDS = {
    **{w: i for i, w in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))},
    **{w: i for i, w in enumerate(("monday", "tuesday", "wednesday", "thursday", "friday",
                                   "saturday", "sunday"))},
    **{w: i for i, w in enumerate(_WEEKDAYS)},
    **{w: i for i, w in enumerate(("пнд", "втр", "срд", "чтв", "птн", "суб", "вск"))},
    **{w: i for i, w in enumerate(("понедельник", "вторник", "среда", "четверг", "пятница",
                                   "суббота", "воскресенье"))},
}


#: Marks a reading whose day and month could be either way round (`AMBIGUOUS`) and whose
#: weekday falls on one way only: an order taken from other clips or a person never
#: overrides it (`resolve_date_order`).
WEEKDAY_SAYS = " weekday says "
_WEEKDAY_SAYS = re.compile(re.escape(WEEKDAY_SAYS) + r"(DD|MM)(.)(DD|MM)")


def weekday_read(text: str) -> int | None:
    """The weekday (0 = Monday) a clock's text names as a word of its own, when it names one
    (and not two); None otherwise. Only whole words spelt right count: a weekday OCR garbled
    tells nothing, but an l read for an i ("Frl"). Letters glued to digits count as a word
    (`2021Fri`, `00Thu`)."""
    words = re.findall(r"[^\W\d_]+", _LETTER_DIGIT.sub(" ", text).lower().replace(".", " "))
    # an l for an i, as the recogniser reads "Fri" ("Frl"): no weekday has an l
    days = {_WEEKDAY_WORDS[w] for w in (*words, *(w.replace("l", "i") for w in words))
            if w in _WEEKDAY_WORDS}
    return days.pop() if len(days) == 1 else None


def _swapped(when: datetime) -> datetime | None:
    try:
        return when.replace(month=when.day, day=when.month)
    except ValueError:
        return None
#: Letters next to digits (`24Aug2018`, `07:24:38PM`): RapidOCR's recogniser drops spaces.
_LETTER_DIGIT = re.compile(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")
#: Short tokens with a letter between the date and the time: a weekday read as junk ("Чт" →
#: "4T"). Never a token of digits alone: that may be part of the hour.
_SHORT = r"(?=\S{0,2}[^\W\d_])\S{1,3}"
_BETWEEN = re.compile(r"(?<=\d) +" + _SHORT + r"(?: +" + _SHORT + r")? +(?=\d{1,2}\s*[:.;]\s*"
                      r"\d{2}\s*[:.;]\s*\d{2})")

#: A weekday read as junk and glued to the year ("29-01-2022C6 09:52:47" for "… Сб …"): it
#: has a letter, and the year's four digits end before it, so it is no part of the hour.
_GLUED = re.compile(r"(?<=\d{4})(?=\S{0,2}[^\W\d_])\S{1,3}(?=\s+\d{1,2}\s*[:.;]\s*\d{2})")

#: A time whose second colon did not read ("07:5619"): two digits after the minutes' colon
#: and two more, nothing else, can only be minutes and seconds. Likewise "0756:19".
_NO_SECOND_COLON = re.compile(r"(?<![\d:])(\d{1,2}):(\d{2})(\d{2})(?![\d:])")
_NO_FIRST_COLON = re.compile(r"(?<![\d:])(\d{2})(\d{2}):(\d{2})(?![\d:])")


_GLUED_AMPM = re.compile(r"(?<=\d)(?=[AaPpАаРр]\.?\s?[MmМм](?![^\W\d_]))")
#: A weekday glued after an AM/PM ("09:30:00PMThu"): the AM/PM would not be read as one.
_AMPM_THEN_WEEKDAY = re.compile(
    r"(?<=\d)\s?([AaPpАаРр]\.?\s?[MmМм])(?=(?i:mon|tue|wed|thu|fri|sat|sun|пн|вт|ср|чт|пт|сб|вс))")


def colons_restored(text: str) -> str:
    return _NO_FIRST_COLON.sub(r"\1:\2:\3", _NO_SECOND_COLON.sub(r"\1:\2:\3", text))


def parse_clock_text(text: str) -> tuple[datetime, str] | None:
    """`parse_clock` on the text as read, then with letters split from digits (an engine
    that drops spaces: `24Aug201807:24:38PM`), then with a short token before the time
    dropped (a weekday read as junk). NFKC first: full-width digits and colons."""
    import unicodedata

    raw = colons_restored(unicodedata.normalize("NFKC", text))
    # "12:30:00AM": an AM glued to the seconds would become "4M" with the digits' look-alikes
    # fixed, and 12:30 AM be read as noon
    raw = _GLUED_AMPM.sub(" ", _AMPM_THEN_WEEKDAY.sub(r" \1 ", raw))
    split = _LETTER_DIGIT.sub(" ", re.sub(r"(?<![^\W\d_])0(?=ct)", "O", raw))
    for variant in (raw, split, _BETWEEN.sub(" ", raw), _BETWEEN.sub(" ", split),
                    _GLUED.sub(" ", raw)):
        parsed = parse_clock(variant)
        if parsed is not None:
            if not parsed[1].endswith("12h") and half_unread(raw):
                return None  # "05:01:22 RM": AM or PM? As a 24-hour time it may be 12 h off
            return parsed
    return None


#: A time of day as the recogniser reads it, with AM/PM if any.
_TIME_OF_DAY = re.compile(r"(\d{1,2})\s*[:.;]\s*(\d{2})\s*[:.;]\s*(\d{2})(\s*[AaPp]\.?\s?[Mm])?")
#: A time followed by what may be an AM/PM misread ("RM", "PN", "A", "M"): one or two letters,
#: the first like A or P, or the last like M.
_TIME_THEN_HALF = re.compile(
    r"(\d{1,2})\s*[:.;]\s*\d{2}\s*[:.;]\s*\d{2}\s*"
    r"((?:[AaPpRrАаРр][^\W\d_]?|[^\W\d_]?[MmNnМмИи])\.?)(?![^\W\d_])")


def half_unread(text: str) -> bool:
    """Whether a 12-hour time's AM/PM is there but did not read: an hour of 1–12 followed by
    one or two letters that may be a misread AM or PM, and are not one ("05:01:22 RM")."""
    import unicodedata

    text = _LETTER_DIGIT.sub(" ", unicodedata.normalize("NFKC", text))
    m = _TIME_THEN_HALF.search(text)
    return (m is not None and 1 <= int(m.group(1)) <= 12
            and _AMPM.fullmatch(m.group(2).rstrip(".")) is None)


#: How the recogniser, which has Latin letters and digits only, writes the Cyrillic letters of
#: the month names (seen on generated clips: "AHB" янв, "uon" июл, "MI0H" июн, "0kr" окт,
#: "nek" дек). No string fits two months (tested), so a word names one month at most.
_LOOKALIKES = {
    "а": "[aA]", "в": "[bB8]", "г": "[rF]", "д": "(?:[nAgDH]|Д)", "е": "[eE]",
    "и": "(?:[uUNMIm]|И)", "й": "(?:[uUNn]|И|Й)", "к": "[kK]", "л": "(?:[nJ]|JI|Л)",
    "м": "[mM]", "н": "[hH]", "о": "[oO0]", "п": "(?:[nN]|TI|П)", "р": "[pP]", "с": "[cC]",
    "т": "[tTr]", "ф": "(?:Φ|cp|qp|F)", "ю": "(?:I0|IO|10|lO|io|[oO0]|Ю)", "я": "(?:[aA9R]|Я)",
}
_RUSSIAN_MONTHS = ("янв", "фев", "мар", "апр", "май", "июн", "июл", "авг", "сен", "окт",
                   "ноя", "дек")
_LOOKALIKE_MONTHS = [
    (re.compile("".join(_LOOKALIKES[c] for c in name) + r"\.?"), number)
    for number, name in enumerate(_RUSSIAN_MONTHS, 1)] + [
    (re.compile("".join(_LOOKALIKES[c] for c in "мая") + r"\.?"), 5)]


def lookalike_month(word: str) -> int | None:
    """The Russian month whose name the recogniser read as `word` in Latin look-alikes."""
    return next((n for pattern, n in _LOOKALIKE_MONTHS if pattern.fullmatch(word)), None)


def _endings() -> dict[str, int]:
    """Each Russian month's last two letters, where no month with a letter lost gives them
    too: "пр" is апр's alone; "ар" is мар's ending and апр without its п, so neither's."""
    gives: dict[str, set[int]] = {}
    for number, name in enumerate(_RUSSIAN_MONTHS, 1):
        for two in (name[1:], name[0] + name[2], name[:2]):
            gives.setdefault(two, set()).add(number)
    return {name[1:]: number for number, name in enumerate(_RUSSIAN_MONTHS, 1)
            if gives[name[1:]] == {number}}


_MONTH_ENDINGS = _endings()

#: Day, month word and year as the recogniser reads a spelt-out date ("23 0kr 2022").
#: The recogniser may run them together, and the time into the year ("181p202322:39:34").
_DAY_WORD_YEAR = re.compile(
    r"(?<!\d)(\d{1,2})\s*(\S{1,6}?)\s*((?:19|20)\d\d)(?:(?!\d)|(?=\d{1,2}\s*:))")
#: The same with a word that starts with no digit, tried first: a weekday read with a digit
#: ("C6 09a8r2019") must not give its 6 as the day.
_DAY_WORD_YEAR_STRICT = re.compile(
    r"(?<!\d)(0?[1-9]|[12]\d|3[01])\s*([^\d\s]\S{0,5}?)\s*((?:19|20)\d\d)"
    r"(?:(?!\d)|(?=\d{1,2}\s*:))")


_DAY_WORD_YEAR_TESSERACT = re.compile(
    r"(?<!\d)(\d{1,2})\s*([^\W\d_]{3,9})\.?\s*((?:19|20)\d\d)(?!\d)")


def _days_words_years(recognised: str) -> list[re.Match[str]]:
    """The (day, word, year) a recogniser's read may hold: the strict pattern's, then the
    loose one's."""
    import unicodedata

    text = unicodedata.normalize("NFKC", recognised)
    return [m for m in (_DAY_WORD_YEAR_STRICT.search(text), _DAY_WORD_YEAR.search(text))
            if m is not None]


def may_be_spelt_date(recognised: list[str]) -> bool:
    """Whether `spelt_date` can find a date in what the recogniser read, whatever tesseract
    reads: a day, a word and a year on two of its reads at least (else tesseract's slow reads
    are not worth asking for)."""
    return sum(1 for text in recognised if _days_words_years(text)) >= 2


def spelt_date(recognised: list[str], tesseract: list[str]) -> str | None:
    """The date of a clock whose month is a Russian word (`23 окт 2022`), from what the
    recogniser read on a few frames (digits right, the month in Latin look-alikes) and what
    tesseract read in several preparations (Cyrillic right, digits often not). It stands only
    when the evidence agrees:

    - day and year: the same on most of the recogniser's reads (at least two), and one of
      the two also in some tesseract read; when tesseract reads whole dates (day, month
      word, year), the day must be one of theirs, and the year too if they agree on one;
    - month: read by tesseract at least once, and by the recogniser's look-alikes on two
      frames or by tesseract three times, with any other month read a third as often at most.

    A date a month or a year off would place the whole clip there: rather none."""
    from collections import Counter

    days_years: Counter[tuple[int, int]] = Counter()
    by_recogniser: Counter[int] = Counter()
    parsed = 0
    # where the recogniser's text allows two days ("C6 09a8r2019": 6 of the weekday, or 09;
    # "18 1p 2023": 18, or the 1 of a misread а; "21 9HB 2019": 21, or 9 of я read "9"),
    # the one before a word that reads as a month, else the one tesseract reads as a number
    # of its own (not a time's: "99:9:" is no day)
    tesseract_days = {int(x) for text in tesseract
                      for x in re.findall(r"(?<![\d:])\d{1,2}(?![\d:])", text)}
    for text in recognised:
        found = _days_words_years(text)
        days = {int(m.group(1)) for m in found}
        named = [m for m in found if lookalike_month(m.group(2)) is not None]
        read = [m for m in found if int(m.group(1)) in tesseract_days]
        m = (found[0] if len(days) == 1 else named[0] if len({int(x.group(1)) for x in named})
             == 1 else read[0] if len({int(x.group(1)) for x in read}) == 1 else None)
        if m is None:
            continue
        parsed += 1
        days_years[(int(m.group(1)), int(m.group(3)))] += 1
        month = lookalike_month(m.group(2))
        if month is not None:
            by_recogniser[month] += 1
    if not days_years:
        return None
    (day, year), n = days_years.most_common(1)[0]
    if n < 2 or 2 * n <= parsed:
        return None
    by_tesseract: Counter[int] = Counter()
    # whole dates tesseract read (day, a month word, year): the day must be one of theirs —
    # 23 read by tesseract against 28 read twice by the recogniser is a doubt, not a
    # confirmation of the year — and so must the year, unless tesseract's years disagree
    # among themselves (2020, 2024 for 2022 in a serif font: noise, not another year)
    # (a day no month has is a misread, no doubt: the bitmap Terminus's 0 read as 8, "89")
    whole = {(int(m.group(1)), int(m.group(3))) for text in tesseract
             for m in _DAY_WORD_YEAR_TESSERACT.finditer(text)
             if _month(m.group(2)) and 1 <= int(m.group(1)) <= 31}
    years = {y for _d, y in whole}
    if whole and (day not in {d for d, _y in whole} or (len(years) == 1 and year not in years)):
        return None
    # a month whose first letter tesseract lost ("18 пр 2023" for "18 апр 2023"): its last
    # two letters name one month only, when they stand between the day and the year read
    clipped = re.compile(rf"(?<!\d)0?{day}\S?\s*([^\W\d_]{{2}})\.?\s*{year}(?!\d)")
    year_read = day_month = False
    for text in tesseract:
        # a misread month (`_month_near`) only where a month stands: after a day (a number
        # of one or two digits, not a time's) or before a year (as tesseract read them:
        # "МЕЙ 2025"); another word on the clock's line ("10:00:00 ДЕЖУРНАЯ") is no month
        # one letter off ("дек")
        words = [(d, w, _month_near(w) if d or nxt else _month_exact(w))
                 for d, w, nxt in re.findall(
                     r"(?:(?<![:.\d])(\d{1,2})\s*)?([^\W\d_]{3,9})\.?\s*(\d{3,4}(?!\d))?", text)]
        months = {month for _, _, month in words if month is not None}
        if not months and (m := clipped.search(text)) is not None:
            ending = _MONTH_ENDINGS.get(m.group(1).lower().translate(_TO_CYRILLIC))
            months = {ending} if ending is not None else set()
        by_tesseract.update(months)
        numbers = {int(x) for x in re.findall(r"\d+", text)}
        year_read = year_read or year in numbers
        day_month = day_month or any(d and int(d) == day and month is not None
                                     for d, _, month in words)
    support = by_tesseract + by_recogniser
    # tesseract read the year, or the day beside a month word
    if not support or not (year_read or day_month):
        return None
    (month, best), *rest = support.most_common()
    if (by_tesseract[month] < 1 or (by_recogniser[month] < 2 and by_tesseract[month] < 3)
            or any(3 * other > best for _, other in rest)):
        # the weekday the clock shows may still tell: of the months read, the one whose day
        # falls on it, when the recogniser's look-alikes read that month
        on_it = [m for m in support if _weekday_confirms(tesseract, day, m, year)]
        if len(on_it) != 1 or by_recogniser[on_it[0]] < 1:
            return None
        month = on_it[0]
    try:
        datetime(year, month, day)
    except ValueError:
        return None
    return f"{day:02d} {_RUSSIAN_MONTHS[month - 1]} {year}"


#: A weekday as tesseract reads it before the day ("Чт 30", "Чт.30", "Чт'30").
_WEEKDAY_BEFORE_DAY = re.compile(r"(?<![^\W\d_])([^\W\d_]{2})[.',]?\s*\d{1,2}(?!\d)")


def _weekday_confirms(tesseract: list[str], day: int, month: int, year: int) -> bool:
    """Whether the weekday the clock shows confirms a month the engines do not agree on
    (tesseract reads "Hida" and "HOK" for "июл" in a serif font, the recogniser "m0n"):
    tesseract read one weekday, the same, twice at least and no other (in Cyrillic, as the
    clock writes it), and it is the weekday of that day of that month. A month misread as
    another could pass only if both months put that day on the same weekday, and the pairs
    that do (апр/июл, сен/дек, янв/окт, фев/мар/ноя) look nothing alike."""
    import datetime as dt
    from collections import Counter

    read = Counter(_WEEKDAYS.index(w) for text in tesseract
                   for m in _WEEKDAY_BEFORE_DAY.finditer(text)
                   if (w := m.group(1).lower()) in _WEEKDAYS)
    if len(read) != 1:
        return False
    ((weekday, times),) = read.items()
    try:
        return times >= 2 and dt.date(year, month, day).weekday() == weekday
    except ValueError:
        return False


def with_half(text: str, half: str) -> str:
    """`text` with the AM/PM that did not read (`half_unread`) replaced by `half`."""
    import unicodedata

    text = _LETTER_DIGIT.sub(" ", unicodedata.normalize("NFKC", text))
    m = _TIME_THEN_HALF.search(text)
    return text if m is None else text[:m.start(2)] + half + text[m.end(2):]


def time_of_day(text: str, *, unknown_half: bool = False) -> str | None:
    """`HH:MM:SS` (and AM/PM) in what the recogniser read, or None. An AM/PM that did not
    read (`half_unread`) makes it None, or with `unknown_half` "HH:MM:SS ?M"."""
    import unicodedata

    normal = colons_restored(unicodedata.normalize("NFKC", text))
    m = _TIME_OF_DAY.search(_LETTER_DIGIT.sub(" ", normal))
    if m is None or int(m.group(1)) > 23 or int(m.group(2)) > 59 or int(m.group(3)) > 59:
        return None
    if not m.group(4) and half_unread(normal):
        return f"{int(m.group(1)):02d}:{m.group(2)}:{m.group(3)} ?M" if unknown_half else None
    ampm = (m.group(4) or "").replace(" ", "").replace(".", "").upper()
    return f"{int(m.group(1)):02d}:{m.group(2)}:{m.group(3)}" + (f" {ampm}" if ampm else "")


def date_shape(fmt: str) -> str | None:
    """What a day/month order is decided for: slashed dates with the day and the month first
    (`??/??/YYYY`); None for every other format, whose order is never in doubt. 12- and
    24-hour clocks are one shape: OCR often misses an "AM" (a 24-hour reading of 09:30 AM is
    the same time). Orders are decided per camera label too (`order_key`): a vault may hold
    clips of two recorders whose orders differ, and one of them may show no day above 12."""
    return "??/??/YYYY" if re.match(r"(DD/MM|MM/DD)/YYYY", fmt) else None


def order_key(shape: str, label: str | None) -> str | None:
    """What an order shown by clips is known for: a shape of clock on one camera label (as
    OCR read it). A clip without a label takes no order from other clips."""
    return f"{shape} on {label}" if label else None


def in_force(known: Mapping[str, object], shape: str | None, label: str | None) -> str | None:
    """The key of `known` (orders by `order_key`, and by shape: what a person said for every
    camera) that decides a clip's order: its camera's, else its shape's."""
    if not shape:
        return None
    key = order_key(shape, label)
    return key if key in known else shape if shape in known else None


#: Seconds two readings' offsets (clock − video time) may differ and still be one clock.
SAME_CLOCK_S = 1.5


def orders_shown(readings: list[tuple[float, datetime, str]]) -> tuple[set[str], set[str]]:
    """The orders a clip's readings show (`date_order_shown`): those shown by at least two
    readings of one clock (their offsets agree), and those shown by any reading at all. A
    single reading with a day above 12 may be a misread ("16/05" for "06/05"): it is no
    evidence of an order, but it is a doubt."""
    shown: dict[str, list[float]] = {}
    for t, when, fmt in readings:
        order = date_order_shown(when, fmt)
        if order is not None:
            shown.setdefault(order, []).append((when - _EPOCH).total_seconds() - t)
    confirmed = {order for order, offsets in shown.items()
                 if any(abs(a - b) <= SAME_CLOCK_S
                        for i, a in enumerate(offsets) for b in offsets[i + 1:])}
    return confirmed, set(shown)


def date_order_shown(when: datetime, fmt: str) -> str | None:
    """The order ("DD/MM" or "MM/DD") a slashed reading shows beyond doubt: only a day above
    12 does (05/05 is either way round, and a reading put in order by other readings or
    clips is no evidence of its own)."""
    if AMBIGUOUS in fmt or date_shape(fmt) is None or when.day <= 12:
        return None
    return fmt[:5]


def resolve_date_order(readings: list[tuple[float, datetime, str]],
                       orders: dict[str, str] | None = None, label: str | None = None,
                       ) -> tuple[list[tuple[float, datetime, str]], bool, str | None]:
    """Readings whose day and month could be either way round take the order the clip's
    other readings show (a day above 12, on two readings of one clock at least:
    `orders_shown`); with none, the order `orders` gives for their shape on the clip's camera
    label (`order_key`: what the vault's other clips of that camera and shape all show); with
    neither, or with readings that show both orders or an order only once, they are dropped —
    a date a month off is worse than none. The clock's weekday, where it falls on one way
    round only (`WEEKDAY_SAYS`), is the clip's own evidence too: two readings it decides
    settle the order, and one that says the other order leaves the clip unplaced, whatever
    other clips or a person said. Returns the readings kept, whether some were dropped as
    ambiguous, and the order taken from `orders`, if any."""
    from collections import Counter

    ambiguous = [r for r in readings if AMBIGUOUS in r[2]]
    if not ambiguous:
        return readings, False, None
    confirmed, shown = orders_shown(readings)
    shape = Counter(date_shape(r[2]) for r in ambiguous).most_common(1)[0][0]
    key = order_key(shape, label) if shape else None
    # the clip's camera's order, else the order a person said for every camera
    vault_order = ((orders or {}).get(key) if key else None) or (orders or {}).get(shape or "")
    from_vault = None
    # what the clock's weekday says, reading by reading (`WEEKDAY_SAYS`)
    said = Counter(m.group(1) + "/" + m.group(3) for r in ambiguous
                   if (m := _WEEKDAY_SAYS.search(r[2])) is not None)
    if len(shown) == 1 and confirmed == shown:
        sure = shown
    elif len(said) == 1 and max(said.values()) >= 2 and shown <= set(said):
        sure = set(said)  # two readings' weekdays, and no day above 12 against them
    elif len(shown) <= 1 and vault_order in ("DD/MM", "MM/DD") and shown <= {vault_order}:
        sure, from_vault = {vault_order}, vault_order
    else:
        return [r for r in readings if AMBIGUOUS not in r[2]], True, None
    if set(said) - sure:
        # the clock's own weekday says the other order on some frame: nothing from the
        # other readings, clips or a person overrides what the clip itself shows
        return [r for r in readings if AMBIGUOUS not in r[2]], True, None
    us = sure == {"MM/DD"}
    out = []
    for t, when, fmt in readings:
        if AMBIGUOUS in fmt:
            fmt = _WEEKDAY_SAYS.sub("", fmt.replace(AMBIGUOUS, ""))
            if us:
                when = when.replace(month=when.day, day=when.month)
                fmt = "MM" + fmt[2:3] + "DD" + fmt[5:]
        out.append((t, when, fmt))
    return out, False, from_vault


@dataclass(frozen=True)
class ClockReading:
    t: float  # video time (s)
    clock: datetime
    fmt: str  # e.g. "DD-MM-YYYY"


def parse_clock(text: str) -> tuple[datetime, str] | None:
    """The date-time in `text` and its format name, or None."""
    # Look-alikes are fixed only in tokens that hold digits, so weekday names survive; the
    # weekday is looked for before (a weekday glued to the digits, "2021Fri", would be "Fr1")
    weekday = weekday_read(text)
    fixed = " ".join(tok.translate(_DIGIT_FIXES) if any(c.isdigit() for c in tok) else tok
                     for tok in text.split())
    named = _parse_named(fixed, weekday)
    if named is not None:
        return named
    for order, pattern in _PATTERNS:
        m = pattern.search(fixed)
        if m is None:
            continue
        if order == "Y":
            y, s1, mo, s2, d, hh, mm, ss = m.groups()
            fmt = f"YYYY{s1}MM{s2}DD"
        else:
            d, s1, mo, s2, y, hh, mm, ss = m.groups()
            fmt = f"DD{s1}MM{s2}YYYY"
            if int(mo) > 12 >= int(d) and (
                    s1 == "/" or (weekday is not None and _weekday_of(y, mo, d) == weekday)):
                # no month 13: the recorder writes the month first. Slashes: the American
                # order. Dashes (a recorders' factory setting, MM-DD-YYYY Ddd) only when the
                # clock's weekday falls on that date: a day-first clock whose month misreads
                # alike on every frame (05-10 read 05-18, a bitmap 0 for an 8) reads so too
                d, mo, fmt = mo, d, f"MM{s1}DD{s2}YYYY"
            elif s1 == "/" and int(d) <= 12 and int(mo) <= 12 and d != mo:
                # 06/12/2021: the 6th of December, or June the 12th? Slashes are the US
                # order as often as the European one; the clip's other readings may tell.
                fmt += AMBIGUOUS
        if s1 != s2:
            continue
        hour = int(hh)
        ampm = _AMPM.search(fixed[m.end():m.end() + 6])
        if ampm is not None and hour <= 12:
            hour = hour % 12 + (12 if ampm.group(1).lower() in "pр" else 0)
            fmt += " 12h"
        try:
            when = datetime(int(y), int(mo), int(d), hour, int(mm), int(ss))
        except ValueError:
            continue
        if not 1990 <= when.year <= 2100:
            continue
        return when, _with_weekday_check(fmt, weekday, when)
    return None


def _weekday_of(y: str, d: str, mo: str) -> int | None:
    try:
        return datetime(int(y), int(mo), int(d)).weekday()
    except ValueError:
        return None


def _with_weekday_check(fmt: str, weekday: int | None, when: datetime) -> str:
    """`fmt` with what the clock's weekday says of the reading (before any " 12h"): marked
    `WEEKDAY_DISAGREES` when the date does not fall on it (an `AMBIGUOUS` date: neither way
    round); an ambiguous date that falls on it one way round only says which
    (`WEEKDAY_SAYS`)."""
    if weekday is None:
        return fmt
    base, twelve = (fmt.removesuffix(" 12h"), " 12h") if fmt.endswith(" 12h") else (fmt, "")
    swapped = _swapped(when) if AMBIGUOUS in fmt else None
    as_read = when.weekday() == weekday
    other = swapped is not None and swapped.weekday() == weekday
    if not as_read and not other:
        return base + WEEKDAY_DISAGREES + twelve
    if AMBIGUOUS in fmt and as_read != other:
        day_first = fmt.startswith("DD") == as_read
        sep = fmt[2]
        return base + WEEKDAY_SAYS + ("DD" + sep + "MM" if day_first else "MM" + sep + "DD") \
            + twelve
    return fmt


def _parse_named(fixed: str, weekday: int | None = None) -> tuple[datetime, str] | None:
    """A date with the month spelled out (`14 мар 2020`, `Sat Mar 14 2020`)."""
    for order, pattern in _NAMED:
        for m in pattern.finditer(fixed):
            if order == "DMonY":
                d, word, y, hh, mm, ss = m.groups()
                fmt = "DD Mon YYYY"
            else:
                word, d, y, hh, mm, ss = m.groups()
                fmt = "Mon DD YYYY"
            month = _month(word)
            if month is None:
                continue
            hour = int(hh)
            ampm = _AMPM.search(fixed[m.end():m.end() + 6])
            if ampm is not None and 1 <= hour <= 12:
                hour = hour % 12 + (12 if ampm.group(1).lower() in "pр" else 0)
                fmt += " 12h"
            try:
                when = datetime(int(y), month, int(d), hour, int(mm), int(ss))
            except ValueError:
                continue
            if 1990 <= when.year <= 2100:
                return when, _with_weekday_check(fmt, weekday, when)
    return None


#: A clock pinned to within this (seconds) was pinned by readings either side of a tick.
FRAME_EXACT = 0.21


@dataclass
class FittedSegment:
    start_s: float
    end_s: float
    clock_start: datetime
    clock_end: datetime
    fmt: str
    readings: int
    confidence: float
    #: where within its second the clock was at start_s (0 ≤ phase < 1): the clock shows
    #: clock_start + floor(phase + t − start_s) at video time t
    phase: float = 0.0


def offset_groups(readings: list[ClockReading], tolerance: float = SAME_CLOCK_S
                  ) -> list[list[ClockReading]]:
    """Readings in video-time order, cut where the clock's offset from video time moves by
    more than `tolerance` (the groups `fit_segments` starts from)."""
    groups: list[list[ClockReading]] = []
    for r in sorted(readings, key=lambda r: r.t):
        off = offset_of(r)
        if groups and abs(off - statistics.median(offset_of(x) for x in groups[-1])) <= tolerance:
            groups[-1].append(r)
        else:
            groups.append([r])
    return groups


def fit_segments(readings: list[ClockReading], duration: float, *, tolerance: float = SAME_CLOCK_S,
                 read_at: list[float] | None = None, read_otherwise: list[float] | None = None
                 ) -> tuple[list[FittedSegment], int]:
    """Segments of constant clock offset, and how many readings were rejected as outliers.
    `read_at`: the video times of every frame read (with a reading or not);
    `read_otherwise`: times of frames whose reading was set aside before (a segment never
    reaches over them)."""
    if not readings:
        return [], 0
    rs = sorted(readings, key=lambda r: r.t)
    groups = offset_groups(rs, tolerance)
    # A lone reading between agreeing neighbours is a misread, not a jump; and a clip with a
    # single reading in all has nothing to confirm it: no time is better than a wrong one.
    kept = [g for g in groups if len(g) >= 2]
    merged: list[list[ClockReading]] = []
    for g in kept:
        if merged and abs(statistics.median(map(offset_of, merged[-1]))
                          - statistics.median(map(offset_of, g))) <= tolerance:
            merged[-1].extend(g)
        else:
            merged.append(g)
    merged = [part for g in merged for part in _split_at_step(g)]
    merged = [g for g in (_consistent(g) for g in merged) if len(g) >= 2]
    rejected = len(rs) - sum(len(g) for g in merged)
    # A segment reaches no further than the frames read either side of its readings: where
    # readings stop (the overlay moved, the recorder was reset), the rest of the clip is not
    # assumed to carry on the same clock.
    # A frame whose reading was rejected said something else: the segment stops at its own
    # readings there; a frame with no reading at all bounds it.
    tried = sorted(read_at) if read_at else []
    read = [r.t for r in rs] + list(read_otherwise or [])
    segments = []
    for i, g in enumerate(merged):
        # where the clock jumped between two readings is not known: the time between the
        # last reading before the jump and the first after it belongs to neither segment
        start = 0.0 if i == 0 else g[0].t
        end = g[-1].t if i + 1 < len(merged) else duration
        if i == 0 and tried and g[0].t > tried[0] + 1e-6:
            prev = max(t for t in tried if t < g[0].t - 1e-6)
            start = g[0].t if any(r <= prev + 1e-6 for r in read) else prev
        if i + 1 == len(merged) and tried and g[-1].t < tried[-1] - 1e-6:
            nxt = min(t for t in tried if t > g[-1].t + 1e-6)
            end = g[-1].t if any(r >= nxt - 1e-6 for r in read) else nxt
        # clock(t) = floor(c0 + t): each reading bounds c0 to [clock - t, clock - t + 1); the
        # middle of what all of them leave is at most half a second from the truth. Readings
        # on two frames either side of a tick (`ocr._tick`) narrow it to a frame: then the
        # tick is put on the first frame that shows the new second, as a viewer sees it.
        # Readings far apart can narrow it as much (a segment after a jump, read every 3 s):
        # then no frame pair shows where the tick is, and the middle is nearest the truth.
        lo = max(offset_of(r) for r in g)
        hi = min(offset_of(r) + 1 for r in g)
        # Only at a whole number of frames a second does the tick fall on the same frame of
        # every second (at 12.5 fps it alternates: the middle is right then too).
        pinned = hi - lo <= FRAME_EXACT and any(
            0 < abs(a.t - b.t) <= FRAME_EXACT and _whole_rate(abs(a.t - b.t))
            for a in g if offset_of(a) >= lo - 1e-9 for b in g if offset_of(b) + 1 <= hi + 1e-9)
        c0 = lo + 1e-6 if pinned else (lo + hi) / 2
        fmt = statistics.mode(r.fmt for r in g)
        covered = sum(1 for r in rs if start <= r.t <= end)
        at_start = c0 + start
        segments.append(FittedSegment(
            start_s=round(start, 3), end_s=round(end, 3),
            clock_start=_at(at_start), clock_end=_at(c0 + max(start, end - 1e-3)),
            fmt=fmt, readings=len(g), confidence=round(len(g) / max(1, covered), 3),
            phase=round(at_start - at_start // 1, 6) % 1.0))
    return segments, rejected


def _whole_rate(frame_s: float) -> bool:
    """Whether frames `frame_s` apart come a whole number of times a second (6, 10, 25 fps;
    not 12.5), within the rounding of the frame times."""
    rate = 1 / frame_s
    return abs(rate - round(rate)) < 0.02 * rate


#: Readings either side of a step of the clock too small to part offset groups (a clock set
#: back or on by a second: a time server's correction) needed to split there.
STEP_SIDE = 3


def _split_at_step(group: list[ClockReading]) -> list[list[ClockReading]]:
    """`group` (in time order) as one list, or as two at the first point where the readings
    before and the readings after are each explained by one clock and all of them are not:
    the clock stepped by about a second there. Without it, as many readings from both sides
    as from one side alone could be kept as one clock, a second off over half the clip."""
    group = sorted(group, key=lambda r: r.t)
    if len(group) < 2 * STEP_SIDE or len(_consistent(group)) == len(group):
        return [group]
    for k in range(STEP_SIDE, len(group) - STEP_SIDE + 1):
        before, after = group[:k], group[k:]
        if len(_consistent(before)) == k and len(_consistent(after)) == len(after):
            # a step, not two readings a hair either side of a tick (frame times rounded)
            lo_b, hi_b = max(map(offset_of, before)), min(offset_of(r) + 1 for r in before)
            lo_a, hi_a = max(map(offset_of, after)), min(offset_of(r) + 1 for r in after)
            if max(lo_b - hi_a, lo_a - hi_b) >= STEP_MIN_S:
                return [before, after]
    return [group]


#: The least step of a clock that splits a segment (`_split_at_step`), in seconds.
STEP_MIN_S = 0.5


def _consistent(group: list[ClockReading]) -> list[ClockReading]:
    """The most readings of a group that one clock can explain: those whose one-second
    windows for c0 share a point (a second misread by one is dropped, not averaged in)."""
    best: list[ClockReading] = []
    for r in group:  # the shared point, if any, is one of the windows' left ends
        c0 = offset_of(r)
        fits = [x for x in group if offset_of(x) <= c0 + 1e-9 < offset_of(x) + 1]
        if len(fits) > len(best):
            best = fits
    return best


_EPOCH = datetime(1970, 1, 1)


def offset_of(r: ClockReading) -> float:
    """The clock's offset from video time at a reading (seconds)."""
    return (r.clock - _EPOCH).total_seconds() - r.t


def _at(seconds: float) -> datetime:
    return _EPOCH + timedelta(seconds=int(seconds // 1))
