"""The condition language, RFM cells, clusters and digital archetypes, on tiny tables (DuckDB in memory)."""

from __future__ import annotations

import ibis
import numpy as np
import pandas as pd
import pytest

from cx360.conditions import compile_condition, parse
from cx360.config import DuckDBEngine
from cx360.engine import DuckDB
from cx360.errors import ConfigError
from cx360.models import archetypes
from cx360.segments import builtin

ROWS = pd.DataFrame(
    {
        "pid": ["a", "b", "c", "d"],
        "risk": [0.9, 0.2, None, 0.8],
        "clv": [600.0, 900.0, 700.0, 100.0],
        "tier": ["gold", "silver", "gold", None],
        "seen": pd.to_datetime(["2025-01-01", "2025-06-01", "2025-07-01", None]),
    }
)


def _match(text: str) -> list[str]:
    t = ibis.memtable(ROWS)
    out = t.filter(compile_condition(parse(text), lambda f: t[f])).order_by("pid")
    return out.pid.to_pyarrow().to_pylist()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("risk > 0.7 and clv > 500", ["a"]),
        ("risk > 0.7 or clv >= 900", ["a", "b", "d"]),
        ("not risk > 0.7", ["b"]),  # c has no risk: it matches neither the test nor its negation
        ("risk is null", ["c"]),
        ("tier in ('gold', 'platinum') and not clv between 650 and 800", ["a"]),
        ("tier not in ('gold')", ["b"]),
        ("seen >= '2025-06-01'", ["b", "c"]),
        ("clv * (1 - risk) > 400", ["b"]),
        ("tier = 'it''s'", []),
        ("-clv < -650", ["b", "c"]),
        ("clv / 0 > 1", []),  # division by zero is unknown, not an error
    ],
)
def test_conditions_select_the_expected_rows(text, expected):
    assert _match(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("risk >", "expected a field, a number, a 'quoted string' or '(' at position 7, found the end"),
        ("risk > 0.7 and", "at position 15"),
        ("risk > 0.7; drop table t", "unexpected character ';' at position 11"),
        ("risk > 0.7 clv", "expected 'and', 'or' or the end"),
        ("tier > 5", "tier is text; compare it with a 'quoted string', not 5"),
        ("clv = 'x'", "clv is a number; compare it with a number, not the text 'x'"),
        ("clv + 1", "is not a true/false test"),
        ("tier and risk > 1", "tier is not a true/false test"),
        ("seen > 'yesterday'", "'yesterday' is not a date or time"),
        ("tier not risk", "expected 'in' after 'not'"),
        ("", "condition is empty"),
    ],
)
def test_condition_errors_say_where_and_what(text, message):
    with pytest.raises(ConfigError) as err:
        t = ibis.memtable(ROWS)
        compile_condition(parse(text), lambda f: t[f])
    assert message in str(err.value)


def test_user_text_never_reaches_sql_as_code():
    t = ibis.memtable(ROWS)
    sql = ibis.to_sql(t.filter(compile_condition(parse("tier = 'x'' or 1=1 --'"), lambda f: t[f])), dialect="duckdb")
    assert "'x'' or 1=1 --'" in sql  # a quoted literal, not SQL
    assert parse("a > 1 and (b = 'x' or c is null)").fields == ["a", "b", "c"]


def _engine(tmp_path) -> DuckDB:
    return DuckDB(DuckDBEngine(path="w.duckdb"), tmp_path)


def test_rfm_cells_from_quintiles(tmp_path):
    n = 10
    traits = ibis.memtable(
        pd.DataFrame(
            {
                "profile_id": [f"p{i}" for i in range(n + 1)],
                "as_of": pd.Timestamp("2025-07-01"),
                "days_since_txn": [*range(0, 100, 10), None],  # p0 bought most recently
                "txn_count": [*range(n, 0, -1), 0],  # ... and most often
                "spend_total": [float(x) for x in range(n * 100, 0, -100)] + [0.0],
            }
        )
    )
    rows = _engine(tmp_path).to_arrow(builtin.rfm(traits), step="test").to_pandas().set_index("profile_id")
    assert rows.loc["p0", ["r_score", "f_score", "m_score"]].tolist() == [5, 5, 5]
    assert rows.loc["p9", ["r_score", "f_score", "m_score"]].tolist() == [1, 1, 1]
    assert rows.loc["p0", "rfm_segment"] == "champions" and rows.loc["p9", "rfm_segment"] == "hibernating"
    assert rows.loc["p10", "rfm_segment"] == "no_transactions" and pd.isna(rows.loc["p10", "r_score"])
    assert set(rows.rfm_segment) <= {s[0] for s in builtin.RFM_SEGMENTS} | {"no_transactions"}


