"""Every trait of the 3D profile, declared as data: name, type, meaning, where it comes from and over
which window. `cx360 traits`, docs/traits.md and the `profile_traits` table are all built from this
list, so that a trait cannot exist without its documentation.

Windows are relative to the profile's `as_of` time: nothing at or after `as_of` is read.
"""

from __future__ import annotations

from dataclasses import dataclass

RECENT_DAYS = 90  # the "recent" window of the *_90d traits
RECURRING_WEEKS = 8  # a category paid for in at least RECURRING_MIN_WEEKS of the last 8 weeks is a recurring interest
RECURRING_MIN_WEEKS = 6


@dataclass(frozen=True)
class Trait:
    name: str
    dtype: str  # Ibis type
    group: str
    doc: str
    sources: str  # the canonical tables and event names it reads
    window: str = "all history before as_of"


_R = f"last {RECENT_DAYS} days before as_of"
_TX = "events: card_payment, atm_withdrawal"
_CALLS = "events: call, complaint"
_OFFERS = "events: offer_made, offer_accepted, offer_rejected, offer_ignored, application_declined"
_DIGITAL = "events with channel web or mobile_app"
_VISITS = "events: store_visit"
_SURVEY = "events: survey_answered"
_SOCIAL = "events: social_post, review_posted"
_TEXTS = "text_scores of events: call, complaint, review_posted, social_post (properties.text)"

