"""Offer conditions and values evaluated over a table of people (one row each), in pandas, and over
one person's fields (a dict), in plain Python.

The same tree the segments compile to Ibis (cx360.conditions) is evaluated here on columns for the
batch, and compiled once per text into a Python function for a real-time decision (`row_condition`,
`row_value`): one parse, two evaluators, which a test keeps equal on random rows. Columns are pandas'
nullable types and a row's unknown is None, so unknown values follow SQL's three-valued logic; a
condition that is unknown at the end is no match, as in segments.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from cx360.conditions import Field, Lit, parse
from cx360.errors import ConfigError

_COMPARE = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}
_ARITH = {"add": operator.add, "sub": operator.sub, "mul": operator.mul}


def fields(text: str | float | None) -> list[str]:
    return parse(text).fields if isinstance(text, str) else []


def condition(text: str | None, frame: pd.DataFrame, offer: str) -> pd.Series:
    """Who in `frame` matches `text` (everyone when it is None), as a plain bool Series."""
    if text is None:
        return pd.Series(True, index=frame.index)
    value = _Eval(frame, offer, text).node(parse(text).tree)
    if not isinstance(value, pd.Series) or value.dtype != "boolean":
        raise ConfigError(f"offer '{offer}': where {text!r} is not a true/false test; compare it, e.g. `... > 0`")
    return value.fillna(False).astype(bool)


def value(spec: str | float, frame: pd.DataFrame, offer: str) -> pd.Series:
    """The offer's value per person: a constant margin, or an expression (unknown counts as no value)."""
    if not isinstance(spec, str):
        return pd.Series(float(spec), index=frame.index)
    out = _Eval(frame, offer, spec).node(parse(spec).tree)
    if not isinstance(out, pd.Series):
        return pd.Series(float(out), index=frame.index)
    if not pd.api.types.is_numeric_dtype(out.dtype) or pd.api.types.is_bool_dtype(out.dtype):
        raise ConfigError(f"offer '{offer}': value {spec!r} is not a number")
    return out.astype("Float64").fillna(0.0).astype(float).clip(lower=0.0)


def check_fields(names: list[str], known: set[str], offer: str, what: str) -> None:
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(
            f"offer '{offer}': {what} names unknown field(s) {', '.join(map(repr, unknown))}; known fields: "
            f"{', '.join(sorted(known))} (segment.NAME for a segment, consent.PURPOSE or consent.PURPOSE_CHANNEL)"
        )


@lru_cache(maxsize=1024)
def row_condition(text: str | None, offer: str) -> Callable[[dict[str, Any]], bool]:
    """`condition` for one person: a function of their fields (None: unknown) compiled once per text."""
    if text is None:
        return lambda row: True
    test = _Row(offer, text).node(parse(text).tree)

    def matches(row: dict[str, Any]) -> bool:
        got = test(row)
        if got is not None and not isinstance(got, bool):
            raise ConfigError(f"offer '{offer}': where {text!r} is not a true/false test; compare it, e.g. `... > 0`")
        return bool(got)

    return matches


@lru_cache(maxsize=1024)
def row_value(spec: str | float, offer: str) -> Callable[[dict[str, Any]], float]:
    """`value` for one person, compiled once per text."""
    if not isinstance(spec, str):
        return lambda row: float(spec)
    number = _Row(offer, spec).node(parse(spec).tree)

    def value_of(row: dict[str, Any]) -> float:
        got = number(row)
        if isinstance(got, bool) or (got is not None and not isinstance(got, (int, float, np.number))):
            raise ConfigError(f"offer '{offer}': value {spec!r} is not a number")
        return max(float(got), 0.0) if got is not None else 0.0

    return value_of


def _kleene_and(a: bool | None, b: bool | None) -> bool | None:
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def _kleene_or(a: bool | None, b: bool | None) -> bool | None:
    if a is True or b is True:
        return True
    return None if a is None or b is None else False


