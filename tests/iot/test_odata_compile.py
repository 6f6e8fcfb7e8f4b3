"""Compiled $filter and $orderby run on a small SensorThings schema, in SQLite (in memory) and in
PostgreSQL (a fresh schema per test session; skipped with a reason when the server is absent,
failed under CI=true), and return the right rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Engine,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    insert,
    select,
    text,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql import FromClause

from helpers import IN_CI
from zhishe.core.db import UTCDateTime
from zhishe.core.errors import Invalid
from zhishe.iot import odata

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200)),
    Column("description", Text),
    Column("properties", JSON),
)
locations = Table(
    "locations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200)),
    Column("description", Text),
    Column("encoding_type", String(100)),
    Column("location", JSON),
)
thing_locations = Table(
    "thing_locations",
    metadata,
    Column("thing_id", ForeignKey("things.id"), primary_key=True),
    Column("location_id", ForeignKey("locations.id"), primary_key=True),
)
sensors = Table("sensors", metadata, Column("id", Integer, primary_key=True), Column("name", String(200)))
observed_properties = Table(
    "observed_properties",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200)),
    Column("definition", String(200)),
)
datastreams = Table(
    "datastreams",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200)),
    Column("description", Text),
    Column("unit", JSON),
    Column("thing_id", ForeignKey("things.id")),
    Column("sensor_id", ForeignKey("sensors.id")),
    Column("observed_property_id", ForeignKey("observed_properties.id")),
    Column("phenomenon_start", UTCDateTime()),
    Column("phenomenon_end", UTCDateTime()),
)
features = Table("features", metadata, Column("id", Integer, primary_key=True), Column("name", String(200)))
observations = Table(
    "observations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("datastream_id", ForeignKey("datastreams.id")),
    Column("feature_id", ForeignKey("features.id"), nullable=True),
    Column("phenomenon_time", UTCDateTime()),
    Column("result_time", UTCDateTime(), nullable=True),
    Column("result_number", Float, nullable=True),
    Column("result_string", Text, nullable=True),
    Column("result_boolean", Boolean, nullable=True),
    Column("parameters", JSON, nullable=True),
)


def _result(table: FromClause, hint: odata.ValueKind | None) -> Any:
    if hint == "string":
        return table.c.result_string
    if hint == "boolean":
        return table.c.result_boolean
    return table.c.result_number


def _phenomenon(table: FromClause, _hint: odata.ValueKind | None) -> odata.TimeInterval:
    return odata.TimeInterval(table.c.phenomenon_start, table.c.phenomenon_end)


TABLES = {
    "Thing": odata.EntityTable(things),
    "Location": odata.EntityTable(locations, columns={"encodingType": "encoding_type"}),
    "Sensor": odata.EntityTable(sensors),
    "ObservedProperty": odata.EntityTable(observed_properties),
    "Datastream": odata.EntityTable(
        datastreams, columns={"unitOfMeasurement": "unit", "phenomenonTime": _phenomenon}
    ),
    "FeatureOfInterest": odata.EntityTable(features),
    "Observation": odata.EntityTable(
        observations,
        columns={"phenomenonTime": "phenomenon_time", "resultTime": "result_time", "result": _result},
    ),
}
LINKS = {
    ("Thing", "Datastreams"): odata.Link("id", "thing_id"),
    ("Thing", "Locations"): odata.Link(
        "id", "id", via=thing_locations, via_source="thing_id", via_target="location_id"
    ),
    ("Location", "Things"): odata.Link(
        "id", "id", via=thing_locations, via_source="location_id", via_target="thing_id"
    ),
    ("Datastream", "Thing"): odata.Link("thing_id", "id"),
    ("Datastream", "Sensor"): odata.Link("sensor_id", "id"),
    ("Datastream", "ObservedProperty"): odata.Link("observed_property_id", "id"),
    ("Datastream", "Observations"): odata.Link("id", "datastream_id"),
    ("Sensor", "Datastreams"): odata.Link("id", "sensor_id"),
    ("ObservedProperty", "Datastreams"): odata.Link("id", "observed_property_id"),
    ("Observation", "Datastream"): odata.Link("datastream_id", "id"),
    ("Observation", "FeatureOfInterest"): odata.Link("feature_id", "id"),
    ("FeatureOfInterest", "Observations"): odata.Link("id", "feature_id"),
}
ROOTS = {"Things": things, "Datastreams": datastreams, "Observations": observations, "Locations": locations}


def _t(text_: str) -> datetime:
    return datetime.fromisoformat(text_)


ROWS: dict[Table, list[dict[str, Any]]] = {
    things: [
        {
            "id": 1,
            "name": "Oven",
            "description": "This thing is a convection oven.",
            "properties": {"owner": "John Doe", "color": "Silver", "floor": 3},
        },
        {
            "id": 2,
            "name": "Weather station",
            "description": "Sensor Things station",
            "properties": {"site": "B2", "floor": 1, "active": True, "tags": {"zone": "north"}},
        },
        {
            "id": 3,
            "name": "O'Brien's meter",
            "description": "test meter 100%_sure",
            "properties": {"site": "A1"},
        },
    ],
    locations: [
        {
            "id": 1,
            "name": "Kitchen",
            "description": "",
            "encoding_type": "application/geo+json",
            "location": {},
        },
        {"id": 2, "name": "Roof", "description": "", "encoding_type": "application/geo+json", "location": {}},
    ],
    thing_locations: [{"thing_id": 1, "location_id": 1}, {"thing_id": 2, "location_id": 2}],
    sensors: [{"id": 1, "name": "DHT22"}, {"id": 2, "name": "SDS011"}],
    observed_properties: [
        {"id": 1, "name": "PM2.5", "definition": "http://example.org/pm25"},
        {"id": 2, "name": "Temperature", "definition": "http://example.org/t"},
    ],
    datastreams: [
        {
            "id": 1,
            "name": "oven temperature",
            "description": "Oven air",
            "unit": {"name": "degree Celsius", "symbol": "°C"},
            "thing_id": 1,
            "sensor_id": 1,
            "observed_property_id": 2,
            "phenomenon_start": _t("2026-10-01T00:00:00+00:00"),
            "phenomenon_end": _t("2026-11-01T00:00:00+00:00"),
        },
        {
            "id": 2,
            "name": "pm25 B2",
            "description": "Particulates",
            "unit": {"name": "microgram per cubic metre", "symbol": "µg/m³"},
            "thing_id": 2,
            "sensor_id": 2,
            "observed_property_id": 1,
            "phenomenon_start": _t("2026-11-01T00:00:00+00:00"),
            "phenomenon_end": _t("2026-11-03T00:00:00+00:00"),
        },
        {
            "id": 3,
            "name": "temperature B2",
            "description": "Outside air",
            "unit": {"name": "degree Celsius", "symbol": "°C"},
            "thing_id": 2,
            "sensor_id": 1,
            "observed_property_id": 2,
            "phenomenon_start": None,
            "phenomenon_end": None,
        },
    ],
    features: [{"id": 1, "name": "FOI_1"}, {"id": 2, "name": "FOI_2"}],
    observations: [
        {
            "id": 1,
            "datastream_id": 1,
            "feature_id": 1,
            "phenomenon_time": _t("2026-10-31T16:00:00+00:00"),
            "result_time": _t("2026-10-31T16:00:00+00:00"),
            "result_number": 180.5,
            "parameters": {"quality": "good", "n": 5},
        },
        {
            "id": 2,
            "datastream_id": 2,
            "feature_id": 1,
            "phenomenon_time": _t("2026-11-01T00:00:00+00:00"),
            "result_time": _t("2026-11-01T00:00:00+00:00"),
            "result_number": 12.0,
            "parameters": {"quality": "bad", "n": 12},
        },
        {
            "id": 3,
            "datastream_id": 2,
            "feature_id": 2,
            "phenomenon_time": _t("2026-11-01T12:30:15.250000+00:00"),
            "result_time": _t("2026-11-01T12:30:15.250000+00:00"),
            "result_number": 35.0,
            "parameters": None,
        },
        {
            "id": 4,
            "datastream_id": 3,
            "feature_id": 2,
            "phenomenon_time": _t("2025-12-31T23:59:59+00:00"),
            "result_time": _t("2025-12-31T23:59:59+00:00"),
            "result_number": -3.5,
            "parameters": {"quality": "good", "n": 0},
        },
        {
            "id": 5,
            "datastream_id": 3,
            "feature_id": None,
            "phenomenon_time": _t("2026-11-02T08:00:00+00:00"),
            "result_time": None,
            "result_number": None,
            "result_string": "offline",
            "parameters": {"quality": "good", "n": 2},
        },
        {
            "id": 6,
            "datastream_id": 3,
            "feature_id": None,
            "phenomenon_time": _t("2026-11-02T09:00:00+00:00"),
            "result_time": _t("2026-11-02T09:00:00+00:00"),
            "result_boolean": True,
            "parameters": {},
        },
    ],
}


def _load(engine: Engine) -> None:
    metadata.create_all(engine)
    with engine.begin() as connection:
        for table in metadata.sorted_tables:
            for row in ROWS.get(table, []):
                connection.execute(insert(table).values(**row))


def _sqlite() -> Engine:
    engine = create_engine("sqlite://")
    _load(engine)
    return engine


@pytest.fixture(scope="module")
def sqlite_engine() -> Iterator[Engine]:
    engine = _sqlite()
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def pg_engine() -> Iterator[Engine]:
    schema = f"odata_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        admin.dispose()
        if IN_CI:
            pytest.fail(f"PostgreSQL at {PG_URL} is required under CI=true: {exc}")
        pytest.skip(f"PostgreSQL is not reachable at {PG_URL}")
    engine = create_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        _load(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> Engine:
    fixture = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    found: Engine = request.getfixturevalue(fixture)
    return found


def ids(engine: Engine, entity: str, query: str, *, orderby: str | None = None) -> list[int]:
    """The ids of ``entity`` matching ``$filter=query`` (ordered by ``orderby``, then id)."""
    root = ROOTS[entity]
    expr = odata.parse_filter(query, entity=entity)
    condition = odata.compile_filter(
        expr, odata.SchemaResolver(entity=entity, tables=TABLES, links=LINKS), now=NOW
    )
    ordering = []
    if orderby:
        keys = odata.parse_orderby(orderby, entity=entity)
        ordering = odata.compile_orderby(
            keys, odata.SchemaResolver(entity=entity, tables=TABLES, links=LINKS)
        )
    statement = select(root.c.id).where(condition).order_by(*ordering, root.c.id)
    with engine.connect() as connection:
        return [row[0] for row in connection.execute(statement)]


# (entity, $filter, expected ids) — the standard's examples adapted to the rows above
CASES = [
    ("Observations", "result lt 10.00", [4]),
    ("Observations", "Datastream/id eq '1'", [1]),
    ("Observations", "Datastream/id eq 2", [2, 3]),
    ("Observations", "result gt 20.0", [1, 3]),
    ("Observations", "result ge 35", [1, 3]),
    ("Observations", "result le 12", [2, 4]),
    ("Observations", "result le 3.5 and FeatureOfInterest/id eq '2'", [4]),
    ("Observations", "result gt 20 or result le 3.5", [1, 3, 4]),
    ("Observations", "result add 5 gt 10", [1, 2, 3]),
    ("Observations", "result sub 5 gt 10", [1, 3]),
    ("Observations", "result mul 2 gt 300", [1]),
    ("Observations", "result div 2 gt 4", [1, 2, 3]),
    ("Observations", "result mod 2 eq 0", [2]),
    ("Observations", "(result sub 5) gt 10", [1, 3]),
    ("Observations", "result add 2 mul 3 gt 17", [1, 2, 3]),
    ("Observations", "result eq 'offline'", [5]),
    ("Observations", "result eq true", [6]),
    ("Observations", "result eq null", [5, 6]),
    ("Observations", "result ne null", [1, 2, 3, 4]),
    ("Observations", "resultTime eq null", [5]),
    ("Observations", "round(result) eq 181", [1]),
    ("Observations", "floor(result) eq -4", [4]),
    ("Observations", "ceiling(result) eq -3", [4]),
    ("Observations", "ceiling(result) eq 181", [1]),
    ("Observations", "year(resultTime) eq 2025", [4]),
    ("Observations", "month(resultTime) eq 10", [1]),
    ("Observations", "day(resultTime) eq 1 and hour(resultTime) eq 12", [3]),
    ("Observations", "minute(resultTime) eq 30 and second(resultTime) eq 15", [3]),
    ("Observations", "fractionalseconds(resultTime) eq 0.25", [3]),
    ("Observations", "date(resultTime) eq 2026-11-01", [2, 3]),
    ("Observations", "time(resultTime) eq 16:00:00", [1]),
    ("Observations", "time(resultTime) lt 01:00:00", [2]),
    ("Observations", "totaloffsetminutes(resultTime) eq 0", [1, 2, 3, 4, 6]),
    ("Observations", "resultTime ge 2026-11-01T00:00:00+08:00", [1, 2, 3, 6]),
    ("Observations", "resultTime lt 2026-11-01T00:00:00+08:00", [4]),
    ("Observations", "resultTime eq 2026-11-01T08:00:00+08:00", [2]),
    ("Observations", "year(2026-01-01T02:00:00+08:00) eq 2025", [1, 2, 3, 4, 5, 6]),
    ("Observations", "resultTime ge now() sub duration'P1D'", [3, 6]),
    ("Observations", "phenomenonTime lt mindatetime() or phenomenonTime gt maxdatetime()", []),
    ("Observations", "phenomenonTime ge 2026-11-01", [2, 3, 5, 6]),
    (
        "Observations",
        "during(phenomenonTime, 2026-11-01T00:00:00Z/2026-11-02T00:00:00Z)",
        [2, 3],
    ),
    ("Observations", "before(phenomenonTime, 2026-11-01T00:00:00Z)", [1, 4]),
    ("Observations", "after(phenomenonTime, 2026-11-02T08:00:00Z)", [6]),
    ("Observations", "Datastream/ObservedProperty/name eq 'PM2.5'", [2, 3]),
    ("Observations", "Datastream/Thing/properties/site eq 'B2'", [2, 3, 4, 5, 6]),
    ("Observations", "parameters/quality eq 'good' and parameters/n gt 1", [1, 5]),
    ("Observations", "not (result eq 12)", [1, 3, 4]),
    ("Observations", "not result eq 12 and result gt 0", [1, 3]),
    ("Things", "name eq 'Oven'", [1]),
    ("Things", "not startswith(description,'test')", [1, 2]),
    ("Things", "substringof('Sensor Things',description)", [2]),
    ("Things", "contains(description,'oven')", [1]),
    ("Things", "endswith(description,'station')", [2]),
    ("Things", "startswith(description,'Sensor')", [2]),
    ("Things", "length(name) eq 4", [1]),
    ("Things", "indexof(description,'Sensor') eq 0", [2]),
    ("Things", "indexof(description,'station') eq 14", [2]),
    ("Things", "substring(description,1) eq 'ensor Things station'", [2]),
    ("Things", "substring(description,0,6) eq 'Sensor'", [2]),
    ("Things", "tolower(name) eq 'oven'", [1]),
    ("Things", "toupper(name) eq 'OVEN'", [1]),
    ("Things", "trim(concat(' ', name)) eq 'Oven'", [1]),
    ("Things", "concat(concat(name,', '),description) eq 'Oven, This thing is a convection oven.'", [1]),
    ("Things", "name eq 'O''Brien''s meter'", [3]),
    ("Things", "startswith(name,'O''B')", [3]),
    ("Things", "contains(description,'100%_')", [3]),
    ("Things", "contains(description,'%')", [3]),
    ("Things", "contains(name,'_')", []),
    ("Things", "properties/site eq 'B2'", [2]),
    ("Things", "properties/floor ge 1", [1, 2]),
    ("Things", "properties/floor eq '3'", []),
    ("Things", "properties/active eq true", [2]),
    ("Things", "properties/tags/zone eq 'north'", [2]),
    ("Things", "properties/missing eq null", [1, 2, 3]),
    ("Things", "Datastreams/name eq 'pm25 B2'", [2]),
    ("Things", "Datastreams/ObservedProperty/name eq 'Temperature'", [1, 2]),
    ("Things", "Locations/name eq 'Roof' or name eq 'Oven'", [1, 2]),
    ("Things", "name eq 'O''Brien''s meter' or Datastreams/name eq 'pm25 B2'", [2, 3]),
    (
        "Things",
        "Datastreams/Observations/FeatureOfInterest/name eq 'FOI_1' and "
        "Datastreams/Observations/resultTime ge 2026-11-01T00:00:00Z and "
        "Datastreams/Observations/resultTime le 2026-12-01T00:00:00Z",
        [2],
    ),
    ("Datastreams", "unitOfMeasurement/name eq 'degree Celsius'", [1, 3]),
    ("Datastreams", "unitOfMeasurement/symbol eq 'µg/m³'", [2]),
    ("Datastreams", "phenomenonTime ge 2026-10-15T00:00:00Z", [2]),
    ("Datastreams", "phenomenonTime lt 2026-11-01T00:00:00Z", [1]),
    ("Datastreams", "phenomenonTime lt 2026-12-01T00:00:00Z", [1, 2]),
    ("Datastreams", "overlaps(phenomenonTime, 2026-10-31T00:00:00Z)", [1]),
    ("Datastreams", "overlaps(phenomenonTime, 2026-11-01T00:00:00Z)", [2]),
    ("Datastreams", "meets(phenomenonTime, 2026-11-01T00:00:00Z/2026-11-03T00:00:00Z)", [1]),
    ("Datastreams", "starts(phenomenonTime, 2026-11-01T00:00:00Z)", [2]),
    ("Datastreams", "finishes(phenomenonTime, 2026-11-01T00:00:00Z)", [1]),
    ("Datastreams", "phenomenonTime eq 2026-10-01T00:00:00Z/2026-11-01T00:00:00Z", [1]),
    ("Datastreams", "Observations/result gt 100", [1]),
    ("Datastreams", "Thing/Locations/name eq 'Roof'", [2, 3]),
    ("Locations", "Things/Datastreams/ObservedProperty/name eq 'PM2.5'", [2]),
    ("Things", "1 eq 1", [1, 2, 3]),
    ("Things", "true", [1, 2, 3]),
    ("Things", "5 div 0 eq null", [1, 2, 3]),
    ("Things", "-5 mod 3 eq -2 and 7 div 2 eq 3 and -7 div 2 eq -3", [1, 2, 3]),
]


@pytest.mark.parametrize(("entity", "query", "expected"), CASES, ids=[c[1][:60] for c in CASES])
def test_filter_returns_the_matching_rows(
    engine: Engine, entity: str, query: str, expected: list[int]
) -> None:
    assert ids(engine, entity, query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("floor(result) eq -4", [4]),
        ("floor(result) eq 180", [1]),
        ("ceiling(result) eq -3", [4]),
        ("ceiling(result) eq 181", [1]),
        ("result mod 2 eq 0", [2]),
        ("result mod 2 eq 0.5", [1]),
        ("result mod 2 eq -1.5", [4]),
        ("result mod 0 eq null", [1, 2, 3, 4, 5, 6]),
    ],
)
def test_sqlites_portable_floor_ceiling_and_mod_agree_with_its_math_functions(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch, query: str, expected: list[int]
) -> None:
    uncached = sqlite_engine.execution_options(compiled_cache=None)
    for math in (True, False):
        monkeypatch.setattr(odata.sqlfuncs, "SQLITE_MATH", math)
        assert ids(uncached, "Observations", query) == expected


def test_an_injection_attempt_is_a_string_that_matches_nothing(engine: Engine) -> None:
    query = "name eq 'x'' or 1=1 --'"
    assert ids(engine, "Things", query) == []
    condition = odata.compile_filter(
        odata.parse_filter(query, entity="Things"),
        odata.SchemaResolver(entity="Things", tables=TABLES, links=LINKS),
    )
    compiled = condition.compile(engine)
    assert "1=1" not in str(compiled)
    assert "x' or 1=1 --" in compiled.params.values()


@pytest.mark.parametrize(
    ("entity", "orderby", "expected"),
    [
        ("Observations", "result", [6, 5, 4, 2, 3, 1]),
        ("Observations", "result desc", [1, 3, 2, 4, 5, 6]),
        ("Observations", "resultTime desc", [6, 3, 2, 1, 4, 5]),
        ("Observations", "Datastream/name desc, phenomenonTime", [4, 5, 6, 2, 3, 1]),
        ("Observations", "Datastream/ObservedProperty/name, result desc", [3, 2, 1, 4, 5, 6]),
        ("Things", "length(name) desc", [2, 3, 1]),
        ("Things", "properties/floor", [3, 2, 1]),
        ("Datastreams", "phenomenonTime desc", [2, 1, 3]),
    ],
)
def test_orderby_sorts_with_nulls_first_ascending(
    engine: Engine, entity: str, orderby: str, expected: list[int]
) -> None:
    assert ids(engine, entity, "true", orderby=orderby) == expected


@pytest.mark.parametrize(
    ("entity", "query", "message"),
    [
        ("Things", "name eq 5", "cannot compare name (a string) with 5 (a number)"),
        ("Things", "name add 1 gt 2", "add needs a number, and name (a string) is not"),
        ("Things", "length(id) eq 1", "length() argument 1 needs a string"),
        ("Things", "properties eq 'x'", "properties is a JSON object or array"),
        ("Things", "name", "name (a string) is not a condition"),
        ("Observations", "resultTime add duration'PT1H' gt now()", "supported on literals only"),
        ("Observations", "resultTime eq 'today'", "cannot compare resultTime (a date-time)"),
        ("Things", "Datastreams/id eq '1x'", "cannot compare Datastreams/id (a number) with '1x'"),
    ],
)
def test_type_errors_are_refused_before_any_sql(entity: str, query: str, message: str) -> None:
    resolver = odata.SchemaResolver(entity=entity, tables=TABLES, links=LINKS)
    with pytest.raises(odata.QueryError, match=r"^\$filter: ") as caught:
        odata.compile_filter(odata.parse_filter(query, entity=entity), resolver)
    assert message in caught.value.message


def test_geospatial_functions_parse_but_are_not_supported() -> None:
    expr = odata.parse_filter("geo.distance(location, geography'POINT(-122 43)') gt 1", entity="Locations")
    assert isinstance(expr, odata.Compare)
    with pytest.raises(odata.UnsupportedOption, match=r"geo\.distance\(\) is not supported") as caught:
        odata.compile_filter(expr, odata.SchemaResolver(entity="Locations", tables=TABLES, links=LINKS))
    assert caught.value.status_code == 501


def test_ordering_by_a_collection_is_refused() -> None:
    keys = odata.parse_orderby("Datastreams/name", entity="Things")
    with pytest.raises(odata.QueryError, match="Datastreams is a collection"):
        odata.compile_orderby(keys, odata.SchemaResolver(entity="Things", tables=TABLES, links=LINKS))


def test_a_property_the_caller_does_not_store_is_refused_by_the_resolver() -> None:
    expr = odata.parse_filter("validTime ge 2026-01-01T00:00:00Z", entity="Observations")
    resolver = odata.SchemaResolver(entity="Observations", tables=TABLES, links=LINKS)
    with pytest.raises(odata.QueryError, match="'validTime' of Observation cannot be queried"):
        odata.compile_filter(expr, resolver)


def test_a_query_page_with_expand_options_runs_like_a_route_would(engine: Engine) -> None:
    opts = odata.parse_options(
        "$filter=Thing/properties/site eq 'B2'&$orderby=name desc&$top=1&$count=true"
        "&$expand=Observations($filter=result gt 0;$orderby=phenomenonTime desc;$top=1)",
        entity="Datastreams",
        default_top=100,
        max_top=1000,
    )
    resolver = odata.SchemaResolver(entity="Datastreams", tables=TABLES, links=LINKS)
    where = odata.compile_filter(opts.filter, resolver)
    order = odata.compile_orderby(opts.orderby, resolver)  # one resolver serves both, as in a route
    page = (
        select(datastreams.c.id)
        .where(where)
        .order_by(*order, datastreams.c.id)
        .offset(opts.skip)
        .limit(opts.top + 1)
    )
    (expand,) = opts.expand
    inner = expand.options
    inner_where = odata.compile_filter(
        inner.filter, odata.SchemaResolver(entity="Observations", tables=TABLES, links=LINKS)
    )
    inner_order = odata.compile_orderby(
        inner.orderby, odata.SchemaResolver(entity="Observations", tables=TABLES, links=LINKS)
    )
    with engine.connect() as connection:
        rows = [r[0] for r in connection.execute(page)]
        assert rows == [3, 2]  # one more than $top: there is a next page
        observations_of_3 = connection.execute(
            select(observations.c.id)
            .where(observations.c.datastream_id == rows[0], inner_where)
            .order_by(*inner_order, observations.c.id)
            .limit(inner.top)
        ).all()
    assert observations_of_3 == []  # datastream 3 has only a negative, a text and a boolean result
    link = odata.next_link(
        "http://example.org/sensorthings/v1.1/Datastreams?"
        + "$filter=Thing/properties/site%20eq%20'B2'&$top=1",
        top=opts.top,
        skip=opts.skip,
        more=len(rows) > opts.top,
    )
    assert link == (
        "http://example.org/sensorthings/v1.1/Datastreams?$filter=Thing/properties/site%20eq%20'B2'&$top=1&$skip=1"
    )


def test_expressions_too_deep_for_sqlite_are_refused_on_every_back_end(engine: Engine) -> None:
    query = "floor(" * 40 + "result" + ")" * 40 + " gt 0"
    with pytest.raises(odata.QueryError, match="nested too deeply for the database"):
        ids(engine, "Observations", query)


HEAVY = [
    (
        "not (startswith({}, 'x') or Datastream/name eq 'x')",
        "substring(Datastream/name, length({}))",
        "Datastream/name",
    ),
    ("not ({} gt 0 or Datastream/name eq 'x')", "floor(({} mod 7))", "Datastream/Thing/properties/floor"),
    ("not ({} gt 0 or Datastream/name eq 'x')", "ceiling(-{})", "result"),
    (
        "not (startswith({}, 'x') or Datastream/name eq 'x')",
        "substring({}, 1, 2)",
        "Datastream/ObservedProperty/name",
    ),
]


@pytest.mark.parametrize("math", [True, False], ids=["sqlite-math-functions", "portable-sql"])
@pytest.mark.parametrize(("outer", "wrap", "seed"), HEAVY)
def test_heavy_expressions_up_to_the_unchecked_depth_run_on_sqlite(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch, math: bool, outer: str, wrap: str, seed: str
) -> None:
    monkeypatch.setattr(odata.sqlfuncs, "SQLITE_MATH", math)
    inner = seed
    while odata.compile._depth(
        odata.parse_filter(outer.format(wrap.format(inner)), entity="Observations")
    ) <= (odata.compile.SAFE_DEPTH):
        inner = wrap.format(inner)
    query = outer.format(inner)
    assert odata.compile._depth(odata.parse_filter(query, entity="Observations")) in (
        odata.compile.SAFE_DEPTH,
        odata.compile.SAFE_DEPTH - 1,
    )
    uncached = sqlite_engine.execution_options(compiled_cache=None)  # compile with this SQLITE_MATH
    assert set(ids(uncached, "Observations", query)) <= {1, 2, 3, 4, 5, 6}


def _call(name: str, *args: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(*args).map(lambda parts: f"{name}({','.join(parts)})")


def _binary(
    left: st.SearchStrategy[str], ops: list[str], right: st.SearchStrategy[str]
) -> st.SearchStrategy[str]:
    return st.tuples(left, st.sampled_from(ops), right).map(lambda t: f"({t[0]} {t[1]} {t[2]})")


def _fuzz_filters() -> st.SearchStrategy[str]:
    """Filters over Observations that are mostly well-typed (so they reach the database), with some
    ill-typed mixtures (so refusals are exercised too)."""
    extreme_numbers = st.one_of(
        st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1).map(str),
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
    )
    numbers: st.SearchStrategy[str] = st.deferred(
        lambda: st.one_of(
            st.sampled_from(
                ["id", "result", "parameters/n", "Datastream/Thing/properties/floor", "0", "null"]
            ),
            extreme_numbers,
            _call("length", strings),
            _call("indexof", strings, strings),
            st.tuples(
                st.sampled_from(["year", "hour", "second", "fractionalseconds", "totaloffsetminutes"]), times
            ).map(lambda t: f"{t[0]}({t[1]})"),
            st.tuples(st.sampled_from(["round", "floor", "ceiling"]), numbers).map(
                lambda t: f"{t[0]}({t[1]})"
            ),
            _binary(numbers, ["add", "sub", "mul", "div", "mod"], numbers),
            numbers.map(lambda n: f"-{n}"),
        )
    )
    strings: st.SearchStrategy[str] = st.deferred(
        lambda: st.one_of(
            st.sampled_from(["parameters/quality", "Datastream/name", "FeatureOfInterest/name", "'offline'"]),
            st.text(max_size=6).map(lambda s: "'" + s.replace("'", "''") + "'"),
            st.tuples(st.sampled_from(["tolower", "toupper", "trim"]), strings).map(
                lambda t: f"{t[0]}({t[1]})"
            ),
            _call("concat", strings, strings),
            _call("substring", strings, numbers),
            _call("substring", strings, numbers, numbers),
        )
    )
    times = st.sampled_from(
        [
            "resultTime",
            "phenomenonTime",
            "Datastream/phenomenonTime",
            "2026-11-01T00:00:00+08:00",
            "2026-11-01T12:30:15.25Z",
            "now()",
            "mindatetime()",
            "maxdatetime()",
            "(now() sub duration'P1M')",
            "2026-11-01T00:00:00Z/2026-11-02T00:00:00Z",
            "2026-11-01",
        ]
    )
    conditions: st.SearchStrategy[str] = st.deferred(
        lambda: st.one_of(
            _binary(numbers, ["eq", "ne", "gt", "ge", "lt", "le"], numbers),
            _binary(strings, ["eq", "ne", "gt", "le"], strings),
            _binary(times, ["eq", "ne", "gt", "ge", "lt", "le"], times),
            st.tuples(
                st.sampled_from(["startswith", "endswith", "substringof", "contains"]), strings, strings
            ).map(lambda t: f"{t[0]}({t[1]},{t[2]})"),
            st.tuples(
                st.sampled_from(["before", "after", "meets", "during", "overlaps", "starts", "finishes"]),
                times,
                times,
            ).map(lambda t: f"{t[0]}({t[1]},{t[2]})"),
            _binary(conditions, ["and", "or", "eq"], conditions),
            conditions.map(lambda c: f"not {c}"),
            st.sampled_from(["true", "result eq true", "Datastream/Thing/properties/active eq false"]),
        )
    )
    mixtures = _binary(
        st.one_of(numbers, strings, times),
        ["eq", "gt", "add", "and"],
        st.one_of(numbers, strings, times),
    )
    return st.one_of(conditions, conditions, conditions, mixtures).filter(lambda query: len(query) <= 3000)


def _fuzz(engine: Engine, query: str) -> None:
    try:
        found = ids(engine, "Observations", query)
    except Invalid:
        return
    assert set(found) <= {row["id"] for row in ROWS[observations]}


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
@given(query=_fuzz_filters())
def test_generated_filters_either_run_or_are_refused_on_sqlite(query: str) -> None:
    _fuzz(_FUZZ_SQLITE, query)


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(query=_fuzz_filters())
def test_generated_filters_either_run_or_are_refused_on_postgresql(pg_engine: Engine, query: str) -> None:
    _fuzz(pg_engine, query)


_FUZZ_SQLITE = _sqlite()
