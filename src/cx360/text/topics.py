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
    "fees": ("комисс", "плат за обслуж", "списали за", "скрыт", "абонентск", "годовое обслуж", "штраф",
             "=fee", "=fees", "charge", "commission", "overcharg", "hidden cost", "手续费", "年费", "扣费", "收费"),
    "card_blocked": ("заблокир", "блокир", "разблокир", "блокиров", "карта не работает", "карта не проход",
                     "blocked", "frozen", "card declined", "declined", "冻结", "锁卡", "被锁", "封卡"),
    "app": ("приложен", "приложух", "мобильн банк", "интернет-банк", "онлайн-банк", "личн кабинет", "сайт",
            "обновлен", "вылета", "смс с код", "код подтвержд", "=app", "=apps", "website", "login", "log in",
            "crash", "update", "手机银行", "网银", "闪退", "登录", "验证码"),
    "staff": ("хам", "нахам", "груб", "нагруб", "сотрудни", "операционист", "менеджер", "консультант", "кассир",
              "персонал", "продав", "оператор", "rude", "staff", "employee", "manager", "cashier", "clerk",
              "态度", "服务员", "工作人员", "柜员", "客服"),
    "queues": ("очеред", "ждал", "ждать", "ожидан", "на линии", "дозвон", "queue", "waited", "waiting",
               "on hold", "排队", "等了", "等待"),
    "delivery": ("доставк", "курьер", "посылк", "заказ", "пункт выдач", "привезл", "delivery", "courier",
                 "parcel", "package", "shipping", "shipment", "快递", "物流", "送货", "发货", "配送"),
    "rates": ("ставк", "процент", "курс", "переплат", "=rate", "=rates", "interest rate", "=interest", "=apr", "exchange rate",
              "利率", "利息", "汇率"),
    "atm": ("банкомат", "терминал", "atm", "cash machine", "取款机", "atm机"),
    "fraud": ("мошен", "украл", "взлом", "утечк", "без моего ведома", "подозрительн", "fraud", "scam",
              "stolen", "hacked", "unauthori", "phishing", "诈骗", "盗刷", "被盗", "骗子"),
    "refund": ("возврат", "вернуть деньги", "верните", "не вернули", "refund", "money back", "chargeback",
               "退款", "退钱", "退货"),
    "loans": ("кредит", "ипотек", "рассрочк", "займ", "рефинанс", "loan", "mortgage", "credit limit",
              "贷款", "房贷", "分期"),
    "quality": ("брак", "сломал", "поломк", "качеств", "испорч", "просроч", "разбит", "не соответств",
                "broken", "defective", "damaged", "quality", "faulty", "质量", "坏了", "破损", "假货"),
    "support": ("поддержк", "горяч лини", "горячая лини", "чат", "=бот", "чат-бот", "обращени", "жалоб", "support",
                "hotline", "helpline", "customer service", "chatbot", "客服", "热线", "投诉"),
    "cashback": ("кешбэк", "кэшбэк", "кешбек", "бонус", "балл", "cashback", "cash back", "points", "rewards",
                 "返现", "积分"),
}

# Words that make a text a complaint whatever its tone (a demand, an appeal to an authority).
COMPLAINT_MARKERS = (
    "жалоб", "претензи", "требую", "верните", "разберитесь", "обращусь в суд", "роспотребнадзор", "=цб",
    "безобраз", "complain", "complaint", "refund", "unacceptable", "fix this", "disgrace", "=sue",
    "投诉", "退款", "要求赔偿", "举报", "差评",
)


@dataclass(frozen=True)
class TopicLexicon:
    """Compiled keyword lists: one regex per topic."""

    topics: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...]

    def find(self, text: str | None) -> list[str]:
        """The topics a text mentions, in the lexicon's order."""
        if not text:
            return []
        t = text.lower().replace("ё", "е")
        return [name for name, p in zip(self.topics, self.patterns) if p.search(t)]


def _pattern(keywords: Sequence[str]) -> re.Pattern[str]:
    parts = []
    for k in sorted({k.lower().replace("ё", "е") for k in keywords if k.strip()}, key=len, reverse=True):
        if re.search(r"[\u4e00-\u9fff]", k):
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
            raise ValueError(f"topic {topic!r}: expected a list of keywords, got the string {words!r}")
        merged.setdefault(str(topic), []).extend(str(w) for w in words)
    return _compile(tuple((k, tuple(v)) for k, v in merged.items()))


@lru_cache(maxsize=32)
def _compile(items: tuple[tuple[str, tuple[str, ...]], ...]) -> TopicLexicon:
    return TopicLexicon(tuple(k for k, _ in items), tuple(_pattern(v) for _, v in items))


_MARKERS = _pattern(COMPLAINT_MARKERS)


def is_complaint(text: str | None, sentiment: str | None, topics: Sequence[str]) -> bool:
    """A complaint: an explicit demand or appeal, or a negative text about a named topic."""
    if not text:
        return False
    if _MARKERS.search(text.lower().replace("ё", "е")):
        return True
    return sentiment == "negative" and len(topics) > 0
