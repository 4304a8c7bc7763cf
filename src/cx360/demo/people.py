"""The hidden population: who each person really is. Every source is a view of these people."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from cx360.demo import names

DISTRICTS = (
    "Арбат",
    "Басманный",
    "Хамовники",
    "Пресненский",
    "Тверской",
    "Замоскворечье",
    "Сокольники",
    "Марьино",
    "Митино",
    "Бутово",
    "Люблино",
    "Измайлово",
)
STREETS = ("ул. Ленина", "ул. Пушкина", "пр. Мира", "ул. Садовая", "Тверская ул.", "ул. Гагарина", "Лесная ул.")
CHANNELS = ("email", "sms", "push", "call_centre", "branch", "web")
INTERESTS = ("groceries", "restaurants", "travel", "games", "fashion", "electronics", "fuel", "health", "kids")
ARCHETYPES = ("analog", "wannabe", "mainstreamer", "paranoid", "chameleon", "nomad")


def archetype(sophistication: np.ndarray, sharing: np.ndarray) -> np.ndarray:
    """The six digital archetypes on the grid of digital sophistication x willingness to share data."""
    return np.select(
        [sophistication < 0.3, sophistication < 0.5, sharing < 0.35, sophistication < 0.75, sharing < 0.7],
        ["analog", "wannabe", "paranoid", "mainstreamer", "chameleon"],
        default="nomad",
    )


def population(n: int, rng: np.random.Generator, start: dt.date, days: int) -> pd.DataFrame:
    ids = np.arange(1, n + 1)
    female = rng.random(n) < 0.52
    english = rng.random(n) < 0.12
    age = np.clip(rng.normal(42, 14, n), 18, 85)
    birth = np.array([start - dt.timedelta(days=int(a * 365.25)) for a in age])
    first = np.where(
        english,
        np.where(female, rng.choice(names.EN_FEMALE, n), rng.choice(names.EN_MALE, n)),
        np.where(female, rng.choice(names.FEMALE, n), rng.choice(names.MALE, n)),
    )
    surname = np.where(english, rng.choice(names.EN_SURNAMES, n), rng.choice(names.SURNAMES, n))
    last = np.array([s if e or not f else names.feminine(s) for s, e, f in zip(surname, english, female, strict=True)])
    roots = rng.choice(names.PATRONYMIC_ROOTS, n)
    middle = np.array(["" if e else names.patronymic(r, f) for r, e, f in zip(roots, english, female, strict=True)])

    sophistication = np.clip(rng.beta(2.2, 2.0, n) - (age - 42) / 200, 0, 1)
    sharing = rng.beta(2.0, 2.0, n)
    value = rng.lognormal(np.log(900), 0.8, n)  # expected monthly card spend
    churn_propensity = rng.beta(1.3, 6.0, n)
    churned = rng.random(n) < churn_propensity * 0.9
    churn_day = rng.integers(days // 3, days, n)
    churn_date = np.where(churned, [start + dt.timedelta(days=int(d)) for d in churn_day], None)
    satisfaction = np.clip(rng.normal(0.65, 0.2, n) - churned * 0.25, 0, 1)
    followers = np.floor(rng.lognormal(4.5, 1.6, n)).astype(int)
    interests = [list(rng.choice(INTERESTS, int(k), replace=False)) for k in rng.integers(1, 4, n)]
    email_user = np.array(
        [names.translit(f"{f}.{l}", 1).lower().replace("'", "") for f, l in zip(first, last, strict=True)]
    )
    domains = rng.choice(("mail.ru", "yandex.ru", "gmail.com", "bk.ru", "inbox.ru"), n)
    email = np.array([f"{u}{i}@{d}" for u, i, d in zip(email_user, ids, domains, strict=True)])
    codes = rng.choice((903, 905, 906, 909, 910, 915, 916, 917, 919, 925, 926, 977, 985, 999), n)
    mobile = np.array([f"+7{c}{i:07d}" for c, i in zip(codes, ids, strict=True)])
    house = rng.integers(1, 120, n)
    district = rng.choice(DISTRICTS, n)
    address = np.array([f"{s}, д. {h}" for s, h in zip(rng.choice(STREETS, n), house, strict=True)])

    people = pd.DataFrame(
        {
            "person_id": [f"person-{i:06d}" for i in ids],
            "female": female,
            "english": english,
            "birth_date": birth,
            "first_name": first,
            "middle_name": middle,
            "last_name": last,
            "email": email,
            "mobile": mobile,
            "home_district": district,
            "address": address,
            "value": value.round(2),
            "churn_propensity": churn_propensity.round(4),
            "churned": churned,
            "churn_date": churn_date,
            "satisfaction": satisfaction.round(3),
            "followers": followers,
            "interests": interests,
            "preferred_channel": rng.choice(CHANNELS, n, p=(0.25, 0.15, 0.25, 0.1, 0.1, 0.15)),
            "preferred_hour": np.clip(rng.normal(19, 3.5, n), 7, 23).astype(int),
            "digital_sophistication": sophistication.round(3),
            "data_sharing": sharing.round(3),
            "archetype": archetype(sophistication, sharing),
            "has_handle": rng.random(n) < 0.25 + 0.3 * sophistication,
            "handle": [f"{u.replace('.', '_')}{i % 1000}" for u, i in zip(email_user, ids, strict=True)],
        }
    )
    # households: a spouse shares the home landline (and the surname)
    spouses = rng.permutation(n)[: n // 10]
    people["home_phone"] = None
    for a, b in zip(spouses[0::2], spouses[1::2], strict=False):  # an odd one out stays single
        phone = f"+7495{rng.integers(1_000_000, 9_999_999)}"
        people.loc[[a, b], "home_phone"] = phone
    return people