class _Row:
    """The tree as nested Python closures over a row; None is unknown, as pd.NA is in _Eval."""

    def __init__(self, offer: str, text: str):
        self.offer, self.text = offer, text

    def fail(self, message: str):
        raise ConfigError(f"offer '{self.offer}': {self.text!r}: {message}")

    def node(self, n) -> Callable[[dict[str, Any]], Any]:
        if isinstance(n, Lit):
            return lambda row, v=n.value: v
        if isinstance(n, Field):
            return lambda row, name=n.name: row[name] if name in row else self.fail(f"unknown field {name!r}")
        op, args = n.op, n.args
        if op in ("in", "notin"):
            values, v = [lit.value for lit in args[1]], self.node(args[0])
            return lambda row: None if (x := v(row)) is None else ((x in values) == (op == "in"))
        if op == "between":
            v, low, high = (self.node(a) for a in args)
            return lambda row: _kleene_and(self.compare("ge", v(row), low(row)), self.compare("le", v(row), high(row)))
        parts = [self.node(a) for a in args]
        if op in ("and", "or"):
            join = _kleene_and if op == "and" else _kleene_or
            return lambda row: join(self.boolean(parts[0](row)), self.boolean(parts[1](row)))
        if op == "not":
            return lambda row: None if (x := self.boolean(parts[0](row))) is None else not x
        if op in ("isnull", "notnull"):
            return lambda row: (parts[0](row) is None) == (op == "isnull")
        if op == "neg":
            return lambda row: None if (x := self.number(parts[0](row))) is None else -x
        if op in _ARITH or op == "div":
            return lambda row: self.arith(op, self.number(parts[0](row)), self.number(parts[1](row)))
        return lambda row: self.compare(op, parts[0](row), parts[1](row))

    def arith(self, op: str, a, b):
        if a is None or b is None or (op == "div" and b == 0):
            return None
        return a / b if op == "div" else _ARITH[op](a, b)

    def compare(self, op: str, a, b) -> bool | None:
        if a is None or b is None:
            return None
        try:
            return bool(_COMPARE[op](a, b))
        except TypeError as exc:
            self.fail(f"values of different kinds cannot be combined ({exc})")

    def boolean(self, v):
        if v is not None and not isinstance(v, bool):
            self.fail("'and', 'or' and 'not' join true/false tests")
        return v

    def number(self, v):
        if isinstance(v, bool) or (v is not None and not isinstance(v, (int, float, np.number))):
            self.fail(f"{v!r} is not a number; arithmetic needs numbers")
        return None if v is None else float(v)


class _Eval:
    def __init__(self, frame: pd.DataFrame, offer: str, text: str):
        self.frame, self.offer, self.text = frame, offer, text

    def fail(self, message: str):
        raise ConfigError(f"offer '{self.offer}': {self.text!r}: {message}")

    def node(self, n):
        if isinstance(n, Lit):
            return pd.NA if n.value is None else n.value
        if isinstance(n, Field):
            if n.name not in self.frame.columns:
                self.fail(f"unknown field {n.name!r}")
            return self.frame[n.name]
        op, args = n.op, n.args
        try:
            if op in ("and", "or", "not"):
                parts = [self.boolean(a) for a in args]
                if op == "not":
                    return ~parts[0]
                return (parts[0] & parts[1]) if op == "and" else (parts[0] | parts[1])
            if op == "neg":
                return -self.number(args[0])
            if op in _ARITH:
                return _ARITH[op](self.number(args[0]), self.number(args[1]))
            if op == "div":
                den = self.number(args[1])
                den = den.mask(den == 0) if isinstance(den, pd.Series) else (pd.NA if den == 0 else den)
                return self.number(args[0]) / den
            if op in ("isnull", "notnull"):
                v = self.series(args[0])
                return (v.isna() if op == "isnull" else v.notna()).astype("boolean")
            if op in ("in", "notin"):
                v = self.series(args[0])
                test = v.isin([lit.value for lit in args[1]]).astype("boolean").mask(v.isna())
                return test if op == "in" else ~test
            if op == "between":
                v = self.series(args[0])
                return (v >= self.node(args[1])) & (v <= self.node(args[2]))
            left, right = self.node(args[0]), self.node(args[1])
            if not isinstance(left, pd.Series):
                left = pd.Series(left, index=self.frame.index, dtype=_dtype(left))
            return _COMPARE[op](left, right).astype("boolean")
        except TypeError as exc:
            self.fail(f"values of different kinds cannot be combined ({exc})")

    def series(self, n) -> pd.Series:
        v = self.node(n)
        return v if isinstance(v, pd.Series) else pd.Series(v, index=self.frame.index, dtype=_dtype(v))

    def boolean(self, n) -> pd.Series:
        v = self.series(n)
        if v.dtype != "boolean":
            self.fail("'and', 'or' and 'not' join true/false tests")
        return v

    def number(self, n):
        v = self.node(n)
        if isinstance(v, pd.Series):
            if pd.api.types.is_bool_dtype(v.dtype) or not pd.api.types.is_numeric_dtype(v.dtype):
                self.fail(f"{_describe(n)} is not a number; arithmetic needs numbers")
            return v.astype("Float64")
        if isinstance(v, bool) or (not isinstance(v, (int, float, np.number)) and v is not pd.NA):
            self.fail(f"{v!r} is not a number; arithmetic needs numbers")
        return v


def _dtype(v) -> str | None:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "Float64"
    if isinstance(v, str):
        return "string"
    return None


def _describe(n) -> str:
    return n.name if isinstance(n, Field) else "that part"


def nullable(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame in pandas' nullable types (numbers as Float64, so that ints and floats compare alike)."""
    out = frame.convert_dtypes()
    for c in out.columns:
        if pd.api.types.is_numeric_dtype(out[c].dtype) and not pd.api.types.is_bool_dtype(out[c].dtype):
            out[c] = out[c].astype("Float64")
    return out