TRAITS: tuple[Trait, ...] = (
    # socio-demographics (the golden record) and relationship
    Trait(
        "age_years",
        "int64",
        "demographics",
        "age at as_of, from the golden birth date",
        "profiles.birth_date",
        "at as_of",
    ),
    Trait(
        "products",
        "string",
        "relationship",
        "products held, '|'-separated, union over the person's source records",
        "records.extra.products",
        "each record as of as_of (its newest version before then)",
    ),
    Trait(
        "n_products",
        "int64",
        "relationship",
        "number of distinct products held",
        "records.extra.products",
        "each record as of as_of (its newest version before then)",
    ),
    Trait(
        "first_seen_at",
        "timestamp",
        "relationship",
        "earliest registration, record update or event of the person",
        "records, events",
    ),
    Trait("tenure_days", "int64", "relationship", "days from first_seen_at to as_of", "records, events"),
    Trait(
        "n_sources",
        "int64",
        "relationship",
        "source systems that know the person (records or events)",
        "records, events",
    ),
    # activity across every source and channel
    Trait("events_total", "int64", "activity", "events of any kind, from any source", "events"),
    Trait("events_90d", "int64", "activity", "events of any kind, recently", "events", _R),
    Trait("last_seen_at", "timestamp", "activity", "the person's latest event, of any kind", "events"),
    # contact history
    Trait("calls_total", "int64", "contact", "contact-centre calls", _CALLS),
    Trait("calls_90d", "int64", "contact", "contact-centre calls, recently", _CALLS, _R),
    Trait(
        "complaints_total",
        "int64",
        "contact",
        "complaints: complaint events and calls whose reason mentions a complaint",
        _CALLS,
    ),
    Trait("last_contact_at", "timestamp", "contact", "last call or complaint", _CALLS),
    Trait("last_call_reason", "string", "contact", "reason of the last call", _CALLS),
    # campaign history
    Trait("offers_seen", "int64", "campaigns", "offers made or answered (each offer counted once per event)", _OFFERS),
    Trait("offers_accepted", "int64", "campaigns", "offers accepted", _OFFERS),
    Trait("offers_rejected", "int64", "campaigns", "offers explicitly rejected", _OFFERS),
    Trait("offers_ignored", "int64", "campaigns", "offers with no answer in their window", _OFFERS),
    Trait("applications_declined", "int64", "campaigns", "applications the organisation declined", _OFFERS),
    Trait("acceptance_rate", "float64", "campaigns", "offers_accepted / offers_seen", _OFFERS),
    Trait("last_offer_at", "timestamp", "campaigns", "last offer event", _OFFERS),
    Trait("last_rejected_at", "timestamp", "campaigns", "last explicit rejection", _OFFERS),
    Trait(
        "last_rejected_offer", "string", "campaigns", "the offer last rejected (never re-offer it too soon)", _OFFERS
    ),
    Trait("last_declined_at", "timestamp", "campaigns", "last declined application", _OFFERS),
    # digital behaviour
    Trait("web_events_90d", "int64", "digital", "web analytics events, recently", _DIGITAL, _R),
    Trait("app_events_90d", "int64", "digital", "mobile app events, recently", _DIGITAL, _R),
    Trait("logins_90d", "int64", "digital", "logins on web or app, recently", "events: login", _R),
    Trait("active_days_90d", "int64", "digital", "distinct days with web or app activity, recently", _DIGITAL, _R),
    Trait("digital_channels", "int64", "digital", "distinct digital channels used (web, mobile_app)", _DIGITAL),
    Trait(
        "devices",
        "int64",
        "digital",
        "distinct mobile devices and web cookies seen before as_of",
        "identity map; events and records that hold them",
    ),
    Trait("last_digital_at", "timestamp", "digital", "last web or app event", _DIGITAL),
    Trait("days_since_digital", "int64", "digital", "days from last_digital_at to as_of", _DIGITAL),
    Trait("forms_started", "int64", "digital", "application forms opened", "events: form_started"),
    Trait("forms_abandoned", "int64", "digital", "application forms left unfinished", "events: form_abandoned"),
    Trait("forms_submitted", "int64", "digital", "application forms submitted", "events: form_submitted"),
    Trait("last_abandoned_at", "timestamp", "digital", "last form abandonment", "events: form_abandoned"),
    Trait(
        "last_abandoned_form",
        "string",
        "digital",
        "the form last abandoned",
        "events: form_abandoned (properties.form)",
    ),
    Trait(
        "last_abandoned_field",
        "string",
        "digital",
        "the field at which it was abandoned",
        "events: form_abandoned (properties.field)",
    ),
    # transactions
    Trait("txn_count", "int64", "transactions", "card payments and ATM withdrawals", _TX),
    Trait("txn_count_90d", "int64", "transactions", "card payments and ATM withdrawals, recently", _TX, _R),
    Trait("spend_total", "float64", "transactions", "card payment amount", "events: card_payment"),
    Trait("spend_90d", "float64", "transactions", "card payment amount, recently", "events: card_payment", _R),
    Trait("avg_ticket", "float64", "transactions", "mean card payment", "events: card_payment"),
    Trait("cash_90d", "float64", "transactions", "ATM withdrawals, recently", "events: atm_withdrawal", _R),
    Trait(
        "monthly_outflow",
        "float64",
        "transactions",
        "(spend_90d + cash_90d) / 3: a lower bound on monthly income",
        _TX,
        _R,
    ),
    Trait("last_txn_at", "timestamp", "transactions", "last payment or withdrawal", _TX),
    Trait("days_since_txn", "int64", "transactions", "recency: days from last_txn_at to as_of", _TX),
    Trait("txn_per_month", "float64", "transactions", "frequency: transactions per 30 days since the first one", _TX),
    Trait(
        "top_category",
        "string",
        "transactions",
        "category with the highest card spend",
        "events: card_payment (properties.category)",
    ),
    Trait(
        "recurring_interests",
        "int64",
        "transactions",
        f"categories paid for in at least {RECURRING_MIN_WEEKS} of the last {RECURRING_WEEKS} weeks "
        "(listed in profile_breakdowns)",
        "events: card_payment (properties.category)",
        f"last {RECURRING_WEEKS} weeks before as_of",
    ),
    Trait(
        "top_district",
        "string",
        "transactions",
        "district with the most card payments",
        "events: card_payment (properties.district)",
    ),
    Trait(
        "peak_hour", "int64", "transactions", "hour of day (the workspace's time zone) with the most transactions", _TX
    ),
    Trait("weekend_share", "float64", "transactions", "share of transactions on Saturday or Sunday", _TX),
    # visits
    Trait("visits_total", "int64", "visits", "store, branch or mall visits", _VISITS),
    Trait("visits_90d", "int64", "visits", "visits, recently", _VISITS, _R),
    Trait(
        "avg_dwell_minutes",
        "float64",
        "visits",
        "mean time spent per visit",
        "events: store_visit (properties.dwell_minutes)",
    ),
    Trait(
        "visitor_type",
        "string",
        "visits",
        "regular (2+ visits a month recently), occasional (fewer), or none",
        _VISITS,
        _R,
    ),
    Trait("top_place", "string", "visits", "place visited most", "events: store_visit (properties.mall / place)"),
    Trait(
        "home_district",
        "string",
        "visits",
        "district of residence the visits report most often",
        "events: store_visit (properties.home_district)",
    ),
    # surveys (the latest answer)
    Trait(
        "survey_preferred_device",
        "string",
        "surveys",
        "preferred device, as stated",
        _SURVEY,
        "latest answer before as_of",
    ),
    Trait(
        "survey_preferred_channel",
        "string",
        "surveys",
        "preferred channel, as stated",
        _SURVEY,
        "latest answer before as_of",
    ),
    Trait(
        "survey_ok_to_share_data",
        "int64",
        "surveys",
        "attitude to sharing personal data, 1 (no) to 5 (yes)",
        _SURVEY,
        "latest answer before as_of",
    ),
    Trait(
        "survey_uses_mobile_payments",
        "string",
        "surveys",
        "uses mobile payments, as stated",
        _SURVEY,
        "latest answer before as_of",
    ),
    # voice of the customer
    Trait("posts_total", "int64", "social", "social posts and reviews", _SOCIAL),
    Trait("reviews_total", "int64", "social", "reviews", "events: review_posted"),
    Trait("avg_rating", "float64", "social", "mean review rating", "events: review_posted (properties.rating)"),
    Trait(
        "followers",
        "int64",
        "social",
        "largest follower count reported with a post",
        "events: social_post, review_posted (properties.followers)",
    ),
    Trait("last_post_at", "timestamp", "social", "last post or review", _SOCIAL),
    # what the person writes (calls' summaries, reviews, posts), scored by cx360.text
    Trait("texts_total", "int64", "voice", "texts written or told: call summaries, reviews, posts", _TEXTS),
    Trait("share_negative", "float64", "voice", "share of those texts with a negative tone", _TEXTS),
    Trait("last_negative_at", "timestamp", "voice", "last text with a negative tone", _TEXTS),
    Trait(
        "sentiment_trend",
        "float64",
        "voice",
        f"mean tone (-1..1) of the last {RECENT_DAYS} days minus the mean tone before",
        _TEXTS,
    ),
    Trait(
        "text_complaints",
        "int64",
        "voice",
        "texts that are complaints (counted by topic in profile_breakdowns)",
        _TEXTS,
    ),
    Trait(
        "intent_product", "string", "voice", "product named by the latest text that signals a coming purchase", _TEXTS
    ),
    Trait("intent_score", "float64", "voice", "purchase-intent score of that text, 0 to 1", _TEXTS),
    Trait("intent_at", "timestamp", "voice", "when that text was written", _TEXTS),
    # consent, by the one policy check (cx360.privacy.consent; docs/privacy.md)
    Trait(
        "consents",
        "string",
        "consent",
        "what the person's data may be used for: purposes and purpose:channel pairs, '|'-separated "
        "(e.g. analytics|marketing:email|profiling), each purpose's default applied",
        "consents, [privacy.purposes]",
        "latest change before as_of",
    ),
)

