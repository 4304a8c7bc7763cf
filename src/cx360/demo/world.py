"""`generate_world`: the synthetic bank's source files, its workspace file, and its ground truth."""

from __future__ import annotations

import csv
import datetime as dt
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cx360.demo import causes, crm, junk, sources
from cx360.demo.config import WORKSPACE_TOML
from cx360.demo.people import population


@dataclass(frozen=True)
class WorldSummary:
    out_dir: Path
    customers: int
    seed: int
    rows: dict[str, int]
    bytes: int
    seconds: float


def generate_world(
    out_dir: Path | str,
    *,
    customers: int = 3000,
    seed: int = 7,
    start: dt.date = dt.date(2025, 1, 1),
    days: int = 365,
    crm_only: bool = False,
) -> WorldSummary:
    """Write a deterministic synthetic bank into `out_dir`: data/, truth/ and cx360.toml.

    `crm_only` writes just the two CRM exports (records, no events): for identity at scale.
    """
    began = time.perf_counter()
    out = Path(out_dir)
    data, truth = out / "data", out / "truth"
    (data / "web").mkdir(parents=True, exist_ok=True)
    truth.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(np.random.PCG64(seed))
    people = population(customers, rng, start, days)
    in_core, in_cards = crm.membership(len(people), rng)
    core = crm.crm_core(people, in_core, rng)
    cards = crm.crm_cards(people, in_cards, rng)
    ids = dict(zip(cards.person_id, cards.customer_ref, strict=True)) | dict(
        zip(core.person_id, core.client_id, strict=True)
    )
    cust = people.person_id.map(ids).to_numpy()
    tokens = dict(zip(cards.person_id, cards.card_token, strict=True))

    rows: dict[str, int] = {}
    core, cards = junk.placeholder_emails(core, cards)
    rows["crm_core.csv"] = _csv(data / "crm_core.csv", core.drop(columns="person_id"), ";", bad=["C999999;broken;row"])
    bad_phone = cards.copy()
    bad_phone.loc[bad_phone.index[:: max(len(bad_phone) // 3, 1)][:3], "phone"] = "12-34"
    rows["crm_cards.csv"] = _csv(data / "crm_cards.csv", bad_phone.drop(columns="person_id"), ",")
    if crm_only:
        return _finish(out, people, core, cards, rows, customers, seed, began, crm_only=True)
    mk = sources.marketing(people, cust, rng, start, days)
    mk.loc[mk.index[:2], "sent_at"] = "31.02.2025 25:61"  # an export glitch: not a timestamp
    rows["marketing.csv"] = _csv(data / "marketing.csv", pd.concat([mk, mk.iloc[:3]]), ",")
    web = sources.web(people, cust, rng, start, days)
    web[len(web) // 2]["type"] = "heartbeat"  # not mapped to any event name
    half = len(web) // 2
    rows["web/2025-h1.jsonl"] = _jsonl(data / "web" / "2025-h1.jsonl", web[:half])
    known = [c for c in cust if isinstance(c, str)]
    shared = known[max(len(known) // 8, 1) :: max(len(known) // 8, 1)]  # a few customers spread over the population
    library = junk.library_logins(shared[:3])
    rows["web/2025-h2.jsonl"] = _jsonl(
        data / "web" / "2025-h2.jsonl", web[half:] + library + ['{"message_id": "w-trunc']
    )
    app = sources.app(people, cust, rng, start, days)
    tx = sources.cards(people, tokens, rng, start, days)
    calls = sources.calls(people, cust, rng, start, days)
    tx, app, complaints, calls, call_truth = causes.plant(
        people, cust, tokens, tx, app, web, mk, calls, seed=seed, start=start, days=days
    )
    rows["app_events.parquet"] = _parquet(data / "app_events.parquet", app)
    rows["card_transactions.parquet"] = _parquet(data / "card_transactions.parquet", pd.concat([tx, tx.iloc[:5]]))
    rows["complaints.csv"] = _csv(data / "complaints.csv", complaints, ",")
    calls.loc[calls.index[:2], ["customer_number", "caller_phone"]] = ""  # caller unknown: no identifier
    calls = junk.shared_caller(calls, shared[3:5])
    rows["contact_centre.csv"] = _csv(data / "contact_centre.csv", calls, ",", bad=["CALL99999999,C000001"])
    call_truth.to_parquet(truth / "calls.parquet", index=False)
    rows["social.jsonl"] = _jsonl(data / "social.jsonl", sources.social(people, rng, start, days))
    rows["surveys.csv"] = _csv(data / "surveys.csv", sources.surveys(people, rng), ",")
    visits = sources.mall(people, rng, start, days)
    # non-customers at the malls: their own generator, so that adding them left every other export as it was
    others = np.random.default_rng(np.random.PCG64(seed + 2))
    strangers = sources.strangers(max(customers // 5, 1), others, start)
    visits = pd.concat(
        [visits, sources.stranger_visits(strangers, others, start, days, len(visits))], ignore_index=True
    )
    rows["mall_visits.csv"] = _csv(data / "mall_visits.csv", visits.drop(columns="visitor"), ";")
    visits[["visit_id", "visitor"]].assign(customer=visits.visitor.str.startswith("person-")).to_parquet(
        truth / "mall_visitors.parquet", index=False
    )
    strangers.drop(columns="churn_date").to_parquet(truth / "strangers.parquet", index=False)
    # its own generator, so that adding it left every other export as it was
    consents = sources.preferences(people, cust, np.random.default_rng(np.random.PCG64(seed + 1)), start, days)
    rows["preferences.csv"] = _csv(data / "preferences.csv", consents, ",")

    return _finish(out, people, core, cards, rows, customers, seed, began)


def _finish(out: Path, people, core, cards, rows, customers, seed, began, crm_only: bool = False) -> WorldSummary:
    _write_truth(out / "truth", people, core, cards)
    toml = WORKSPACE_TOML
    if crm_only:  # keep the header and the two CRM sources
        head, *blocks = toml.split("\n# ")
        toml = "\n# ".join([head, *(b for b in blocks if b.startswith(("Core banking CRM", "Card business CRM")))])
    (out / "cx360.toml").write_text(toml, encoding="utf-8")
    size = sum(f.stat().st_size for f in (out / "data").rglob("*") if f.is_file())
    return WorldSummary(out, customers, seed, rows, size, time.perf_counter() - began)


def _csv(path: Path, frame: pd.DataFrame, sep: str, bad: list[str] = ()) -> int:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter=sep, lineterminator="\n")
        writer.writerow(frame.columns)
        values = frame.astype(object).where(frame.notna(), "").values.tolist()
        middle = len(values) // 2
        writer.writerows(values[:middle])
        for line in bad:  # lines a real export sometimes has: too few fields, a broken quote
            f.write(line + "\n")
        writer.writerows(values[middle:])
    return len(values) + len(bad)


def _jsonl(path: Path, rows: list) -> int:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write((row if isinstance(row, str) else json.dumps(row, ensure_ascii=False, sort_keys=True)) + "\n")
    return len(rows)


def _parquet(path: Path, frame: pd.DataFrame) -> int:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, compression="zstd")
    return len(frame)


def _write_truth(truth: Path, people: pd.DataFrame, core: pd.DataFrame, cards: pd.DataFrame) -> None:
    persons = people.drop(columns=["has_handle"]).assign(
        interests=people.interests.map(lambda xs: ",".join(xs)),
        birth_date=pd.to_datetime(people.birth_date),
        churn_date=pd.to_datetime(people.churn_date),
    )
    persons.to_parquet(truth / "persons.parquet", index=False)
    owners = pd.concat(
        [
            pd.DataFrame({"source": "crm_core", "record_id": core.client_id, "person_id": core.person_id}),
            pd.DataFrame({"source": "crm_cards", "record_id": cards.customer_ref, "person_id": cards.person_id}),
        ]
    )
    owners.to_parquet(truth / "record_owner.parquet", index=False)
