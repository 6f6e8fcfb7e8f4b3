"""The allow-list checks shared by every place that runs user-written SQL on DuckDB.

``check`` parses the text with sqlglot and refuses anything that is not exactly one read-only query
over the named tables. Syntax and functions are checked against allow-lists, not deny-lists; token,
node, IN-list and nesting limits keep parsing cheap and recursion shallow. It returns SQL
re-generated from the syntax tree, so comments, and anything that sqlglot and DuckDB might read
differently, never reach DuckDB.

Used by ``exchange.sqlguard`` (derived datasets over granted views) and ``opendata.sqlapi`` (the
public read-only SQL endpoint). The wording of refusals names the caller's notion of a table
(``Wording``). Errors are ``Invalid``; callers may re-raise them as something more specific.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.tokenizer_core import Token, TokenType

from zhishe.core.errors import Invalid

__all__ = [
    "ACCEPTED",
    "ALLOWED_FUNCTIONS",
    "DERIVED",
    "DUCKDB_FUNCTIONS",
    "MAX_IN_ITEMS",
    "MAX_NESTING",
    "MAX_NODES",
    "MAX_SQL_CHARS",
    "MAX_TOKENS",
    "PATH",
    "SYNTAX_FUNCTIONS",
    "Checked",
    "Wording",
    "check",
    "clean",
]

#: The longest SQL text accepted, in characters.
MAX_SQL_CHARS = 200_000
#: The most tokens accepted; checked before parsing so that parsing stays cheap.
MAX_TOKENS = 25_000
#: The most syntax-tree nodes accepted.
MAX_NODES = 5_000
#: The most items accepted in one ``IN (...)`` list.
MAX_IN_ITEMS = 1_000
#: The deepest nesting of brackets (``(``, ``[``, ``{``) accepted.
MAX_NESTING = 32
_DIALECT = "duckdb"

# Functions a query may call, by the lower-case name DuckDB knows them by. Every name here
# is in DuckDB's `duckdb_functions()`; a test keeps it so.
DUCKDB_FUNCTIONS = frozenset(
    {
        # math
        "abs", "acos", "asin", "atan", "atan2", "cbrt", "ceil", "ceiling", "cos", "degrees", "even",
        "exp", "factorial", "floor", "gcd", "greatest", "isfinite", "isinf", "isnan", "lcm", "least",
        "ln", "log", "log10", "log2", "mod", "pi", "pow", "power", "radians", "round", "round_even",
        "sign", "sin", "sqrt", "tan", "trunc",
        # text
        "ascii", "char_length", "character_length", "chr", "concat", "concat_ws", "contains",
        "damerau_levenshtein", "ends_with", "format", "hamming", "hash", "ilike_escape", "instr",
        "jaccard", "jaro_similarity", "jaro_winkler_similarity", "lcase", "left", "length",
        "length_grapheme", "levenshtein", "like_escape", "lower", "lpad", "ltrim", "md5",
        "nfc_normalize", "position", "prefix", "printf", "regexp_extract", "regexp_extract_all",
        "regexp_full_match", "regexp_matches", "regexp_replace", "regexp_split_to_array", "repeat",
        "replace", "reverse", "right", "rpad", "rtrim", "sha256", "split_part", "starts_with",
        "str_split", "string_split", "strip_accents", "strlen", "strpos", "substr", "substring",
        "suffix", "to_base64", "from_base64", "to_hex", "translate", "trim", "ucase", "unicode", "upper",
        # dates and times
        "age", "century", "current_date", "date_add", "date_diff", "date_part", "date_sub",
        "date_trunc", "datediff", "datepart", "datesub", "datetrunc", "day", "dayname", "dayofmonth",
        "dayofweek", "dayofyear", "decade", "epoch", "epoch_ms", "epoch_ns", "epoch_us", "era", "hour",
        "isodow", "isoyear", "last_day", "make_date", "make_time", "make_timestamp", "make_timestamptz",
        "microsecond", "millennium", "millisecond", "minute", "month", "monthname", "now", "quarter",
        "second", "strftime", "strptime", "time_bucket", "timezone", "to_days", "to_hours",
        "to_microseconds", "to_milliseconds", "to_minutes", "to_months", "to_seconds", "to_timestamp",
        "to_weeks", "to_years", "today", "try_strptime", "week", "weekday", "weekofyear", "year",
        "yearweek",
        # conditionals and types
        "if", "nullif", "typeof",
        # aggregates
        "any_value", "approx_count_distinct", "approx_quantile", "arg_max", "arg_min", "argmax",
        "argmin", "array_agg", "avg", "bool_and", "bool_or", "corr", "count", "count_if", "count_star",
        "countif", "covar_pop", "covar_samp", "entropy", "favg", "first", "fsum", "group_concat",
        "histogram", "kurtosis", "last", "list", "listagg", "max", "max_by", "mean", "median", "min",
        "min_by", "mode", "product", "quantile", "quantile_cont", "quantile_disc", "regr_avgx",
        "regr_avgy", "regr_count", "regr_intercept", "regr_r2", "regr_slope", "skewness", "stddev",
        "stddev_pop", "stddev_samp", "string_agg", "sum", "sumkahan", "var_pop", "var_samp", "variance",
        # window functions
        "cume_dist", "dense_rank", "first_value", "lag", "last_value", "lead", "nth_value", "ntile",
        "percent_rank", "rank", "row_number",
        # lists, structs and maps
        "apply", "array_concat", "array_contains", "array_distinct", "array_extract", "array_filter",
        "array_length", "array_reduce", "array_slice", "array_sort", "array_transform", "array_value",
        "cardinality", "element_at", "filter", "flatten", "len", "list_avg", "list_cat", "list_concat",
        "list_contains", "list_count", "list_distinct", "list_element", "list_extract", "list_filter",
        "list_has", "list_max", "list_min", "list_pack", "list_position", "list_reduce", "list_slice",
        "list_sort", "list_sum", "list_transform", "list_unique", "list_value", "map", "map_extract",
        "reduce", "row", "struct_extract", "struct_pack",
    }
)  # fmt: skip

# Names that are syntax rather than functions in DuckDB (CAST, EXTRACT, CASE, [..], {..}), and the
# names sqlglot gives a parsed call when it does not keep the name as written (POSITION(a IN b)
# becomes str_position). All of them mean something on the list above.
SYNTAX_FUNCTIONS = frozenset(
    {
        "array", "case", "cast", "coalesce", "columns", "current_time", "current_timestamp", "exists",
        "extract", "ifnull", "percentile_cont", "percentile_disc", "str_position", "struct", "try_cast",
    }
)  # fmt: skip

#: Every function name (lower case) a query may call by default; any other function is refused.
ALLOWED_FUNCTIONS: frozenset[str] = DUCKDB_FUNCTIONS | SYNTAX_FUNCTIONS

# Syntax nodes a query may contain besides functions. Operators (sqlglot's Binary, Unary and
# Predicate nodes) are allowed as a class; everything else must be listed here.
_ALLOWED_SYNTAX: tuple[type[exp.Expr], ...] = (
    exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery, exp.With, exp.CTE,
    exp.From, exp.Join, exp.Lateral, exp.Table, exp.TableAlias, exp.Values, exp.TableSample,
    exp.Pivot, exp.PivotAlias, exp.UnpivotColumns,
    exp.Where, exp.Group, exp.GroupingSets, exp.Rollup, exp.Cube, exp.Having, exp.Qualify,
    exp.Order, exp.Ordered, exp.Limit, exp.LimitOptions, exp.Offset, exp.Fetch, exp.Distinct,
    exp.Window, exp.WindowSpec, exp.Filter, exp.WithinGroup, exp.IgnoreNulls, exp.RespectNulls,
    exp.Alias, exp.Column, exp.Identifier, exp.Star, exp.Literal, exp.Boolean, exp.Null, exp.Var,
    exp.Interval, exp.DataType, exp.DataTypeParam, exp.ColumnDef, exp.Tuple, exp.Lambda,
    exp.Bracket, exp.Slice, exp.ByteString, exp.HexString, exp.BitString, exp.RawString,
    exp.Binary, exp.Unary, exp.Predicate,
)  # fmt: skip

# How a refused piece of syntax is named in the message, when its sqlglot name would puzzle.
_SYNTAX_LABELS: dict[type[exp.Expr], str] = {
    exp.Into: "SELECT ... INTO",
    exp.Lock: "FOR UPDATE / FOR SHARE",
    exp.Placeholder: "a parameter placeholder",
    exp.Parameter: "a parameter",
    exp.HistoricalData: "AT (...) time travel",
    exp.Hint: "an optimizer hint",
    exp.Unnest: "UNNEST",
}

# What a Table node may carry besides its name: an alias, a sample, joins and pivots.
_TABLE_ARGS = frozenset({"this", "alias", "sample", "joins", "laterals", "pivots"})

_NAME = re.compile(r"[a-z_][a-z0-9_]*")
#: Absolute file paths, to be hidden from messages.
PATH = re.compile(r"(?<![\w.])(?:/[\w.\-~]+){2,}/?")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CLASS = re.compile(r"<class '(?:\w+\.)*(\w+)'>")
_BRACKETS = {
    TokenType.L_PAREN: 1,
    TokenType.L_BRACKET: 1,
    TokenType.L_BRACE: 1,
    TokenType.R_PAREN: -1,
    TokenType.R_BRACKET: -1,
    TokenType.R_BRACE: -1,
}
# Statement keywords named in the refusal when a statement does not even parse (EXPORT DATABASE...).
_STATEMENT_WORDS = frozenset(
    {
        "ALTER", "ANALYZE", "ATTACH", "CALL", "CHECKPOINT", "COPY", "CREATE", "DELETE", "DESCRIBE",
        "DETACH", "DROP", "EXPLAIN", "EXPORT", "FORCE", "GRANT", "IMPORT", "INSERT", "INSTALL", "LOAD",
        "MERGE", "PIVOT", "PRAGMA", "PREPARE", "EXECUTE", "RESET", "REVOKE", "SET", "SHOW", "SUMMARIZE",
        "TRUNCATE", "UNPIVOT", "UPDATE", "USE", "VACUUM", "BEGIN", "COMMIT", "ROLLBACK", "ABORT",
    }
)  # fmt: skip
#: What is accepted, for refusals.
ACCEPTED = "only one read-only query (SELECT, WITH ... SELECT, UNION, INTERSECT or EXCEPT) is allowed"


@dataclass(frozen=True)
class Wording:
    """How refusals name the caller's kind of query and the tables it may read."""

    #: The kind of query, after "not allowed in": "a derived dataset query".
    query: str
    #: What the query may read, as a sentence: "a derived dataset reads only its granted views".
    reads: str
    #: One readable table, with an article: "a granted view".
    table: str
    #: The readable tables: "the granted views".
    tables: str


