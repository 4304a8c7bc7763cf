"""Identifiers that would merge different people if taken at face value, planted without touching
the random stream (so the rest of the world stays the same): placeholder e-mails that two
unrelated customers gave in two systems, a library computer that three customers logged in from,
and a phone that called for two customers."""

from __future__ import annotations

import pandas as pd

OWN_DOMAIN = "demobank.ru"
PLACEHOLDER_EMAILS = (f"no-email@{OWN_DOMAIN}", "a@a.ru")
LIBRARY_COOKIE = "ck-library-pc"
SHARED_CALLER = "+74957310466"


def placeholder_emails(core: pd.DataFrame, cards: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A customer only the core CRM knows and one only the cards CRM knows share a placeholder."""
    core_only = core.index[~core.person_id.isin(cards.person_id)]
    cards_only = cards.index[~cards.person_id.isin(core.person_id)]
    core, cards = core.copy(), cards.copy()
    # as many pairs as there are placeholders (or one-CRM customers, if fewer)
    for email, a, b in zip(PLACEHOLDER_EMAILS, core_only, cards_only, strict=False):
        core.loc[a, "email"] = email
        cards.loc[b, "email"] = email
    return core, cards


def library_logins(customers: list[str]) -> list[dict]:
    """Three customers log in on one public computer."""
    return [
        {
            "message_id": f"w-library-{n}",
            "anonymous_id": LIBRARY_COOKIE,
            "timestamp": f"2025-06-0{n}T12:00:00Z",
            "type": "login",
            "user_id": c,
            "properties": {"path": "/"},
        }
        for n, c in enumerate(customers[:3], start=1)
    ]


def shared_caller(calls: pd.DataFrame, customers: list[str]) -> pd.DataFrame:
    """Two calls from one phone (an office switchboard, a relative's mobile) about two customers."""
    extra = calls.iloc[:2].copy()
    extra["call_id"] = ["CALL-SHARED-1", "CALL-SHARED-2"]
    extra["customer_number"] = customers[:2]
    extra["caller_phone"] = SHARED_CALLER
    return pd.concat([calls, extra], ignore_index=True)
