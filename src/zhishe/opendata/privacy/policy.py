"""Release policies: one rule per column plus the privacy model, parsed and validated from JSON.

A policy in JSON::

    {"columns": {"name": "drop",
                 "resident_id": {"rule": "pseudonymise"},
                 "age": {"rule": "keep"},
                 "income": {"rule": "generalise", "method": "range", "width": 1000, "top": 20000},
                 "born": {"rule": "generalise", "method": "date", "unit": "year"},
                 "address": {"rule": "generalise", "method": "hierarchy", "level": "community"}},
     "model": {"type": "k_anonymity", "k": 5, "quasi_identifiers": ["age", "address"],
               "sensitive": ["diagnosis"], "l": 2, "max_suppression": 0.05}}

`parse_policy` checks it against the dataset's column types and raises `Invalid` naming the column
and the field at fault. `Policy.to_json()` gives the same shape back, so a policy can be stored.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from zhishe.core.errors import Invalid
from zhishe.opendata.privacy.dp import Measure, check_epsilon, check_measure

__all__ = [
    "COLUMN_TYPES",
    "DPModel",
    "GeneraliseMethod",
    "KAnonymity",
    "NoModel",
    "Policy",
    "Rule",
    "RuleKind",
    "parse_policy",
    "unhandled",
]

RuleKind = Literal["keep", "drop", "pseudonymise", "generalise", "suppress"]
GeneraliseMethod = Literal["range", "date", "hierarchy", "topcode", "bottomcode"]
DateUnit = Literal["day", "month", "year"]

#: The column types a dataset schema declares (see `catalog.types.ColumnType`).
COLUMN_TYPES = ("string", "integer", "decimal", "boolean", "date", "datetime", "point")
_NUMERIC = ("integer", "decimal")
_RULES: dict[str, tuple[str, ...]] = {
    "keep": COLUMN_TYPES,
    "drop": COLUMN_TYPES,
    "suppress": COLUMN_TYPES,
    "pseudonymise": ("string", "integer", "decimal", "boolean", "date", "datetime"),
    "generalise": ("string", "integer", "decimal", "date", "datetime"),
}
_METHODS: dict[str, tuple[str, ...]] = {
    "range": _NUMERIC,
    "topcode": _NUMERIC,
    "bottomcode": _NUMERIC,
    "date": ("date", "datetime"),
    "hierarchy": ("string", "integer"),
}
_UNITS: dict[str, tuple[str, ...]] = {"date": ("month", "year"), "datetime": ("day", "month", "year")}
_RULE_FIELDS: dict[str, set[str]] = {
    "range": {"width", "origin", "edges", "top", "bottom"},
    "topcode": {"top", "threshold", "bottom"},
    "bottomcode": {"bottom", "threshold", "top"},
    "date": {"unit", "timezone"},
    "hierarchy": {"hierarchy", "level"},
}


@dataclass(frozen=True, slots=True)
class Rule:
    """What happens to one column of a release."""

    kind: RuleKind
    method: GeneraliseMethod | None = None
    #: range: bin width and the origin bins start from; or explicit bin edges.
    width: float | None = None
    origin: float | None = None
    edges: tuple[float, ...] | None = None
    #: top-coding (values >= top become "top+") and bottom-coding (values < bottom become "<bottom").
    top: float | None = None
    bottom: float | None = None
    #: date: truncate to this unit, in this IANA time zone (datetimes only; default UTC).
    unit: DateUnit | None = None
    timezone: str | None = None
    #: hierarchy: the name of the caller-supplied hierarchy (default: the column's name) and the level.
    hierarchy: str | None = None
    level: str | int | None = None

    def to_json(self) -> dict[str, Any]:
        """The rule as JSON, without unset fields."""
        out: dict[str, Any] = {"rule": self.kind}
        for name in ("method", "width", "origin", "top", "bottom", "unit", "timezone", "hierarchy", "level"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.edges is not None:
            out["edges"] = list(self.edges)
        return out


@dataclass(frozen=True, slots=True)
class NoModel:
    """No privacy model: only the column rules apply."""

    type: Literal["none"] = "none"

    def to_json(self) -> dict[str, Any]:
        """The model as JSON."""
        return {"type": "none"}


@dataclass(frozen=True, slots=True)
class KAnonymity:
    """k-anonymity (Mondrian) over the quasi-identifiers, optionally with distinct l-diversity."""

    quasi_identifiers: tuple[str, ...]
    k: int = 5
    sensitive: tuple[str, ...] = ()
    l: int | None = None  # noqa: E741 - the standard name
    #: Largest share of rows that may be suppressed for the release to meet the policy.
    max_suppression: float = 0.05
    type: Literal["k_anonymity"] = "k_anonymity"

    def to_json(self) -> dict[str, Any]:
        """The model as JSON."""
        out: dict[str, Any] = {
            "type": self.type,
            "k": self.k,
            "quasi_identifiers": list(self.quasi_identifiers),
            "sensitive": list(self.sensitive),
            "max_suppression": self.max_suppression,
        }
        if self.l is not None:
            out["l"] = self.l
        return out


@dataclass(frozen=True, slots=True)
class DPModel:
    """Differentially private aggregates: noisy counts, sums and means by public dimensions."""

    epsilon: float
    dimensions: tuple[str, ...]
    measures: tuple[Measure, ...]
    #: The public values of each dimension; the groups are their cartesian product.
    dimension_values: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    #: How many rows one person may contribute (the privacy unit).
    contributions: int = 1
    type: Literal["dp"] = "dp"

    def to_json(self) -> dict[str, Any]:
        """The model as JSON."""
        return {
            "type": self.type,
            "epsilon": self.epsilon,
            "dimensions": list(self.dimensions),
            "measures": [m.to_json() for m in self.measures],
            "dimension_values": {k: list(v) for k, v in self.dimension_values.items()},
            "contributions": self.contributions,
        }


Model = NoModel | KAnonymity | DPModel


@dataclass(frozen=True, slots=True)
class Policy:
    """The rules of one release: a rule per column, and the privacy model."""

    columns: Mapping[str, Rule]
    model: Model = field(default_factory=NoModel)

    def to_json(self) -> dict[str, Any]:
        """The policy as JSON; `parse_policy` reads it back."""
        return {"columns": {n: r.to_json() for n, r in self.columns.items()}, "model": self.model.to_json()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], columns: Mapping[str, str]) -> Policy:
        """Read a policy stored with `to_json` (the same as `parse_policy`)."""
        return parse_policy(data, columns)

    def output_columns(self, order: Sequence[str]) -> list[str]:
        """The columns of the release, in `order`, without the dropped ones."""
        return [c for c in order if c in self.columns and self.columns[c].kind != "drop"]


def unhandled(policy: Policy, columns: Mapping[str, str] | Sequence[str]) -> list[str]:
    """The dataset's columns that the policy gives no rule, in dataset order."""
    return [c for c in columns if c not in policy.columns]


