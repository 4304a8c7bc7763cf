"""Segment sizes over time, from the membership history that every evaluation keeps.

`segment_members` holds one row per stay in a segment (entered_at, and exited_at once the person left),
both set to the as_of of the evaluation that saw the change. So the size after each evaluation that
changed the segment is the running sum of arrivals minus departures up to its as_of; evaluations that
changed nothing leave the size as it was and add no point.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from cx360.engine import Engine


def sizes(engine: Engine, segment: str) -> ir.Table:
    """as_of, entered, left and size after each evaluation that changed `segment`, oldest first."""
    m = engine.table("segment_members")
    m = m.filter(m.segment == segment)
    arrivals = m.select(as_of=m.entered_at, entered=ibis.literal(1), left=ibis.literal(0))
    gone = m.filter(m.exited_at.notnull())
    departures = gone.select(as_of=gone.exited_at, entered=ibis.literal(0), left=ibis.literal(1))
    moves = ibis.union(arrivals, departures, distinct=False)
    per = moves.group_by("as_of").aggregate(entered=moves.entered.sum(), left=moves.left.sum())
    running = ibis.cumulative_window(order_by="as_of")
    per = per.mutate(size=(per.entered - per.left).sum().over(running))
    return per.select(
        "as_of", entered=per.entered.cast("int64"), left=per.left.cast("int64"), size=per.size.cast("int64")
    ).order_by("as_of")
