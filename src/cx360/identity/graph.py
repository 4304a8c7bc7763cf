"""The deterministic identity graph: nodes are source records and typed identifiers, links come
from co-occurrence. Listed placeholders and values shared within a source or by too many records are
found here (junk by its shape and values held by different people in `junk`), and their links
blocked, so that one placeholder e-mail or a family phone cannot merge different people.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import ibis
import ibis.expr.types as ir

from cx360 import node_keys
from cx360.config import IdentitySettings
from cx360.identifiers import normalise_value
from cx360.schema import IDENTIFIER_KINDS

LINK_COLUMNS = ("left", "right", "rule", "confidence", "evidence", "status", "blocked_reason")


def latest_records(records: ir.Table) -> ir.Table:
    """The newest version of each source record."""
    order = [ibis.desc(records.updated_at), ibis.desc(records.ingested_at), ibis.desc(records.record_hash)]
    rank = ibis.row_number().over(group_by=["source", "record_id"], order_by=order)
    latest = records.mutate(_v=rank).filter(ibis._._v == 0).drop("_v")
    return latest.mutate(node=node_keys.record_expr(latest.source, latest.record_id))


def record_links(records: ir.Table) -> ir.Table:
    """A record is linked to each identifier it holds."""
    parts = [
        records.filter(records[kind].notnull()).select(
            left=records.node,
            right=node_keys.identifier_expr(kind, records[kind]),
            rule=ibis.literal("record_identifier"),
            kind=ibis.literal(kind),
            source=records.source,
            n_events=ibis.literal(0, "int64"),
            first_event=ibis.null("string"),
            first_event_name=ibis.null("string"),
        )
        for kind in IDENTIFIER_KINDS
    ]
    return ibis.union(*parts, distinct=False)


def event_links(events: ir.Table) -> ir.Table:
    """Identifiers seen in one event (a login with a cookie and a customer number, a Segment alias call)
    belong together; the link keeps how many events showed them and the first of them."""
    parts = []
    for a, b in itertools.combinations(IDENTIFIER_KINDS, 2):
        both = events.filter(events[a].notnull() & events[b].notnull())
        parts.append(
            both.group_by(
                left=node_keys.identifier_expr(a, both[a]), right=node_keys.identifier_expr(b, both[b])
            ).aggregate(
                rule=ibis.literal("event_cooccurrence"),
                kind=ibis.literal(f"{a}+{b}"),
                source=both.source.min(),
                n_events=both.count(),
                # the first event that showed them together (an alias call, a login): what explain names
                first_event=both.event_id.argmin(both.ts),
                first_event_name=both.name.argmin(both.ts),
            )
        )
    return ibis.union(*parts, distinct=False)


def suspicious_nodes(
    links: ir.Table, records: ir.Table, settings: IdentitySettings, token: Callable[[str, str], str] | None = None
) -> ir.Table:
    """Identifier nodes whose links must not merge people, with the reason.

    - a configured or well-known placeholder value;
    - a value held by two or more records of the same source (one source's records are distinct
      customers, so this is a shared value: a family phone, an agent's e-mail);
    - a value linked to more distinct records, or co-occurring with more customer numbers, than
      the per-kind limit.

    With the PII vault on, nodes hold tokens: `token(kind, value)` gives those of the listed values.
    """
    reasons = []
    blocked = sorted(
        {
            node_keys.identifier(k, token(k, n) if token else n)
            for k in IDENTIFIER_KINDS
            for v in settings.blocked(k)
            if (n := normalise_value(k, v))
        }
    )
    if blocked:
        values = ibis.memtable({"node": blocked})
        reasons.append(
            values.mutate(reason=ibis.literal("blocked value (a placeholder, or [identity].blocked_values)"))
        )

    per_source = (
        links.filter(links.rule == "record_identifier").group_by(["right", "source"]).aggregate(n=ibis._.left.nunique())
    )
    shared = per_source.filter(per_source.n >= 2)
    reasons.append(
        shared.select(
            node=shared.right,
            reason=ibis.literal("shared: held by ")
            + shared.n.cast("string")
            + " different records of source "
            + shared.source,
        )
    )
    for kind in IDENTIFIER_KINDS:
        limit = settings.max_records(kind)
        mine = links.filter(node_keys.is_kind_expr(links.right, kind) & (links.rule == "record_identifier"))
        many = mine.group_by("right").aggregate(n=mine.left.nunique()).filter(ibis._.n > limit)
        reasons.append(
            many.select(
                node=many.right,
                reason=ibis.literal(f"shared: held by more than {limit} records (") + many.n.cast("string") + ")",
            )
        )
        if kind != "customer_no":
            co = links.filter(
                (links.rule == "event_cooccurrence")
                & (
                    (node_keys.is_kind_expr(links.left, kind) & node_keys.is_kind_expr(links.right, "customer_no"))
                    | (node_keys.is_kind_expr(links.right, kind) & node_keys.is_kind_expr(links.left, "customer_no"))
                )
            )
            node = ibis.ifelse(node_keys.is_kind_expr(co.left, kind), co.left, co.right)
            other = ibis.ifelse(node_keys.is_kind_expr(co.left, kind), co.right, co.left)
            co = co.select(node=node, other=other)
            crowd = co.group_by("node").aggregate(n=co.other.nunique()).filter(ibis._.n > limit)
            reasons.append(
                crowd.select(
                    node=crowd.node,
                    reason=ibis.literal(f"shared: seen with more than {limit} customer numbers (")
                    + crowd.n.cast("string")
                    + ")",
                )
            )
    found = ibis.union(*reasons, distinct=False)
    return found.group_by("node").aggregate(reason=found.reason.first())