def _bad(message: str, column: str | None, field_name: str) -> Invalid:
    return Invalid(message, detail={"column": column, "field": field_name})


def _number(raw: Any, column: str, name: str, *, integer: bool = False) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise _bad(f"Column '{column}': {name} must be a finite number, not {raw!r}.", column, name)
    if integer and float(raw) != int(raw):
        raise _bad(f"Column '{column}': {name} must be a whole number for an integer column.", column, name)
    return int(raw) if integer else float(raw)


def _parse_rule(column: str, ctype: str, raw: Any) -> Rule:
    spec: dict[str, Any] = (
        {"rule": raw} if isinstance(raw, str) else dict(raw) if isinstance(raw, Mapping) else {}
    )
    kind = spec.pop("rule", None)
    if kind not in _RULES:
        allowed = ", ".join(_RULES)
        raise _bad(f"Column '{column}': rule {kind!r} is not one of {allowed}.", column, "rule")
    if ctype not in _RULES[kind]:
        raise _bad(f"Column '{column}': rule '{kind}' is not allowed for {ctype} columns.", column, "rule")
    if kind != "generalise":
        if spec:
            raise _bad(
                f"Column '{column}': rule '{kind}' takes no {sorted(spec)[0]!r}.", column, sorted(spec)[0]
            )
        return Rule(cast(RuleKind, kind))
    method = spec.pop("method", None)
    if method not in _METHODS:
        allowed = ", ".join(_METHODS)
        raise _bad(f"Column '{column}': generalise needs a method, one of {allowed}.", column, "method")
    if ctype not in _METHODS[method]:
        raise _bad(
            f"Column '{column}': generalise method '{method}' is not allowed for {ctype} columns.",
            column,
            "method",
        )
    extra = set(spec) - _RULE_FIELDS[method]
    if extra:
        name = sorted(extra)[0]
        raise _bad(f"Column '{column}': method '{method}' takes no {name!r}.", column, name)
    if method == "date":
        unit = spec.get("unit")
        if unit not in _UNITS[ctype]:
            raise _bad(
                f"Column '{column}': date generalisation of a {ctype} needs unit one of {', '.join(_UNITS[ctype])}.",
                column,
                "unit",
            )
        tz = spec.get("timezone")
        if tz is not None:
            if ctype != "datetime" or not isinstance(tz, str) or not tz:
                raise _bad(
                    f"Column '{column}': timezone applies to datetime columns only.", column, "timezone"
                )
            try:
                ZoneInfo(tz)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise _bad(f"Column '{column}': unknown time zone {tz!r}.", column, "timezone") from exc
        return Rule("generalise", "date", unit=unit, timezone=tz)
    if method == "hierarchy":
        level = spec.get("level")
        if isinstance(level, bool) or not (
            (isinstance(level, int) and level >= 1) or (isinstance(level, str) and level)
        ):
            raise _bad(
                f"Column '{column}': hierarchy generalisation needs a level (a name, or an index from 1).",
                column,
                "level",
            )
        tree_name = spec.get("hierarchy")
        if tree_name is not None and (not isinstance(tree_name, str) or not tree_name):
            raise _bad(f"Column '{column}': hierarchy must be a name.", column, "hierarchy")
        return Rule("generalise", "hierarchy", hierarchy=tree_name, level=level)
    return _parse_numeric(column, ctype, cast(GeneraliseMethod, method), spec)


