"""The canonical data model that every stage reads and writes.

Tables are declared as data: each column has an Ibis type, a PII mark (so that
privacy rules can find personal data without a list kept elsewhere) and a doc
line that docs/data-model.md repeats.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.schema as sch

from cx360.trait_catalog import TRAITS


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str
    doc: str
    pii: bool = False


# Typed identifiers, normalised at ingest (see cx360.identifiers).
_CONTACT_AND_ACCOUNT: tuple[Column, ...] = (
    Column("email", "string", "e-mail address, trimmed and lower-cased", pii=True),
    Column("phone", "string", "phone number in E.164 (+79161234567)", pii=True),
    Column("customer_no", "string", "customer number in a source system, trimmed, upper-cased", pii=True),
    Column("card_token", "string", "tokenised payment card, trimmed, upper-cased", pii=True),
    Column("device_id", "string", "mobile device id, trimmed, lower-cased", pii=True),
    Column("cookie_id", "string", "web cookie / anonymous id, trimmed", pii=True),
    Column("social_handle", "string", "social network handle, lower-cased, without '@'", pii=True),
)
# Added after the others, so it ends the tables that hold identifiers (stored tables gain it in place).
DOCUMENT = Column(
    "document",
    "string",
    "identity document (passport, INN, SNILS, SSN, tax id) as SCHEME:NUMBER, checked with python-stdnum",
    pii=True,
)
IDENTIFIERS: tuple[Column, ...] = (*_CONTACT_AND_ACCOUNT, DOCUMENT)
IDENTIFIER_KINDS: tuple[str, ...] = tuple(c.name for c in IDENTIFIERS)

# Attributes a record may carry; anything else a source maps goes to `extra`.
ATTRIBUTES: tuple[Column, ...] = (
    Column("first_name", "string", "given name", pii=True),
    Column("middle_name", "string", "patronymic or middle name", pii=True),
    Column("last_name", "string", "family name", pii=True),
    Column("birth_date", "date", "date of birth", pii=True),
    Column("gender", "string", "gender as the source states it"),
    Column("address", "string", "street address", pii=True),
    Column("city", "string", "city"),
    Column("postcode", "string", "postal code", pii=True),
    Column("district", "string", "district of residence"),
    Column("country", "string", "country"),
    Column("language", "string", "preferred language"),
    Column("segment", "string", "segment or tier the source assigns"),
    Column("registered_at", "timestamp", "when the customer joined this source"),
)
ATTRIBUTE_NAMES: tuple[str, ...] = tuple(c.name for c in ATTRIBUTES)
# Held in the PII vault, not in `records` and `profiles`, when [privacy] vault is on.
PII_ATTRIBUTE_NAMES: tuple[str, ...] = tuple(c.name for c in ATTRIBUTES if c.pii)

_LINEAGE = (
    Column("batch_id", "string", "ingest batch that loaded the row (see ingest_batches)"),
    Column("row_number", "int64", "1-based row (line, record) number in the batch input"),
    Column("ingested_at", "timestamp", "when the batch was loaded"),
)

RECORDS: tuple[Column, ...] = (
    Column("source", "string", "source name from cx360.toml"),
    Column("record_id", "string", "the source's own key for the entity"),
    *_CONTACT_AND_ACCOUNT,
    *ATTRIBUTES,
    Column("extra", "string", "other mapped attributes, as a JSON object", pii=True),
    Column("updated_at", "timestamp", "when the source last changed the record (if it says)"),
    Column("record_hash", "string", "hash of source, record_id and content: the idempotency key"),
    *_LINEAGE,
    DOCUMENT,
)

EVENTS: tuple[Column, ...] = (
    Column("event_id", "string", "idempotency key: the source's id, or a hash of the source row"),
    Column("ts", "timestamp", "when it happened (UTC)"),
    Column("source", "string", "source name from cx360.toml"),
    Column("name", "string", "canonical event name (see EVENT_NAMES)"),
    Column("channel", "string", "channel it happened in (web, mobile_app, branch, call_centre, ...)"),
    *_CONTACT_AND_ACCOUNT,
    Column("amount", "float64", "money amount, when the event has one"),
    Column("properties", "string", "other mapped properties, as a JSON object", pii=True),
    *_LINEAGE,
    DOCUMENT,
)

CONSENTS: tuple[Column, ...] = (
    Column("consent_id", "string", "idempotency key: the source's id, or a hash of the change"),
    Column("ts", "timestamp", "when the person gave or withdrew it (UTC): the order that counts, not arrival"),
    Column("source", "string", "source name from cx360.toml, or `api` / `cli`"),
    Column("profile_id", "string", "the person, when the change named a profile rather than an identifier"),
    *_CONTACT_AND_ACCOUNT,
    Column("purpose", "string", "purpose declared in cx360.toml ([privacy.purposes])"),
    Column("channel", "string", "channel of a per-channel purpose (email, sms, push, call, ...); empty otherwise"),
    Column("status", "string", "granted, denied or withdrawn"),
    Column("legal_basis", "string", "the legal basis given (consent, contract, legitimate_interest, ...)"),
    Column("evidence", "string", "what proves it: a form, a recording, a key id", pii=True),
    *_LINEAGE,
    DOCUMENT,
)

QUARANTINE: tuple[Column, ...] = (
    Column("source", "string", "source name"),
    Column("batch_id", "string", "ingest batch"),
    Column("row_number", "int64", "1-based row number in the batch input"),
    Column("raw", "string", "the raw row as read, as JSON (or the raw line when it could not be parsed)", pii=True),
    Column("reasons", "string", "every reason the row was rejected, separated by '; '"),
    Column("quarantined_at", "timestamp", "when"),
)

DROPPED_IDENTIFIERS: tuple[Column, ...] = (
    Column("source", "string", "source name"),
    Column("batch_id", "string", "ingest batch that loaded the row"),
    Column("row_number", "int64", "1-based row number in the batch input"),
    Column("entity", "string", "records or events: where the row itself was loaded"),
    Column("key", "string", "the loaded row's record_id or event_id"),
    Column("kind", "string", "identifier kind that was dropped (email, phone, ...)"),
    Column("value", "string", "the value as read", pii=True),
    Column("reason", "string", "why it is not a usable identifier"),
    Column("dropped_at", "timestamp", "when"),
)

INGEST_BATCHES: tuple[Column, ...] = (
    Column("batch_id", "string", "hash of source name, mapping and input content"),
    Column("source", "string", "source name"),
    Column("input", "string", "file path or table the batch was read from"),
    Column("status", "string", "'started' or 'committed'; rows of uncommitted batches are removed on the next run"),
    Column("started_at", "timestamp", "when the batch started"),
    Column("finished_at", "timestamp", "when it committed"),
    Column("rows_read", "int64", "rows read from the input"),
    Column("rows_loaded", "int64", "rows written to records or events"),
    Column("rows_quarantined", "int64", "rows written to quarantine"),
    Column("rows_duplicate", "int64", "rows already present (same event id or record hash)"),
    Column("rows_suppressed", "int64", "rows of erased people, not loaded (see docs/privacy.md)"),
)

IDENTITY_LINKS: tuple[Column, ...] = (
    Column("left", "string", "node key: `record:SOURCE:ID` or `KIND:VALUE` (e.g. `email:ivan@mail.ru`)", pii=True),
    Column("right", "string", "the other node key", pii=True),
    Column("rule", "string", "record_identifier, event_cooccurrence, probabilistic"),
    Column("confidence", "float64", "1.0 for deterministic links; the match probability for probabilistic ones"),
    Column("evidence", "string", "why: the source and kind, the events seen, or which fields agreed (JSON)"),
    Column("status", "string", "active, or blocked (by a user, a blocked value, or a shared identifier)"),
    Column("blocked_reason", "string", "why a link is blocked"),
    Column("created_at", "timestamp", "first run that found the link"),
)

IDENTITY_MAP: tuple[Column, ...] = (
    Column("node", "string", "node key", pii=True),
    Column("kind", "string", "record, or an identifier kind"),
    Column("profile_id", "string", "the person the node belongs to; stable across runs"),
    Column("first_seen_at", "timestamp", "first run that placed the node"),
)

PROFILE_IDS: tuple[Column, ...] = (
    Column("profile_id", "string", "a profile id ever issued"),
    Column("created_at", "timestamp", "when it was issued: on a merge the oldest id survives"),
    Column("status", "string", "active, or merged (into merged_into)"),
    Column("merged_into", "string", "the surviving id, for a merged profile"),
    Column("updated_at", "timestamp", "last change"),
)

IDENTITY_OVERRIDES: tuple[Column, ...] = (
    Column("action", "string", "block (keep two nodes apart) or unblock"),
    Column("left", "string", "node key", pii=True),
    Column("right", "string", "node key", pii=True),
    Column("by", "string", "who"),
    Column("reason", "string", "why"),
    Column("at", "timestamp", "when"),
)

PROFILES: tuple[Column, ...] = (
    Column("profile_id", "string", "the person"),
    *ATTRIBUTES,
    Column(
        "attribute_sources",
        "string",
        "for each attribute, the record it was taken from and the rule that chose it (JSON)",
    ),
    Column("identifiers", "string", "every identifier of the person, by kind (JSON)", pii=True),
    Column("records", "int64", "source records merged into the profile"),
    Column("sources", "string", "sources that know the person, comma-separated"),
)

PROFILE_EVENTS: tuple[Column, ...] = (
    Column("profile_id", "string", "the person the event is attributed to (through its strongest known identifier)"),
    Column("event_id", "string", "the event (see events)"),
    Column("ts", "timestamp", "when it happened (UTC)"),
    Column("source", "string", "source name"),
    Column("name", "string", "canonical event name"),
    Column("channel", "string", "channel"),
    Column("amount", "float64", "money amount"),
    Column("properties", "string", "other mapped properties, as a JSON object", pii=True),
)

PROFILE_TRAITS: tuple[Column, ...] = (
    Column("profile_id", "string", "the person"),
    Column("as_of", "timestamp", "the point in time the traits describe: nothing at or after it was read"),
    *(Column(t.name, t.dtype, t.doc) for t in TRAITS),
)

PROFILE_CONSENTS: tuple[Column, ...] = (
    Column("profile_id", "string", "the person the consent change belongs to (see cx360.privacy.consent.resolved)"),
    Column("consent_id", "string", "the change (see consents)"),
    Column("ts", "timestamp", "when it happened"),
    Column("purpose", "string", "purpose"),
    Column("channel", "string", "channel; empty: every channel of the purpose"),
    Column("status", "string", "granted, denied or withdrawn"),
    Column("legal_basis", "string", "legal basis"),
    Column("source", "string", "where the change came from"),
)

PROFILE_BREAKDOWNS: tuple[Column, ...] = (
    Column("profile_id", "string", "the person"),
    Column("breakdown", "string", "which breakdown (see docs/traits.md)"),
    Column("key", "string", "the category, reason, offer, channel, district or place"),
    Column("value", "float64", "the count or amount for that key"),
)

TEXT_SCORES: tuple[Column, ...] = (
    Column("event_id", "string", "the call, review or post whose text was scored"),
    Column("language", "string", "ru, en, zh, other, or unknown (empty text)"),
    Column("sentiment", "string", "negative, neutral or positive (NULL when the language is not supported)"),
    Column("confidence", "float64", "the sentiment model's confidence"),
    Column("complaint", "boolean", "the text is a complaint"),
    Column("topics", "string", "topics found, ';'-separated"),
    Column("intent", "float64", "purchase-intent score, 0 to 1"),
    Column("intent_product", "string", "the product a purchase intent names"),
    Column("scored_at", "timestamp", "when it was scored: texts are scored once, incrementally"),
)

PROFILE_SCORES: tuple[Column, ...] = (
    Column("profile_id", "string", "the person"),
    Column("as_of", "timestamp", "the point in time the scores describe"),
    Column("repeat_purchase_days", "float64", "BG/NBD frequency: days with a card payment after the first one"),
    Column("recency_weeks", "float64", "BG/NBD recency: weeks from the first to the last payment day"),
    Column("age_weeks", "float64", "BG/NBD T: weeks from the first payment day to as_of"),
    Column("avg_repeat_spend", "float64", "mean spend of the repeat payment days (Gamma-Gamma input)"),
    Column("expected_purchases_12m", "float64", "expected payment days in the next 12 months (BG/NBD)"),
    Column("p_alive", "float64", "probability that the customer is still active (BG/NBD)"),
    Column("expected_spend", "float64", "expected spend per payment day (Gamma-Gamma)"),
    Column("clv_12m", "float64", "lifetime value over 12 months, discounted 1% a month"),
    Column("pagerank", "float64", "PageRank in the who-mentions-whom graph"),
    Column("reach", "int64", "people within two hops who pay attention to the customer"),
    Column("influence_score", "float64", "PageRank and follower-weighted reach combined, 0 to 1"),
    Column("network_clv", "float64", "influence-weighted lifetime value of the people the customer reaches"),
    Column("value", "float64", "clv_12m + network_clv"),
    Column("value_tier", "string", "platinum (top 5% by value), gold (next 15%), silver (next 30%), bronze"),
)

SEGMENTS: tuple[Column, ...] = (
    Column("name", "string", "segment name: from cx360.toml, or rfm_* and cluster_* for the built-in ones"),
    Column("kind", "string", "custom (declared in cx360.toml), rfm or cluster"),
    Column("description", "string", "what the segment means (generated for clusters from their distinctive traits)"),
    Column("definition", "string", "the condition evaluated, as written"),
    Column("size", "int64", "profiles in the segment at the last evaluation (empty when it failed)"),
    Column("evaluated_at", "timestamp", "when the last evaluation ran"),
    Column("as_of", "timestamp", "the profile_traits as_of it was evaluated on; stale once profiles are rebuilt"),
    Column("status", "string", "ok, or failed (see error): a failed segment is never shown as ok"),
    Column("error", "string", "why the last evaluation failed"),
)

SEGMENT_MEMBERS: tuple[Column, ...] = (
    Column("segment", "string", "segment name"),
    Column("profile_id", "string", "the person"),
    Column("entered_at", "timestamp", "as_of of the evaluation that first found the person in the segment"),
    Column("exited_at", "timestamp", "as_of of the evaluation that no longer found them; empty while a member"),
)

PROFILE_ARCHETYPES: tuple[Column, ...] = (
    Column("profile_id", "string", "the person"),
    Column("as_of", "timestamp", "the profile_traits as_of the scores were computed from"),
    Column(
        "digital_sophistication",
        "float64",
        "0 (no digital use) to 1 (every device, channel and service); see docs/archetypes.md",
    ),
    Column("data_sharing", "float64", "willingness to share personal data, 0 (refuses) to 1 (shares everywhere)"),
    Column("archetype", "string", "analog, wannabe, mainstreamer, paranoid, chameleon or nomad"),
    Column(
        "archetype_from",
        "string",
        "survey_model (learned from labelled survey answers) or rules (the grid of the two scores)",
    ),
)

ARCHETYPE_HISTORY: tuple[Column, ...] = (
    Column("profile_id", "string", "the person"),
    Column("archetype", "string", "the archetype of this stay"),
    Column("entered_at", "timestamp", "as_of of the archetypes run that first placed the person in it"),
    Column("exited_at", "timestamp", "as_of of the run that placed them elsewhere; empty while current"),
)

MENTIONS: tuple[Column, ...] = (
    Column("event_id", "string", "the post or review (see events)"),
    Column("ts", "timestamp", "when it was posted"),
    Column("term", "string", "the watch-list term it mentions ([listening] in cx360.toml)"),
    Column("term_kind", "string", "brand or keyword"),
    Column("platform", "string", "where it was posted (the post's `platform` property)"),
    Column("social_handle", "string", "its author's handle, normalised", pii=True),
    Column("profile_id", "string", "the profile the post reached through identity; empty: none"),
    Column("customer", "boolean", "the author is a customer: a profile that a CRM record backs"),
    Column("sentiment", "string", "negative, neutral or positive (see text_scores)"),
    Column("intent", "float64", "purchase-intent score, 0 to 1"),
    Column("intent_product", "string", "the product a purchase intent names"),
    Column("followers", "int64", "the author's followers when they posted"),
)

PROSPECTS: tuple[Column, ...] = (
    Column("social_handle", "string", "a post author who is not a customer, normalised", pii=True),
    Column("profile_id", "string", "their profile when identity made one without a CRM record; empty: none"),
    Column("platform", "string", "where they posted last"),
    Column("posts", "int64", "posts and reviews they wrote"),
    Column("mentions", "int64", "of those, the ones that mention a watch-list term"),
    Column("first_at", "timestamp", "their first post"),
    Column("last_at", "timestamp", "their latest post"),
    Column("share_negative", "float64", "share of their scored posts that are negative"),
    Column("intent", "float64", "the highest purchase intent of their posts"),
    Column("intent_product", "string", "the product their most intent-laden post names"),
    Column("followers", "int64", "their most recent follower count"),
)

PROFILE_RFM: tuple[Column, ...] = (
    Column("profile_id", "string", "the person"),
    Column("as_of", "timestamp", "the profile_traits as_of"),
    Column("r_score", "int64", "recency quintile, 5 = most recent transaction (from days_since_txn)"),
    Column("f_score", "int64", "frequency quintile, 5 = most transactions (from txn_count)"),
    Column("m_score", "int64", "monetary quintile, 5 = highest spend (from spend_total)"),
    Column("rfm_segment", "string", "champions, loyal, potential, new, at_risk, hibernating, or no_transactions"),
)

PROFILE_CLUSTERS: tuple[Column, ...] = (
    Column("profile_id", "string", "the person"),
    Column("as_of", "timestamp", "the profile_traits as_of"),
    Column("cluster", "int64", "behavioural cluster, 1 = the largest (k-means on standardised traits)"),
    Column(
        "cluster_name", "string", "the cluster's most distinctive traits, e.g. 'high app_events_90d, low age_years'"
    ),
)

CHURN_SCORES: tuple[Column, ...] = (
    Column("profile_id", "string", "the person"),
    Column("as_of", "timestamp", "the traits as_of that was scored"),
    Column("churn_risk", "float64", "calibrated probability of no activity in the model's horizon after as_of"),
    Column("churn_reasons", "string", "the traits that raise this person's risk most, '; '-separated"),
    Column("horizon_days", "int64", "the horizon the model was trained for"),
    Column("scored_at", "timestamp", "when"),
)

DECISIONS: tuple[Column, ...] = (
    Column("decision_id", "string", "the decision: profile, as_of and run"),
    Column("profile_id", "string", "the person"),
    Column("decided_at", "timestamp", "when `cx360 decide` ran"),
    Column("as_of", "timestamp", "the point in time decided for: history, caps and consents before it"),
    Column("offer", "string", "the offer chosen; empty: none"),
    Column("channel", "string", "the channel to send it through"),
    Column("send_at", "timestamp", "when to send it (UTC): the person's best hour outside quiet hours"),
    Column("expected_value", "float64", "uplift (or propensity, see model) × value × priority ([decisions] objective)"),
    Column("propensity", "float64", "calibrated probability that the person accepts"),
    Column("probability", "float64", "probability that the policy chose this action (for off-policy evaluation)"),
    Column("explored", "boolean", "chosen at random among the eligible actions, not as the best"),
    Column("reasons", "string", "why this action, its channel and hour; or why none"),
    Column("candidates", "string", "every candidate as JSON: offer, channel, scores, the rule that held it back"),
    Column("status", "string", "planned, sent, or suppressed at send time (see suppressed_by)"),
    Column("suppressed_by", "string", "the rule that stopped the send (consent withdrawn since the decision)"),
    Column("response", "string", "the person's answer to a sent decision: the offer event that came back, if any"),
    Column("responded_at", "timestamp", "when the answer came (within 30 days of the send)"),
    Column(
        "uplift", "float64", "propensity minus the chance of accepting uncontacted, for an offer with a control group"
    ),
    Column("model", "string", "what ranked the chosen action: uplift (the offer has a control group) or propensity"),
)

TABLE_VERSIONS: tuple[Column, ...] = (
    Column("table", "string", "a table of this workspace"),
    Column("stage", "string", "the pipeline stage that last wrote it (see `cx360 status`)"),
    Column("version", "int64", "how many times a stage has written it: 1, 2, ..."),
    Column("written_at", "timestamp", "when the stage wrote it"),
    Column("as_of", "timestamp", "the point in time its content describes (empty for ingested and identity tables)"),
    Column(
        "inputs", "string", "the version of each table the stage read, as a JSON object: newer inputs make it stale"
    ),
    Column("rows", "int64", "rows in the table after the write"),
)

TABLES: dict[str, tuple[Column, ...]] = {
    "records": RECORDS,
    "events": EVENTS,
    "consents": CONSENTS,
    "quarantine": QUARANTINE,
    "dropped_identifiers": DROPPED_IDENTIFIERS,
    "ingest_batches": INGEST_BATCHES,
    "identity_links": IDENTITY_LINKS,
    "identity_map": IDENTITY_MAP,
    "profile_ids": PROFILE_IDS,
    "identity_overrides": IDENTITY_OVERRIDES,
    "profiles": PROFILES,
    "profile_events": PROFILE_EVENTS,
    "profile_traits": PROFILE_TRAITS,
    "profile_consents": PROFILE_CONSENTS,
    "profile_breakdowns": PROFILE_BREAKDOWNS,
    "profile_scores": PROFILE_SCORES,
    "text_scores": TEXT_SCORES,
    "profile_archetypes": PROFILE_ARCHETYPES,
    "archetype_history": ARCHETYPE_HISTORY,
    "profile_rfm": PROFILE_RFM,
    "profile_clusters": PROFILE_CLUSTERS,
    "churn_scores": CHURN_SCORES,
    "segments": SEGMENTS,
    "segment_members": SEGMENT_MEMBERS,
    "mentions": MENTIONS,
    "prospects": PROSPECTS,
    "decisions": DECISIONS,
    "table_versions": TABLE_VERSIONS,
}

# Tables written per batch: their rows carry batch_id and are removed if the batch never committed.
BATCH_TABLES: tuple[str, ...] = ("records", "events", "consents", "quarantine", "dropped_identifiers")
# Tables rebuilt whole by every run of their stage: when cx360 adds a column, they are recreated.
DERIVED_TABLES: tuple[str, ...] = (
    "profile_events",
    "profile_traits",
    "profile_consents",
    "profile_breakdowns",
    "profile_scores",
    "profile_archetypes",
    "profile_rfm",
    "profile_clusters",
    "churn_scores",
    "mentions",
    "prospects",
)


def ibis_schema(table: str) -> sch.Schema:
    return ibis.schema({c.name: dt.dtype(c.dtype) for c in TABLES[table]})


def pii_columns(table: str) -> list[str]:
    return [c.name for c in TABLES[table] if c.pii]


# Canonical event names: a source maps its own names onto these; anything else is quarantined
# unless the workspace declares it in [events].custom_names.
EVENT_NAMES: dict[str, str] = {
    # web and app analytics
    "session_started": "a web or app session began",
    "page_viewed": "a page or app screen was viewed",
    "login": "a customer logged in (joins a cookie or device to a customer)",
    "form_started": "an application form was opened",
    "form_abandoned": "a form was left unfinished (properties.field: where)",
    "form_submitted": "a form was submitted",
    "login_failed": "a login attempt failed",
    "app_error": "the app or the website showed an error",
    "alias": "two identifiers were declared one person (a Segment alias call: properties.previous_id)",
    "group": "a person was associated with a group: a company, an account (properties.group_id, traits)",
    # marketing automation
    "offer_made": "an offer was presented (properties.offer, channel)",
    "offer_accepted": "an offer was accepted",
    "offer_rejected": "an offer was explicitly rejected",
    "offer_ignored": "an offer got no response within its window",
    "application_declined": "the organisation declined an application (e.g. a loan)",
    "offer_held_out": "a person held out of a campaign as its control group (properties.offer, converted)",
    # transactions
    "card_payment": "a card payment at a point of sale (properties.mcc, district)",
    "atm_withdrawal": "a cash withdrawal at an ATM",
    "transfer": "a money transfer",
    "transfer_pending": "a transfer held for checks, not yet delivered",
    "card_declined": "a card payment was declined (properties.merchant)",
    "fee_charged": "a fee was charged (amount, properties.merchant)",
    # contact centre
    "call": "a contact-centre call (properties.reason, text)",
    "complaint": "a formal complaint (properties.topic, status, closed_at)",
    # voice of the customer
    "review_posted": "a review of the organisation (properties.text, rating)",
    "social_post": "a social-network post (properties.text, mentions, followers)",
    "survey_answered": "a survey response (properties: the answers)",
    # physical
    "store_visit": "a visit to a branch, store or mall (properties.dwell_minutes)",
    # consent
    "consent_changed": "a consent was given or withdrawn (properties.purpose, status)",
}


def markdown() -> str:
    """The tables as Markdown, for docs/data-model.md (a test keeps the two in step)."""
    parts = []
    for name, columns in TABLES.items():
        parts.append(f"### `{name}`\n\n| column | type | personal data | meaning |\n|---|---|---|---|")
        parts += [f"| `{c.name}` | {c.dtype} | {'yes' if c.pii else ''} | {c.doc} |" for c in columns]
        parts.append("")
    parts.append("### Event names\n\n| name | meaning |\n|---|---|")
    parts += [f"| `{n}` | {d} |" for n, d in EVENT_NAMES.items()]
    return "\n".join(parts) + "\n"
