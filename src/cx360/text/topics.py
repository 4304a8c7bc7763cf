"""Complaint topics, from keyword lists in Russian, English and Chinese, and complaint detection.

Latin and Cyrillic keywords match at the start of a word, so a stem covers its inflections
(``комисс`` -> ``комиссия``, ``комиссию``); a keyword written ``=word`` matches only the whole word
(``=app`` does not match "apply"); Chinese keywords match anywhere. A user extends the lists
with :func:`topic_lexicon` (``{"insurance": ["страховк", "insurance", "保险"]}``): a new topic is added,
an existing one gets the extra keywords.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

DEFAULT_TOPICS: dict[str, tuple[str, ...]] = {
    "fees": (
        "комисс",
        "плат за обслуж",
        "списали за",
        "скрыт",
        "абонентск",
        "годовое обслуж",
        "штраф",
        "=fee",
        "=fees",
        "charge",
        "commission",
        "overcharg",
        "hidden cost",
        "手续费",
        "年费",
        "扣费",
        "收费",
    ),
    "card_blocked": (
        "заблокир",
        "блокир",
        "разблокир",
        "блокиров",
        "карта не работает",
        "карта не проход",
        "blocked",
        "frozen",
        "card declined",
        "declined",
        "冻结",
        "锁卡",
        "被锁",
        "封卡",
    ),
    "app": (
        "приложен",
        "приложух",
        "мобильн банк",
        "интернет-банк",
        "онлайн-банк",
        "личн кабинет",
        "сайт",
        "обновлен",
        "вылета",
        "смс с код",
        "код подтвержд",
        "=app",
        "=apps",
        "website",
        "login",
        "log in",
        "crash",
        "update",
        "手机银行",
        "网银",
        "闪退",
        "登录",
        "验证码",
    ),
    "staff": (
        "хам",
        "нахам",
        "груб",
        "нагруб",
        "сотрудни",
        "операционист",
        "менеджер",
        "консультант",
        "кассир",
        "персонал",
        "продав",
        "оператор",
        "rude",
        "staff",
        "employee",
        "manager",
        "cashier",
        "clerk",
        "态度",
        "服务员",
        "工作人员",
        "柜员",
        "客服",
    ),
    "queues": (
        "очеред",
        "ждал",
        "ждать",
        "ожидан",
        "на линии",
        "дозвон",
        "queue",
        "waited",
        "waiting",
        "on hold",
        "排队",
        "等了",
        "等待",
    ),
    "delivery": (
        "доставк",
        "курьер",
        "посылк",
        "заказ",
        "пункт выдач",
        "привезл",
        "delivery",
        "courier",
        "parcel",
        "package",
        "shipping",
        "shipment",
        "快递",
        "物流",
        "送货",
        "发货",
        "配送",
    ),
    "rates": (
        "ставк",
        "процент",
        "курс",
        "переплат",
        "=rate",
        "=rates",
        "interest rate",
        "=interest",
        "=apr",
        "exchange rate",
        "利率",
        "利息",
        "汇率",
    ),
    "atm": ("банкомат", "терминал", "atm", "cash machine", "取款机", "atm机"),
    "fraud": (
        "мошен",
        "украл",
        "взлом",
        "утечк",
        "без моего ведома",
        "подозрительн",
        "fraud",
        "scam",
        "stolen",
        "hacked",
        "unauthori",
        "phishing",
        "诈骗",
        "盗刷",
        "被盗",
        "骗子",
    ),
    "refund": (
        "возврат",
        "вернуть деньги",
        "верните",
        "не вернули",
        "refund",
        "money back",
        "chargeback",
        "退款",
        "退钱",
        "退货",
    ),
    "loans": (
        "кредит",
        "ипотек",
        "рассрочк",
        "займ",
        "рефинанс",
        "loan",
        "mortgage",
        "credit limit",
        "贷款",
        "房贷",
        "分期",
    ),
    "quality": (
        "брак",
        "сломал",
        "поломк",
        "качеств",
        "испорч",
        "просроч",
        "разбит",
        "не соответств",
        "broken",
        "defective",
        "damaged",
        "quality",
        "faulty",
        "质量",
        "坏了",
        "破损",
        "假货",
    ),
    "support": (
        "поддержк",
        "горяч лини",
        "горячая лини",
        "чат",
        "=бот",
        "чат-бот",
        "обращени",
        "жалоб",
        "support",
        "hotline",
        "helpline",
        "customer service",
        "chatbot",
        "客服",
        "热线",
        "投诉",
    ),
    "cashback": (
        "кешбэк",
        "кэшбэк",
        "кешбек",
        "бонус",
        "балл",
        "cashback",
        "cash back",
        "points",
        "rewards",
        "返现",
        "积分",
    ),
}

# Words that make a text a complaint whatever its tone (a demand, an appeal to an authority).
COMPLAINT_MARKERS = (
    "жалоб",
    "претензи",
    "требую",
    "верните",
    "разберитесь",
    "обращусь в суд",
    "роспотребнадзор",
    "=цб",
    "безобраз",
    "complain",
    "complaint",
    "refund",
    "unacceptable",
    "fix this",
    "disgrace",
    "=sue",
    "投诉",
    "退款",
    "要求赔偿",
    "举报",
    "差评",
)


_CJK = re.compile(r"[\u4e00-\u9fff]")
_WORDS = re.compile(r"\w+")


def _norm(text: str) -> str:
    return text.lower().replace("ё", "е")


@dataclass(frozen=True)
class TopicLexicon:
    """Compiled keyword lists. Single-word stems are looked up by word prefix in a dict (a regex
    alternation of hundreds of stems is ~10x slower); multi-word and Chinese keywords use regexes."""

    topics: tuple[str, ...]
    prefixes: dict[str, frozenset[int]]  # stem -> topic indexes
    exact: dict[str, frozenset[int]]  # whole word -> topic indexes
    phrases: dict[str, tuple[tuple[int, re.Pattern[str]], ...]]  # first-word stem -> (topic, regex)
    cjk: tuple[re.Pattern[str] | None, ...]  # per topic
    lengths: tuple[int, ...]  # stem lengths present, for the prefix lookup

    def find(self, text: str | None) -> list[str]:
        """The topics a text mentions, in the lexicon's order."""
        if not text:
            return []
        t = _norm(text)
        hit: set[int] = set()
        for word in _WORDS.findall(t):
            if word in self.exact:
                hit |= self.exact[word]
            for n in self.lengths:
                if n > len(word):
                    break
                stem = word[:n]
                if stem in self.prefixes:
                    hit |= self.prefixes[stem]
                for topic, rx in self.phrases.get(stem, ()):
                    if topic not in hit and rx.search(t):
                        hit.add(topic)
        if _CJK.search(t):
            hit |= {i for i, rx in enumerate(self.cjk) if rx is not None and rx.search(t)}
        return [self.topics[i] for i in sorted(hit)]


