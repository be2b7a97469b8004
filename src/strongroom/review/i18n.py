"""Interface strings in English (the msgids) and Russian, through gettext catalogues.

The Russian catalogue is `locale/ru/LC_MESSAGES/messages.po`, edited as a PO file (Babel's
`pybabel extract -F babel.cfg` finds new strings in the templates and `_()` calls); it is
compiled with Babel when the app starts, so no compiled `.mo` is kept in the repository.
"""

from __future__ import annotations

import gettext
import io
from contextvars import ContextVar
from functools import cache
from pathlib import Path

LOCALE_DIR = Path(__file__).parent / "locale"
current_locale: ContextVar[str] = ContextVar("strongroom_locale", default="en")


@cache
def translations(locale: str) -> gettext.NullTranslations:
    po = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if locale == "en" or not po.is_file():
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as f:
        catalog = read_po(f, locale=locale)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def _(message: str) -> str:
    return translations(current_locale.get()).gettext(message)


@cache
def interface_messages() -> frozenset[str]:
    """Every msgid of the catalogue: the interface's own strings."""
    from babel.messages.pofile import read_po

    po = LOCALE_DIR / "ru" / "LC_MESSAGES" / "messages.po"
    if not po.is_file():
        return frozenset()
    with po.open("rb") as f:
        return frozenset(m.id for m in read_po(f, locale="ru") if isinstance(m.id, str) and m.id)


def page_gettext(message: str) -> str:
    """`_` for the templates. Jinja's i18n extension marks what gettext returns as safe HTML
    (it trusts the catalogue), so a template's `_(value)` on a stored word (a custom abuse
    type, a status) would put that word into the page unescaped: stored XSS. Only the
    catalogue's own strings pass as they are; anything else comes back escaped, with its `%`
    doubled (the extension always %-formats the result: "100%" or "%(x)s" was a 500)."""
    from markupsafe import escape

    translated = _(message)
    if message in interface_messages():
        return translated
    return escape(translated).replace("%", "%%")


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current_locale.get()).ngettext(singular, plural, n)