#: The wording of ``exchange.sqlguard``.
DERIVED = Wording(
    query="a derived dataset query",
    reads="a derived dataset reads only its granted views",
    table="a granted view",
    tables="the granted views",
)


@dataclass(frozen=True)
class Checked:
    """A query that passed ``check``: its normalised SQL, the tables it reads (sorted) and its tree."""

    sql: str
    views: list[str]
    root: exp.Expr


def check(
    sql: str,
    views: Collection[str],
    *,
    wording: Wording = DERIVED,
    functions: frozenset[str] | None = None,
) -> Checked:
    """`sql` checked as one read-only query over `views` (matched case-sensitively); Invalid if not.

    Names of CTEs defined in the query may be used too. `functions` is the allow-list of function
    names (lower case), ``ALLOWED_FUNCTIONS`` by default.
    """
    return _check(sql, views, wording, ALLOWED_FUNCTIONS if functions is None else functions)


def _check(sql: str, views: Collection[str], wording: Wording, functions: frozenset[str]) -> Checked:
    if not isinstance(sql, str):
        raise Invalid("the SQL must be text", detail={"reason": "not_text"})
    if len(sql) > MAX_SQL_CHARS:
        raise _limit(
            f"the SQL is {len(sql):,} characters long",
            "max_sql_chars",
            MAX_SQL_CHARS,
            len(sql),
            unit="characters",
        )
    granted = frozenset(views)
    tokens = _tokenize(sql)
    root = _one_statement(_parse(sql, tokens))
    _check_limits(root)
    referenced: set[str] = set()
    for node in root.walk():
        _check_node(node, sql, granted, referenced, wording, functions)
    try:
        text = root.sql(dialect=_DIALECT, comments=False)
    except RecursionError:
        raise _nesting() from None
    except Exception as exc:  # sqlglot cannot write this query back; refuse rather than guess
        raise Invalid(
            f"the query cannot be normalised: {clean(str(exc))}", detail={"reason": "unsupported"}
        ) from exc
    return Checked(sql=text, views=sorted(referenced), root=root)


