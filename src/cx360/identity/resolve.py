"""`resolve`: records and events in, identity_links / identity_map / profile_ids / profiles out."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ibis
import pandas as pd
import pyarrow as pa

from cx360 import node_keys, schema
from cx360.engine import local_duckdb
from cx360.identity import golden, junk, overrides, revealed
from cx360.identity.anchoring import summary as event_summary
from cx360.identity.anchoring import weigh_event_links
from cx360.identity.components import components
from cx360.identity.graph import event_links, latest_records, record_links, suspicious_nodes
from cx360.identity.matching import FIELDS, MatchModel, TrainingDataError
from cx360.identity.stable_ids import assign
from cx360.privacy.vault import Vault

if TYPE_CHECKING:
    from cx360.workspace import Workspace


@dataclass
class IdentityReport:
    records: int
    links_active: int
    links_blocked: int
    probabilistic_links: int
    profiles: int
    profiles_new: int
    profiles_merged: int
    seconds: float
    warnings: list[str]


def resolve(ws: Workspace) -> IdentityReport:
    started = time.perf_counter()
    engine = ws.engine
    settings = ws.config.identity
    vault = Vault.of(ws)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)

    records = latest_records(engine.table("records"))
    deterministic = ibis.union(record_links(records), event_links(engine.table("events")), distinct=False)
    shared = engine.to_arrow(
        suspicious_nodes(deterministic, records, settings, token=vault and vault.token),
        step="identity: find shared identifiers",
    )
    raw_links = engine.to_arrow(deterministic, step="identity: deterministic links").to_pandas()
    record_table = engine.to_arrow(records.select("node", "source", "record_hash", *FIELDS), step="identity: records")
    clear = record_table  # with the vault on: names, birth dates, e-mails and phones revealed, in memory only
    values = None  # the clear value of each identifier node, for junk by shape
    if vault is not None:
        clear = revealed.with_identifiers(vault, revealed.with_attributes(vault, record_table), ("email", "phone"))
        values = revealed.identifier_values(vault, pd.concat([raw_links.left, raw_links.right]))
    flagged = _flag(shared, raw_links, clear, settings, values)
    links = _deterministic(raw_links, flagged)

    warnings: list[str] = []
    probabilistic = _empty_links()
    if settings.probabilistic:
        try:
            usable = _without(clear, flagged, keys=record_table).drop_columns(["record_hash"])
            probabilistic, model_warnings = _probabilistic(usable, settings, engine)
            warnings += model_warnings
        except TrainingDataError as exc:  # a small workspace still gets its deterministic profiles
            warnings.append(f"probabilistic matching skipped: {exc}")
    links = pd.concat([links, probabilistic], ignore_index=True)
    links = overrides.apply(
        links, engine.to_arrow(engine.table("identity_overrides"), step="identity: overrides").to_pandas()
    )
    links = weigh_event_links(links, record_table["node"].combine_chunks())
    warnings += event_summary(links)

    previous_links = engine.to_arrow(
        engine.table("identity_links").select("left", "right", "rule", "created_at"), step="identity: previous links"
    ).to_pandas()
    links = links.merge(previous_links, on=["left", "right", "rule"], how="left")
    links["created_at"] = links["created_at"].fillna(now)

    active = links[links.status == "active"]
    adopted = online_nodes(ws)  # a profile the stream created stays a profile, even of one cookie alone
    nodes = pa.concat_arrays(
        [
            record_table["node"].combine_chunks(),
            pa.array(pd.concat([active.left, active.right, adopted.node]).unique(), pa.string()),
        ]
    )
    comps = components(nodes, pa.array(active.left, pa.string()), pa.array(active.right, pa.string())).to_pandas()

    previous = engine.to_arrow(
        engine.table("identity_map").select("node", "profile_id", "first_seen_at"), step="identity: previous map"
    ).to_pandas()
    previous = pd.concat([previous, adopted[~adopted.node.isin(previous.node)]], ignore_index=True)
    registry = engine.to_arrow(engine.table("profile_ids"), step="identity: profile ids").to_pandas()
    mapping, registry_new = assign(comps, previous, registry, now)
    mapping = mapping.merge(previous[["node", "first_seen_at"]], on="node", how="left")
    mapping["first_seen_at"] = mapping["first_seen_at"].fillna(now)
    mapping["kind"] = node_keys.kind_series(mapping.node)

    engine.replace("identity_links", _arrow(links, "identity_links"))
    engine.replace("identity_map", _arrow(mapping, "identity_map"))
    engine.replace("profile_ids", _arrow(registry_new, "profile_ids"))
    profiles = golden.build(engine, ws.config.identity, vault)
    engine.replace("profiles", profiles)

    before = set(registry.profile_id)
    merged_now = registry_new[
        (registry_new.status == "merged")
        & registry_new.profile_id.isin(registry[registry.status == "active"].profile_id)
    ]
    return IdentityReport(
        records=record_table.num_rows,
        links_active=int((links.status == "active").sum()),
        links_blocked=int((links.status == "blocked").sum()),
        probabilistic_links=int(((links.rule == "probabilistic") & (links.status == "active")).sum()),
        profiles=int(mapping.profile_id.nunique()),
        profiles_new=len(set(mapping.profile_id) - before),
        profiles_merged=len(merged_now),
        seconds=time.perf_counter() - started,
        warnings=warnings,
    )


def online_nodes(ws: Workspace) -> pd.DataFrame:
    """The nodes the stream placed (cx360.online), with their profiles: the batch adopts them and the ids
    the stream gave, so that a profile keeps its id when the nightly run catches up."""
    from cx360.online.store import open_online

    columns = ["node", "profile_id", "first_seen_at"]
    store = open_online(ws.root, ws.config, create=False)
    if store is None:
        return pd.DataFrame(columns=columns)
    try:
        rows = [(r["node"], store.survivor(r["profile_id"]), r["at"]) for r in store._rows("SELECT * FROM nodes")]
    finally:
        store.close()
    frame = pd.DataFrame(rows, columns=columns)
    frame["first_seen_at"] = pd.to_datetime(frame["first_seen_at"])
    return frame


def _flag(shared: pa.Table, links: pd.DataFrame, records: pa.Table, settings, values=None) -> pa.Table:
    """Every identifier node that must not link, with the first reason found: listed placeholders and
    values shared within a source or by too many records (from the engine), junk by its shape, values
    held by records of different people, and contacts held by two records that conflict."""
    nodes = pd.concat([links.left, links.right])
    found = pd.concat(
        [
            shared.to_pandas(),
            junk.pattern_flags(nodes, settings, values),
            junk.shared_by_people(links, records, settings),
            junk.shared_contacts(links, records),
        ],
        ignore_index=True,
    ).drop_duplicates("node")
    return pa.Table.from_pandas(
        found[["node", "reason"]],
        schema=pa.schema([("node", pa.string()), ("reason", pa.string())]),
        preserve_index=False,
    )


def _deterministic(links: pd.DataFrame, flagged: pa.Table) -> pd.DataFrame:
    """The deterministic links with their evidence as JSON and blocked when a node of theirs is
    flagged: one DuckDB query (built row by row in Python it took 14 s at a million records)."""
    con = local_duckdb()
    try:
        table = pa.Table.from_pandas(links, preserve_index=False)
        con.register("links", table.append_column("_order", pa.array(range(len(links)), pa.int64())))
        con.register("flagged", flagged)
        out = (
            con.sql("""
            SELECT l."left", l."right", l.rule, 1.0::DOUBLE AS confidence,
                CASE WHEN l.rule = 'record_identifier' THEN to_json({'source': l.source, 'kind': l.kind})
                     ELSE to_json({'kinds': l.kind, 'source': l.source, 'events': l.n_events::BIGINT,
                                   'first_event': l.first_event, 'first_event_name': l.first_event_name})
                END::VARCHAR AS evidence,
                CASE WHEN coalesce(r.reason, f.reason) IS NULL THEN 'active' ELSE 'blocked' END AS status,
                coalesce(r.reason, f.reason) AS blocked_reason
            FROM links l
            LEFT JOIN flagged r ON r.node = l."right"
            LEFT JOIN flagged f ON f.node = l."left"
            ORDER BY l._order
        """)
            .arrow()
            .read_all()
        )
    finally:
        con.close()
    return out.to_pandas()


def _without(records: pa.Table, flagged: pa.Table, keys: pa.Table | None = None) -> pa.Table:
    """Records with their junk and shared identifier values removed: a family phone or a placeholder
    e-mail is no more evidence for a probabilistic match than for a deterministic one. `keys`, the same
    rows as the graph's nodes name them (tokens, with the vault on), decides which."""
    bad = set(flagged["node"].to_pylist())
    keys = records if keys is None else keys
    for kind in ("email", "phone"):
        values, held = records[kind].to_pylist(), keys[kind].to_pylist()
        records = records.set_column(
            records.schema.get_field_index(kind),
            kind,
            pa.array(
                [
                    None if k is not None and node_keys.identifier(kind, k) in bad else v
                    for v, k in zip(values, held, strict=True)
                ],
                pa.string(),
            ),
        )
    return records


