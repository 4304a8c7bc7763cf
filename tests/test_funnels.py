"""Funnels against a brute-force reference on random event logs, the known funnel pitfalls one by one,
and bad input; form analytics; segment sizes over time (DuckDB in a temporary folder)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import statistics

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cx360 import schema
from cx360.config import DuckDBEngine, FunnelSpec
from cx360.engine import DuckDB
from cx360.errors import ConfigError
from cx360.funnels import forms
from cx360.funnels.compute import run
from cx360.funnels.fields import EventFields
from cx360.segments import history

T0 = dt.datetime(2025, 3, 1)
HOUR = 3600
NAMES = ("page_viewed", "form_started", "form_submitted")


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    e = DuckDB(DuckDBEngine(), tmp_path_factory.mktemp("funnels"))
    e.ensure_canonical_tables()
    yield e
    e.close()


def _load(engine, events: list[tuple]) -> None:
    """events: (person, hour, name, channel[, properties])."""
    target = schema.ibis_schema("profile_events").to_pyarrow()
    rows = [
        {
            "profile_id": f"p{e[0]}",
            "event_id": f"e{i}",
            "ts": T0 + dt.timedelta(hours=e[1]),
            "source": "test",
            "name": e[2],
            "channel": e[3],
            "amount": None,
            "properties": json.dumps(e[4] if len(e) > 4 else {}),
        }
        for i, e in enumerate(events)
    ]
    engine.replace("profile_events", pa.Table.from_pylist(rows, schema=target))


def _funnel(engine, steps, within="7d", **kw):
    spec = FunnelSpec(name="f", steps=steps, within=within)
    return run(engine, spec, EventFields(engine, ["path"]), **kw)


def _entered(report) -> list[int]:
    return [s.entered for s in report.steps]


# ---- the reference: every chain of distinct, strictly later events, tried one by one


def _reference(events, step_names, within_h):
    by_person: dict[int, list] = {}
    for e in events:
        by_person.setdefault(e[0], []).append(e)
    n = len(step_names)
    entered = [0] * n
    gaps: list[list[float]] = [[] for _ in range(n)]
    for evs in by_person.values():
        best: tuple | None = None  # (level, -start, chain) maximised; then the earliest chain
        starts = [e for e in evs if e[2] == step_names[0]]
        for s in starts:
            for level in range(n, 0, -1):
                chains = [
                    (s, *rest)
                    for rest in itertools.permutations(evs, level - 1)
                    if all(rest[j][2] == step_names[j + 1] for j in range(level - 1))
                    and all(b[1] > a[1] for a, b in itertools.pairwise((s, *rest)))
                    and all(r[1] - s[1] <= within_h for r in rest)
                ]
                if chains:
                    chain = min(chains, key=lambda c: [x[1] for x in c])
                    key = (level, -s[1])
                    if best is None or key > best[0] or (key == best[0] and [x[1] for x in chain] < best[1]):
                        best = (key, [x[1] for x in chain])
                    break
        if best is None:
            continue
        times = best[1]
        for k in range(len(times)):
            entered[k] += 1
            if k:
                gaps[k].append((times[k] - times[k - 1]) * HOUR)
    medians = [statistics.median(g) if g else None for g in gaps]
    return entered, medians


event = st.tuples(st.integers(0, 2), st.integers(0, 12), st.sampled_from(NAMES), st.sampled_from(["web", "app"]))


@settings(
    max_examples=20,
    derandomize=True,  # seeded: the same cases on every run
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=st.lists(event, min_size=3, max_size=12), within_h=st.sampled_from([1, 3, 6]), repeat=st.booleans())
def test_funnel_matches_the_brute_force_reference(engine, events, within_h, repeat):
    step_names = ["page_viewed", "form_started", "page_viewed" if repeat else "form_submitted"]
    _load(engine, events)
    report = _funnel(engine, [f"name = '{n}'" for n in step_names], within=f"{within_h}h")
    entered, medians = _reference(events, step_names, within_h)
    assert _entered(report) == entered
    assert [s.median_seconds_from_previous for s in report.steps[1:]] == pytest.approx(medians[1:])
    assert all(a >= b for a, b in itertools.pairwise(_entered(report)))


def test_one_event_never_serves_two_steps(engine):
    _load(engine, [(0, 0, "page_viewed", "web"), (1, 0, "page_viewed", "web"), (1, 2, "page_viewed", "web")])
    assert _entered(_funnel(engine, ["name = 'page_viewed'", "name = 'page_viewed'"])) == [2, 1]


def test_a_second_start_does_not_reset_progress_and_opens_its_own_window(engine):
    # p0: starts, starts again 10 days later, then converts a day after the second start
    # p1: converts within the window of its first start, then starts once more and stops
    _load(
        engine,
        [
            (0, 0, "page_viewed", "web"),
            (0, 240, "page_viewed", "web"),
            (0, 264, "form_started", "app"),
            (1, 0, "page_viewed", "web"),
            (1, 5, "form_started", "app"),
            (1, 300, "page_viewed", "web"),
        ],
    )
    report = _funnel(engine, ["name = 'page_viewed'", "name = 'form_started'"])
    assert _entered(report) == [2, 2]
    assert report.steps[1].median_seconds_from_previous == pytest.approx((24 * HOUR + 5 * HOUR) / 2)


def test_the_window_counts_from_the_first_step_not_the_previous_one(engine):
    _load(
        engine,
        [(0, 0, "page_viewed", "web"), (0, 100, "form_started", "web"), (0, 200, "form_submitted", "web")],
    )
    steps = ["name = 'page_viewed'", "name = 'form_started'", "name = 'form_submitted'"]
    assert _entered(_funnel(engine, steps, within="7d")) == [1, 1, 0]  # 200 h from the start: past 168 h
    assert _entered(_funnel(engine, steps, within="9d")) == [1, 1, 1]
    assert _entered(_funnel(engine, steps, within="200h")) == [1, 1, 1]  # the window's end is in it


def test_times_between_steps_come_from_the_earliest_attempt_that_goes_furthest(engine):
    _load(
        engine,
        [
            (0, 0, "page_viewed", "web"),
            (0, 10, "page_viewed", "web"),
            (0, 12, "form_started", "web"),
            (0, 13, "form_submitted", "web"),
        ],
    )
    report = _funnel(engine, ["name = 'page_viewed'", "name = 'form_started'", "name = 'form_submitted'"])
    assert [s.median_seconds_from_previous for s in report.steps[1:]] == [12 * HOUR, 1 * HOUR]


def test_events_at_the_same_instant_do_not_follow_each_other(engine):
    _load(engine, [(0, 3, "form_started", "web"), (0, 3, "page_viewed", "web")])
    assert _entered(_funnel(engine, ["name = 'page_viewed'", "name = 'form_started'"])) == [1, 0]


def test_steps_resolve_across_channels_and_break_down_by_the_first_channel(engine):
    _load(
        engine,
        [
            (0, 0, "page_viewed", "web", {"path": "/cards"}),
            (0, 1, "form_submitted", "mobile_app"),
            (1, 0, "page_viewed", "mobile_app", {"path": "/cards"}),
            (2, 0, "page_viewed", "web", {"path": "/"}),
        ],
    )
    report = _funnel(
        engine, ["name = 'page_viewed' and path = '/cards'", "name = 'form_submitted'"], breakdown="channel"
    )
    assert _entered(report) == [2, 1]
    assert {g: [s.entered for s in steps] for g, steps in report.groups.items()} == {
        "web": [1, 1],
        "mobile_app": [1, 0],
    }
    assert report.steps[0].converted == 1 and report.steps[1].conversion == 0.5


def test_a_funnel_with_no_events_counts_nobody(engine):
    _load(engine, [])
    report = _funnel(engine, ["name = 'page_viewed'", "name = 'form_started'"])
    assert _entered(report) == [0, 0]
    assert report.steps[1].conversion is None and report.steps[1].median_seconds_from_previous is None


def test_a_step_naming_an_unknown_field_is_a_clear_error(engine):
    with pytest.raises(ConfigError, match=r"step 2: unknown event field\(s\) 'pathh'.*known: name, channel"):
        _funnel(engine, ["name = 'page_viewed'", "pathh = '/cards'"])


@pytest.mark.parametrize(
    "steps, within, message",
    [
        (["name = 'a'"], "7d", "at least 2 items"),
        (["name = 'a'", "name ="], "7d", "expected a field"),
        (["name = 'a'", "name = 'b'"], "seven days", "is not a window"),
    ],
)
def test_a_malformed_funnel_is_refused(steps, within, message):
    with pytest.raises(ValueError, match=message):
        FunnelSpec(name="f", steps=steps, within=within)


# ---- forms


def test_forms_count_starts_outcomes_fields_and_why_people_left(engine):
    loan = {"form": "loan"}
    _load(
        engine,
        [
            # p0 starts, sees an error, leaves at 'income' after the /rates page; starts again and submits
            (0, 0, "page_viewed", "web", {"path": "/loans"}),
            (0, 1, "form_started", "web", loan),
            (0, 2, "page_viewed", "web", {"path": "/rates"}),
            (0, 2, "app_error", "web"),
            (0, 3, "form_abandoned", "web", {"form": "loan", "field": "income"}),
            (0, 10, "form_started", "mobile_app", loan),
            (0, 12, "form_submitted", "mobile_app", loan),
            # p1 leaves at 'income' too, an hour in; p2 at 'passport'; p3 has not finished yet
            (1, 0, "form_started", "web", loan),
            (1, 1, "form_abandoned", "web", {"form": "loan", "field": "income"}),
            (2, 0, "form_started", "web", loan),
            (2, 5, "form_abandoned", "web", {"form": "loan", "field": "passport"}),
            (3, 0, "form_started", "web", loan),
            # a submission without a start is no attempt; another form is counted apart
            (4, 0, "form_submitted", "web", loan),
            (4, 1, "form_started", "mobile_app"),
        ],
    )
    reports = {r.form: r for r in forms.report(engine, engine.table("profile_events"))}
    loan_report = reports["loan"]
    assert (loan_report.starts, loan_report.submitted, loan_report.abandoned, loan_report.open) == (5, 1, 3, 1)
    assert loan_report.people == 4 and loan_report.submit_rate == pytest.approx(0.2)
    assert loan_report.median_seconds_to_submit == 2 * HOUR
    assert loan_report.median_seconds_to_abandon == 2 * HOUR
    assert [(f["field"], f["abandoned"]) for f in loan_report.fields] == [("income", 2), ("passport", 1)]
    assert loan_report.fields[0]["share"] == pytest.approx(2 / 3)
    assert loan_report.last_pages == [{"page": "/rates", "abandoned": 1}]
    assert loan_report.errors == [{"error": "app_error", "abandoned": 1}]
    assert reports["(unnamed)"].starts == 1 and reports["(unnamed)"].open == 1


def test_forms_without_events_report_nothing(engine):
    _load(engine, [(0, 0, "page_viewed", "web")])
    assert forms.report(engine, engine.table("profile_events")) == []


# ---- segment sizes over time


def test_segment_sizes_over_time_follow_the_membership_history(engine):
    days = [dt.datetime(2025, 1, d) for d in (1, 2, 3)]
    rows = [
        ("a", days[0], None),
        ("b", days[0], days[1]),
        ("c", days[1], days[2]),
        ("d", days[2], None),
        ("b", days[2], None),  # back again
    ]
    target = schema.ibis_schema("segment_members").to_pyarrow()
    members = [{"segment": "s", "profile_id": p, "entered_at": e, "exited_at": x} for p, e, x in rows]
    engine.replace("segment_members", pa.Table.from_pylist([*members, {**members[0], "segment": "t"}], schema=target))
    got = engine.to_arrow(history.sizes(engine, "s"), step="test").to_pylist()
    assert [(r["as_of"], r["size"], r["entered"], r["left"]) for r in got] == [
        (days[0], 2, 2, 0),
        (days[1], 2, 1, 1),
        (days[2], 3, 2, 1),
    ]
