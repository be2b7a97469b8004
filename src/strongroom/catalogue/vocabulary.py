"""Vocabularies: the abuse types an incident is tagged with and the types of facility, each a
list of terms with a stable code and an English and a Russian label.

Strongroom ships a default list of each (`SHIPPED`), drawn from human-rights documentation
practice: the abuse types after HURIDOCS' "types of acts" micro-thesaurus, narrowed to what
prison CCTV shows; the facility types after the institutions of the Russian penitentiary
system (and the police and migration cells around it). A vault changes its lists through this
module only: an admin adds a term, relabels one or retires one. The shipped lists stay in code
and the table `vocabulary_term` holds the vault's changes, each an `annotated` custody event
(kind "vocabulary"), so `verify` catches a term edited by hand and every version is kept.

Records hold a term's code, never its label, so relabelling changes what people read and
nothing a record says. A retired term stays valid on the records that have it and is no longer
offered for new ones. A code, once shipped, is never removed from `SHIPPED` (a test pins them):
old records must keep meaning what they meant.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from strongroom.catalogue.models import VocabularyTerm
from strongroom.errors import StrongroomError
from strongroom.vault import Vault

#: The vocabularies, and what one of their terms is called in a message.
KINDS = {"abuse": "abuse type", "facility": "facility type"}
LOCALES = ("en", "ru")
#: A code: lower-case letters (Latin or Cyrillic), digits, spaces, hyphens; the shipped abuse
#: codes are the words incidents already carry ("sexual violence").
CODE = re.compile(r"[a-zа-яё0-9][a-zа-яё0-9 \-]{0,62}[a-zа-яё0-9]|[a-zа-яё0-9]")
MAX_LABEL = 200


@dataclass(frozen=True)
class Term:
    kind: str
    code: str
    en: str
    ru: str
    retired: bool = False
    #: shipped with Strongroom (False: this vault added it)
    shipped: bool = True

    def label(self, locale: str) -> str:
        return self.ru if locale == "ru" else self.en

    def to_json(self, locale: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "code": self.code, "en": self.en,
                               "ru": self.ru, "retired": self.retired,
                               "shipped": self.shipped}
        if locale is not None:
            out["label"] = self.label(locale)
        return out


def _shipped(kind: str, rows: list[tuple[str, str, str]]) -> dict[str, Term]:
    return {code: Term(kind, code, en, ru) for code, en, ru in rows}


#: The default lists: (code, English label, Russian label). Never remove a code (see above).
SHIPPED: dict[str, dict[str, Term]] = {
    "abuse": _shipped("abuse", [
        ("beating", "Beating", "Избиение"),
        ("torture", "Torture", "Пытка"),
        ("rape", "Rape", "Изнасилование"),
        ("sexual violence", "Sexual violence", "Сексуальное насилие"),
        ("humiliation", "Humiliation", "Унижение"),
        ("threats", "Threats", "Угрозы"),
        ("restraint", "Restraint (binding, handcuffing, stretching)",
         "Фиксация (связывание, наручники, растяжка)"),
        ("denial of medical care", "Denial of medical care", "Отказ в медицинской помощи"),
        ("death in custody", "Death in custody", "Смерть под стражей"),
        ("forced labour", "Forced labour", "Принудительный труд"),
        ("ill-treatment", "Cruel, inhuman or degrading treatment",
         "Жестокое, бесчеловечное или унижающее достоинство обращение"),
        ("forced nudity", "Forced nudity", "Принудительное раздевание"),
        ("solitary confinement", "Solitary confinement (ShIZO, PKT)",
         "Одиночное заключение (ШИЗО, ПКТ)"),
        ("deprivation of food or water", "Deprivation of food, water or sleep",
         "Лишение еды, воды или сна"),
        ("extortion", "Extortion", "Вымогательство"),
    ]),
    "facility": _shipped("facility", [
        ("penal colony", "Penal colony (IK)", "Исправительная колония (ИК)"),
        ("pre-trial detention", "Pre-trial detention centre (SIZO)",
         "Следственный изолятор (СИЗО)"),
        ("pre-trial cell in a colony", "Pre-trial unit in a colony (PFRSI)",
         "Помещение, функционирующее в режиме СИЗО (ПФРСИ)"),
        ("prison", "Prison (T)", "Тюрьма (Т)"),
        ("prison hospital", "Prison hospital (LPU)",
         "Лечебно-профилактическое учреждение (ЛПУ)"),
        ("tuberculosis hospital", "Tuberculosis hospital (OTB)",
         "Противотуберкулёзная больница (ОТБ)"),
        ("medical colony", "Medical correctional institution (LIU)",
         "Лечебное исправительное учреждение (ЛИУ)"),
        ("temporary detention", "Temporary detention facility (IVS)",
         "Изолятор временного содержания (ИВС)"),
        ("settlement colony", "Settlement colony (KP)", "Колония-поселение (КП)"),
        ("educational colony", "Educational colony for minors (VK)",
         "Воспитательная колония (ВК)"),
        ("correctional centre", "Correctional centre (ITs)", "Исправительный центр (ИЦ)"),
        ("special detention centre", "Special detention centre (administrative arrest)",
         "Специальный приёмник (административный арест)"),
        ("foreign nationals centre", "Detention centre for foreign nationals (TsVSIG)",
         "Центр временного содержания иностранных граждан (ЦВСИГ)"),
        ("psychiatric hospital", "Psychiatric hospital (specialised, with intensive "
                                 "supervision)", "Психиатрическая больница специализированного "
                                                 "типа с интенсивным наблюдением"),
        ("police station", "Police station", "Отдел полиции"),
    ]),
}


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise StrongroomError(f"unknown vocabulary {kind!r} (one of: {', '.join(KINDS)})")
    return kind


def _label(value: str | None, what: str) -> str:
    """A label as kept: single spaces, printable, not empty, at most MAX_LABEL characters."""
    text = " ".join((value or "").split())
    if not text or not text.isprintable():
        raise StrongroomError(f"the {what} must be printable and not empty")
    if len(text) > MAX_LABEL:
        raise StrongroomError(f"the {what} is {len(text)} characters long; at most {MAX_LABEL}")
    return text


def _code(value: str) -> str:
    code = " ".join(value.split()).lower()
    if not CODE.fullmatch(code):
        raise StrongroomError(
            f"{value!r} is not a term code: 1–64 lower-case letters, digits, spaces or "
            "hyphens, starting and ending with a letter or digit")
    return code


def all_terms(s: Session, kind: str) -> dict[str, Term]:
    """Every term of `kind`, retired ones too: the shipped list with this vault's changes."""
    out = dict(SHIPPED[_kind(kind)])
    for row in s.scalars(select(VocabularyTerm).where(VocabularyTerm.kind == kind)):
        out[row.code] = Term(kind, row.code, row.label_en, row.label_ru, bool(row.retired),
                             shipped=row.code in SHIPPED[kind])
    return out