def _probabilistic(records: pa.Table, settings, engine) -> tuple[pd.DataFrame, list[str]]:
    usable = records.drop_columns(["source"]).rename_columns(
        ["unique_id" if c == "node" else c for c in records.column_names if c != "source"]
    )
    if usable.num_rows < 2:
        return _empty_links(), []
    model = MatchModel(
        threshold=settings.match_threshold,
        max_block_size=settings.max_block_size,
        spark_session=engine.session if engine.kind == "spark" else None,
    ).fit(usable)
    pairs = model.predict(usable).to_pandas()
    return pd.DataFrame(
        {
            "left": pairs.left_id,
            "right": pairs.right_id,
            "rule": "probabilistic",
            "confidence": pairs.match_probability.astype(float),
            "evidence": pairs.evidence,
            "status": "active",
            "blocked_reason": None,
        }
    ), _oversized(model.oversized_blocks_, settings.max_block_size) + [
        f"{name} carries no weight in matching: no pair the matcher trained on had it on both sides"
        for name in model.unlearned_
    ]


def _oversized(blocks: list[dict], limit: int) -> list[str]:
    """One line per blocking key: how many of its values were too common to find candidates by."""
    by_key: dict[str, list[dict]] = {}
    for b in blocks:
        by_key.setdefault(b["key"], []).append(b)
    lines = []
    for key, values in by_key.items():
        top = max(values, key=lambda b: b["records"])
        lines.append(
            f"{len(values):,} {key} value(s) shared by more than {limit:,} records find no match candidates "
            f"(largest: {top['value']!r}, {top['records']:,} records)"
        )
    return lines


def _empty_links() -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series(dtype=object) for c in ("left", "right", "rule", "evidence", "status", "blocked_reason")}
        | {"confidence": pd.Series(dtype=float)}
    )


def _arrow(frame: pd.DataFrame, table: str) -> pa.Table:
    target = schema.ibis_schema(table).to_pyarrow()
    return pa.Table.from_pandas(frame[list(target.names)], schema=target, preserve_index=False)
