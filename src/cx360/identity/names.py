"""Names as a matcher should see them: one Latin spelling whatever the alphabet or the
transliteration scheme, and the full first name instead of a diminutive or nickname."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_CYRILLIC = {
    "а": "a",
    "б": "b",
    "в": "v",
    "г": "g",
    "д": "d",
    "е": "e",
    "ё": "e",
    "ж": "zh",
    "з": "z",
    "и": "i",
    "й": "i",
    "к": "k",
    "л": "l",
    "м": "m",
    "н": "n",
    "о": "o",
    "п": "p",
    "р": "r",
    "с": "s",
    "т": "t",
    "у": "u",
    "ф": "f",
    "х": "kh",
    "ц": "ts",
    "ч": "ch",
    "ш": "sh",
    "щ": "shch",
    "ъ": "",
    "ы": "y",
    "ь": "",
    "э": "e",
    "ю": "iu",
    "я": "ia",
}
# Spellings that transliteration schemes disagree on, folded to one (order matters: longest first).
_FOLD = [
    ("shch", "sch"),
    ("yo", "e"),
    ("yu", "iu"),
    ("ju", "iu"),
    ("ya", "ia"),
    ("ja", "ia"),
    ("ye", "e"),
    ("iy", "i"),
    ("ii", "i"),
    ("yi", "i"),
    ("kh", "h"),
    ("ks", "x"),
    ("tz", "ts"),
    ("w", "v"),
    ("ph", "f"),
    ("j", "i"),
    ("y", "i"),
]
_DOUBLE = re.compile(r"([a-z])\1+")

DIMINUTIVES = {
    # Russian, after transliteration and folding
    "sasha": "aleksandr",
    "shura": "aleksandr",
    "alex": "aleksandr",
    "alexander": "aleksandr",
    "alexandr": "aleksandr",
    "dima": "dmitrii",
    "dmitri": "dmitrii",
    "misha": "mihail",
    "michael": "mihail",
    "lesha": "aleksei",
    "alesha": "aleksei",
    "sereza": "sergei",
    "serezha": "sergei",
    "seriozha": "sergei",
    "vania": "ivan",
    "kolia": "nikolai",
    "pasha": "pavel",
    "vova": "vladimir",
    "volodia": "vladimir",
    "zhenia": "evgenii",
    "evgeni": "evgenii",
    "tolia": "anatolii",
    "kostia": "konstantin",
    "andriusha": "andrei",
    "iura": "iurii",
    "iuri": "iurii",
    "vitia": "viktor",
    "masha": "maria",
    "maria": "maria",
    "mariia": "maria",
    "lena": "elena",
    "olia": "olga",
    "natasha": "natalia",
    "natalia": "natalia",
    "katia": "ekaterina",
    "tania": "tatiana",
    "iulia": "iulia",
    "julia": "iulia",
    "nastia": "anastasia",
    "dasha": "daria",
    "ksiusha": "ksenia",
    "sveta": "svetlana",
    "ira": "irina",
    "liuda": "liudmila",
    "sonia": "sofia",
    "polia": "polina",
    "vika": "viktoria",
    "galia": "galina",
    # English
    "bob": "robert",
    "rob": "robert",
    "bobby": "robert",
    "bill": "william",
    "will": "william",
    "liam": "william",
    "jim": "james",
    "jimmy": "james",
    "mike": "mihail",
    "mick": "mihail",
    "tom": "thomas",
    "tommy": "thomas",
    "liz": "elizabeth",
    "beth": "elizabeth",
    "betty": "elizabeth",
    "lizzie": "elizabeth",
    "kate": "katherine",
    "katie": "katherine",
    "kathy": "katherine",
    "catherine": "katherine",
    "maggie": "margaret",
    "peggy": "margaret",
    "jen": "jennifer",
    "jenny": "jennifer",
    "dave": "david",
    "dan": "daniel",
    "danny": "daniel",
    "chris": "christopher",
    "matt": "matthew",
    "nick": "nicholas",
    "steve": "stephen",
    "steven": "stephen",
    "tony": "anthony",
    "joe": "joseph",
    "ben": "benjamin",
    "sam": "samuel",
    "andy": "andrew",
    "ted": "edward",
    "ed": "edward",
    "sue": "susan",
    "annie": "anna",
    "ann": "anna",
    "anne": "anna",
    "jack": "john",
    "johnny": "john",
}


@lru_cache(maxsize=200_000)
def latin(text: str | None) -> str | None:
    """Lower-case Latin letters only: transliterated, diacritics removed, scheme variants folded."""
    if text is None:
        return None
    low = "".join(_CYRILLIC.get(ch, ch) for ch in text.strip().lower())
    low = unicodedata.normalize("NFKD", low).encode("ascii", "ignore").decode()
    low = re.sub(r"[^a-z]", "", low)
    for a, b in _FOLD:
        low = low.replace(a, b)
    return _DOUBLE.sub(r"\1", low) or None


def transliterations(text: str | None) -> list[str]:
    """Latin spellings of a name written in Cyrillic, for search: letter by letter (Петров -> petrov,
    Юлия -> the table's spelling) and the folded `latin` form when it differs. Empty for any other text,
    which is searched as written."""
    if text is None or not any(ch in _CYRILLIC for ch in text.lower()):
        return []
    plain = "".join(_CYRILLIC.get(ch, ch) for ch in text.strip().lower())
    return list(dict.fromkeys(t for t in (plain, latin(text)) if t))


@lru_cache(maxsize=50_000)
def canonical_first_name(text: str | None) -> str | None:
    """The full first name a diminutive or nickname stands for, in `latin` form."""
    name = latin(text)
    return None if name is None else _canonical_by_fold().get(name, name)


@lru_cache(maxsize=1)
def _canonical_by_fold() -> dict[str, str]:
    """The diminutive table with its keys folded the same way as the input."""
    return {latin(k): latin(v) for k, v in DIMINUTIVES.items()}
