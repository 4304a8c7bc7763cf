"""Events that follow each person's hidden traits: what they buy, how they use the app and the web,
how they answer offers, when they call, what they write, where they go."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

MCC = {
    "groceries": (5411, "Grocery stores"),
    "restaurants": (5812, "Restaurants"),
    "travel": (4511, "Airlines"),
    "games": (5816, "Digital games"),
    "fashion": (5651, "Clothing"),
    "electronics": (5732, "Electronics"),
    "fuel": (5541, "Fuel stations"),
    "health": (5912, "Pharmacies"),
    "kids": (5641, "Children's wear"),
}
OFFERS = ("credit_card", "auto_loan", "mortgage", "deposit", "insurance", "cashback_upgrade")
CALL_REASONS = {
    "card_blocked": ("Карта заблокирована, не могу оплатить", "My card got blocked at the till"),
    "fees": ("Почему списали комиссию за обслуживание?", "Why was I charged a monthly fee?"),
    "app_problem": ("Приложение не открывается после обновления", "The app crashes after the update"),
    "loan_question": ("Хочу узнать условия по кредиту", "Asking about loan terms"),
    "complaint_staff": ("Грубый сотрудник в отделении", "Rude staff at the branch"),
    "close_account": ("Хочу закрыть счёт", "I want to close my account"),
}
POSTS = {
    "positive": (
        "Отличный банк, всё быстро и удобно @{bank}",
        "Love the new app from @{bank}, so fast",
        "Спасибо @{bank} за кэшбэк!",
        "Great service at @{bank} today",
    ),
    "neutral": (
        "Открыл вклад в @{bank}, посмотрим",
        "Думаю взять ипотеку, сравниваю банки",
        "Looking for a new credit card, any tips?",
        "Visited the @{bank} branch on Tverskaya",
    ),
    "negative": (
        "@{bank} опять списали комиссию, ужас",
        "Очередь в отделении @{bank} час, кошмар",
        "@{bank} app keeps crashing, fed up",
        "Закрываю счёт в @{bank}, надоело",
    ),
}
MALLS = ("Авиапарк", "Европейский", "Мега Тёплый Стан", "Афимолл", "Метрополис")


def occurrences(
    people: pd.DataFrame,
    per_year: np.ndarray,
    rng: np.random.Generator,
    start: dt.date,
    days: int,
    *,
    until_churn: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """(person index, timestamp) for events at a per-person yearly rate, stopping at churn."""
    end = np.full(len(people), days, dtype=float)
    if until_churn:
        churn = np.array([(c - start).days if c is not None else days for c in people.churn_date], dtype=float)
        end = np.minimum(end, churn)
    counts = rng.poisson(np.maximum(per_year, 0) * end / 365.0)
    idx = np.repeat(np.arange(len(people)), counts)
    day = np.floor(rng.random(len(idx)) * end[idx])
    hour = np.clip(np.round(rng.normal(people.preferred_hour.values[idx], 3.0)), 0, 23)
    seconds = (day * 86400 + hour * 3600 + rng.integers(0, 3600, len(idx))).astype("int64")
    ts = np.datetime64(start, "s") + seconds.astype("timedelta64[s]")
    order = np.lexsort((idx, ts))
    return idx[order], ts[order]


def iso(ts: np.ndarray) -> list[str]:
    return [str(t) + "Z" for t in ts.astype("datetime64[s]")]
