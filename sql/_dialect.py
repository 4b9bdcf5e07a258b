"""The partita SQL dialect: sqlglot plus streaming clauses.

Extends sqlglot's default dialect with:

* ``EMIT CHANGES`` / ``EMIT FINAL`` after the query (stored in ``select.meta["emit"]``);
* typed Flink-style group-window functions ``TUMBLE(ts, size)``, ``HOP(ts, slide, size)``,
  ``CUMULATE(ts, step, size)``, ``SESSION(ts, gap)`` and their ``*_START`` / ``*_END``
  companions;
* the velostream window clause ``WINDOW TUMBLING(size [, ts])``,
  ``WINDOW SLIDING(size, advance [, ts])``, ``WINDOW CUMULATE(step, size [, ts])`` and
  ``WINDOW SESSION(gap [, ts])``
  (stored as a :class:`WindowClause` in ``select.meta["window_clause"]``).

Keyword-led nodes (JOIN, ORDER BY, LIMIT, OVER, subqueries, ...) are stamped with the
character offset where they start, so errors can name a line and column.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from itertools import pairwise
from typing import Any, ClassVar

from sqlglot import exp, parser, tokens
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokenizer_core import Token, TokenType

from ._errors import SqlError, position_of

__all__ = [
    "GROUP_WINDOWS",
    "SQL_NAMES",
    "START",
    "WINDOW_BOUNDS",
    "Cumulate",
    "GracePeriod",
    "Hop",
    "PartitaDialect",
    "Session",
    "Tumble",
    "WindowBound",
    "WindowClause",
    "function_name",
    "node_position",
    "parse",
]


class Tumble(exp.Expression, exp.Func):
    """``TUMBLE(time_column, size)``: aligned, non-overlapping windows."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "expression": True}
    _sql_names: ClassVar[list[str]] = ["TUMBLE"]


class Hop(exp.Expression, exp.Func):
    """``HOP(time_column, slide, size)``: aligned, overlapping windows."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "expression": True, "size": True}
    _sql_names: ClassVar[list[str]] = ["HOP"]


class Cumulate(exp.Expression, exp.Func):
    """``CUMULATE(time_column, step, size)``: windows of ``size`` aligned to multiples of
    it, emitted every ``step`` as ``[start, start + k * step)`` (Flink's cumulating
    windows)."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "expression": True, "size": True}
    _sql_names: ClassVar[list[str]] = ["CUMULATE"]


class Session(exp.Expression, exp.Func):
    """``SESSION(time_column, gap)``: per-key activity sessions."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "expression": True}
    _sql_names: ClassVar[list[str]] = ["SESSION"]


class WindowBound(exp.Expression, exp.Func):
    """``TUMBLE_START(...)``-style functions: the start or end of the current window."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "expressions": False}
    is_var_len_args: ClassVar[bool] = True
    _sql_names: ClassVar[list[str]] = ["WINDOW_BOUND"]


class WindowClause(exp.Expression):
    """The velostream ``WINDOW TUMBLING|SLIDING|SESSION(...)`` clause (and
    ``WINDOW CUMULATE(step, size)``)."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True, "expressions": True}


class GracePeriod(exp.Expression):
    """``GRACE PERIOD <duration>`` in a WINDOW clause (ksqlDB): the query's lateness."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True}


GROUP_WINDOWS: dict[str, type[exp.Func]] = {
    "TUMBLE": Tumble,
    "HOP": Hop,
    "CUMULATE": Cumulate,
    "SESSION": Session,
}
WINDOW_BOUNDS = tuple(f"{w}_{b}" for w in GROUP_WINDOWS for b in ("START", "END"))
_CLAUSE_KINDS = ("TUMBLING", "SLIDING", "CUMULATE", "SESSION")


def _bound_builder(name: str) -> Callable[[list[Any]], exp.Expression]:
    def build(args: list[Any]) -> exp.Expression:
        node = WindowBound(this=exp.Var(this=name), expressions=args)
        return node

    return build


