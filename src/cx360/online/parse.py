"""Messages of the event log as canonical rows, in Python, for the stream processor.

The drain loads the same messages through ingest (cx360.stream.drain): that stays the authority on
what is quarantined and why. Here a message is read by the same source mapping (the `format =
"segment"` preset, or the JSON Lines mapping a workspace declares for the source), with the same
normalisation of identifiers (cx360.identifiers.normalise_value), fast enough to apply each event in
well under a second. A message the mapping cannot read is skipped here and quarantined by the drain.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from cx360 import node_keys
from cx360.config import Config, EventMapping, FieldSpec, RecordMapping
from cx360.identifiers import document_value, normalise_value
from cx360.schema import ATTRIBUTE_NAMES, IDENTIFIER_KINDS, PII_ATTRIBUTE_NAMES
from cx360.sources.readers import ENTITY, Unfit
from cx360.sources.segment import message_rows

if TYPE_CHECKING:
    from cx360.privacy.vault import Vault


@dataclass
class Parsed:
    """One message: its canonical event (or record, for an identify call) and the nodes it names."""

    event: dict[str, Any] | None = None
    record: dict[str, Any] | None = None
    nodes: list[str] = field(default_factory=list)
    skipped: str | None = None  # why the message is left to the drain's quarantine
    clear: dict[str, str] = field(default_factory=dict)  # with the PII vault on: node -> its clear value


class Reader:
    def __init__(self, config: Config, source, vault: Vault | None = None):
        self.region = config.workspace.default_region
        self.names = set(config.event_names)
        self.source = source
        self.targets = dict(source.targets())
        self.segment = source.preset == "segment"
        self.zone = ZoneInfo(source.timezone or config.workspace.timezone)  # of times without an offset
        self.vault = vault  # rows keep tokens and no personal attributes, as ingest writes them

    def read(self, message: dict[str, Any]) -> Parsed:
        try:
            rows = message_rows(message, {}) if self.segment else [_flat(message)]
        except Unfit as exc:
            return Parsed(skipped=str(exc))
        row = rows[0]
        entity = row.get(ENTITY) or next(iter(self.targets))
        mapping = self.targets.get(entity)
        try:
            if isinstance(mapping, EventMapping):
                return self._event(row, mapping)
            if isinstance(mapping, RecordMapping):
                return self._record(row, mapping)
        except ValueError as exc:
            return Parsed(skipped=str(exc))
        return Parsed(skipped=f"{entity} rows are applied by the batch only")

    def _identifiers(self, row: dict, specs: dict[str, FieldSpec]) -> dict[str, str]:
        out = {}
        for kind, spec in specs.items():
            raw = _value(row, spec)
            if raw is not None:
                text = str(raw)
                value = (
                    document_value(text, spec.scheme)
                    if kind == "document"
                    else normalise_value(kind, text, self.region)
                )
                if value:
                    out[kind] = value
        return out

    def _event(self, row: dict, m: EventMapping) -> Parsed:
        ids, clear = self._pseudonymised(self._identifiers(row, m.identifiers))
        name = _value(row, m.name)
        ts = _typed(_value(row, m.timestamp), "timestamp", "timestamp", self.zone)
        if not ids or name not in self.names or ts is None:
            raise ValueError("no identifier, no time, or an event name cx360 does not know")
        event_id = _value(row, m.event_id) if m.event_id else None
        if m.properties_json:
            props = row.get(m.properties_json)
        else:
            values = {k: _value(row, s) for k, s in m.properties.items()}
            props = json.dumps({k: v for k, v in values.items() if v is not None}) if values else None
        channel = _value(row, m.channel) if m.channel else None
        event = {
            "event_id": str(event_id) if event_id else _digest(row),
            "ts": ts,
            "source": self.source.name,
            "name": name,
            "channel": str(channel).lower() if channel else None,
            "amount": _typed(_value(row, m.amount), "float", "amount") if m.amount else None,
            "properties": props if isinstance(props, str) or props is None else json.dumps(props),
            **{k: ids.get(k) for k in IDENTIFIER_KINDS},
        }
        return Parsed(event=event, nodes=[node_keys.identifier(k, v) for k, v in ids.items()], clear=clear)

    def _record(self, row: dict, m: RecordMapping) -> Parsed:
        record_id = _value(row, m.record_id)
        if not record_id:
            raise ValueError("a record without its id")
        ids, clear = self._pseudonymised(self._identifiers(row, m.identifiers))
        attrs = {n: _typed(_value(row, s), s.type, n, self.zone) for n, s in m.attributes.items()}
        if self.vault is not None:  # the drain's ingest puts them in the vault
            attrs = {n: v for n, v in attrs.items() if n not in PII_ATTRIBUTE_NAMES}
        record = {
            "source": self.source.name,
            "record_id": str(record_id),
            "updated_at": _typed(_value(row, m.updated_at), "timestamp", "updated_at", self.zone)
            if m.updated_at
            else None,
            **{k: ids.get(k) for k in IDENTIFIER_KINDS},
            **{n: attrs.get(n) for n in ATTRIBUTE_NAMES},
            "extra": row.get("_cx360_extra"),
        }
        node = node_keys.record(self.source.name, str(record_id))
        return Parsed(record=record, nodes=[node, *(node_keys.identifier(k, v) for k, v in ids.items())], clear=clear)

    def _pseudonymised(self, ids: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        """The identifiers as tokens, and each token node's clear value; as they are without a vault."""
        if self.vault is None:
            return ids, {}
        tokens = {k: self.vault.token(k, v) for k, v in ids.items()}
        return tokens, {node_keys.identifier(k, tokens[k]): v for k, v in ids.items()}


def _flat(message: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in message.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _value(row: dict, spec: FieldSpec | None) -> Any:
    if spec is None:
        return None
    value = spec.value if spec.column is None else row.get(spec.column)
    if value is None or value == "":
        return None
    if spec.values:
        value = spec.values.get(str(value), value)
    return value


def _typed(value: Any, kind: str, name: str, zone: ZoneInfo | None = None) -> Any:
    if value is None:
        return None
    try:
        if kind == "timestamp":
            t = (
                value
                if isinstance(value, dt.datetime)
                else dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            )
            if t.tzinfo is None and zone is not None:
                t = t.replace(tzinfo=zone)
            return t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo else t
        if kind == "date":
            return dt.date.fromisoformat(str(value)[:10])
        if kind == "float":
            return float(value)
        if kind == "int":
            return int(value)
        if kind == "bool":
            return str(value).lower() in ("1", "true", "yes")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: not a {kind}: {value!r}") from exc
    return str(value)


def _digest(row: dict) -> str:
    return hashlib.md5(json.dumps(row, sort_keys=True, default=str).encode()).hexdigest()
