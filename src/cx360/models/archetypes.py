"""Digital archetypes: two scores in [0, 1] computed from profile traits, and the archetype they place a
person in on the grid of digital sophistication x willingness to share personal data.

Each score is a weighted mean of the signals a profile has; a signal that is absent (no survey answer,
no consent event) leaves the mean rather than counting as zero, so a person who never answered the
survey is judged on behaviour alone. Counts enter through x / (x + k), which is 0 for none, 1/2 at the
"typical" level k and tends to 1: a heavy user is not ten times as sophisticated as a regular one.
Everything is an Ibis expression, so it runs on DuckDB and Spark alike. See docs/archetypes.md.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

ARCHETYPES = ("analog", "wannabe", "mainstreamer", "paranoid", "chameleon", "nomad")
DEFINITIONS = {
    "analog": "does not, or cannot, use digital services",
    "wannabe": "a beginner in mobile and digital services",
    "mainstreamer": "uses most digital services; shares data where it is the norm",
    "paranoid": "digitally capable, but distrusts how personal data is used",
    "chameleon": "advanced digital user, selective about what data to share",
    "nomad": "advanced digital user who shares data everywhere for a benefit",
}
# The grid (the same cut points as the archetype definitions): sophistication first, then sharing.
ANALOG_BELOW, WANNABE_BELOW, ADVANCED_FROM = 0.3, 0.5, 0.75
PARANOID_BELOW, NOMAD_FROM = 0.35, 0.7

# (trait, half-saturation k, weight): the digital-sophistication signals from behaviour
SOPHISTICATION_COUNTS = (
    ("app_events_90d", 10.0, 2.0),
    ("web_events_90d", 8.0, 1.0),
    ("logins_90d", 4.0, 1.0),
    ("active_days_90d", 10.0, 1.0),
    ("forms_started", 1.0, 0.5),  # self-service: applying online instead of in a branch
)
DEVICE_SCORES = {"smartphone": 1.0, "tablet": 0.8, "laptop": 0.6, "computer": 0.6, "desktop": 0.6, "none": 0.0}
YES = ("yes", "true", "1", "y", "да")
GRANTED = ("granted", "given", "opt_in", "opted_in", "yes", "true", "accepted")
WITHDRAWN = ("withdrawn", "denied", "opt_out", "opted_out", "no", "false", "refused")


def _sat(x: ir.NumericValue, k: float) -> ir.FloatingValue:
    x = x.fill_null(0).cast("float64")
    return x / (x + k)


def _weighted(parts: list[tuple[ir.NumericValue, float]]) -> ir.FloatingValue:
    """Weighted mean of the signals that are present (a NULL signal drops out with its weight)."""
    num = sum((v * w).fill_null(0.0) for v, w in parts)
    den = sum(ibis.ifelse(v.isnull(), 0.0, w) for v, w in parts)
    return (num / den.nullif(0.0)).fill_null(0.0).clip(0.0, 1.0)


def sophistication(t: ir.Table) -> ir.FloatingValue:
    parts: list[tuple[ir.NumericValue, float]] = [(_sat(t[c], k), w) for c, k, w in SOPHISTICATION_COUNTS]
    parts.append(((t.devices.fill_null(0).clip(upper=3) / 3.0).cast("float64"), 1.0))
    parts.append(((t.digital_channels.fill_null(0).clip(upper=2) / 2.0).cast("float64"), 1.0))
    device = t.survey_preferred_device.lower().strip()
    device_score = ibis.cases(*((device == k, v) for k, v in DEVICE_SCORES.items()), else_=ibis.null("float64"))
    parts.append((device_score, 1.5))
    pays = t.survey_uses_mobile_payments.lower().strip()
    parts.append((ibis.ifelse(pays.isnull(), ibis.null("float64"), ibis.ifelse(pays.isin(YES), 1.0, 0.0)), 1.5))
    return _weighted(parts)


def data_sharing(t: ir.Table, consent_share: ir.FloatingValue | None = None) -> ir.FloatingValue:
    survey = (t.survey_ok_to_share_data.cast("float64").clip(1, 5) - 1.0) / 4.0
    tracked = t.web_events_90d.fill_null(0) > 0
    app_only = (t.app_events_90d.fill_null(0) > 0) & ~tracked
    # Web analytics only sees visitors who accept tracking: an app user never seen on the web has likely
    # refused it (or blocks it), a web user seen by analytics has accepted it.
    tracking = ibis.cases((app_only, 0.15), (tracked, 0.6), else_=ibis.null("float64"))
    parts: list[tuple[ir.NumericValue, float]] = [
        (ibis.literal(0.5), 1.0),  # prior: without evidence, the middle of the scale
        (survey, 4.0),
        (tracking, 1.5),
    ]
    if consent_share is not None:
        parts.append((consent_share, 2.0))
    return _weighted(parts)


def archetype(soph: ir.FloatingValue, share: ir.FloatingValue) -> ir.StringValue:
    return ibis.cases(
        (soph < ANALOG_BELOW, "analog"),
        (soph < WANNABE_BELOW, "wannabe"),
        (share < PARANOID_BELOW, "paranoid"),
        (soph < ADVANCED_FROM, "mainstreamer"),
        (share < NOMAD_FROM, "chameleon"),
        else_="nomad",
    )