def _parse_numeric(column: str, ctype: str, method: GeneraliseMethod, spec: dict[str, Any]) -> Rule:
    integer = ctype == "integer"
    threshold = spec.pop("threshold", None)
    if threshold is not None:
        key = "top" if method == "topcode" else "bottom"
        if spec.get(key) is not None:
            raise _bad(f"Column '{column}': give either threshold or {key}, not both.", column, "threshold")
        spec[key] = threshold
    top = _number(spec["top"], column, "top", integer=integer) if spec.get("top") is not None else None
    bottom = (
        _number(spec["bottom"], column, "bottom", integer=integer) if spec.get("bottom") is not None else None
    )
    if method == "topcode" and top is None:
        raise _bad(f"Column '{column}': topcode needs a threshold.", column, "threshold")
    if method == "bottomcode" and bottom is None:
        raise _bad(f"Column '{column}': bottomcode needs a threshold.", column, "threshold")
    if top is not None and bottom is not None and bottom >= top:
        raise _bad(f"Column '{column}': bottom must be below top.", column, "bottom")
    if method != "range":
        return Rule("generalise", method, top=top, bottom=bottom)
    width = spec.get("width")
    edges_raw = spec.get("edges")
    if (width is None) == (edges_raw is None):
        raise _bad(f"Column '{column}': range needs either width or edges.", column, "width")
    if edges_raw is not None:
        if spec.get("origin") is not None:
            raise _bad(f"Column '{column}': origin goes with width, not with edges.", column, "origin")
        if not isinstance(edges_raw, list | tuple) or len(edges_raw) < 2:
            raise _bad(f"Column '{column}': edges must be a list of at least two numbers.", column, "edges")
        edges = tuple(_number(e, column, "edges", integer=integer) for e in edges_raw)
        if any(b <= a for a, b in itertools.pairwise(edges)):
            raise _bad(f"Column '{column}': edges must increase strictly.", column, "edges")
        if top is not None or bottom is not None:
            raise _bad(
                f"Column '{column}': edges already top- and bottom-code; drop top/bottom.", column, "edges"
            )
        return Rule("generalise", "range", edges=edges)
    w = _number(width, column, "width", integer=integer)
    if w <= 0:
        raise _bad(f"Column '{column}': width must be above 0.", column, "width")
    origin = (
        _number(spec["origin"], column, "origin", integer=integer) if spec.get("origin") is not None else None
    )
    return Rule("generalise", "range", width=w, origin=origin, top=top, bottom=bottom)