def terms(s: Session, kind: str, *, retired: bool = False) -> list[Term]:
    """The terms of `kind` offered for new records (with `retired`, all of them), in the
    shipped order, then the vault's own in the order they were added."""
    return [t for t in all_terms(s, kind).values() if retired or not t.retired]


def listing(vault: Vault, kind: str | None = None, locale: str = "en", *,
            retired: bool = False) -> list[dict[str, Any]]:
    """`terms` of one vocabulary (or both), as plain data with the label in `locale`."""
    if locale not in LOCALES:
        raise StrongroomError(f"unknown language {locale!r} (one of: {', '.join(LOCALES)})")
    with vault.catalogue.read() as s:
        return [t.to_json(locale) for k in ([_kind(kind)] if kind else list(KINDS))
                for t in terms(s, k, retired=retired)]


def labels(s: Session, kind: str, locale: str) -> dict[str, str]:
    """code → label in `locale`, retired terms too (old records still show theirs)."""
    return {code: t.label(locale) for code, t in all_terms(s, kind).items()}


def check(s: Session, kind: str, code: str, *, allow_retired: bool = False) -> str:
    """`code` if it names an offered term of `kind` (or a retired one, with `allow_retired`:
    a record that already has it); else one clear error naming the offered codes. A term's
    English or Russian label, or the abbreviation in its label ("СИЗО", "OTB"), is taken for
    its code, so people may type what they call it."""
    known = all_terms(s, kind)
    wanted = " ".join(code.split()).casefold()
    term = known.get(wanted) or next(
        (t for t in known.values() if wanted in _names(t)), None) if wanted else None
    if term is None:
        offered = ", ".join(t.code for t in known.values() if not t.retired)
        raise StrongroomError(f"unknown {KINDS[kind]} {code.strip()!r} (one of: {offered})")
    if term.retired and not allow_retired:
        raise StrongroomError(f"the {KINDS[kind]} {term.code!r} is retired: choose another")
    return term.code


