"""Header names: stripped of whitespace and BOM, and checked for blanks and duplicates."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from zhishe.catalog.ingest.errors import IngestError

__all__ = ["clean_name", "clean_names", "column_letter"]


def clean_name(name: str) -> str:
    """A header name without surrounding whitespace or byte-order mark."""
    return name.strip().strip("\ufeff").strip()


def column_letter(index: int) -> str:
    """Spreadsheet letters of a 0-based column index: 0 -> A, 27 -> AB."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _column(index: int) -> str:
    return f"column {index + 1}"


def clean_names(raw: Sequence[str | None], *, label: Callable[[int], str] = _column) -> list[str]:
    """Cleaned header names; IngestError if one is blank or two are the same once cleaned.

    `label` names a header position in messages ("column 3", or "cell C1" for spreadsheets).
    """
    names = [clean_name(name) if name is not None else "" for name in raw]
    for index, name in enumerate(names):
        if not name:
            raise IngestError(
                "blank_header",
                f"the header has no name in {label(index)}; give every column a name",
                position=index + 1,
            )
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in seen:
            first = seen[name]
            raise IngestError(
                "duplicate_header",
                f"the header names {name!r} twice, in {label(first)} and {label(index)}; "
                "every column needs its own name",
                name=name,
                positions=[first + 1, index + 1],
            )
        seen[name] = index
    return names
