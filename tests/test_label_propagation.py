"""SQL connected components give exactly scipy's partition."""

from __future__ import annotations

import ibis
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cx360.identity.components import components
from cx360.identity.label_propagation import ComponentsDidNotConverge, label_components


def _sql(con, nodes, left, right, max_rounds=64):
    n = con.create_table("lp_nodes", pa.table({"node": pa.array(nodes, pa.string())}), overwrite=True)
    links = pa.table({"left": pa.array(left, pa.string()), "right": pa.array(right, pa.string())})
    e = con.create_table("lp_links", links, overwrite=True)
    out, rounds = label_components(n, e, max_rounds)
    rows = out.to_pyarrow().to_pylist()
    return {r["node"]: r["component"] for r in rows}, rounds


def _scipy(nodes, left, right):
    t = components(pa.array(nodes, pa.string()), pa.array(left, pa.string()), pa.array(right, pa.string()))
    return dict(zip(t["node"].to_pylist(), t["component"].to_pylist(), strict=True))


@pytest.fixture(scope="module")
def con():
    return ibis.duckdb.connect()


graphs = st.integers(1, 40).flatmap(
    lambda n: st.tuples(
        st.just([f"n{i:03d}" for i in range(n)]),
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=2 * n),
    )
)


@settings(max_examples=40, deadline=None)
@given(graphs)
def test_random_graphs_match_scipy(con, graph):
    nodes, pairs = graph
    left = [nodes[a] for a, _ in pairs]
    right = [nodes[b] for _, b in pairs]
    assert _sql(con, nodes, left, right)[0] == _scipy(nodes, left, right)


@pytest.mark.parametrize("shape", ["chain", "reversed_chain", "shuffled_chain", "star", "self_links"])
def test_shapes_match_scipy(con, shape):
    import random

    nodes = [f"n{i:04d}" for i in range(300)]
    order = list(nodes)
    if shape == "reversed_chain":
        order.reverse()
    if shape == "shuffled_chain":
        random.Random(7).shuffle(order)
    if shape == "star":
        left, right = [nodes[150]] * 299, [x for x in nodes if x != nodes[150]]
    elif shape == "self_links":
        left, right = nodes[:100], nodes[:100]
    else:
        left, right = order[:-1], order[1:]
    got, rounds = _sql(con, nodes, left, right)
    assert got == _scipy(nodes, left, right)
    assert rounds <= 20


def test_too_few_rounds_is_a_clear_error(con):
    nodes = [f"n{i:03d}" for i in range(100)]
    with pytest.raises(ComponentsDidNotConverge, match="after 1 rounds"):
        _sql(con, nodes, nodes[:-1], nodes[1:], max_rounds=1)
