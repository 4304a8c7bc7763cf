"""Decisions on the synthetic bank, scored by its hidden truth; the channel-and-hour model on held-out
answers; decision latency through the API.

Builds the demo world (N customers, seed 7) into benchmarks/.data/decisions-N (kept between runs), with
the benchmark's own catalogue (four offers, four channels), and builds the profiles as of --as-of
(default 2025-10-01): everything the policy reads is from before it. Then prints:

- the simulator: each policy's one action per person (offer, channel, hour) is answered with the
  demo's own acceptance chance (cx360.demo.sources.acceptance: the person's hidden preferred channel
  and hour, and value); the policy never reads it. cx360's policy next to three baselines on the same
  people and the same open candidates (eligibility, consent, cooldowns and caps applied to all):
  a random eligible action; the most popular offer (most accepted before as_of) on its most accepting
  channel at everyone's best hour; propensity alone (cx360's best offer, a random open channel for it,
  everyone's best hour). Expected acceptance and value per person; goal >= 1.3x the most popular.
  Then every policy again under each [decisions] objective (incremental, expected, acceptance), on the
  same people and models.
- the propensity on the latest contacts, held out, with the spend features as of each contact instead
  of the snapshot at as_of, and without them, next to the AUC of the hidden truth's own chance.
- the channel and hour per person on the acceptances after as_of, held out: the hour within one hour
  and the channel, for the person -> segment -> everyone model next to everyone's best.
- the batch decision time at N profiles, and POST /v1/decisions p50 / p99 on a real `cx360 serve`
  (one worker; the route, the served profile, the person's events, the consent check, audit), driven
  by a client in a separate process, one request after another; goal p99 <= 20 ms.

    python benchmarks/bench_decisions.py                      # 3,000 customers
    python benchmarks/bench_decisions.py --customers 1000 --requests 200
    python benchmarks/bench_decisions.py --only-latency --requests 1000
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
SOURCES = ["crm_core", "crm_cards", "marketing", "web", "app", "cards", "contact_centre", "complaints", "preferences"]
CATALOGUE = """
# The next best action (`cx360 decide`): the benchmark's catalogue and contact policy.
[contact_policy]
time_zone = "UTC"
quiet_hours = [23, 7]
max_contacts = { count = 3, days = 7 }
[contact_policy.channels.email]
cap = { count = 1, days = 7 }
[contact_policy.channels.sms]
cap = { count = 1, days = 7 }
[contact_policy.channels.push]
cap = { count = 2, days = 7 }
[contact_policy.channels.call_centre]
consent = "call"
cap = { count = 1, days = 30 }
hours = [9, 21]

[[offers]]
name = "auto_loan"
where = "age_years >= 21"
value = 400
channels = ["email", "sms", "push", "call_centre"]

[[offers]]
name = "credit_card"
value = 150
channels = ["email", "sms", "push", "call_centre"]

[[offers]]
name = "deposit"
value = 120
channels = ["email", "sms", "push", "call_centre"]

[[offers]]
name = "mortgage"
where = "age_years between 25 and 60"
value = 600
channels = ["email", "sms", "push", "call_centre"]

