"""Questions, requests and polite refusals: what a customer asks is neutral unless the tone is clear.

Review-trained models read "можно перенести доставку?" or "请帮我查一下订单" by their words alone, and
call many of them negative. :func:`inquiries` marks such texts by their request formulas, and a polite
refusal is neutral outright; :func:`neutralise` turns a polar label
into *neutral* for them unless the model is sure (calibrated confidence at least ``keep_above``), so
"why is the app broken again?!" keeps its tone. The threshold is chosen on training folds and its
effect measured on held-out rated texts (``benchmarks/bench_sentiment.py``).
"""

from __future__ import annotations

import re

import numpy as np

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
_ZH = (r"请问|请帮|麻烦(?:您|你)|能不能|能否|可不可以|是否可以|想问|想了解|想咨询|咨询一下",)
# A polite refusal says outright that no complaint is meant: neutral whatever the model reads.
_REFUSALS = {
    "ru": (r"\bпросто (?:спрашиваю|интересуюсь|уточняю)\b", r"\b(?:нет|не нужно|не надо),? спасибо\b"),
    "en": (r"\b(?:just asking|just wondering|no,? thanks?(?: you)?)\b",),
    "zh": (r"只是问问|随便问问|不用了|不需要了",),
}
REFUSALS = {lang: re.compile("|".join(f"(?:{p})" for p in ps), re.IGNORECASE) for lang, ps in _REFUSALS.items()}
PATTERNS = {
    lang: re.compile("|".join(f"(?:{p})" for p in ps), re.IGNORECASE)
    for lang, ps in (("ru", _RU), ("en", _EN), ("zh", _ZH))
}


def _matches(table: dict[str, re.Pattern[str]], texts: list[str], language: str) -> np.ndarray:
    rx = table.get(language)
    if rx is None:
        return np.zeros(len(texts), dtype=bool)
    return np.array([bool(rx.search((t or "").strip().lower().replace("ё", "е"))) for t in texts], dtype=bool)


def inquiries(texts: list[str], language: str) -> np.ndarray:
    """Whether each text asks, requests or politely declines (a boolean per text)."""
    return _matches(PATTERNS, texts, language) | refusals(texts, language)


def refusals(texts: list[str], language: str) -> np.ndarray:
    """Whether each text politely declines or says it only asks ("просто спрашиваю", "no thanks")."""
    return _matches(REFUSALS, texts, language)


def neutralise(
    texts: list[str], language: str, labels: np.ndarray, confidence: np.ndarray, *, keep_above: float
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and confidences with unsure polar labels of inquiries, and every polar label of a polite
    refusal, turned neutral; the neutral confidence is what the model did not put on its polar answer."""
    labels, confidence = labels.copy(), confidence.copy()
    unsure = inquiries(texts, language) & (confidence < keep_above)
    turn = (unsure | refusals(texts, language)) & (labels != "neutral")
    labels[turn] = "neutral"
    confidence[turn] = 1.0 - confidence[turn]
    return labels, confidence
