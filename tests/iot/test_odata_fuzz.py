"""Every parser of the SensorThings query layer, fed random text, random unicode, very long input,
deep nesting and shuffled grammar tokens, raises nothing but Invalid; and what parses renders back
to the same tree."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zhishe.core.errors import Invalid
from zhishe.iot import odata

ENTITIES = list(odata.ENTITY_SETS)

PARSERS: dict[str, Callable[[str], object]] = {
    "filter": lambda text: odata.parse_filter(text, entity="Observations"),
    "orderby": lambda text: odata.parse_orderby(text, entity="Datastreams"),
    "select": lambda text: odata.parse_select(text, entity="Things"),
    "expand": lambda text: odata.parse_expand(text, entity="Things"),
    "top": lambda text: odata.parse_top(text),
    "skip": odata.parse_skip,
    "count": odata.parse_count,
    "options": lambda text: odata.parse_options(text, entity="Things"),
    "path": odata.parse_path,
}

# pieces of the grammar, so shuffled input reaches deep into the parsers
VOCABULARY = [
    " ",
    "(",
    ")",
    ",",
    "/",
    "-",
    "'",
    "''",
    ";",
    "=",
    "&",
    "$",
    "eq",
    "ne",
    "gt",
    "and",
    "or",
    "not",
    "add",
    "mul",
    "div",
    "mod",
    "asc",
    "desc",
    "true",
    "null",
    "0",
    "1",
    "-7",
    "2.5",
    "1e3",
    "99999999999999999999",
    "2026-11-01T00:00:00Z",
    "2026-11-01T00:00:00+08:00",
    "2026-02-30",
    "2026-11-01",
    "12:00:00",
    "duration'P1D'",
    "duration'",
    "geography'POINT(1 2)'",
    "/P1D",
    "result",
    "name",
    "id",
    "@iot.id",
    "Datastream",
    "Datastreams",
    "Observations",
    "ObservedProperty",
    "properties",
    "Thing",
    "Sensor",
    "FeatureOfInterest",
    "phenomenonTime",
    "resultTime",
    "startswith(",
    "substring(",
    "year(",
    "now()",
    "geo.distance(",
    "st_relate(",
    "contains(",
    "$filter=",
    "$top=",
    "$skip=",
    "$count=",
    "$select=",
    "$expand=",
    "$orderby=",
    "$search=",
    "Things(1)",
    "Things('a')",
    "$value",
    "$ref",
    "distinct:",
    "\x00",
    "\ud800",
    "智",
    "\u00a0",
]

texts = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=200),
    st.lists(st.sampled_from(VOCABULARY), max_size=40).map("".join),
    st.lists(st.sampled_from(VOCABULARY), max_size=40).map(" ".join),
    st.integers(min_value=0, max_value=1500).map(lambda n: "(" * n + "result eq 1" + ")" * n),
    st.integers(min_value=0, max_value=1500).map(lambda n: "not " * n + "result eq 1"),
    st.integers(min_value=0, max_value=1500).map(lambda n: "-" * n + "1 eq 1"),
    st.integers(min_value=0, max_value=60).map(lambda n: "Datastreams(" * n + ")" * n),
    st.integers(min_value=1, max_value=30_000).map(lambda n: "a" * n),
)


@pytest.mark.parametrize("parser", list(PARSERS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts)
def test_any_text_gives_a_result_or_invalid(parser: str, text: str) -> None:
    try:
        PARSERS[parser](text)
    except Invalid as exc:
        assert exc.message and len(exc.message) < 1_000


@settings(max_examples=150, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(st.one_of(st.sampled_from(odata.options.OPTIONS), st.text(max_size=12)), texts), max_size=5
    ),
    entity=st.sampled_from(ENTITIES),
)
def test_any_option_pairs_on_any_entity_set_give_options_or_invalid(
    pairs: list[tuple[str, str]], entity: str
) -> None:
    try:
        opts = odata.parse_options(pairs, entity=entity)
    except Invalid:
        return
    assert 0 <= opts.top <= 10_000


def _filters() -> st.SearchStrategy[str]:
    atoms = st.sampled_from(
        [
            "result",
            "id",
            "Datastream/name",
            "Datastream/Thing/properties/site",
            "parameters/a/b",
            "'it''s'",
            "-3",
            "2.5",
            "true",
            "null",
            "2026-11-01T00:00:00+08:00",
            "2026-11-01",
            "08:00:00",
            "duration'PT1H'",
            "2026-11-01T00:00:00Z/2026-11-02T00:00:00Z",
            "now()",
            "geography'POINT(1 2)'",
        ]
    )

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        ops = st.sampled_from(["eq", "ne", "lt", "add", "sub", "mul", "div", "mod", "and", "or"])
        names = st.sampled_from(["length", "year", "round", "startswith", "concat", "substring", "before"])
        return st.one_of(
            st.tuples(inner, ops, inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            inner.map(lambda s: f"not ({s})"),
            inner.map(lambda s: f"-({s})"),
            st.tuples(names, st.lists(inner, min_size=1, max_size=3)).map(
                lambda t: f"{t[0]}({','.join(t[1])})"
            ),
        )

    return st.recursive(atoms, extend, max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(text=_filters())
def test_a_parsed_filter_renders_back_to_the_same_tree(text: str) -> None:
    try:
        tree = odata.parse_filter(text, entity="Observations")
    except Invalid:
        return
    assert odata.parse_filter(odata.render(tree), entity="Observations") == tree


@settings(max_examples=100, deadline=None)
@given(
    path=st.lists(
        st.sampled_from(
            [
                "Things(1)",
                "Datastreams",
                "Observations(2)",
                "Sensor",
                "name",
                "$value",
                "$ref",
                "properties",
                "x",
                "Things",
            ]
        ),
        max_size=6,
    )
)
def test_any_path_of_known_segments_parses_or_is_invalid(path: list[str]) -> None:
    try:
        parsed = odata.parse_path("/" + "/".join(path))
    except Invalid:
        return
    assert parsed.kind in ("service", "collection", "entity", "property", "value", "ref")
