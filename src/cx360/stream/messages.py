"""Segment-spec calls as the collector receives them: the body, each message's checks, its fingerprint.

Limits are Segment's: 32 KB per message, 500 KB per batch (after gzip is undone). A message needs a
`messageId`: Segment's and RudderStack's SDKs always send one, and an id invented here from the
payload would merge two genuinely identical events into one, so a message without one is rejected
with that reason. The payload fingerprint (SHA-256 of the message with sorted keys, without the
transport's `sentAt` and `writeKey`) tells a retry (same id, same payload: a natural duplicate)
from a different message reusing an id (a synthetic duplicate, rejected).
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import zlib
from dataclasses import dataclass
from typing import Any

import orjson  # several times faster than json here, where every message is parsed and written

from cx360.errors import Cx360Error

CALLS = ("track", "identify", "page", "screen", "group", "alias")
MAX_MESSAGE_BYTES = 32 << 10
MAX_BATCH_BYTES = 500 << 10
MAX_MESSAGE_ID = 256
_TRANSPORT_KEYS = ("sentAt", "writeKey")
_SORTED = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


class BadRequestError(Cx360Error):
    """The request as a whole cannot be read (not JSON, too large, no batch): nothing of it was accepted."""

    http_status = 400


class MalformedError(BadRequestError):
    """The body is not readable JSON of the expected shape: kept with its reason, for `quarantine`."""


class TooLargeError(BadRequestError):
    http_status = 413


@dataclass
class Checked:
    """One message of a request: its id, what the collector decided, and the line it stores."""

    message_id: str | None
    fingerprint: str | None
    reason: str | None  # None: valid
    message: Any


def read_body(body: bytes, encoding: str | None) -> Any:
    """The JSON document of a request body, gzip undone, within the batch limit."""
    if (encoding or "").strip().lower() == "gzip":
        d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            body = d.decompress(body, MAX_BATCH_BYTES + 1)
        except (zlib.error, gzip.BadGzipFile) as exc:
            raise MalformedError(f"malformed gzip body: {exc}") from None
        if len(body) > MAX_BATCH_BYTES or d.unconsumed_tail:
            raise TooLargeError(f"batch larger than {MAX_BATCH_BYTES // 1024} KB once decompressed")
    elif encoding and encoding.strip().lower() not in ("identity", ""):
        raise BadRequestError(f"unsupported Content-Encoding {encoding!r}: send gzip or none")
    if len(body) > MAX_BATCH_BYTES:
        raise TooLargeError(f"batch larger than {MAX_BATCH_BYTES // 1024} KB ({len(body) // 1024} KB)")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedError(f"malformed JSON: {exc}") from None


def messages_of(doc: Any, call: str | None) -> tuple[list[Any], Any]:
    """The messages of a request and its batch-level `sentAt`; `call` is the type a single-call
    endpoint implies (None for /v1/batch)."""
    if not isinstance(doc, dict):
        raise MalformedError("malformed request: the body must be a JSON object")
    if call is None:
        batch = doc.get("batch")
        if not isinstance(batch, list):
            raise MalformedError('malformed batch: expected {"batch": [messages...]}')
        return batch, doc.get("sentAt")
    return [doc], doc.get("sentAt")


def check(message: Any, call: str | None, sent_at: Any) -> Checked:
    """Validate one message and fingerprint it; an invalid one carries its reason."""
    if not isinstance(message, dict):
        return Checked(None, None, "a message must be a JSON object", message)
    mid = message.get("messageId")
    mid = mid if isinstance(mid, str) and mid else None
    if call is not None and message.get("type") is None:
        message["type"] = call
    try:  # the message without the transport's fields, keys sorted: its size and its fingerprint
        canonical = orjson.dumps({k: v for k, v in message.items() if k not in _TRANSPORT_KEYS}, option=_SORTED)
    except orjson.JSONEncodeError as exc:
        return Checked(mid, None, f"cannot be stored as JSON: {exc}", message)
    reason = _reason(message, call, mid, len(canonical))
    if reason is None and sent_at is not None and "sentAt" not in message:
        message["sentAt"] = sent_at  # Segment's clock-skew correction needs it on each message
    digest = hashlib.sha256(canonical).hexdigest()[:32] if reason is None else None
    return Checked(mid, digest, reason, message)


def _reason(m: dict, call: str | None, mid: str | None, size: int) -> str | None:
    if size > MAX_MESSAGE_BYTES:
        return f"message larger than {MAX_MESSAGE_BYTES // 1024} KB ({size / 1024:.1f} KB)"
    kind = m.get("type")
    if kind not in CALLS:
        return f"unknown call type {kind!r}: expected one of {', '.join(CALLS)}"
    if call is not None and kind != call:
        return f"type {kind!r} posted to /v1/{call}"
    if mid is None:
        return "missing messageId: every message needs a unique messageId (the SDKs always send one)"
    if len(mid) > MAX_MESSAGE_ID:
        return f"messageId longer than {MAX_MESSAGE_ID} characters"
    if not _text(m.get("userId")) and not _text(m.get("anonymousId")):
        return "missing userId and anonymousId: a message needs at least one"
    if kind == "track" and not (isinstance(m.get("event"), str) and m["event"]):
        return "track without an event name"
    if kind == "group" and not _text(m.get("groupId")):
        return "group without a groupId"
    if kind == "alias" and not _text(m.get("previousId")):
        return "alias without a previousId"
    for key in ("timestamp", "sentAt", "originalTimestamp"):
        if key in m and m[key] is not None and _instant(m[key]) is None:
            return f"{key}: not an ISO 8601 date and time: {str(m[key])[:60]!r}"
    for key in ("properties", "traits", "context"):
        if key in m and m[key] is not None and not isinstance(m[key], dict):
            return f"{key}: expected a JSON object"
    return None


def _text(v: Any) -> bool:
    return (isinstance(v, str) and bool(v.strip())) or (isinstance(v, int) and not isinstance(v, bool))


def _instant(v: Any) -> dt.datetime | None:
    if not isinstance(v, str):
        return None
    try:
        return dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return None


def raw_text(message: Any, limit: int = MAX_BATCH_BYTES) -> str:
    text = message if isinstance(message, str) else json.dumps(message, ensure_ascii=False, default=str)
    return text[:limit]
