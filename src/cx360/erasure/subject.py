"""Who is to be erased: every profile id, record, identifier and name of one person, found through
the identity map from any identifier a user has at hand."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import ibis

from cx360 import node_keys
from cx360.errors import NotFoundError
from cx360.identity.explain import candidates, find_profile
from cx360.privacy import reveal
from cx360.privacy.suppression import NAME, normal_name
from cx360.privacy.vault import Vault

if TYPE_CHECKING:
    from cx360.engine import Engine
    from cx360.workspace import Workspace


@dataclass
class Subject:
    profile_ids: list[str]  # the profile and every profile merged into it
    nodes: list[str]  # identity-map nodes: `record:SOURCE:ID` and `KIND:VALUE`
    names: list[str] = field(default_factory=list)  # full names as written, e.g. "Алексей Орлов"
    clear: dict[str, str] = field(default_factory=dict)  # with the vault on: identifier node -> clear value

    @property
    def identifiers(self) -> dict[str, list[str]]:
        """Their identifiers by kind as the warehouse holds them (the vault's tokens when it is on)."""
        return self._by_kind(clear=False)

    @property
    def clear_identifiers(self) -> dict[str, list[str]]:
        """Their identifiers by kind in clear, as sources, the event log and free text hold them."""
        return self._by_kind(clear=True)

    def _by_kind(self, *, clear: bool) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for node in self.nodes:
            kind, value = node_keys.parse(node)
            if kind != node_keys.RECORD:
                out.setdefault(kind, []).append(self.clear.get(node, value) if clear else value)
        return out

    @property
    def vault_subjects(self) -> list[str]:
        """Every vault subject of theirs: identifier and record nodes, and their profiles' golden records."""
        return sorted({*self.nodes, *(reveal.profile_subject(p) for p in self.profile_ids)})

    @property
    def records(self) -> list[tuple[str, str]]:
        return [node_keys.record_parts(n) for n in self.nodes if node_keys.kind_of(n) == node_keys.RECORD]

    def suppressed(self) -> list[tuple[str, str]]:
        """(kind, value) pairs for the suppression list: identifiers, records and full names."""
        pairs = [(k, v) for k, values in self.clear_identifiers.items() for v in values]
        pairs += [(node_keys.RECORD, f"{s}{node_keys.SEP}{r}") for s, r in self.records]
        pairs += [(NAME, n) for n in {normal_name(name) for name in self.names} if n]
        return pairs

    def terms(self) -> list[str]:
        """What the verification scan looks for: each identifier and full name, as stored and as written."""
        found = {v for values in (*self.identifiers.values(), *self.clear_identifiers.values()) for v in values}
        for kind, values in self.clear_identifiers.items():
            if kind == "phone":
                found.update(v.lstrip("+") for v in values)  # E.164 without its plus, as many files write it
        for name in self.names:
            found.update({name, name.lower()})
        return sorted(t for t in found if len(t) >= 4)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Subject:
        return cls(**data)


def resolve(ws: Workspace, text: str) -> Subject:
    """The person behind `text` (a profile id, node key or bare identifier); NotFoundError if nobody."""
    vault = Vault.of(ws)
    try:
        return _resolve(ws, vault, text)
    finally:
        if vault is not None:
            vault.close()


def _resolve(ws: Workspace, vault: Vault | None, text: str) -> Subject:
    engine = ws.engine
    try:
        pid = find_profile(ws, text)
    except NotFoundError:
        loose = _unplaced(ws, text)
        if not loose:
            raise
        return Subject(profile_ids=[], nodes=loose, clear=_clear(vault, loose))
    pids = _with_merged(engine, pid)
    im = engine.table("identity_map")
    nodes = sorted(
        engine.to_arrow(im.filter(im.profile_id.isin(pids)).select("node"), step="erasure: nodes")["node"].to_pylist()
    )
    return Subject(profile_ids=pids, nodes=nodes, names=_names(engine, vault, pids, nodes), clear=_clear(vault, nodes))


def _clear(vault: Vault | None, nodes: list[str]) -> dict[str, str]:
    """identifier node -> its clear value, from the vault when it is on (it holds every one of them)."""
    if vault is None:
        return {}
    got = vault.reveal(n for n in nodes if node_keys.kind_of(n) != node_keys.RECORD)
    return {n: items[reveal.VALUE]["value"] for n, items in got.items() if reveal.VALUE in items}


def _unplaced(ws: Workspace, text: str) -> list[str]:
    """The identifier behind `text` when events hold it but identity placed it in no profile (a post's
    handle that no record knows: a prospect of social listening), as node keys."""
    ev = ws.engine.table("events")
    found = []
    for node in candidates(ws, text):
        kind, value = node_keys.parse(node)
        if kind in ev.columns and ws.engine.scalar(ev.filter(ev[kind] == value).count(), step="erasure: unplaced") > 0:
            found.append(node)
    return found


def _with_merged(engine: Engine, pid: str) -> list[str]:
    """`pid` and every id that was merged into it, directly or through another merged id."""
    ids = engine.table("profile_ids")
    merged = engine.to_arrow(
        ids.filter(ids.merged_into.notnull()).select("profile_id", "merged_into"), step="erasure: merged profiles"
    ).to_pylist()
    found, frontier = {pid}, {pid}
    while frontier:
        frontier = {r["profile_id"] for r in merged if r["merged_into"] in frontier} - found
        found |= frontier
    return sorted(found)


def _names(engine: Engine, vault: Vault | None, pids: list[str], nodes: list[str]) -> list[str]:
    """Full names on the person's records and golden profile, in both orders and with the middle name
    (with the vault on, the tables hold none: the vault's record versions and golden records do)."""
    rec = engine.table("records")
    keys = [n for n in nodes if node_keys.kind_of(n) == node_keys.RECORD]
    rows = engine.to_arrow(
        rec.filter(node_keys.record_expr(rec.source, rec.record_id).isin(keys or [""])).select(
            "first_name", "middle_name", "last_name"
        ),
        step="erasure: names on records",
    ).to_pylist()
    prof = engine.table("profiles")
    rows += engine.to_arrow(
        prof.filter(prof.profile_id.isin(pids)).select("first_name", "middle_name", "last_name"),
        step="erasure: golden names",
    ).to_pylist()
    if vault is not None:
        held = vault.reveal([*keys, *(reveal.profile_subject(p) for p in pids)])
        rows += [payload for items in held.values() for payload in items.values()]
    names: set[str] = set()
    for r in rows:
        first, middle, last = (r[c].strip() if r.get(c) else None for c in ("first_name", "middle_name", "last_name"))
        if first and last:
            names |= {f"{first} {last}", f"{last} {first}"}
            if middle:
                names |= {f"{first} {middle} {last}", f"{last} {first} {middle}"}
    return sorted(names)


def event_keys(engine: Engine, subject: Subject) -> ibis.Table:
    """(source, event_id) of every event that holds one of the person's identifiers."""
    ev = engine.table("events")
    return ev.filter(holds_identifier(ev, subject)).select("source", "event_id")


def holds_identifier(t: ibis.Table, subject: Subject) -> ibis.BooleanValue:
    """Rows of `t` with one of the person's identifiers in the column of its kind."""
    conditions = [t[kind].isin(values) for kind, values in subject.identifiers.items() if kind in t.columns]
    return ibis.or_(*conditions) if conditions else ibis.literal(False)
