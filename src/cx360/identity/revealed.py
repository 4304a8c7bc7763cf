"""Clear values for the identity stage when the PII vault is on (see cx360.privacy.vault).

Matching, junk detection and the golden record compare names, birth dates, e-mails and phones, which
the warehouse holds only as tokens and NULLs. They get them here from the vault, in the stage's own
Arrow tables, which are never written back: what the stage writes holds tokens and NULLs again.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

import pyarrow as pa

from cx360 import node_keys
from cx360.privacy.reveal import GOLDEN, VALUE, profile_subject
from cx360.schema import PII_ATTRIBUTE_NAMES as PII_ATTRIBUTES

if TYPE_CHECKING:
    from cx360.privacy.vault import Vault


def _payloads(vault: Vault, subjects: list[str], items: list[str]) -> dict[tuple[str, str], dict]:
    if not subjects:
        return {}
    asked = pa.table({"subject": pa.array(subjects, pa.string()), "item": pa.array(items, pa.string())})
    got = vault.reveal_table(asked)
    return {
        (s, i): json.loads(p)
        for s, i, p in zip(*(got[c].to_pylist() for c in ("subject", "item", "payload")), strict=True)
        if p is not None
    }


def identifier_values(vault: Vault, nodes: Iterable[str]) -> dict[str, str]:
    """The clear value of each identifier node the vault holds (record nodes and shredded ones absent)."""
    keys = sorted({n for n in nodes if not n.startswith(node_keys.RECORD + node_keys.SEP)})
    found = _payloads(vault, keys, [VALUE] * len(keys))
    return {s: p[VALUE] for (s, _), p in found.items() if VALUE in p}


def with_attributes(vault: Vault, table: pa.Table) -> pa.Table:
    """`table` (a row per record version: `node`, `record_hash`) with its personal attribute columns
    filled from the vault."""
    nodes, hashes = table["node"].to_pylist(), table["record_hash"].to_pylist()
    found = _payloads(vault, nodes, hashes)
    payloads = [found.get((n, h), {}) for n, h in zip(nodes, hashes, strict=True)]
    for name in PII_ATTRIBUTES:
        if name not in table.column_names:
            continue
        i = table.schema.get_field_index(name)
        kind = table.schema.field(i).type
        values = [p.get(name) for p in payloads]
        if pa.types.is_date(kind):
            values = [_date(v) for v in values]
        table = table.set_column(i, name, pa.array(values, kind))
    return table


def with_identifiers(vault: Vault, table: pa.Table, kinds: Iterable[str]) -> pa.Table:
    """`table` with the tokens in its `kinds` columns replaced by their clear values."""
    kinds = [k for k in kinds if k in table.column_names]
    tokens = {k: table[k].to_pylist() for k in kinds}
    clear = identifier_values(vault, (node_keys.identifier(k, t) for k in kinds for t in tokens[k] if t))
    for k in kinds:
        values = [None if t is None else clear.get(node_keys.identifier(k, t)) for t in tokens[k]]
        table = table.set_column(table.schema.get_field_index(k), k, pa.array(values, pa.string()))
    return table


def birth_dates(vault: Vault, profile_ids: list[str]) -> pa.Table:
    """profile_id, birth_date of the golden records the vault holds, for traits (age)."""
    subjects = {profile_subject(p): p for p in profile_ids}
    found = _payloads(vault, list(subjects), [GOLDEN] * len(subjects))
    born = {subjects[s]: p.get("birth_date") for (s, _), p in found.items()}
    return pa.table(
        {
            "profile_id": pa.array(profile_ids, pa.string()),
            "birth_date": pa.array([_date(born.get(p)) for p in profile_ids], pa.date32()),
        }
    )


def _date(value: str | None) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(value)
