"""Resource paths and links: parse_path over the standard's usages, self and navigation links, and
next links that keep every other option and advance $skip."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from zhishe.iot import odata
from zhishe.iot.odata import ResourcePath, Segment


@pytest.mark.parametrize(
    ("path", "kind", "entity_set", "ids", "prop"),
    [
        ("/", "service", None, [], ()),
        ("", "service", None, [], ()),
        ("/Things", "collection", "Things", [None], ()),
        ("/Things(1)", "entity", "Things", [1], ()),
        ("/Things('abc')", "entity", "Things", ["abc"], ()),
        ("/Things('O''Brien/1')", "entity", "Things", ["O'Brien/1"], ()),
        ("/Things(1)/Datastreams", "collection", "Datastreams", [1, None], ()),
        ("/Datastreams(5)/Observations", "collection", "Observations", [5, None], ()),
        ("/Datastreams(1)/Observations(1)", "entity", "Observations", [1, 1], ()),
        (
            "/Datastreams(1)/Observations(1)/FeatureOfInterest",
            "entity",
            "FeaturesOfInterest",
            [1, 1, None],
            (),
        ),
        ("/Datastreams(1)/Sensor", "entity", "Sensors", [1, None], ()),
        ("/Observations(12)/result", "property", "Observations", [12], ("result",)),
        ("/Observations(1)/resultTime/$value", "value", "Observations", [1], ("resultTime",)),
        ("/Things(1)/properties/owner", "property", "Things", [1], ("properties", "owner")),
        ("/Things(1)/properties/owner/$value", "value", "Things", [1], ("properties", "owner")),
        ("/Datastreams(1)/Observations/$ref", "ref", "Observations", [1, None], ()),
        ("/Things(1)/Datastreams/$ref", "ref", "Datastreams", [1, None], ()),
        ("/Things/$ref", "ref", "Things", [None], ()),
        ("/MultiDatastreams(2)/ObservedProperties", "collection", "ObservedProperties", [2, None], ()),
        ("/Things(1)/", "entity", "Things", [1], ()),
    ],
)
def test_resource_paths_of_the_standards_usages(
    path: str, kind: str, entity_set: str | None, ids: list[object], prop: tuple[str, ...]
) -> None:
    parsed = odata.parse_path(path)
    assert parsed.kind == kind
    assert parsed.entity_set == entity_set
    assert [s.id for s in parsed.segments] == ids
    assert parsed.property == prop


def test_a_nested_path_keeps_each_segments_navigation_and_type() -> None:
    assert odata.parse_path("/Things(1)/Datastreams(5)/Observations") == ResourcePath(
        (
            Segment("Things", "Things", "Thing", 1, False),
            Segment("Datastreams", "Datastreams", "Datastream", 5, False),
            Segment("Observations", "Observations", "Observation", None, True),
        )
    )


@pytest.mark.parametrize(
    ("path", "message", "entity"),
    [
        ("/Gadgets(1)", "unknown entity set 'Gadgets'", None),
        ("/Things(1)/Sensors", "Thing has no property or navigation property 'Sensors'", "Thing"),
        (
            "/Observations(1)/Thing",
            "Observation has no property or navigation property 'Thing'",
            "Observation",
        ),
        ("/Things/Datastreams", "Things is a collection; address one entity", "Thing"),
        (
            "/Datastreams(1)/Sensor(2)",
            "Sensor of Datastream is a single entity and takes no id",
            "Datastream",
        ),
        ("/Things(1)/name/first", "name of Thing has no member 'first'", "Thing"),
        ("/Things(abc)", "the id in 'Things(abc)' must be an integer or a quoted string", None),
        ("/Things()", "must be an integer or a quoted string", None),
        ("/Things(1)/$value", "$value follows a property", None),
        ("/Things(1)/name/$ref", "$ref follows an entity or a collection", None),
        ("/Things(1)/$ref/Datastreams", "$ref must end the path", None),
        ("/Things(1)//Datastreams", "Thing has no property or navigation property ''", "Thing"),
    ],
)
def test_wrong_paths_name_the_entity_type_they_were_looked_up_in(
    path: str, message: str, entity: str | None
) -> None:
    with pytest.raises(odata.QueryError) as caught:
        odata.parse_path(path)
    assert message in caught.value.message
    assert caught.value.detail.get("entity") == entity


def test_self_and_navigation_links_are_absolute_or_relative() -> None:
    base = "https://zhishe.example/sensorthings/v1.1/"
    assert odata.self_link(base, "Things", 1) == "https://zhishe.example/sensorthings/v1.1/Things(1)"
    assert odata.navigation_link("", "Things", 1, "Datastreams") == "Things(1)/Datastreams"
    assert odata.self_link("", "Things", "O'Brien 1") == "Things('O''Brien%201')"
    parsed = odata.parse_path("/" + odata.self_link("", "Things", "a/b").replace("%2F", "/"))
    assert parsed.segments[0].id == "a/b"


def test_next_link_advances_skip_and_keeps_every_other_option_as_sent() -> None:
    url = (
        "http://example.org/sensorthings/v1.1/Observations?$filter=result%20gt%205%20and%20"
        "resultTime%20ge%202026-11-01T00:00:00%2B08:00&$orderby=phenomenonTime%20desc&$top=2&$skip=4"
        "&$select=result,phenomenonTime&custom=%E6%99%BA"
    )
    link = odata.next_link(url, top=2, skip=4, more=True)
    assert link == (
        "http://example.org/sensorthings/v1.1/Observations?$filter=result%20gt%205%20and%20"
        "resultTime%20ge%202026-11-01T00:00:00%2B08:00&$orderby=phenomenonTime%20desc"
        "&$select=result,phenomenonTime&custom=%E6%99%BA&$top=2&$skip=6"
    )
    assert odata.next_link(url, top=2, skip=4, more=False) is None
    assert odata.next_link(url, top=0, skip=4, more=True) is None


def test_next_link_round_trips_through_parse_options() -> None:
    url = "http://example.org/v1.1/Things?$filter=name eq 'a%26b'&$count=true&$expand=Datastreams($top=1)"
    first = odata.parse_options(urlsplit(url).query, entity="Things", default_top=10)
    link = odata.next_link(url, top=first.top, skip=first.skip, more=True)
    assert link is not None and " " not in link
    second = odata.parse_options(urlsplit(link).query, entity="Things", default_top=10)
    assert (second.filter, second.count, second.expand) == (first.filter, first.count, first.expand)
    assert (second.top, second.skip) == (10, 10)


def test_a_top_above_the_page_limit_pages_at_the_limit() -> None:
    opts = odata.parse_options("$top=50000", entity="Things", max_top=1000)
    link = odata.next_link("http://x/v1.1/Things?$top=50000", top=opts.top, skip=opts.skip, more=True)
    assert link == "http://x/v1.1/Things?$top=1000&$skip=1000"


def test_an_expanded_collection_gets_its_own_next_link() -> None:
    opts = odata.parse_options(
        [("$expand", "Datastreams($filter=name eq 'a&b';$orderby=name desc;$top=2;$expand=Sensor)")],
        entity="Things",
    )
    (item,) = opts.expand
    link = odata.expand_next_link(
        "http://x/v1.1", entity_set="Things", entity_id=7, item=item, skip=item.options.skip, more=True
    )
    assert link is not None
    parts = urlsplit(link)
    assert parts.path == "/v1.1/Things(7)/Datastreams"
    query = dict(parse_qsl(parts.query))
    assert query == {
        "$filter": "(name eq 'a&b')",
        "$orderby": "name desc",
        "$expand": "Sensor",
        "$top": "2",
        "$skip": "2",
    }
    again = odata.parse_options(parts.query, entity="Datastreams")
    assert (again.filter, again.orderby, again.expand) == (
        item.options.filter,
        item.options.orderby,
        item.options.expand,
    )
    assert (
        odata.expand_next_link("http://x", entity_set="Things", entity_id=7, item=item, skip=0, more=False)
        is None
    )
