"""Property-based testing of the open-data API from /openapi.json, with published data present (an
open dataset and a k-anonymous release): no generated request may cause a 5xx, and every JSON error
uses the platform's envelope.

Generated path parameters often name the real datasets and releases, so that requests reach the
data rather than a 404; the query endpoints also get generated SoQL parameters, which the OpenAPI
document cannot describe (their names start with ``$`` or are the dataset's columns)."""

from __future__ import annotations

import re
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opendata.open_world import REGISTER_POLICY, OpenWorld

OPEN_DATA = re.compile(
    r"^(/opendata/api/v1/|/api/v1/opendata/|/catalog\.jsonld$|/opendata/datasets/\{[^}]+\}\.jsonld$)"
)
KNOWN = {
    "dataset": st.sampled_from(["air", "register"]),
    "number": st.sampled_from([1, 2]),
    "fmt": st.sampled_from(["json", "csv", "ndjson", "parquet", "xlsx", "geojson", "xml"]),
    "release_id": st.sampled_from([1, 2, 3]),
    "request_id": st.sampled_from([1, 2]),
    "token_id": st.sampled_from([1, 2]),
}
FRAGMENTS = [
    "pm25 > 50",
    "station = '东四'",
    "within_circle(location, 39.9, 116.4, 5000)",
    "date_trunc_ymd(observed_at)",
    "count(*)",
    "station, avg(pm25) AS m",
    "station",
    "observed_at DESC",
    "aqi % 7",
    "sum(aqi) > 100",
    "東四",
    "10",
    "0",
    "'",
    "(",
    "*",
]
SOQL = st.dictionaries(
    keys=st.sampled_from(
        [
            "$select",
            "$where",
            "$order",
            "$group",
            "$having",
            "$limit",
            "$offset",
            "$q",
            "$next",
            "station",
            "aqi",
        ]
    ),
    values=st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=40)),
    max_size=4,
)


SQL = st.one_of(
    st.sampled_from(
        [
            'SELECT * FROM "air"',
            'SELECT station, count(*) AS n, avg(pm25) FROM "air@1" GROUP BY station',
            'SELECT * FROM "register" WHERE household_size > 2',
            'SELECT a.station, b.building_id FROM "air" a, "register" b LIMIT 5',
            "SELECT sum(aqi) FROM air",
            "WITH t AS (SELECT * FROM air) SELECT count(*) FROM t",
        ]
    ),
    st.text(max_size=80),
).flatmap(
    lambda base: st.sampled_from(["", " LIMIT 3", " ORDER BY 1", "'", " WHERE 1=1", ";"]).map(
        lambda s: base + s
    )
)


def _strategy(operation: Any) -> Any:
    strategy = operation.as_strategy()
    names = re.findall(r"\{([^}]+)\}", operation.path)
    known = {n: KNOWN[n] for n in names if n in KNOWN}
    soql = "query.{fmt}" in operation.path
    data = soql or "download.{fmt}" in operation.path
    sql = operation.path.endswith("/sql")

    def fill(drawn: tuple[Any, dict[str, Any], int, dict[str, str], Any, str]) -> Any:
        case, values, luck, extra, version, text = drawn
        if luck and values:  # three times in four: name the real data
            case.path_parameters = {**(case.path_parameters or {}), **values}
            if soql and case.path_parameters.get("fmt") not in ("json", "csv", "ndjson"):
                case.path_parameters["fmt"] = "json"
        if data and luck:
            query = dict(case.query or {})
            query.pop("version", None)
            if version is not None:
                query["version"] = version
            case.query = query
        if soql and extra:
            case.query = {**(case.query or {}), **extra}
        if sql and luck:
            if case.method.upper() == "GET":
                case.query = {**(case.query or {}), "query": text}
            elif isinstance(case.body, dict):
                case.body = {**case.body, "query": text}
        return case

    return st.tuples(
        strategy,
        st.fixed_dictionaries(known),
        st.sampled_from([1, 1, 1, 0]),  # simplest (and most often) first: name the real data
        SOQL if soql else st.just({}),
        st.sampled_from([None, 1, 2]),
        SQL if sql else st.just(""),
    ).map(fill)


def _check_operation(operation: Any, headers: dict[str, str], failures: list[str]) -> None:
    @given(case=_strategy(operation))
    @settings(max_examples=14, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: Any) -> None:
        response = case.call(headers=headers)
        label = f"{case.method} {case.formatted_path} {case.query or ''}"
        if response.status_code >= 500:
            failures.append(f"{label}: {response.status_code} {response.text[:300]}")
        elif response.status_code >= 400 and "application/json" in str(response.headers.get("content-type")):
            body = response.json()
            if set(body) != {"error", "request_id"} or not body["error"].get("message"):
                failures.append(f"{label}: not the error envelope: {str(body)[:300]}")

    run()


def test_no_generated_open_data_request_causes_a_server_error(
    app: Any, world: Any, db: Any, client: Any
) -> None:
    ow = OpenWorld(world, db, client)
    ow.open_air()
    ow.register()
    assert ow.configure("register", who="police.steward", policy=REGISTER_POLICY).status_code == 200
    k_anonymous = ow.release("register", who="police.steward")
    assert k_anonymous["model"] == "k_anonymity" and k_anonymous["risk"]["meets_policy"]
    headers = ow.h("bureau.admin")

    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    checked: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if not OPEN_DATA.match(operation.path):
            continue
        _check_operation(operation, headers, failures)
        checked.append(f"{operation.method.upper()} {operation.path}")
    assert len(checked) >= 20, checked
    assert "GET /opendata/api/v1/datasets/{dataset}/query.{fmt}" in checked
    assert "POST /opendata/api/v1/sql" in checked and "GET /catalog.jsonld" in checked
    assert failures == []

    # the published data is still there and still answers
    assert ow.query(**{"$limit": "1"}).json()["total"] == 144
    assert client.get("/opendata/api/v1/datasets/register/query.json").status_code == 200
