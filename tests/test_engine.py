"""The engine hooks that stages build on — delete by predicate, upsert by key, a batched map — as one
suite run on DuckDB and on Spark (CX360_TEST_SPARK=1). A behaviour that differs between the engines
is asserted for each engine by name, not skipped."""

from __future__ import annotations

import datetime as dt
import sys
import threading

import ibis
import pandas as pd
import pyarrow as pa
import pytest
from conftest import SPARK_ENGINE, SPARK_TEST_CONF

from cx360 import schema
from cx360.errors import Cx360Error, DataError, EngineError
from cx360.workspace import Workspace

try:  # Spark's workers cannot import this test module: ship its functions by value
    from pyspark import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
except ImportError:
    pass
T0 = dt.datetime(2026, 1, 1)
RESULT = pa.schema(
    [("profile_id", pa.string()), ("double", pa.float64()), ("batch", pa.int64()), ("as_of", pa.timestamp("us"))]
)


ENGINES = ["duckdb", pytest.param("spark", marks=pytest.mark.spark)]


def open_workspace(root, kind: str) -> Workspace:
    root.mkdir(parents=True, exist_ok=True)
    engine = SPARK_ENGINE if kind == "spark" else '[engine]\nkind = "duckdb"\n'
    (root / "cx360.toml").write_text(f'[workspace]\nname = "engine"\n\n{engine}', encoding="utf-8")
    return Workspace(root)


@pytest.fixture(scope="module", params=ENGINES)
def engine_kind(request) -> str:
    if request.param == "spark":
        request.getfixturevalue("spark_session")
    return request.param


@pytest.fixture(scope="module")
def engine(engine_kind, tmp_path_factory):
    """One workspace per engine for the module (a Spark workspace costs seconds to create); each test
    sets the content of the tables it uses first."""
    ws = open_workspace(tmp_path_factory.mktemp("ws"), engine_kind)
    yield ws.engine
    ws.close()


def churn_rows(ids, risk, *, reasons="r") -> pa.Table:
    n = len(ids)
    target = schema.ibis_schema("churn_scores").to_pyarrow()
    return pa.table(
        {
            "profile_id": ids,
            "as_of": [T0] * n,
            "churn_risk": risk,
            "churn_reasons": [reasons] * n,
            "horizon_days": [90] * n,
            "scored_at": [T0 + dt.timedelta(hours=i) for i in range(n)],
        },
        schema=target,
    )


def content(engine, table="churn_scores") -> dict[str, tuple]:
    rows = engine.to_arrow(engine.table(table), step="read").to_pylist()
    return {r["profile_id"]: (r["churn_risk"], r["churn_reasons"]) for r in rows}


def test_delete_by_predicate_keeps_rows_where_the_condition_is_null(engine):
    engine.replace("churn_scores", churn_rows(["a", "b", "c", "d"], [0.9, 0.2, None, 0.7]))
    t = engine.table("churn_scores")
    assert engine.delete("churn_scores", t.churn_risk > 0.5) == 2
    assert content(engine) == {"b": (0.2, "r"), "c": (None, "r")}
    assert engine.delete("churn_scores", t.churn_risk > 0.5) == 0


def test_delete_by_a_subquery_and_by_batches(engine):
    engine.replace("churn_scores", churn_rows(["a", "b", "c"], [0.1, 0.2, 0.3]))
    engine.replace("text_scores", _text_scores(["a", "c"]))
    t = engine.table("churn_scores")
    assert engine.delete("churn_scores", t.profile_id.isin(engine.table("text_scores").event_id)) == 2
    assert set(content(engine)) == {"b"}
    assert engine.delete("churn_scores", t.profile_id.isin(ibis.memtable({"id": ["b", "x"]}).id)) == 1
    assert content(engine) == {}

    events = schema.ibis_schema("events").to_pyarrow()
    rows = pa.table({c: pa.nulls(3, events.field(c).type) for c in events.names}, schema=events)
    rows = rows.set_column(events.get_field_index("event_id"), "event_id", pa.array(["e1", "e2", "e3"]))
    rows = rows.set_column(events.get_field_index("batch_id"), "batch_id", pa.array(["b1", "b2", "b1"]))
    engine.append("events", rows, step="load events")
    engine.delete_batches("events", ["b1"])
    assert engine.to_arrow(engine.table("events").select("event_id"), step="read")["event_id"].to_pylist() == ["e2"]


def _text_scores(ids) -> pa.Table:
    target = schema.ibis_schema("text_scores").to_pyarrow()
    rows = pa.table({c: pa.nulls(len(ids), target.field(c).type) for c in target.names}, schema=target)
    return rows.set_column(0, "event_id", pa.array(ids))


def test_delete_rejects_a_condition_over_another_table(engine):
    other = engine.table("text_scores")
    with pytest.raises(Exception, match=r"text_scores|event_id|relation|integrity|not"):
        engine.delete("churn_scores", other.event_id == "x")


