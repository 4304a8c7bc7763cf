"""The `format = "segment"` preset: a Segment or RudderStack export (or the collector's event log) read as it is.

Every call type lands somewhere, in one file:

- track, page, screen, group and alias become events (`event_id` = messageId);
- identify becomes a record: its traits are attributes and identifiers, keyed by userId;
- anonymousId becomes a device identifier for calls from an app and a cookie otherwise, so that
  `cx360 identity resolve` stitches anonymous activity to the userId it was later seen with;
- alias (previousId -> userId) is an event holding both identifiers: the identity graph links them
  as co-occurring identifiers, and the alias event (its messageId in `events`) is the evidence.
  (A record would not do: the alias record and the user's identify record would hold the same
  customer number, which the graph reads as a value shared by two customers, and blocks.)

Each message keeps its own keys, flattened (`context.traits.email`), so a source's mapping can name
any of them; the reader adds the columns the preset maps from, which start with `_cx360_`:
`_cx360_ts` (the time, corrected for the client's clock), `_cx360_name`, `_cx360_channel`,
`_cx360_cookie_id`, `_cx360_device_id`, `_cx360_record_id`, `_cx360_properties` and `_cx360_extra`
(the properties and the other traits, as JSON objects), and `_cx360_entity` (records or events).

A message carrying `context.consent.categoryPreferences` (Segment's consent management sends it on
every call, and alone as the track call "Segment Consent Preference Updated", which becomes a
`consent_changed` event) also gives one row per category for the consents ledger, under the
message's row number: `_cx360_consent_category`, `_cx360_consent_status` (granted or denied) and
`_cx360_consent_id` (messageId:category).
A message that is not a call (no type, an unknown type, a group without groupId...) is quarantined
with its reason.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from cx360.sources.readers import (
    ENTITY,
    INTERNAL,
    MALFORMED,
    ROW,
    Chunk,
    JsonlReader,
    Malformed,
    ParquetReader,
    Reader,
    Unfit,
    dict_table,
    flat_row,
    input_files,
)
from cx360.sources.textfile import check_encoding

CALLS = ("track", "page", "screen", "identify", "group", "alias")
# The traits the preset maps to attributes and identifiers (config.SEGMENT_RECORDS); the others go to extra.
MAPPED_TRAITS = ("email", "phone", "firstName", "lastName", "birthday", "gender", "address", "createdAt")
APP, WEB = "mobile_app", "web"
CONSENT_EVENT = "Segment Consent Preference Updated"  # the track call of Segment's consent management
_REASON = MALFORMED + "Segment message: "


def translate(message: dict, spelling: dict[str, str] | None = None) -> dict[str, str | None]:
    """One Segment message as a row: its keys flattened, plus the columns the preset maps from.

    Raises Unfit, with the reason, for a message that is not a call cx360 can take."""
    kind = message.get("type")
    if not isinstance(kind, str) or not kind.strip():
        raise Unfit(_REASON + "no call type (the 'type' key)")
    call = kind.strip().lower()
    if call not in CALLS:
        raise Unfit(_REASON + f"unknown call type {kind!r}; the calls are {', '.join(CALLS)}")
    for key in ("properties", "traits", "context"):
        if message.get(key) is not None and not isinstance(message[key], dict):
            raise Unfit(_REASON + f"{key!r} must be an object")
    context = message.get("context") or {}
    if call == "identify" and not message.get("traits") and isinstance(context.get("traits"), dict):
        message = {**message, "traits": context["traits"]}  # RudderStack's web SDK sends them there only
    row = flat_row(message, {} if spelling is None else spelling)
    channel = _channel(message, call)
    anonymous = _text(message.get("previousId" if call == "alias" else "anonymousId"))
    row.update(
        {
            ENTITY: "records" if call == "identify" else "events",
            INTERNAL + "ts": corrected_time(message),
            INTERNAL + "name": _name(message, call),
            INTERNAL + "channel": channel,
            INTERNAL + "device_id": anonymous if channel == APP else None,
            INTERNAL + "cookie_id": None if channel == APP else anonymous,
            INTERNAL + "record_id": (_text(message.get("userId")) or anonymous) if call == "identify" else None,
            INTERNAL + "properties": _json(_properties(message, call)),
            INTERNAL + "extra": _json(_extra(message)) if call == "identify" else None,
        }
    )
    return row


def corrected_time(message: dict) -> str | None:
    """When the call happened, by the server's clock: the client's time plus (receivedAt - sentAt), which
    removes the skew of the client's clock (Segment's own rule). The client's time is originalTimestamp
    when the message has it (an export, whose timestamp is already corrected), else timestamp. Without
    sentAt and receivedAt the client's time is taken as it is; a value that is not a time is passed on
    as it is, for the mapping to quarantine with its reason. A call sent without any time happened when
    the collector received it (Segment's rule too)."""
    key = "originalTimestamp" if message.get("originalTimestamp") is not None else "timestamp"
    client = message.get(key)
    if client is None and (received := _time(message.get("receivedAt"))) is not None:
        return _written(received, message.get("receivedAt"))
    when = _time(client)
    if when is None:
        return _text(client)
    sent, received = message.get("sentAt"), message.get("receivedAt")
    if sent is not None and received is not None:
        sent_at, received_at = _time(sent), _time(received)
        for name, raw, value in (("sentAt", sent, sent_at), ("receivedAt", received, received_at)):
            if value is None:
                raise Unfit(_REASON + f"{name} is not a time: {_text(raw)!r}")
        when += received_at - sent_at  # type: ignore[operator]
    return _written(when, client)


def _written(when: dt.datetime, raw: object) -> str:
    """The time in UTC, marked +00:00 when the message gave its zone: only a time written without one
    is read on the source's clock ([[sources]] timezone)."""
    zoned = _time(raw, keep_zone=True)
    return when.isoformat(sep=" ") + ("+00:00" if zoned is not None and zoned.tzinfo else "")


def consent(message: dict) -> dict | None:
    """The consent the message carries (`context.consent`, as Segment's consent management sends it:
    `categoryPreferences` of purpose -> true/false), or None. The consent ledger reads it from here."""
    context = message.get("context")
    found = context.get("consent") if isinstance(context, dict) else None
    return found if isinstance(found, dict) else None


def consent_rows(message: dict, row: dict[str, str | None]) -> list[dict[str, str | None]]:
    """The consents ledger's rows of a message (its row as `translate` gave it): one per category of
    `context.consent.categoryPreferences`, granted (true) or denied (false) at the message's time. The
    category is `_cx360_consent_category`, which the source's [sources.consents] purpose maps to a purpose
    (`purpose = { column = "_cx360_consent_category", values = { Advertising = "marketing" } }`)."""
    found = consent(message)
    preferences = found.get("categoryPreferences") if found else None
    if not isinstance(preferences, dict):
        return []
    message_id = _text(message.get("messageId"))
    return [
        {
            **row,
            ENTITY: "consents",
            INTERNAL + "consent_id": f"{message_id}:{category}" if message_id else None,
            INTERNAL + "consent_category": str(category),
            INTERNAL + "consent_status": {True: "granted", False: "denied"}.get(value, _text(value)),  # type: ignore[call-overload]
        }
        for category, value in sorted(preferences.items())
    ]


def message_rows(message: dict, spelling: dict[str, str]) -> list[dict[str, str | None]]:
    """A message's rows: the call itself, then the consents it carries."""
    row = translate(message, spelling)
    return [row, *consent_rows(message, row)]


def to_chunk(messages: Iterable[dict | bytes | str], first_row: int = 1) -> Chunk:
    """Messages as one chunk of numbered rows, those that are not calls set aside with their reasons:
    what the collector's drain loads with `ingest.load_batch(..., schemaless=True)`."""
    rows, numbers, bad = [], [], []
    spelling: dict[str, str] = {}
    for n, item in enumerate(messages, start=first_row):
        raw = item if isinstance(item, (bytes, str)) else None
        try:
            message = json.loads(raw) if raw is not None else item
            if not isinstance(message, dict):
                raise Unfit("malformed JSON: a message must be an object")
            found = message_rows(message, spelling)
            rows += found
            numbers += [n] * len(found)
        except ValueError as exc:  # Unfit, or JSON that does not parse
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
            why = str(exc) if isinstance(exc, Unfit) else f"malformed JSON: {exc}"
            bad.append(Malformed(n, text if text is not None else json.dumps(item, default=str), why))
    return Chunk(dict_table(rows, numbers), bad)


class SegmentJsonlReader(JsonlReader):
    """JSON lines of Segment messages (an export, or the collector's event log)."""

    def row(self, obj: dict, spelling: dict[str, str]) -> dict[str, str | None]:
        return translate(obj, spelling)

    def rows(self, obj: dict, spelling: dict[str, str]) -> list[dict[str, str | None]]:
        return message_rows(obj, spelling)


class SegmentParquetReader(ParquetReader):
    """Parquet of Segment messages, one per row, nested objects as structs."""

    schemaless = True  # a message lacks the keys its call type does not have

    def chunks(self) -> Iterator[Chunk]:
        spelling: dict[str, str] = {}
        for chunk in super().chunks():
            numbers = chunk.data[ROW].to_pylist()
            rows, kept, bad = [], [], []
            for n, message in zip(numbers, chunk.data.drop_columns([ROW]).to_pylist(), strict=True):
                try:
                    found = message_rows(_drop_nulls(message), spelling)  # type: ignore[arg-type]
                    rows += found
                    kept += [n] * len(found)
                except Unfit as exc:
                    bad.append(Malformed(n, json.dumps(message, ensure_ascii=False, default=str), str(exc)))
            yield Chunk(dict_table(rows, kept), bad)


def readers(source, root: Path) -> list[Reader]:
    """One reader per file of a `format = "segment"` source (JSON lines or Parquet)."""
    files = input_files(source, root)
    if source.kind == "parquet":
        return [SegmentParquetReader(p) for p in files]
    encoding = check_encoding(source.encoding, source.name)
    return [SegmentJsonlReader(p, encoding) for p in files]


def _drop_nulls(value: object) -> object:
    """A Parquet row holds every column of the file; a message has only the keys it was sent with."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    return value


def _channel(message: dict, call: str) -> str | None:
    """mobile_app or web, from what the message says of itself, strongest first: the channel an export
    names (Segment's browser or mobile, RudderStack's web or mobile), the call (screen or page), then the
    context (a device is an app's; a page or a user agent a browser's; RudderStack's web SDK names
    itself in context.app, so the app comes last). None for a call from a server."""
    context = message.get("context") or {}
    said = str(message.get("channel") or "").lower()
    if said in ("browser", "web"):
        return WEB
    if said == "mobile" or call == "screen":
        return APP
    if call == "page":
        return WEB
    if "device" in context:
        return APP
    if "page" in context or "userAgent" in context:
        return WEB
    return APP if "app" in context else None


def _name(message: dict, call: str) -> str | None:
    if call == "track":
        event = _text(message.get("event"))
        return "consent_changed" if event == CONSENT_EVENT else event
    return {"page": "page_viewed", "screen": "page_viewed", "group": "group", "alias": "alias"}.get(call)


def _properties(message: dict, call: str) -> dict | None:
    props = dict(message.get("properties") or {})
    if call in ("page", "screen"):
        for key in ("name", "category"):
            if message.get(key) is not None:
                props.setdefault(key, message[key])
    elif call == "group":
        if _text(message.get("groupId")) is None:
            raise Unfit(_REASON + "a group call needs a groupId")
        props = {"group_id": message["groupId"], **({"traits": message["traits"]} if message.get("traits") else {})}
    elif call == "alias":
        if _text(message.get("previousId")) is None or _text(message.get("userId")) is None:
            raise Unfit(_REASON + "an alias call needs both previousId and userId")
        props = {"previous_id": message["previousId"]}
    return props or None


def _extra(message: dict) -> dict | None:
    traits = message.get("traits") or {}
    return {k: v for k, v in traits.items() if k not in MAPPED_TRAITS} or None


def _time(value: object, *, keep_zone: bool = False) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        stamp = value
    elif isinstance(value, str):
        try:
            stamp = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    else:
        return None
    if keep_zone or not stamp.tzinfo:
        return stamp
    return stamp.astimezone(dt.UTC).replace(tzinfo=None)


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _json(value: dict | None) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
