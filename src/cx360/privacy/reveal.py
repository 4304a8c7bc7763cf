"""Clear values out of the PII vault (cx360.privacy.vault), for the reads that may have them: a role
with `pii`, an export to the contact its purpose needs, subject access, erasure. The callers check the
role and the consent and audit the read; these functions only turn tokens and subjects into values.

A vault subject is an identifier node (`email:tk_…`, item "value"), a record node (`record:SRC:ID`, an
item per record version) or a profile (`profile:PID`, item "golden": the golden record's personal
attributes). A token the vault no longer holds (its subject was shredded) stays a token.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from contextlib import closing
from typing import TYPE_CHECKING

import pyarrow as pa

from cx360 import node_keys
from cx360.privacy.vault import TOKEN_DIGITS, TOKEN_PREFIX, Vault

if TYPE_CHECKING:
    from cx360.workspace import Workspace

PROFILE = "profile"
GOLDEN = "golden"
VALUE = "value"
_TOKEN = re.compile(rf"{TOKEN_PREFIX}[0-9a-f]{{{TOKEN_DIGITS}}}")


def is_token(value: str) -> bool:
    return bool(_TOKEN.fullmatch(value))


def profile_subject(profile_id: str) -> str:
    return f"{PROFILE}{node_keys.SEP}{profile_id}"


def clear_values(vault: Vault, kind: str, tokens: Iterable[str | None]) -> dict[str, str]:
    """token -> clear value, for the tokens of `kind` the vault holds."""
    subjects = {node_keys.identifier(kind, t): t for t in tokens if t}
    got = vault.reveal(subjects)
    return {subjects[s]: items[VALUE]["value"] for s, items in got.items() if VALUE in items}


def clear_identifiers(vault: Vault, identifiers: dict[str, list[str]]) -> dict[str, list[str]]:
    """The identifiers by kind with each token replaced by its clear value (one read of the vault)."""
    got = vault.reveal(node_keys.identifier(k, t) for k, tokens in identifiers.items() for t in tokens)

    def clear(kind: str, token: str) -> str:
        return got.get(node_keys.identifier(kind, token), {}).get(VALUE, {}).get("value", token)

    return {k: [clear(k, t) for t in tokens] for k, tokens in identifiers.items()}


def clear_columns(ws: Workspace, table: pa.Table, kinds: Iterable[str]) -> pa.Table:
    """`table` with its identifier columns of these kinds in clear, when the workspace has the vault on
    (its tables hold tokens): for an export to the contacts its purpose and consent allow, each kind's
    column revealed in place. As it is with the vault off."""
    vault = Vault.of(ws)
    if vault is None:
        return table
    with closing(vault):
        for kind in kinds:
            tokens = table.column(kind).to_pylist()
            clear = clear_values(vault, kind, tokens)
            column = pa.array([clear.get(t) if t else None for t in tokens], pa.string())
            table = table.set_column(table.column_names.index(kind), kind, column)
    return table


def golden(vault: Vault, profile_ids: Iterable[str]) -> dict[str, dict]:
    """profile id -> the golden record's personal attributes ({} for a profile the vault has none of)."""
    ids = list(dict.fromkeys(profile_ids))
    got = vault.reveal(profile_subject(p) for p in ids)
    return {p: got.get(profile_subject(p), {}).get(GOLDEN, {}) for p in ids}
