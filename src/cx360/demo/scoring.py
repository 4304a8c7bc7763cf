"""Score what cx360 built from the synthetic bank against the bank's ground truth."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cx360 import node_keys
from cx360.identity.evaluate import bcubed, by_source_pair, pairwise
from cx360.workspace import Workspace


def identity_frame(ws: Workspace, truth: Path) -> pd.DataFrame:
    """One row per CRM record: source, record_id, cluster (cx360's profile), truth (the real person)."""
    mapping = ws.engine.table("identity_map")
    rec = ws.engine.to_arrow(mapping.filter(mapping.kind == "record"), step="score: identity map").to_pandas()
    parts = [node_keys.record_parts(n) for n in rec.node]
    rec = rec.assign(source=[p[0] for p in parts], record_id=[p[1] for p in parts])
    owners = pd.read_parquet(truth / "record_owner.parquet")
    frame = rec.merge(owners, on=["source", "record_id"], how="inner")
    return frame.rename(columns={"profile_id": "cluster", "person_id": "truth"})[
        ["source", "record_id", "cluster", "truth"]
    ]


def identity_scores(ws: Workspace, truth: Path) -> dict:
    frame = identity_frame(ws, truth)
    return {
        "pairwise": pairwise(frame),
        "bcubed": bcubed(frame),
        "by_source_pair": by_source_pair(frame),
        "records": len(frame),
    }


def profile_persons(ws: Workspace, truth: Path) -> pd.DataFrame:
    """profile_id -> person_id: the real person most of the profile's CRM records belong to."""
    frame = identity_frame(ws, truth)
    counts = frame.groupby(["cluster", "truth"]).size().reset_index(name="n")
    counts = counts.sort_values(["cluster", "n", "truth"], ascending=[True, False, True])
    best = counts.drop_duplicates("cluster")
    return best.rename(columns={"cluster": "profile_id", "truth": "person_id"})[["profile_id", "person_id"]]


def archetype_frame(ws: Workspace, truth: Path) -> pd.DataFrame:
    """Per profile: cx360's archetype and scores next to the person's true ones."""
    arch = ws.engine.to_arrow(ws.engine.table("profile_archetypes"), step="score: archetypes").to_pandas()
    persons = pd.read_parquet(
        truth / "persons.parquet", columns=["person_id", "archetype", "digital_sophistication", "data_sharing"]
    )
    persons = persons.rename(
        columns={
            "archetype": "true_archetype",
            "digital_sophistication": "true_sophistication",
            "data_sharing": "true_sharing",
        }
    )
    return arch.merge(profile_persons(ws, truth), on="profile_id").merge(persons, on="person_id")


def value_scores(ws: Workspace, truth: Path) -> dict:
    """How well lifetime value ranks people by their hidden spending level, and whether p_alive
    separates those who really left from those who stayed."""
    scores = ws.engine.to_arrow(
        ws.engine.table("profile_scores").select("profile_id", "clv_12m", "p_alive"), step="score: profile scores"
    ).to_pandas()
    people = pd.read_parquet(truth / "persons.parquet", columns=["person_id", "value", "churned"])
    frame = (
        scores.merge(profile_persons(ws, truth), on="profile_id")
        .merge(people, on="person_id")
        .dropna(subset=["clv_12m"])
    )
    return {
        "customers": len(frame),
        "clv_spearman": float(frame["clv_12m"].corr(frame["value"], method="spearman"))
        if len(frame) > 2
        else float("nan"),
        "p_alive_churned": float(frame.loc[frame.churned, "p_alive"].mean()),
        "p_alive_stayed": float(frame.loc[~frame.churned, "p_alive"].mean()),
    }
