"""Translations: messages are written in English in the code and templates, and translated from
the Babel catalogs in ``zhishe/locale/<lang>/LC_MESSAGES/messages.po`` (zh-CN is the default
language of the platform). ``tests/test_i18n.py`` checks that every message has a translation.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from babel.messages.pofile import read_po

from zhishe.core.context import current_language

__all__ = [
    "LANGUAGES",
    "Message",
    "T",
    "gettext",
    "language_from",
    "localize",
    "localize_stored",
    "ngettext",
    "stored",
    "translate",
]

LANGUAGES = ("zh-CN", "en")
_LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"


@lru_cache(maxsize=8)
def _catalog(language: str) -> dict[str, str | tuple[str, ...]]:
    path = _LOCALE_DIR / language.replace("-", "_") / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        return {}
    with path.open("rb") as handle:
        catalog = read_po(handle)
    out: dict[str, str | tuple[str, ...]] = {}
    for message in catalog:
        if not message.id or not message.string or message.fuzzy:
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        out[str(key)] = message.string if isinstance(message.string, str) else tuple(message.string)
    return out


def translate(message: str, language: str) -> str:
    """``message`` in ``language`` (the English text itself when there is no translation)."""
    if language == "en":
        return message
    found = _catalog(language).get(message)
    if isinstance(found, tuple):
        found = found[0]
    return found or message


def gettext(message: str, **values: object) -> str:
    """``message`` in the current request's language, with ``{name}`` placeholders filled."""
    text = translate(message, current_language.get())
    return text.format(**values) if values else text


def ngettext(singular: str, plural: str, n: int, **values: object) -> str:
    """The singular or plural form of a message in the current language."""
    language = current_language.get()
    found = _catalog(language).get(singular) if language != "en" else None
    if isinstance(found, tuple):
        text = found[0] if n == 1 or len(found) == 1 else found[1]
    else:
        text = singular if n == 1 else plural
    return text.format(n=n, **values)


def language_from(value: str | None) -> str | None:
    """A supported language code from a query value, cookie or Accept-Language header."""
    if not value:
        return None
    for part in value.split(","):
        code = part.split(";")[0].strip().lower()
        if code in {"zh", "zh-cn", "zh_cn", "zh-hans"}:
            return "zh-CN"
        if code.startswith("en"):
            return "en"
    return None


class Message(str):
    """A message that is English text and also remembers its template and values, so a page can
    show it in the reader's language. Create one with ``T("dataset {slug} does not exist", slug=...)``."""

    template: str
    values: dict[str, object]

    def __new__(cls, template: str, **values: object) -> Message:
        self = super().__new__(cls, template.format(**values) if values else template)
        self.template = template
        self.values = values
        return self


T = Message


def localize(message: str, language: str | None = None) -> str:
    """``message`` in ``language`` (default: the request's) when it is a ``Message`` with a
    translation; otherwise the text as it is."""
    if not isinstance(message, Message):
        return message
    text = translate(message.template, language or current_language.get())
    try:
        return text.format(**message.values) if message.values else text
    except (KeyError, IndexError, ValueError):
        return str(message)


def stored(message: str) -> dict[str, object]:
    """A message as JSON, to keep in the database and translate when it is shown."""
    if isinstance(message, Message):
        return {"template": message.template, "values": {k: str(v) for k, v in message.values.items()}}
    return {"template": str(message), "values": {}}


def localize_stored(data: object, fallback: str = "") -> str:
    """A stored message (see ``stored``) in the request's language; ``fallback`` if there is none."""
    if not isinstance(data, dict) or not isinstance(data.get("template"), str):
        return fallback
    values = data.get("values") or {}
    return localize(Message(data["template"], **values) if values else Message(data["template"]))