def _tokenize(sql: str) -> list[Token]:
    try:
        tokens = Dialect.get_or_raise(_DIALECT).tokenize(sql)
    except Exception as exc:  # sqlglot's TokenError, or anything else it raises on odd text
        raise Invalid(f"the SQL could not be read: {clean(str(exc))}", detail={"reason": "syntax"}) from exc
    if len(tokens) > MAX_TOKENS:
        raise _limit(
            f"the SQL has {len(tokens):,} tokens", "max_tokens", MAX_TOKENS, len(tokens), unit="tokens"
        )
    depth = 0
    for token in tokens:
        depth += _BRACKETS.get(token.token_type, 0)
        if depth > MAX_NESTING:
            raise _nesting(line=token.line, col=token.col)
    return tokens


def _parse(sql: str, tokens: list[Token]) -> list[exp.Expr]:
    try:
        parsed = Dialect.get_or_raise(_DIALECT).parser().parse(tokens, sql)
    except RecursionError:
        raise _nesting() from None
    except sqlglot.errors.ParseError as exc:
        raise _parse_error(exc, tokens) from exc
    except Exception as exc:  # anything else sqlglot raises on text it cannot make sense of
        raise Invalid(f"the SQL could not be parsed: {clean(str(exc))}", detail={"reason": "syntax"}) from exc
    # Empty statements (";;") parse as None, a trailing comment after the last ";" as Semicolon.
    return [s for s in parsed if s is not None and not isinstance(s, exp.Semicolon)]


