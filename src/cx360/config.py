"""The workspace file, cx360.toml, as pydantic models.

Unknown keys are errors (a typo must never be silently ignored), and every
error names the file, the key and what was expected.
"""

from __future__ import annotations

import datetime as dt
import glob
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from cx360 import documents
from cx360.conditions import checked
from cx360.decisions.settings import ContactPolicy, DecisionSettings, OfferSpec, UpliftSettings, check_catalogue
from cx360.errors import ConfigError
from cx360.schema import ATTRIBUTE_NAMES, EVENT_NAMES, IDENTIFIER_KINDS

CONFIG_FILE = "cx360.toml"
SourceName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
FieldType = Literal["string", "int", "float", "bool", "date", "timestamp"]
IdentifierKind = Literal[IDENTIFIER_KINDS]  # type: ignore[valid-type]


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not a time zone; give an IANA name such as 'Europe/Moscow' or 'UTC'") from None
    return name


TimeZone = Annotated[str, AfterValidator(_zone)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSpec(Model):
    """Where a canonical field comes from: a source column, or a constant value."""

    column: str | None = None
    value: str | None = None
    type: FieldType = "string"
    formats: list[str] = []
    values: dict[str, str] = {}
    scheme: str | None = Field(
        None, description="of a document identifier: COUNTRY.NAME of python-stdnum (ru.inn, us.ssn) or ru.passport"
    )

    @model_validator(mode="after")
    def _one_origin(self) -> FieldSpec:
        if (self.column is None) == (self.value is None):
            raise ValueError("give exactly one of 'column' (a source column) or 'value' (a constant)")
        if self.scheme is not None:
            try:
                documents.check_scheme(self.scheme)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        if self.formats and self.type not in ("date", "timestamp"):
            raise ValueError("'formats' applies only to type 'date' or 'timestamp'")
        return self


def _field(v: Any) -> Any:
    return {"column": v} if isinstance(v, str) else v


MappedField = Annotated[FieldSpec, BeforeValidator(_field)]


class RecordMapping(Model):
    """A source of entity records (a CRM customer, an account holder)."""

    record_id: MappedField
    updated_at: MappedField | None = None
    identifiers: dict[IdentifierKind, MappedField] = {}
    attributes: dict[str, MappedField] = {}
    extra_json: str | None = Field(
        None, description="a column holding a JSON object kept whole as `extra` when no attribute goes there"
    )


class EventMapping(Model):
    """A source of events (something that happened, at a time, to someone)."""

    timestamp: MappedField
    name: MappedField
    event_id: MappedField | None = None
    channel: MappedField | None = None
    amount: MappedField | None = None
    identifiers: dict[IdentifierKind, MappedField]
    properties: dict[str, MappedField] = {}
    properties_json: str | None = Field(
        None, description="a column holding a JSON object kept whole as `properties` (instead of `properties`)"
    )

    @model_validator(mode="after")
    def _has_identifier(self) -> EventMapping:
        if not self.identifiers:
            raise ValueError('map at least one identifier, e.g. identifiers = { customer_no = "client_id" }')
        if self.properties and self.properties_json:
            raise ValueError("give 'properties' (fields by name) or 'properties_json' (a JSON column), not both")
        return self


class ConsentMapping(Model):
    """A source of consent changes: who, for which purpose and channel, granted, denied or withdrew, when."""

    timestamp: MappedField
    purpose: MappedField
    status: MappedField
    channel: MappedField | None = None
    consent_id: MappedField | None = None
    legal_basis: MappedField | None = None
    evidence: MappedField | None = None
    identifiers: dict[IdentifierKind, MappedField]

    @model_validator(mode="after")
    def _has_identifier(self) -> ConsentMapping:
        if not self.identifiers:
            raise ValueError('map at least one identifier, e.g. identifiers = { email = "email" }')
        return self


class _Source(Model):
    name: SourceName
    timezone: TimeZone | None = Field(
        None, description="the zone of the source's times written without an offset; the workspace's by default"
    )
    records: RecordMapping | None = None
    events: EventMapping | None = None
    consents: ConsentMapping | None = None

    @model_validator(mode="after")
    def _one_mapping(self) -> _Source:
        if self.preset is None and sum(m is not None for m in (self.records, self.events, self.consents)) != 1:
            raise ValueError(
                f"source '{self.name}': give exactly one of [sources.records], [sources.events] or [sources.consents]"
            )
        return self

    @property
    def entity(self) -> Literal["records", "events", "consents"]:
        return "records" if self.records is not None else "events" if self.events is not None else "consents"

    @property
    def mapping(self) -> RecordMapping | EventMapping | ConsentMapping:
        return self.records or self.events or self.consents  # type: ignore[return-value]

    @property
    def preset(self) -> str | None:
        """The format preset that maps the source (`format = "segment"`), for the sources that take one."""
        return getattr(self, "format", None)

    def targets(self) -> list[tuple[str, RecordMapping | EventMapping | ConsentMapping]]:
        """Where the source's rows go, with the mapping of each: one table, or both for a preset such as
        Segment's, whose identify calls are records, track calls events, and consent categories consents."""
        if self.preset == "segment":
            return [("records", self.records), ("events", self.events), ("consents", self.consents)]  # type: ignore[list-item]
        return [(self.entity, self.mapping)]


class _FileSource(_Source):
    path: str

    def files(self, root: Path) -> list[Path]:
        pattern = str(root / self.path)
        return sorted(Path(p) for p in glob.glob(pattern)) if glob.has_magic(pattern) else [Path(pattern)]


class CsvSource(_FileSource):
    kind: Literal["csv"]
    delimiter: str = Field(",", min_length=1, max_length=1)
    encoding: str = "utf-8"


# The `format = "segment"` preset: where each canonical field of a Segment or RudderStack message comes
# from. Columns are the message's keys, flattened (`context.traits.email`), and the ones the reader derives,
# which start with `_cx360_` (see cx360.sources.segment). A key of the source's own [sources.events] or
# [sources.records] replaces the preset's key of that name.
SEGMENT_EVENTS: dict[str, Any] = {
    "event_id": "messageId",
    "timestamp": {"column": "_cx360_ts", "type": "timestamp"},
    "name": "_cx360_name",
    "channel": "_cx360_channel",
    "identifiers": {
        "customer_no": "userId",
        "cookie_id": "_cx360_cookie_id",
        "device_id": "_cx360_device_id",
        "email": "context.traits.email",
        "phone": "context.traits.phone",
    },
    "properties_json": "_cx360_properties",
}
SEGMENT_RECORDS: dict[str, Any] = {
    "record_id": "_cx360_record_id",
    "updated_at": {"column": "_cx360_ts", "type": "timestamp"},
    "identifiers": {
        "customer_no": "userId",
        "cookie_id": "_cx360_cookie_id",
        "device_id": "_cx360_device_id",
        "email": "traits.email",
        "phone": "traits.phone",
    },
    "attributes": {
        "first_name": "traits.firstName",
        "last_name": "traits.lastName",
        "birth_date": {"column": "traits.birthday", "type": "date"},
        "gender": "traits.gender",
        "address": "traits.address.street",
        "city": "traits.address.city",
        "postcode": "traits.address.postalCode",
        "country": "traits.address.country",
        "registered_at": {"column": "traits.createdAt", "type": "timestamp"},
    },
    "extra_json": "_cx360_extra",
}


# A message's consent categories (context.consent.categoryPreferences), one ledger row each: the category
# is the purpose unless the source maps it (purpose = { column = "_cx360_consent_category", values = {...} }).
SEGMENT_CONSENTS: dict[str, Any] = {
    "consent_id": "_cx360_consent_id",
    "timestamp": {"column": "_cx360_ts", "type": "timestamp"},
    "purpose": "_cx360_consent_category",
    "status": "_cx360_consent_status",
    "evidence": "messageId",
    "identifiers": SEGMENT_EVENTS["identifiers"],
}


def _preset(data: Any) -> Any:
    """A Segment source's mappings: the preset's, with each key the source gives replacing the preset's."""
    if not isinstance(data, dict) or data.get("format") != "segment":
        return data
    out = dict(data)
    for part, preset in (("events", SEGMENT_EVENTS), ("records", SEGMENT_RECORDS), ("consents", SEGMENT_CONSENTS)):
        given = data.get(part) or {}
        if not isinstance(given, dict):
            continue  # pydantic reports the wrong type
        merged = {**preset, **given}
        if "properties" in given:
            merged.pop("properties_json", None)
        if "attributes" in given and "extra_json" not in given:
            merged.pop("extra_json", None)
        out[part] = merged
    return out


class _SegmentCapable(_FileSource):
    """A file of JSON messages: `format = "segment"` reads a Segment or RudderStack export as it is."""

    format: Literal["segment"] | None = Field(
        None, description="'segment': every call type of a Segment or RudderStack export, mapped by the preset"
    )

    @model_validator(mode="before")
    @classmethod
    def _segment_preset(cls, data: Any) -> Any:
        return _preset(data)


class ParquetSource(_SegmentCapable):
    kind: Literal["parquet"]


class JsonlSource(_SegmentCapable):
    kind: Literal["jsonl"]
    encoding: str = "utf-8"


class SqlSource(_Source):
    kind: Literal["sql"]
    url: str | None = Field(None, description="SQLAlchemy URL; prefer url_env to keep passwords out of the file")
    url_env: str | None = None
    table: str | None = None
    query: str | None = None
    chunk_size: int = Field(50_000, gt=0)

    @model_validator(mode="after")
    def _where(self) -> SqlSource:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of 'url' or 'url_env' (an environment variable holding the URL)")
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of 'table' or 'query'")
        return self


Source = Annotated[CsvSource | ParquetSource | JsonlSource | SqlSource, Field(discriminator="kind")]


class DuckDBEngine(Model):
    kind: Literal["duckdb"] = "duckdb"
    path: str = "warehouse.duckdb"
    threads: int | None = Field(None, gt=0)
    memory_limit: str | None = None


class SparkEngine(Model):
    kind: Literal["spark"]
    master: str = "local[*]"
    warehouse: str = "spark-warehouse"
    conf: dict[str, str] = {}


Engine = Annotated[DuckDBEngine | SparkEngine, Field(discriminator="kind")]


class WorkspaceSettings(Model):
    name: str = "cx360"
    timezone: TimeZone = Field(
        "UTC",
        description="the zone of local hours (peak hour, send time, quiet hours) and of sources' times "
        "written without an offset; stored times are UTC",
    )
    default_region: str | None = Field(
        None, pattern=r"^[A-Z]{2}$", description="ISO country for phone numbers written without +country code"
    )


class IngestSettings(Model):
    """What ingestion accepts, beyond each source's mapping (the `[ingest]` table)."""

    max_future_days: float = Field(
        2, ge=0, description="timestamps more than this many days after the ingest are quarantined"
    )
    earliest: dt.date = Field(dt.date(1900, 1, 1), description="timestamps before this date are quarantined")
    max_field_chars: int = Field(
        1 << 20, ge=1024, description="a CSV field longer than this is a stray quote, not data: its line is quarantined"
    )
    max_row_lines: int = Field(
        100, ge=1, description="a CSV row spanning more lines than this is a stray quote: its first line is quarantined"
    )
    read_attempts: int = Field(
        3, ge=1, le=10, description="reads of an input that changes while it is read, before its source fails"
    )


class EventSettings(Model):
    custom_names: list[str] = []


Survivorship = Literal["source_priority", "most_recent", "most_frequent"]
# How many distinct records may share one identifier value before it counts as shared (a family
# phone, a shop's e-mail, a library computer's cookie) and stops merging people on its own.
DEFAULT_MAX_RECORDS = {
    "email": 3,
    "phone": 3,
    "customer_no": 3,
    "card_token": 3,
    "device_id": 3,
    "cookie_id": 3,
    "social_handle": 2,
    "document": 5,  # one person's, in as many systems as know them; different people on it never link
}
PLACEHOLDERS = {
    "email": ["test@test.com", "noemail@noemail.com", "no@email.com", "none@none.com", "example@example.com"],
    "phone": ["+70000000000", "+79999999999", "+10000000000"],
    "customer_no": ["0", "UNKNOWN", "N/A", "NONE", "NULL"],
}


class IdentitySettings(Model):
    match_threshold: float = Field(0.9, gt=0, lt=1, description="match probability above which records are linked")
    probabilistic: bool = True
    max_block_size: int = Field(
        1000, ge=2, description="a blocking value shared by more records finds no match candidates"
    )
    blocked_values: dict[IdentifierKind, list[str]] = {}
    max_records_per_identifier: dict[IdentifierKind, int] = {}
    own_domains: list[str] = Field(
        [],
        description="the organisation's own e-mail domains: their addresses are staff or shared, "
        "never a customer's identifier",
    )
    shared_by_people: int = Field(
        2,
        ge=2,
        description="an identifier held by records of this many different people (first name and birth date) "
        "links none of them",
    )
    min_email_local_part: int = Field(2, ge=1, description="an e-mail whose part before @ is shorter is a placeholder")
    source_priority: list[str] = Field([], description="most trusted source first, for survivorship")
    survivorship: dict[str, Survivorship] = {}

    @model_validator(mode="after")
    def _known_attributes(self) -> IdentitySettings:
        unknown = sorted(set(self.survivorship) - set(ATTRIBUTE_NAMES))
        if unknown:
            raise ValueError(
                f"survivorship names unknown attribute(s) {unknown}; attributes are {', '.join(ATTRIBUTE_NAMES)}"
            )
        return self

    @field_validator("own_domains")
    @classmethod
    def _domains(cls, domains: list[str]) -> list[str]:
        return [d.strip().lower().lstrip("@") for d in domains if d.strip()]

    def blocked(self, kind: str) -> list[str]:
        return [*PLACEHOLDERS.get(kind, []), *self.blocked_values.get(kind, [])]

    def max_records(self, kind: str) -> int:
        return self.max_records_per_identifier.get(kind, DEFAULT_MAX_RECORDS[kind])


class ServeSettings(Model):
    """`cx360 serve`: who may forward client addresses, and how often a key may search."""

    trusted_proxies: list[str] = Field(
        [],
        description="addresses or networks (CIDR) whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed; nobody's by default",
    )
    search_per_minute: float = Field(60, gt=0, description="searches a key may make per minute, on average")
    search_burst: int = Field(20, ge=1, description="searches a key may make at once before the rate applies")
    min_group_size: int = Field(
        5,
        ge=1,
        description="dashboard aggregates over fewer people than this are "
        "pooled for roles that may not see personal data",
    )
    online: bool = Field(
        True,
        description="apply collected events to the online profile store as they arrive (docs/realtime.md); "
        "off: profiles change only with `cx360 run`",
    )

    @model_validator(mode="after")
    def _networks(self) -> ServeSettings:
        import ipaddress

        for p in self.trusted_proxies:
            try:
                ipaddress.ip_network(p, strict=False)
            except ValueError:
                raise ValueError(f"trusted_proxies: {p!r} is not an IP address or network such as 10.0.0.0/8") from None
        return self


class StreamSettings(Model):
    """Where the stream processor runs (the `[stream]` table, docs/realtime.md)."""

    processor: Literal["serve", "separate"] = Field(
        "serve",
        description="serve: each `cx360 serve` process applies the events it collects; separate: `cx360 stream` "
        "applies every server's events in processes of its own, and the servers only collect and read",
    )


class OnlineSettings(Model):
    """Where the online profile store lives (the `[online]` table, docs/realtime.md)."""

    url: str | None = Field(
        None,
        description="a PostgreSQL the servers of several machines share: postgresql://USER@HOST:PORT/DB; "
        "none: online.sqlite beside the warehouse, shared by the processes of one machine",
    )
    url_env: str | None = Field(
        None, description="the environment variable that holds url instead (keeps a password out of this file)"
    )

    @property
    def shared(self) -> bool:
        return self.url is not None or self.url_env is not None

    @model_validator(mode="after")
    def _one(self) -> OnlineSettings:
        if self.url is not None and self.url_env is not None:
            raise ValueError("give at most one of 'url' or 'url_env' (an environment variable holding the URL)")
        return self


class CollectorSettings(Model):
    """The Segment-spec collector of `cx360 serve` and its event log (the `[collector]` table)."""

    min_free_disk_mb: float = Field(
        512, ge=0, description="below this much free disk where the event log lives, the collector answers 503"
    )
    max_lag: int = Field(
        5_000_000, ge=1, description="messages logged and not yet in the warehouse past which the collector answers 503"
    )
    retry_after_seconds: int = Field(5, ge=1, description="the Retry-After of a 503")
    seal_seconds: float = Field(
        2, gt=0, description="an open log segment older than this is sealed, so that the drain can load it"
    )
    segment_mb: float = Field(16, gt=0, description="a log segment is sealed when it reaches this size")
    drain_seconds: float = Field(
        5, ge=0, description="how often the running server loads sealed segments into the warehouse (0: never)"
    )
    dedup_window_hours: float = Field(
        24,
        gt=0,
        description="a messageId seen again within this window is answered as a duplicate",
    )
    dedup_window_ids: int = Field(
        1_000_000,
        ge=1,
        description="the dedup window holds at most this many messageIds, the oldest go first "
        "(about 200 bytes of memory each)",
    )
    transport: Literal["log", "redis"] = Field(
        "log",
        description="where accepted events go before the 200: the workspace's own event log, or Redis Streams "
        "shared by several servers (docs/transports.md)",
    )
    redis_url: str | None = Field(
        None, description="the Redis of transport = 'redis': redis://[:PASSWORD@]HOST:PORT/DB"
    )
    redis_url_env: str | None = Field(
        None, description="the environment variable that holds redis_url instead (keeps a password out of this file)"
    )
    redis_stream: str | None = Field(None, description="the stream's key; default cx360:WORKSPACE:events")
    redis_require_durable: bool = Field(
        True,
        description="refuse a Redis that does not fsync before it answers (appendonly yes, appendfsync always); "
        "false accepts the risk, with a warning",
    )
    redis_consume: bool = Field(
        True,
        description="`cx360 serve` lands the stream in the event log itself; false when `cx360 stream consume` "
        "runs apart",
    )
    redis_reclaim_seconds: float = Field(
        30, gt=0, description="entries a consumer left pending this long are taken over by another"
    )

    @model_validator(mode="after")
    def _redis(self) -> CollectorSettings:
        if self.transport == "redis" and (self.redis_url is None) == (self.redis_url_env is None):
            raise ValueError("transport = 'redis' needs exactly one of redis_url or redis_url_env")
        return self


class TextSettings(Model):
    backend: Literal["trained", "lexicon", "e5", "transformer"] = "trained"
    topics: dict[str, list[str]] = Field(
        {}, description="extra complaint topics, or extra keywords for a default topic"
    )


PurposeName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
CONSENT_STATUSES = ("granted", "denied", "withdrawn")
CHANNELS = ("email", "sms", "push", "call", "post", "web", "mobile_app", "messenger")


class PurposeSpec(Model):
    """A purpose personal data is used for: whether people are in until they opt out, or out until they
    opt in, and the channels its consent is given per (none: one consent for the whole purpose)."""

    default: Literal["opt-in", "opt-out"]
    channels: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,30}$")]] = []
    description: str = ""
    identifiers: list[IdentifierKind] = Field(
        [], description="what an audience exported for the purpose may carry besides profile_id"
    )


