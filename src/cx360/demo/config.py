"""The demo workspace file: one source per export of the synthetic bank, each mapped as a data
engineer would map it."""

WORKSPACE_TOML = """\
# The synthetic bank built by `cx360 demo`. Its ground truth is in truth/ (never read by cx360).

[workspace]
name = "demo-bank"
default_region = "RU"
timezone = "UTC"  # the generator writes every time on one clock, UTC (most of them with a Z)

[engine]
kind = "duckdb"
path = "warehouse.duckdb"

[identity]
source_priority = ["crm_core", "crm_cards"]
own_domains = ["demobank.ru"]

# Audiences, evaluated after every profile build (plus the built-in RFM cells and behavioural clusters).
[[segments]]
name = "big_spenders_gone_quiet"
description = "spent over 20,000 by card but nothing in the last 30 days"
where = "spend_total > 20000 and days_since_txn > 30"

[[segments]]
name = "rejected_auto_loan"
description = "rejected an auto-loan offer in the last 180 days"
events = { name = "offer_rejected", where = "properties.offer = 'auto_loan'", within_days = 180 }

[[segments]]
name = "sms_card_offer"
description = "card payers to offer a card upgrade by SMS: only those who consent to marketing by SMS"
where = "txn_count > 0"
purpose = "marketing"
channel = "sms"

# From a loan page on the web to a submitted form, on any channel, within a week.
[[funnels]]
name = "loan_application"
description = "a loan page, then the loan form, then a submission"
steps = ["name = 'page_viewed' and path in ('/mortgage', '/auto-loan')", "name = 'form_started'", "name = 'form_submitted'"]
within = "7d"
breakdown = "channel"

# Social listening: the bank's brand and the products it sells, in posts and reviews.
[listening]
brands = ["demobank"]
keywords = ["ипотек", "вклад", "кэшбэк", "credit card"]
high_intent = 0.5
export_purpose = "prospecting"

# Following up public posts that show interest in a product: the handle may go to the CRM.
[privacy.purposes.prospecting]
default = "opt-out"
description = "following up public posts that show interest in a product"
identifiers = ["social_handle"]

# The contact centre's routing table: the first route whose conditions hold takes the call.
[calls]
default_queue = "general"
[[calls.routes]]
reason = "close_account"
queue = "retention"
skills = ["retention_offers"]
[[calls.routes]]
min_churn_risk = 0.6
value_tier = ["platinum", "gold"]
queue = "retention"
[[calls.routes]]
language = "en"
queue = "english_desk"
[[calls.routes]]
reason = "card_blocked"
queue = "cards"
[[calls.routes]]
reason = "fees"
queue = "billing"
[[calls.routes]]
reason = "app_problem"
queue = "digital"
[[calls.routes]]
reason = "loan_question"
queue = "lending"
[[calls.routes]]
reason = ["complaint_staff", "complaint_followup"]
queue = "complaints"
[[calls.routes]]
reason = "transfer_issue"
queue = "payments"

# The next best action (`cx360 decide`): the offer catalogue and the contact policy.
[contact_policy]
quiet_hours = [21, 9]  # on each person's clock: their city's zone; without a city, the workspace's (UTC)
person_time_zone = "city"
zones = { Moscow = "Europe/Moscow", Yekaterinburg = "Asia/Yekaterinburg", Novosibirsk = "Asia/Novosibirsk", Vladivostok = "Asia/Vladivostok" }
max_contacts = { count = 3, days = 7 }
[contact_policy.channels.email]
cap = { count = 1, days = 7 }
[contact_policy.channels.sms]
cap = { count = 1, days = 7 }
[contact_policy.channels.call_centre]
consent = "call"
cap = { count = 1, days = 30 }
hours = [10, 19]

[[offers]]
name = "auto_loan"
description = "a car loan; never again within 180 days of a rejection or a declined application"
where = "age_years >= 21"
value = 400
channels = ["email", "sms", "call_centre"]
cooldown_days = 180

[[offers]]
name = "credit_card"
value = "50 + spend_90d * 0.01"
channels = ["email", "sms"]

[[offers]]
name = "mortgage"
where = "age_years between 25 and 60"
value = 1500
channels = ["email", "call_centre"]
priority = 0.8

# Core banking CRM: Cyrillic names, Russian date and phone formats.
[[sources]]
name = "crm_core"
kind = "csv"
path = "data/crm_core.csv"
delimiter = ";"
[sources.records]
record_id = "client_id"
updated_at = { column = "updated", type = "timestamp", formats = ["%d.%m.%Y %H:%M"] }
identifiers = { customer_no = "client_id", phone = "mobile", email = "email", social_handle = "social" }
attributes = { last_name = "fam", first_name = "imya", middle_name = "otchestvo", birth_date = { column = "dob", type = "date", formats = ["%d.%m.%Y"] }, address = "address", district = "district", home_phone = "home_phone", products = "products" }

# Card business CRM: Latin transliterations, ISO dates, card tokens.
[[sources]]
name = "crm_cards"
kind = "csv"
path = "data/crm_cards.csv"
[sources.records]
record_id = "customer_ref"
updated_at = { column = "last_modified", type = "timestamp" }
identifiers = { customer_no = "customer_ref", phone = "phone", email = "email", card_token = "card_token" }
attributes = { first_name = "first_name", last_name = "last_name", birth_date = { column = "birth_date", type = "date" }, address = "address", city = "city", products = "card_products" }

# Marketing automation: offers per channel and how they were answered.
[[sources]]
name = "marketing"
kind = "csv"
path = "data/marketing.csv"
[sources.events]
event_id = "campaign_event_id"
timestamp = { column = "sent_at", type = "timestamp", formats = ["%Y-%m-%d %H:%M:%S"] }
name = { column = "outcome", values = { accepted = "offer_accepted", rejected = "offer_rejected", ignored = "offer_ignored", declined = "application_declined", held_out = "offer_held_out" } }
channel = "channel"
identifiers = { customer_no = "client" }
properties = { offer = "offer_code", converted = "converted" }

# Web analytics (Segment-like JSON lines): a login joins the cookie to the customer.
[[sources]]
name = "web"
kind = "jsonl"
path = "data/web/*.jsonl"
[sources.events]
event_id = "message_id"
timestamp = { column = "timestamp", type = "timestamp" }
name = { column = "type", values = { page = "page_viewed" } }
channel = { value = "web" }
identifiers = { cookie_id = "anonymous_id", customer_no = "user_id" }
properties = { path = "properties.path", form = "properties.form", field = "properties.field" }

# Mobile app events, failed logins and errors among them.
[[sources]]
name = "app"
kind = "parquet"
path = "data/app_events.parquet"
[sources.events]
event_id = "event_uuid"
timestamp = "occurred_at"
name = { column = "event", values = { screen_view = "page_viewed", transfer_form_opened = "form_started", transfer_form_sent = "form_submitted" } }
channel = { value = "mobile_app" }
identifiers = { device_id = "device", customer_no = "customer" }
properties = { screen = "screen" }

# Card transactions: POS payments, ATM withdrawals, declined payments and fees charged.
[[sources]]
name = "cards"
kind = "parquet"
path = "data/card_transactions.parquet"
[sources.events]
event_id = "txn_id"
timestamp = "ts"
name = { column = "txn_type", values = { POS = "card_payment", ATM = "atm_withdrawal", DECLINED = "card_declined", FEE = "fee_charged" } }
channel = { column = "txn_type", values = { POS = "pos", ATM = "atm", DECLINED = "pos", FEE = "bank" } }
amount = "amount"
identifiers = { card_token = "card_token" }
properties = { mcc = "mcc", category = "category", merchant = "merchant", district = "district", currency = "currency" }

# Contact centre calls.
[[sources]]
name = "contact_centre"
kind = "csv"
path = "data/contact_centre.csv"
[sources.events]
event_id = "call_id"
timestamp = { column = "started_at", type = "timestamp" }
name = { value = "call" }
channel = { value = "call_centre" }
identifiers = { customer_no = "customer_number", phone = "caller_phone" }
properties = { reason = "reason_code", duration_sec = { column = "duration_sec", type = "int" }, text = "summary", queue = "queue", outcome = "outcome" }

# Complaints: opened, and closed (or still open).
[[sources]]
name = "complaints"
kind = "csv"
path = "data/complaints.csv"
[sources.events]
event_id = "complaint_id"
timestamp = { column = "opened_at", type = "timestamp" }
name = { value = "complaint" }
channel = { value = "branch" }
identifiers = { customer_no = "client" }
properties = { topic = "topic", status = "status", closed_at = { column = "closed_at", type = "timestamp" } }

# Reviews and social posts.
[[sources]]
name = "social"
kind = "jsonl"
path = "data/social.jsonl"
[sources.events]
event_id = "post_id"
timestamp = { column = "created", type = "timestamp" }
name = { column = "kind", values = { review = "review_posted", post = "social_post" } }
channel = { value = "social" }
identifiers = { social_handle = "author" }
properties = { text = "text", platform = "platform", followers = { column = "followers", type = "int" }, rating = { column = "rating", type = "int" } }

# Survey answers, identified by e-mail.
[[sources]]
name = "surveys"
kind = "csv"
path = "data/surveys.csv"
[sources.events]
event_id = "response_id"
timestamp = { column = "submitted", type = "timestamp" }
name = { value = "survey_answered" }
channel = { value = "survey" }
identifiers = { email = "respondent_email" }
properties = { preferred_device = "preferred_device", preferred_channel = "preferred_channel", ok_to_share_data = { column = "ok_to_share_data", type = "int" }, uses_mobile_payments = "uses_mobile_payments", archetype = "archetype" }

# Shopping-mall wifi: visits with the phone used to sign in.
[[sources]]
name = "mall"
kind = "csv"
path = "data/mall_visits.csv"
delimiter = ";"
[sources.events]
event_id = "visit_id"
timestamp = { column = "entered", type = "timestamp" }
name = { value = "store_visit" }
channel = { value = "mall" }
identifiers = { device_id = "mac_hash", phone = "wifi_phone" }
properties = { mall = "mall", left_at = { column = "left", type = "timestamp" }, dwell_minutes = { column = "dwell_minutes", type = "int" }, home_district = "home_district" }

# The marketing system's consent log: opt-ins and withdrawals per channel, refusals of profiling.
[[sources]]
name = "preferences"
kind = "csv"
path = "data/preferences.csv"
[sources.consents]
timestamp = { column = "changed_at", type = "timestamp" }
purpose = "purpose"
channel = { column = "channel", values = { phone = "call" } }
status = { column = "opt", values = { Y = "granted", N = "denied", W = "withdrawn" } }
legal_basis = "basis"
identifiers = { customer_no = "client" }
"""  # noqa: E501 (TOML 1.0: an inline table stays on one line)