def check_many(s: Session, kind: str, codes: Iterable[str], *, keep: Iterable[str] = ()
               ) -> list[str]:
    """`check` for each of `codes` (blanks dropped), sorted, without repeats; a code in
    `keep` (what the record already has) may be a retired term. For incidents:
    `abuse_types = check_many(s, "abuse", new.abuse_types, keep=inc.abuse_types or ())`."""
    kept = set(keep)
    return sorted({check(s, kind, c, allow_retired=" ".join(c.split()).casefold() in kept)
                   for c in codes if c.strip()})


def _names(t: Term) -> set[str]:
    names = {t.code, t.en.casefold(), t.ru.casefold()}
    for label in (t.en, t.ru):
        names.update(m.casefold() for m in re.findall(r"\(([^()]{1,12})\)", label))
    return names


def _row(s: Session, kind: str, code: str) -> VocabularyTerm | None:
    return s.scalar(select(VocabularyTerm).where(VocabularyTerm.kind == kind,
                                                 VocabularyTerm.code == code))


def add(vault: Vault, kind: str, code: str, *, en: str, ru: str,
        actor: str | None = None) -> dict[str, Any]:
    """A new term of `kind` (logged). Its code must be new, and so must its labels: two terms
    people cannot tell apart in a form are one term."""
    kind, code = _kind(kind), _code(code)
    en, ru = _label(en, "English label"), _label(ru, "Russian label")
    with vault.write() as s:
        known = all_terms(s, kind)
        if code in known:
            raise StrongroomError(f"the {KINDS[kind]} {code!r} exists already"
                                  + (" (retired: restore it)" if known[code].retired else ""))
        _labels_free(known, None, en, ru, kind)
        row = VocabularyTerm(kind=kind, code=code, label_en=en, label_ru=ru, retired=False)
        s.add(row)
        s.flush()
        vault.annotate(s, "vocabulary", row.id, "added", actor=actor)
        return Term(kind, code, en, ru, shipped=False).to_json()


def _labels_free(known: dict[str, Term], code: str | None, en: str, ru: str,
                 kind: str) -> None:
    for other in known.values():
        if other.code == code:
            continue
        if en.casefold() == other.en.casefold() or ru.casefold() == other.ru.casefold():
            raise StrongroomError(f"the {KINDS[kind]} {other.code!r} already has that label")


def _change(vault: Vault, kind: str, code: str, what: str, actor: str | None,
            **values: Any) -> dict[str, Any]:
    kind = _kind(kind)
    with vault.write() as s:
        known = all_terms(s, kind)
        wanted = " ".join(code.split()).lower()
        term = known.get(wanted)
        if term is None:
            raise StrongroomError(f"unknown {KINDS[kind]} {code!r} (one of: "
                                  f"{', '.join(known)})")
        new = Term(kind, term.code, values.get("en", term.en), values.get("ru", term.ru),
                   values.get("retired", term.retired), shipped=term.shipped)
        if (new.en, new.ru, new.retired) == (term.en, term.ru, term.retired):
            raise StrongroomError(f"the {KINDS[kind]} {term.code!r} already says that")
        _labels_free(known, term.code, new.en, new.ru, kind)
        row = _row(s, kind, term.code)
        if row is None:  # a shipped term's first change
            row = VocabularyTerm(kind=kind, code=term.code)
            s.add(row)
        row.label_en, row.label_ru, row.retired = new.en, new.ru, new.retired
        s.flush()
        vault.annotate(s, "vocabulary", row.id, what, actor=actor)
        return new.to_json()


def relabel(vault: Vault, kind: str, code: str, *, en: str | None = None,
            ru: str | None = None, actor: str | None = None) -> dict[str, Any]:
    """New English and/or Russian labels for a term (logged); records keep its code."""
    values = {k: _label(v, f"{name} label") for k, v, name in
              (("en", en, "English"), ("ru", ru, "Russian")) if v is not None}
    if not values:
        raise StrongroomError("give a new English label, a new Russian label, or both")
    return _change(vault, kind, code, "relabelled", actor, **values)


def retire(vault: Vault, kind: str, code: str, *, actor: str | None = None
           ) -> dict[str, Any]:
    """Stop offering a term (logged); records that have it keep it."""
    return _change(vault, kind, code, "retired", actor, retired=True)


def restore(vault: Vault, kind: str, code: str, *, actor: str | None = None
            ) -> dict[str, Any]:
    """Offer a retired term again (logged)."""
    return _change(vault, kind, code, "restored", actor, retired=False)


def terms_text(rows: list[dict[str, Any]]) -> str:
    lines = []
    for r in rows:
        mark = "  (retired)" if r["retired"] else "" if r["shipped"] else "  (added)"
        lines.append(f"{r['kind']:<9} {r['code']:<28} {r['en']} / {r['ru']}{mark}")
    return "\n".join(lines) or "(no terms)"
