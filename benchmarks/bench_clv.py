"""Customer lifetime value on CDNOW (the sample shipped in the lifetimes package): cx360's BG/NBD and
Gamma-Gamma fits next to the published parameters, and the holdout forecast next to a naive baseline.

    python benchmarks/bench_clv.py [--repeat 5] [--scale 200000]

Calibration: weeks 1-39 (to 1997-09-30); holdout: weeks 40-78 (to 1998-06-30). Needs 'cx360[bench]'.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

from cx360.models import cdnow
from cx360.models.clv import BetaGeoFitter, GammaGammaFitter, holdout_metrics, naive_holdout
from cx360.models.rfm import rfm_summary


def timed(fn, repeat: int) -> tuple[object, float]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return result, statistics.median(times)


def simulate(n: int, r: float, alpha: float, a: float, b: float, T: float, seed: int = 0) -> pd.DataFrame:
    """BG/NBD customers, vectorised: N ~ Poisson(λT) arrivals in (0, T], dropout after purchase K ~ Geometric(p);
    x = min(N, K) and the x-th of N uniform arrival times is T · Beta(x, N − x + 1)."""
    rng = np.random.default_rng(seed)
    lam, p = rng.gamma(r, 1 / alpha, n), rng.beta(a, b, n)
    arrivals, k = rng.poisson(lam * T), rng.geometric(p)
    x = np.minimum(arrivals, k)
    recency = np.where(x > 0, T * rng.beta(np.maximum(x, 1), np.maximum(arrivals - x, 0) + 1), 0.0)
    return pd.DataFrame({"frequency": x, "recency": recency, "T": T})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timing runs (median reported)")
    parser.add_argument("--scale", type=int, default=200_000, help="simulated customers for the fit-time check")
    args = parser.parse_args()

    tx = cdnow.load_cdnow_sample()
    s, t_summary = timed(
        lambda: rfm_summary(tx, "customer", "date", "amount", cdnow.CALIBRATION_END, cdnow.HOLDOUT_END), args.repeat
    )
    x, tx_, T = s["frequency"], s["recency"], s["T"]
    bgf, t_bg = timed(lambda: BetaGeoFitter().fit(x, tx_, T), args.repeat)
    ggf, t_gg = timed(lambda: GammaGammaFitter().fit(x, s["monetary_value"]), args.repeat)

    print(
        f"CDNOW sample: {len(tx):,} transactions, {len(s):,} customers, {int((x > 0).sum())} repeat customers "
        f"in calibration; {int(s['frequency_holdout'].sum()):,} repeat purchase days in the holdout\n"
    )
    print(f"{'model':<12} {'param':<7} {'published':>10} {'cx360':>12} {'rel. error':>11}")
    rows = [("BG/NBD", k, v, bgf.params_[k]) for k, v in cdnow.PUBLISHED_BGNBD.items()]
    rows += [("Gamma-Gamma", k, v, ggf.params_[k]) for k, v in cdnow.PUBLISHED_GAMMA_GAMMA.items()]
    for model, name, published, ours in rows:
        print(f"{model:<12} {name:<7} {published:>10.3f} {ours:>12.4f} {abs(ours - published) / published:>10.2%}")
    print(
        f"{'BG/NBD':<12} {'LL':<7} {cdnow.PUBLISHED_BGNBD_LL:>10.1f} {bgf.log_likelihood_:>12.3f} "
        f"{abs(bgf.log_likelihood_ - cdnow.PUBLISHED_BGNBD_LL) / abs(cdnow.PUBLISHED_BGNBD_LL):>10.4%}"
    )
    print(f"{'Gamma-Gamma':<12} {'LL':<7} {'':>10} {ggf.log_likelihood_:>12.3f}")

    d = s["duration_holdout"]
    forecasts = {
        "BG/NBD conditional expectation": bgf.conditional_expected_purchases(d, x, tx_, T),
        "naive: calibration rate x/T": naive_holdout(x, T, d),
    }
    print(f"\nHoldout weeks 40-78, repeat purchases per customer (n={len(s):,})")
    print(f"{'forecast':<32} {'MAE':>7} {'RMSE':>7} {'predicted':>10} {'actual':>8} {'corr':>6}")
    for name, pred in forecasts.items():
        m = holdout_metrics(s["frequency_holdout"], pred)
        print(
            f"{name:<32} {m['mae']:>7.3f} {m['rmse']:>7.3f} {m['total_predicted']:>10.0f} "
            f"{m['total_actual']:>8.0f} {m['correlation']:>6.3f}"
        )

    print(
        f"\nTimes, median of {args.repeat}: summary {t_summary * 1000:.0f} ms, BG/NBD fit {t_bg * 1000:.0f} ms, "
        f"Gamma-Gamma fit {t_gg * 1000:.0f} ms"
    )

    truth = {"r": 0.5, "alpha": 6.0, "a": 0.8, "b": 2.5}
    sim = simulate(args.scale, *truth.values(), T=52.0)
    fit, t_sim = timed(lambda: BetaGeoFitter().fit(sim["frequency"], sim["recency"], sim["T"]), args.repeat)
    recovered = " ".join(f"{k}={fit.params_[k]:.3f} (true {v})" for k, v in truth.items())
    print(
        f"BG/NBD on {args.scale:,} simulated customers (continuous recency: every history distinct): "
        f"fit {t_sim:.2f} s, median of {args.repeat}; {recovered}"
    )


if __name__ == "__main__":
    main()
