"""Human decisions about identity: keep two nodes apart (block), or undo that (unblock).

Overrides are an append-only history (who, when, why). The latest action on a pair wins, and a
block holds on every later run, whatever new evidence appears for that link.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa

from cx360.engine import Engine


def effective_blocks(history: pd.DataFrame) -> pd.DataFrame:
    """Pairs whose latest action is a block, with who, when and why (left < right)."""
    if history.empty:
        return pd.DataFrame(columns=["left", "right", "by", "reason", "at"])
    pairs = history.assign(
        a=history[["left", "right"]].min(axis=1), b=history[["left", "right"]].max(axis=1)
    ).sort_values("at")
    latest = pairs.drop_duplicates(["a", "b"], keep="last")
    blocks = latest[latest.action == "block"]
    return blocks[["a", "b", "by", "reason", "at"]].rename(columns={"a": "left", "b": "right"})


def apply(links: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Mark the links that a user blocked."""
    blocks = effective_blocks(history)
    if blocks.empty:
        return links
    why = {
        (l, r): f"blocked by {by} at {at:%Y-%m-%d %H:%M}: {reason}"
        for l, r, by, reason, at in zip(
            blocks["left"], blocks["right"], blocks["by"], blocks["reason"], blocks["at"], strict=True
        )
    }
    keys = list(zip(links[["left", "right"]].min(axis=1), links[["left", "right"]].max(axis=1), strict=True))
    user = pd.Series([why.get(k) for k in keys], index=links.index)
    hit = user.notna()
    links = links.copy()
    links.loc[hit, "status"] = "blocked"
    links.loc[hit, "blocked_reason"] = user[hit]
    return links


def record(engine: Engine, action: str, pairs: list[tuple[str, str]], *, by: str, reason: str) -> None:
    if action not in ("block", "unblock"):
        raise ValueError(f"action must be 'block' or 'unblock', not {action!r}")
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    n = len(pairs)
    engine.append(
        "identity_overrides",
        pa.table(
            {
                "action": [action] * n,
                "left": [p[0] for p in pairs],
                "right": [p[1] for p in pairs],
                "by": [by] * n,
                "reason": [reason] * n,
                "at": pa.array([now] * n, pa.timestamp("us")),
            }
        ),
        step=f"identity: {action}",
    )
