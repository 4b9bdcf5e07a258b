"""Translate a sqlglot expression tree into a Python expression (source text).

The output is a Python expression over locals of the generated program (``r`` is the
current record).  SQL NULL is ``None`` and propagates: an operator whose operand is NULL
gives NULL, checked with ``is None`` on temporaries bound by ``:=`` so each operand is
evaluated once.  Where only truth matters (WHERE, HAVING, CASE WHEN) :meth:`cond` gives a
cheaper form in which NULL counts as false.

Every identifier and literal reaches the source through ``repr()``; no user text is ever
spliced in.  A constant with no literal form (``1e999``, a compiled LIKE pattern) enters
the module's namespace through :class:`ModuleNames` instead.  Each node type compiles
through one handler, looked up in a table (:attr:`ExprCompiler.TRANSFORMS`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, ClassVar

import attrs
from sqlglot import exp

from ._dialect import function_name, node_position
from ._errors import SqlError
from ._functions import DATE_TRUNC_UNITS, EXTRACT_FIELDS, like_regex, replacement_of
from ._plan import interval_ms

__all__ = ["SUPPORTED_FUNCTIONS", "Code", "ExprCompiler", "ModuleNames"]


@attrs.frozen
class Code:
    """A Python expression and what the generator knows about its value.

    ``nonnull``: it can never be NULL.  ``null``: it is the constant NULL (``None``), so
    an operator taking it is NULL without evaluating anything.
    """

    src: str
    nonnull: bool = False
    null: bool = False


NULL = Code("None", null=True)
"""The SQL NULL constant."""


@attrs.define
class ModuleNames:
    """The names one generated module binds beyond its source text.

    Constants without a literal form (``1e999``, compiled LIKE patterns) enter the
    module's namespace here, under generated names; :attr:`notes` says what each is, for
    the source's header.  Temporaries are locals, fresh across the whole module.
    """

    constants: dict[str, Any] = attrs.Factory(dict)
    notes: dict[str, str] = attrs.Factory(dict)
    _temps: int = 0

    def temp(self) -> str:
        """A fresh temporary local name."""
        self._temps += 1
        return f"_t{self._temps}"

    def constant(self, stem: str, value: Any, note: str) -> str:
        """The namespace name (``_<stem><n>``) bound to ``value``, described by ``note``.

        Equal notes share one name.
        """
        for name, known in self.notes.items():
            if known == note:
                return name
        n = sum(1 for name in self.constants if name.rstrip("0123456789") == f"_{stem}")
        name = f"_{stem}{n}"
        self.constants[name] = value
        self.notes[name] = note
        return name


SUPPORTED_FUNCTIONS = (
    "ABS, CEIL, CEILING, COALESCE, CONCAT, DATE_TRUNC, EXP, EXTRACT, FLOOR, FROM_UNIXTIME, "
    "GREATEST, IFNULL, IIF, LEAST, LENGTH, LN, LOG, LOWER, LTRIM, MOD, NULLIF, POSITION, "
    "POWER, REGEXP_EXTRACT, REGEXP_LIKE, REGEXP_REPLACE, REPLACE, ROUND, RTRIM, SIGN, "
    "SPLIT_PART, SQRT, STRPOS, SUBSTR, SUBSTRING, TO_TIMESTAMP, TRIM, UPPER, CAST, COUNT, "
    "SUM, AVG, MIN, MAX, TUMBLE, HOP, SESSION, *_START, *_END"
)

_COMPARE: dict[type[exp.Expr], str] = {
    exp.EQ: "==",
    exp.NEQ: "!=",
    exp.GT: ">",
    exp.GTE: ">=",
    exp.LT: "<",
    exp.LTE: "<=",
}
_ARITH: dict[type[exp.Expr], str] = {exp.Add: "+", exp.Sub: "-", exp.Mul: "*"}
_RAISE_ON_NULL: dict[type[exp.Expr], str] = {
    exp.Add: "+",
    exp.Sub: "-",
    exp.Mul: "*",
    exp.GT: ">",
    exp.GTE: ">=",
    exp.LT: "<",
    exp.LTE: "<=",
}
"""The binary operators whose NULL-checked form is ``None if a is None or b is None else
a OP b`` and whose plain Python form raises TypeError on a ``None`` operand: an
``unchecked`` compiler drops their checks.  Not ``=`` and ``<>`` (``None == 5`` is
False), nor ``/``, ``%`` and ``||`` (helpers that take ``None``)."""
_CAST_INT = {"INT", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "MEDIUMINT"}
_CAST_FLOAT = {"FLOAT", "DOUBLE", "REAL", "DECIMAL", "NUMERIC", "DOUBLE PRECISION"}
_CAST_TEXT = {"TEXT", "VARCHAR", "CHAR", "STRING", "NVARCHAR", "NCHAR"}
_SIMPLE_FUNCS: dict[type[exp.Expr], tuple[str, int]] = {
    exp.Length: ("_length", 1),
    exp.Abs: ("abs", 1),
    exp.Floor: ("_floor", 1),
    exp.Ceil: ("_ceil", 1),
    exp.Sqrt: ("_sqrt", 1),
    exp.Pow: ("_power", 2),
    exp.Exp: ("_exp", 1),
    exp.Ln: ("_ln", 1),
    exp.Sign: ("_sign", 1),
}
_ANON_FUNCS = {"LTRIM": "LEADING", "RTRIM": "TRAILING"}

Resolver = Callable[[exp.Expr], "Code | None"]
Handler = Callable[["ExprCompiler", Any], Code]
CondHandler = Callable[["ExprCompiler", Any], str]


def _func_name(node: exp.Expr) -> str:
    return function_name(type(node))


def _lookup(table: dict[type[exp.Expr], Any], node: exp.Expr) -> Any:
    """The handler of ``node``'s class, or of its nearest base class that has one."""
    for cls in type(node).__mro__:
        handler = table.get(cls)
        if handler is not None:
            return handler
    return None


