"""Training the call-reason forecast on a workspace's past calls, and scoring it on a held-out period
next to two baselines: the most frequent reason, and the person's last reason."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from cx360.calls import history
from cx360.calls.history import CallHistory
from cx360.calls.model import CallReasonModel
from cx360.errors import DataError

if TYPE_CHECKING:
    from cx360.workspace import Workspace

MODEL_DIR = Path("models") / "calls"
MIN_CALLS = 20


def model_dir(ws: Workspace) -> Path:
    return ws.root / MODEL_DIR


def fit(train: CallHistory) -> CallReasonModel:
    if len(train.calls) < MIN_CALLS:
        raise DataError(f"only {len(train.calls)} past calls with a reason code to learn from; need {MIN_CALLS}")
    return CallReasonModel().fit(train.families, list(train.calls.key), train.calls.reason.to_numpy())


def split_date(calls: pd.DataFrame, held_out: float = 0.2) -> dt.datetime:
    """The time before which (1 - held_out) of the calls happened."""
    if calls.empty:
        raise DataError("the workspace has no calls with a reason code")
    return pd.Timestamp(calls["at"].quantile(1 - held_out)).to_pydatetime()


def evaluate(ws: Workspace, since: dt.datetime, *, data: CallHistory | None = None) -> dict:
    """Train on the calls before `since`, score the calls since: top-1 and top-3 accuracy of the model
    and of the baselines."""
    data = data or history.load(ws)
    train, test = data.before(since), data.since(since)
    if test.calls.empty:
        last = data.calls["at"].max() if len(data.calls) else None
        raise DataError(f"no calls with a reason code since {since:%Y-%m-%d} (the last is {last})")
    model = fit(train)
    y = test.calls.reason.to_numpy(dtype=object)
    top = model.top(test.families, list(test.calls.key), k=3)
    ranked = [[r for r, _, _ in t] for t in top]
    frequent = list(train.calls.reason.value_counts().index[:3])
    previous = _previous_reasons(data.calls, test.calls, frequent)
    unseen = sorted(set(y) - set(model.classes_))
    return {
        "since": since.isoformat(),
        "train_calls": len(train.calls),
        "test_calls": len(test.calls),
        "calls_without_reason": data.without_reason,
        "reasons": sorted(set(data.calls.reason)),
        "unseen_in_training": unseen,
        "model": _accuracy(ranked, y),
        "baselines": {
            "most_frequent": _accuracy([frequent] * len(y), y),
            "last_reason": _accuracy(previous, y),
        },
        "per_reason": {
            r: {
                "calls": int((y == r).sum()),
                "top1_recall": round(float(np.mean([p[0] == r for p, t in zip(ranked, y, strict=True) if t == r])), 4),
            }
            for r in sorted(set(y))
        },
    }


def train(ws: Workspace) -> tuple[CallReasonModel, dict]:
    """Fit on every past call and save to models/calls; the card holds a held-out score (last 20% by time)."""
    data = history.load(ws)
    since = split_date(data.calls)
    card = evaluate(ws, since, data=data)
    model = fit(data)
    card = {
        "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "calls": len(data.calls),
        "held_out": card,
    }
    model.save(model_dir(ws), card)
    return model, card


def _accuracy(ranked: list[list[str]], y: np.ndarray) -> dict:
    hits1 = [bool(r) and r[0] == t for r, t in zip(ranked, y, strict=True)]
    hits3 = [t in r[:3] for r, t in zip(ranked, y, strict=True)]
    return {"top1": round(float(np.mean(hits1)), 4), "top3": round(float(np.mean(hits3)), 4)}


def _previous_reasons(calls: pd.DataFrame, test: pd.DataFrame, frequent: list[str]) -> list[list[str]]:
    """Per test call, the reasons of the person's latest earlier calls (newest first, distinct), then the
    most frequent reasons to fill three places."""
    by_person = dict(iter(calls.groupby("profile_id", sort=False)))  # (a groupby's `keys` is not a mapping's)
    out = []
    for pid, at in zip(test.profile_id, test["at"], strict=True):
        g = by_person[pid]
        earlier = g[g["at"] < at].reason.iloc[::-1]
        ranked = list(dict.fromkeys([*earlier, *frequent]))[:3]
        out.append(ranked)
    return out
