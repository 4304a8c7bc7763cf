"""Stable profile ids (one DuckDB query) against the rules written out plainly, on random histories:
an old id goes to the component holding most of its nodes, a component given several keeps the
oldest and the rest are merged into it, a component given none gets a deterministic new id."""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pandas as pd

from cx360.identity.stable_ids import assign, new_profile_id

NOW = dt.datetime(2026, 3, 1)
COLUMNS = ["profile_id", "created_at", "status", "merged_into", "updated_at"]


def reference(components, previous, registry, now):
    created = dict(zip(registry.profile_id, registry.created_at, strict=True))
    counts = components.merge(previous, on="node").groupby(["profile_id", "component"]).size().rename("n")
    homes = {}
    for pid, comp in sorted(counts.index, key=lambda k: (k[0], -counts[k], k[1])):  # most nodes first
        homes.setdefault(pid, comp)
    by_component: dict[str, list] = {}
    for pid, comp in homes.items():
        by_component.setdefault(comp, []).append((created.get(pid, now), pid))
    chosen = {comp: min(ids)[1] for comp, ids in by_component.items()}
    merged = {pid: chosen[comp] for pid, comp in homes.items() if chosen[comp] != pid}
    taken = set(registry.profile_id)
    for comp in sorted(set(components.component) - set(chosen)):
        taken.add(pid := new_profile_id(comp, taken))
        chosen[comp] = pid
    rows = []
    for r in registry.to_dict("records"):
        if r["profile_id"] in merged:
            r = {**r, "status": "merged", "merged_into": merged[r["profile_id"]], "updated_at": now}
        rows.append(r)
    for pid in sorted(set(chosen.values()) - set(registry.profile_id)):
        rows.append({"profile_id": pid, "created_at": now, "status": "active", "merged_into": None, "updated_at": now})
    return [chosen[c] for c in components.component], sorted(rows, key=lambda r: r["profile_id"])


def history(rng):
    n = int(rng.integers(1, 40))
    nodes = [f"email:n{i}@x.ru" for i in range(n)]
    groups = rng.integers(0, max(1, n // 3), n)
    comp_of = {g: min(nd for nd, gg in zip(nodes, groups, strict=True) if gg == g) for g in set(groups)}
    components = pd.DataFrame({"node": nodes, "component": [comp_of[g] for g in groups]})
    old = [f"P{i:015d}" for i in range(int(rng.integers(0, 8)))]
    kept = rng.random(n) < 0.7
    mapped = [nd for nd, k in zip(nodes, kept, strict=True) if k and old]
    previous = pd.DataFrame({"node": mapped, "profile_id": [old[int(rng.integers(0, len(old)))] for _ in mapped]})
    registered = [p for p in old if rng.random() < 0.8]  # the rest were issued by the stream
    registry = pd.DataFrame(
        {
            "profile_id": pd.Series(registered, dtype=object),
            "created_at": pd.Series(
                [dt.datetime(2025, 1, 1) + dt.timedelta(days=int(rng.integers(0, 3))) for _ in registered],
                dtype="datetime64[us]",
            ),
            "status": pd.Series(["active"] * len(registered), dtype=object),
            "merged_into": pd.Series([None] * len(registered), dtype=object),
            "updated_at": pd.Series([dt.datetime(2025, 6, 1)] * len(registered), dtype="datetime64[us]"),
        }
    )
    return components, previous, registry


def test_assign_follows_the_rules_on_random_histories():
    rng = np.random.default_rng(11)
    for _ in range(60):
        components, previous, registry = history(rng)
        mapping, updated = assign(components, previous, registry, NOW)
        ids, rows = reference(components, previous, registry, NOW)
        assert mapping.node.tolist() == components.node.tolist()
        assert mapping.profile_id.tolist() == ids
        got = updated.sort_values("profile_id")[COLUMNS].astype(object).where(updated.notna(), None)
        assert [
            {k: (v.to_pydatetime() if isinstance(v, pd.Timestamp) else v) for k, v in r.items()}
            for r in got.to_dict("records")
        ] == rows


def test_a_new_id_that_is_taken_gets_the_next_salt():
    component = "email:a@x.ru"
    first = "P" + hashlib.sha256(f"{component}#0".encode()).hexdigest()[:16]
    registry = pd.DataFrame(
        {"profile_id": [first], "created_at": [NOW], "status": ["merged"], "merged_into": ["Pzzz"], "updated_at": [NOW]}
    )
    components = pd.DataFrame({"node": [component], "component": [component]})
    previous = pd.DataFrame({"node": pd.Series([], dtype=object), "profile_id": pd.Series([], dtype=object)})
    mapping, updated = assign(components, previous, registry, NOW)
    second = "P" + hashlib.sha256(f"{component}#1".encode()).hexdigest()[:16]
    assert mapping.profile_id.tolist() == [second] and sorted(updated.profile_id) == sorted([first, second])
