"""Purchase intent: does a post signal a coming purchase, and of which product?

Score (0..1), from patterns in Russian, English and Chinese:

- 0.9: a plan or wish verb close before a product ("думаю взять ипотеку", "looking for a new credit card",
  "想办信用卡");
- 0.6: a question about a product's terms ("какая ставка по ипотеке?", "what's the rate on a car loan");
- 0.3: a product named with a comparison or a search ("сравниваю вклады", "best credit card");
- 0 otherwise, or when the verb is negated ("не хочу брать кредит").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Most specific first: "кредитная карта" is a credit card, not a loan.
PRODUCTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("credit_card", (r"кредитн\w* карт", r"кредитк", r"credit[- ]?cards?", r"信用卡")),
    ("car_loan", (r"автокредит", r"кредит\w* на (?:авто|машин)", r"car loan", r"auto loan", r"车贷")),
    ("mortgage", (r"ипотек", r"ипотеч", r"mortgage", r"home loan", r"房贷")),
    ("refinancing", (r"рефинанс", r"refinanc", r"转贷")),
    (
        "deposit",
        (r"вклад", r"депозит", r"накопительн\w* сч", r"savings account", r"deposit", r"存款", r"定期", r"理财"),
    ),
    ("account", (r"сч[её]т", r"\baccount", r"账户", r"开户")),
    ("debit_card", (r"дебетов\w* карт", r"debit card", r"借记卡")),
    ("insurance", (r"страховк", r"страхован", r"insurance", r"保险")),
    ("investment", (r"инвестиц", r"брокерск", r"invest", r"基金", r"股票")),
    ("loan", (r"кредит", r"займ", r"personal loan", r"\bloan", r"贷款")),
    ("card", (r"карт[уаы]", r"\bcard", r"办卡", r"卡")),
    ("phone", (r"телефон", r"смартфон", r"айфон", r"iphone", r"smartphone", r"phone", r"手机")),
)
_WISH = (
    r"думаю (?:\w+ )?(?:взять|оформить|открыть|купить|брать)",
    r"хочу (?:\w+ )?(?:взять|оформить|открыть|купить)",
    r"хочу",
    r"планиру\w*",
    r"собира\w*сь",
    r"ищу",
    r"подбира\w*",
    r"присматрива\w*",
    r"выбира\w*",
    r"нуж(?:ен|на|но|ны)",
    r"интересу\w*",
    r"готов\w* (?:взять|оформить)",
    r"подумыва\w*",
    r"мечта\w*",
    r"looking for",
    r"thinking (?:about|of)",
    r"planning (?:to|on)",
    r"want(?:ing)? to (?:get|open|buy|apply)",
    r"going to (?:get|open|buy|apply)",
    r"need an?",
    r"about to (?:get|buy|apply)",
    r"shopping for",
    r"would like to (?:get|open|apply)",
    r"apply(?:ing)? for",
    r"interested in",
    r"想办",
    r"想买",
    r"想申请",
    r"打算",
    r"准备",
    r"考虑",
    r"想要",
    r"想开",
    r"要办",
    r"想贷",
)
_ASK = (
    r"какая ставк",
    r"какой процент",
    r"какие условия",
    r"на каких условиях",
    r"сколько стоит",
    r"what(?:'s| is) the (?:rate|apr|interest)",
    r"how much (?:is|does)",
    r"what are the terms",
    r"利率多少",
    r"怎么办理",
    r"条件是什么",
    r"需要什么",
)
_COMPARE = (
    r"сравнива\w*",
    r"какой банк",
    r"лучш\w+",
    r"посоветуйте",
    r"best",
    r"compare",
    r"recommend",
    r"哪家",
    r"推荐",
)
_NEGATED = re.compile(r"(?:\bне|\bnot|n't|never|不|没)\s*(?:\w+\s+)?$", re.IGNORECASE)


def _any(patterns) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


_PRODUCT = [(name, _any(p)) for name, p in PRODUCTS]
_ANY_PRODUCT = _any([p for _, ps in PRODUCTS for p in ps])  # one pass rules out most texts
_WISH_RE = _any(_WISH)
_ASK_RE = _any(_ASK)
_COMPARE_RE = _any(_COMPARE)
_NEAR = 60  # characters between the wish and the product, within one clause
_CLAUSE_END = re.compile(r"[.?!,;。？！，；]")


@dataclass(frozen=True)
class Intent:
    score: float
    product: str | None


NO_INTENT = Intent(0.0, None)


def _product(text: str, start: int = 0) -> tuple[str, int] | None:
    best = None
    for name, rx in _PRODUCT:
        m = rx.search(text, start)
        if m and (best is None or m.start() < best[1]):
            best = (name, m.start())
    return best


def purchase_intent(text: str | None) -> Intent:
    """Purchase-intent score and the product named (None when none is recognised)."""
    if not text:
        return NO_INTENT
    t = text.lower().replace("ё", "е")
    if not _ANY_PRODUCT.search(t):
        return NO_INTENT
    for m in _WISH_RE.finditer(t):
        if _NEGATED.search(t[max(0, m.start() - 12) : m.start()]):
            continue
        window = t[: m.end() + _NEAR]
        end = _CLAUSE_END.search(window, m.end())
        found = _product(window[: end.start()] if end else window, m.start())
        if found:
            return Intent(0.9, found[0])
    found = _product(t)
    if found is None:
        return NO_INTENT
    if _ASK_RE.search(t):
        return Intent(0.6, found[0])
    if _COMPARE_RE.search(t):
        return Intent(0.3, found[0])
    return Intent(0.0, None)
