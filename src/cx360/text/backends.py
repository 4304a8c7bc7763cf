"""Sentiment backends by name: the shipped classifiers, word lists, multilingual-e5-small with a
shipped head, or a local sentence-transformer."""

from __future__ import annotations

from cx360.errors import ConfigError
from cx360.text.sentiment import LexiconSentiment, SentimentBackend, TrainedSentiment

BACKENDS = ("trained", "lexicon", "e5", "transformer")


def get_backend(name: str = "trained", **options) -> SentimentBackend:
    """A backend by name; options go to its constructor (e.g. ``model_dir`` for 'transformer')."""
    if name == "trained":
        return TrainedSentiment(**options)
    if name == "lexicon":
        return LexiconSentiment(**options)
    if name == "e5":
        from cx360.text.e5 import E5Sentiment

        return E5Sentiment(**options)
    if name == "transformer":
        from cx360.text.transformer import TransformerSentiment

        return TransformerSentiment(**options)
    raise ConfigError(f"unknown sentiment backend {name!r}; expected one of {', '.join(BACKENDS)}")
