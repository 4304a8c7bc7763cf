"""Find a profile from anything a user has at hand, and show why its records are together."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cx360 import node_keys
from cx360.errors import NotFoundError
from cx360.identifiers import normalise_value
from cx360.identity import overrides
from cx360.privacy.reveal import is_token
from cx360.schema import IDENTIFIER_KINDS

if TYPE_CHECKING:
    from cx360.privacy.vault import Vault
    from cx360.workspace import Workspace


def node_candidates(text: str, region: str | None, vault: Vault | None = None) -> list[str]:
    """Node keys a user's input may mean: a node key as is, or a bare identifier of any kind. With the
    vault on, the keys hold the token of each normalised value (a token given as is stays as is)."""
    text = text.strip()
    key = node_keys.try_parse(text)
    if key is not None and key.kind == node_keys.RECORD:
        return [text]
    if key is not None and vault is not None and is_token(key.value):
        return [text]
    kinds = [key.kind] if key is not None else IDENTIFIER_KINDS
    out = []
    for k in kinds:
        v = normalise_value(k, key.value if key is not None else text, region)
        if v:
            out.append(node_keys.identifier(k, vault.token(k, v) if vault is not None else v))
    return out


def candidates(ws: Workspace, text: str) -> list[str]:
    """node_candidates in this workspace: its default region, and its vault when it has one on."""
    from cx360.privacy.vault import Vault

    vault = Vault.of(ws)
    try:
        return node_candidates(text, ws.config.workspace.default_region, vault)
    finally:
        if vault is not None:
            vault.close()


def find_profile(ws: Workspace, text: str) -> str:
    """The profile id for a profile id, node key or bare identifier value."""
    engine = ws.engine
    mapping = engine.table("identity_map")
    if text.startswith("P"):
        hit = engine.to_arrow(
            mapping.filter(mapping.profile_id == text).select("profile_id").limit(1), step="find profile"
        )
        if hit.num_rows:
            return text
        ids = engine.table("profile_ids")
        merged = engine.to_arrow(ids.filter(ids.profile_id == text).select("merged_into"), step="find merged profile")
        if merged.num_rows and merged["merged_into"][0].as_py():
            return find_profile(ws, merged["merged_into"][0].as_py())
    nodes = candidates(ws, text)
    hits = (
        engine.to_arrow(mapping.filter(mapping.node.isin(nodes)).select("node", "profile_id"), step="find profile")
        if nodes
        else None
    )
    if hits is None or not hits.num_rows:
        raise NotFoundError(
            f"no profile holds {text!r} (tried: {', '.join(nodes) or 'nothing parseable'}); "
            "run `cx360 identity resolve` first?"
        )
    found = sorted(set(hits["profile_id"].to_pylist()))
    if len(found) > 1:
        raise NotFoundError(
            f"{text!r} is ambiguous: "
            + ", ".join(
                f"{n} -> {p}" for n, p in zip(hits["node"].to_pylist(), hits["profile_id"].to_pylist(), strict=True)
            )
            + "; give the kind, e.g. email:..."
        )
    return found[0]


@dataclass
class Explanation:
    profile_id: str | None  # None: the value belongs to no profile, and `blocked` says why
    nodes: list[dict]
    links: list[dict]
    blocked: list[dict]
    golden: dict
    sources: dict
    history: list[dict] = field(default_factory=list)


def explain(ws: Workspace, text: str) -> Explanation:
    """Why a profile's records and identifiers are together; or, for a value that links to nobody
    (a placeholder, a shared phone, a cookie seen with several profiles), the blocked links that say why."""
    engine = ws.engine
    try:
        pid = find_profile(ws, text)
    except NotFoundError:
        unlinked = _unlinked(ws, text)
        if unlinked is None:
            _raise_if_dropped(ws, text)
            raise
        return unlinked
    mapping = engine.table("identity_map")
    nodes = engine.to_arrow(
        mapping.filter(mapping.profile_id == pid).order_by("node"), step="explain: nodes"
    ).to_pylist()
    keys = [n["node"] for n in nodes]
    links = engine.table("identity_links")
    touching = links.filter(links.left.isin(keys) | links.right.isin(keys)).order_by(
        ["status", "rule", "left", "right"]
    )
    rows = engine.to_arrow(touching, step="explain: links").to_pylist()
    for r in rows:
        r["evidence"] = json.loads(r["evidence"]) if r["evidence"] else {}
    profiles = engine.table("profiles")
    golden = engine.to_arrow(profiles.filter(profiles.profile_id == pid), step="explain: golden record").to_pylist()
    golden_row = golden[0] if golden else {}
    hist = engine.table("identity_overrides")
    history = engine.to_arrow(
        hist.filter(hist.left.isin(keys) | hist.right.isin(keys)).order_by("at"), step="explain: history"
    ).to_pylist()
    return Explanation(
        profile_id=pid,
        nodes=nodes,
        links=[r for r in rows if r["status"] == "active"],
        blocked=[r for r in rows if r["status"] == "blocked"],
        golden={k: v for k, v in golden_row.items() if k not in ("attribute_sources", "identifiers")},
        sources=json.loads(golden_row.get("attribute_sources") or "{}"),
        history=history,
    )


def _unlinked(ws: Workspace, text: str) -> Explanation | None:
    """The explanation of identifier nodes that hold only blocked links, or None if there are none."""
    engine = ws.engine
    keys = [k for k in candidates(ws, text) if node_keys.kind_of(k) != node_keys.RECORD]
    if not keys:
        return None
    links = engine.table("identity_links")
    touching = links.filter((links.left.isin(keys) | links.right.isin(keys)) & (links.status == "blocked"))
    rows = engine.to_arrow(touching.order_by(["rule", "left", "right"]), step="explain: blocked links").to_pylist()
    if not rows:
        return None
    for r in rows:
        r["evidence"] = json.loads(r["evidence"]) if r["evidence"] else {}
    held = sorted({end for r in rows for end in (r["left"], r["right"]) if end in keys})
    hist = engine.table("identity_overrides")
    history = engine.to_arrow(
        hist.filter(hist.left.isin(held) | hist.right.isin(held)).order_by("at"), step="explain: history"
    ).to_pylist()
    return Explanation(
        profile_id=None,
        nodes=[{"node": n, "kind": node_keys.kind_of(n), "profile_id": None} for n in held],
        links=[],
        blocked=rows,
        golden={},
        sources={},
        history=history,
    )


def _raise_if_dropped(ws: Workspace, text: str) -> None:
    """A malformed value never reached the graph: say where it went instead of 'not found'."""
    drops = ws.engine.table("dropped_identifiers")
    key = node_keys.try_parse(text.strip())
    value = key.value if key is not None and key.kind != node_keys.RECORD else text.strip()
    hit = ws.engine.to_arrow(
        drops.filter(drops.value == value).select("source", "kind", "reason").limit(1), step="explain: dropped"
    )
    if hit.num_rows:
        row = hit.to_pylist()[0]
        raise NotFoundError(
            f"{text!r} links to no profile: ingestion dropped it from source {row['source']} as malformed "
            f"({row['reason']}); see `cx360 quarantine --dropped`"
        )


def block(ws: Workspace, left: str, right: str, *, by: str, reason: str) -> None:
    """Keep two nodes apart from now on; the next resolve applies it."""
    overrides.record(ws.engine, "block", [(_node(ws, left), _node(ws, right))], by=by, reason=reason)


def unblock(ws: Workspace, left: str, right: str, *, by: str, reason: str) -> None:
    """Undo a block; the next resolve may join the two nodes again."""
    overrides.record(ws.engine, "unblock", [(_node(ws, left), _node(ws, right))], by=by, reason=reason)


def split(ws: Workspace, profile: str, detach: list[str], *, by: str, reason: str) -> list[tuple[str, str]]:
    """Detach nodes from a profile: block every active link between them and the rest of it."""
    engine = ws.engine
    pid = find_profile(ws, profile)
    mapping = engine.table("identity_map")
    members = set(
        engine.to_arrow(mapping.filter(mapping.profile_id == pid).select("node"), step="split")["node"].to_pylist()
    )
    part = {_node(ws, d) for d in detach}
    outside = part - members
    if outside:
        raise NotFoundError(f"not in profile {pid}: {', '.join(sorted(outside))}")
    if part == members:
        raise NotFoundError("that is the whole profile: name only the nodes to detach")
    links = engine.table("identity_links")
    active = links.filter((links.status == "active") & links.left.isin(list(members)) & links.right.isin(list(members)))
    rows = engine.to_arrow(active.select("left", "right"), step="split: links").to_pylist()
    cut = sorted({(r["left"], r["right"]) for r in rows if (r["left"] in part) != (r["right"] in part)})
    if cut:
        overrides.record(engine, "block", cut, by=by, reason=f"split of {pid}: {reason}")
    return cut


def _node(ws: Workspace, text: str) -> str:
    found = candidates(ws, text)
    if len(found) == 1:
        return found[0]
    mapping = ws.engine.table("identity_map")
    known = (
        ws.engine.to_arrow(mapping.filter(mapping.node.isin(found)).select("node"), step="node")["node"].to_pylist()
        if found
        else []
    )
    if len(known) == 1:
        return known[0]
    raise NotFoundError(
        f"cannot tell which node {text!r} is ({', '.join(known or found) or 'none'}); "
        "write it as KIND:VALUE or record:SOURCE:ID"
    )
