"""Offer conditions and values evaluated over a table of people (one row each), in pandas.

The same tree the segments compile to Ibis (cx360.conditions) is evaluated here on columns, so that a
batch over every profile and a real-time decision for one person run the very same code. Columns are
pandas' nullable types, so unknown values follow SQL's three-valued logic; a condition that is unknown
at the end is no match, as in segments.
"""

from __future__ import annotations

import operator

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