@attrs.define
class ExprCompiler:
    """Compiles expressions for one generated program.

    Each node type has one handler, looked up in :attr:`TRANSFORMS` (values) and
    :attr:`CONDITIONS` (truth tests), as sqlglot's generator dispatches; a node class
    without an entry takes its nearest base class's.

    Args:
        sql: the query text (for error positions).
        resolve: gives the code of nodes the context owns (columns, aggregates, group
            keys, window bounds) or ``None`` to translate the node normally.
        names: the generated module's temporaries and namespace constants; shared by
            every compiler of one module.
        unchecked: compile ``+ - *``, unary minus, ``< <= > >=`` and BETWEEN with
            constant bounds without their NULL checks: on a NULL operand the
            expression raises TypeError instead of giving NULL (for a fast tier that
            falls back to the checked form when it raises; any other value is what
            the checked form gives).  :attr:`dropped` counts the checks left out.
    """

    sql: str
    resolve: Resolver
    names: ModuleNames = attrs.Factory(ModuleNames)
    unchecked: bool = False
    dropped: int = attrs.field(default=0, init=False)

    TRANSFORMS: ClassVar[dict[type[exp.Expr], Handler]]
    CONDITIONS: ClassVar[dict[type[exp.Expr], CondHandler]]

    def temp(self) -> str:
        """A fresh temporary local name."""
        return self.names.temp()

    def error(self, node: exp.Expr, message: str) -> SqlError:
        """A :class:`SqlError` pointing at ``node``."""
        line, col = node_position(node, self.sql)
        return SqlError(message, line=line, col=col)

    # -- NULL-propagating building blocks ---------------------------------------------

    def _strict(self, args: list[exp.Expr], build: Callable[[list[str]], str]) -> Code:
        codes = [self.value(a) for a in args]
        checks: list[str] = []
        names: list[str] = []
        for code in codes:
            if code.nonnull:
                names.append(f"({code.src})")
            elif code.null:
                return NULL
            else:
                t = self.temp()
                checks.append(f"({t} := {code.src}) is None")
                names.append(t)
        body = build(names)
        if not checks:
            return Code(f"({body})", nonnull=True)
        return Code(f"(None if {' or '.join(checks)} else {body})")

    def _raising(self, args: list[exp.Expr], build: Callable[[list[str]], str]) -> Code:
        """``build`` over the operands unchecked (see ``unchecked``)."""
        codes = [self.value(a) for a in args]
        if any(code.null for code in codes):
            return NULL
        nonnull = all(code.nonnull for code in codes)
        if not nonnull:
            self.dropped += 1
        return Code(f"({build([f'({code.src})' for code in codes])})", nonnull=nonnull)

    def _operator(self, node: exp.Binary, op: str) -> Code:
        """``a OP b``, NULL if either is (unchecked where Python raises on None)."""
        args = [node.this, node.expression]
        if self.unchecked and type(node) in _RAISE_ON_NULL:
            return self._raising(args, lambda n: f"{n[0]} {op} {n[1]}")
        return self._strict(args, lambda n: f"{n[0]} {op} {n[1]}")

    def _call(self, func: str, args: list[exp.Expr]) -> Code:
        return self._strict(args, lambda n: f"{func}({', '.join(n)})")

    # -- public -----------------------------------------------------------------------

    def cond(self, node: exp.Expr) -> str:
        """A Python expression that is truthy exactly when ``node`` is TRUE."""
        handler: CondHandler | None = _lookup(self.CONDITIONS, node)
        if handler is None or self.resolve(node) is not None:
            return self.value(node).src
        return handler(self, node)

    def value(self, node: exp.Expr) -> Code:
        """The Python expression computing ``node`` (``None`` for SQL NULL)."""
        resolved = self.resolve(node)
        if resolved is not None:
            return resolved
        handler: Handler | None = _lookup(self.TRANSFORMS, node)
        if handler is None:
            return self._unsupported(node)
        return handler(self, node)

    # -- truth tests ------------------------------------------------------------------

    def _cond_paren(self, node: exp.Paren) -> str:
        return self.cond(node.this)

    def _cond_and(self, node: exp.And) -> str:
        return f"({self.cond(node.this)} and {self.cond(node.expression)})"

    def _cond_or(self, node: exp.Or) -> str:
        return f"({self.cond(node.this)} or {self.cond(node.expression)})"

    def _cond_not(self, node: exp.Not) -> str:
        inner = self.value(node.this)
        if inner.nonnull:
            return f"(not {inner.src})"
        t = self.temp()
        return f"(({t} := {inner.src}) is not None and not {t})"

    def _cond_compare(self, node: exp.Binary) -> str:
        op = _COMPARE[type(node)]
        left, right = self.value(node.this), self.value(node.expression)
        if op == "==" and (left.nonnull or right.nonnull):
            return f"({left.src} == {right.src})"
        if self.unchecked and type(node) in _RAISE_ON_NULL:
            if left.null or right.null:
                return "False"
            if not (left.nonnull and right.nonnull):
                self.dropped += 1
            return f"({left.src} {op} {right.src})"
        checks, names = [], []
        for code in (left, right):
            if code.nonnull:
                names.append(code.src)
            else:
                t = self.temp()
                checks.append(f"({t} := {code.src}) is not None")
                names.append(t)
        return f"({' and '.join([*checks, f'{names[0]} {op} {names[1]}'])})"

    # -- values: atoms and operators --------------------------------------------------

    def _paren(self, node: exp.Paren) -> Code:
        return self.value(node.this)

    def _null(self, node: exp.Null) -> Code:
        return NULL

    def _boolean(self, node: exp.Boolean) -> Code:
        return Code(repr(bool(node.this)), nonnull=True)

    def _literal(self, node: exp.Literal) -> Code:
        if node.is_string:
            return Code(repr(str(node.this)), nonnull=True)
        text = str(node.this)
        try:
            number: int | float = int(text)
        except ValueError:
            number = float(text)
        if math.isinf(number):  # 1e999: a value, not text (repr would say ``inf``)
            name = self.names.constant("inf", math.inf, "float('inf')")
            return Code(name if number > 0 else f"(-{name})", nonnull=True)
        return Code(repr(number), nonnull=True)

    def _column(self, node: exp.Column) -> Code:
        raise self.error(node, f"unknown column {node.sql()!r} here")

    def _arith(self, node: exp.Binary) -> Code:
        op = _ARITH[type(node)]
        left, right = node.this, node.expression
        if isinstance(right, exp.Interval) and op in "+-":
            ms = interval_ms(right, self.sql, "an interval")
            delta = ms if op == "+" else -ms
            return self._strict([left], lambda n: f"_ts_add({n[0]}, {delta!r})")
        if isinstance(left, exp.Interval) and op == "+":
            ms = interval_ms(left, self.sql, "an interval")
            return self._strict([right], lambda n: f"_ts_add({n[0]}, {ms!r})")
        return self._operator(node, op)

    def _compare(self, node: exp.Binary) -> Code:
        return self._operator(node, _COMPARE[type(node)])

    def _div(self, node: exp.Div) -> Code:
        return self._call("_div", [node.this, node.expression])

    def _mod(self, node: exp.Mod) -> Code:
        return self._call("_mod", [node.this, node.expression])

    def _neg(self, node: exp.Neg) -> Code:
        if self.unchecked:
            return self._raising([node.this], lambda n: f"-{n[0]}")
        return self._strict([node.this], lambda n: f"-{n[0]}")

    def _and_or(self, node: exp.And | exp.Or) -> Code:
        helper = "_and3" if isinstance(node, exp.And) else "_or3"
        return Code(f"{helper}({self.value(node.this).src}, {self.value(node.expression).src})")

    def _not(self, node: exp.Not) -> Code:
        return self._strict([node.this], lambda n: f"(not {n[0]})")

    def _like_node(self, node: exp.Like | exp.ILike) -> Code:
        ci = isinstance(node, exp.ILike)
        return self._negate(node, self._like(node.this, node.expression, None, ci))

    def _escape(self, node: exp.Escape) -> Code:
        like = node.this
        if not isinstance(like, exp.Like | exp.ILike):
            return self._unsupported(node)
        esc = node.expression
        if not (isinstance(esc, exp.Literal) and esc.is_string and len(str(esc.this)) == 1):
            raise self.error(esc, "ESCAPE takes a one-character string")
        ci = isinstance(like, exp.ILike)
        return self._negate(like, self._like(like.this, like.expression, str(esc.this), ci))

    def _dpipe(self, node: exp.DPipe) -> Code:
        return self._strict([node.this, node.expression], lambda n: f"_str({n[0]}) + _str({n[1]})")

    def _if(self, node: exp.If) -> Code:
        return self._case_chain([(node.this, node.args["true"])], node.args.get("false"))

    def _coalesce_node(self, node: exp.Coalesce) -> Code:
        return self._coalesce([node.this, *node.expressions])

    # -- constructs -------------------------------------------------------------------

    def _is(self, node: exp.Is) -> Code:
        target = node.expression
        inner = self.value(node.this)
        if isinstance(target, exp.Null):
            return Code(f"({inner.src} is None)", nonnull=True)
        if isinstance(target, exp.Boolean):
            t = self.temp()
            want = "not not " if target.this else "not "
            return Code(f"(({t} := {inner.src}) is not None and {want}{t})", nonnull=True)
        raise self.error(node, "IS supports NULL, TRUE and FALSE; use = to compare values")

    def _in(self, node: exp.In) -> Code:
        if node.args.get("query") or node.args.get("unnest") or node.args.get("field"):
            raise self.error(node, "IN takes a list of values; subqueries are not supported")
        items = [self.value(e) for e in node.expressions]
        needle = self.value(node.this)
        t = self.temp()
        listed = "(" + ", ".join(i.src for i in items) + ("," if len(items) == 1 else "") + ")"
        body = f"{t} in {listed}" if all(i.nonnull for i in items) else f"_in3({t}, {listed})"
        if needle.nonnull:
            return Code(f"(({t} := {needle.src}) is not None and {body})", nonnull=False)
        return Code(f"(None if ({t} := {needle.src}) is None else {body})")

    def _negate(self, node: exp.Expr, code: Code) -> Code:
        """``x NOT LIKE p`` is stored as a LIKE node with ``negate`` set."""
        if not node.args.get("negate"):
            return code
        t = self.temp()
        return Code(f"(None if ({t} := {code.src}) is None else not {t})")

    def _between(self, node: exp.Expr) -> Code:
        """``x BETWEEN lo AND hi`` is ``x >= lo AND x <= hi``, three-valued."""
        low, high = self.value(node.args["low"]), self.value(node.args["high"])
        if low.nonnull and high.nonnull:

            def between(n: list[str]) -> str:
                return f"{low.src} <= {n[0]} <= {high.src}"

            if self.unchecked:
                return self._raising([node.this], between)
            return self._strict([node.this], between)
        x = self.value(node.this)
        return Code(f"_between3({x.src}, {low.src}, {high.src})")

    def _like(
        self, value: exp.Expr, pattern: exp.Expr, escape: str | None, ignore_case: bool
    ) -> Code:
        if isinstance(pattern, exp.Literal) and pattern.is_string:
            text = str(pattern.this)
            regex = like_regex(text, escape, ignore_case)
            note = f"_like_regex({text!r}, {escape!r}, {ignore_case!r})"
            name = self.names.constant("like", regex, note)
            return self._strict([value], lambda n: f"{name}.fullmatch(_str({n[0]})) is not None")
        return self._strict(
            [value, pattern], lambda n: f"_like({n[0]}, {n[1]}, {escape!r}, {ignore_case!r})"
        )

    def _case(self, node: exp.Case) -> Code:
        subject = node.this
        pairs = [(w.this, w.args["true"]) for w in node.args.get("ifs") or []]
        default = node.args.get("default")
        if subject is None:
            return self._case_chain(pairs, default)
        code = self.value(subject)
        t = self.temp()
        parts: list[str] = []
        for when, then in pairs:
            parts.append(f"{self.value(then).src} if {t} == {self.value(when).src} else ")
        tail = self.value(default).src if default is not None else "None"
        chain = "".join(parts) + tail
        return Code(f"({tail} if ({t} := {code.src}) is None else ({chain}))")

    def _case_chain(self, pairs: list[tuple[exp.Expr, exp.Expr]], default: exp.Expr | None) -> Code:
        parts = [f"{self.value(then).src} if {self.cond(when)} else " for when, then in pairs]
        tail = self.value(default).src if default is not None else "None"
        return Code("(" + "".join(parts) + tail + ")")

    def _cast(self, node: exp.Expr) -> Code:
        to = node.args["to"]
        name = to.sql().upper().split("(")[0].strip()
        if name in _CAST_INT:
            return self._call("_cast_int", [node.this])
        if name in _CAST_FLOAT:
            return self._call("_cast_float", [node.this])
        if name in _CAST_TEXT:
            return self._call("_str", [node.this])
        if name in ("BOOLEAN", "BOOL"):
            return self._call("_cast_bool", [node.this])
        raise self.error(
            node, f"CAST to {name} is not supported; use INTEGER, REAL, TEXT or BOOLEAN"
        )

    def _coalesce(self, args: list[exp.Expr]) -> Code:
        codes = [self.value(a) for a in args]
        parts: list[str] = []
        for code in codes[:-1]:
            if code.nonnull:
                return Code("(" + "".join(parts) + code.src + ")", nonnull=True)
            t = self.temp()
            parts.append(f"{t} if ({t} := {code.src}) is not None else ")
        last = codes[-1]
        return Code("(" + "".join(parts) + last.src + ")", nonnull=last.nonnull)

    def _nullif(self, node: exp.Nullif) -> Code:
        a, b = self.value(node.this), self.value(node.expression)
        t, u = self.temp(), self.temp()
        return Code(f"(None if ({t} := {a.src}) is None or ({u} := {b.src}) == {t} else {t})")

    def _simple_function(self, node: exp.Func) -> Code:
        helper, arity = _lookup(_SIMPLE_FUNCS, node)
        args = [a for a in (node.this, node.args.get("expression")) if a is not None]
        if len(args) != arity or node.expressions:
            raise self.error(node, f"{_func_name(node)} takes {arity} argument(s)")
        return self._call(helper, args)

    def _upper_lower(self, node: exp.Upper | exp.Lower) -> Code:
        method = "upper" if isinstance(node, exp.Upper) else "lower"
        return self._strict([node.this], lambda n: f"_str({n[0]}).{method}()")

    def _substring(self, node: exp.Substring) -> Code:
        args = [node.this, node.args.get("start") or exp.Literal.number(1)]
        if node.args.get("length") is not None:
            args.append(node.args["length"])
        return self._call("_substr", args)

    def _trim(self, node: exp.Trim) -> Code:
        where = str(node.args.get("position") or "BOTH").upper()
        chars = node.expression
        if chars is None:
            return self._strict([node.this], lambda n: f"_trim({n[0]}, None, {where!r})")
        return self._strict([node.this, chars], lambda n: f"_trim({n[0]}, {n[1]}, {where!r})")

    def _round(self, node: exp.Round) -> Code:
        args = [node.this] + ([node.args["decimals"]] if node.args.get("decimals") else [])
        return self._call("_round", args)

    def _log(self, node: exp.Log) -> Code:
        args = [node.this] + ([node.expression] if node.expression else [])
        return self._call("_log", args)

    def _replace(self, node: exp.Replace) -> Code:
        args = [node.this, node.expression, node.args.get("replacement") or exp.Literal.string("")]
        return self._call("_replace", args)

    def _concat(self, node: exp.Concat) -> Code:
        codes = [self.value(a).src for a in node.expressions]
        return Code(f"_concat({', '.join(codes)})", nonnull=True)

    def _anonymous(self, node: exp.Anonymous) -> Code:
        name = str(node.this).upper()
        if name in _ANON_FUNCS and 1 <= len(node.expressions) <= 2:
            where = _ANON_FUNCS[name]
            if len(node.expressions) == 1:
                return self._strict(node.expressions, lambda n: f"_trim({n[0]}, None, {where!r})")
            return self._strict(node.expressions, lambda n: f"_trim({n[0]}, {n[1]}, {where!r})")
        if name == "REPLACE" and len(node.expressions) == 3:
            return self._call("_replace", list(node.expressions))
        if name in ("TO_TIMESTAMP", "FROM_UNIXTIME"):
            if len(node.expressions) != 1:
                what = (
                    "ISO-8601 text or epoch seconds" if name == "TO_TIMESTAMP" else "epoch seconds"
                )
                raise self.error(
                    node, f"{name} takes one argument ({what}); formats are not supported"
                )
            helper = "_to_timestamp" if name == "TO_TIMESTAMP" else "_from_unixtime"
            return self._call(helper, list(node.expressions))
        raise self.error(node, f"unknown function {name}; supported: {SUPPORTED_FUNCTIONS}")

    def _interval(self, node: exp.Interval) -> Code:
        raise self.error(
            node,
            "an INTERVAL can only be added to or subtracted from a timestamp (ts + INTERVAL ...)",
        )

    def _only_args(self, node: exp.Expr, *allowed: str) -> None:
        """Refuse arguments of ``node`` beyond ``allowed`` (sqlglot knows other dialects')."""
        for key, value in node.args.items():
            if key not in allowed and value not in (None, [], False):
                raise self.error(node, f"{_func_name(node)} does not take that many arguments")

    def _not_distinct(self, node: exp.NullSafeEQ | exp.NullSafeNEQ) -> Code:
        a, b = self.value(node.this), self.value(node.expression)
        negate = "not " if isinstance(node, exp.NullSafeNEQ) else ""
        if a.nonnull and b.nonnull:
            return Code(f"({negate}({a.src} == {b.src}))", nonnull=True)
        t, u = self.temp(), self.temp()
        both = f"{t} is not None and {u} is not None and {t} == {u}"
        same = f"(({t} := {a.src}) is ({u} := {b.src}) or ({both}))"
        return Code(f"({negate}{same})", nonnull=True)

    def _greatest_least(self, node: exp.Greatest | exp.Least) -> Code:
        helper = "_greatest" if isinstance(node, exp.Greatest) else "_least"
        codes = [self.value(a) for a in [node.this, *node.expressions]]
        if all(c.nonnull for c in codes) and len(codes) > 1:
            builtin = "max" if helper == "_greatest" else "min"
            return Code(f"{builtin}({', '.join(c.src for c in codes)})", nonnull=True)
        return Code(f"{helper}({', '.join(c.src for c in codes)})")

    def _strpos(self, node: exp.StrPosition) -> Code:
        self._only_args(node, "this", "substr")
        return self._call("_strpos", [node.this, node.args["substr"]])

    def _split_part(self, node: exp.SplitPart) -> Code:
        self._only_args(node, "this", "delimiter", "part_index")
        args = [node.this, node.args.get("delimiter"), node.args.get("part_index")]
        if any(a is None for a in args):
            raise self.error(node, "SPLIT_PART takes (text, delimiter, index)")
        return self._call("_split_part", [a for a in args if a is not None])

    def _regex_constant(self, pattern: exp.Expr) -> str | None:
        """The namespace name of a literal pattern, compiled now (else ``None``)."""
        if not (isinstance(pattern, exp.Literal) and pattern.is_string):
            return None
        text = str(pattern.this)
        try:
            regex = re.compile(text)
        except re.error as exc:
            raise self.error(pattern, f"invalid regular expression {text!r}: {exc}") from None
        return self.names.constant("re", regex, f"re.compile({text!r})")

    def _regexp_like(self, node: exp.RegexpLike) -> Code:
        self._only_args(node, "this", "expression")
        name = self._regex_constant(node.expression)
        if name is None:
            return self._call("_regexp_like", [node.this, node.expression])
        return self._strict([node.this], lambda n: f"{name}.search(_str({n[0]})) is not None")

    def _regexp_extract(self, node: exp.RegexpExtract) -> Code:
        self._only_args(node, "this", "expression", "position", "group")
        group = node.args.get("group") or node.args.get("position")
        name = self._regex_constant(node.expression)
        if name is None:
            args = [node.this, node.expression] + ([group] if group is not None else [])
            return self._call("_regexp_extract", args)
        regex = self.names.constants[name]
        index = 0
        if group is not None:
            if not (isinstance(group, exp.Literal) and not group.is_string):
                raise self.error(group, "REGEXP_EXTRACT's group must be an integer literal")
            index = int(str(group.this)) if str(group.this).isdigit() else -1
            if not 0 <= index <= regex.groups:
                raise self.error(
                    group,
                    f"REGEXP_EXTRACT group {group.this} is out of range: the pattern has "
                    f"{regex.groups} group(s)",
                )
        return self._strict(
            [node.this], lambda n: f"_regexp_extract_with({name}, {n[0]}, {index!r})"
        )

    def _regexp_replace(self, node: exp.RegexpReplace) -> Code:
        self._only_args(node, "this", "expression", "replacement")
        replacement = node.args.get("replacement")
        if replacement is None:
            raise self.error(node, "REGEXP_REPLACE takes (text, pattern, replacement)")
        name = self._regex_constant(node.expression)
        literal = isinstance(replacement, exp.Literal) and replacement.is_string
        if name is None or not literal:
            return self._call("_regexp_replace", [node.this, node.expression, replacement])
        text = str(replacement.this)
        regex = self.names.constants[name]
        groups = [int(m) for m in re.findall(r"\\(\d)", text)]
        if any(g > regex.groups for g in groups):
            raise self.error(
                replacement,
                f"REGEXP_REPLACE replacement names group {max(groups)}; the pattern has "
                f"{regex.groups}",
            )
        repl = self.names.constant("repl", replacement_of(text), f"_replacement_of({text!r})")
        return self._strict([node.this], lambda n: f"{name}.sub({repl}, _str({n[0]}))")

    def _word(self, node: exp.Expr | None) -> str:
        if isinstance(node, exp.Literal | exp.Var):
            return str(node.this).upper()
        if isinstance(node, exp.Column) and not node.table:
            return node.name.upper()
        return ""

    def _date_trunc(self, node: exp.DateTrunc) -> Code:
        self._only_args(node, "this", "unit")
        unit = self._word(node.args.get("unit")).removesuffix("S")
        if unit not in DATE_TRUNC_UNITS:
            raise self.error(
                node,
                f"DATE_TRUNC takes ('unit', timestamp) with unit one of "
                f"{', '.join(u.lower() for u in DATE_TRUNC_UNITS)}",
            )
        return self._strict([node.this], lambda n: f"_date_trunc({unit!r}, {n[0]})")

    def _extract(self, node: exp.Extract) -> Code:
        field = self._word(node.this)
        if field not in EXTRACT_FIELDS:
            raise self.error(
                node,
                "EXTRACT takes (field FROM timestamp) with field one of "
                + ", ".join(EXTRACT_FIELDS),
            )
        return self._strict([node.expression], lambda n: f"_extract({field!r}, {n[0]})")

    def _unsupported(self, node: exp.Expr) -> Code:
        if isinstance(node, exp.Func):
            raise self.error(
                node,
                f"function {_func_name(node)} is not supported; supported: {SUPPORTED_FUNCTIONS}",
            )
        if isinstance(node, exp.Star):
            raise self.error(node, "* is only allowed as SELECT * or COUNT(*)")
        raise self.error(
            node, f"{type(node).__name__} ({node.sql()}) is not supported in expressions"
        )


