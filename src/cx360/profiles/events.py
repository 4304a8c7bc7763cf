"""Events attributed to profiles: each event joined to the person behind its identifiers.

An event is attributed through the strongest identifier it carries that the identity map knows
(customer number first, social handle last), so a login with a placeholder customer number still
reaches the person through its cookie.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from cx360 import node_keys

ATTRIBUTION_ORDER = node_keys.ATTRIBUTION_ORDER
COLUMNS = ("profile_id", "event_id", "ts", "source", "name", "channel", "amount", "properties")


def attribute(events: ir.Table, identity_map: ir.Table) -> ir.Table:
    """`profile_events`: every event with a known person, keyed by profile_id."""
    joined = events
    for kind in ATTRIBUTION_ORDER:
        m = identity_map.filter(identity_map.kind == kind)
        m = m.select(**{f"_node_{kind}": m.node, f"_pid_{kind}": m.profile_id})
        joined = joined.left_join(m, node_keys.identifier_expr(kind, joined[kind]) == m[f"_node_{kind}"])
    joined = joined.mutate(profile_id=ibis.coalesce(*(ibis._[f"_pid_{kind}"] for kind in ATTRIBUTION_ORDER)))
    return joined.filter(joined.profile_id.notnull()).select(*COLUMNS)