# Known without a declaration; [privacy.purposes.NAME] changes one or adds another.
DEFAULT_PURPOSES: dict[str, PurposeSpec] = {
    "marketing": PurposeSpec(
        default="opt-in",
        channels=["email", "sms", "push", "call", "post"],
        description="offers and campaigns sent to the person",
        identifiers=["email", "phone", "device_id"],
    ),
    "profiling": PurposeSpec(default="opt-out", description="traits, scores and segments computed about the person"),
    "analytics": PurposeSpec(default="opt-out", description="aggregate reporting that names nobody"),
}


class PrivacySettings(Model):
    """Purposes and their consent defaults, and the masking of free text (the `[privacy]` table); see
    docs/privacy.md."""

    purposes: dict[PurposeName, PurposeSpec] = {}
    mask_text: bool = Field(
        False,
        description="mask personal data in free text at ingest: phones, e-mails, card and document numbers, names",
    )
    mask_fields: list[str] = Field(
        ["text"], description="the event properties and record attributes that hold free text"
    )
    vault: bool = Field(
        False,
        description="hold personal data in the PII vault (privacy/vault.sqlite), encrypted per person, and "
        "keyed pseudonymous tokens in the warehouse in its place",
    )

    @property
    def all_purposes(self) -> dict[str, PurposeSpec]:
        return {**DEFAULT_PURPOSES, **self.purposes}

    def purpose(self, name: str) -> PurposeSpec:
        known = self.all_purposes
        if name not in known:
            raise ConfigError(f"unknown purpose {name!r}; the workspace knows {', '.join(sorted(known))}")
        return known[name]

    def check_channel(self, purpose: str, channel: str | None) -> None:
        """A purpose with channels needs one of them; a purpose without channels takes none."""
        spec = self.purpose(purpose)
        if spec.channels and channel not in spec.channels:
            raise ConfigError(
                f"purpose {purpose!r} is consented per channel: give one of {', '.join(spec.channels)}"
                + ("" if channel is None else f" (got {channel!r})")
            )
        if not spec.channels and channel is not None:
            raise ConfigError(f"purpose {purpose!r} has no channels: its consent covers every use (got {channel!r})")


