"""The one exception of the import pipeline: a problem that makes the whole file unreadable.

Problems with single values (a word in an integer column) are never raised: they are collected as
`ImportIssue`s so that the good rows can still be imported and the bad ones listed.
"""

from __future__ import annotations

from typing import Any

from zhishe.core.errors import Invalid

__all__ = ["IngestError"]


class IngestError(Invalid):
    """The file as a whole cannot be read: empty, malformed, or not matching the dataset's schema.

    `message` says exactly what is wrong and where ("row 17 has 5 fields, the header has 4");
    `code` is a short stable identifier for programs and translations ("ragged_row"); `detail` is a
    JSON-serialisable dict with the facts behind the message (row, line, column names...) and the
    code again, so that the error envelope of the API carries it.
    """

    def __init__(self, code: str, message: str, **detail: Any) -> None:
        super().__init__(message, detail={"code": code, **detail})
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:
        # picklable (for process pools), although __init__ takes the code first
        detail = {k: v for k, v in self.detail.items() if k != "code"}
        return (_restore, (self.code, self.message, detail))

    def __repr__(self) -> str:
        return f"IngestError(code={self.code!r}, message={self.message!r})"


def _restore(code: str, message: str, detail: dict[str, Any]) -> IngestError:
    return IngestError(code, message, **detail)