def _parse_error(exc: sqlglot.errors.ParseError, tokens: list[Token]) -> Invalid:
    first = exc.errors[0] if exc.errors else {}
    line, col = first.get("line"), first.get("col")
    description = clean(str(first.get("description") or exc))
    where = f" at line {line}, column {col}" if line is not None and col is not None else ""
    detail: dict[str, Any] = {"reason": "syntax", "line": line, "column": col}
    word = tokens[0].text.upper() if tokens else ""
    if word in _STATEMENT_WORDS:
        # EXPORT DATABASE and friends do not parse at all; say what they are rather than "syntax".
        return Invalid(
            f"{word} statements are not allowed; {ACCEPTED}",
            detail={**detail, "reason": "statement", "statement": word},
        )
    return Invalid(f"the SQL could not be parsed{where}: {description}", detail=detail)


def _one_statement(statements: list[exp.Expr]) -> exp.Expr:
    if not statements:
        raise Invalid("the SQL is empty: write one SELECT query", detail={"reason": "empty"})
    if len(statements) > 1:
        kinds = [_statement_kind(s) for s in statements]
        raise Invalid(
            f"only one statement is allowed; found {len(statements)} ({', '.join(kinds)})",
            detail={"reason": "statements", "statements": kinds},
        )
    root = statements[0]
    query = root
    while isinstance(query, exp.Subquery):
        query = query.this
    if not isinstance(query, exp.Select | exp.SetOperation):
        kind = _statement_kind(root)
        raise Invalid(
            f"{kind} statements are not allowed; {ACCEPTED}",
            detail={"reason": "statement", "statement": kind},
        )
    return root