# Per-key counts and sums, kept long in `profile_breakdowns` (profile_id, breakdown, key, value).
BREAKDOWNS: dict[str, str] = {
    "calls_by_reason": "contact-centre calls per reason (all history)",
    "offers_rejected_by_offer": "explicit rejections per offer (all history)",
    "events_by_channel": "web and app events per channel, recently",
    "spend_by_category": "card spend per category (all history)",
    "recurring_interest": f"weeks with a payment, of the last {RECURRING_WEEKS}, per recurring category",
    "top_districts": "card payments in the person's three most frequent districts",
    "visits_by_place": "visits per place (all history)",
    "complaints_by_topic": "complaint texts per topic (all history; topics in docs/text.md)",
}

GROUPS: tuple[str, ...] = tuple(dict.fromkeys(t.group for t in TRAITS))
BY_NAME: dict[str, Trait] = {t.name: t for t in TRAITS}


def markdown() -> str:
    """docs/traits.md (a test keeps the two in step)."""
    parts = [
        "# Profile traits",
        "",
        "Generated from `cx360.trait_catalog` (also listed by `cx360 traits`). Every trait is computed",
        "as of a point in time (`cx360 profile build --as-of DATE`): nothing at or after `as_of` is read,",
        f'so models can train on past profiles without leakage. "Recently" means the last {RECENT_DAYS} days.',
        "",
    ]
    for group in GROUPS:
        parts += [f"## {group}", "", "| trait | type | meaning | reads | window |", "|---|---|---|---|---|"]
        parts += [
            f"| `{t.name}` | {t.dtype} | {t.doc} | {t.sources} | {t.window} |" for t in TRAITS if t.group == group
        ]
        parts.append("")
    parts += ["## Breakdowns (`profile_breakdowns`)", "", "| breakdown | meaning |", "|---|---|"]
    parts += [f"| `{n}` | {d} |" for n, d in BREAKDOWNS.items()]
    return "\n".join(parts) + "\n"
