"""Personal data inside free text, masked before it is stored: e-mails, card numbers (Luhn), phone
numbers (libphonenumber, in the workspace's region), document numbers (IBAN, Russian INN and SNILS, US
SSN, with their check digits; passports after the word that announces them) and person names.

Names are found per script: in Cyrillic text by natasha's NER model for Russian (slovnet's news NER,
shipped in cx360/privacy/data with the navec vectors of cx360.text, and natasha's list of first names
for a lone word that opens a sentence), in Latin text by rules (a name
after "my name is", "Mr", "Dear", "regards,"...): English has no model here, so a bare name in English
text is not found. Each find is replaced by its kind in brackets: `[phone]`, `[name]`, ...
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

import phonenumbers
from stdnum import iban, luhn
from stdnum.ru import inn
from stdnum.us import ssn

KINDS = ("email", "card", "document", "phone", "name")  # also the order in which overlapping finds win
NER_MODEL = "slovnet_ner_news_v1.tar"
FIRST_NAMES = "first_names_ru.txt"  # natasha's list of Russian first names

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_DIGITS = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")  # 13 to 19 digits: a card, maybe
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_SNILS = re.compile(r"(?<!\d)\d{3}-\d{3}-\d{3}[ -]\d{2}(?!\d)")
_SSN = re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)")
_INN = re.compile(r"(?i)\b(?:ИНН|INN)\W{0,3}(\d{10}|\d{12})(?!\d)")
_PASSPORT = re.compile(
    r"(?i)(?:паспорт\w*|passport)(?:\s+(?:серии|серия|номер|number|no\.?|№|#))*[\s:№#.]*"
    r"(\d{2} ?\d{2} ?(?:№ ?)?\d{6}|[A-Z]{1,2}\d{6,8}|\d{9})(?![\dA-Z])"
)
_LATIN_NAME = r"([A-Z][a-z]+(?:[ -][A-Z][a-z]+){0,2})"
_EN_CUES = re.compile(
    r"(?:\b(?:[Mm]y name is|[Nn]ame:|[Tt]his is|I am|I'm|[Dd]ear|[Rr]egards,|[Tt]hanks,|[Ss]incerely,)"
    r"|\b(?:Mr|Mrs|Ms|Miss|Dr)\.?)\s+" + _LATIN_NAME
)
_NOT_NAMES = {"I", "The", "A", "An", "In", "It", "We", "My", "So", "Not", "Very", "Just", "Sorry", "Happy", "Glad"}
_CYRILLIC = re.compile(r"[А-Яа-яЁё]")


@dataclass(frozen=True)
class Span:
    start: int
    stop: int
    kind: str


def find(text: str, *, region: str | None = "RU") -> list[Span]:
    """Every piece of personal data in `text`, without overlaps, in order."""
    return find_many([text], region=region)[0]


def mask(text: str, *, region: str | None = "RU") -> str:
    return mask_many([text], region=region)[0]


def mask_many(texts: Iterable[str | None], *, region: str | None = "RU") -> list[str | None]:
    """Each text with its finds replaced by `[kind]`; None stays None. Repeated texts are read once."""
    texts = list(texts)
    distinct = sorted({t for t in texts if t})
    masked = {t: _replace(t, spans) for t, spans in zip(distinct, find_many(distinct, region=region), strict=True)}
    return [masked.get(t, t) if t else t for t in texts]


def find_many(texts: list[str], *, region: str | None = "RU") -> list[list[Span]]:
    names = _russian_names(texts)
    return [_resolve(_rules(t, region) + n) for t, n in zip(texts, names, strict=True)]


def _replace(text: str, spans: list[Span]) -> str:
    for s in reversed(spans):
        text = text[: s.start] + f"[{s.kind}]" + text[s.stop :]
    return text


def _resolve(spans: list[Span]) -> list[Span]:
    """Overlapping finds: the kind earlier in KINDS wins, then the longer."""
    chosen: list[Span] = []
    for s in sorted(spans, key=lambda s: (KINDS.index(s.kind), s.start - s.stop)):
        if all(s.stop <= c.start or s.start >= c.stop for c in chosen):
            chosen.append(s)
    return sorted(chosen, key=lambda s: s.start)


def _rules(text: str, region: str | None) -> list[Span]:
    spans = [Span(m.start(), m.end(), "email") for m in _EMAIL.finditer(text)]
    for m in _DIGITS.finditer(text):
        if luhn.is_valid(re.sub(r"\D", "", m.group())):
            spans.append(Span(m.start(), m.end(), "card"))
    checked = (
        (_IBAN, iban.is_valid),
        (_SNILS, _snils_valid),
        (_SSN, ssn.is_valid),
    )
    for pattern, valid in checked:
        spans += [Span(m.start(), m.end(), "document") for m in pattern.finditer(text) if valid(m.group())]
    spans += [Span(m.start(1), m.end(1), "document") for m in _INN.finditer(text) if inn.is_valid(m.group(1))]
    spans += [Span(m.start(1), m.end(1), "document") for m in _PASSPORT.finditer(text)]
    for m in phonenumbers.PhoneNumberMatcher(text, region or "RU", leniency=phonenumbers.Leniency.VALID):
        spans.append(Span(m.start, m.end, "phone"))
    for m in _EN_CUES.finditer(text):
        words = m.group(1).split()
        while words and words[0] in _NOT_NAMES:
            words.pop(0)
        if words:
            start = m.start(1) + m.group(1).index(words[0])
            spans.append(Span(start, m.end(1), "name"))
    return spans


def _snils_valid(value: str) -> bool:
    """SNILS (Russian pension number): 9 digits and a check number (their weighted sum, mod 101)."""
    digits = re.sub(r"\D", "", value)
    total = sum(int(d) * (9 - i) for i, d in enumerate(digits[:9]))
    check = total if total < 100 else 0 if total in (100, 101) else total % 101 % 100
    return int(digits[9:]) == check


# -- Russian names: natasha's NER ------------------------------------------------------------------
_ner = None
_ner_lock = threading.Lock()


def _model():
    """slovnet's NER, loaded once per process (a few seconds) from the files cx360 ships."""
    global _ner
    with _ner_lock:
        if _ner is None:
            from slovnet import NER

            from cx360.text.features import navec

            with resources.as_file(resources.files("cx360.privacy") / "data" / NER_MODEL) as path:
                model = NER.load(str(path))
            model.navec(navec())
            _ner = model
    return _ner


def _russian_names(texts: list[str]) -> list[list[Span]]:
    out: list[list[Span]] = [[] for _ in texts]
    todo = [i for i, t in enumerate(texts) if _CYRILLIC.search(t)]
    if not todo:
        return out
    first = _first_names()
    for i, markup in zip(todo, _model().map([texts[i] for i in todo]), strict=True):
        text = texts[i]
        out[i] = [
            Span(s.start, s.stop, "name")
            for s in markup.spans
            if s.type == "PER" and not _capitalised_word(text, s.start, s.stop, first)
        ]
    return out


def _capitalised_word(text: str, start: int, stop: int, first: frozenset[str]) -> bool:
    """A lone word the model took for a name only because it opens a sentence ("Курьер нагрубил"):
    kept only if it is a first name (natasha's list)."""
    word = text[start:stop]
    opens = not text[:start].strip() or text[:start].rstrip()[-1] in ".!?…\n"
    return opens and " " not in word and word.lower() not in first


_first: frozenset[str] | None = None


def _first_names() -> frozenset[str]:
    global _first
    if _first is None:
        path = resources.files("cx360.privacy") / "data" / FIRST_NAMES
        _first = frozenset(path.read_text(encoding="utf-8").split())
    return _first
