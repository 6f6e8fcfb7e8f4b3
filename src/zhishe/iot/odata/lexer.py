"""The tokenizer of ``$filter`` and ``$orderby`` expressions (OData 4.0 ABNF literals).

Literals: ``'text'`` (a quote inside is doubled: ``'O''Brien'``), integers, decimals with an
optional exponent, ``true``/``false``/``null`` (as words, decided by the parser), date-times with
an offset (``2026-11-01T00:00:00Z``, ``2026-11-01T08:00:00+08:00``; seconds and fractions
optional), dates (``2026-11-01``), times of day (``08:30:00``), intervals
(``2026-11-01T00:00:00Z/2026-11-02T00:00:00Z`` or ``…Z/P1D``), durations (``duration'P1DT2H'``)
and ``geography'POINT(30 10)'``. A date-time whose ``+`` offset arrived as a space (an unencoded
``+`` in a query string means a space) is read as the ``+`` offset it was meant to be.

Positions in messages count characters from 1.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal

from zhishe.iot.odata.ast import Duration, Geography, LiteralValue, TimeRange
from zhishe.iot.odata.errors import bad, shown

__all__ = ["MAX_INT", "Token", "check_text", "parse_duration", "tokenize"]

#: The largest integer literal: a signed 64-bit integer, what both SQLite and PostgreSQL hold.
MAX_INT = 2**63 - 1
_MAX_DIGITS = 19

_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?([Zz]|[+-]\d{2}:\d{2}| \d{2}:\d{2}(?![\d:]))",
    re.ASCII,
)
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?![\d:Tt])", re.ASCII)
_TIME = re.compile(r"(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(?![\d:])", re.ASCII)
_NUMBER = re.compile(r"\d+(\.\d+)?([eE][+-]?\d+)?", re.ASCII)
_WORD = re.compile(r"(?:[^\W\d]|@)[\w.@-]*")
_DURATION = re.compile(
    r"([-+]?)P(?:(\d{1,9})Y)?(?:(\d{1,9})M)?(?:(\d{1,9})W)?(?:(\d{1,9})D)?"
    r"(?:T(?:(\d{1,9})H)?(?:(\d{1,9})M)?(?:(\d{1,9}(?:\.\d{1,9})?)S)?)?",
    re.IGNORECASE | re.ASCII,
)
_PREFIXED = re.compile(r"(duration|geography|geometry)'", re.IGNORECASE)
_PUNCTUATION = frozenset("/(),")


@dataclass(frozen=True, slots=True)
class Token:
    """One token: ``kind`` is a literal kind, ``word``, one of ``/ ( ) , -``, or ``end``."""

    kind: str
    text: str
    position: int  # counted from 1
    value: LiteralValue = None


def check_text(option: str, text: str) -> None:
    """Refuse characters no database can be given: NUL and lone surrogates."""
    for index, char in enumerate(text):
        if char == "\x00" or "\ud800" <= char <= "\udfff":
            raise bad(option, f"character U+{ord(char):04X} at position {index + 1} is not allowed")


def parse_duration(option: str, text: str, position: int) -> Duration:
    """An ISO 8601 duration such as ``P1DT12H`` or ``-PT30M``."""
    match = _DURATION.fullmatch(text)
    if match is None or not any(match.groups()[1:]) or text.upper().endswith("T"):
        raise bad(option, f"{shown(text)} at position {position} is not an ISO 8601 duration such as P1DT2H")
    sign_text, years, months, weeks, days, hours, minutes, seconds = match.groups()
    sign = -1 if sign_text == "-" else 1
    total_months = int(years or 0) * 12 + int(months or 0)
    try:
        span = timedelta(
            weeks=int(weeks or 0),
            days=int(days or 0),
            hours=int(hours or 0),
            minutes=int(minutes or 0),
            seconds=float(Decimal(seconds or 0)),
        )
    except OverflowError as exc:
        raise bad(option, f"duration {shown(text)} at position {position} is too long") from exc
    return Duration(sign * total_months, sign * span, text)


def _moment(option: str, match: re.Match[str], position: int) -> datetime:
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        if offset in ("Z", "z"):
            zone: timezone = UTC
        else:
            sign = -1 if offset[0] == "-" else 1
            hours, minutes = int(offset[1:3]), int(offset[4:6])
            if hours > 23 or minutes > 59:
                raise ValueError("offset out of range")
            zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro, tzinfo=zone
        )
    except ValueError as exc:
        raise bad(option, f"{match.group(0)!r} at position {position} is not a valid date-time") from exc


def _quoted(option: str, text: str, start: int) -> tuple[str, int]:
    """The content of the quoted text whose opening quote is at ``start``, and the index after it."""
    parts: list[str] = []
    index = start + 1
    while True:
        end = text.find("'", index)
        if end < 0:
            raise bad(option, f"the text starting at position {start + 1} has no closing quote")
        parts.append(text[index:end])
        if text.startswith("''", end):
            parts.append("'")
            index = end + 2
            continue
        return "".join(parts), end + 1


def _number(option: str, text: str, position: int) -> int | float:
    if "." not in text and "e" not in text.lower():
        if len(text.lstrip("0")) > _MAX_DIGITS or int(text) > MAX_INT:
            raise bad(option, f"the number {text[:30]} at position {position} is too large")
        return int(text)
    value = float(text)
    if not math.isfinite(value):
        raise bad(option, f"the number {text[:30]} at position {position} is too large")
    return value


def tokenize(option: str, text: str) -> list[Token]:
    """The tokens of ``text``, ending with an ``end`` token; ``QueryError`` on a bad character."""
    check_text(option, text)
    tokens: list[Token] = []
    index, length = 0, len(text)
    while index < length:
        char = text[index]
        position = index + 1
        if char in " \t\r\n":
            index += 1
            continue
        if char in _PUNCTUATION or char == "-":
            tokens.append(Token(char, char, position))
            index += 1
            continue
        if char == "'":
            value, index = _quoted(option, text, index)
            tokens.append(Token("string", value, position, value))
            continue
        prefixed = _PREFIXED.match(text, index)
        if prefixed:
            value, index = _quoted(option, text, prefixed.end() - 1)
            if prefixed.group(1).lower() == "duration":
                tokens.append(Token("duration", value, position, parse_duration(option, value, position)))
            else:
                tokens.append(Token("geography", value, position, Geography(value)))
            continue
        if "0" <= char <= "9":
            token, index = _numeric(option, text, index)
            tokens.append(token)
            continue
        word = _WORD.match(text, index)
        if word:
            tokens.append(Token("word", word.group(0), position))
            index = word.end()
            continue
        raise bad(option, f"unexpected character {char!r} at position {position}")
    tokens.append(Token("end", "", length + 1))
    return tokens


def _numeric(option: str, text: str, index: int) -> tuple[Token, int]:
    """A token that starts with a digit: a date-time, interval, date, time of day or number."""
    position = index + 1
    moment = _DATETIME.match(text, index)
    if moment:
        start = _moment(option, moment, position)
        end_index = moment.end()
        if text.startswith("/", end_index):
            after = _DATETIME.match(text, end_index + 1)
            if after:
                end = _moment(option, after, end_index + 2)
                return _interval(option, text[index : after.end()], position, start, end), after.end()
            duration = _DURATION.match(text, end_index + 1)
            if duration and duration.group(0) and duration.end() > end_index + 2:
                span = parse_duration(option, duration.group(0), end_index + 2)
                try:
                    end = span.add_to(start)
                except OverflowError as exc:
                    raise bad(option, f"the interval at position {position} is out of range") from exc
                return _interval(option, text[index : duration.end()], position, start, end), duration.end()
        return Token("datetime", moment.group(0), position, start), end_index
    day = _DATE.match(text, index)
    if day:
        try:
            value: LiteralValue = date(int(day.group(1)), int(day.group(2)), int(day.group(3)))
        except ValueError as exc:
            raise bad(option, f"{day.group(0)!r} at position {position} is not a valid date") from exc
        return Token("date", day.group(0), position, value), day.end()
    clock = _TIME.match(text, index)
    if clock:
        hour, minute, second, fraction = clock.groups()
        try:
            value = time(int(hour), int(minute), int(second or 0), int((fraction or "0")[:6].ljust(6, "0")))
        except ValueError as exc:
            raise bad(option, f"{clock.group(0)!r} at position {position} is not a valid time") from exc
        return Token("time", clock.group(0), position, value), clock.end()
    number = _NUMBER.match(text, index)
    assert number is not None  # the text starts with a digit
    return Token(
        "number", number.group(0), position, _number(option, number.group(0), position)
    ), number.end()


def _interval(option: str, text: str, position: int, start: datetime, end: datetime) -> Token:
    if end < start:
        raise bad(option, f"the interval {text!r} at position {position} ends before it starts")
    return Token("interval", text, position, TimeRange(start, end))