_DURATION = re.compile(r"^\s*(\d+)\s*(day|week|month|year)s?\s*$")


def parse_duration(text: str) -> tuple[int, str]:
    """'13 months' -> (13, 'month'); ValueError naming the accepted forms otherwise."""
    m = _DURATION.match(str(text).lower())
    if not m or int(m.group(1)) == 0:
        raise ValueError(
            f"{text!r} is not a duration: write a positive number and a unit, e.g. '90 days', '6 weeks', "
            "'13 months', '3 years'"
        )
    return int(m.group(1)), m.group(2)


def _duration(text: str) -> str:
    n, unit = parse_duration(text)
    return f"{n} {unit}{'s' if n > 1 else ''}"


Duration = Annotated[str, AfterValidator(_duration)]
EventKind = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]


def _every_event(value: Any) -> Any:
    return {"default": value} if isinstance(value, str) else value  # `events = "5 years"`: one rule for all


RETAINED_TABLES = ("events", "records", "quarantine", "dropped_identifiers", "event_log")


class RetentionSettings(Model):
    """How long rows are kept, per table; events also per kind: an event name (`events.call`) or a
    channel (`events.web`), the name winning over the channel, and `events.default` for the rest."""

    events: Annotated[dict[EventKind, Duration], BeforeValidator(_every_event)] = {}
    records: Duration | None = None
    quarantine: Duration | None = None
    dropped_identifiers: Duration | None = None
    event_log: Duration | None = Field(
        None, description="the collector's event log segments, once drained into the warehouse, by when written"
    )
    compact: bool = Field(
        False,
        description="after rows were removed, rewrite the DuckDB file so that their bytes are gone from it too "
        "(the cost: one copy of the warehouse)",
    )

    @model_validator(mode="before")
    @classmethod
    def _known_tables(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - {*RETAINED_TABLES, "compact"})
            if unknown:
                raise ValueError(
                    f"unknown table(s) {unknown}; retention applies to {', '.join(RETAINED_TABLES)} (the tables "
                    "built from them are rebuilt by the pipeline and follow them)"
                )
        return data


