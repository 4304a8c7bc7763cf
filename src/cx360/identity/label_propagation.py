"""Connected components as Ibis expressions, run on the engine (DuckDB; Spark needs checkpointed rounds, not built).

Label propagation with hooking and pointer jumping: every node starts as its
own label; each round a node and the label it points to both take the smallest
label across their links, then every label jumps to its label's label. Hooking
the labels (not only the nodes) and jumping make chains converge in few rounds
rather than one step per link. Each round is cached so plans stay one round deep.
"""

from __future__ import annotations

import ibis
from ibis.expr.types import Table


class ComponentsDidNotConverge(RuntimeError):
    """Labels still changed after the allowed number of rounds."""


def label_components(nodes: Table, links: Table, max_rounds: int = 64) -> tuple[Table, int]:
    """Label every node with the smallest node key of its component.

    nodes: column `node`; links: columns `left`, `right`, every end one of the
    nodes. Returns (table node, component; the rounds taken).
    """
    nodes = nodes.select(node=nodes.node.cast("string")).distinct()
    fwd = links.select(u=links.left.cast("string"), v=links.right.cast("string"))
    edges = ibis.union(fwd, fwd.select(u=fwd.v, v=fwd.u)).filter(lambda t: t.u != t.v).cache()
    labels = nodes.select(node=nodes.node, label=nodes.node).cache()
    for rounds in range(1, max_rounds + 1):
        lu = labels.select(u=labels.node, lu=labels.label)
        lv = labels.select(v=labels.node, lv=labels.label)
        seen = edges.join(lu, "u").join(lv, "v")
        candidates = ibis.union(
            labels.select(node=labels.node, label=labels.label),
            seen.select(node=seen.u, label=seen.lv),
            seen.select(node=seen.lu, label=seen.lv),  # hook the label itself
            distinct=False,
        )
        hooked = candidates.group_by("node").aggregate(label=candidates.label.min())
        up = hooked.select(label=hooked.node, jumped=hooked.label)
        jumped = hooked.join(up, "label").select(node=hooked.node, label=ibis._.jumped).cache()
        cmp = jumped.join(labels.select(node=labels.node, old=labels.label), "node")
        changed = cmp.filter(cmp.label != cmp.old).count().to_pyarrow().as_py()
        labels = jumped
        if changed == 0:
            return labels.select(node=labels.node, component=labels.label), rounds
    raise ComponentsDidNotConverge(f"connected components still changing after {max_rounds} rounds")
