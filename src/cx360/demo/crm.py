"""The two CRM exports: the core bank CRM (Cyrillic, Russian formats) and the card business CRM
(Latin transliterations, ISO dates), with the mess real exports have."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from cx360.demo import names
from cx360.demo.people import STREETS

PRODUCTS = ("debit_card", "credit_card", "deposit", "mortgage", "auto_loan", "insurance", "investments")
# The card CRM's city: most customers in Moscow, a share on the clocks of the Urals, Siberia and the Far East
# (the demo's [contact_policy] zones map each city to its time zone)
CITIES = {"Moscow": 0.7, "Yekaterinburg": 0.1, "Novosibirsk": 0.1, "Vladivostok": 0.1}


def _phone_ru(e164: str, style: int) -> str:
    d = e164[2:]  # ten national digits
    return (f"8 ({d[:3]}) {d[3:6]}-{d[6:8]}-{d[8:]}", f"+7 {d[:3]} {d[3:]}", f"8{d}", f"+7({d[:3]}){d[3:]}")[style]


def _products(value: float, rng: np.random.Generator) -> str:
    k = 1 + int(value > 700) + int(value > 1500) + int(rng.random() < 0.3)
    return "|".join(sorted(rng.choice(PRODUCTS, k, replace=False)))


def cities(person_ids: np.ndarray) -> np.ndarray:
    """Each person's city, drawn from their id alone: the rest of the world's random draws stay as they were."""
    u = np.array([int(hashlib.blake2b(str(pid).encode(), digest_size=4).hexdigest(), 16) / 2**32 for pid in person_ids])
    edges = np.cumsum(list(CITIES.values()))
    return np.array(list(CITIES), dtype=object)[np.minimum(np.searchsorted(edges, u, side="right"), len(CITIES) - 1)]


def membership(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    core = rng.random(n) < 0.85
    cards = rng.random(n) < 0.70
    core |= ~(core | cards)  # everyone is a customer somewhere
    return core, cards


def crm_core(people: pd.DataFrame, member: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    p = people[member]
    n = len(p)
    styles = rng.integers(0, 4, n)
    rows = pd.DataFrame(
        {
            "client_id": [f"C{int(pid[-6:]):06d}" for pid in p.person_id],
            "fam": p.last_name.values,
            "imya": p.first_name.values,
            "otchestvo": p.middle_name.values,
            "dob": [d.strftime("%d.%m.%Y") for d in p.birth_date],
            "mobile": [_phone_ru(m, s) for m, s in zip(p.mobile, styles, strict=True)],
            "home_phone": [_phone_ru(h, 0) if isinstance(h, str) else "" for h in p.home_phone],
            "email": np.where(rng.random(n) < 0.9, p.email.values, ""),
            "address": p.address.values,
            "district": p.home_district.values,
            "products": [_products(v, rng) for v in p.value],
            "social": np.where(p.has_handle.values & (rng.random(n) < 0.4), "@" + p.handle.values, ""),
            "updated": [
                f"{int(d):02d}.{int(m):02d}.2025 {int(h):02d}:{int(mi):02d}"
                for d, m, h, mi in zip(
                    rng.integers(1, 28, n),
                    rng.integers(1, 12, n),
                    rng.integers(8, 20, n),
                    rng.integers(0, 60, n),
                    strict=True,
                )
            ],
            "person_id": p.person_id.values,
        }
    )
    return rows


def crm_cards(people: pd.DataFrame, member: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    p = people[member]
    n = len(p)
    schemes = rng.integers(0, names.SCHEMES, n)
    first, last = [], []
    for f, l, eng, s in zip(p.first_name, p.last_name, p.english, schemes, strict=True):
        if eng:
            f = names.EN_NICKNAMES.get(f, f) if rng.random() < 0.15 else f
        elif rng.random() < 0.04 and f in names.DIMINUTIVES:
            f = names.DIMINUTIVES[f]
        f, l = names.translit(f, int(s)), names.translit(l, int(s))
        if rng.random() < 0.04:
            l = names.typo(l, rng)
        elif rng.random() < 0.03:
            f = names.typo(f, rng)
        first.append(f)
        last.append(l)
    dob = []
    for d in p.birth_date:
        swap = d.day <= 12 and d.day != d.month and rng.random() < 0.03
        dob.append(f"{d.year}-{d.day:02d}-{d.month:02d}" if swap else d.isoformat())
    shared_home = np.array([isinstance(h, str) for h in p.home_phone]) & (rng.random(n) < 0.6)
    phones = np.where(shared_home, p.home_phone.fillna("").values, p.mobile.values)
    phones = [f"+7-{x[2:5]}-{x[5:8]}-{x[8:]}" if rng.random() < 0.5 else x for x in phones]
    email = np.where(rng.random(n) < 0.85, p.email.values, "")
    email = np.where(rng.random(n) < 0.01, "test@test.com", email)
    stale = rng.random(n) < 0.05
    address = np.where(stale, [f"{rng.choice(STREETS)}, д. {rng.integers(1, 120)}" for _ in range(n)], p.address.values)
    tokens = [f"TK{rng.integers(16**11, 16**12):012X}" for _ in range(n)]
    return pd.DataFrame(
        {
            "customer_ref": [f"CB-{50000 + int(pid[-6:])}" for pid in p.person_id],
            "first_name": first,
            "last_name": last,
            "birth_date": dob,
            "phone": phones,
            "email": email,
            "address": address,
            "city": cities(p.person_id.to_numpy()),
            "card_token": tokens,
            "card_products": [_products(v, rng) for v in p.value],
            "last_modified": [
                f"2025-{int(m):02d}-{int(d):02d}T{int(h):02d}:00:00"
                for m, d, h in zip(rng.integers(1, 12, n), rng.integers(1, 28, n), rng.integers(8, 20, n), strict=True)
            ],
            "person_id": p.person_id.values,
        }
    )
