"""Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2) at ``/open311/v2``, with
FixMyStreet's ``servicerequestupdates`` extension (the routes that manage api_keys are in
``apikeys``).

Endpoints, each as ``.json`` or ``.xml``:

- ``GET services``: the active report categories; ``GET services/{service_code}``: its definition
  (the attributes, with ``values`` for the list datatypes).
- ``POST requests``: file a report. The body is form-encoded (``application/x-www-form-urlencoded``)
  or ``multipart/form-data`` with an optional ``media`` file (FixMyStreet's photo upload); the
  parameters may also come in the query string (the body wins). An ``api_key`` is required.
  Attributes are ``attribute[code]=value``; a multivaluelist takes ``attribute[code][]=v1&
  attribute[code][]=v2`` (or the same ``attribute[code]`` repeated). The answer is **201 Created**
  with ``[{service_request_id, service_notice, account_id}]``, or for a ``batch`` service
  ``[{token, service_notice, account_id}]``; ``GET tokens/{token}`` then gives the id.
- ``GET requests``: public requests, newest first. ``service_request_id`` (comma-separated; when
  given, every other filter is ignored), ``service_code`` (comma-separated), ``status``
  (``open``, ``closed`` or both, comma-separated), ``start_date`` and ``end_date`` on
  ``requested_datetime``. The window may span at most 90 days (400 above it); without dates it is
  the last 90 days (to ``end_date`` when only that is given, from ``start_date`` when only that
  is). Paging extension: ``page`` (from 1) and ``page_size`` (1 to 1,000, default 1,000 — the
  spec's cap); a full page carries ``Link: <…page=n+1…>; rel="next"``.
- ``GET requests/{service_request_id}``: one request, still as a list of one.
- ``GET servicerequestupdates`` (FixMyStreet): public timeline entries of public requests, oldest
  first, with the same date window and paging. ``status`` is Open311's binary open/closed; the
  platform's richer state (new, assigned, accepted, in_progress, waiting, resolved, closed,
  reopened, duplicate, rejected) is in the extra field ``state``.
- ``GET discovery`` (also at ``/open311/discovery``): the GeoReport discovery document.

Choices where the spec leaves room:

- Identifiers (``service_request_id``, ``update_id``, ``service_code``) are JSON strings.
- Every field is always present. A value that is absent or empty is JSON ``null`` and an empty XML
  element (``<address_id/>``), as in the spec's examples; booleans are ``true``/``false``; ``lat``,
  ``long`` and ``order`` are numbers.
- Times are ISO 8601 with the offset of the platform timezone (``ZHISHE_TIMEZONE``), e.g.
  ``2026-11-02T10:00:00+08:00``. Dates without an offset are read in that timezone; a ``+`` of an
  offset that arrives as a space (an unencoded query string) is read as ``+``.
- ``jurisdiction_id`` is accepted and ignored (one jurisdiction per server). ``lang=en`` (or
  ``Accept-Language: en``) gives service and agency names in English.
- Only public requests are served: a joint order's internal children never appear; neither does
  anything about the reporter (name, email, phone, device). ``agency_responsible`` is the name of
  the organisation working the request; ``media_url`` is the first photo
  (``/participate/photos/{id}``) or else the URL given when it was filed.
- Errors are ``[{"code", "description"}]`` (XML ``<errors><error><code/><description/></error>
  </errors>``) with the HTTP status equal to ``code``: 400 bad or missing parameter (the
  description names it), 403 missing, unknown or revoked ``api_key``, 404 unknown service, request,
  token or endpoint (an unknown format extension too), 405 wrong method, 413 body too large, 415
  body not form-encoded, 429 over the key's ``per_minute`` (with ``Retry-After``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Integer, bindparam, func, literal_column, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from zhishe.core import clock
from zhishe.core.accounts.models import Organisation
from zhishe.core.areas.models import Area
from zhishe.core.config import get_settings
from zhishe.core.context import current_language
from zhishe.core.db import MAX_ID, get_engine, get_sessionmaker
from zhishe.core.errors import Invalid, NotFound, ZhisheError
from zhishe.core.i18n import T, language_from, localize
from zhishe.core.web import routing
from zhishe.participation import apikeys, service
from zhishe.participation.models import ApiKey, Category, CategoryAttribute, Photo, RequestUpdate
from zhishe.participation.models import Request as ServiceRequest

__all__ = ["FORMATS", "MAX_PAGE_SIZE", "SPECIFICATION", "WINDOW", "Problem", "router", "xml_document"]

router = APIRouter()

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
PREFIX = "/open311/v2"
#: The widest date window of a list, and the default one.
WINDOW = timedelta(days=90)
#: The most records one list answer carries (the spec's cap).
MAX_PAGE_SIZE = 1000
#: The most pages one may ask for (1,000,000 records deep).
_MAX_PAGE = 1000
#: The most ids ``service_request_id`` may list.
_MAX_IDS = 1000
#: When this document (the discovery answer) last changed.
_CHANGESET = "2026-11-29T00:00:00+08:00"
FORMATS = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
_XML_HEAD = b'<?xml version="1.0" encoding="utf-8"?>'
#: The element of one item of each list, in XML.
_ITEM = {
    "services": "service",
    "attributes": "attribute",
    "values": "value",
    "service_requests": "request",
    "service_request_updates": "request_update",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
}
#: How the service's field names read as Open311 parameters.
_PARAMETER = {
    "lon": "long",
    "address": "address_string",
    "category_code": "service_code",
    "category": "service_code",
    "photos": "media",
    "name": "first_name",
}
_ATTRIBUTE = re.compile(r"attribute\[([^\[\]]+)\](\[\])?")
_ESCAPE = re.compile("[&<>\r]|[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_BAD_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SPACED_OFFSET = re.compile(r"^(.*\d) (\d\d:?\d\d)$")
_FORM_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}
_CLOSED = frozenset(service.CLOSED_STATES)


class Problem(Exception):
    """An Open311 error: an HTTP status that is also the ``code``, and a description."""

    def __init__(self, code: int, description: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(description)
        self.code = code
        #: In the request's language, when it is a translatable message (``T``).
        self.description = localize(description)
        self.headers = dict(headers or {})


# --- writing answers -----------------------------------------------------------------------------


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if _ESCAPE.search(text) is None:
        return text
    text = _BAD_XML.sub("\ufffd", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _element(out: list[str], name: str, value: Any) -> None:
    if value is None or value == "" or value == [] or value == {}:
        out.append(f"<{name}/>")
    elif value is True or value is False:
        out.append(f"<{name}>{'true' if value else 'false'}</{name}>")
    elif isinstance(value, dict):
        out.append(f"<{name}>")
        for key, item in value.items():
            _element(out, key, item)
        out.append(f"</{name}>")
    elif isinstance(value, list):
        item_name = _ITEM[name]
        out.append(f"<{name}>")
        for item in value:
            _element(out, item_name, item)
        out.append(f"</{name}>")
    else:
        out.append(f"<{name}>{_text(value)}</{name}>")


def xml_document(root: str, value: Any) -> bytes:
    """``value`` (a list of records, or one record) as the XML document ``<root>…</root>``."""
    out: list[str] = []
    _element(out, root, value)
    return _XML_HEAD + "".join(out).encode()


def _answer(
    fmt: str, root: str, value: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    body = xml_document(root, value) if fmt == "xml" else orjson.dumps(value)
    return Response(body, status_code=status, media_type=FORMATS[fmt], headers=dict(headers or {}))


def _error_answer(fmt: str, problem: Problem) -> Response:
    record = [{"code": problem.code, "description": problem.description}]
    return _answer(fmt if fmt in FORMATS else "json", "errors", record, problem.code, problem.headers)


def _problem(exc: ZhisheError, language: str, *, lookup_is_input: bool = False) -> Problem:
    """The Open311 error of a platform error; the description names the parameter at fault."""
    message = localize(exc.message, language)
    field = exc.detail.get("parameter") or exc.detail.get("field")
    if isinstance(field, str) and field:
        if re.fullmatch(r"photo\d+", field):
            field = "media"
        field = _PARAMETER.get(field, field)
        if not message.startswith(field):
            message = f"{field}: {message}"
    headers: dict[str, str] = {}
    code = exc.status_code
    if code == 429:
        retry = exc.detail.get("retry_after", 60)
        headers["Retry-After"] = str(max(1, int(retry))) if isinstance(retry, int | float) else "60"
    elif code in (401, 403):
        code = 403
    elif (code == 404 and lookup_is_input) or code not in (404, 413):
        code = 400
    return Problem(code, message, headers)


def _language(request: Request) -> str:
    """The language of the answer (``lang``, else ``Accept-Language``, else the platform's), made the
    request's language so that every message, ours and the services', is in it."""
    if "lang" not in request.query_params:
        header = request.headers.get("accept-language")
        chosen = language_from(header) if header else None
        if chosen:
            current_language.set(chosen)
    return current_language.get()


def _format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise Problem(404, T("unknown format {format}: use .json or .xml", format=repr(fmt[:20])))
    return fmt


def _base(request: Request) -> str:
    return str(request.base_url)


def _iso(moment: datetime | None, tz: Any) -> str | None:
    return moment.astimezone(tz).isoformat(timespec="seconds") if moment is not None else None


def _run(fmt: str, language: str, work: Callable[[Session], Response], *, write: bool = False) -> Response:
    """Run ``work`` on a fresh session (committed when it writes and succeeds) and turn any platform
    error into the Open311 error answer."""
    session = get_sessionmaker(get_settings().database_url)()
    try:
        answer = work(session)
        if write:
            session.commit()
        return answer
    except Problem as problem:
        session.rollback()
        return _error_answer(fmt, problem)
    except ZhisheError as exc:
        session.rollback()
        return _error_answer(fmt, _problem(exc, language, lookup_is_input=write))
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


async def _serve(request: Request, fmt: str, work: Callable[[Session, str, str], Response]) -> Response:
    """Check the format, then run ``work(session, fmt, language)`` off the event loop."""
    language = _language(request)
    try:
        fmt = _format(fmt)
        _no_nul(request.query_params.multi_items())
    except Problem as problem:
        return _error_answer(fmt, problem)
    return await run_in_threadpool(_run, fmt, language, lambda s: work(s, fmt, language))


def _read(fmt: str, language: str, work: Callable[[Connection], Response]) -> Response:
    """Run a read of public rows on a pooled connection (no ORM session: nothing is written)."""
    try:
        with get_engine(get_settings().database_url).connect() as connection:
            return work(connection)
    except Problem as problem:
        return _error_answer(fmt, problem)
    except ZhisheError as exc:
        return _error_answer(fmt, _problem(exc, language))


async def _serve_rows(
    request: Request, fmt: str, work: Callable[[Connection, str, str], Response]
) -> Response:
    """Check the format, then run the read ``work(connection, fmt, language)``: on the event loop for
    the embedded SQLite (a page is read from the local file in well under a millisecond, less than a
    hop to a worker thread costs), in the thread pool for a database across the network."""
    language = _language(request)
    try:
        fmt = _format(fmt)
        _no_nul(request.query_params.multi_items())
    except Problem as problem:
        return _error_answer(fmt, problem)
    if get_settings().database_url.startswith("sqlite"):
        return _read(fmt, language, lambda c: work(c, fmt, language))
    return await run_in_threadpool(_read, fmt, language, lambda c: work(c, fmt, language))


def _no_nul(items: Sequence[tuple[str, Any]]) -> None:
    for key, value in items:
        if (isinstance(value, str) and "\x00" in value) or "\x00" in key:
            raise Problem(400, T("{name}: NUL characters are not allowed", name=key.replace("\x00", "")[:60]))


# --- reading parameters --------------------------------------------------------------------------


def _csv(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _moment(value: str | None, name: str, tz: Any) -> datetime | None:
    text = (value or "").strip()
    if not text:
        return None
    spaced = _SPACED_OFFSET.match(text)
    if spaced:
        text = f"{spaced.group(1)}+{spaced.group(2)}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Problem(
            400,
            T(
                "{name}: {value} is not an ISO 8601 date and time (e.g. 2026-11-02T10:00:00+08:00)",
                name=name,
                value=repr(text[:40]),
            ),
        ) from None
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment


def _window(start_text: str | None, end_text: str | None, tz: Any) -> tuple[datetime, datetime]:
    """The date window of a list: at most 90 days; the last 90 days by default."""
    start = _moment(start_text, "start_date", tz)
    end = _moment(end_text, "end_date", tz)
    try:
        if start is None:
            end = end or clock.now().astimezone(tz)
            start = end - WINDOW
        if end is None:
            end = start + WINDOW
    except OverflowError:
        raise Problem(400, T("start_date, end_date: the dates are out of range")) from None
    if end < start:
        raise Problem(400, T("end_date: end_date is before start_date"))
    if end - start > WINDOW:
        raise Problem(400, T("start_date, end_date: the date range may span at most 90 days"))
    return start, end


def _whole(value: str | None, name: str, default: int, low: int, high: int) -> int:
    text = (value or "").strip()
    if not text:
        return default
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise Problem(
            400,
            T(
                "{name}: must be a whole number from {low} to {high}, not {value}",
                name=name,
                low=low,
                high=high,
                value=repr(text[:20]),
            ),
        )
    return int(text)


def _paging(page: str | None, page_size: str | None) -> tuple[int, int]:
    return (
        _whole(page, "page", 1, 1, _MAX_PAGE),
        _whole(page_size, "page_size", MAX_PAGE_SIZE, 1, MAX_PAGE_SIZE),
    )


def _ids(value: str) -> list[int]:
    parts = _csv(value)
    if len(parts) > _MAX_IDS:
        raise Problem(400, T("service_request_id: at most {n} ids at once", n=_MAX_IDS))
    ids = []
    for part in parts:
        if not (part.isascii() and part.isdigit()):
            raise Problem(
                400, T("service_request_id: {value} is not a service request id", value=repr(part[:20]))
            )
        if 0 < int(part) <= MAX_ID:
            ids.append(int(part))
    return ids


def _next_link(request: Request, page: int) -> dict[str, str]:
    query = [(k, v) for k, v in parse_qsl(request.url.query, keep_blank_values=True) if k != "page"]
    query.append(("page", str(page + 1)))
    return {"Link": f'<{request.url.replace(query=urlencode(query))}>; rel="next"'}


# --- services ------------------------------------------------------------------------------------


def _service_record(category: Category, has_attributes: bool, language: str) -> dict[str, Any]:
    return {
        "service_code": category.code,
        "service_name": category.name(language),
        "description": category.description(language) or None,
        "metadata": has_attributes,
        "type": category.type,
        "keywords": category.keywords or None,
        "group": category.group or None,
    }


def _attribute_record(attribute: CategoryAttribute) -> dict[str, Any]:
    return {
        "variable": attribute.variable,
        "code": attribute.code,
        "datatype": attribute.datatype,
        "required": attribute.required,
        "datatype_description": attribute.datatype_description or None,
        "order": attribute.order,
        "description": attribute.description or None,
        "values": [
            {"key": str(v.get("key", "")), "name": str(v.get("name", ""))} for v in attribute.values or []
        ],
    }


def _services(session: Session, fmt: str, language: str) -> Response:
    categories = service.list_categories(session=session, active_only=True)
    with_attributes = set(session.scalars(select(CategoryAttribute.category_id).distinct()))
    records = [_service_record(c, c.id in with_attributes, language) for c in categories]
    return _answer(fmt, "services", records)


def _definition(session: Session, fmt: str, code: str) -> Response:
    if "\x00" in code:
        raise Problem(404, T("service_code: no such service"))
    category = service.get_category(session=session, code=code)
    if not category.active:
        raise NotFound(T("no report category {code}", code=repr(code)), detail={"field": "service_code"})
    attributes = service.attributes_of(session=session, category_id=category.id)
    record = {"service_code": category.code, "attributes": [_attribute_record(a) for a in attributes]}
    return _answer(fmt, "service_definition", record)


# --- requests: reading ---------------------------------------------------------------------------

_R = ServiceRequest


def _plain(column: Any) -> Any:
    """``column`` in an expression no index serves (``x + 0``, ``x || ''``): so that the planner of
    SQLite (which keeps no statistics unless told to) walks the ``requested_at`` index in the order
    of the answer, instead of sorting every request of the window found through a barely selective
    index (``parent_id IS NULL``, a state, a category)."""
    if column.type.python_type is str:
        return column.op("||")(literal_column("''"))
    return column + literal_column("0")


_first_photo = (
    select(func.min(Photo.id))
    .where(Photo.request_id == _R.id, Photo.update_id.is_(None))
    .correlate(_R)
    .scalar_subquery()
)
#: Everything a request record shows: no personal data is even read.
_COLUMNS = (
    _R.id,
    _R.state,
    _R.status_notes,
    _R.description,
    _R.service_notice,
    _R.requested_at,
    _R.updated_at,
    _R.expected_at,
    _R.address,
    _R.zipcode,
    _R.lat,
    _R.lon,
    _R.media_url,
    Category.code.label("service_code"),
    Category.name_zh.label("service_zh"),
    Category.name_en.label("service_en"),
    Area.code.label("address_id"),
    Organisation.name_zh.label("agency_zh"),
    Organisation.name_en.label("agency_en"),
    _first_photo.label("photo_id"),
)


def _details(query: Any) -> Any:
    """``query`` (over requests) with the names of its category, address and agency joined in."""
    return (
        query.join(Category, Category.id == _R.category_id)
        .outerjoin(Area, Area.id == _R.area_id)
        .outerjoin(Organisation, Organisation.id == _R.org_id)
    )


_PUBLIC = _details(select(*_COLUMNS).select_from(_R)).where(_plain(_R.parent_id).is_(None))


def _request_record(row: Any, english: bool, tz: Any, base: str) -> dict[str, Any]:
    """One request as Open311 shows it, from a row of ``_COLUMNS`` (unpacked in their order)."""
    (number, state, notes, description, notice, requested, updated, expected, address, zipcode, lat, lon,
     media, code, service_zh, service_en, address_id, agency_zh, agency_en, photo) = row  # fmt: skip
    return {
        "service_request_id": str(number),
        "status": "closed" if state in _CLOSED else "open",
        "status_notes": notes or None,
        "service_name": (service_en or service_zh) if english else service_zh,
        "service_code": code,
        "description": description or None,
        "agency_responsible": ((agency_en or agency_zh) if english else agency_zh) or None,
        "service_notice": notice or None,
        "requested_datetime": requested.astimezone(tz).isoformat(timespec="seconds"),
        "updated_datetime": updated.astimezone(tz).isoformat(timespec="seconds"),
        "expected_datetime": expected.astimezone(tz).isoformat(timespec="seconds") if expected else None,
        "address": address or None,
        "address_id": address_id or None,
        "zipcode": zipcode or None,
        "lat": lat,
        "long": lon,
        "media_url": f"{base}participate/photos/{photo}" if photo is not None else (media or None),
    }


def _status_shape(statuses: list[str]) -> str:
    unknown = [s for s in statuses if s not in ("open", "closed")]
    if unknown:
        raise Problem(
            400,
            T(
                "status: {value} is not a status; use open, closed or open,closed",
                value=repr(unknown[0][:20]),
            ),
        )
    return statuses[0] if len(set(statuses)) == 1 else "any"


_NEWEST = (_R.requested_at.desc(), _R.id.desc())
_PAGE = (bindparam("limit", type_=Integer), bindparam("offset", type_=Integer))
#: The statements, built once: SQLAlchemy then finds their compiled form by a memoised key.
_ONE = _PUBLIC.where(_R.id == bindparam("id", type_=Integer))
_BY_IDS = (
    _PUBLIC.where(_R.id.in_(bindparam("ids", expanding=True)))
    .order_by(*_NEWEST)
    .limit(_PAGE[0])
    .offset(_PAGE[1])
)
_BY_TOKEN = select(_R.id).where(_R.token == bindparam("token"), _R.parent_id.is_(None))
_CATEGORY_IDS = select(Category.id).where(Category.code.in_(bindparam("codes", expanding=True)))
_windowed: dict[tuple[bool, str], Any] = {}


def _in_window(with_codes: bool, status: str) -> Any:
    """The statement of a list in a date window, per shape of its filters: the page's ids first, from
    the ``requested_at`` index and the request rows alone (the rows an offset skips are joined to
    nothing), then the page's records."""
    found = _windowed.get((with_codes, status))
    if found is None:
        ids = select(_R.id, _R.requested_at).where(
            _plain(_R.parent_id).is_(None),
            _R.requested_at >= bindparam("start"),
            _R.requested_at <= bindparam("end"),
        )
        if with_codes:
            ids = ids.where(_plain(_R.category_id).in_(bindparam("categories", expanding=True)))
        if status == "closed":
            ids = ids.where(_plain(_R.state).in_(sorted(_CLOSED)))
        elif status == "open":
            ids = ids.where(_plain(_R.state).not_in(sorted(_CLOSED)))
        page = ids.order_by(*_NEWEST).limit(_PAGE[0]).offset(_PAGE[1]).subquery("page")
        query = _details(select(*_COLUMNS).select_from(page).join(_R, _R.id == page.c.id))
        found = _windowed[(with_codes, status)] = query.order_by(page.c.requested_at.desc(), page.c.id.desc())
    return found


def _request_list(connection: Connection, fmt: str, language: str, request: Request) -> Response:
    params = request.query_params
    tz = get_settings().tz
    page, size = _paging(params.get("page"), params.get("page_size"))
    values: dict[str, Any] = {"limit": size, "offset": (page - 1) * size}
    ids_text = params.get("service_request_id")
    if ids_text is not None and ids_text.strip():
        query = _BY_IDS
        values["ids"] = _ids(ids_text) or [-1]
    else:
        start, end = _window(params.get("start_date"), params.get("end_date"), tz)
        codes = _csv(params.get("service_code"))
        query = _in_window(bool(codes), _status_shape(_csv(params.get("status"))))
        values.update(start=start, end=end)
        if codes:
            found = connection.execute(_CATEGORY_IDS, {"codes": codes}).scalars().all()
            values["categories"] = list(found) or [-1]
    base = _base(request)
    rows = connection.execute(query, values).all()
    english = language == "en"
    records = [_request_record(row, english, tz, base) for row in rows]
    headers = _next_link(request, page) if len(records) == size else None
    return _answer(fmt, "service_requests", records, headers=headers)


def _one_request(
    connection: Connection, fmt: str, language: str, request: Request, request_id: str
) -> Response:
    number = int(request_id) if request_id.isascii() and request_id.isdigit() else 0
    row = None
    if 0 < number <= MAX_ID:
        row = connection.execute(_ONE, {"id": number}).first()
    if row is None:
        raise Problem(404, T("service_request_id: no service request {value}", value=repr(request_id[:40])))
    return _answer(
        fmt, "service_requests", [_request_record(row, language == "en", get_settings().tz, _base(request))]
    )


def _token(connection: Connection, fmt: str, token: str) -> Response:
    found = None
    if 0 < len(token) <= 40 and "\x00" not in token:
        found = connection.execute(_BY_TOKEN, {"token": token}).scalar()
    if found is None:
        raise Problem(404, T("token: no service request has the token {value}", value=repr(token[:40])))
    return _answer(fmt, "service_requests", [{"service_request_id": str(found), "token": token}])


def _update_text(text: str, detail: Any, language: str) -> str:
    """An update's text in ``language`` when it was stored as a translatable message."""
    message = detail.get("message") if isinstance(detail, dict) else None
    if isinstance(message, dict) and isinstance(message.get("template"), str):
        values = message.get("values")
        try:
            return localize(T(message["template"], **(values if isinstance(values, dict) else {})), language)
        except (KeyError, IndexError, ValueError):
            return text
    return text


_update_photo = (
    select(func.min(Photo.id))
    .where(Photo.request_id == RequestUpdate.request_id, Photo.update_id == RequestUpdate.id)
    .correlate(RequestUpdate)
    .scalar_subquery()
)
_UPDATES = (
    select(
        RequestUpdate.id,
        RequestUpdate.request_id,
        RequestUpdate.at,
        RequestUpdate.state,
        RequestUpdate.text,
        RequestUpdate.detail,
        _update_photo.label("photo_id"),
    )
    .join(_R, _R.id == RequestUpdate.request_id)
    .where(
        RequestUpdate.public.is_(True),
        _plain(_R.parent_id).is_(None),
        RequestUpdate.at >= bindparam("start"),
        RequestUpdate.at <= bindparam("end"),
    )
    .order_by(RequestUpdate.at, RequestUpdate.id)
    .limit(_PAGE[0])
    .offset(_PAGE[1])
)


def _updates(connection: Connection, fmt: str, language: str, request: Request) -> Response:
    params = request.query_params
    tz = get_settings().tz
    page, size = _paging(params.get("page"), params.get("page_size"))
    start, end = _window(params.get("start_date"), params.get("end_date"), tz)
    values = {"start": start, "end": end, "limit": size, "offset": (page - 1) * size}
    rows = connection.execute(_UPDATES, values).all()
    base = _base(request)
    records = [
        {
            "update_id": str(row.id),
            "service_request_id": str(row.request_id),
            "status": service.open311_status(row.state),
            "state": row.state,
            "updated_datetime": _iso(row.at, tz),
            "description": _update_text(row.text, row.detail, language) or None,
            "media_url": f"{base}participate/photos/{row.photo_id}" if row.photo_id is not None else None,
        }
        for row in rows
    ]
    headers = _next_link(request, page) if len(records) == size else None
    return _answer(fmt, "service_request_updates", records, headers=headers)


# --- requests: filing ----------------------------------------------------------------------------


def _coordinate(params: Mapping[str, str], name: str) -> float | None:
    text = (params.get(name) or "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise Problem(400, T("{name}: {value} is not a number", name=name, value=repr(text[:30]))) from None


def _answers(items: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """``attribute[code]=v`` as ``{code: v}``; ``attribute[code][]`` (or a repeated code) as a list."""
    answers: dict[str, Any] = {}
    for key, value in items:
        found = _ATTRIBUTE.fullmatch(key)
        if found is None:
            continue
        code, listed = found.group(1), bool(found.group(2))
        previous = answers.get(code)
        if previous is None:
            answers[code] = [value] if listed else value
        elif isinstance(previous, list):
            previous.append(value)
        else:
            answers[code] = [previous, value]
    return answers


def _file(
    session: Session, items: Sequence[tuple[str, str]], photos: list[bytes]
) -> tuple[ServiceRequest, str]:
    params = dict(items)
    key: ApiKey = apikeys.verify(session=session, raw=params.get("api_key", ""))
    apikeys.check_rate(key)
    code = (params.get("service_code") or "").strip()
    if not code:
        raise Invalid(T("service_code is required"), detail={"field": "service_code"})
    lat = _coordinate(params, "lat")
    lon = _coordinate(params, "long")
    name = f"{params.get('first_name', '').strip()} {params.get('last_name', '').strip()}".strip()
    reporter = service.Reporter(
        name=name,
        email=params.get("email", "").strip(),
        phone=params.get("phone", "").strip(),
        device_id=params.get("device_id", "").strip(),
    )
    filed = service.submit(
        session=session,
        actor=None,
        category_code=code,
        description=params.get("description", ""),
        lat=lat,
        lon=lon,
        address=params.get("address_string", ""),
        address_id=params.get("address_id", "").strip(),
        zipcode=params.get("zipcode", ""),
        answers=_answers(items),
        reporter=reporter,
        channel="open311",
        api_key=key,
        photos=photos,
        media_url=params.get("media_url", ""),
    )
    category = session.get(Category, filed.category_id)
    return filed, category.type if category is not None else "realtime"


async def _read_form(request: Request) -> tuple[list[tuple[str, str]], list[bytes]]:
    """The parameters (query string, then the body, which wins) and the uploaded ``media`` files."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    items = list(request.query_params.multi_items())
    photos: list[bytes] = []
    if kind and kind not in _FORM_TYPES:
        raise Problem(
            415,
            T(
                "Content-Type {kind}: send application/x-www-form-urlencoded or multipart/form-data",
                kind=repr(kind[:60]),
            ),
        )
    if not kind:
        return items, photos
    settings = get_settings()
    try:
        async with request.form(max_files=settings.participation_max_photos + 1, max_fields=1000) as form:
            body: list[tuple[str, str]] = []
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    if key != "media":
                        raise Problem(400, T("{name}: only the media parameter takes a file", name=key[:60]))
                    data = await value.read(settings.participation_photo_bytes + 1)
                    if len(data) > settings.participation_photo_bytes:
                        limit = f"{settings.participation_photo_bytes:,}"
                        raise Problem(413, T("media: a photo may have at most {n} bytes", n=limit))
                    if data:
                        photos.append(data)
                else:
                    body.append((key, value))
    except StarletteHTTPException as exc:
        raise Problem(400, T("the request body is not a valid form: {why}", why=exc.detail)) from None
    except (ValueError, UnicodeDecodeError):
        raise Problem(400, T("the request body is not a valid form")) from None
    sent = {key for key, _ in body}
    return [(k, v) for k, v in items if k not in sent] + body, photos


# --- routes --------------------------------------------------------------------------------------

_ERRORS = {"400": {"description": "Open311 errors: [{code, description}], HTTP status = code"}}
_QUERY = {
    "jurisdiction_id": "accepted and ignored (one jurisdiction per server)",
    "service_request_id": "comma-separated ids; every other filter is then ignored",
    "service_code": "comma-separated service codes",
    "start_date": "ISO 8601; the window spans at most 90 days (default: the 90 days before end_date)",
    "end_date": "ISO 8601 (default: now, or 90 days after start_date)",
    "status": "open, closed, or open,closed",
    "page": "page number, from 1 (extension)",
    "page_size": "records a page, 1 to 1000, default 1000 (extension)",
    "lang": "en for English names (default: the platform language)",
}


def _doc(*names: str) -> dict[str, Any]:
    """OpenAPI notes of query parameters the route reads itself (so a bad value is an Open311 error)."""
    parameters = [
        {"name": n, "in": "query", "required": False, "schema": {"type": "string"}, "description": _QUERY[n]}
        for n in ("jurisdiction_id", *names, "lang")
    ]
    return {"parameters": parameters, "responses": _ERRORS}


@router.get(f"{PREFIX}/services.{{fmt}}", tags=["open311"], openapi_extra=_doc())
@routing.direct
async def services(request: Request, fmt: str) -> Response:
    """GeoReport v2 service list: the categories residents can report."""
    return await _serve(request, fmt, _services)


@router.get(f"{PREFIX}/services/{{service_code}}.{{fmt}}", tags=["open311"], openapi_extra=_doc())
@routing.direct
async def service_definition(request: Request, service_code: str, fmt: str) -> Response:
    """GeoReport v2 service definition: the attributes of one service."""
    return await _serve(request, fmt, lambda s, f, _l: _definition(s, f, service_code))


@router.get(
    f"{PREFIX}/requests.{{fmt}}",
    tags=["open311"],
    openapi_extra=_doc(
        "service_request_id", "service_code", "start_date", "end_date", "status", "page", "page_size"
    ),
)
@routing.direct
async def requests_list(request: Request, fmt: str) -> Response:
    """GeoReport v2 service requests: public requests, newest first."""
    return await _serve_rows(request, fmt, lambda c, f, lang: _request_list(c, f, lang, request))


@router.post(
    f"{PREFIX}/requests.{{fmt}}",
    tags=["open311"],
    status_code=201,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
                "multipart/form-data": {"schema": {"type": "object"}},
            },
            "description": "api_key, service_code, lat, long, address_string, address_id, email, device_id, "
            "account_id, first_name, last_name, phone, description, media_url, attribute[code], "
            "attribute[code][]; multipart may add a media file",
        },
        "responses": _ERRORS,
    },
)
async def requests_create(request: Request, fmt: str) -> Response:
    """GeoReport v2 POST service request: file a report with an api_key."""
    language = _language(request)
    try:
        fmt = _format(fmt)
        items, photos = await _read_form(request)
        _no_nul(items)
    except Problem as problem:
        return _error_answer(fmt, problem)

    def work(session: Session) -> Response:
        filed, kind = _file(session, items, photos)
        notice = filed.service_notice or None
        first: dict[str, Any] = (
            {"token": filed.token} if kind == "batch" else {"service_request_id": str(filed.id)}
        )
        return _answer(
            fmt, "service_requests", [{**first, "service_notice": notice, "account_id": None}], 201
        )

    return await run_in_threadpool(_run, fmt, language, work, write=True)


@router.get(f"{PREFIX}/requests/{{service_request_id}}.{{fmt}}", tags=["open311"], openapi_extra=_doc())
@routing.direct
async def request_one(request: Request, service_request_id: str, fmt: str) -> Response:
    """GeoReport v2 one service request (a list of one)."""
    return await _serve_rows(
        request, fmt, lambda c, f, lang: _one_request(c, f, lang, request, service_request_id)
    )


@router.get(f"{PREFIX}/tokens/{{token}}.{{fmt}}", tags=["open311"], openapi_extra=_doc())
@routing.direct
async def request_of_token(request: Request, token: str, fmt: str) -> Response:
    """GeoReport v2 service request id from a token."""
    return await _serve_rows(request, fmt, lambda c, f, _l: _token(c, f, token))


@router.get(
    f"{PREFIX}/servicerequestupdates.{{fmt}}",
    tags=["open311"],
    openapi_extra=_doc("start_date", "end_date", "page", "page_size"),
)
@routing.direct
async def request_updates(request: Request, fmt: str) -> Response:
    """FixMyStreet extension: public updates of public requests, oldest first."""
    return await _serve_rows(request, fmt, lambda c, f, lang: _updates(c, f, lang, request))


def _discovery(request: Request, fmt: str) -> Response:
    base = _base(request)
    record = {
        "changeset": _CHANGESET,
        "contact": f"The operator of this platform: {base}",
        "key_service": f"Administrators of an organisation issue api_keys at {base}api/v1/participation/api-keys",
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": f"{base}open311/v2",
                "changeset": _CHANGESET,
                "type": "production",
                "formats": ["text/xml", "application/json"],
            }
        ],
    }
    return _answer(fmt, "discovery", record)


@router.get(f"{PREFIX}/discovery.{{fmt}}", tags=["open311"])
@router.get("/open311/discovery.{fmt}", tags=["open311"], include_in_schema=False)
async def discovery(request: Request, fmt: str) -> Response:
    """GeoReport v2 discovery: where the endpoint is, its formats and how to get a key."""
    _language(request)
    try:
        return _discovery(request, _format(fmt))
    except Problem as problem:
        return _error_answer(fmt, problem)


_KNOWN = [
    (re.compile(r"/open311/v2/services(/[^/]+)?\.[^/]+"), "GET"),
    (re.compile(r"/open311/v2/requests\.[^/]+"), "GET, POST"),
    (re.compile(r"/open311/v2/(requests|tokens)/[^/]+\.[^/]+"), "GET"),
    (re.compile(r"/open311/(v2/)?(discovery|servicerequestupdates)\.[^/]+"), "GET"),
]


@router.api_route(
    f"/open311/{{rest:{routing.REST}}}",
    methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"],
    include_in_schema=False,
)
async def elsewhere(request: Request, rest: str) -> Response:
    """Anything else under /open311: 405 on a known endpoint, 404 otherwise (Open311 errors)."""
    _language(request)
    fmt = "xml" if rest.endswith(".xml") else "json"
    for pattern, allowed in _KNOWN:
        if pattern.fullmatch(request.url.path):
            return _error_answer(
                fmt,
                Problem(
                    405,
                    T(
                        "method {method} is not allowed here; use {allowed}",
                        method=request.method,
                        allowed=allowed,
                    ),
                    {"Allow": allowed},
                ),
            )
    return _error_answer(
        fmt, Problem(404, T("no Open311 endpoint {path}", path=repr(request.url.path[:100])))
    )
