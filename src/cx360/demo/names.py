"""Name lists and spelling variation for the synthetic bank: Russian names in Cyrillic with their
Latin transliterations (several schemes, as real systems use), a minority of English names, and
the diminutives people give instead of their full name."""

from __future__ import annotations

import numpy as np

MALE = (
    "Александр",
    "Дмитрий",
    "Максим",
    "Сергей",
    "Андрей",
    "Алексей",
    "Артём",
    "Илья",
    "Кирилл",
    "Михаил",
    "Никита",
    "Роман",
    "Егор",
    "Иван",
    "Владимир",
    "Евгений",
    "Николай",
    "Павел",
    "Олег",
    "Юрий",
)
FEMALE = (
    "Анна",
    "Мария",
    "Елена",
    "Ольга",
    "Наталья",
    "Екатерина",
    "Татьяна",
    "Юлия",
    "Ирина",
    "Светлана",
    "Анастасия",
    "Дарья",
    "Ксения",
    "Виктория",
    "Полина",
    "Людмила",
    "Софья",
    "Алёна",
)
SURNAMES = (
    "Иванов",
    "Смирнов",
    "Кузнецов",
    "Попов",
    "Васильев",
    "Петров",
    "Соколов",
    "Михайлов",
    "Новиков",
    "Фёдоров",
    "Морозов",
    "Волков",
    "Алексеев",
    "Лебедев",
    "Семёнов",
    "Егоров",
    "Павлов",
    "Козлов",
    "Степанов",
    "Николаев",
    "Орлов",
    "Андреев",
    "Макаров",
    "Никитин",
    "Захаров",
    "Зайцев",
    "Соловьёв",
)
PATRONYMIC_ROOTS = (
    "Александров",
    "Дмитриев",
    "Сергеев",
    "Андреев",
    "Алексеев",
    "Михайлов",
    "Иванов",
    "Владимиров",
    "Николаев",
    "Павлов",
    "Олегов",
    "Юрьев",
    "Евгеньев",
    "Викторов",
)
DIMINUTIVES = {
    "Александр": "Саша",
    "Дмитрий": "Дима",
    "Сергей": "Серёжа",
    "Алексей": "Лёша",
    "Михаил": "Миша",
    "Иван": "Ваня",
    "Владимир": "Вова",
    "Евгений": "Женя",
    "Николай": "Коля",
    "Павел": "Паша",
    "Мария": "Маша",
    "Елена": "Лена",
    "Ольга": "Оля",
    "Наталья": "Наташа",
    "Екатерина": "Катя",
    "Татьяна": "Таня",
    "Юлия": "Юля",
    "Анастасия": "Настя",
    "Дарья": "Даша",
    "Ксения": "Ксюша",
}
EN_MALE = ("John", "Robert", "William", "James", "Michael", "David", "Thomas")
EN_FEMALE = ("Elizabeth", "Katherine", "Emily", "Sarah", "Jennifer", "Margaret")
EN_SURNAMES = ("Smith", "Johnson", "Brown", "Taylor", "Wilson", "Davies", "Evans", "Walker")
EN_NICKNAMES = {
    "Robert": "Bob",
    "William": "Bill",
    "James": "Jim",
    "Michael": "Mike",
    "Elizabeth": "Liz",
    "Katherine": "Kate",
    "Thomas": "Tom",
    "Margaret": "Maggie",
    "Jennifer": "Jen",
}

_BASE = {
    "а": "a",
    "б": "b",
    "в": "v",
    "г": "g",
    "д": "d",
    "е": "e",
    "ж": "zh",
    "з": "z",
    "и": "i",
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
    "ш": "sh",
    "ы": "y",
    "ъ": "",
    "ь": "",
    "э": "e",
}
# Letters that systems write differently: (passport/ICAO 2013, older GOST-like, English-style)
_VARIANTS = {
    "ё": ("e", "yo", "e"),
    "й": ("i", "y", "y"),
    "х": ("kh", "kh", "h"),
    "ц": ("ts", "ts", "tz"),
    "ч": ("ch", "ch", "ch"),
    "щ": ("shch", "sch", "shch"),
    "ю": ("iu", "yu", "ju"),
    "я": ("ia", "ya", "ja"),
}
SCHEMES = 3


def translit(text: str, scheme: int = 1) -> str:
    out = []
    for ch in text:
        low = ch.lower()
        latin = _VARIANTS[low][scheme] if low in _VARIANTS else _BASE.get(low, ch)
        out.append(latin.capitalize() if ch != low and latin else latin)
    return "".join(out)


def feminine(surname: str) -> str:
    return surname + "а"


def patronymic(root: str, female: bool) -> str:
    return root + ("на" if female else "ич")


def typo(word: str, rng: np.random.Generator) -> str:
    """One keyboard-style error: a dropped, doubled or swapped letter."""
    if len(word) < 4:
        return word
    i = int(rng.integers(1, len(word) - 1))
    kind = int(rng.integers(0, 3))
    if kind == 0:
        return word[:i] + word[i + 1 :]
    if kind == 1:
        return word[:i] + word[i] + word[i:]
    return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]