def _statement_kind(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    if isinstance(node, exp.Select | exp.SetOperation | exp.Subquery):
        return "SELECT"
    try:
        words = node.sql(dialect=_DIALECT, comments=False).split(None, 1)
    except Exception:  # naming the kind is best effort
        words = []
    return words[0].upper() if words else node.key.upper()


def _check_limits(root: exp.Expr) -> None:
    # Breadth first: an IN list is met before its items are counted.
    for count, node in enumerate(root.walk(), start=1):
        if count > MAX_NODES:
            raise _limit("the query is too complex", "max_nodes", MAX_NODES, count, unit="syntax nodes")
        if isinstance(node, exp.In):
            items = len(node.expressions)
            if items > MAX_IN_ITEMS:
                raise _limit(
                    f"an IN list has {items:,} items", "max_in_items", MAX_IN_ITEMS, items, unit="items"
                )


def _check_node(
    node: exp.Expr,
    sql: str,
    views: frozenset[str],
    referenced: set[str],
    wording: Wording,
    functions: frozenset[str],
) -> None:
    if isinstance(node, exp.Func):
        if isinstance(node, exp.Binary) and "start" not in node.meta:
            return  # an operator sqlglot models as a function: AND, OR, ^, COLLATE, ~
        _check_function(node, sql, wording, functions)
        return
    if isinstance(node, exp.Table):
        _check_table(node, sql, views, referenced, wording)
        return
    if isinstance(node, exp.Pivot):
        _check_pivot(node)
    if not isinstance(node, _ALLOWED_SYNTAX):
        label = _SYNTAX_LABELS.get(type(node), node.key.upper())
        raise Invalid(
            f"{label} is not allowed in {wording.query}",
            detail={"reason": "syntax_not_allowed", "syntax": label},
        )


def _check_pivot(pivot: exp.Pivot) -> None:
    # Without an IN list, DuckDB first runs a query of its own to find the values, and turns the
    # statement into several; one query must stay one query.
    if pivot.args.get("unpivot") or pivot.args.get("fields"):
        return
    for on in pivot.expressions:
        if not isinstance(on, exp.In):
            shown = on.sql(dialect=_DIALECT, comments=False)
            raise Invalid(
                f"PIVOT ... ON {shown} needs an explicit list of values: ON {shown} IN (...)",
                detail={"reason": "pivot", "column": shown},
            )


def _check_function(node: exp.Func, sql: str, wording: Wording, functions: frozenset[str]) -> None:
    name, canonical = _function_name(node, sql)
    if _in_from_clause(node):
        raise Invalid(
            f"table function {name}() is not allowed: {wording.reads}",
            detail={"reason": "table_function", "function": name},
        )
    parent = node.parent
    if isinstance(parent, exp.Dot) and node.arg_key == "expression":
        prefix = parent.this.sql(dialect=_DIALECT, comments=False)
        raise Invalid(
            f"the qualified or method-style call {prefix}.{name}() is not allowed; write {name}(...)",
            detail={"reason": "qualified_function", "function": name},
        )
    if name in functions or (canonical is not None and canonical in functions):
        return
    raise Invalid(
        f"function {name}() is not allowed in {wording.query}",
        detail={"reason": "function", "function": name},
    )


def _function_name(node: exp.Func, sql: str) -> tuple[str, str | None]:
    """The function's name as written, and sqlglot's own name for it (None for unknown functions)."""
    if isinstance(node, exp.Anonymous | exp.AnonymousAggFunc):
        return str(node.name).lower(), None
    canonical = node.sql_name().lower()
    start, end = node.meta.get("start"), node.meta.get("end")
    if isinstance(start, int) and isinstance(end, int):
        written = sql[start : end + 1].strip('"').lower()
        if _NAME.fullmatch(written):
            return written, canonical
    return canonical, canonical


def _in_from_clause(node: exp.Expr) -> bool:
    parent = node.parent
    if isinstance(parent, exp.Table):
        return node.arg_key == "this"
    return isinstance(parent, exp.From | exp.Join | exp.Lateral)


def _check_table(
    table: exp.Table, sql: str, views: frozenset[str], referenced: set[str], wording: Wording
) -> None:
    target = table.this
    if isinstance(target, exp.Func):
        return  # the function itself is refused as a table function when the walk reaches it
    if not isinstance(target, exp.Identifier):
        shown = table.sql(dialect=_DIALECT, comments=False)
        raise Invalid(
            f"the table reference {shown} is not allowed; name {wording.table}",
            detail={"reason": "table", "table": shown},
        )
    name = target.name
    start = target.meta.get("start")
    if isinstance(start, int) and sql[start : start + 1] == "'":
        raise Invalid(
            f"the string '{name}' cannot be used as a table: {wording.reads}",
            detail={"reason": "file_table", "table": name},
        )
    parts = [p.name for p in (table.args.get("catalog"), table.args.get("db")) if isinstance(p, exp.Expr)]
    if parts:
        qualified = ".".join([*parts, name])
        raise Invalid(
            f"the table name {qualified} is schema-qualified; refer to {wording.table} by its name alone",
            detail={"reason": "qualified_table", "table": qualified},
        )
    extra = sorted(k for k, v in table.args.items() if v not in (None, False, []) and k not in _TABLE_ARGS)
    if extra:
        raise Invalid(
            f"the table clause {extra[0].upper()} on {name} is not allowed",
            detail={"reason": "table_clause", "table": name, "clause": extra[0]},
        )
    if _is_visible_cte(table, name.lower()):
        return
    if name in views:
        referenced.add(name)
        return
    hint = [v for v in sorted(views) if v.lower() == name.lower()]
    suffix = f" (view names are case-sensitive: did you mean {hint[0]}?)" if hint else ""
    raise Invalid(
        f"table {name} is not one of {wording.tables}{suffix}",
        detail={"reason": "table", "table": name, "views": sorted(views)},
    )


def _is_visible_cte(table: exp.Table, name: str) -> bool:
    """Whether `name` resolves to a CTE in scope at `table`, as DuckDB resolves it.

    DuckDB matches CTE names case-insensitively, sees only the CTEs defined before the one being
    defined (and that one too under WITH RECURSIVE), and never a CTE of a nested query.
    """
    child: exp.Expr = table
    node = table.parent
    while node is not None:
        if isinstance(node, exp.With):
            ctes = list(node.expressions)
            index = next((i for i, cte in enumerate(ctes) if cte is child), len(ctes))
            visible = ctes[: index + 1] if node.args.get("recursive") else ctes[:index]
            if any(cte.alias_or_name.lower() == name for cte in visible):
                return True
        else:
            with_ = node.args.get("with_") or node.args.get("with")
            if (
                isinstance(with_, exp.With)
                and child is not with_
                and any(cte.alias_or_name.lower() == name for cte in with_.expressions)
            ):
                return True
        child, node = node, node.parent
    return False


def _limit(what: str, limit: str, maximum: int, actual: int, *, unit: str = "") -> Invalid:
    bound = f"{maximum:,} {unit}".rstrip()
    return Invalid(
        f"{what}; the limit ({limit}) is {bound}",
        detail={"reason": "limit", "limit": limit, "max": maximum, "actual": actual},
    )


def _nesting(*, line: int | None = None, col: int | None = None) -> Invalid:
    where = f" at line {line}, column {col}" if line is not None and col is not None else ""
    return Invalid(
        f"the query is nested too deeply{where}; the limit (max_nesting) is {MAX_NESTING} levels",
        detail={"reason": "limit", "limit": "max_nesting", "max": MAX_NESTING},
    )


def clean(text: str) -> str:
    """One line, without terminal colours or Python class paths."""
    return " ".join(_CLASS.sub(r"\1", _ANSI.sub("", text)).split())
