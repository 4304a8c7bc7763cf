"""The segment condition language: a small, safe expression grammar parsed here and compiled to Ibis.

    condition  := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | comparison
    comparison := sum (OP sum | "is" ["not"] "null" | ["not"] "in" "(" literal ("," literal)* ")"
                      | "between" sum "and" sum)?
    sum        := product (("+" | "-") product)*
    product    := unary (("*" | "/") unary)*
    unary      := "-" unary | atom
    atom       := NUMBER | 'string' | true | false | null | FIELD | "(" or ")"
    OP         := = | == | != | <> | < | <= | > | >=

Fields are trait and score names (`churn_risk`, `clv_12m`, `days_since_txn`) or, in event conditions,
`name`, `channel`, `amount`, `source` and `properties.KEY`. User text never reaches SQL: the parser
builds an abstract tree, and the tree becomes Ibis expressions with the literals as parameters.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from cx360.errors import ConfigError, Cx360Error

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<string>'(?:[^']|'')*')
  | (?P<op><=|>=|!=|<>|==|=|<|>|\(|\)|,|\+|-|\*|/)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)
""",
    re.VERBOSE,
)
KEYWORDS = {"and", "or", "not", "is", "null", "in", "between", "true", "false"}
COMPARISONS = {"=": "eq", "==": "eq", "!=": "ne", "<>": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}


# ---- the tree


@dataclass(frozen=True)
class Lit:
    value: object


@dataclass(frozen=True)
class Field:
    name: str


@dataclass(frozen=True)
class Op:
    op: str  # and, or, not, neg, eq, ne, lt, le, gt, ge, add, sub, mul, div, isnull, notnull, in, notin, between
    args: tuple


@dataclass(frozen=True)
class Condition:
    text: str
    tree: object

    @property
    def fields(self) -> list[str]:
        """Every field the condition names, in order of first use."""
        seen: list[str] = []

        def walk(node: object) -> None:
            if isinstance(node, Field) and node.name not in seen:
                seen.append(node.name)
            elif isinstance(node, Op):
                for a in node.args:
                    walk(a)
            elif isinstance(node, tuple):
                for a in node:
                    walk(a)

        walk(self.tree)
        return seen