_START = "partita_start"  # where a node starts (sqlglot's own "start" is not always that)
START = _START
"""The meta key of where a node starts in the text (kept when a node is rewritten)."""


def _stamp(method: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a parser method so the node it returns remembers where it started."""

    def wrapper(self: parser.Parser, *args: Any, **kwargs: Any) -> Any:
        start = self._curr
        result = method(self, *args, **kwargs)
        if isinstance(result, exp.Expr) and start:  # the end-of-input sentinel is falsy
            result.meta[_START] = min(result.meta.get(_START, start.start), start.start)
        return result

    return wrapper


def _stamp_modifier(
    fn: Callable[[parser.Parser], tuple[str, Any]],
) -> Callable[[parser.Parser], tuple[str, Any]]:
    def wrapper(self: parser.Parser) -> tuple[str, Any]:
        start = self._curr
        key, node = fn(self)
        if isinstance(node, exp.Expr) and start:
            node.meta[_START] = start.start
        return key, node

    return wrapper


_SHORT_UNITS = {"MS": "MILLISECOND", "S": "SECOND", "M": "MINUTE", "H": "HOUR", "D": "DAY"}
_UNIT_WORDS = (
    *_SHORT_UNITS.values(),
    *(f"{u}S" for u in _SHORT_UNITS.values()),
)


def _parse_duration(self: parser.Parser) -> exp.Expr | None:
    """A duration in a WINDOW clause: velostream's ``5m`` / ``1.5s`` (no space), ksqlDB's
    ``5 MINUTES``, as an :class:`exp.Interval`; ``None`` (nothing consumed) otherwise."""
    curr, nxt = self._curr, self._next
    if curr is None or nxt is None or curr.token_type is not TokenType.NUMBER:
        return None
    unit = nxt.text.upper()
    tight = nxt.start == curr.end + 1
    if (tight and unit in _SHORT_UNITS) or (not tight and unit in _UNIT_WORDS):
        self._advance(2)
        node = exp.Interval(
            this=exp.Literal.string(curr.text), unit=exp.Var(this=_SHORT_UNITS.get(unit, unit))
        )
        node.meta[_START] = curr.start
        return node
    return None


def _parse_clause_arg(self: parser.Parser) -> exp.Expr | None:
    """One argument of ``WINDOW TUMBLING|SLIDING|SESSION(...)``: a duration, ksqlDB's
    ``SIZE <duration>`` and ``GRACE PERIOD <duration>``, or an expression."""
    curr, nxt = self._curr, self._next
    if curr is not None and curr.text.upper() == "SIZE" and nxt is not None:
        self._advance()
        return _parse_duration(self) or self._parse_assignment()
    if (
        curr is not None
        and curr.text.upper() == "GRACE"
        and nxt is not None
        and nxt.text.upper() == "PERIOD"
    ):
        self._advance(2)
        grace = GracePeriod(this=_parse_duration(self) or self._parse_assignment())
        grace.meta[_START] = curr.start
        return grace
    return _parse_duration(self) or self._parse_assignment()


def _parse_window_modifier(self: parser.Parser) -> tuple[str, Any]:
    curr, nxt = self._curr, self._next
    if (
        curr is not None
        and nxt is not None
        and nxt.text.upper() in _CLAUSE_KINDS
        and self._index + 2 < len(self._tokens)
        and self._tokens[self._index + 2].token_type == TokenType.L_PAREN
    ):
        self._advance(2)
        kind = self._prev.text.upper()
        self._match(TokenType.L_PAREN)
        args = self._parse_csv(lambda: _parse_clause_arg(self))
        self._match_r_paren()
        clause = WindowClause(this=kind, expressions=args)
        clause.meta[_START] = curr.start
        return "window_clause", clause
    start = curr.start if curr is not None else 0
    windows = self._parse_window_clause()
    for node in windows or ():
        node.meta[_START] = start
    return "windows", windows


class PartitaDialect(Dialect):
    """sqlglot's default dialect plus ``EMIT``, group windows and the velostream clause."""

    class Tokenizer(tokens.Tokenizer):
        # SESSION is a plain name here, so SESSION(ts, gap) parses as a function call.
        KEYWORDS: ClassVar[dict[str, TokenType]] = {
            k: v for k, v in tokens.Tokenizer.KEYWORDS.items() if k != "SESSION"
        }

    class Parser(parser.Parser):
        FUNCTIONS: ClassVar[dict[str, Any]] = {
            **parser.Parser.FUNCTIONS,
            "TUMBLE": Tumble.from_arg_list,
            "HOP": Hop.from_arg_list,
            "CUMULATE": Cumulate.from_arg_list,
            "SESSION": Session.from_arg_list,
            **{name: _bound_builder(name) for name in WINDOW_BOUNDS},
        }
        QUERY_MODIFIER_PARSERS: ClassVar[dict[TokenType, Any]] = {
            **{
                token: _stamp_modifier(fn)
                for token, fn in parser.Parser.QUERY_MODIFIER_PARSERS.items()
            },
            TokenType.WINDOW: _parse_window_modifier,
        }

        _parse_join = _stamp(parser.Parser._parse_join)
        _parse_window = _stamp(parser.Parser._parse_window)
        _parse_function = _stamp(parser.Parser._parse_function)
        _parse_primary = _stamp(parser.Parser._parse_primary)
        _parse_unary = _stamp(parser.Parser._parse_unary)
        _parse_select = _stamp(parser.Parser._parse_select)
        _parse_statement = _stamp(parser.Parser._parse_statement)
        _parse_case = _stamp(parser.Parser._parse_case)

        def _parse_table_alias(self, alias_tokens: Any = None) -> exp.TableAlias | None:
            if self._curr is not None and self._curr.text.upper() in ("EMIT", "WINDOW"):
                return None
            return super()._parse_table_alias(alias_tokens)

        def _parse_query_modifiers(self, this: Any) -> Any:
            this = super()._parse_query_modifiers(this)
            if isinstance(this, exp.Select):
                clause = this.args.pop("window_clause", None)
                if clause is not None:
                    this.meta["window_clause"] = clause
            while (
                isinstance(this, exp.Select)
                and self._curr is not None
                and self._curr.text.upper() == "EMIT"
            ):
                token = self._curr
                self._advance()
                if not self._match_texts(("CHANGES", "FINAL")):
                    self.raise_error("expected CHANGES or FINAL after EMIT")
                    return this
                if "emit" in this.meta:
                    self.raise_error("found multiple EMIT clauses", token=token)
                this.meta["emit"] = self._prev.text.lower()
                this.meta["emit_start"] = token.start
                if this.meta["emit"] == "changes" and self._match_text_seq("WITH", "RETRACTIONS"):
                    this.meta["retract"] = True
                this = super()._parse_query_modifiers(this)
            return this


_DIALECT = PartitaDialect()
_TOKEN_REPR = re.compile(r"<Token token_type: TokenType\.(\w+), text: (.*?), line: .*?>")
_MISSING_ARG = re.compile(r"Required keyword: '\w+' missing for <class '[\w.]*?(\w+)'>")
_TOO_MANY = re.compile(
    r"The number of provided arguments \((\d+)\) is greater than the maximum number of "
    r"supported arguments \((\d+)\)"
)

SQL_NAMES: dict[str, str] = {
    "StrPosition": "STRPOS",
    "RegexpLike": "REGEXP_LIKE",
    "RegexpExtract": "REGEXP_EXTRACT",
    "RegexpReplace": "REGEXP_REPLACE",
    "DateTrunc": "DATE_TRUNC",
    "TimestampTrunc": "DATE_TRUNC",
    "SplitPart": "SPLIT_PART",
    "Nullif": "NULLIF",
    "Greatest": "GREATEST",
    "Least": "LEAST",
    "Substring": "SUBSTR",
    "Coalesce": "COALESCE",
    "Pow": "POWER",
    "Ceil": "CEIL",
}
"""Names the SQL user wrote for sqlglot's node classes whose own names differ."""


def function_name(node_class: type[exp.Expr]) -> str:
    """The SQL name of a function node class, as the user writes it (``STRPOS``, not
    sqlglot's ``STR_POSITION``)."""
    name = SQL_NAMES.get(node_class.__name__)
    if name is not None:
        return name
    if issubclass(node_class, exp.Func):
        return str(node_class.sql_names()[0]).upper()
    return node_class.__name__.upper()


def _token_text(match: re.Match[str]) -> str:
    return "the end of the query" if match.group(1) == "SENTINEL" else repr(match.group(2))


def _missing_arg(match: re.Match[str]) -> str:
    node_class = getattr(exp, match.group(1), None)
    name = function_name(node_class) if isinstance(node_class, type) else "the function"
    return f"{name} is missing an argument"


def _too_many(match: re.Match[str]) -> str:
    return f"too many arguments ({match.group(1)} given, at most {match.group(2)})"


def _readable(description: str) -> str:
    """A sqlglot parse error in partita's words (no sqlglot class or token names)."""
    description = _TOKEN_REPR.sub(_token_text, description)
    description = _MISSING_ARG.sub(_missing_arg, description)
    return _TOO_MANY.sub(_too_many, description)


def node_position(node: exp.Expr, sql: str) -> tuple[int, int]:
    """The 1-based ``(line, column)`` where ``node`` starts in ``sql`` (best effort)."""
    starts: list[int] = [
        int(n.meta.get(_START, n.meta.get("start", 0)))
        for n in node.walk()
        if n._meta and (_START in n.meta or "start" in n.meta)
    ]
    return position_of(sql, min(starts)) if starts else (1, 1)


_PARSE_RECURSION_LIMIT = 4000


def parse(sql: str) -> list[exp.Expr]:
    """Parse ``sql`` into statements with the partita dialect.

    Raises:
        SqlError: the text does not parse; names the line and column.
    """
    limit = sys.getrecursionlimit()
    logger = logging.getLogger("sqlglot")
    quiet = logger.disabled
    try:
        # sqlglot's parser recurses ~20 frames per nesting level: room for the
        # documented 64 levels (pure-Python frames, so no C stack is at risk)
        sys.setrecursionlimit(max(limit, _PARSE_RECURSION_LIMIT))
        # sqlglot logs what it falls back on ("parsing as a Command"): partita
        # rejects those statements itself, and says so in its own words
        logger.disabled = True
        toks = _DIALECT.tokenize(sql)
        _reject_empty_list_items(toks)
        _reject_window_tvfs(toks)
        text, streams = _create_stream_as_table(sql, toks)
        statements = [s for s in _DIALECT.parse(text) if s is not None]
        for statement in statements:  # CREATE STREAM, not sqlglot's CREATE TABLE
            if isinstance(statement, exp.Create) and statement.meta.get(_START) in streams:
                statement.meta["stream"] = True
            _stamp_distinct(statement, toks)
        return statements
    except RecursionError:
        raise SqlError(
            "query nested too deeply to parse; expressions may nest at most "
            "64 levels (operators or parentheses)"
        ) from None
    except ParseError as exc:
        info = exc.errors[0] if exc.errors else {}
        line = int(info.get("line") or 1)
        col = int(info.get("col") or 1)
        highlight = info.get("highlight") or ""
        col = max(1, col - len(highlight) + 1)
        desc = _readable(str(info.get("description") or exc))
        raise SqlError(f"syntax error: {desc}", line=line, col=col) from exc
    except TokenError as exc:
        raise _token_error(sql, exc) from exc
    finally:
        logger.disabled = quiet
        sys.setrecursionlimit(limit)


_MISSING_DELIMITER = re.compile(r"Missing (.+) from \d+:(\d+)$")
_DELIMITED = {"'": "string", '"': "quoted name", "`": "quoted name"}


def _token_error(sql: str, exc: TokenError) -> SqlError:
    """What the tokenizer could not read, where it starts: an unterminated string,
    quoted name or comment."""
    cause = exc.__cause__
    found = _MISSING_DELIMITER.match(str(cause)) if isinstance(cause, TokenError) else None
    if found is not None:
        delimiter, offset = found.group(1), int(found.group(2))
        what = _DELIMITED.get(delimiter, "quoted text")
        line, col = position_of(sql, offset)
        return SqlError(
            f"syntax error: unterminated {what}: no closing {delimiter}", line=line, col=col
        )
    opened = sql.rfind("/*")
    if opened >= 0 and sql.find("*/", opened + 2) < 0:
        line, col = position_of(sql, opened)
        return SqlError("syntax error: unterminated comment: no closing */", line=line, col=col)
    return SqlError(f"syntax error: {exc}")


def _stamp_distinct(statement: exp.Expr, toks: list[Token]) -> None:
    """A ``SELECT DISTINCT``'s DISTINCT node starts at its keyword (sqlglot gives it no
    position), so errors about it point there."""
    starts = [t.start for t in toks if t.token_type is TokenType.DISTINCT]
    if not starts:
        return
    for select in statement.find_all(exp.Select):
        distinct = select.args.get("distinct")
        begin = select.meta.get(_START)
        if isinstance(distinct, exp.Distinct) and begin is not None:
            after = [at for at in starts if at > begin]
            if after:
                distinct.meta[_START] = after[0]


_TVF_USAGE = {
    "TUMBLE": "TUMBLE(ts, size)",
    "HOP": "HOP(ts, slide, size)",
    "CUMULATE": "CUMULATE(ts, step, size)",
    "SESSION": "SESSION(ts, gap)",
}


def _reject_window_tvfs(toks: list[Token]) -> None:
    """Flink's window table-valued functions, ``FROM TABLE(CUMULATE(TABLE t,
    DESCRIPTOR(ts), ...))``, in partita's words (sqlglot would report a missing
    argument deep inside)."""
    for i in range(len(toks) - 3):
        first, table, paren, window = toks[i : i + 4]
        kind = window.text.upper()
        if (
            first.token_type is TokenType.FROM
            and table.text.upper() == "TABLE"
            and paren.token_type is TokenType.L_PAREN
            and kind in _TVF_USAGE
        ):
            raise SqlError(
                f"window table-valued functions (FROM TABLE({kind}(TABLE t, DESCRIPTOR(ts), "
                f"...))) are not supported; read the stream (FROM t) and group by the "
                f"window: GROUP BY ..., {_TVF_USAGE[kind]}",
                line=table.line,
                col=max(1, table.col - len(table.text) + 1),
            )


def _create_stream_as_table(sql: str, toks: list[Token]) -> tuple[str, set[int]]:
    """``CREATE STREAM name (...)`` reads as sqlglot's ``CREATE TABLE`` (same offsets:
    ``STREAM`` and ``TABLE `` are both six characters); and where each such CREATE
    starts."""
    starts: set[int] = set()
    for before, after in pairwise(toks):
        if before.token_type is TokenType.CREATE and after.text.upper() == "STREAM":
            start = after.start
            sql = sql[:start] + "TABLE " + sql[start + 6 :]
            starts.add(before.start)
    return sql, starts


def _reject_empty_list_items(toks: list[Token]) -> None:
    """sqlglot reads ``SELECT a,, b`` as ``SELECT a, b``; SQL does not."""
    for before, after in pairwise(toks):
        if before.token_type is TokenType.COMMA and after.token_type in (
            TokenType.COMMA,
            TokenType.FROM,
            TokenType.R_PAREN,
        ):
            what = "," if after.token_type is TokenType.COMMA else after.text
            col = max(1, after.col - len(after.text) + 1)
            raise SqlError(
                f"syntax error: expected an expression after ',', got {what!r}",
                line=after.line,
                col=col,
            )
