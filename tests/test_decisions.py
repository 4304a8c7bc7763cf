"""Decisions on the synthetic bank: the fixed columns of `cx360 decide -o`, cooldowns, consent and caps
that always hold, bad catalogues with clear errors, the fallbacks of channel and hour, exploration's
logged probabilities, and a consent withdrawn between a decision and its send."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cx360.cli import app as cli
from cx360.config import load_config
from cx360.decisions import arbitrate, expressions
from cx360.decisions.inputs import CONTACT_EVENTS
from cx360.decisions.timing import ChannelHourModel
from cx360.demo import generate_world
from cx360.errors import ConfigError
from cx360.pipeline import run_stage
from cx360.privacy import ledger
from cx360.privacy.consent import Policy
from cx360.workspace import Workspace

SOURCES = ["crm_core", "crm_cards", "marketing", "cards", "complaints", "preferences"]


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    root = tmp_path_factory.mktemp("decide-bank")
    generate_world(root, customers=80, seed=7)
    toml = root / "cx360.toml"
    text = toml.read_text(encoding="utf-8").replace("[identity]\n", "[identity]\nprobabilistic = false\n", 1)
    text += "\n[uplift]\nmin_controls = 20  # the 80 customers' campaigns hold out about 30 per offer\n"
    toml.write_text(text, encoding="utf-8")  # the demo's own catalogue and contact policy
    with Workspace(root) as ws:
        assert run_stage(ws, "ingest", only=SOURCES).status == "ok"
        for stage in ("identity", "profiles", "segments"):
            assert run_stage(ws, stage).status == "ok", stage
    result = CliRunner().invoke(cli, ["decide", "-w", str(root), "-o", str(root / "decisions.csv")])
    assert result.exit_code == 0, result.output
    return root


def _table(ws, name):
    return ws.engine.to_arrow(ws.engine.table(name), step="test").to_pandas()


def test_the_file_has_one_row_per_profile_with_the_fixed_columns(bank):
    out = pd.read_csv(bank / "decisions.csv", dtype={"offer": str}, keep_default_na=False)
    assert list(out.columns) == ["profile_id", "offer", "channel", "send_at", "expected_value", "propensity", "reasons"]
    with Workspace(bank) as ws:
        profiles = _table(ws, "profile_traits")
        log = _table(ws, "decisions")
        city = _table(ws, "profiles").set_index("profile_id").city
        zones = ws.config.contact_policy.zones
    assert sorted(out.profile_id) == sorted(profiles.profile_id) and out.profile_id.is_unique
    chosen = out[out.offer != ""]
    assert 0 < len(chosen) < len(out) and set(chosen.offer) <= {"auto_loan", "credit_card", "mortgage"}
    assert (out[out.offer == ""].reasons.str.startswith("no offer")).all()
    assert chosen.reasons.str.contains("propensity").all()
    planned = log[log.offer.notna()]
    assert ((planned.probability > 0) & (planned.probability <= 1)).all()
    zone = planned.profile_id.map(city).map(zones).fillna("UTC")  # each person's clock (the demo's zones)
    local = pd.Series(
        [pd.Timestamp(t).tz_localize("UTC").tz_convert(z).hour for t, z in zip(planned.send_at, zone, strict=True)],
        index=planned.index,
    )
    assert ((local >= 9) & (local < 21)).all()  # never in quiet hours
    assert (local[planned.channel == "call_centre"].between(10, 18)).all()
    # the log keeps every candidate, the suppressed ones with their rule
    candidates = [c for text in log.candidates for c in json.loads(text)]
    rules = {c["suppressed_by"].split(":")[0] for c in candidates if "suppressed_by" in c}
    assert {"consent", "eligibility"} <= rules and any("propensity" in c for c in candidates)


def test_post_decisions_answers_as_the_batch_for_the_same_people_at_the_same_time(bank):
    from cx360.api import services
    from cx360.api.access import create_key
    from cx360.api.app import open_context
    from cx360.decisions.responses import Models

    with Workspace(bank) as ws:
        log = _table(ws, "decisions")
    as_of = log.as_of.iloc[0].to_pydatetime()
    ctx, _ = open_context(bank)
    who = ctx.keys.authenticate(create_key(bank, "agent", "test-decisions-equal")[1])
    compared = pd.concat([log[log.offer.notna()].head(25), log[log.offer.isna()].head(10)])
    for batch in compared.itertuples():
        live = services.next_best_action(ctx, who, batch.profile_id, at=as_of)
        assert (live["offer"], live["channel"]) == (_text(batch.offer), _text(batch.channel)), batch.profile_id
        assert live["reasons"] == batch.reasons and live["explored"] == batch.explored
        assert live["probability"] == pytest.approx(batch.probability)
        assert live["expected_value"] == pytest.approx(batch.expected_value)
        assert (live["model"] or "") == _text(batch.model)
        assert live["uplift"] == (None if pd.isna(batch.uplift) else pytest.approx(batch.uplift))
        if _text(batch.offer):
            assert live["send_at"] == batch.send_at and live["propensity"] == pytest.approx(batch.propensity)
        assert live["candidates"] == [pytest.approx(c) for c in json.loads(batch.candidates)]
    # the propensity the one-person path scores is scikit-learn's calibrated model, by numpy arithmetic
    model = Models.load(bank / "models" / "decisions").propensity
    rows = np.random.default_rng(0).random((40, len(model.mean_)))
    assert model.predict_design(rows) == pytest.approx(model.model_.predict_proba(rows)[:, 1], abs=1e-12)


def test_a_rejection_applied_by_the_stream_after_the_index_build_stops_the_re_offer_at_once(bank, tmp_path):
    import shutil

    from cx360.api import services
    from cx360.api.access import create_key
    from cx360.api.app import open_context
    from cx360.online.processor import Processor

    root = tmp_path / "bank"
    shutil.copytree(bank, root)
    with Workspace(root) as ws:
        log = _table(ws, "decisions")
        ids = _table(ws, "identity_map")
    as_of = log.as_of.iloc[0].to_pydatetime()
    ctx, _ = open_context(root)
    who = ctx.keys.authenticate(create_key(root, "agent", "test-decisions-stream")[1])
    customers = ids[ids.kind == "customer_no"].drop_duplicates("profile_id").set_index("profile_id").node
    offered = log[log.offer.notna() & log.profile_id.isin(customers.index)].iloc[0]
    pid, offer = offered.profile_id, offered.offer
    assert services.next_best_action(ctx, who, pid, at=as_of)["offer"] == offer  # as the batch, before
    message = {
        "type": "track",
        "messageId": "stream-rejection-1",
        "event": "offer_rejected",
        "userId": customers[pid].partition(":")[2],
        "timestamp": (as_of - dt.timedelta(hours=1)).isoformat() + "Z",
        "properties": {"offer": offer},
    }
    assert pid in Processor(ctx.config, ctx.store.online, ctx.store, feeds=None).apply("campaigns", [message])
    live = services.next_best_action(ctx, who, pid, at=as_of)
    assert live["offer"] != offer
    held = [c for c in live["candidates"] if c["offer"] == offer]
    assert held and all(c["suppressed_by"].startswith("rejected_cooldown") for c in held)


def test_offers_with_a_control_group_are_ranked_by_uplift_the_others_by_propensity(bank):
    with Workspace(bank) as ws:
        log = _table(ws, "decisions")
        events = _table(ws, "profile_events")
    held = events[(events.name == "offer_held_out") & (events.ts < log.as_of.iloc[0])]
    held_offers = set(held.properties.map(lambda p: json.loads(p)["offer"]))
    assert held_offers == {"auto_loan", "credit_card"}  # the demo's campaigns with a holdout
    chosen = log[log.offer.notna()]
    assert set(chosen.model[chosen.offer.isin(held_offers)]) == {"uplift"}
    assert set(chosen.model[chosen.offer == "mortgage"]) == {"propensity"}
    by_uplift = chosen[chosen.model == "uplift"]
    assert len(by_uplift) and by_uplift.reasons.str.contains("minus .* who take it uncontacted", regex=True).all()
    assert (by_uplift.uplift < by_uplift.propensity).all()
    assert chosen[chosen.model == "propensity"].reasons.str.contains("no control group for mortgage").all()
    assert chosen[chosen.model == "propensity"].uplift.isna().all()
    for row in log.itertuples():  # every open candidate is scored by its offer's model: value × uplift or propensity
        for c in json.loads(row.candidates):
            if "suppressed_by" in c:
                continue
            assert c["model"] == ("uplift" if c["offer"] in held_offers else "propensity")
            score = c["uplift"] if c["model"] == "uplift" else c["propensity"]
            assert c["expected_value"] == pytest.approx(score * c["value"], rel=1e-4, abs=1e-5)


def test_control_groups_are_learnt_from_and_never_count_as_contacts(bank):
    from cx360.decisions import inputs
    from cx360.decisions.control import ControlModel

    with Workspace(bank) as ws:
        data = inputs.load(ws.engine, ws.config, None)
    assert "offer_held_out" not in set(data.history.name) and data.unreadable_controls == 0
    assert set(data.controls.offer) == {"auto_loan", "credit_card"} and data.controls.converted.any()
    # the report says, per offer, what its control group holds and which model ranks it
    result = CliRunner().invoke(cli, ["decide", "-w", str(bank), "--format", "json"])
    assert result.exit_code == 0, result.output
    uplift = json.loads(result.output)["uplift"]
    for offer in ("auto_loan", "credit_card"):
        mine = data.controls[data.controls.offer == offer]
        assert uplift[offer]["controls"] == len(mine) and uplift[offer]["converted"] == mine.converted.sum()
        assert uplift[offer]["ranked_by"] == "uplift"
    assert uplift["mortgage"] == {"offer": "mortgage", "controls": 0, "ranked_by": "propensity"}
    # too small a control group: that offer is ranked by propensity, and its decisions say why
    x = pd.DataFrame(np.zeros((30, 3)), columns=["prior_rate", "offer_rate", "log_contacts"])
    few = pd.DataFrame({"offer": ["deposit"] * 30, "converted": [True] * 5 + [False] * 25})
    model = ControlModel(min_controls=100).fit(few, x, {"deposit": 0.2})
    assert not model.ranked_by_uplift("deposit") and np.isnan(model.predict(["deposit"], x.to_numpy()[:1]))[0]
    assert "30 held out, 5 took it anyway) is under 100" in model.why_not("deposit")


def test_deciding_in_chunks_decides_as_in_one_go(bank):
    from cx360.decisions import decide, inputs

    with Workspace(bank) as ws:
        data = inputs.load(ws.engine, ws.config, None)
        now = dt.datetime(2026, 1, 2)
        whole, one, _ = decide.plan(ws, data, now)
        parts, chunked, _ = decide.plan(ws, data, now, chunk=17)
    same = ["profile_id", "offer", "channel", "send_at", "expected_value", "probability", "reasons", "candidates"]
    pd.testing.assert_frame_equal(one[same], chunked[same])
    assert (whole.by_offer, whole.suppressed, whole.decided) == (parts.by_offer, parts.suppressed, parts.decided)


def test_a_condition_compiled_for_one_person_agrees_with_the_batch_on_random_rows():
    rng = np.random.default_rng(3)
    n = 300
    frame = expressions.nullable(
        pd.DataFrame(
            {
                "age": pd.array(rng.integers(15, 80, n), dtype="Int64").astype(object),
                "spend": rng.normal(500, 400, n).round(1),
                "tier": rng.choice(["gold", "silver", "bronze"], n).astype(object),
                "vip": rng.random(n) < 0.3,
            }
        ).astype(object)
    )
    for col in frame.columns:  # a fifth of every field unknown
        frame.loc[rng.random(n) < 0.2, col] = None
    frame = expressions.nullable(frame.astype(object))
    rows = [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in frame.to_dict("records")]
    for text in (
        "age >= 21",
        "age between 25 and 60 and not vip",
        "tier in ('gold', 'silver') or spend / (age - 30) > 20",
        "spend is null or tier not in ('bronze')",
        "not (vip or age < 18) and spend * 2 - 100 >= age",
        "-spend < 0 and tier = 'gold'",
    ):
        batch = expressions.condition(text, frame, "o").tolist()
        assert [expressions.row_condition(text, "o")(r) for r in rows] == batch, text
    for spec in ("50 + spend * 0.01", "spend / (age - 30)", 120):
        batch = expressions.value(spec, frame, "o").tolist()
        assert [expressions.row_value(spec, "o")(r) for r in rows] == pytest.approx(batch), spec
    with pytest.raises(ConfigError, match=r"offer 'o'.*unknown field 'agee'"):
        expressions.row_condition("agee > 1", "o")(rows[0])


def test_cooldown_consent_and_caps_hold_for_every_decision(bank):
    with Workspace(bank) as ws:
        log = _table(ws, "decisions")
        events = _table(ws, "profile_events")
        as_of = log.as_of.iloc[0]
        policy = Policy(ws.config.privacy)
        consented = {
            ch: set(
                ws.engine.to_arrow(policy.allowed(ws.engine, "marketing", ch, dt.datetime.now()), step="t")[
                    "profile_id"
                ].to_pylist()
            )
            for ch in ("email", "sms", "call")
        }
    chosen = log[log.offer.notna()]
    events["offer"] = events.properties.map(lambda p: json.loads(p or "{}").get("offer"))
    rejected = events[(events.name == "offer_rejected") & (events.ts >= as_of - pd.Timedelta(days=180))]
    pairs = set(zip(rejected.profile_id, rejected.offer, strict=True))
    auto = chosen[chosen.offer == "auto_loan"]
    assert not any((p, "auto_loan") in pairs for p in auto.profile_id)
    assert any(o == "auto_loan" for _, o in pairs)  # the rule had something to hold back
    for ch, consent in (("email", "email"), ("sms", "sms"), ("call_centre", "call")):
        assert set(chosen.profile_id[chosen.channel == ch]) <= consented[consent]
    week = events[events.name.isin(CONTACT_EVENTS) & (events.ts >= as_of - pd.Timedelta(days=7))]
    for ch in ("email", "sms"):
        before = week[week.channel == ch].profile_id.value_counts()
        assert not set(chosen.profile_id[chosen.channel == ch]) & set(before.index[before >= 1])


def test_a_consent_withdrawn_before_the_send_suppresses_it(bank, tmp_path):
    with Workspace(bank) as ws:
        log = _table(ws, "decisions")
        email = log[log.channel == "email"].iloc[0]
        between = email.as_of + pd.Timedelta(minutes=1)  # after the decision's as_of, before its send
        withdrawn = ledger.change(
            ws.config.privacy, email.profile_id, "marketing", "withdrawn", channel="email", at=between, source="test"
        )
        ledger.append(ws.engine, [withdrawn.row()])
    at = (log.send_at.max() + pd.Timedelta(hours=1)).isoformat()
    result = CliRunner().invoke(cli, ["decide", "send", "-w", str(bank), "--at", at, "--out-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    with Workspace(bank) as ws:
        after = _table(ws, "decisions").set_index("decision_id")
    row = after.loc[email.decision_id]
    assert row.status == "suppressed" and row.suppressed_by.startswith("consent")
    sent = pd.read_csv(tmp_path / "email.csv")
    assert email.profile_id not in set(sent.profile_id)
    assert (after[after.offer.notna()].status != "planned").all()


def _config(tmp_path, text: str):
    path = tmp_path / "cx360.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def test_bad_catalogues_fail_clearly(bank, tmp_path):
    base = "[contact_policy.channels.email]\ncap = { count = 3, days = 7 }\n"
    with pytest.raises(ConfigError, match="caps conflict"):
        _config(tmp_path, "[contact_policy]\nmax_contacts = { count = 1, days = 7 }\n" + base)
    with pytest.raises(ConfigError, match="offer 'x': unknown channel"):
        _config(tmp_path, base + '[[offers]]\nname = "x"\nchannels = ["fax"]\n')
    with pytest.raises(ConfigError, match="quiet hours"):
        _config(tmp_path, "[contact_policy]\nquiet_hours = [8, 22]\n[contact_policy.channels.email]\nhours = [9, 20]\n")
    toml = bank / "cx360.toml"
    original = toml.read_text(encoding="utf-8")
    try:
        toml.write_text(original.replace('where = "age_years >= 21"', 'where = "age_yars >= 21"'), encoding="utf-8")
        result = CliRunner().invoke(cli, ["decide", "-w", str(bank)], catch_exceptions=False, standalone_mode=False)
    except ConfigError as exc:
        assert "offer 'auto_loan'" in str(exc) and "'age_yars'" in str(exc)
    else:
        pytest.fail(f"an unknown field was accepted: {result.output}")
    try:
        toml.write_text(original.replace('where = "age_years >= 21"', 'where = "age_years > 500"'), encoding="utf-8")
        result = CliRunner().invoke(cli, ["decide", "-w", str(bank), "--format", "json"])
        assert result.exit_code == 0, result.output
        assert "offer 'auto_loan': no customer is eligible" in result.output
    finally:
        toml.write_text(original, encoding="utf-8")


def test_conditions_follow_three_valued_logic_and_name_the_offer():
    frame = expressions.nullable(pd.DataFrame({"age": [30, None, 17], "tier": ["gold", "silver", None]}))
    assert expressions.condition("age >= 18", frame, "o").tolist() == [True, False, False]
    assert expressions.condition("not age >= 18", frame, "o").tolist() == [False, False, True]
    assert expressions.condition("age is null or tier in ('gold')", frame, "o").tolist() == [True, True, False]
    assert expressions.value("age * 2", frame, "o").tolist() == [60.0, 0.0, 34.0]
    with pytest.raises(ConfigError, match=r"offer 'o'.*not a true/false test"):
        expressions.condition("age + 1", frame, "o")


def test_a_customer_without_history_falls_back_to_segment_then_everyone():
    history = pd.DataFrame(
        {
            "profile_id": ["a", "a", "a", "b", "b", "c"],
            "ts": pd.to_datetime(["2025-01-01"] * 6),
            "name": [
                "offer_accepted",
                "offer_accepted",
                "offer_ignored",
                "offer_accepted",
                "offer_ignored",
                "offer_ignored",
            ],
            "channel": ["sms", "sms", "email", "push", "email", "email"],
            "offer": ["x"] * 6,
        }
    )
    segment = pd.Series({"a": "s1", "b": "s2", "new": "s1"})
    m = ChannelHourModel(strength=1).fit(history, segment, pd.Series([19, 19, 10, 19, 10, 10]))
    own = m.choose("a", "channel", ["email", "sms", "push"])
    assert (own.value, own.level) == ("sms", "person") and "own history" in own.reason
    newcomer = m.choose("new", "channel", ["email", "sms", "push"])
    assert (newcomer.value, newcomer.level) == ("sms", "segment") and "segment s1" in newcomer.reason
    stranger = m.choose("nobody", "hour", list(range(9, 21)))
    assert stranger.level == "everyone" and stranger.value == 19 and "everyone" in stranger.reason


def test_the_models_weigh_how_a_person_spends_per_offer_contacted_or_not(bank):
    from zoneinfo import ZoneInfo

    from cx360.decisions import inputs, portrait
    from cx360.decisions.responses import Models

    rng = np.random.default_rng(3)
    people = [f"p{i}" for i in range(400)]
    fuel = pd.Series([i % 2 == 0 for i in range(400)], index=people)  # who spends on fuel
    spend = pd.DataFrame(
        [(p, "fuel" if f else "groceries", 900.0) for p, f in fuel.items()]
        + [(p, "groceries" if f else "fuel", 100.0) for p, f in fuel.items()],
        columns=["profile_id", "key", "value"],
    )
    rows = [(p, o) for p in people for o in ("x", "y") for _ in range(3)]
    pid, offer = (np.array(c) for c in zip(*rows, strict=True))
    chance = np.where(offer == "x", np.where(fuel[pid].to_numpy(), 0.4, 0.05), 0.15)  # y: whatever one spends on
    history = pd.DataFrame(
        {
            "profile_id": pid,
            "ts": pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 300 * 24, len(pid)), "h"),
            "name": np.where(rng.random(len(pid)) < chance, "offer_accepted", "offer_ignored"),
            "channel": "email",
            "offer": offer,
        }
    ).sort_values(["profile_id", "ts"], ignore_index=True)
    controls = pd.DataFrame({"profile_id": people, "ts": pd.Timestamp("2025-06-01"), "offer": "x"})
    controls["converted"] = rng.random(400) < np.where(fuel.to_numpy(), 0.3, 0.02)  # x is taken uncontacted
    activity = pd.DataFrame({"profile_id": [], "hour": [], "n": []})
    models = Models(
        history, activity, pd.Series(dtype=object), ZoneInfo("UTC"), controls=controls, min_controls=50,
        portrait=portrait.frame(spend),
    )  # fmt: skip
    assert set(models.traits) == {"spend_share:fuel", "spend_share:groceries", "log_spend"}
    c = models.features(
        pd.DataFrame({"profile_id": ["p0", "p1", "p0", "p1"], "offer": ["x", "x", "y", "y"], "channel": "email"})
        .assign(hour=12)
    )  # fmt: skip
    p = models.propensity.predict(c)
    assert p[0] > 2 * p[1] and abs(p[2] - p[3]) < 0.05  # fuel matters for x only
    anyway = models.untreated(c)
    assert anyway[0] > 5 * anyway[1] and np.isnan(anyway[2:]).all()  # y has no control group
    assert "spends on fuel" in models.propensity.reasons(c.iloc[:1])[0]
    assert models.propensity.importance(1)[0][0] == "x: spends on fuel"
    # one served profile's features are the batch's for the same person
    one = portrait.row({"fuel": 900.0, "groceries": 100.0}, list(models.traits))
    assert one == pytest.approx(models.traits_of(pd.Series(["p0"])).iloc[0].tolist())
    # the demo: people who do not consent to profiling have no spend features
    with Workspace(bank) as ws:
        data = inputs.load(ws.engine, ws.config, None)
    assert len(data.portrait) and set(data.portrait.index) <= data.profiling


def test_exploration_logs_the_probability_of_each_choice():
    scored = pd.DataFrame(
        {
            "profile_id": [f"p{i // 3}" for i in range(3000)],
            "offer": ["a", "b", "c"] * 1000,
            "channel": "email",
            "score": [3.0, 2.0, 1.0] * 1000,
            "suppressed_by": None,
        }
    )
    chosen = arbitrate.pick(scored, 0.3, seed=1)
    assert chosen.profile_id.is_unique and len(chosen) == 1000
    best = chosen[chosen.offer == "a"]
    assert best.probability.round(6).eq(round(0.7 + 0.1, 6)).all()
    assert chosen[chosen.offer != "a"].probability.round(6).eq(0.1).all()
    assert 0.15 < (chosen.offer != "a").mean() < 0.25  # a third of the 30% draws lands on the best anyway
    assert chosen.equals(arbitrate.pick(scored, 0.3, seed=1))


def test_post_decisions_answers_one_person_now_by_id_or_identifier(bank):
    from fastapi.testclient import TestClient

    from cx360.api.access import create_key
    from cx360.api.app import create_app, open_context

    with Workspace(bank) as ws:
        events = _table(ws, "profile_events")
        ids = ws.engine.to_arrow(ws.engine.table("identity_map"), step="t").to_pandas()
    complaint = events[(events.name == "complaint") & events.properties.str.contains('"status":"open"')]
    held = complaint.profile_id.iloc[0]
    customer = ids[(ids.kind == "customer_no") & (ids.profile_id == held)].node.iloc[0]
    ctx, _ = open_context(bank)
    key = create_key(bank, "agent", "test-decisions")[1]
    admin = create_key(bank, "admin", "test-decisions-audit")[1]
    with TestClient(create_app(ctx)) as client:
        post = lambda body: client.post("/v1/decisions", json=body, headers={"Authorization": f"Bearer {key}"})  # noqa: E731
        by_id = post({"profile_id": held})
        assert by_id.status_code == 200, by_id.text
        answer = by_id.json()
        assert {"profile_id", "offer", "channel", "send_at", "expected_value", "propensity", "reasons"} <= set(answer)
        assert answer["offer"] == "" and "complaint_hold" in answer["reasons"]
        assert all(c["suppressed_by"].startswith("complaint_hold") for c in answer["candidates"])
        by_node = post({"identifier": customer}).json()
        assert by_node["profile_id"] == held and by_node["offer"] == ""
        others = [p for p in events.profile_id.unique() if p not in set(complaint.profile_id)]
        offered = [post({"profile_id": p}).json() for p in others[:15]]
        chosen = [a for a in offered if a["offer"]]
        assert chosen and all(a["channel"] and a["send_at"] and 0 < a["probability"] <= 1 for a in chosen)
        assert post({"profile_id": held, "identifier": customer}).status_code == 422
        assert post({}).status_code == 422
        assert post({"profile_id": "P0000"}).status_code == 404
        log = client.get("/v1/audit", headers={"Authorization": f"Bearer {admin}"}).json()["entries"]
        assert any(e["action"] == "decision" and e["profile_id"] == held for e in log)


def test_answers_that_come_back_as_events_join_their_sent_decision():
    from cx360.decisions.decide import join_responses

    t = pd.Timestamp("2026-01-10 10:00")
    log = pd.DataFrame(
        {
            "decision_id": ["d1", "d2", "d3"],
            "profile_id": ["a", "b", "c"],
            "offer": ["x", "x", "x"],
            "send_at": [t, t, t],
            "status": ["sent", "sent", "suppressed"],
            "response": [None, None, None],
            "responded_at": pd.Series([pd.NaT] * 3, dtype="datetime64[us]"),
        }
    )
    history = pd.DataFrame(
        {
            "profile_id": ["a", "a", "b", "c"],
            "offer": ["x", "x", "y", "x"],
            "name": ["offer_rejected", "offer_accepted", "offer_accepted", "offer_accepted"],
            "ts": [t - pd.Timedelta(days=1), t + pd.Timedelta(hours=2), t + pd.Timedelta(hours=1), t],
        }
    )
    out = join_responses(log, history).set_index("decision_id")
    assert out.loc["d1", "response"] == "offer_accepted" and out.loc["d1", "responded_at"] == t + pd.Timedelta(hours=2)
    assert out.loc[["d2", "d3"], "response"].isna().all()  # another offer; not sent


def _text(value) -> str:
    return "" if value is None or pd.isna(value) else value


def test_send_times_keep_the_local_hour_across_daylight_saving_changes():
    from zoneinfo import ZoneInfo

    from cx360.decisions.decide import next_send

    berlin = ZoneInfo("Europe/Berlin")  # clocks go forward on 29 March 2026 at 02:00
    assert next_send(dt.datetime(2026, 3, 27, 20), 10, berlin) == dt.datetime(2026, 3, 28, 9)  # CET, +1
    assert next_send(dt.datetime(2026, 3, 28, 20), 10, berlin) == dt.datetime(2026, 3, 29, 8)  # CEST, +2
    assert next_send(dt.datetime(2026, 3, 28, 20), 2, berlin) == dt.datetime(2026, 3, 30, 0)  # 29 March has no 02:00


def test_activity_hours_are_on_each_persons_clock_with_its_own_offset(bank):
    from cx360.decisions import inputs

    with Workspace(bank) as ws:
        as_of = dt.datetime(2025, 12, 1)
        pe = _table(ws, "profile_events")
        people = sorted(pe.profile_id.unique())
        zones = pd.Series(["Europe/Berlin", "Asia/Novosibirsk"] * len(people), dtype=object)[: len(people)]
        zones.index = people
        got = inputs.activity(ws.engine, as_of, "offer_held_out", zones, "UTC")
        shared = inputs.activity(ws.engine, as_of, "offer_held_out", zones.map(lambda _: "Europe/Berlin"), "UTC")
    year = pe[
        ~pe.name.isin((*CONTACT_EVENTS, "offer_held_out")) & (pe.ts >= as_of - pd.Timedelta(days=365)) & (pe.ts < as_of)
    ]
    for zoned, result in ((zones, got), (zones.map(lambda _: "Europe/Berlin"), shared)):
        local = [
            ts.tz_localize("UTC").tz_convert(zoned[p]).hour for p, ts in zip(year.profile_id, year.ts, strict=True)
        ]
        want = pd.DataFrame({"profile_id": year.profile_id, "hour": local}).value_counts().sort_index()
        have = result.set_index(["profile_id", "hour"]).n.sort_index()
        assert have.to_dict() == want.to_dict()
    assert {1, 7} <= set(year.ts.dt.month)  # winter and summer clocks both compared


def test_quiet_and_send_hours_are_on_each_persons_own_clock(bank, tmp_path):
    """The demo's people live on several clocks: the card CRM's city, mapped by the demo's [contact_policy]
    zones; people without a city are on the workspace's UTC."""
    import shutil

    from cx360.api import services
    from cx360.api.access import create_key
    from cx360.api.app import open_context

    result = CliRunner().invoke(cli, ["decide", "-w", str(bank)])  # a fresh plan: earlier tests sent the last
    assert result.exit_code == 0, result.output
    with Workspace(bank) as ws:
        log = _table(ws, "decisions")
        city = _table(ws, "profiles").set_index("profile_id").city
        policy = ws.config.contact_policy
    assert policy.person_time_zone == "city" and policy.zones["Vladivostok"] == "Asia/Vladivostok"
    chosen = log[log.offer.notna() & (log.status == "planned")]
    zones = chosen.profile_id.map(city).map(policy.zones).fillna("UTC")
    assert zones.nunique() >= 3 and "Europe/Moscow" in set(zones), zones.value_counts()
    for row, local in zip(chosen.itertuples(), zones, strict=True):
        shown = pd.Timestamp(row.send_at).tz_localize("UTC").tz_convert(local)
        assert f"send at {shown.hour:02d}:00 {local}" in row.reasons and not policy.quiet(shown.hour)
    # the API answers on the same clocks (people the batch sent nothing to and suppressed nothing for)
    ctx, _ = open_context(bank)
    who = ctx.keys.authenticate(create_key(bank, "agent", "test-decisions-zones")[1])
    unsent = chosen[~chosen.profile_id.isin(log.profile_id[log.status != "planned"])]
    for batch in unsent.groupby(zones[unsent.index]).head(3).itertuples():
        live = services.next_best_action(ctx, who, batch.profile_id, at=batch.as_of.to_pydatetime())
        assert (live["reasons"], live["send_at"]) == (batch.reasons, batch.send_at)
    # a value that is no zone and not in `zones` is reported, and those people stay on the policy's clock
    root = tmp_path / "zoned"
    shutil.copytree(bank, root)
    toml = root / "cx360.toml"
    text = toml.read_text(encoding="utf-8")
    zones_line = next(line for line in text.splitlines() if line.startswith("zones = "))
    toml.write_text(text.replace(zones_line, 'zones = { Novosibirsk = "Asia/Novosibirsk" }'), "utf-8")
    result = CliRunner().invoke(cli, ["decide", "-w", str(root), "--format", "json"])
    assert result.exit_code == 0, result.output
    warned = [w for w in json.loads(result.output)["warnings"] if "time zone" in w]
    unknown = int(city.isin(["Moscow", "Yekaterinburg", "Vladivostok"]).sum())
    assert warned == [
        f"{unknown} people's city is no time zone and not in [contact_policy] zones: their hours are on UTC"
    ]
    # a field the golden record does not have, and a zone that is not one: clear errors
    toml.write_text(text.replace('person_time_zone = "city"', 'person_time_zone = "planet"'), "utf-8")
    with pytest.raises(ConfigError, match="person_time_zone: the golden record has no attribute 'planet'"):
        CliRunner().invoke(cli, ["decide", "-w", str(root)], catch_exceptions=False, standalone_mode=False)
    with pytest.raises(ConfigError, match=r"zones\.Omsk: 'Omsk' is not a time zone"):
        _config(tmp_path, '[contact_policy]\nzones = { Omsk = "Omsk" }\n')


