"""Sentiment backends by name: the shipped classifiers, word lists, or a local
sentence-transformer."""

from __future__ import annotations

from cx360.errors import ConfigError
from cx360.text.sentiment import LexiconSentiment, SentimentBackend, TrainedSentiment

BACKENDS = ("trained", "lexicon", "transformer")


def get_backend(name: str = "trained", **options) -> SentimentBackend:
    """A backend by name; options go to its constructor (e.g. ``model_dir`` for 'transformer')."""
    if name == "trained":
        return TrainedSentiment(**options)
    if name == "lexicon":
        return LexiconSentiment(**options)
    if name == "transformer":
        from cx360.text.transformer import TransformerSentiment

        return TransformerSentiment(**options)
    raise ConfigError(f"unknown sentiment backend {name!r}; expected one of {', '.join(BACKENDS)}")