def _names(raw: Any, field_name: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str) or not isinstance(raw, list | tuple) or not all(isinstance(c, str) for c in raw):
        raise _bad(f"{field_name} must be a list of column names.", None, f"model.{field_name}")
    if len(set(raw)) != len(raw):
        raise _bad(f"{field_name} names a column twice.", None, f"model.{field_name}")
    return tuple(raw)


def _parse_k_anonymity(
    spec: Mapping[str, Any], types: Mapping[str, str], rules: Mapping[str, Rule]
) -> KAnonymity:
    k = spec.get("k", 5)
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise _bad(f"k must be a whole number of at least 2, not {k!r}.", None, "model.k")
    qis = _names(spec.get("quasi_identifiers"), "quasi_identifiers")
    if not qis:
        raise _bad("k-anonymity needs at least one quasi-identifier.", None, "model.quasi_identifiers")
    sensitive = _names(spec.get("sensitive"), "sensitive")
    for role, names in (("quasi-identifier", qis), ("sensitive column", sensitive)):
        for c in names:
            if c not in types:
                raise _bad(f"The {role} '{c}' is not a column of the dataset.", c, "model")
            rule = rules.get(c)
            if rule is not None and rule.kind == "drop":
                raise _bad(f"Column '{c}' is a {role} but its rule drops it.", c, "rule")
            if role == "quasi-identifier" and types[c] == "point":
                raise _bad(
                    f"Column '{c}' is a point; a point cannot be a quasi-identifier: drop or suppress it.",
                    c,
                    "model.quasi_identifiers",
                )
    both = set(qis) & set(sensitive)
    if both:
        c = sorted(both)[0]
        raise _bad(f"Column '{c}' cannot be both a quasi-identifier and sensitive.", c, "model.sensitive")
    lv = spec.get("l")
    if lv is not None:
        if isinstance(lv, bool) or not isinstance(lv, int) or lv < 1:
            raise _bad(f"l must be a whole number of at least 1, not {lv!r}.", None, "model.l")
        if not sensitive:
            raise _bad("l-diversity needs at least one sensitive column.", None, "model.sensitive")
        if lv > 1:
            for c in sensitive:
                if rules.get(c) is not None and rules[c].kind == "suppress":
                    raise _bad(
                        f"Column '{c}' is sensitive with l={lv} but its rule suppresses every value.",
                        c,
                        "rule",
                    )
    share = spec.get("max_suppression", 0.05)
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
        raise _bad(
            f"max_suppression must be a share from 0 to 1, not {share!r}.", None, "model.max_suppression"
        )
    extra = set(spec) - {"type", "k", "quasi_identifiers", "sensitive", "l", "max_suppression"}
    if extra:
        raise _bad(f"k_anonymity takes no {sorted(extra)[0]!r}.", None, f"model.{sorted(extra)[0]}")
    return KAnonymity(qis, k, sensitive, lv, float(share))


