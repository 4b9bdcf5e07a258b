"""Translate a sqlglot expression tree into a Python expression (source text).

The output is a Python expression over locals of the generated program (``r`` is the
current record).  SQL NULL is ``None`` and propagates: an operator whose operand is NULL
gives NULL, checked with ``is None`` on temporaries bound by ``:=`` so each operand is
evaluated once.  Where only truth matters (WHERE, HAVING, CASE WHEN) :meth:`cond` gives a
cheaper form in which NULL counts as false.

Every identifier and literal reaches the source through ``repr()``; no user text is ever
spliced in.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
from sqlglot import exp

from ._dialect import node_position
from ._errors import SqlError

_INF = float("inf")

__all__ = ["SUPPORTED_FUNCTIONS", "Code", "ExprCompiler"]


@attrs.frozen
class Code:
    """A Python expression and whether it can never be NULL."""

    src: str
    nonnull: bool = False


SUPPORTED_FUNCTIONS = (
    "ABS, CEIL, CEILING, COALESCE, CONCAT, EXP, FLOOR, IFNULL, IIF, LENGTH, LN, LOG, LOWER, "
    "LTRIM, MOD, NULLIF, POWER, REPLACE, ROUND, RTRIM, SIGN, SQRT, SUBSTR, SUBSTRING, TRIM, "
    "UPPER, CAST, COUNT, SUM, AVG, MIN, MAX, TUMBLE, HOP, SESSION, *_START, *_END"
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


def _func_name(node: exp.Expr) -> str:
    name = node.sql_name() if isinstance(node, exp.Func) else type(node).__name__
    return str(name).upper()


@attrs.define
class ExprCompiler:
    """Compiles expressions for one generated program.

    Args:
        sql: the query text (for error positions).
        resolve: gives the code of nodes the context owns (columns, aggregates, group
            keys, window bounds) or ``None`` to translate the node normally.
        prelude: lines the program runs once at load time (constants like LIKE patterns);
            shared with the caller.
    """

    sql: str
    resolve: Resolver
    prelude: list[str] = attrs.Factory(list)
    _temps: list[int] = attrs.Factory(lambda: [0])

    def temp(self) -> str:
        """A fresh temporary local name."""
        self._temps[0] += 1
        return f"_t{self._temps[0]}"

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
            elif code.src == "None":
                return Code("None")
            else:
                t = self.temp()
                checks.append(f"({t} := {code.src}) is None")
                names.append(t)
        body = build(names)
        if not checks:
            return Code(f"({body})", nonnull=True)
        return Code(f"(None if {' or '.join(checks)} else {body})")

    def _call(self, func: str, args: list[exp.Expr]) -> Code:
        return self._strict(args, lambda n: f"{func}({', '.join(n)})")

    # -- public -----------------------------------------------------------------------

    def cond(self, node: exp.Expr) -> str:
        """A Python expression that is truthy exactly when ``node`` is TRUE."""
        if isinstance(node, exp.Paren):
            return self.cond(node.this)
        if isinstance(node, exp.And):
            return f"({self.cond(node.this)} and {self.cond(node.expression)})"
        if isinstance(node, exp.Or):
            return f"({self.cond(node.this)} or {self.cond(node.expression)})"
        if isinstance(node, exp.Not):
            inner = self.value(node.this)
            if inner.nonnull:
                return f"(not {inner.src})"
            t = self.temp()
            return f"(({t} := {inner.src}) is not None and not {t})"
        if type(node) in _COMPARE and self.resolve(node) is None:
            op = _COMPARE[type(node)]
            left, right = self.value(node.this), self.value(node.expression)
            if op == "==" and (left.nonnull or right.nonnull):
                return f"({left.src} == {right.src})"
            checks, names = [], []
            for code in (left, right):
                if code.nonnull:
                    names.append(code.src)
                else:
                    t = self.temp()
                    checks.append(f"({t} := {code.src}) is not None")
                    names.append(t)
            return f"({' and '.join([*checks, f'{names[0]} {op} {names[1]}'])})"
        return self.value(node).src

    def value(self, node: exp.Expr) -> Code:
        """The Python expression computing ``node`` (``None`` for SQL NULL)."""
        resolved = self.resolve(node)
        if resolved is not None:
            return resolved
        if isinstance(node, exp.Paren):
            return self.value(node.this)
        if isinstance(node, exp.Null):
            return Code("None")
        if isinstance(node, exp.Boolean):
            return Code(repr(bool(node.this)), nonnull=True)
        if isinstance(node, exp.Literal):
            if node.is_string:
                return Code(repr(str(node.this)), nonnull=True)
            text = str(node.this)
            try:
                number: int | float = int(text)
            except ValueError:
                number = float(text)
            if number in (_INF, -_INF):  # 1e999: a value, not text (repr would say ``inf``)
                return Code("_INF" if number > 0 else "(-_INF)", nonnull=True)
            return Code(repr(number), nonnull=True)
        if isinstance(node, exp.Column):
            raise self.error(node, f"unknown column {node.sql()!r} here")
        if type(node) in _ARITH:
            op = _ARITH[type(node)]
            return self._strict([node.this, node.expression], lambda n: f"{n[0]} {op} {n[1]}")
        if isinstance(node, exp.Div):
            return self._call("_div", [node.this, node.expression])
        if isinstance(node, exp.Mod):
            return self._call("_mod", [node.this, node.expression])
        if isinstance(node, exp.Neg):
            return self._strict([node.this], lambda n: f"-{n[0]}")
        if type(node) in _COMPARE:
            op = _COMPARE[type(node)]
            return self._strict([node.this, node.expression], lambda n: f"{n[0]} {op} {n[1]}")
        if isinstance(node, exp.And | exp.Or):
            helper = "_and3" if isinstance(node, exp.And) else "_or3"
            return Code(f"{helper}({self.value(node.this).src}, {self.value(node.expression).src})")
        if isinstance(node, exp.Not):
            return self._strict([node.this], lambda n: f"(not {n[0]})")
        if isinstance(node, exp.Is):
            return self._is(node)
        if isinstance(node, exp.In):
            return self._in(node)
        if isinstance(node, exp.Between):
            return self._between(node)
        if isinstance(node, exp.Like | exp.ILike):
            ci = isinstance(node, exp.ILike)
            return self._negate(node, self._like(node.this, node.expression, None, ci))
        if isinstance(node, exp.Escape) and isinstance(node.this, exp.Like | exp.ILike):
            esc = node.expression
            if not (isinstance(esc, exp.Literal) and esc.is_string and len(str(esc.this)) == 1):
                raise self.error(esc, "ESCAPE takes a one-character string")
            ci = isinstance(node.this, exp.ILike)
            like = self._like(node.this.this, node.this.expression, str(esc.this), ci)
            return self._negate(node.this, like)
        if isinstance(node, exp.DPipe):
            return self._strict(
                [node.this, node.expression], lambda n: f"_str({n[0]}) + _str({n[1]})"
            )
        if isinstance(node, exp.Case):
            return self._case(node)
        if isinstance(node, exp.If):
            return self._case_chain([(node.this, node.args["true"])], node.args.get("false"))
        if isinstance(node, exp.Cast | exp.TryCast):
            return self._cast(node)
        if isinstance(node, exp.Coalesce):
            return self._coalesce([node.this, *node.expressions])
        if isinstance(node, exp.Nullif):
            return self._nullif(node)
        return self._function(node)

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
            return self._strict([node.this], lambda n: f"{low.src} <= {n[0]} <= {high.src}")
        x = self.value(node.this)
        return Code(f"_between3({x.src}, {low.src}, {high.src})")

    def _like(
        self, value: exp.Expr, pattern: exp.Expr, escape: str | None, ignore_case: bool
    ) -> Code:
        if isinstance(pattern, exp.Literal) and pattern.is_string:
            name = f"_like{len(self.prelude)}"
            self.prelude.append(
                f"{name} = _like_regex({str(pattern.this)!r}, {escape!r}, {ignore_case!r})"
            )
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

    def _function(self, node: exp.Expr) -> Code:
        if type(node) in _SIMPLE_FUNCS:
            helper, arity = _SIMPLE_FUNCS[type(node)]
            args = [a for a in (node.this, node.args.get("expression")) if a is not None]
            if len(args) != arity or node.expressions:
                raise self.error(node, f"{_func_name(node)} takes {arity} argument(s)")
            return self._call(helper, args)
        if isinstance(node, exp.Upper | exp.Lower):
            method = "upper" if isinstance(node, exp.Upper) else "lower"
            return self._strict([node.this], lambda n: f"_str({n[0]}).{method}()")
        if isinstance(node, exp.Substring):
            args = [node.this, node.args.get("start") or exp.Literal.number(1)]
            if node.args.get("length") is not None:
                args.append(node.args["length"])
            return self._call("_substr", args)
        if isinstance(node, exp.Trim):
            where = str(node.args.get("position") or "BOTH").upper()
            chars = node.expression
            if chars is None:
                return self._strict([node.this], lambda n: f"_trim({n[0]}, None, {where!r})")
            return self._strict([node.this, chars], lambda n: f"_trim({n[0]}, {n[1]}, {where!r})")
        if isinstance(node, exp.Round):
            args = [node.this] + ([node.args["decimals"]] if node.args.get("decimals") else [])
            return self._call("_round", args)
        if isinstance(node, exp.Log):
            args = [node.this] + ([node.expression] if node.expression else [])
            return self._call("_log", args)
        if isinstance(node, exp.Replace):
            args = [
                node.this,
                node.expression,
                node.args.get("replacement") or exp.Literal.string(""),
            ]
            return self._call("_replace", args)
        if isinstance(node, exp.Concat):
            codes = [self.value(a).src for a in node.expressions]
            return Code(f"_concat({', '.join(codes)})", nonnull=True)
        if isinstance(node, exp.Anonymous):
            name = str(node.this).upper()
            if name in _ANON_FUNCS and 1 <= len(node.expressions) <= 2:
                where = _ANON_FUNCS[name]
                if len(node.expressions) == 1:
                    return self._strict(
                        node.expressions, lambda n: f"_trim({n[0]}, None, {where!r})"
                    )
                return self._strict(node.expressions, lambda n: f"_trim({n[0]}, {n[1]}, {where!r})")
            if name == "REPLACE" and len(node.expressions) == 3:
                return self._call("_replace", list(node.expressions))
            raise self.error(node, f"unknown function {name}; supported: {SUPPORTED_FUNCTIONS}")
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