SegmentName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
BUILTIN_SEGMENT_PREFIXES = ("rfm_", "cluster_")


Where = Annotated[str | None, AfterValidator(checked)]


class EventCondition(Model):
    """Profiles with at least `min_count` (and at most `max_count`) events named `name` matching `where`
    in the `within_days` days before the profiles' as_of."""

    name: str
    where: Where = None
    within_days: int = Field(90, gt=0)
    min_count: int = Field(1, ge=0)
    max_count: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _counts(self) -> EventCondition:
        if self.max_count is not None and self.max_count < self.min_count:
            raise ValueError(f"max_count ({self.max_count}) is below min_count ({self.min_count})")
        return self


def _as_list(v: Any) -> Any:
    return [v] if isinstance(v, dict) else v


class SegmentSpec(Model):
    """A named audience: a condition over traits and scores, and/or conditions on recent events."""

    name: SegmentName
    description: str = ""
    where: Where = None
    events: Annotated[list[EventCondition], BeforeValidator(_as_list)] = []
    purpose: PurposeName | None = Field(None, description="members must consent to it (see docs/privacy.md)")
    channel: str | None = None

    @model_validator(mode="after")
    def _something(self) -> SegmentSpec:
        if self.channel is not None and self.purpose is None:
            raise ValueError(f"segment '{self.name}': a channel needs the purpose it is for (purpose = ...)")
        if self.where is None and not self.events:
            raise ValueError(
                f"segment '{self.name}': give 'where' (a condition on traits and scores), 'events', or both"
            )
        if self.name.startswith(BUILTIN_SEGMENT_PREFIXES):
            raise ValueError(
                f"segment '{self.name}': names starting with {' or '.join(BUILTIN_SEGMENT_PREFIXES)} "
                "are kept for the built-in RFM and cluster segments"
            )
        return self


