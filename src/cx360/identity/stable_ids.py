"""Stable profile ids: the same data gives the same ids, new data attaches to existing profiles,
and when profiles merge the oldest id survives."""

from __future__ import annotations

import datetime as dt
import hashlib

import pandas as pd


def new_profile_id(component: str, taken: set[str]) -> str:
    """Deterministic in the component's smallest node, so a rebuild from scratch gives the same ids."""
    salt = 0
    while True:
        digest = hashlib.sha256(f"{component}#{salt}".encode()).hexdigest()[:16]
        pid = f"P{digest}"
        if pid not in taken:
            return pid
        salt += 1


def assign(
    components: pd.DataFrame, previous: pd.DataFrame, registry: pd.DataFrame, now: dt.datetime
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Give every component a profile id.

    components: node, component. previous: node, profile_id (the last run's map).
    registry: profile_id, created_at, status, merged_into, updated_at (every id ever issued).
    Returns (node -> profile_id, the updated registry).

    A previous id goes to the component that holds most of its nodes; a component that receives
    several ids keeps the oldest and the others are marked merged into it; a component that
    receives none gets a new id.
    """
    created = dict(zip(registry.profile_id, registry.created_at, strict=True))
    seen = components.merge(previous[["node", "profile_id"]], on="node", how="inner")
    counts = seen.groupby(["profile_id", "component"]).size().rename("n").reset_index()
    # home of each old id: the component with most of its nodes (ties: smallest component key)
    counts = counts.sort_values(["profile_id", "n", "component"], ascending=[True, False, True])
    homes = counts.drop_duplicates("profile_id")
    homes = homes.assign(created_at=homes.profile_id.map(created).fillna(now))
    homes = homes.sort_values(["component", "created_at", "profile_id"])
    winners = homes.drop_duplicates("component")
    chosen = dict(zip(winners.component, winners.profile_id, strict=True))
    merged = homes[~homes.profile_id.isin(winners.profile_id)]

    taken = set(registry.profile_id)
    new_rows = []
    for component in sorted(set(components.component) - set(chosen)):
        pid = new_profile_id(component, taken)
        taken.add(pid)
        chosen[component] = pid
        new_rows.append(
            {"profile_id": pid, "created_at": now, "status": "active", "merged_into": None, "updated_at": now}
        )

    mapping = components.assign(profile_id=components.component.map(chosen))[["node", "profile_id"]]

    reg = registry.copy()
    if len(merged):
        into = dict(zip(merged.profile_id, merged.component.map(chosen), strict=True))
        hit = reg.profile_id.isin(list(into))
        reg.loc[hit, "status"] = "merged"
        reg.loc[hit, "merged_into"] = reg.loc[hit, "profile_id"].map(into)
        reg.loc[hit, "updated_at"] = now
    # ids that a previous map holds but the registry does not (the stream issued them): registered now
    for pid in sorted(set(chosen.values()) - set(reg.profile_id) - {r["profile_id"] for r in new_rows}):
        new_rows.append(
            {"profile_id": pid, "created_at": now, "status": "active", "merged_into": None, "updated_at": now}
        )
    if new_rows:
        reg = pd.concat([reg, pd.DataFrame(new_rows)], ignore_index=True) if len(reg) else pd.DataFrame(new_rows)
    return mapping, reg
