"""Questions, requests, polite refusals and bare acknowledgements: neutral unless the tone is clear.

Review-trained models read "можно перенести доставку?" or "请帮我查一下订单" by their words alone, and
call many of them negative: in reviews, a text is rarely written without a tone. :func:`inquiries` marks
texts that open with a request formula. :func:`neutralise` turns a polar label into *neutral* for a
request that holds no tone word of the lexicon outside its formula (:func:`toneless`), or whose polar
label the model is not sure of (calibrated confidence below ``keep_above``); so "请问为什么这么慢，太差了"
and "why is the app broken again?!" keep their tone. A polite refusal ("просто спрашиваю") and a bare
acknowledgement ("ок", "fine", "好的": :func:`acknowledgements`) are neutral outright. The threshold is
chosen on training folds; the effect of the rules is measured on held-out rated texts and on a set of
service requests (``benchmarks/bench_sentiment.py``).
"""

from __future__ import annotations

import re

import numpy as np

from cx360.text import lexicons

# Request formulas, not a bare "?": rated tweets and reviews are full of rhetorical questions
# ("why is this so bad?"), and the training folds show that a bare "?" says nothing about tone.
_RU = (
    r"^(?:подскажите|скажите|уточните|объясните|поясните|прошу|пожалуйста|будьте добры)",
    r"^(?:можно ли|могу ли|можно|есть ли|нужно ли|сколько стоит|где можно)\b",
    r"^как (?:мне|можно) (?:\w+ )?(?:оформить|поменять|изменить|узнать|перенести|подключить|отключить)",
    r"\b(?:хочу узнать|хотел[аи]? бы (?:узнать|уточнить)|не подскажете)\b",
)
_EN = (
    r"^(?:can|could|may) (?:i|we|you)\b",
    r"^(?:is it possible|is there a way|how (?:do|can) i|where can i|when will)\b",
    r"^(?:please|kindly)\b",
    r"\b(?:i(?:'d| would) like to (?:know|ask|change|cancel|order)|i want to know|wondering (?:if|whether))\b",
)
# Chinese opens a request after an optional greeting; "能不能" in the middle of a review is no request.
_ZH = (
    r"^(?:(?:你好|您好)[，,！!\s]*)?(?:请问|请帮|请给|麻烦(?:您|你)|能不能|能否|可不可以|可以帮|是否可以|"
    r"(?:我)?想(?:问|了解|咨询|查询|办理|申请)|咨询一下|帮我)",
)
# A polite refusal says outright that no complaint is meant: neutral whatever the model reads.
_REFUSALS = {
    "ru": (r"\bпросто (?:спрашиваю|интересуюсь|уточняю)\b", r"\b(?:нет|не нужно|не надо),? спасибо\b"),
    "en": (r"\b(?:just asking|just wondering|no,? thanks?(?: you)?)\b",),
    "zh": (r"只是问问|随便问问|不用了|不需要了",),
}
REFUSALS = {lang: re.compile("|".join(f"(?:{p})" for p in ps), re.IGNORECASE) for lang, ps in _REFUSALS.items()}
# The whole text is a receipt, not a judgement ("ок", "fine", "好的"); "спасибо" thanks and stays polar.
_ACKNOWLEDGEMENTS = {
    "ru": "ок|окей|ok|хорошо|ладно|понял|поняла|понятно|ясно|принято|угу|ага|норм|договорились",
    "en": "ok|okay|k|kk|fine|got it|sure|alright|noted|understood",
    "zh": "好|好的|行|嗯|嗯嗯|收到|知道了|明白|明白了|可以|好吧",
}
PATTERNS = {
    lang: re.compile("|".join(f"(?:{p})" for p in ps), re.IGNORECASE)
    for lang, ps in (("ru", _RU), ("en", _EN), ("zh", _ZH))
}


def _matches(table: dict[str, re.Pattern[str]], texts: list[str], language: str) -> np.ndarray:
    rx = table.get(language)
    if rx is None:
        return np.zeros(len(texts), dtype=bool)
    return np.array([bool(rx.search(_clean(t))) for t in texts], dtype=bool)


def _clean(text: str | None) -> str:
    return (text or "").strip().lower().replace("ё", "е")


def acknowledgements(texts: list[str], language: str) -> np.ndarray:
    """Whether each text is only an acknowledgement ("ок", "got it", "好的"), end punctuation aside."""
    words = frozenset(_ACKNOWLEDGEMENTS.get(language, "").split("|"))
    return np.array([_clean(t).rstrip(" .!。！…") in words for t in texts], dtype=bool)


def toneless(texts: list[str], language: str) -> np.ndarray:
    """Whether each text holds no tone word of the lexicon once its request formula is taken out
    ("麻烦您" is polite, not "trouble"); English asks VADER, whose compound score is then 0."""
    rx = PATTERNS.get(language)
    rest = [rx.sub(" ", _clean(t)) if rx else _clean(t) for t in texts]
    if language == "en":
        vader = lexicons.vader()
        return np.array([vader.polarity_scores(t)["compound"] == 0.0 for t in rest], dtype=bool)
    count = {"ru": lexicons.ru_counts, "zh": lexicons.zh_counts}.get(language)
    if count is None:
        return np.zeros(len(texts), dtype=bool)
    return np.array([sum(count(t)) == 0 for t in rest], dtype=bool)


def inquiries(texts: list[str], language: str) -> np.ndarray:
    """Whether each text asks, requests or politely declines (a boolean per text)."""
    return _matches(PATTERNS, texts, language) | refusals(texts, language)


def refusals(texts: list[str], language: str) -> np.ndarray:
    """Whether each text politely declines or says it only asks ("просто спрашиваю", "no thanks")."""
    return _matches(REFUSALS, texts, language)


def neutralise(
    texts: list[str], language: str, labels: np.ndarray, confidence: np.ndarray, *, keep_above: float
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and confidences with the polar labels of toneless or unsure inquiries, polite refusals and
    bare acknowledgements turned neutral; the neutral confidence is what the model did not put on its
    polar answer, so "ок" that the model called positive at 0.98 is neutral at 0.02: the rule and the
    model disagree, and the confidence says so."""
    labels, confidence = labels.copy(), confidence.copy()
    asks = inquiries(texts, language)
    polar = labels != "neutral"
    ask_turn = asks & polar
    if ask_turn.any():
        idx = np.flatnonzero(ask_turn)
        calm = toneless([texts[i] for i in idx], language) | (confidence[idx] < keep_above)
        ask_turn[idx] = calm
    turn = (ask_turn | refusals(texts, language) | acknowledgements(texts, language)) & polar
    labels[turn] = "neutral"
    confidence[turn] = 1.0 - confidence[turn]
    return labels, confidence