_WITHIN = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w|seconds?|minutes?|hours?|days?|weeks?)\s*$")
_WITHIN_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def within_seconds(text: str) -> int:
    """'7d' -> 604800: a funnel's conversion window ('30m', '12h', '7d', '2w', '14 days')."""
    m = _WITHIN.match(str(text).lower())
    if not m or int(m.group(1)) == 0:
        raise ValueError(f"{text!r} is not a window: write a positive number and a unit, e.g. '30m', '12h', '7d', '2w'")
    unit = m.group(2)
    return int(m.group(1)) * _WITHIN_SECONDS["m" if unit.startswith("min") else unit[0]]


def _window(text: str) -> str:
    within_seconds(text)
    return text


class FunnelSpec(Model):
    """Ordered steps, each an event condition; a person enters step k+1 when they did step k and then,
    within `within` of their first step, step k+1 (see docs/funnels.md)."""

    name: SegmentName
    description: str = ""
    steps: list[Annotated[str, AfterValidator(checked)]] = Field(min_length=2)
    within: Annotated[str, AfterValidator(_window)] = "7d"
    breakdown: Literal["channel", "segment"] | None = Field(
        None, description="split each step by the channel of the first step, or by the segments people are in"
    )


class VisitSettings(Model):
    """Visit analytics (`cx360 visits show`, see docs/visits.md): how often a regular visitor comes, and
    which card payments count as bought around a visit."""

    regular_per_month: float = Field(
        1.0, gt=0, description="a regular visitor comes at least this often per 30 days of the period (and twice)"
    )
    purchase_window_minutes: int = Field(
        60, ge=0, le=1440, description="card payments from this long before entry to this long after exit count"
    )