# ---- parsing


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ConfigError(f"condition {text!r}: unexpected character {text[pos]!r} at position {pos + 1}")
        kind = m.lastgroup
        value = m.group()
        if kind == "name" and value.lower() in KEYWORDS:
            kind, value = "kw", value.lower()
        if kind != "ws":
            out.append((kind, value, pos))
        pos = m.end()
    out.append(("end", "", len(text)))
    return out


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str, int]:
        return self.toks[self.i]

    def take(self) -> tuple[str, str, int]:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def accept(self, kind: str, value: str | None = None) -> bool:
        k, v, _ = self.peek()
        if k == kind and (value is None or v == value):
            self.i += 1
            return True
        return False

    def expect(self, kind: str, value: str, what: str) -> None:
        if not self.accept(kind, value):
            self.error(f"expected {what}")

    def error(self, msg: str):
        kind, value, pos = self.peek()
        found = "the end" if kind == "end" else repr(value)
        raise ConfigError(f"condition {self.text!r}: {msg} at position {pos + 1}, found {found}")

    def parse(self) -> object:
        if self.peek()[0] == "end":
            raise ConfigError('condition is empty; write e.g. "churn_risk > 0.7 and clv_12m > 500"')
        tree = self.or_()
        if self.peek()[0] != "end":
            self.error("expected 'and', 'or' or the end of the condition")
        return tree

    def or_(self):
        left = self.and_()
        while self.accept("kw", "or"):
            left = Op("or", (left, self.and_()))
        return left

    def and_(self):
        left = self.not_()
        while self.accept("kw", "and"):
            left = Op("and", (left, self.not_()))
        return left

    def not_(self):
        if self.accept("kw", "not"):
            return Op("not", (self.not_(),))
        return self.comparison()

    def comparison(self):
        left = self.sum_()
        kind, value, _ = self.peek()
        if kind == "op" and value in COMPARISONS:
            self.take()
            return Op(COMPARISONS[value], (left, self.sum_()))
        if self.accept("kw", "is"):
            negate = self.accept("kw", "not")
            self.expect("kw", "null", "'null' after 'is'")
            return Op("notnull" if negate else "isnull", (left,))
        negate = self.accept("kw", "not")
        if self.accept("kw", "in"):
            self.expect("op", "(", "'(' after 'in'")
            items = [self.literal()]
            while self.accept("op", ","):
                items.append(self.literal())
            self.expect("op", ")", "')' to close the list")
            return Op("notin" if negate else "in", (left, tuple(items)))
        if negate:
            self.error("expected 'in' after 'not'")
        if self.accept("kw", "between"):
            low = self.sum_()
            self.expect("kw", "and", "'and' in 'between ... and ...'")
            return Op("between", (left, low, self.sum_()))
        return left

    def sum_(self):
        left = self.product()
        while self.peek()[0] == "op" and self.peek()[1] in "+-":
            op = "add" if self.take()[1] == "+" else "sub"
            left = Op(op, (left, self.product()))
        return left

    def product(self):
        left = self.unary()
        while self.peek()[0] == "op" and self.peek()[1] in "*/":
            op = "mul" if self.take()[1] == "*" else "div"
            left = Op(op, (left, self.unary()))
        return left

    def unary(self):
        if self.accept("op", "-"):
            return Op("neg", (self.unary(),))
        return self.atom()

    def literal(self) -> Lit:
        node = self.unary()
        if isinstance(node, Op) and node.op == "neg" and isinstance(node.args[0], Lit):
            return Lit(-node.args[0].value)  # type: ignore[operator]
        if not isinstance(node, Lit):
            self.error("expected a number or a 'quoted string' in the list")
        return node

    def atom(self):
        kind, value, _ = self.peek()
        if kind == "number":
            self.take()
            return Lit(float(value) if any(c in value for c in ".eE") else int(value))
        if kind == "string":
            self.take()
            return Lit(value[1:-1].replace("''", "'"))
        if kind == "kw" and value in ("true", "false", "null"):
            self.take()
            return Lit({"true": True, "false": False, "null": None}[value])
        if kind == "name":
            self.take()
            return Field(value)
        if self.accept("op", "("):
            inner = self.or_()
            self.expect("op", ")", "')'")
            return inner
        self.error("expected a field, a number, a 'quoted string' or '('")


def parse(text: str) -> Condition:
    """Parse a condition; a syntax error is a ConfigError naming the position and what was expected."""
    return Condition(text, _Parser(text).parse())


# ---- compiling to Ibis

Resolver = Callable[[str], ir.Value]


def compile_condition(cond: Condition, resolve: Resolver) -> ir.BooleanValue:
    """The condition as an Ibis boolean over the columns that `resolve` returns for each field.
    SQL's three-valued logic, with unknown read as no match at the end: a profile without a value
    matches neither `x > 5` nor `not x > 5` (ask for it with `x is null`)."""
    value = _Compiler(cond.text, resolve).expr(cond.tree)
    if not value.type().is_boolean():
        raise ConfigError(
            f"condition {cond.text!r}: is not a true/false test (it computes a {value.type()}); "
            "compare it, e.g. `... > 0`"
        )
    return value.fill_null(False)


