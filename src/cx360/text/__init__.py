"""What customers write: language, sentiment, complaints and topics, brand tone, purchase intent.

Entry points: :func:`analyze_texts` / :func:`analyze_file` (one row per text), :func:`brand_tone`
(mentions per period), :func:`customer_aggregates` (one row per profile), :func:`get_backend`.
"""

from __future__ import annotations

from cx360.text.aggregates import customer_aggregates
from cx360.text.analyze import analyze_file, analyze_texts
from cx360.text.backends import get_backend
from cx360.text.intent import purchase_intent
from cx360.text.language import detect_language, detect_languages
from cx360.text.monitor import brand_tone
from cx360.text.topics import DEFAULT_TOPICS, topic_lexicon

__all__ = [
    "DEFAULT_TOPICS",
    "analyze_file",
    "analyze_texts",
    "brand_tone",
    "customer_aggregates",
    "detect_language",
    "detect_languages",
    "get_backend",
    "purchase_intent",
    "topic_lexicon",
]