def _terms(terms: list[str]) -> list[str]:
    cleaned = [t.strip() for t in terms]
    if any(not t for t in cleaned):
        raise ValueError("an empty term: write a brand or keyword")
    dupes = sorted({t for t in cleaned if [x.lower() for x in cleaned].count(t.lower()) > 1})
    if dupes:
        raise ValueError(f"terms must be unique (case aside); repeated: {', '.join(dupes)}")
    return cleaned


Terms = Annotated[list[str], AfterValidator(_terms)]


class ListeningSettings(Model):
    """Social listening (`cx360 listening`, see docs/listening.md): the watch-list that posts and reviews
    are matched against, and who counts as a lead for the CRM."""

    brands: Terms = Field([], description="brand names, matched anywhere in a post, case aside (@handles too)")
    keywords: Terms = Field([], description="words or phrases to watch, matched the same way")
    events: list[str] = Field(["social_post", "review_posted"], min_length=1, description="the events read as posts")
    high_intent: float = Field(0.5, gt=0, le=1, description="purchase intent from which a mention is a lead")
    export_purpose: str = Field("profiling", description="the purpose a lead export is checked against")

    @model_validator(mode="after")
    def _unique(self) -> ListeningSettings:
        both = {t.lower() for t in self.brands} & {t.lower() for t in self.keywords}
        if both:
            raise ValueError(f"a term is both a brand and a keyword: {', '.join(sorted(both))}")
        return self

    @property
    def terms(self) -> list[tuple[str, str]]:
        """(term, brand or keyword), in the watch-list's order."""
        return [(t, "brand") for t in self.brands] + [(t, "keyword") for t in self.keywords]


class SegmentationSettings(Model):
    """The built-in segments: RFM cells and behavioural clusters."""

    rfm: bool = True
    clusters: int = Field(6, ge=0, le=30, description="k of k-means; 0 turns clustering off")
    cluster_traits: list[str] = Field([], description="numeric traits to cluster on; empty: the default set")
    seed: int = 0