ExprCompiler.CONDITIONS = {
    exp.Paren: ExprCompiler._cond_paren,
    exp.And: ExprCompiler._cond_and,
    exp.Or: ExprCompiler._cond_or,
    exp.Not: ExprCompiler._cond_not,
    **dict.fromkeys(_COMPARE, ExprCompiler._cond_compare),
}

ExprCompiler.TRANSFORMS = {
    exp.Paren: ExprCompiler._paren,
    exp.Null: ExprCompiler._null,
    exp.Boolean: ExprCompiler._boolean,
    exp.Literal: ExprCompiler._literal,
    exp.Column: ExprCompiler._column,
    **dict.fromkeys(_ARITH, ExprCompiler._arith),
    exp.Div: ExprCompiler._div,
    exp.Mod: ExprCompiler._mod,
    exp.Neg: ExprCompiler._neg,
    **dict.fromkeys(_COMPARE, ExprCompiler._compare),
    exp.And: ExprCompiler._and_or,
    exp.Or: ExprCompiler._and_or,
    exp.Not: ExprCompiler._not,
    exp.Is: ExprCompiler._is,
    exp.In: ExprCompiler._in,
    exp.Between: ExprCompiler._between,
    exp.Like: ExprCompiler._like_node,
    exp.ILike: ExprCompiler._like_node,
    exp.Escape: ExprCompiler._escape,
    exp.DPipe: ExprCompiler._dpipe,
    exp.Case: ExprCompiler._case,
    exp.If: ExprCompiler._if,
    exp.Cast: ExprCompiler._cast,  # TryCast is a Cast
    exp.Coalesce: ExprCompiler._coalesce_node,
    exp.Nullif: ExprCompiler._nullif,
    **dict.fromkeys(_SIMPLE_FUNCS, ExprCompiler._simple_function),
    exp.Upper: ExprCompiler._upper_lower,
    exp.Lower: ExprCompiler._upper_lower,
    exp.Substring: ExprCompiler._substring,
    exp.Trim: ExprCompiler._trim,
    exp.Round: ExprCompiler._round,
    exp.Log: ExprCompiler._log,
    exp.Replace: ExprCompiler._replace,
    exp.Concat: ExprCompiler._concat,
    exp.Anonymous: ExprCompiler._anonymous,
    exp.Interval: ExprCompiler._interval,
    exp.NullSafeEQ: ExprCompiler._not_distinct,
    exp.NullSafeNEQ: ExprCompiler._not_distinct,
    exp.Greatest: ExprCompiler._greatest_least,
    exp.Least: ExprCompiler._greatest_least,
    exp.StrPosition: ExprCompiler._strpos,
    exp.SplitPart: ExprCompiler._split_part,
    exp.RegexpLike: ExprCompiler._regexp_like,
    exp.RegexpExtract: ExprCompiler._regexp_extract,
    exp.RegexpReplace: ExprCompiler._regexp_replace,
    exp.DateTrunc: ExprCompiler._date_trunc,
    exp.Extract: ExprCompiler._extract,
}
