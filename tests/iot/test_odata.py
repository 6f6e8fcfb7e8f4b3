"""Parsing SensorThings query options: the standard's examples, precedence, every option's value
rules, $expand nesting, and errors that name the option and the position."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest
from starlette.datastructures import QueryParams

from zhishe.core.errors import Invalid
from zhishe.iot import odata
from zhishe.iot.odata import Arith, Call, Compare, Literal, Logic, Negate, Not, Path

# The $filter examples of OGC 18-088 clause 9.3.3.5 (tables "Built-in filter operators" and
# "Built-in query functions"), with the entity set each applies to.
SPEC_FILTERS = [
    ("ObservedProperties", "unitOfMeasurement/name eq 'degree Celsius'", "Datastreams"),
    ("Datastreams", "unitOfMeasurement/name ne 'degree Celsius'", None),
    ("Observations", "result gt 20.0", None),
    ("Observations", "result ge 20.0", None),
    ("Observations", "result lt 100", None),
    ("Observations", "result le 100", None),
    ("Observations", "result le 3.5 and FeatureOfInterest/id eq '1'", None),
    ("Observations", "result gt 20 or result le 3.5", None),
    ("Things", "not startswith(description,'test')", None),
    ("Observations", "result add 5 gt 10", None),
    ("Observations", "result sub 5 gt 10", None),
    ("Observations", "result mul 2 gt 2000", None),
    ("Observations", "result div 2 gt 4", None),
    ("Observations", "result mod 2 eq 0", None),
    ("Observations", "(result sub 5) gt 10", None),
    ("Things", "substringof('Sensor Things',description)", None),
    ("Things", "endswith(description,'Things')", None),
    ("Things", "startswith(description,'Sensor')", None),
    ("Things", "length(description) eq 13", None),
    ("Things", "indexof(description,'Sensor') eq 1", None),
    ("Things", "substring(description,1) eq 'ensor Things'", None),
    ("Things", "tolower(description) eq 'sensor things'", None),
    ("Things", "toupper(description) eq 'SENSOR THINGS'", None),
    ("Things", "trim(description) eq 'Sensor Things'", None),
    (
        "Datastreams",
        "concat(concat(unitOfMeasurement/symbol,', '), unitOfMeasurement/name) eq 'degree, Celsius'",
        None,
    ),
    ("Observations", "year(resultTime) eq 2015", None),
    ("Observations", "month(resultTime) eq 12", None),
    ("Observations", "day(resultTime) eq 8", None),
    ("Observations", "hour(resultTime) eq 1", None),
    ("Observations", "minute(resultTime) eq 0", None),
    ("Observations", "second(resultTime) eq 0", None),
    ("Observations", "fractionalseconds(resultTime) eq 0", None),
    ("Observations", "date(resultTime) ne date(validTime)", None),
    ("Observations", "time(resultTime) le validTime", None),
    ("Observations", "totaloffsetminutes(resultTime) eq 60", None),
    ("Observations", "resultTime ge now()", None),
    ("Observations", "resultTime eq mindatetime()", None),
    ("Observations", "resultTime eq maxdatetime()", None),
    ("Observations", "before(2016-07-26T09:56:00Z, validTime)", None),
    ("Observations", "after(2016-01-02T01:01:01.000Z/2016-01-03T23:59:59.999Z, validTime)", None),
    ("Observations", "meets(2016-07-26T09:56:00Z, validTime)", None),
    ("Observations", "during(2016-01-02T01:01:01.000Z/2016-01-03T23:59:59.999Z, validTime)", None),
    ("Observations", "overlaps(2016-07-26T09:56:00Z, validTime)", None),
    ("Observations", "starts(validTime, 2016-01-02T01:01:01.000Z/2016-01-03T23:59:59.999Z)", None),
    ("Observations", "finishes(validTime, 2016-01-02T01:01:01.000Z/2016-01-03T23:59:59.999Z)", None),
    ("Observations", "round(result) eq 32", None),
    ("Observations", "floor(result) eq 32", None),
    ("Observations", "ceiling(result) eq 33", None),
    ("Locations", "geo.distance(location, geography'POINT (30 10) ') lt 1", None),
    ("Locations", "geo.length(geography'LINESTRING (30 10, 10 30, 40 40) ') gt 1", None),
    ("Locations", "geo.intersects(location, geography'POLYGON ((30 10, 10 20, 20 40, 40 40, 30 10))')", None),
    ("Locations", "st_equals(location, geography'POINT (30 10)')", None),
    ("Locations", "st_within(location, geography'POLYGON ((30 10, 10 20, 20 40, 40 40, 30 10))')", None),
    (
        "Locations",
        "st_relate(location, geography'POLYGON ((30 10, 10 20, 20 40, 40 40, 30 10))', 'T********')",
        None,
    ),
    ("Observations", "Datastream/id eq 1", None),
    ("Things", "geo.distance(Locations/location, geography'POINT(-122 43)') gt 1", None),
    (
        "Things",
        "Datastreams/Observations/FeatureOfInterest/id eq 'FOI_1' and Datastreams/Observations/resultTime ge "
        "2010-06-01T00:00:00Z and Datastreams/Observations/resultTime le 2010-07-01T00:00:00Z",
        None,
    ),
    ("Observations", "Datastream/ObservedProperty/name eq 'PM2.5'", None),
    ("Things", "properties/site eq 'B2'", None),
]


def path(*segments: str, entity: str, kind: str, navigation: int = 0) -> Path:
    return Path(segments[:navigation], segments[navigation:], entity, kind)  # type: ignore[arg-type]


@pytest.mark.parametrize(("entity", "query", "_note"), SPEC_FILTERS, ids=[q for _, q, _ in SPEC_FILTERS])
def test_the_standards_filter_examples_parse_and_render_back_to_the_same_tree(
    entity: str, query: str, _note: str | None
) -> None:
    if entity == "ObservedProperties":  # the standard's table uses a Datastream property here
        entity = "Datastreams"
    tree = odata.parse_filter(query, entity=entity)
    assert odata.parse_filter(odata.render(tree), entity=entity) == tree


def test_not_takes_the_comparison_after_it_and_binds_tighter_than_and() -> None:
    tree = odata.parse_filter("not result eq 1 and id eq 2", entity="Observations")
    result = path("result", entity="Observation", kind="any")
    ident = path("id", entity="Observation", kind="id")
    assert tree == Logic(
        "and",
        (Not(Compare("eq", result, Literal("number", 1))), Compare("eq", ident, Literal("number", 2))),
    )


def test_multiplication_binds_tighter_than_addition_and_both_tighter_than_comparison() -> None:
    tree = odata.parse_filter("result add 2 mul 3 gt 7", entity="Observations")
    result = path("result", entity="Observation", kind="any")
    assert tree == Compare(
        "gt",
        Arith("add", result, Arith("mul", Literal("number", 2), Literal("number", 3))),
        Literal("number", 7),
    )


def test_and_binds_tighter_than_or_and_chains_are_one_node() -> None:
    tree = odata.parse_filter("id eq 1 or id eq 2 and id eq 3 or id eq 4", entity="Things")
    assert isinstance(tree, Logic) and tree.op == "or" and len(tree.items) == 3
    assert isinstance(tree.items[1], Logic) and tree.items[1].op == "and"


def test_arithmetic_is_left_associative_and_parentheses_regroup() -> None:
    left = odata.parse_filter("result sub 1 sub 2 eq 0", entity="Observations")
    grouped = odata.parse_filter("result sub (1 sub 2) eq 0", entity="Observations")
    result = path("result", entity="Observation", kind="any")
    one, two = Literal("number", 1), Literal("number", 2)
    assert isinstance(left, Compare) and left.left == Arith("sub", Arith("sub", result, one), two)
    assert isinstance(grouped, Compare) and grouped.left == Arith("sub", result, Arith("sub", one, two))


def test_unary_minus_folds_into_numbers_and_negates_the_rest() -> None:
    tree = odata.parse_filter("-result lt -5", entity="Observations")
    assert tree == Compare(
        "lt", Negate(path("result", entity="Observation", kind="any")), Literal("number", -5)
    )


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("'O''Brien'", "string", "O'Brien"),
        ("''", "string", ""),
        ("'智社 PM2.5'", "string", "智社 PM2.5"),
        ("42", "number", 42),
        ("10.00", "number", 10.0),
        ("1.5e3", "number", 1500.0),
        ("9223372036854775807", "number", 2**63 - 1),
        ("true", "boolean", True),
        ("FALSE", "boolean", False),
        ("null", "null", None),
        ("2026-11-01T00:00:00Z", "datetime", datetime(2026, 11, 1, tzinfo=UTC)),
        (
            "2026-11-01T00:00:00+08:00",
            "datetime",
            datetime(2026, 11, 1, tzinfo=timezone(timedelta(hours=8))),
        ),
        (
            "2026-11-01T00:00:00 08:00",  # an unencoded '+' that arrived as a space
            "datetime",
            datetime(2026, 11, 1, tzinfo=timezone(timedelta(hours=8))),
        ),
        ("2026-11-01T08:30Z", "datetime", datetime(2026, 11, 1, 8, 30, tzinfo=UTC)),
        ("2026-11-01T08:30:15.1234567Z", "datetime", datetime(2026, 11, 1, 8, 30, 15, 123456, tzinfo=UTC)),
        ("2026-11-01", "date", date(2026, 11, 1)),
        ("08:30:00", "time", time(8, 30)),
    ],
)
def test_literals_are_read_with_their_type(text: str, kind: str, value: object) -> None:
    tree = odata.parse_filter(f"name eq {text}", entity="Things")
    assert isinstance(tree, Compare)
    assert tree.right == Literal(kind, value)  # type: ignore[arg-type]
    if isinstance(value, datetime):
        assert isinstance(tree.right, Literal) and tree.right.value.utcoffset() == value.utcoffset()  # type: ignore[union-attr]


def test_durations_and_intervals_are_read() -> None:
    tree = odata.parse_filter("resultTime ge now() sub duration'P1DT2H'", entity="Observations")
    assert isinstance(tree, Compare) and isinstance(tree.right, Arith)
    duration = tree.right.right
    assert isinstance(duration, Literal) and isinstance(duration.value, odata.Duration)
    assert duration.value.span == timedelta(days=1, hours=2)
    interval = odata.parse_filter("during(resultTime, 2026-11-01T00:00:00Z/P1M)", entity="Observations")
    assert isinstance(interval, Call) and isinstance(interval.args[1], Literal)
    assert interval.args[1].value == odata.TimeRange(
        datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    )


def test_paths_split_navigation_from_properties_and_json_members() -> None:
    tree = odata.parse_filter("Datastream/Thing/properties/building/floor eq 3", entity="Observations")
    assert isinstance(tree, Compare)
    assert tree.left == Path(("Datastream", "Thing"), ("properties", "building", "floor"), "Thing", "json")
    at_id = odata.parse_filter("@iot.id eq 1", entity="Things")
    assert isinstance(at_id, Compare) and at_id.left == path("id", entity="Thing", kind="id")


def test_operators_and_function_names_are_case_insensitive_but_properties_are_not() -> None:
    assert odata.parse_filter("name EQ 'x' AND StartsWith(name,'x')", entity="Things") == odata.parse_filter(
        "name eq 'x' and startswith(name,'x')", entity="Things"
    )
    with pytest.raises(odata.QueryError, match="unknown property 'Name' of Things"):
        odata.parse_filter("Name eq 'x'", entity="Things")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("name eq 'x')", "$filter: unexpected ')' at position 12"),
        ("(name eq 'x'", "$filter: expected ')' to close the '(' at position 1, found end of the expression"),
        ("name eq", "$filter: unexpected end of the expression"),
        ("name eq 'abc", "$filter: the text starting at position 9 has no closing quote"),
        ("foo eq 1", "$filter: unknown property 'foo' of Things"),
        ("Datastreams/foo eq 1", "$filter: unknown property 'foo' of Datastreams"),
        ("Datastreams eq 1", "ends at the navigation property Datastreams"),
        ("name/first eq 'x'", "property 'name' of Things has no member 'first'"),
        ("name eq 1 eq 2", "comparisons do not chain"),
        ("frobnicate(name) eq 1", "$filter: unknown function 'frobnicate' at position 1"),
        ("startswith(name) eq true", "startswith() takes 2 arguments, got 1"),
        ("substring(name,1,2,3) eq 'x'", "substring() takes 2 or 3 arguments, got 4"),
        ("name eq 2026-13-01T00:00:00Z", "'2026-13-01T00:00:00Z' at position 9 is not a valid date-time"),
        ("name eq 99999999999999999999", "the number 99999999999999999999 at position 9 is too large"),
        ("name eq 1e999", "is too large"),
        ("name eq duration'P'", "is not an ISO 8601 duration"),
        ("name eq # 1", "unexpected character '#' at position 9"),
        ("name eq 'a\x00'", "character U+0000 at position 11 is not allowed"),
        ("name in ('a','b')", "unexpected 'in' at position 6"),
        ("(" * 101 + "name eq 'x'" + ")" * 101, "nested deeper than 100 levels"),
        ("not " * 101 + "name eq 'x'", "nested deeper than 100 levels"),
        ("x" * 20_001, "longer than 20,000 characters"),
    ],
)
def test_malformed_filters_name_the_option_and_the_place(query: str, message: str) -> None:
    with pytest.raises(odata.QueryError) as caught:
        odata.parse_filter(query, entity="Things")
    assert message in caught.value.message
    assert caught.value.message.startswith("$filter: ")
    assert caught.value.detail["option"] == "$filter"
    assert isinstance(caught.value, Invalid) and caught.value.status_code == 400


def test_nesting_up_to_the_limit_is_accepted() -> None:
    query = "(" * 99 + "name eq 'x'" + ")" * 99
    assert odata.parse_filter(query, entity="Things") == odata.parse_filter("name eq 'x'", entity="Things")


def test_orderby_keys_default_to_ascending_and_take_expressions() -> None:
    keys = odata.parse_orderby(
        "Datastream/name desc, phenomenonTime,length(Datastream/name) asc", entity="Observations"
    )
    assert [k.descending for k in keys] == [True, False, False]
    assert keys[0].expr == Path(("Datastream",), ("name",), "Datastream", "string")
    assert isinstance(keys[2].expr, Call) and keys[2].expr.name == "length"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("foo", "$orderby: unknown property 'foo' of Datastreams"),
        ("name sideways", "$orderby: unexpected 'sideways' at position 6"),
        ("name,", "$orderby: unexpected end of the expression"),
        ("Datastreams/id desc", "$orderby: unknown property 'Datastreams' of Datastreams"),
    ],
)
def test_bad_orderby_names_the_option(value: str, message: str) -> None:
    with pytest.raises(odata.QueryError) as caught:
        odata.parse_orderby(value, entity="Datastreams")
    assert message in caught.value.message


def test_top_defaults_and_is_capped_at_the_servers_page_limit() -> None:
    assert odata.parse_options("", entity="Things").top == 100
    assert odata.parse_options("", entity="Things", default_top=20, max_top=50).top == 20
    capped = odata.parse_options("$top=50000", entity="Things", default_top=100, max_top=10_000)
    assert (capped.top, capped.requested_top) == (10_000, 50_000)
    assert odata.parse_options("$top=0&$skip=7", entity="Things").top == 0


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("$top=abc", "$top must be a non-negative integer, got 'abc'"),
        ("$top=-1", "$top must be a non-negative integer, got '-1'"),
        ("$top=1.5", "$top must be a non-negative integer, got '1.5'"),
        ("$top=", "$top must be a non-negative integer, got ''"),
        ("$skip=%2B5", "$skip must be a non-negative integer, got '+5'"),
        ("$skip=99999999999999999999", "$skip must be a non-negative integer"),
        ("$count=yes", "$count must be true or false, got 'yes'"),
        ("$top=1&$top=2", "$top is given more than once"),
        ("$filter=", "$filter is empty"),
        ("$select=name,,id", "$select has an empty item"),
        ("$select=foo", "unknown property 'foo' of Things"),
        ("$select=properties/site", "$select takes property names, and 'properties/site' is a path"),
        ("$expand=Foo", "Thing has no navigation property 'Foo'"),
        ("$expand=Datastreams/Foo", "Datastream has no navigation property 'Foo'"),
        ("$expand=Datastreams($top=x)", "$top must be a non-negative integer, got 'x'"),
        ("$expand=Datastreams($frob=1)", "is not one of"),
        ("$expand=Datastreams($top=1", "a '(' has no matching ')'"),
        ("$expand=Datastreams($top=1)/Sensor", "options in parentheses must end the item"),
        ("$expand=Datastreams($filter=foo eq 1)", "unknown property 'foo' of Datastreams"),
        (
            "$expand=Datastreams($top=1),Datastreams($top=2)",
            "Datastreams is expanded twice with different options",
        ),
    ],
)
def test_bad_option_values_are_refused_naming_the_option(query: str, message: str) -> None:
    with pytest.raises(odata.QueryError) as caught:
        odata.parse_options(query, entity="Things")
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("query", "option"),
    [("$search=oven", "$search"), ("$format=json", "$format"), ("$select=distinct:name", "$select")],
)
def test_options_outside_sensorthings_v1_1_answer_not_implemented(query: str, option: str) -> None:
    with pytest.raises(odata.UnsupportedOption) as caught:
        odata.parse_options(query, entity="Things")
    assert caught.value.status_code == 501
    assert caught.value.detail["option"] == option


def test_count_select_and_custom_parameters() -> None:
    opts = odata.parse_options(
        "$count=true&$select=@iot.id,name,Datastreams,@iot.selfLink,name&custom=1", entity="Things"
    )
    assert opts.count is True
    assert opts.select == ("id", "name", "Datastreams", "@iot.selfLink")
    assert odata.parse_options("$count=FALSE&$select=*", entity="Things").select == ()


def test_expand_nests_options_and_paths_and_merges_repeated_navigation() -> None:
    opts = odata.parse_options(
        "$expand=Datastreams($select=name,unitOfMeasurement;$top=2;$orderby=name desc;"
        "$expand=ObservedProperty($select=name)),Datastreams/Sensor,Locations",
        entity="Things",
        default_top=100,
        max_top=1000,
    )
    datastreams, locations = opts.expand
    assert (datastreams.navigation, datastreams.collection) == ("Datastreams", True)
    inner = datastreams.options
    assert (inner.entity, inner.select, inner.top, inner.orderby[0].descending) == (
        "Datastreams",
        ("name", "unitOfMeasurement"),
        2,
        True,
    )
    assert [(e.navigation, e.collection, e.options.select) for e in inner.expand] == [
        ("ObservedProperty", False, ("name",)),
        ("Sensor", False, ()),
    ]
    assert (locations.navigation, locations.options.top) == ("Locations", 100)


def test_expand_options_may_hold_separators_inside_quotes() -> None:
    opts = odata.parse_options(
        "$expand=Datastreams($filter=name eq 'a;b),c(' or name eq 'O''Brien';$top=1)", entity="Things"
    )
    (item,) = opts.expand
    assert item.options.top == 1
    spaced = odata.parse_options("$expand=Datastreams( $top=1 ; $select= name , id )", entity="Things")
    assert (spaced.expand[0].options.top, spaced.expand[0].options.select) == (1, ("name", "id"))
    assert odata.render(item.options.filter) == "((name eq 'a;b),c(') or (name eq 'O''Brien'))"  # type: ignore[arg-type]


def test_expand_paths_nest_one_level_per_segment() -> None:
    (item,) = odata.parse_options(
        "$expand=Datastreams/Observations/FeatureOfInterest", entity="Things"
    ).expand
    (observations,) = item.options.expand
    (feature,) = observations.options.expand
    assert [item.navigation, observations.navigation, feature.navigation] == [
        "Datastreams",
        "Observations",
        "FeatureOfInterest",
    ]
    assert feature.options.entity == "FeaturesOfInterest"
    with pytest.raises(odata.QueryError, match="nested deeper than 10 levels"):
        odata.parse_options("$expand=" + "/".join(["Datastreams/Thing"] * 6), entity="Things")


def test_options_come_from_a_query_string_a_mapping_or_pairs_alike() -> None:
    text = odata.parse_options("$filter=name%20eq%20'x'&$top=5", entity="Things")
    mapping = odata.parse_options({"$filter": "name eq 'x'", "$top": "5"}, entity="Things")
    pairs = odata.parse_options([("$filter", "name eq 'x'"), ("$top", "5")], entity="Things")
    assert text == mapping == pairs


def test_starlette_query_params_are_read_with_their_repeated_keys() -> None:
    params = QueryParams("$filter=name%20eq%20'x'&$top=5&$expand=Datastreams")
    opts = odata.parse_options(params, entity="Things")
    assert (opts.top, [e.navigation for e in opts.expand]) == (5, ["Datastreams"])
    with pytest.raises(odata.QueryError, match=r"\$top is given more than once"):
        odata.parse_options(QueryParams("$top=1&$top=2"), entity="Things")


def test_an_unknown_entity_set_is_refused() -> None:
    with pytest.raises(odata.QueryError, match="unknown entity set 'Gadgets'"):
        odata.parse_options("", entity="Gadgets")