def _as_names(v: Any) -> Any:
    return [v] if isinstance(v, str) else v


Names = Annotated[list[str], BeforeValidator(_as_names)]


class CallRoute(Model):
    """One line of the routing table: a call goes to `queue` when every condition given holds."""

    queue: str = Field(min_length=1)
    reason: Names = Field([], description="the forecast's top reason is one of these; empty: any reason")
    value_tier: Names = Field([], description="the caller's value tier is one of these (platinum, gold, ...)")
    min_churn_risk: float | None = Field(None, ge=0, le=1, description="the caller's churn risk is at least this")
    language: Names = Field([], description="the caller's language is one of these (ISO 639-1: ru, en, ...)")
    skills: Names = Field([], description="skills an agent of the queue needs, passed on to the switch")


class CallSettings(Model):
    """The contact centre: the routing table (first matching route wins) and the queue of everyone else."""

    default_queue: str = Field("general", min_length=1, description="unknown callers and calls no route matches")
    routes: list[CallRoute] = []

    @property
    def known_reasons(self) -> set[str]:
        return {r for route in self.routes for r in route.reason}


class TriggerSpec(Model):
    """A reaction in the moment: on a segment entry or exit, or on an event, POST to a webhook and/or add
    to a Redis stream (see docs/realtime.md). Delivery is at least once, with an idempotency key."""

    name: SegmentName
    segment: str | None = Field(None, description="the segment whose entries or exits fire it")
    on: Literal["enter", "exit"] = "enter"
    event: str | None = Field(None, description="instead of a segment: the name of an event that fires it")
    webhook: str | None = Field(None, description="http(s) URL that receives the JSON, signed with HMAC-SHA256")
    redis_stream: str | None = Field(
        None, description="a Redis stream key ([collector].redis_url's Redis) to add it to"
    )
    purpose: PurposeName | None = Field(
        None, description="the person must consent to it (and channel) when it is sent; else it is suppressed"
    )
    channel: str | None = None

    @model_validator(mode="after")
    def _one_cause_a_target(self) -> TriggerSpec:
        if (self.segment is None) == (self.event is None):
            raise ValueError(f"trigger '{self.name}': give exactly one of 'segment' (with 'on') or 'event'")
        if self.webhook is None and self.redis_stream is None:
            raise ValueError(f"trigger '{self.name}': give 'webhook' (a URL), 'redis_stream', or both")
        if self.webhook is not None and not self.webhook.startswith(("http://", "https://")):
            raise ValueError(f"trigger '{self.name}': webhook must be an http:// or https:// URL, not {self.webhook!r}")
        return self


class TriggerSettings(Model):
    """How triggers are delivered: retries with exponential backoff, then the dead letter."""

    retry_seconds: float = Field(1.0, gt=0, description="the first retry's delay; each next one doubles")
    max_retry_seconds: float = Field(300.0, gt=0, description="the longest delay between two tries")
    give_up_hours: float = Field(24.0, gt=0, description="a delivery still failing after this long is dead (kept)")
    timeout_seconds: float = Field(5.0, gt=0)
    concurrency: int = Field(8, ge=1, le=256, description="deliveries in flight at once, per server process")
    secret_env: str = Field("CX360_TRIGGER_SECRET", description="the environment variable with the HMAC key")


