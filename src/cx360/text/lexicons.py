"""Sentiment word lists for Russian and Chinese, and a counter that respects negation.

The lists were written for cx360 by its developers for customer texts (banking, retail, delivery):
Russian entries are stems matched at the start of a word (``отврат`` matches ``отвратительный``);
words in ``*_WORDS`` match only whole. Chinese entries match as substrings. A negator just before a
term flips it (``не удобно``, ``без проблем``, ``不满意``). English uses VADER's lexicon instead.
"""

from __future__ import annotations

import re
from functools import lru_cache

RU_NEGATORS = frozenset({"не", "нет", "ни", "без", "никак", "нисколько"})
RU_POS_STEMS = (
    "спасиб",
    "благодар",
    "отличн",
    "прекрасн",
    "замечательн",
    "супер",
    "класс",
    "кайф",
    "удобн",
    "быстр",
    "вежлив",
    "довол",
    "рекоменд",
    "совет",
    "лучш",
    "хорош",
    "молодц",
    "профессионал",
    "понрав",
    "нрав",
    "радует",
    "радов",
    "порадова",
    "выгодн",
    "приятн",
    "восторг",
    "умниц",
    "идеальн",
    "безупреч",
    "надежн",
    "надёжн",
    "отзывчив",
    "внимательн",
    "уютн",
    "аккуратн",
    "оперативн",
    "выруч",
    "здоров",
    "честн",
    "круто",
    "крут",
    "обожа",
    "люблю",
    "вкусн",
    "качествен",
    "свеж",
    "дешев",
    "дёшев",
    "мгновен",
    "гладко",
    "забот",
    "помогл",
    "помог",
    "реши",
    "профи",
    "ценн",
    "понятн",
    "четко",
    "чётко",
    "топов",
)
RU_POS_WORDS = frozenset({"рад", "рада", "рады", "топ", "ок", "отлично", "браво", "ура"})
RU_NEG_STEMS = (
    "ужас",
    "кошмар",
    "отврат",
    "хам",
    "нахам",
    "груб",
    "нагруб",
    "обман",
    "мошенн",
    "издева",
    "позор",
    "разочаров",
    "бардак",
    "безобраз",
    "плох",
    "худш",
    "хуже",
    "медлен",
    "тормоз",
    "вылета",
    "сбой",
    "ошибк",
    "ошибоч",
    "проблем",
    "жалоб",
    "верните",
    "требую",
    "возмут",
    "возмущ",
    "бесит",
    "бешенств",
    "недовол",
    "некомпетент",
    "равнодуш",
    "навяз",
    "скрыт",
    "грабеж",
    "грабёж",
    "грабитель",
    "отказ",
    "заблокир",
    "блокир",
    "задерж",
    "опозда",
    "потерял",
    "сломал",
    "поломк",
    "брак",
    "испорт",
    "испорч",
    "просроч",
    "прокис",
    "грязн",
    "неприветлив",
    "неудобн",
    "очеред",
    "вран",
    "враньё",
    "отписк",
    "отфутбол",
    "зря",
    "невозможн",
    "кричал",
    "швырну",
    "пропал",
    "сгорел",
    "фальшив",
    "утечк",
    "взлом",
    "штраф",
    "бюрократ",
    "нерв",
    "достал",
    "дорог",
    "обсчита",
    "завис",
    "висят",
    "висит",
    "бред",
    "кидал",
    "развод",
    "жуть",
    "отстой",
    "днище",
    "стыд",
    "повысил",
    "списал",
    "переплат",
    "неправильн",
    "неправ",
    "некачествен",
    "поцарапа",
    "разбит",
    "рван",
    "холодн",
    "остыл",
    "устал",
    "лишил",
    "виноват",
)
RU_NEG_WORDS = frozenset({"дно", "зла", "жаль", "увы", "ноль", "фу"})
# Verbs that are neutral alone but a complaint when negated ("не работает", "не пришли").
RU_NEG_AFTER_NEGATOR = (
    "работа",
    "приш",
    "приход",
    "отвеча",
    "верну",
    "вернул",
    "реш",
    "помог",
    "могу",
    "мог",
    "получ",
    "дозвон",
    "начисл",
    "дошл",
    "дошел",
    "дошёл",
    "прох",
    "принима",
    "грузит",
    "устанавлива",
    "выдал",
    "перезвон",
    "рекоменд",
    "советую",
    "ожидал",
    "довол",
)