def test_clusters_find_and_describe_distinct_groups(tmp_path):
    rng = np.random.default_rng(0)
    n = 200
    app = np.where(np.arange(n) < 60, rng.poisson(40, n), rng.poisson(1, n))
    traits = ibis.memtable(
        pd.DataFrame(
            {
                "profile_id": [f"p{i:03d}" for i in range(n)],
                "as_of": pd.Timestamp("2025-07-01"),
                "app_events_90d": app,
                "age_years": rng.normal(40, 5, n).round(),
                "calls_90d": rng.poisson(2, n),
            }
        )
    )
    frame, found = builtin.clusters(
        _engine(tmp_path), traits, k=2, columns=("app_events_90d", "age_years", "calls_90d")
    )
    assert [c.number for c in found] == [1, 2] and found[0].size == 140 and found[1].size == 60
    heavy = set(frame.profile_id[frame.cluster == 2])
    assert heavy == {f"p{i:03d}" for i in range(60)}
    assert found[1].name.startswith("high app_events_90d") and "app_events_90d" in found[1].description
    assert found[0].name.startswith("low app_events_90d")


def _traits(**columns) -> ibis.Table:
    base = {
        "profile_id": ["x"],
        "app_events_90d": [0],
        "web_events_90d": [0],
        "logins_90d": [0],
        "active_days_90d": [0],
        "forms_started": [0],
        "devices": [0],
        "digital_channels": [0],
        "survey_preferred_device": [None],
        "survey_uses_mobile_payments": [None],
        "survey_ok_to_share_data": [None],
    }
    base.update({k: [v] for k, v in columns.items()})
    return ibis.memtable(
        pd.DataFrame(base).astype(
            {
                "survey_preferred_device": "string",
                "survey_uses_mobile_payments": "string",
                "survey_ok_to_share_data": "Int64",
            }
        )
    )


@pytest.mark.parametrize(
    "traits, expected",
    [
        ({}, "analog"),
        ({"survey_preferred_device": "none", "survey_uses_mobile_payments": "no"}, "analog"),
        (
            {
                "web_events_90d": 6,
                "app_events_90d": 2,
                "logins_90d": 1,
                "active_days_90d": 6,
                "devices": 2,
                "digital_channels": 2,
            },
            "wannabe",
        ),
        (
            {
                "app_events_90d": 30,
                "logins_90d": 12,
                "active_days_90d": 40,
                "devices": 2,
                "digital_channels": 1,
                "survey_ok_to_share_data": 1,
            },
            "paranoid",
        ),
        (
            {
                "app_events_90d": 12,
                "web_events_90d": 10,
                "logins_90d": 4,
                "active_days_90d": 10,
                "devices": 2,
                "digital_channels": 2,
            },
            "mainstreamer",
        ),
        (
            {
                "app_events_90d": 60,
                "web_events_90d": 40,
                "logins_90d": 20,
                "active_days_90d": 60,
                "devices": 3,
                "digital_channels": 2,
                "forms_started": 3,
                "survey_preferred_device": "smartphone",
                "survey_uses_mobile_payments": "yes",
                "survey_ok_to_share_data": 3,
            },
            "chameleon",
        ),
        (
            {
                "app_events_90d": 60,
                "web_events_90d": 40,
                "logins_90d": 20,
                "active_days_90d": 60,
                "devices": 3,
                "digital_channels": 2,
                "forms_started": 3,
                "survey_preferred_device": "smartphone",
                "survey_uses_mobile_payments": "yes",
                "survey_ok_to_share_data": 5,
            },
            "nomad",
        ),
    ],
)
def test_archetypes_on_the_grid(traits, expected):
    t = _traits(**traits)
    scored = t.select(s=archetypes.sophistication(t), h=archetypes.data_sharing(t))
    row = scored.mutate(a=archetypes.archetype(scored.s, scored.h)).to_pyarrow().to_pylist()[0]
    assert 0 <= row["s"] <= 1 and 0 <= row["h"] <= 1
    assert row["a"] == expected, row


def test_consents_move_the_sharing_score():
    t = _traits(app_events_90d=5, web_events_90d=5)
    consent = ibis.literal(0.0)
    without, with_refusals = (
        t.select(h=archetypes.data_sharing(t, c)).to_pyarrow().to_pylist()[0]["h"] for c in (None, consent)
    )
    assert with_refusals < without