class Config(Model):
    workspace: WorkspaceSettings = WorkspaceSettings()
    text: TextSettings = TextSettings()
    identity: IdentitySettings = IdentitySettings()
    engine: Engine = DuckDBEngine()
    events: EventSettings = EventSettings()
    ingest: IngestSettings = IngestSettings()
    sources: list[Source] = []
    segments: list[SegmentSpec] = []
    funnels: list[FunnelSpec] = []
    visits: VisitSettings = VisitSettings()
    listening: ListeningSettings = ListeningSettings()
    segmentation: SegmentationSettings = SegmentationSettings()
    serve: ServeSettings = ServeSettings()
    retention: RetentionSettings = RetentionSettings()
    privacy: PrivacySettings = PrivacySettings()
    calls: CallSettings = CallSettings()
    collector: CollectorSettings = CollectorSettings()
    stream: StreamSettings = StreamSettings()
    online: OnlineSettings = OnlineSettings()
    offers: list[OfferSpec] = []
    contact_policy: ContactPolicy = ContactPolicy()
    uplift: UpliftSettings = UpliftSettings()
    decisions: DecisionSettings = DecisionSettings()
    triggers: list[TriggerSpec] = []
    trigger_delivery: TriggerSettings = TriggerSettings()

    @model_validator(mode="before")
    @classmethod
    def _local_contact_hours(cls, data: Any) -> Any:
        """Quiet hours are kept in the workspace's zone unless [contact_policy] names its own."""
        if not isinstance(data, dict) or not isinstance(data.get("workspace"), dict):
            return data
        zone, policy = data["workspace"].get("timezone"), data.get("contact_policy", {})
        if not isinstance(zone, str) or not isinstance(policy, dict) or "time_zone" in policy:
            return data
        try:
            _zone(zone)
        except ValueError:
            return data  # reported once, at [workspace].timezone
        return {**data, "contact_policy": {**policy, "time_zone": zone}}

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique; repeated: {', '.join(dupes)}")
        known = set(self.event_names)
        for s in self.sources:
            if s.events is not None:
                spec = s.events.name
                bad = sorted({v for v in [spec.value, *spec.values.values()] if v is not None} - known)
                if bad:
                    raise ValueError(
                        f"source '{s.name}': unknown event name(s) {bad}; use one of the canonical names "
                        "(cx360.schema.EVENT_NAMES) or declare them in [events].custom_names"
                    )
            for _, mapping in s.targets():
                schemed = [k for k, f in mapping.identifiers.items() if f.scheme and k != "document"]
                if schemed or any(getattr(f, "scheme", None) for f in getattr(mapping, "attributes", {}).values()):
                    raise ValueError(f"source '{s.name}': only identifiers.document takes a 'scheme'")
            if s.records is not None:
                clash = set(s.records.attributes) & set(IDENTIFIER_KINDS)
                if clash:
                    raise ValueError(f"source '{s.name}': {sorted(clash)} are identifiers; map them under identifiers")
        unknown = sorted(set(self.identity.source_priority) - set(names))
        if unknown:
            raise ValueError(f"identity.source_priority names unknown source(s) {unknown}")
        segments = [s.name for s in self.segments]
        for t in self.triggers:
            if t.segment is not None and t.segment not in segments:
                raise ValueError(f"trigger '{t.name}': unknown segment {t.segment!r}; segments: {', '.join(segments)}")
            if t.event is not None and t.event not in known:
                raise ValueError(f"trigger '{t.name}': unknown event name {t.event!r}")
            if t.purpose is not None:
                self.privacy.check_channel(t.purpose, t.channel)
        dupes = sorted({n for n in segments if segments.count(n) > 1})
        if dupes:
            raise ValueError(f"segment names must be unique; repeated: {', '.join(dupes)}")
        funnels = [f.name for f in self.funnels]
        dupes = sorted({n for n in funnels if funnels.count(n) > 1})
        if dupes:
            raise ValueError(f"funnel names must be unique; repeated: {', '.join(dupes)}")
        for seg in self.segments:
            if seg.purpose is not None:
                try:
                    self.privacy.check_channel(seg.purpose, seg.channel)
                except ConfigError as exc:
                    raise ValueError(f"segment '{seg.name}': {exc}") from None
            bad = sorted({e.name for e in seg.events} - known)
            if bad:
                raise ValueError(
                    f"segment '{seg.name}': unknown event name(s) {bad}; known: {', '.join(sorted(known))}"
                )
        check_catalogue(self.offers, self.contact_policy, self.privacy)
        return self

    @property
    def event_names(self) -> list[str]:
        return [*EVENT_NAMES, *self.events.custom_names]

    def source(self, name: str) -> Source:
        for s in self.sources:
            if s.name == name:
                return s
        raise ConfigError(
            f"no source named '{name}'; the workspace has: {', '.join(s.name for s in self.sources) or 'none'}"
        )


def load_config(path: Path) -> Config:
    """Parse and validate a workspace file; every problem becomes a ConfigError naming file and key."""
    if not path.is_file():
        raise ConfigError(f"{path}: workspace file not found (create one with `cx360 init DIR`)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: invalid workspace file\n" + _explain(exc, data)) from exc


def _explain(exc: ValidationError, data: dict) -> str:
    lines = []
    for err in exc.errors():
        loc = _key_path(err["loc"], data)
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif err["type"] == "literal_error":
            msg = f"got {err.get('input')!r}; {err['msg'].lower()}"
        else:
            msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"  {loc or '(top level)'}: {msg}")
    return "\n".join(lines)


def _key_path(loc: tuple, data: dict) -> str:
    """`sources.1.csv.path` -> `sources[1] (crm_b).path`: readable, with the source's name."""
    parts: list[str] = []
    node: Any = data
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and item < len(node) and isinstance(node[item], dict) and "name" in node[item]:
                label += f" ({node[item]['name']})"
            parts.append(label)
            node = node[item] if isinstance(node, list) and item < len(node) else None
            continue
        if isinstance(node, dict) and item in node:
            node = node[item]
        elif item in (
            "[key]",
            "csv",
            "parquet",
            "jsonl",
            "sql",
            "duckdb",
            "spark",
            "function-after",
            "function-before",
        ):
            continue  # pydantic's union-branch tags, not keys the user wrote
        else:
            node = None
        parts.append(("." if parts else "") + str(item))
    return "".join(parts)
