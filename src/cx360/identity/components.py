"""Connected components over links: which nodes belong to one person."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def components(nodes: pa.Array, left: pa.Array, right: pa.Array) -> pa.Table:
    """Label every node with the smallest node key of its component.

    `left` and `right` must only hold values from `nodes`. Labelling by the
    smallest member makes the result independent of the order of the input.
    """
    nodes = pc.unique(nodes.cast(pa.string())).sort() if len(nodes) else pa.array([], pa.string())
    n = len(nodes)
    if n == 0:
        return pa.table({"node": nodes, "component": nodes})
    li = pc.index_in(left.cast(pa.string()), value_set=nodes)
    ri = pc.index_in(right.cast(pa.string()), value_set=nodes)
    if li.null_count or ri.null_count:
        raise ValueError("every link end must be one of the nodes")
    li, ri = li.to_numpy(), ri.to_numpy()
    graph = coo_matrix((np.ones(len(li), dtype=np.int8), (li, ri)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    # nodes are sorted, so the first index seen per label is its smallest key
    first = np.full(labels.max() + 1, n, dtype=np.int64)
    np.minimum.at(first, labels, np.arange(n))
    return pa.table({"node": nodes, "component": nodes.take(pa.array(first[labels]))})
