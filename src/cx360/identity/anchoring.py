"""Event-borne identifiers are weaker than record identifiers.

Records say who a customer is; an event only says that two identifiers were seen together (a login
on a shared computer, a call from a family phone). So an event link may attach anonymous
identifiers (cookies, devices, call phones that no record holds) to a profile, but never merge
two profiles that the records keep apart:

- profiles are first built from record links (record identifiers, probabilistic matches) alone;
- the identifiers that only events know form anonymous clusters among themselves;
- a cluster seen with exactly one profile attaches to it; one seen with several links none;
- an event link between identifiers of two different profiles is not used.

Each link set aside this way is blocked with its reason, so `explain` shows it.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from cx360 import node_keys
from cx360.identity.components import components

EVENT_RULE = "event_cooccurrence"


def weigh_event_links(links: pd.DataFrame, record_nodes: pa.Array) -> pd.DataFrame:
    """The links with the event links that would merge record-backed profiles blocked."""
    active = links.status == "active"
    event = links.rule == EVENT_RULE
    strong = links[active & ~event]
    ev = links[active & event]
    if ev.empty:
        return links

    nodes = pa.concat_arrays(
        [
            record_nodes.cast(pa.string()),
            pa.array(pd.concat([strong.left, strong.right]).unique(), pa.string()),
        ]
    )
    comps = components(nodes, pa.array(strong.left, pa.string()), pa.array(strong.right, pa.string())).to_pandas()
    backed = set(comps.component[node_keys.kind_series(comps.node) == node_keys.RECORD])
    anchored = comps[comps.component.isin(backed)].set_index("node").component
    left_profile, right_profile = ev.left.map(anchored), ev.right.map(anchored)

    why = pd.Series(None, index=ev.index, dtype=object)
    both = left_profile.notna() & right_profile.notna()
    conflict = both & (left_profile != right_profile)
    why[conflict] = (
        "event-borne: joins identifiers of two profiles that their records keep apart "
        "(events attach only identifiers no record holds)"
    )

    # anonymous clusters: identifiers of no record-backed profile, joined by events among themselves
    free = left_profile.isna() & right_profile.isna()
    loose = pd.concat([ev.left[left_profile.isna()], ev.right[right_profile.isna()]]).unique()
    clusters = (
        components(
            pa.array(loose, pa.string()),
            pa.array(ev.left[free], pa.string()),
            pa.array(ev.right[free], pa.string()),
        )
        .to_pandas()
        .set_index("node")
        .component
    )
    one = left_profile.isna() != right_profile.isna()
    cluster = ev.left.map(clusters).where(left_profile.isna(), ev.right.map(clusters))[one]
    profile = left_profile.where(left_profile.notna(), right_profile)[one]
    seen = pd.DataFrame({"cluster": cluster, "profile": profile}).groupby("cluster").profile.nunique()
    crowded = seen[seen > 1]
    ambiguous = cluster.isin(crowded.index)
    why[ambiguous[ambiguous].index] = [
        f"event-borne: seen in events with identifiers of {n} different profiles, so it links none of them"
        for n in cluster[ambiguous].map(crowded)
    ]

    hit = why.notna()
    if not hit.any():
        return links
    links = links.copy()
    links.loc[why[hit].index, "status"] = "blocked"
    links.loc[why[hit].index, "blocked_reason"] = why[hit]
    return links


def summary(links: pd.DataFrame) -> list[str]:
    """Warnings for the resolve report: what event evidence was set aside."""
    reasons = links.blocked_reason[links.status == "blocked"].dropna()
    crowd = int(reasons.str.startswith("event-borne: seen").sum())
    joins = int(reasons.str.startswith("event-borne: joins").sum())
    lines = []
    if crowd:
        lines.append(
            f"{crowd:,} event link(s) not used: an anonymous identifier seen with several "
            "profiles links none "
            "(a shared computer or phone; `cx360 identity explain` shows each)"
        )
    if joins:
        lines.append(f"{joins:,} event link(s) not used: they would merge profiles that their records keep apart")
    return lines