ZH_NEGATORS = ("不", "没", "无", "别", "未")
ZH_POS = (
    "不错",
    "满意",
    "喜欢",
    "推荐",
    "方便",
    "很快",
    "快速",
    "速度快",
    "发货快",
    "优秀",
    "很棒",
    "真棒",
    "赞",
    "值得",
    "漂亮",
    "感谢",
    "谢谢",
    "划算",
    "实惠",
    "舒服",
    "完美",
    "精彩",
    "支持",
    "开心",
    "高兴",
    "物美价廉",
    "贴心",
    "专业",
    "热情",
    "周到",
    "耐心",
    "清晰",
    "超值",
    "很好",
    "挺好",
    "好用",
    "好评",
    "好看",
    "好吃",
    "真好",
    "非常好",
    "太好",
    "满分",
    "给力",
    "惊喜",
    "放心",
    "靠谱",
    "便宜",
    "正品",
    "好",
    "快",
    "还可以",
    "可以",
    "值",
    "干净",
    "舒适",
    "合适",
    "精美",
    "清楚",
    "准时",
    "及时",
    "物有所值",
    "性价比高",
    "流畅",
    "稳定",
    "结实",
    "耐用",
    "感动",
    "有趣",
    "有用",
    "实用",
    "丰富",
    "喜爱",
    "爱",
    "优惠",
    "安静",
    "温馨",
    "漂亮",
    "美",
    "新鲜",
    "强",
    "顺利",
    "愉快",
    "热心",
    "友好",
    "细心",
    "快乐",
)
ZH_NEG = (
    "差",
    "失望",
    "垃圾",
    "糟糕",
    "退货",
    "退款",
    "投诉",
    "太慢",
    "很慢",
    "坑",
    "骗",
    "后悔",
    "烂",
    "问题",
    "故障",
    "破损",
    "坏了",
    "难用",
    "不好",
    "差劲",
    "生气",
    "无语",
    "恶心",
    "恶劣",
    "麻烦",
    "太贵",
    "假货",
    "冻结",
    "盗刷",
    "扣费",
    "乱收费",
    "排队",
    "不满",
    "郁闷",
    "浪费",
    "错误",
    "不行",
    "不能用",
    "不值",
    "一般般",
    "敷衍",
    "拖延",
    "欺诈",
    "上当",
    "慢死",
    "气死",
    "难吃",
    "脏",
    "旧",
    "一般",
    "不太",
    "慢",
    "贵",
    "吵",
    "噪音",
    "破",
    "坏",
    "差评",
    "缺点",
    "粗糙",
    "死机",
    "发热",
    "异味",
    "漏",
    "无法",
    "不能",
    "迟",
    "晚",
    "可惜",
    "遗憾",
    "不足",
    "不爽",
    "痛苦",
    "太小",
    "简陋",
    "陈旧",
    "难受",
    "不合理",
    "不够",
    "不清",
    "退",
    "弱",
    "吃亏",
    "担心",
    "不如",
    "算了",
)
# Matched so that they are not read as sentiment ("快递" is a courier, not "fast").
ZH_NEUTRAL = ("快递", "好像", "好多", "只好", "好几", "可以说", "爱情", "美国", "美元", "值班")

_RU_TOKEN = re.compile(r"[а-яё]+|[a-z]+|[!?]", re.IGNORECASE)


def ru_tokens(text: str) -> list[str]:
    return _RU_TOKEN.findall(text.lower().replace("ё", "е"))


def _stem_regex(stems: tuple[str, ...]) -> re.Pattern[str]:
    norm = sorted({s.replace("ё", "е") for s in stems}, key=len, reverse=True)
    return re.compile("^(?:" + "|".join(map(re.escape, norm)) + ")")


_RU_POS = _stem_regex(RU_POS_STEMS)
_RU_NEG = _stem_regex(RU_NEG_STEMS)
_RU_NEG_NEGATED = _stem_regex(RU_NEG_AFTER_NEGATOR)


@lru_cache(maxsize=200_000)
def _ru_polarity(token: str) -> int:
    if token in RU_POS_WORDS or _RU_POS.match(token):
        return 1
    if token in RU_NEG_WORDS or _RU_NEG.match(token):
        return -1
    return 0


def ru_counts(text: str) -> tuple[int, int]:
    """(positive hits, negative hits) in a Russian text, after negation."""
    pos = neg = 0
    tokens = ru_tokens(text)
    for i, tok in enumerate(tokens):
        negated = i > 0 and tokens[i - 1] in RU_NEGATORS
        polarity = _ru_polarity(tok)
        if negated and polarity == 0 and _RU_NEG_NEGATED.match(tok):
            polarity = 1  # flipped below: "не работает" is negative
        if negated:
            polarity = -polarity
        pos += polarity > 0
        neg += polarity < 0
    return pos, neg


def _zh_regex() -> re.Pattern[str]:
    terms = sorted(set(ZH_POS) | set(ZH_NEG) | set(ZH_NEUTRAL), key=len, reverse=True)
    return re.compile("|".join(map(re.escape, terms)))


_ZH = _zh_regex()
_ZH_POS = frozenset(ZH_POS)
_ZH_NEUTRAL = frozenset(ZH_NEUTRAL)


def zh_counts(text: str) -> tuple[int, int]:
    """(positive hits, negative hits) in a Chinese text, after negation."""
    pos = neg = 0
    for m in _ZH.finditer(text):
        if m.group() in _ZH_NEUTRAL:
            continue
        polarity = 1 if m.group() in _ZH_POS else -1
        before = text[max(0, m.start() - 2) : m.start()]
        if not m.group().startswith(ZH_NEGATORS) and any(n in before for n in ZH_NEGATORS):
            polarity = -polarity
        pos += polarity > 0
        neg += polarity < 0
    return pos, neg


@lru_cache(maxsize=1)
def vader():
    """VADER's English analyser, built once per process."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()
