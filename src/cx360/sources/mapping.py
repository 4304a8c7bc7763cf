"""Apply a source's mapping to a staged chunk: canonical columns plus the reasons a row is rejected.

Everything here is an Ibis expression, so it runs on any engine. A value that
does not parse never fails the query: it becomes a reason in ``_reasons``, and
the row goes to quarantine with every reason it has.

Identifiers are the exception: a row is more than its phone. A malformed
identifier (a phone such as 0000000000, an e-mail without a domain) is dropped
from the row, which still loads, and the value with its reason goes to
``dropped_identifiers``. Only an event left with no identifier at all is
quarantined.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from cx360 import identifiers, schema
from cx360.config import CONSENT_STATUSES, ConsentMapping, EventMapping, FieldSpec, RecordMapping
from cx360.engine import Engine
from cx360.errors import SourceError
from cx360.sources.readers import INTERNAL, ROW

REASONS = INTERNAL + "reasons"
DROPPED = INTERNAL + "dropped_"  # prefix of the helper columns: ..._KIND (reason), ..._KIND_value
TRUE_WORDS = ("true", "t", "yes", "y", "1", "да", "д")
FALSE_WORDS = ("false", "f", "no", "n", "0", "нет", "н")
_CANONICAL_TYPES = {c.name: c.dtype for c in schema.ATTRIBUTES}
_FIELD_TYPES = {"date": "date", "timestamp": "timestamp", "int": "int64", "float": "float64", "bool": "boolean"}
# a time of day followed by Z or a UTC offset (+03, +0300, +03:00): the text says its own zone
_OFFSET = r"\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*([zZ]|[+-]\d{2}(:?\d{2})?)$"


def _naive(fmt: str) -> bool:
    """A strptime format without %z or %Z reads the wall clock, not an instant."""
    return "%z" not in fmt and "%Z" not in fmt


@ibis.udf.scalar.builtin(name="to_json")
def _to_json(value) -> str:  # type: ignore[no-untyped-def]
    """Both DuckDB and Spark serialise a struct to a JSON object with to_json."""


@dataclass
class Context:
    engine: Engine
    source: str
    batch_id: str
    ingested_at: dt.datetime
    region: str | None
    event_names: list[str]
    schemaless: bool = False
    earliest: dt.datetime = dt.datetime(1900, 1, 1)
    latest: dt.datetime = dt.datetime(9999, 1, 1)  # ingest time plus [ingest].max_future_days
    purposes: dict[str, list[str]] | None = None  # consent purposes and their channels ([privacy.purposes])
    timezone: str = "UTC"  # the zone of the source's times written without an offset


class _Builder:
    """Builds the canonical columns of one chunk, collecting a reason for every value that fails."""

    def __init__(self, table: ir.Table, ctx: Context):
        self.t = table
        self.ctx = ctx
        self.reasons: list[ir.StringValue] = []
        self.dropped: dict[str, tuple[ir.StringValue, ir.StringValue]] = {}  # kind -> (value as read, reason)

    def origin(self, spec: FieldSpec) -> ir.Value:
        if spec.value is not None:
            return ibis.literal(spec.value)
        # the null is only reached for schemaless inputs, where an absent key means no value
        value = self.t[spec.column] if spec.column in self.t.columns else ibis.null("string")
        if spec.values:
            value = identifiers.clean(value).substitute(spec.values)
        return value

    def reject_if(self, condition: ir.BooleanValue, message: ir.StringValue | str) -> None:
        self.reasons.append(ibis.ifelse(condition, message, ibis.null("string")))

    def typed(self, field: str, spec: FieldSpec, kind: str | None = None, *, required: bool = False) -> ir.Value:
        """The field parsed to its type; a bad or missing value adds a reason."""
        raw = self.origin(spec)
        kind = kind or spec.type
        label = f"{field} ({spec.column})" if spec.column else field
        if raw.type().is_string() or raw.type().is_null():
            text = identifiers.clean(raw)
            value = self._parse_text(text, kind, spec.formats)
            shown = text
        else:
            value = self._convert(raw, kind)
            text = raw
            shown = raw.cast("string")
        if kind != "string":
            self.reject_if(
                text.notnull() & value.isnull(), ibis.literal(f"{label}: not a valid {kind}: '") + shown + "'"
            )
            self._reject_nonsense(label, kind, value)
        if required:
            self.reject_if(text.isnull(), f"{label}: a value is required")
        return value

    def _reject_nonsense(self, label: str, kind: str, value: ir.Value) -> None:
        """Values that parse but would poison every later stage: NaN and infinities, dates far outside
        what can have happened ([ingest].earliest and max_future_days)."""
        if kind == "float":
            # x - x is 0 only for a finite x, on every engine (Spark's isinf misses infinities, and its NaN = NaN)
            self.reject_if(
                (value - value) != 0, ibis.literal(f"{label}: not a finite number: '") + value.cast("string") + "'"
            )
        elif kind in ("date", "timestamp"):
            latest, earliest = self.ctx.latest, self.ctx.earliest
            if kind == "date":
                latest, earliest = latest.date(), earliest.date()
            self.reject_if(
                value > ibis.literal(latest),
                ibis.literal(f"{label}: ")
                + value.cast("string")
                + f" is in the future (after {latest:%Y-%m-%d %H:%M}, see "
                "[ingest].max_future_days)",
            )
            self.reject_if(
                value < ibis.literal(earliest),
                ibis.literal(f"{label}: ")
                + value.cast("string")
                + f" is before {earliest:%Y-%m-%d} ([ingest].earliest)",
            )

    def _parse_text(self, text: ir.StringValue, kind: str, formats: list[str]) -> ir.Value:
        if kind == "string":
            return text
        if kind in ("int", "float"):
            number = text.re_replace("[\\s\u00a0']", "")  # spaces and NBSP group thousands
            if kind == "float":
                number = number.replace(",", ".")
            return number.try_cast(_FIELD_TYPES[kind])
        if kind == "bool":
            low = text.lower()
            return ibis.cases((low.isin(TRUE_WORDS), True), (low.isin(FALSE_WORDS), False), else_=ibis.null("boolean"))
        if kind == "date":
            return self._parse_stamp(text, formats).date()  # a date is a date: no zone moves it
        if formats:
            stamps = [self.ctx.engine.parse_timestamp(text, f) for f in formats]
            return ibis.coalesce(*[self._utc(s) if _naive(f) else s for s, f in zip(stamps, formats, strict=True)])
        stamp = self._parse_stamp(text, formats)
        if self.ctx.timezone == "UTC":
            return stamp  # a wall clock on UTC is UTC: no offset to look for
        return ibis.ifelse(text.re_search(_OFFSET), stamp, self._utc(stamp))

    def _parse_stamp(self, text: ir.StringValue, formats: list[str]) -> ir.TimestampValue:
        """The time as written: an offset it carries is applied; without one it is the wall clock."""
        if formats:
            return ibis.coalesce(*[self.ctx.engine.parse_timestamp(text, f) for f in formats])
        return text.try_cast("timestamp('UTC')").cast("timestamp")

    def _utc(self, local: ir.TimestampValue) -> ir.TimestampValue:
        return self.ctx.engine.local_to_utc(local, self.ctx.timezone)

    def _convert(self, value: ir.Value, kind: str) -> ir.Value:
        if kind == "string":
            return value.cast("string")
        if kind == "timestamp" and value.type().is_timestamp():
            # a typed column (Parquet, SQL) carries its zone, or else holds the source's wall clock
            return value.cast("timestamp") if value.type().timezone else self._utc(value)
        if kind == "date" and value.type().is_timestamp():
            return value.date()
        return value.try_cast(_FIELD_TYPES[kind])

    def identifiers(self, specs: dict[str, FieldSpec]) -> dict[str, ir.Value]:
        """Normalised identifiers; a malformed one becomes NULL and is remembered in `dropped`."""
        out = {}
        for kind, spec in specs.items():
            label = f"{kind} ({spec.column})" if spec.column else kind
            raw = identifiers.clean(self.origin(spec))
            if kind in identifiers.PARSED_IN_PYTHON:
                reason = ibis.literal(f"{label}: ") + self.t[f"_{kind}_reason"]  # NULL when it parsed
                out[kind] = self.t[f"_{kind}_value"]
            else:
                value = identifiers.normalise(kind, self.origin(spec))
                bad = identifiers.invalid(kind, value)
                if bad is None:
                    out[kind] = value
                    continue
                reason = ibis.ifelse(bad, ibis.literal(f"{label}: not a valid {kind}"), ibis.null("string"))
                out[kind] = ibis.ifelse(bad, ibis.null("string"), value)
            self.dropped[kind] = (raw, reason)
        return out

    def dropped_columns(self) -> dict[str, ir.Value]:
        """The reason (without the value: it is personal data) and the value of each dropped identifier."""
        cols: dict[str, ir.Value] = {}
        for kind, (raw, reason) in self.dropped.items():
            cols[f"{DROPPED}{kind}"] = reason
            cols[f"{DROPPED}{kind}_value"] = raw
        return cols

    def json_object(self, values: dict[str, ir.Value]) -> ir.StringValue:
        if not values:
            return ibis.null("string")
        return _to_json(ibis.struct(values))

    def json_column(self, column: str) -> ir.StringValue:
        """A column that already holds a JSON object (a preset's whole `properties`), kept as it is."""
        return identifiers.clean(self.t[column]) if column in self.t.columns else ibis.null("string")

    def reasons_column(self) -> ir.StringValue:
        if not self.reasons:
            return ibis.null("string")
        joined = ibis.literal("; ").join(self.reasons)
        return ibis.ifelse(joined == "", ibis.null("string"), joined)


Mapping = RecordMapping | EventMapping | ConsentMapping


def check(staged: ir.Table, mapping: Mapping, ctx: Context) -> tuple[ir.Table, list[ir.Table]]:
    """Canonical rows of the chunk with ``_reasons``; also the helper tables staged for it."""
    _require_columns(staged, mapping, ctx)
    helpers: list[ir.Table] = []
    for kind in identifiers.PARSED_IN_PYTHON:
        if kind in mapping.identifiers:
            staged, lookup = _with_parsed(staged, kind, mapping.identifiers[kind], ctx)
            helpers.append(lookup)
    b = _Builder(staged, ctx)
    if isinstance(mapping, RecordMapping):
        columns = _records(b, mapping, ctx)
        target = "records"
    elif isinstance(mapping, ConsentMapping):
        columns = _consents(b, mapping, ctx)
        target = "consents"
    else:
        columns = _events(b, mapping, ctx)
        target = "events"
    columns.update(
        batch_id=ibis.literal(ctx.batch_id),
        row_number=staged[ROW],
        ingested_at=ibis.literal(ctx.ingested_at, "timestamp"),
    )
    types = schema.ibis_schema(target)
    out = {name: columns.get(name, ibis.null(str(types[name]))).cast(types[name]) for name in types}
    return staged.select(**out, **b.dropped_columns(), **{REASONS: b.reasons_column()}), helpers


def canonical_rows(checked: ir.Table) -> ir.Table:
    """The checked rows without the helper columns: what goes into records or events."""
    return checked.drop(*[c for c in checked.columns if c == REASONS or c.startswith(DROPPED)])


def dropped_identifiers(checked: ir.Table, key: str) -> ir.Table | None:
    """One row per identifier dropped from a checked row: row_number, key, kind, value, reason."""
    kinds = [c[len(DROPPED) :] for c in checked.columns if c.startswith(DROPPED) and not c.endswith("_value")]
    parts = [
        checked.filter(checked[f"{DROPPED}{kind}"].notnull()).select(
            row_number=checked.row_number,
            key=checked[key],
            kind=ibis.literal(kind),
            value=checked[f"{DROPPED}{kind}_value"],
            reason=checked[f"{DROPPED}{kind}"],
        )
        for kind in kinds
    ]
    return ibis.union(*parts, distinct=False) if parts else None


def _records(b: _Builder, m: RecordMapping, ctx: Context) -> dict[str, ir.Value]:
    cols: dict[str, ir.Value] = {"source": ibis.literal(ctx.source)}
    cols["record_id"] = b.typed("record_id", m.record_id, "string", required=True)
    if m.updated_at is not None:
        cols["updated_at"] = b.typed("updated_at", m.updated_at, "timestamp")
    cols.update(b.identifiers(m.identifiers))
    extra = {}
    for name, spec in m.attributes.items():
        canonical = _CANONICAL_TYPES.get(name)
        kind = spec.type if spec.type != "string" or canonical is None else canonical
        value = b.typed(name, spec, kind)
        if canonical:
            cols[name] = value
        else:
            extra[name] = value
    cols["extra"] = b.json_column(m.extra_json) if m.extra_json and not extra else b.json_object(extra)
    content = [c.cast("string") for c in cols.values()]
    cols["record_hash"] = _digest(content)
    return cols


def _events(b: _Builder, m: EventMapping, ctx: Context) -> dict[str, ir.Value]:
    cols: dict[str, ir.Value] = {"source": ibis.literal(ctx.source)}
    cols["ts"] = b.typed("timestamp", m.timestamp, "timestamp", required=True)
    name = b.typed("name", m.name, "string", required=True)
    b.reject_if(
        name.notnull() & ~name.isin(ctx.event_names),
        ibis.literal("name: unknown event name '")
        + name
        + "' (map it with `values` in the source's name field, or declare it in [events].custom_names)",
    )
    cols["name"] = name
    if m.channel is not None:
        cols["channel"] = b.typed("channel", m.channel, "string").lower()
    if m.amount is not None:
        cols["amount"] = b.typed("amount", m.amount, "float")
    cols.update(_required_identifiers(b, m.identifiers, "event"))
    if m.properties_json:
        cols["properties"] = b.json_column(m.properties_json)
    else:
        cols["properties"] = b.json_object({k: b.typed(k, s) for k, s in m.properties.items()})
    cols["event_id"] = _row_id(b, m.event_id, "event_id", ctx)
    return cols


def _required_identifiers(b: _Builder, specs: dict[str, FieldSpec], what: str) -> dict[str, ir.Value]:
    ids = b.identifiers(specs)
    none_left = ibis.coalesce(*ids.values()).isnull()
    for raw, reason in b.dropped.values():  # with nothing else to go by, a malformed identifier rejects the row
        b.reject_if(none_left & reason.notnull(), reason + ": '" + raw + "'")
    b.reject_if(
        none_left,
        f"no identifier: every {what} needs one of {', '.join(specs)} (columns "
        + ", ".join(s.column or repr(s.value) for s in specs.values())
        + ")",
    )
    return ids


def _row_id(b: _Builder, spec: FieldSpec | None, name: str, ctx: Context) -> ir.StringValue:
    """The source's own id, or a hash of the source row."""
    raw_columns = [c for c in b.t.columns if not c.startswith(INTERNAL)]
    derived = _digest([ibis.literal(ctx.source), *(b.t[c].cast("string") for c in raw_columns)])
    return derived if spec is None else ibis.coalesce(b.typed(name, spec, "string"), derived)


def _consents(b: _Builder, m: ConsentMapping, ctx: Context) -> dict[str, ir.Value]:
    """A consent change: its purpose must be declared, its channel one of the purpose's (or empty: every
    channel of the purpose), its status granted, denied or withdrawn."""
    purposes = ctx.purposes or {}
    cols: dict[str, ir.Value] = {"source": ibis.literal(ctx.source)}
    cols["ts"] = b.typed("timestamp", m.timestamp, "timestamp", required=True)
    purpose = b.typed("purpose", m.purpose, "string", required=True).lower()
    b.reject_if(
        purpose.notnull() & ~purpose.isin(list(purposes) or [""]),
        ibis.literal("purpose: unknown purpose '")
        + purpose
        + f"' (known: {', '.join(sorted(purposes))}; declare others in [privacy.purposes])",
    )
    status = b.typed("status", m.status, "string", required=True).lower()
    b.reject_if(
        status.notnull() & ~status.isin(CONSENT_STATUSES),
        ibis.literal("status: '")
        + status
        + f"' is not one of {', '.join(CONSENT_STATUSES)} (map others with `values`)",
    )
    channel = ibis.null("string")
    if m.channel is not None:
        channel = b.typed("channel", m.channel, "string").lower()
        allowed = ibis.literal(False)
        for name, channels in purposes.items():
            if channels:
                allowed |= (purpose == name) & channel.isin(channels)
        b.reject_if(
            channel.notnull() & purpose.isin(list(purposes) or [""]) & ~allowed,
            ibis.literal("channel: '") + channel + "' is not a channel of purpose '" + purpose + "' (see cx360.toml)",
        )
    cols.update(purpose=purpose, status=status, channel=channel)
    for name in ("legal_basis", "evidence"):
        spec = getattr(m, name)
        if spec is not None:
            cols[name] = b.typed(name, spec, "string")
    cols.update(_required_identifiers(b, m.identifiers, "consent"))
    cols["consent_id"] = _row_id(b, m.consent_id, "consent_id", ctx)
    return cols


def _digest(values: list[ir.Value]) -> ir.StringValue:
    # A separator and a NULL marker keep ("a", "bc") apart from ("ab", "c"), and NULL apart from "".
    return ibis.literal("\x1f").join([ibis.coalesce(v, "\x1e") for v in values]).hexdigest("md5")


def _with_parsed(staged: ir.Table, kind: str, spec: FieldSpec, ctx: Context) -> tuple[ir.Table, ir.Table]:
    """Parse each distinct phone or document once in Python and join its normal form and reason back."""
    b = _Builder(staged, ctx)
    raw_column = f"_{kind}_raw"
    base = staged.mutate(**{raw_column: identifiers.clean(b.origin(spec))})
    distinct = ctx.engine.to_arrow(
        base.select(raw_column).filter(base[raw_column].notnull()).distinct(), step=f"{kind}s"
    )
    table = identifiers.parse_table(kind, distinct[raw_column].to_pylist(), region=ctx.region, scheme=spec.scheme)
    lookup = ctx.engine.stage(
        pa.table(table, schema=pa.schema([("raw", pa.string()), ("value", pa.string()), ("reason", pa.string())]))
    )
    joined = base.left_join(lookup, base[raw_column] == lookup.raw)
    return joined.select(*staged.columns, **{f"_{kind}_value": lookup.value, f"_{kind}_reason": lookup.reason}), lookup


def _require_columns(staged: ir.Table, mapping: Mapping, ctx: Context) -> None:
    if ctx.schemaless:
        return
    wanted = {s.column for s in _specs(mapping) if s.column is not None}
    wanted |= {c for c in (getattr(mapping, "properties_json", None), getattr(mapping, "extra_json", None)) if c}
    missing = sorted(wanted - set(staged.columns))
    if missing:
        have = [c for c in staged.columns if c != ROW]
        raise SourceError(f"source '{ctx.source}': mapped column(s) {missing} are not in the input; it has {have}")


def _specs(m: Mapping) -> list[FieldSpec]:
    specs = list(m.identifiers.values())
    if isinstance(m, RecordMapping):
        specs += [m.record_id, *([m.updated_at] if m.updated_at else []), *m.attributes.values()]
    elif isinstance(m, ConsentMapping):
        optional = [m.channel, m.consent_id, m.legal_basis, m.evidence]
        specs += [m.timestamp, m.purpose, m.status, *[s for s in optional if s]]
    else:
        optional = [m.event_id, m.channel, m.amount]
        specs += [m.timestamp, m.name, *[s for s in optional if s], *m.properties.values()]
    return specs