def _pattern(keywords: Sequence[str]) -> re.Pattern[str]:
    """One regex for a keyword list (used for the complaint markers and multi-word keywords)."""
    parts = []
    for k in sorted({_norm(k) for k in keywords if k.strip()}, key=len, reverse=True):
        if _CJK.search(k):
            parts.append(re.escape(k))
        elif k.startswith("="):
            parts.append(r"(?<!\w)" + re.escape(k[1:]) + r"(?!\w)")
        else:
            # Multi-word stems: each word is a stem, separated by whitespace and any ending.
            words = [re.escape(w) for w in k.split()]
            parts.append(r"(?<!\w)" + r"\w*\s+".join(words))
    return re.compile("|".join(parts) or r"(?!x)x")


def topic_lexicon(extra: Mapping[str, Sequence[str]] | None = None) -> TopicLexicon:
    """The default topics plus ``extra`` ({topic: [keywords]}); extra keywords add to a topic."""
    merged: dict[str, list[str]] = {k: list(v) for k, v in DEFAULT_TOPICS.items()}
    for topic, words in (extra or {}).items():
        if isinstance(words, str):
            raise TypeError(f"topic {topic!r}: expected a list of keywords, got the string {words!r}")
        merged.setdefault(str(topic), []).extend(str(w) for w in words)
    return _compile(tuple((k, tuple(v)) for k, v in merged.items()))


@lru_cache(maxsize=32)
def _compile(items: tuple[tuple[str, tuple[str, ...]], ...]) -> TopicLexicon:
    prefixes: dict[str, set[int]] = {}
    exact: dict[str, set[int]] = {}
    phrases: dict[str, list[tuple[int, re.Pattern[str]]]] = {}
    cjk: list[re.Pattern[str] | None] = []
    for i, (_, keywords) in enumerate(items):
        chinese = []
        for k in (_norm(k).strip() for k in keywords):
            if not k:
                continue
            if _CJK.search(k):
                chinese.append(k)
            elif k.startswith("="):
                exact.setdefault(k[1:], set()).add(i)
            elif len(k.split()) > 1 or not _WORDS.fullmatch(k):
                first = _WORDS.match(k)
                key = first.group() if first else k
                phrases.setdefault(key, []).append((i, _pattern([k])))
                prefixes.setdefault(key, set())  # so the lookup visits this stem length
            else:
                prefixes.setdefault(k, set()).add(i)
        cjk.append(_pattern(chinese) if chinese else None)
    return TopicLexicon(
        topics=tuple(k for k, _ in items),
        prefixes={k: frozenset(v) for k, v in prefixes.items()},
        exact={k: frozenset(v) for k, v in exact.items()},
        phrases={k: tuple(v) for k, v in phrases.items()},
        cjk=tuple(cjk),
        lengths=tuple(sorted({len(k) for k in prefixes})),
    )


_MARKERS = _pattern(COMPLAINT_MARKERS)


def is_complaint(text: str | None, sentiment: str | None, topics: Sequence[str]) -> bool:
    """A complaint: an explicit demand or appeal, or a negative text about a named topic."""
    if not text:
        return False
    if _MARKERS.search(_norm(text)):
        return True
    return sentiment == "negative" and len(topics) > 0
