"""Score what cx360 built from the synthetic bank against the bank's ground truth."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cx360.identity.evaluate import bcubed, by_source_pair, pairwise
from cx360.workspace import Workspace


def identity_frame(ws: Workspace, truth: Path) -> pd.DataFrame:
    """One row per CRM record: source, record_id, cluster (cx360's profile), truth (the real person)."""
    mapping = ws.engine.table("identity_map")
    rec = ws.engine.to_arrow(mapping.filter(mapping.kind == "record"), step="score: identity map").to_pandas()
    parts = rec.node.str.split(":", n=2, expand=True)
    rec = rec.assign(source=parts[1], record_id=parts[2])
    owners = pd.read_parquet(truth / "record_owner.parquet")
    frame = rec.merge(owners, on=["source", "record_id"], how="inner")
    return frame.rename(columns={"profile_id": "cluster", "person_id": "truth"})[["source", "record_id", "cluster", "truth"]]


def identity_scores(ws: Workspace, truth: Path) -> dict:
    frame = identity_frame(ws, truth)
    return {"pairwise": pairwise(frame), "bcubed": bcubed(frame), "by_source_pair": by_source_pair(frame), "records": len(frame)}