def _parse_dp(spec: Mapping[str, Any], types: Mapping[str, str], rules: Mapping[str, Rule]) -> DPModel:
    epsilon = check_epsilon(spec.get("epsilon"))
    dims = _names(spec.get("dimensions"), "dimensions")
    for c in dims:
        if c not in types:
            raise _bad(f"The dimension '{c}' is not a column of the dataset.", c, "model.dimensions")
        if c in rules and rules[c].kind in ("drop", "suppress", "pseudonymise"):
            raise _bad(
                f"Column '{c}' is a dimension but its rule is '{rules[c].kind}'; its values must be public.",
                c,
                "rule",
            )
    raw_measures = spec.get("measures")
    if not isinstance(raw_measures, list | tuple) or not raw_measures:
        raise _bad("dp needs a list of measures.", None, "model.measures")
    measures = []
    for raw in raw_measures:
        if isinstance(raw, Measure):
            m = raw
        elif isinstance(raw, Mapping):
            try:
                m = Measure(**raw)
            except TypeError as exc:
                raise _bad(
                    f"A measure is not well formed: {exc}.", raw.get("column"), "model.measures"
                ) from exc
        else:
            raise _bad("Each measure must be an object.", None, "model.measures")
        if m.column is not None:
            ctype = types.get(m.column)
            if ctype is None:
                raise _bad(
                    f"The measure column '{m.column}' is not a column of the dataset.", m.column, "column"
                )
            if m.kind != "count" and ctype not in _NUMERIC:
                raise _bad(
                    f"Column '{m.column}': a {m.kind} needs an integer or decimal column, not {ctype}.",
                    m.column,
                    "column",
                )
        check_measure(m)
        measures.append(m)
    values_raw = spec.get("dimension_values") or {}
    if not isinstance(values_raw, Mapping):
        raise _bad(
            "dimension_values must map each dimension to its list of values.", None, "model.dimension_values"
        )
    values: dict[str, tuple[Any, ...]] = {}
    for c, vals in values_raw.items():
        if c not in dims:
            raise _bad(
                f"dimension_values names '{c}', which is not a dimension.", c, "model.dimension_values"
            )
        if not isinstance(vals, list | tuple) or not vals:
            raise _bad(
                f"Dimension '{c}': dimension_values must be a non-empty list.", c, "model.dimension_values"
            )
        values[c] = tuple(vals)
    contributions = spec.get("contributions", 1)
    if isinstance(contributions, bool) or not isinstance(contributions, int) or contributions < 1:
        raise _bad("contributions must be a whole number of at least 1.", None, "model.contributions")
    return DPModel(epsilon, dims, tuple(measures), values, contributions)


def parse_policy(data: Mapping[str, Any], columns: Mapping[str, str]) -> Policy:
    """Read and check a policy against the dataset's column types; raise `Invalid` naming what is wrong.

    `columns` maps each column name to its type ("string", "integer", "decimal", "boolean",
    "date", "datetime" or "point"). Columns the policy does not mention are allowed here and
    reported by `unhandled`, so the caller decides whether that is acceptable.
    """
    for c, t in columns.items():
        if t not in COLUMN_TYPES:
            raise _bad(f"Column '{c}' has unknown type {t!r}.", c, "type")
    if not isinstance(data, Mapping):
        raise _bad("A policy must be an object with 'columns' and 'model'.", None, "policy")
    extra = set(data) - {"columns", "model"}
    if extra:
        raise _bad(f"A policy takes no {sorted(extra)[0]!r}.", None, sorted(extra)[0])
    raw_columns = data.get("columns") or {}
    if not isinstance(raw_columns, Mapping):
        raise _bad("'columns' must map each column name to its rule.", None, "columns")
    rules: dict[str, Rule] = {}
    for name, raw in raw_columns.items():
        if name not in columns:
            raise _bad(f"Column '{name}' is not in the dataset.", name, "column")
        if not isinstance(raw, str | Mapping):
            raise _bad(f"Column '{name}': a rule must be a name or an object.", name, "rule")
        rules[name] = _parse_rule(name, columns[name], raw)
    spec = data.get("model") or {"type": "none"}
    if not isinstance(spec, Mapping):
        raise _bad("'model' must be an object with a type.", None, "model")
    kind = spec.get("type", "none")
    model: Model
    if kind == "none":
        if set(spec) - {"type"}:
            raise _bad("Model 'none' takes no parameters.", None, "model")
        model = NoModel()
    elif kind == "k_anonymity":
        model = _parse_k_anonymity(spec, columns, rules)
    elif kind == "dp":
        model = _parse_dp(spec, columns, rules)
    else:
        allowed = ", ".join(get_args(Literal["none", "k_anonymity", "dp"]))
        raise _bad(f"Model type {kind!r} is not one of {allowed}.", None, "model.type")
    return Policy(rules, model)
