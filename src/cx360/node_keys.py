"""Node keys of the identity graph, built and parsed here only: `KIND:VALUE` for an identifier
(`email:ivan@mail.ru`) and `record:SOURCE:ID` for a source record (`record:crm_b:77`).

Stages, the API and the search index go through these functions, in Python, as Ibis expressions or
as SQL, so that what a key holds (today the normalised value itself) can change in one place. The
kind ends at the first ':'; a value may contain ':' itself. Source names cannot (see
`config.SourceName`), so a record's id is everything after its source.
"""

from __future__ import annotations

from typing import NamedTuple

import ibis
import ibis.expr.types as ir

from cx360.errors import DataError
from cx360.schema import IDENTIFIER_KINDS

SEP = ":"
# Strongest first: the order in which a row's identifiers decide its profile (events, consents).
ATTRIBUTION_ORDER = (
    "customer_no",
    "document",
    "card_token",
    "email",
    "phone",
    "device_id",
    "cookie_id",
    "social_handle",
)
RECORD = "record"
KINDS = (*IDENTIFIER_KINDS, RECORD)


class NodeKey(NamedTuple):
    kind: str  # an identifier kind, or "record"
    value: str  # the identifier value, or SOURCE:ID for a record


def identifier(kind: str, value: str) -> str:
    if kind not in IDENTIFIER_KINDS:
        raise DataError(f"unknown identifier kind {kind!r}; expected one of {', '.join(IDENTIFIER_KINDS)}")
    if not value:
        raise DataError(f"an empty {kind} cannot be a node")
    return f"{kind}{SEP}{value}"


def record(source: str, record_id: str) -> str:
    if not source or SEP in source:
        raise DataError(f"source name {source!r} cannot name a record node: it must be non-empty and without ':'")
    if not record_id:
        raise DataError(f"an empty record id of source {source!r} cannot be a node")
    return f"{RECORD}{SEP}{source}{SEP}{record_id}"


def parse(key: str) -> NodeKey:
    """The kind and value of a node key; an error that says what a key looks like otherwise."""
    kind, sep, value = key.partition(SEP)
    source, _, record_id = value.partition(SEP)
    if not sep or not value or kind not in KINDS or (kind == RECORD and not (source and record_id)):
        raise DataError(
            f"{key!r} is not a node key: write KIND:VALUE (KIND one of "
            f"{', '.join(IDENTIFIER_KINDS)}) or record:SOURCE:ID"
        )
    return NodeKey(kind, value)


def kind_of(key: str) -> str:
    return parse(key).kind


def value_of(key: str) -> str:
    return parse(key).value


def record_parts(key: str) -> tuple[str, str]:
    """(source, record id) of a record node."""
    kind, value = parse(key)
    if kind != RECORD:
        raise DataError(f"{key!r} is not a record node (record:SOURCE:ID)")
    source, _, record_id = value.partition(SEP)
    return source, record_id


def try_parse(key: str) -> NodeKey | None:
    """`parse`, or None for text that is not a node key (a bare e-mail, a profile id)."""
    try:
        return parse(key)
    except DataError:
        return None


# -- the same keys as Ibis expressions, for stage code on any engine -----------------------------


def identifier_expr(kind: str, value: ir.StringValue) -> ir.StringValue:
    if kind not in IDENTIFIER_KINDS:
        raise DataError(f"unknown identifier kind {kind!r}; expected one of {', '.join(IDENTIFIER_KINDS)}")
    return ibis.literal(f"{kind}{SEP}") + value


def record_expr(source: ir.StringValue, record_id: ir.StringValue) -> ir.StringValue:
    return ibis.literal(f"{RECORD}{SEP}") + source + SEP + record_id


def is_kind_expr(node: ir.StringValue, kind: str) -> ir.BooleanValue:
    return node.startswith(f"{kind}{SEP}")


# -- as pandas, for frames pulled from `identity_map` -------------------------------------------


def kind_series(nodes):
    """The kinds of a pandas Series of node keys."""
    return nodes.str.split(SEP, n=1).str[0]


def value_series(nodes):
    """The values of a pandas Series of node keys (SOURCE:ID for records)."""
    return nodes.str.split(SEP, n=1).str[1]


# -- and as SQL, for the DuckDB queries of the golden record and the API's index -----------------


def value_sql(column: str) -> str:
    """SQL for the value of the node key in `column` (DuckDB)."""
    return f"substr({column}, strpos({column}, '{SEP}') + 1)"