def test_upsert_replaces_same_keys_and_adds_new_ones(engine):
    engine.replace("churn_scores", churn_rows(["a", "b"], [0.1, 0.2]))
    assert engine.upsert("churn_scores", churn_rows(["b", "c"], [0.5, 0.6], reasons="new"), key=["profile_id"]) == 2
    assert content(engine) == {"a": (0.1, "r"), "b": (0.5, "new"), "c": (0.6, "new")}
    # An Ibis query over the table itself: it is read before anything is written.
    t = engine.table("churn_scores")
    bumped = t.filter(t.profile_id != "a").mutate(churn_risk=t.churn_risk + 0.25)
    assert engine.upsert("churn_scores", bumped, key=["profile_id"]) == 2
    assert content(engine) == {"a": (0.1, "r"), "b": (0.75, "new"), "c": (0.85, "new")}


def test_upsert_by_a_composite_key_with_columns_in_any_order(engine):
    engine.replace("churn_scores", churn_rows(["a", "a"], [0.1, 0.2]))  # scored_at differs per row
    new = churn_rows(["a"], [0.9], reasons="new").select(
        ["scored_at", "profile_id", "churn_reasons", "as_of", "horizon_days", "churn_risk"]
    )
    engine.upsert("churn_scores", new, key=["profile_id", "scored_at"])
    rows = engine.to_arrow(engine.table("churn_scores").order_by("churn_risk"), step="read").to_pylist()
    assert [(r["churn_risk"], r["churn_reasons"]) for r in rows] == [(0.2, "r"), (0.9, "new")]


def test_upsert_with_a_duplicate_or_null_key_changes_nothing(engine):
    engine.replace("churn_scores", churn_rows(["a"], [0.1]))
    with pytest.raises(DataError, match=r"profile_id='b'.*2 times"):
        engine.upsert("churn_scores", churn_rows(["a", "b", "b"], [0.5, 0.6, 0.7]), key=["profile_id"])
    with pytest.raises(DataError, match="no value for the key"):
        engine.upsert("churn_scores", churn_rows(["a", None], [0.5, 0.6]), key=["profile_id"])
    with pytest.raises(DataError, match="lack the columns"):
        engine.upsert("churn_scores", pa.table({"profile_id": ["a"]}), key=["profile_id"])
    with pytest.raises(DataError, match="not columns"):
        engine.upsert("churn_scores", churn_rows(["a"], [0.5]), key=["nope"])
    assert content(engine) == {"a": (0.1, "r")}


def traits_like(n: int) -> pa.Table:
    return pa.table(
        {
            "profile_id": [f"p{i:03d}" for i in range(n)],
            "x": [float(i) for i in range(n)],
            "ts": [T0 + dt.timedelta(days=i) for i in range(n)],
        }
    )


def doubling(batch: pa.Table) -> pd.DataFrame:
    frame = batch.to_pandas()
    assert str(frame["ts"].dtype) == "datetime64[us]"  # the same naive timestamps on every engine
    return pd.DataFrame(
        {"profile_id": frame["profile_id"], "double": frame["x"] * 2, "batch": len(frame), "as_of": frame["ts"]}
    )


def test_map_batches_returns_results_computed_in_bounded_batches(engine):
    staged = engine.stage(traits_like(25))
    out = engine.map_batches(staged, doubling, RESULT, batch_rows=10).to_pandas().sort_values("profile_id")
    assert out["double"].tolist() == [2.0 * i for i in range(25)]
    assert out["as_of"].tolist() == [pd.Timestamp(T0 + dt.timedelta(days=i)) for i in range(25)]
    assert out["batch"].max() <= 10 and out["batch"].nunique() >= 1
    sizes = out.groupby("batch").size()  # a batch of n rows contributes n rows of "batch == n"
    assert (sizes % sizes.index == 0).all() and len(out) == 25


def test_map_batches_into_a_table_replaces_upserts_and_appends(engine):
    def score(batch: pa.Table) -> pa.Table:
        n = batch.num_rows
        return churn_rows(
            batch["profile_id"].to_pylist(), [x / 100 for x in batch["x"].to_pylist()], reasons=f"batch of {n}"
        ).select(["profile_id", "as_of", "churn_risk", "churn_reasons", "horizon_days", "scored_at"])

    target = schema.ibis_schema("churn_scores").to_pyarrow()
    engine.replace("churn_scores", churn_rows(["old"], [0.5]))
    staged = engine.stage(traits_like(12))
    assert engine.map_batches(staged, score, target, into="churn_scores", batch_rows=5) == 12
    got = content(engine)
    assert set(got) == {f"p{i:03d}" for i in range(12)} and got["p007"][0] == 0.07

    more = engine.stage(traits_like(15).slice(10))
    assert engine.map_batches(more, score, target, into="churn_scores", mode="upsert", key=["profile_id"]) == 5
    assert len(content(engine)) == 15
    assert (
        engine.map_batches(
            engine.stage(pa.table({"profile_id": ["z"], "x": [1.0], "ts": [T0]})),
            score,
            target,
            into="churn_scores",
            mode="append",
        )
        == 1
    )
    assert len(content(engine)) == 16