def test_control_events_that_cannot_be_read_are_left_out_and_counted(bank, tmp_path):
    import shutil

    from cx360.decisions import inputs

    root = tmp_path / "bad-controls"
    shutil.copytree(bank, root)
    with Workspace(root) as ws:
        before = inputs.load(ws.engine, ws.config, None)
        for props in ('{"offer": "auto_loan", "converted": "maybe"}', '{"converted": "true"}'):
            ws.engine.con.raw_sql(
                f"INSERT INTO profile_events SELECT * REPLACE ('{props}' AS properties) FROM profile_events "
                "WHERE name = 'offer_held_out' LIMIT 1"
            )
        after = inputs.load(ws.engine, ws.config, None)
    assert (after.unreadable_controls, len(after.controls)) == (2, len(before.controls))
    result = CliRunner().invoke(cli, ["decide", "-w", str(root), "--format", "json"])
    assert result.exit_code == 0, result.output
    warnings = json.loads(result.output)["warnings"]
    assert any(w.startswith("2 offer_held_out event(s) left out of the control groups") for w in warnings)


def test_the_objective_decides_what_arbitration_ranks_by_in_the_batch_and_the_api(bank, tmp_path):
    import shutil

    from cx360.api import services
    from cx360.api.access import create_key
    from cx360.api.app import open_context

    root = tmp_path / "by-acceptance"
    shutil.copytree(bank, root)
    toml = root / "cx360.toml"
    text = toml.read_text(encoding="utf-8")
    text = text.replace('name = "credit_card"\n', 'name = "credit_card"\npriority = 2.0\n', 1)
    toml.write_text(text, encoding="utf-8")
    priority = {o.name: o.priority for o in load_config(toml).offers}
    assert priority["credit_card"] == 2.0 and priority["mortgage"] == 0.8
    ranked = {}
    for objective in ("expected", "acceptance"):
        toml.write_text(text + f'\n[decisions]\nobjective = "{objective}"\n', encoding="utf-8")
        result = CliRunner().invoke(cli, ["decide", "-w", str(root), "--format", "json"])
        assert result.exit_code == 0, result.output
        with Workspace(root) as ws:
            log = _table(ws, "decisions")
        planned = log[(log.status == "planned") & log.offer.notna() & ~log.explored]
        assert len(planned) and set(planned.model) == {"propensity"}  # no objective but incremental ranks by uplift
        for row in planned.itertuples():
            open_ = [c for c in json.loads(row.candidates) if "suppressed_by" not in c]
            key = (lambda c: c["propensity"] * c["value"]) if objective == "expected" else (
                lambda c: c["propensity"] * priority[c["offer"]]
            )  # fmt: skip
            best = max(open_, key=key)
            mine = next(c for c in open_ if (c["offer"], c["channel"]) == (row.offer, row.channel))
            assert key(best) == pytest.approx(key(mine), rel=1e-4)
            for c in open_:  # the expected value is propensity × value, whatever ranks; uplift is still shown
                assert c["expected_value"] == pytest.approx(c["propensity"] * c["value"], rel=1e-4, abs=1e-5)
                assert ("uplift" in c) == (c["offer"] in {"auto_loan", "credit_card"})
            assert f"objective: {objective}" in row.reasons
        ranked[objective] = planned.set_index("profile_id").offer
    both = ranked["expected"].index.intersection(ranked["acceptance"].index)
    assert (ranked["expected"][both] != ranked["acceptance"][both]).any()  # the objective changes choices
    # the API answers as the batch under the same objective (for people the batch sent nothing to: only its
    # caps count sends, see cx360.decisions.realtime; nor suppressed, by a consent changed since)
    ctx, _ = open_context(root)
    who = ctx.keys.authenticate(create_key(root, "agent", "test-decisions-objective")[1])
    unsent = log[(log.status == "planned") & ~log.profile_id.isin(log.profile_id[log.status != "planned"])]
    for batch in unsent.head(15).itertuples():
        live = services.next_best_action(ctx, who, batch.profile_id, at=batch.as_of.to_pydatetime())
        assert (live["offer"], live["reasons"]) == (_text(batch.offer), batch.reasons)
        assert live["candidates"] == [pytest.approx(c) for c in json.loads(batch.candidates)]
    toml.write_text(text + '\n[decisions]\nobjective = "clicks"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="objective"):
        load_config(toml)
