"""Social influence: PageRank against networkx, reach, the combined score, customer value and tiers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from cx360.errors import SourceError
from cx360.models.influence import (
    KINDS,
    attention_edges,
    customer_value,
    influence,
    pagerank,
    two_hop_reach,
    value_tiers,
)


def edges(*rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["source_id", "target_id", "kind"])


def test_pagerank_matches_networkx_on_a_random_weighted_graph():
    nx = pytest.importorskip("networkx")
    rng = np.random.default_rng(0)
    e = pd.DataFrame(
        {
            "source_id": rng.integers(0, 200, 1500),
            "target_id": rng.integers(0, 200, 1500),
            "kind": rng.choice(list(KINDS), 1500),
            "weight": rng.uniform(0.1, 3.0, 1500),
        }
    )
    ours = pagerank(e)
    g = nx.DiGraph()
    g.add_weighted_edges_from(attention_edges(e).itertuples(index=False))
    theirs = pd.Series(nx.pagerank(g, alpha=0.85, weight="weight", tol=1e-12, max_iter=1000))
    assert ours.sum() == pytest.approx(1.0)
    assert np.abs(ours - theirs.reindex(ours.index)).max() < 1e-8


def test_attention_follows_the_kind():
    e = edges(
        ("fan", "star", "follow"), ("fan", "star", "mention"), ("star", "newbie", "referral"), ("x", "x", "reply")
    )
    att = attention_edges(e).set_index(["src", "dst"])["weight"]
    # follow 0.5 + mention 1 summed; a referral turns round (the referred listens to the referrer).
    assert att.to_dict() == {("fan", "star"): 1.5, ("newbie", "star"): 3.0}
    pr = pagerank(e)
    assert pr.idxmax() == "star"


def test_reach_counts_distinct_people_within_two_hops():
    # a <- b <- c <- d : b listens to a, c to b, d to c; e listens to both a and b.
    e = edges(
        ("b", "a", "reply"), ("c", "b", "reply"), ("d", "c", "reply"), ("e", "a", "mention"), ("e", "b", "mention")
    )
    inf = influence(e).set_index("node_id")
    assert inf.loc["a", "reach"] == 3  # b, e (hop 1) and c (hop 2); e is counted once
    assert inf.loc["b", "reach"] == 3  # c, e, d
    assert inf.loc["d", "reach"] == 0
    fol = influence(e, pd.DataFrame({"node_id": ["a", "b", "zed"], "followers": [100, 10, 7]})).set_index("node_id")
    assert fol.loc["a", "weighted_reach"] == 3 + 100 + 10  # reach + own followers + followers of b (hop 1)
    assert fol.loc["zed", "reach"] == 0 and fol.loc["zed", "weighted_reach"] == 7  # only in the follower table
    assert fol.influence_score.between(0, 1).all() and fol.influence_score.max() == pytest.approx(1.0)
    assert fol.influence_score.idxmax() == "a"


def test_influence_reads_arrow_and_rejects_bad_edges():
    table = pa.table({"source_id": ["1", "2"], "target_id": ["2", "3"], "kind": ["Reply", "follow"]})
    assert set(influence(table).node_id) == {"1", "2", "3"}
    with pytest.raises(SourceError, match=r"unknown kind\(s\) \['like'\]; accepted: mention, reply, referral, follow"):
        pagerank(edges(("1", "2", "like")))
    with pytest.raises(SourceError, match=r"missing column\(s\) \['kind'\]"):
        pagerank(pd.DataFrame({"source_id": ["1"], "target_id": ["2"]}))
    with pytest.raises(SourceError, match="'weight' must be a number >= 0"):
        pagerank(edges(("1", "2", "reply")).assign(weight=[-1]))


def test_customer_value_credits_influencers_with_a_share_of_clv():
    # b and c listen only to a; d splits attention between a and b (mention 1 each).
    e = edges(("b", "a", "reply"), ("c", "a", "follow"), ("d", "a", "mention"), ("d", "b", "mention"))
    clv = pd.DataFrame({"customer": ["a", "b", "c", "d"], "clv": [10.0, 100.0, 50.0, 200.0]})
    v = customer_value(clv, e, influence_share=0.1, hops=1).set_index("customer")
    assert v.loc["a", "network_clv"] == pytest.approx(0.1 * (100 + 50 + 200 / 2))
    assert v.loc["b", "network_clv"] == pytest.approx(0.1 * 200 / 2)
    assert v.loc["c", "value"] == 50.0 and v.loc["d", "network_clv"] == 0
    two = customer_value(clv, e, influence_share=0.1, hops=2).set_index("customer")
    # Second hop: d's credit to b flows on to a, damped once more.
    assert two.loc["a", "network_clv"] == pytest.approx(v.loc["a", "network_clv"] + 0.01 * 200 / 2)
    none = customer_value(clv, e, hops=0)
    assert (none.value == none.own_clv).all()
    # Credit is conserved: with hops=1, exactly λ of every attentive customer's CLV is handed on.
    assert v.network_clv.sum() == pytest.approx(0.1 * (100 + 50 + 200))


def test_customer_value_includes_non_customers_and_checks_its_input():
    clv = pd.DataFrame({"id": ["b"], "value_12m": [80.0]})
    v = customer_value(clv, edges(("b", "blogger", "follow")), id_col="id", clv_col="value_12m").set_index("id")
    assert v.loc["blogger", "own_clv"] == 0 and v.loc["blogger", "value"] > 0
    with pytest.raises(SourceError, match="expected columns 'customer' and 'clv'"):
        customer_value(clv, edges(("b", "x", "follow")))


def test_value_tiers_by_quantile():
    tiers = value_tiers(pd.Series(np.arange(100, dtype=float)))
    assert tiers.value_counts().to_dict() == {"bronze": 50, "silver": 30, "gold": 15, "platinum": 5}
    assert tiers.iloc[99] == "platinum" and tiers.iloc[0] == "bronze"
    assert (value_tiers([0.0] * 10) == "bronze").all()  # ties never lift a whole block up a tier
    custom = value_tiers(np.arange(10.0), quantiles=(0.25, 0.5, 0.75))
    assert custom.value_counts().to_dict() == {"bronze": 3, "silver": 2, "gold": 2, "platinum": 3}
    with pytest.raises(SourceError, match="three increasing numbers"):
        value_tiers([1.0, 2.0], quantiles=(0.9, 0.5, 0.95))


def test_two_hop_reach_in_blocks_counts_what_the_whole_square_counts():
    import scipy.sparse as sp

    rng = np.random.default_rng(7)
    for _ in range(25):
        n, m = int(rng.integers(1, 80)), int(rng.integers(0, 300))
        a = sp.csr_matrix((np.ones(m), (rng.integers(0, n, m), rng.integers(0, n, m))), shape=(n, n))
        a.setdiag(0)
        a.eliminate_zeros()
        square = ((a + a @ a) != 0).tolil()
        square.setdiag(False)  # oneself is not reach, even back through a cycle
        expected = np.asarray(square.tocsr().sum(axis=1)).ravel()
        for block in (1, 5, 64, 1 << 24):  # a block per row, small blocks, and one block for everything
            assert two_hop_reach(a, block_entries=block).tolist() == expected.tolist()


def test_a_hubs_reach_counts_each_person_once():
    # 300 followers of the hub; the hub replies to 40 people, who each reach the hub's 300 followers
    rows = [(f"f{i}", "hub", "follow") for i in range(300)] + [("hub", f"r{i}", "reply") for i in range(40)]
    rows.append(("f0", "r0", "follow"))  # f0 also follows r0 directly: still one person in r0's reach
    inf = influence(edges(*rows)).set_index("node_id")
    assert inf.loc["hub", "reach"] == 300
    assert inf.loc["r0", "reach"] == 1 + 300  # the hub, then its followers (f0 among them, counted once)
    assert inf.loc["f0", "reach"] == 0