class _Compiler:
    def __init__(self, text: str, resolve: Resolver):
        self.text = text
        self.resolve = resolve

    def fail(self, msg: str):
        raise ConfigError(f"condition {self.text!r}: {msg}")

    def expr(self, node) -> ir.Value:
        if isinstance(node, Lit):
            return ibis.literal(node.value) if node.value is not None else ibis.null()
        if isinstance(node, Field):
            return self.resolve(node.name)
        op, args = node.op, node.args
        if op in ("and", "or"):
            a, b = (self.boolean(x) for x in args)
            return (a & b) if op == "and" else (a | b)
        if op == "not":
            return ~self.boolean(args[0])
        if op == "neg":
            return -self.numeric(args[0])
        if op in ("add", "sub", "mul", "div"):
            a, b = self.numeric(args[0]), self.numeric(args[1])
            return {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b.nullif(0)}[op]
        if op in ("isnull", "notnull"):
            v = self.expr(args[0])
            return v.isnull() if op == "isnull" else v.notnull()
        if op in ("in", "notin"):
            left = self.expr(args[0])
            if _is_property(args[0]) and all(isinstance(x.value, (int, float)) for x in args[1]):
                left = left.cast("float64")
            values = [self.coerce(left, lit.value) for lit in args[1]]
            test = left.isin(values)
            return test if op == "in" else ~test
        if op == "between":
            left, low = self.pair(args[0], args[1])
            left, high = self.pair(args[0], args[2])
            return left.between(low, high)
        left, right = self.pair(*args)
        self.check_comparable(left, right)
        return {
            "eq": left == right,
            "ne": left != right,
            "lt": left < right,
            "le": left <= right,
            "gt": left > right,
            "ge": left >= right,
        }[op]

    def pair(self, a, b) -> tuple[ir.Value, ir.Value]:
        """Both sides of a comparison; a literal takes the type of the other side (a date string against a
        timestamp), and a property (text) compared with a number is read as a number."""
        if isinstance(a, Lit) and not isinstance(b, Lit):
            right, left = self.pair(b, a)
            return left, right
        left = self.expr(a)
        if isinstance(b, Lit):
            if _is_property(a) and isinstance(b.value, (int, float)) and not isinstance(b.value, bool):
                return left.cast("float64"), ibis.literal(b.value)
            return left, (ibis.literal(self.coerce(left, b.value)) if b.value is not None else ibis.null())
        right = self.expr(b)
        if _is_property(a) and right.type().is_numeric():
            left = left.cast("float64")
        if _is_property(b) and left.type().is_numeric():
            right = right.cast("float64")
        return left, right

    def coerce(self, other: ir.Value, value: object) -> object:
        t = other.type()
        if t.is_timestamp() or t.is_date():
            if not isinstance(value, str):
                self.fail(f"compare the time {_name(other)} with a date such as '2025-06-30', not {value!r}")
            try:
                return dt.datetime.fromisoformat(value)
            except ValueError:
                self.fail(f"{value!r} is not a date or time (expected e.g. '2025-06-30' or '2025-06-30T12:00')")
        if t.is_string() and not isinstance(value, str):
            self.fail(f"{_name(other)} is text; compare it with a 'quoted string', not {value!r}")
        if t.is_numeric() and isinstance(value, str):
            self.fail(f"{_name(other)} is a number; compare it with a number, not the text {value!r}")
        return value

    def check_comparable(self, a: ir.Value, b: ir.Value) -> None:
        ta, tb = a.type(), b.type()
        groups = [(t.is_numeric() or t.is_boolean(), t.is_string(), t.is_temporal()) for t in (ta, tb)]
        if ta.is_null() or tb.is_null() or groups[0] == groups[1]:
            return
        self.fail(f"cannot compare {_name(a)} ({ta}) with {_name(b)} ({tb})")

    def boolean(self, node) -> ir.BooleanValue:
        v = self.expr(node)
        if not v.type().is_boolean():
            self.fail(f"{_describe(node)} is not a true/false test; 'and', 'or' and 'not' join comparisons")
        return v

    def numeric(self, node) -> ir.NumericValue:
        v = self.expr(node)
        if v.type().is_string():
            return v.cast("float64")
        if not v.type().is_numeric():
            self.fail(f"{_describe(node)} is not a number ({v.type()}); arithmetic needs numbers")
        return v


def _name(value: ir.Value) -> str:
    try:
        return value.get_name()
    except Exception:  # noqa: BLE001 - literals and computed values have no name
        return "a value"


def _is_property(node) -> bool:
    return isinstance(node, Field) and node.name.startswith("properties.")


def _describe(node) -> str:
    if isinstance(node, Field):
        return node.name
    if isinstance(node, Lit):
        return repr(node.value)
    return "that part"


def checked(text: str | None) -> str | None:
    """A pydantic validator: the text when it parses, else a ValueError with the parser's reason. Its fields
    are checked against the data where it is used."""
    if text is not None:
        try:
            parse(text)
        except Cx360Error as exc:
            raise ValueError(str(exc)) from None
    return text