def test_map_batches_that_fails_halfway_changes_nothing(engine):
    engine.replace("churn_scores", churn_rows(["old"], [0.5]))
    target = schema.ibis_schema("churn_scores").to_pyarrow()

    def failing(batch: pa.Table) -> pa.Table:
        if "p007" in batch["profile_id"].to_pylist():
            raise ValueError("model broke on p007")
        return churn_rows(batch["profile_id"].to_pylist(), [0.0] * batch.num_rows)

    staged = engine.stage(traits_like(12))
    before = set(engine.con.list_tables())
    with pytest.raises(EngineError, match="score churn"):
        engine.map_batches(staged, failing, target, into="churn_scores", batch_rows=4, step="score churn")
    assert content(engine) == {"old": (0.5, "r")}
    assert set(engine.con.list_tables()) == before  # no staging left behind


def test_map_batches_checks_its_arguments(engine):
    staged = engine.stage(traits_like(3))
    with pytest.raises(DataError, match="needs the key"):
        engine.map_batches(staged, doubling, RESULT, into="churn_scores", mode="upsert")
    with pytest.raises(DataError, match="mode 'merge'"):
        engine.map_batches(staged, doubling, RESULT, into="churn_scores", mode="merge")
    with pytest.raises(Cx360Error, match="no columns"):  # on Spark, wrapped with the executor's trace
        engine.map_batches(staged, lambda b: b.select(["profile_id"]), RESULT)


def test_a_batch_function_must_be_picklable_only_where_it_is_shipped(engine, engine_kind):
    lock = threading.Lock()  # cannot be pickled

    def locked(batch: pa.Table) -> pd.DataFrame:
        with lock:
            return doubling(batch)

    staged = engine.stage(traits_like(3))
    if engine_kind == "duckdb":  # runs in this process
        assert engine.map_batches(staged, locked, RESULT).num_rows == 3
    else:
        with pytest.raises(EngineError, match="cannot be shipped to Spark's executors"):
            engine.map_batches(staged, locked, RESULT)


def test_what_a_crash_left_is_cleaned_up_on_connect(engine_kind, tmp_path):
    ws = open_workspace(tmp_path / "ws", engine_kind)
    ws.engine.replace("churn_scores", churn_rows(["a"], [0.1]))
    ws.engine.replace("churn_scores", churn_rows(["b"], [0.2]))
    if engine_kind == "duckdb":
        ws.engine.con.create_table("_cx360_stage_crashed", schema=ibis.schema({"a": "int64"}))
    else:
        warehouse = ws.engine.warehouse
        (warehouse / "_cx360_stage_crashed").mkdir()
    ws.close()
    if engine_kind == "spark":  # a replace cut between its two renames: `target -> _old`, `_new -> target`
        (warehouse / "churn_scores").rename(warehouse / "_churn_scores.new")
        (warehouse / "_churn_scores.old").mkdir()
    again = Workspace(ws.root)
    try:
        assert content(again.engine) == {"b": (0.2, "r")}
        if engine_kind == "duckdb":
            assert "_cx360_stage_crashed" not in again.engine.con.list_tables()
        else:
            assert not list(warehouse.glob("_cx360_stage_*")) and not list(warehouse.glob("_churn_scores.*"))
    finally:
        again.close()


def test_literal_letters_of_a_time_format_are_quoted_for_spark():
    from cx360.engine import java_literals

    assert java_literals("%Y-%m-%dT%H:%M:%S%z") == "%Y-%m-%d'T'%H:%M:%S%z"
    assert java_literals("%d.%m.%Y %H:%M") == "%d.%m.%Y %H:%M"
    assert java_literals("%Y-%m-%d at %Hh") == "%Y-%m-%d 'at' %H'h'"
    assert java_literals("%H o'clock") == "%H 'o''clock'"


@pytest.mark.spark
def test_a_borrowed_spark_session_keeps_its_own_settings_but_runs_on_utc(spark_session, tmp_path):
    spark_session.conf.set("spark.sql.shuffle.partitions", "3")
    spark_session.conf.set("spark.sql.session.timeZone", "Asia/Vladivostok")
    root = tmp_path / "ws"
    root.mkdir()
    (root / "cx360.toml").write_text('[workspace]\nname = "borrow"\n\n[engine]\nkind = "spark"\n', encoding="utf-8")
    ws = Workspace(root)
    try:
        assert ws.engine.session is spark_session
        assert spark_session.conf.get("spark.sql.shuffle.partitions") == "3"  # not cx360's default of 4
        assert spark_session.conf.get("spark.sql.session.timeZone") == "UTC"  # stored times are UTC
    finally:
        ws.close()
        spark_session.conf.set("spark.sql.shuffle.partitions", SPARK_TEST_CONF["spark.sql.shuffle.partitions"])
