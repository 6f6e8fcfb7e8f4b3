"""Extract translatable messages and update the zh-CN catalog (dev-only script).

python tools/i18n.py          # update src/zhishe/locale/zh_CN/LC_MESSAGES/messages.po
python tools/i18n.py --check  # exit 1 if a message lacks a translation
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "zhishe"
PO = SRC / "locale" / "zh_CN" / "LC_MESSAGES" / "messages.po"
METHODS = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "T": None}


def extract() -> list[str | tuple[str, str]]:
    """Every message id in the code and templates, in a stable order (plural ones as a pair)."""
    found: dict[str, str | tuple[str, str]] = {}
    options = {"**/templates/**.html": {"extensions": "", "trim_blocks": "true", "lstrip_blocks": "true"}}
    for _file, _line, message, _comments, _context in extract_from_dir(
        SRC, method_map=METHODS, options_map=options, keywords=KEYWORDS
    ):
        key = message[0] if isinstance(message, tuple) else message
        if key:
            plural = isinstance(message, tuple) and len(message) > 1 and message[1]
            found.setdefault(key, (message[0], message[1]) if plural else key)
    return list(found.values())


def load() -> Catalog:
    """The current zh-CN catalog (empty if there is none)."""
    if not PO.exists():
        return Catalog(locale="zh_CN")
    with PO.open("rb") as handle:
        return read_po(handle)


def _key(message: str | tuple[str, str]) -> str:
    return message if isinstance(message, str) else message[0]


def _translated(string: object) -> bool:
    return all(string) if isinstance(string, tuple | list) else bool(string)


def missing(messages: list[str | tuple[str, str]], catalog: Catalog) -> list[str]:
    """Messages with no translation (for a plural one, with any form missing)."""
    gaps = []
    for m in messages:
        found = catalog.get(_key(m))
        if not (found and _translated(found.string)):
            gaps.append(_key(m))
    return gaps


def main() -> int:
    messages = extract()
    catalog = load()
    if "--check" in sys.argv:
        gaps = missing(messages, catalog)
        for m in gaps:
            print(f"untranslated: {m!r}")
        return 1 if gaps else 0
    updated = Catalog(locale="zh_CN", project="zhishe", charset="utf-8")
    for m in messages:
        old = catalog.get(_key(m))
        if isinstance(m, tuple):
            forms = (
                old.string if old and isinstance(old.string, tuple | list) else (old.string if old else "",)
            )
            updated.add(m, string=tuple(forms[: updated.num_plurals]) or ("",))
        else:
            string = old.string if old else ""
            updated.add(m, string=string[0] if isinstance(string, tuple | list) else string)
    PO.parent.mkdir(parents=True, exist_ok=True)
    with PO.open("wb") as handle:
        write_po(handle, updated, width=0, omit_header=False, sort_output=False)
    print(
        f"{len(messages)} messages, {len(missing(messages, updated))} untranslated -> {PO.relative_to(ROOT)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