"""


def build(root: Path, customers: int, as_of: dt.datetime) -> None:
    from cx360.demo import generate_world
    from cx360.pipeline import run_stage
    from cx360.workspace import Workspace

    if (root / "warehouse.duckdb").exists():
        return
    generate_world(root, customers=customers, seed=7)
    toml = root / "cx360.toml"
    text = toml.read_text(encoding="utf-8")
    start, end = text.index("# The next best action"), text.index("# Core banking CRM")
    text = text[:start] + CATALOGUE.lstrip() + text[end:]
    toml.write_text(text.replace("[identity]\n", "[identity]\nprobabilistic = false\n", 1), encoding="utf-8")
    with Workspace(root) as ws:
        for stage, params in (
            ("ingest", {"only": SOURCES}),
            ("identity", {}),
            ("profiles", {"as_of": as_of}),
            ("archetypes", {}),
            ("segments", {}),
        ):
            started = time.perf_counter()
            result = run_stage(ws, stage, **params)
            print(f"  {stage}: {result.status} in {time.perf_counter() - started:.1f} s", flush=True)
            if result.status != "ok":
                sys.exit(f"{stage} failed: {result.error}")


def truth_of(ws) -> pd.DataFrame:
    """profile_id -> the hidden person (preferred channel and hour, value), through the CRM records."""
    ids = ws.engine.to_arrow(ws.engine.table("identity_map"), step="bench").to_pandas()
    records = ids[ids.node.str.startswith("record:")].copy()
    parts = records.node.str.split(":", n=2, expand=True)
    records["source"], records["record_id"] = parts[1], parts[2]
    owner = pd.read_parquet(ws.root / "truth" / "record_owner.parquet")
    persons = pd.read_parquet(ws.root / "truth" / "persons.parquet")
    linked = records.merge(owner, on=["source", "record_id"]).drop_duplicates("profile_id")
    return linked[["profile_id", "person_id"]].merge(persons, on="person_id").set_index("profile_id")


def simulate(actions: pd.DataFrame, truth: pd.DataFrame, values: dict[str, float]) -> tuple[float, ...]:
    """Expected acceptance and value per person of one action each (profile_id, offer, channel, hour), and
    their incremental part: minus what the person would have taken uncontacted."""
    from cx360.demo.sources import acceptance, untreated

    people = truth.loc[actions.profile_id]
    offer = actions.offer.to_numpy()
    p = acceptance(people, actions.channel.to_numpy(), actions.hour.to_numpy(), offer)
    lift = p - untreated(people, offer)
    value = actions.offer.map(values).to_numpy()
    return float(p.mean()), float((p * value).mean()), float(lift.mean()), float((lift * value).mean())


def policies(scored: pd.DataFrame, chosen: pd.DataFrame, data, config, seed: int) -> dict[str, pd.DataFrame]:
    """cx360's choices and the three baselines', among the same open candidates (positive score)."""
    policy = config.contact_policy
    rng = np.random.default_rng(seed)
    open_ = scored[scored.suppressed_by.isna() & (scored.score > 0)]
    people = sorted(set(open_.profile_id) & set(chosen.index))
    open_ = open_[open_.profile_id.isin(people)]
    hist = data.history
    accepted = hist[hist.name == "offer_accepted"]
    best_hour_all = int(pd.to_datetime(accepted.ts).dt.hour.value_counts().idxmax())

    def everyone_hour(channel: str) -> int:
        hours = policy.send_hours(channel)
        return min(hours, key=lambda h: abs(h - best_hour_all))

    ours = chosen.loc[people].reset_index()[["profile_id", "offer", "channel", "hour"]]

    pick = open_.groupby("profile_id").sample(n=1, random_state=seed)
    pick = pick.assign(hour=[rng.choice(policy.send_hours(c)) for c in pick.channel])

    offer_rank = {o: i for i, o in enumerate(accepted.offer.value_counts().index)}
    channel_rank = {c: i for i, c in enumerate(accepted.channel.value_counts().index)}
    pop = open_.assign(
        _o=open_.offer.map(offer_rank).fillna(len(offer_rank)), _c=open_.channel.map(channel_rank).fillna(99)
    )
    pop = pop.sort_values(["profile_id", "_o", "_c"]).groupby("profile_id").head(1)
    pop = pop.assign(hour=[everyone_hour(c) for c in pop.channel])

    best_offer = open_.sort_values("score", ascending=False).groupby("profile_id").head(1)
    same = open_.merge(best_offer[["profile_id", "offer"]], on=["profile_id", "offer"])
    alone = same.groupby("profile_id").sample(n=1, random_state=seed + 1)
    alone = alone.assign(hour=[everyone_hour(c) for c in alone.channel])
    return {"cx360": ours, "random eligible": pick, "most popular offer": pop, "propensity alone": alone}


def objectives(models, config, data, truth: pd.DataFrame, values: dict, seed: int) -> None:
    """Every policy under every [decisions] objective, side by side on the same people and models."""
    from cx360.decisions import arbitrate, decide
    from cx360.decisions.settings import DecisionSettings

    results, people = {}, {}
    for objective in arbitrate.OBJECTIVES:
        cfg = config.model_copy(update={"decisions": DecisionSettings(objective=objective)})
        scored, chosen, _ = decide.score(models, cfg, data)
        runs = policies(scored[scored.profile_id.isin(truth.index)], chosen[chosen.index.isin(truth.index)], data,
                        cfg, seed)  # fmt: skip
        people[objective] = len(runs["cx360"])
        base = simulate(runs["most popular offer"], truth, values)[0]
        for name, actions in runs.items():
            acc, value, lift, lift_value = simulate(actions, truth, values)
            results[name, objective] = f"{acc:6.2%} {acc / base:4.2f}x {lift:6.2%} {value:6.2f} {lift_value:6.2f}"
        mix = runs["cx360"].offer.value_counts(normalize=True)
        print(f"  cx360 under {objective:11} offers: " + ", ".join(f"{o} {share:.0%}" for o, share in mix.items()))
    print("\nEvery policy under every [decisions] objective; each cell: acceptance, x the most popular offer's,")
    print("incremental acceptance, value per person, incremental value per person (the hidden truth)")
    print(f"  {'people':18} " + " ".join(f"{people[o]:>36,}" for o in arbitrate.OBJECTIVES))
    print(f"  {'policy':18} " + " ".join(f"{o:>36}" for o in arbitrate.OBJECTIVES))
    for name in ("cx360", "random eligible", "most popular offer", "propensity alone"):
        print(f"  {name:18} " + " ".join(f"{results[name, o]:>36}" for o in arbitrate.OBJECTIVES))


def spend_leak(ws, data, models, truth: pd.DataFrame) -> None:
    """The spend features are one snapshot at as_of, also used for earlier contacts: does spend after a
    contact leak into its row? The propensity model refitted with each contact's spend as of its own
    moment (card payments strictly before it), next to the snapshot and to no spend at all, all three
    measured on the same latest contacts in time, held out."""
    from cx360.decisions import portrait
    from cx360.decisions.propensity import ACCEPTED, PropensityModel, history_features
    from cx360.decisions.responses import local_hours, zone_per_row

    pe = ws.engine.table("profile_events")
    pay = pe.filter((pe.name == "card_payment") & (pe.ts < data.as_of))
    pay = pay.select("profile_id", "ts", "amount", category=ws.engine.json_get(pay.properties, "category"))
    pay = ws.engine.to_arrow(pay, step="bench: payments").to_pandas().dropna(subset=["category"])
    pay = pay[pay.profile_id.isin(data.profiling or set(pay.profile_id))]
    h = data.history.assign(hour=local_hours(data.history.ts, zone_per_row(data.history.profile_id, data.zones,
                                                                           models.tz)))  # fmt: skip
    contacts = pd.concat([h, history_features(h, models.base_, models.activity)], axis=1)
    contacts = contacts[contacts.offer.notna()].assign(accepted=contacts.name == ACCEPTED)
    snapshot = models.traits_of(contacts.profile_id)
    # each contact's spend per category before it: cumulative sums, the last one before the contact
    pay = pay.sort_values("ts").assign(ts=lambda x: pd.to_datetime(x.ts), amount=lambda x: x.amount.clip(lower=0))
    rows = contacts[["profile_id", "ts"]].assign(ts=lambda x: pd.to_datetime(x.ts), _row=contacts.index)
    rows = rows.sort_values("ts")
    wide = pd.DataFrame(0.0, index=contacts.index, columns=sorted(pay.category.unique()))
    for category, part in pay.groupby("category"):
        part = part.assign(cum=part.groupby("profile_id").amount.cumsum())[["profile_id", "ts", "cum"]]
        got = pd.merge_asof(rows, part, on="ts", by="profile_id", allow_exact_matches=False)
        wide.loc[got._row.to_numpy(), category] = got.cum.fillna(0.0).to_numpy()
    total = wide.sum(axis=1)
    at_time = wide.div(total.where(total > 0, 1.0), axis=0)
    at_time.columns = [portrait.SHARE + str(c) for c in at_time.columns]
    at_time[portrait.TOTAL] = np.log1p(total) / portrait.SCALE
    at_time = at_time.reindex(columns=list(models.traits), fill_value=0.0)
    print("\nSpend features: the snapshot at as_of against each contact's own moment (the same held-out contacts)")
    for name, traits in (("snapshot at as_of", snapshot), ("as of each contact", at_time), ("no spend", None)):
        x = contacts if traits is None else pd.concat([contacts, traits], axis=1)
        q = PropensityModel(traits=() if traits is None else models.traits).fit(x).quality_
        print(f"  {name:20} AUC {q.auc:.3f}, log loss {q.log_loss:.4f} (base rate {q.base_rate_log_loss:.4f})")
    from sklearn.metrics import roc_auc_score

    from cx360.demo.sources import acceptance

    later = contacts.iloc[np.argsort(contacts.ts.to_numpy(), kind="stable")[int(len(contacts) * 0.8) :]]
    later = later[later.profile_id.isin(truth.index)]
    p = acceptance(truth.loc[later.profile_id], later.channel.to_numpy(), later.hour.to_numpy(), later.offer.to_numpy())
    auc = roc_auc_score(later.accepted, p)
    print(f"  the hidden truth's own chance, on the {len(later):,} of them it knows: AUC {auc:.3f}")
    moved = (snapshot - at_time).abs().to_numpy().mean()
    print(f"  mean absolute difference of a spend feature, snapshot against the contact's moment: {moved:.4f}")


def ceilings(scored: pd.DataFrame, people: list[str], truth: pd.DataFrame, values: dict, policy) -> dict:
    """What one action per person could reach at best, knowing the hidden truth: among the same open
    candidates, each at every hour its channel may send, the best by acceptance, by incremental value
    (what cx360 ranks by) and by acceptance x value. Not a policy: the ceiling of each ranking."""
    from cx360.demo.sources import acceptance, untreated

    open_ = scored[scored.suppressed_by.isna() & scored.profile_id.isin(people)]
    every = pd.concat(
        [open_[open_.channel == ch].assign(hour=h) for ch in open_.channel.unique() for h in policy.send_hours(ch)]
    )
    who = truth.loc[every.profile_id]
    p = acceptance(who, every.channel.to_numpy(), every.hour.to_numpy(), every.offer.to_numpy())
    every = every.assign(p=p, lift=p - untreated(who, every.offer.to_numpy()), v=every.offer.map(values).to_numpy())
    out = {}
    for name, key in (
        ("best by acceptance", every.p),
        ("best by incremental value", every.lift * every.v),
        ("best by acceptance x value", every.p * every.v),
    ):
        best = every.assign(_k=key).sort_values("_k", ascending=False).groupby("profile_id").head(1)
        out[name] = best[["profile_id", "offer", "channel", "hour"]]
    return out


def timing_on_held_out(root: Path, models, as_of: dt.datetime) -> None:
    from cx360.workspace import Workspace

    with Workspace(root) as ws:
        pe = ws.engine.table("profile_events")
        later = pe.filter((pe.name == "offer_accepted") & (pe.ts >= as_of))
        later = ws.engine.to_arrow(later.select("profile_id", "ts", "channel"), step="bench").to_pandas()
    hours = pd.to_datetime(later.ts).dt.hour.to_numpy()
    channels = sorted(later.channel.unique())
    hour_hit, hour_base, ch_hit, ch_base = [], [], [], []
    base_hour = models.timing.choose("", "hour", list(range(24))).value
    base_channel = models.timing.choose("", "channel", channels).value
    for pid, h, ch in zip(later.profile_id, hours, later.channel, strict=True):
        mine = models.timing.choose(pid, "hour", list(range(24))).value
        hour_hit.append(min(abs(mine - h), 24 - abs(mine - h)) <= 1)
        hour_base.append(min(abs(base_hour - h), 24 - abs(base_hour - h)) <= 1)
        ch_hit.append(models.timing.choose(pid, "channel", channels).value == ch)
        ch_base.append(base_channel == ch)
    print(f"\nChannel and hour on {len(later):,} acceptances after {as_of:%Y-%m-%d}, held out")
    print(f"  {'':34} {'person->segment->everyone':>26} {'everyone':>10}")
    print(f"  {'hour within 1 h of the answer':34} {np.mean(hour_hit):26.1%} {np.mean(hour_base):10.1%}")
    print(f"  {'channel of the answer':34} {np.mean(ch_hit):26.1%} {np.mean(ch_base):10.1%}")


def drive(url: str, key: str, pids: list[str], requests: int, seed: int) -> dict:
    """The load generator (run in its own process): POST /v1/decisions one after another on a keep-alive
    connection; returns the latencies in ms and how many answers carried an offer."""
    host, port = url.removeprefix("http://").split(":")
    con = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    rnd = random.Random(seed)
    times, offers = [], 0
    for i in range(requests + 20):  # the first 20 warm the server's caches and are not counted
        body = json.dumps({"profile_id": rnd.choice(pids)})
        started = time.perf_counter()
        con.request("POST", "/v1/decisions", body=body, headers=headers)
        response = con.getresponse()
        answer = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            sys.exit(f"POST /v1/decisions answered {response.status}: {answer[:300]!r}")
        if i >= 20:
            times.append(elapsed)
            offers += bool(json.loads(answer)["offer"])
    return {"latencies": times, "offers": offers}


def latency(root: Path, requests: int, seed: int) -> None:
    """POST /v1/decisions against a real `cx360 serve`, driven by a client in a separate process."""
    from cx360.api.access import create_key
    from cx360.workspace import Workspace

    with Workspace(root) as ws:
        pids = ws.engine.to_arrow(ws.engine.table("profile_traits").select("profile_id"), step="bench")
    pids = pids["profile_id"].to_pylist()
    key = create_key(root, "agent", "bench-decisions")[1]
    from bench_collector import _port, serve

    port = _port()
    url = f"http://127.0.0.1:{port}"
    server = serve(root, port, subprocess.DEVNULL)
    try:
        ids = root / "bench-decision-ids.json"
        ids.write_text(json.dumps(pids), encoding="utf-8")
        argv = ["--drive", url, key, str(ids), "--requests", str(requests), "--seed", str(seed)]
        done = subprocess.run([sys.executable, __file__, *argv], check=True, capture_output=True, text=True)
        result = json.loads(done.stdout)
    finally:
        server.terminate()
        server.wait(10)
    times = sorted(result["latencies"])
    p95, p99 = (times[min(len(times) - 1, int(q * len(times)))] for q in (0.95, 0.99))
    print(
        f"\nPOST /v1/decisions on `cx360 serve` (1 worker), {len(times)} requests one after another from a "
        f"separate client process, {result['offers']} with an offer"
    )
    print(
        f"  p50 {statistics.median(times):.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms, max {times[-1]:.1f} ms "
        "(goal p99 <= 20 ms)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=3000)
    ap.add_argument("--as-of", default="2025-10-01")
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only-latency", action="store_true", help="skip the simulator; measure POST /v1/decisions")
    ap.add_argument("--drive", nargs=3, metavar=("URL", "KEY", "IDS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.drive:
        url, key, ids = args.drive
        pids = json.loads(Path(ids).read_text(encoding="utf-8"))
        print(json.dumps(drive(url, key, pids, args.requests, args.seed)))
        return
    as_of = dt.datetime.fromisoformat(args.as_of)
    root = HERE / ".data" / f"decisions-{args.customers}"
    build(root, args.customers, as_of)
    if args.only_latency:
        latency(root, args.requests, args.seed)
        return

    from cx360.decisions import decide, inputs
    from cx360.workspace import Workspace

    with Workspace(root) as ws:
        started = time.perf_counter()
        data = inputs.load(ws.engine, ws.config, as_of)
        report, frame, models = decide.plan(ws, data, dt.datetime.now(dt.UTC).replace(tzinfo=None))
        seconds = time.perf_counter() - started
        decide.write(ws, frame)
        models.save(ws.root / decide.MODEL_DIR)
        scored, chosen, _ = decide.score(models, ws.config, data)
        truth = truth_of(ws)
        values = {o.name: float(o.value) for o in ws.config.offers}
        config = ws.config
    q = report.quality
    print(f"\nBatch: {report.profiles:,} profiles decided in {seconds:.1f} s ({report.profiles / seconds:,.0f}/s)")
    print(
        f"Propensity on the latest {q.rows_held_out:,} of {q.rows_train + q.rows_held_out:,} contacts, held out: "
        f"AUC {q.auc:.3f}, log loss {q.log_loss:.4f} (base rate {q.base_rate_log_loss:.4f}), "
        f"Brier {q.brier:.4f} (base rate {q.base_rate_brier:.4f})"
    )
    known = chosen[chosen.index.isin(truth.index)]
    runs = policies(scored[scored.profile_id.isin(truth.index)], known, data, config, args.seed)
    n = len(runs["cx360"])
    print(f"\nSimulator: {n:,} people with an open candidate, one action each, answered by the hidden truth")
    print(f"  objective: {config.decisions.objective}")
    for offer, group in report.uplift.items():
        print(f"  {offer}: {group['controls']} held out before as_of")
    print(
        f"  {'policy':22} {'acceptance':>10} {'value/person':>13} {'x most popular':>15}"
        f" {'incremental':>12} {'incr. value':>12}"
    )
    results = {name: simulate(actions, truth, values) for name, actions in runs.items()}
    base = results["most popular offer"][0]
    for name, (acc, value, lift, lift_value) in results.items():
        print(f"  {name:22} {acc:10.2%} {value:13.2f} {acc / base:15.2f} {lift:12.2%} {lift_value:12.2f}")
    print("  goal: cx360 >= 1.3x the acceptance of the most popular offer")
    print("  incremental: acceptance minus what the person would have taken uncontacted (the hidden truth)")
    best = ceilings(scored, list(runs["cx360"].profile_id), truth, values, config.contact_policy)
    print("  the ceiling, knowing the hidden truth (the same open candidates, any hour their channel may send at):")
    for name, actions in best.items():
        acc, value, lift, lift_value = simulate(actions, truth, values)
        print(f"    {name:28} {acc:10.2%} {value:13.2f} {acc / base:9.2f} {lift:12.2%} {lift_value:12.2f}")
    print("\nWhat the propensity model weighs most (weight x the column's spread over the contacts):")
    for name, effect in models.propensity.importance(8):
        print(f"  {name:44} {effect:+.3f}")
    print(f"Calibration on the {q.rows_held_out:,} latest contacts, held out (five bins of the score):")
    for b in q.calibration:
        print(f"  score {b['score']:.3f}  accepted {b['accepted']:.3f}  ({b['contacts']:.0f} contacts)")
    for offer, group in report.uplift.items():
        if group.get("log_loss") is not None:
            print(
                f"Control model, {offer}: log loss {group['log_loss']:.4f} on the latest 20% of its control group, "
                f"held out (the group's earlier rate: {group['base_log_loss']:.4f})"
            )
    objectives(models, config, data, truth, values, args.seed)
    with Workspace(root) as ws:
        spend_leak(ws, data, models, truth)
    timing_on_held_out(root, models, as_of)
    latency(root, args.requests, args.seed)


if __name__ == "__main__":
    main()
