"""Connect to DuckDB or Spark through Ibis: the only place where engines differ.

Stage code builds Ibis expressions and calls the few methods here; the engine
subclasses fill in a handful of hooks, like a dialect: how to stage Arrow data,
how to delete or upsert rows all or nothing, how to run a Python function over
a table in batches (chunks on DuckDB, executors on Spark), how to parse a
timestamp without failing the whole query on one bad value.
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import sys
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cx360 import schema
from cx360.config import DuckDBEngine, SparkEngine
from cx360.errors import (
    Cx360Error,
    DataError,
    EngineError,
    MissingDependencyError,
    StageNotRunError,
    WarehouseLockedError,
)

if TYPE_CHECKING:
    import pandas as pd
    from ibis.backends import BaseBackend

BatchFn = Callable[[pa.Table], "pa.Table | pd.DataFrame"]
WriteMode = Literal["replace", "upsert", "append"]
BATCH_ROWS = 50_000
STAGE_PREFIX = "_cx360_stage_"
REWRITE_SUFFIX = ".rewrite"  # a DuckDB file being rewritten by `compact`


class Engine(ABC):
    kind: str

    def __init__(self, con: BaseBackend):
        self.con = con

    # -- hooks -----------------------------------------------------------------
    @abstractmethod
    def stage(self, data: pa.Table) -> ir.Table:
        """Make Arrow data queryable as a table for the length of a batch."""

    @abstractmethod
    def replace(self, table: str, data: pa.Table | ir.Table) -> None:
        """Replace the whole content of `table` with `data` (Arrow rows or a query), all or nothing."""

    @abstractmethod
    def delete(self, table: str, predicate: ir.BooleanValue) -> int:
        """Remove the rows of `table` where `predicate`, a condition over `self.table(table)`, is true, all
        or nothing; a NULL condition keeps the row, as in SQL. Returns how many rows were removed."""

    @abstractmethod
    def _upsert(self, table: str, rows: ir.Table, key: list[str]) -> None:
        """Replace the rows of `table` whose key is in `rows` (conformed, keys checked) and add the others."""

    @abstractmethod
    def _materialise(self, data: pa.Table | ir.Table) -> ir.Table:
        """Data as a staged table of its own (removed by `unstage`), so that a query is run once, and
        writing to a table cannot change what a query over it reads."""

    @abstractmethod
    def _map_into_stage(self, expr: ir.Table, fn: BatchFn, schema: pa.Schema, batch_rows: int) -> ir.Table:
        """Apply `fn` to `expr` batch by batch and write the results into a staged table."""

    @abstractmethod
    def _add_columns(self, table: str, columns: dict[str, dt.DataType]) -> None:
        """Add empty (NULL) columns at the end of a stored table."""

    @abstractmethod
    def parse_timestamp(self, value: ir.StringValue, fmt: str) -> ir.TimestampValue:
        """strptime-style parse that yields NULL (not an error) on a value that does not match."""

    @abstractmethod
    def json_get(self, value: ir.StringValue, key: str) -> ir.StringValue:
        """The top-level `key` of a JSON object string, as a string (NULL when absent)."""

    @abstractmethod
    def _local_to_utc(self, value: ir.TimestampValue, zone: str) -> ir.TimestampValue:
        """A naive wall-clock time in `zone` as naive UTC."""

    @abstractmethod
    def _utc_to_local(self, value: ir.TimestampValue, zone: str) -> ir.TimestampValue:
        """A naive UTC time as the naive wall-clock time in `zone`."""

    def local_to_utc(self, value: ir.TimestampValue, zone: str) -> ir.TimestampValue:
        """Stored times are naive UTC: a source's local time is converted once, at ingest."""
        return value if zone == "UTC" else self._local_to_utc(value, zone)

    def utc_to_local(self, value: ir.TimestampValue, zone: str | ir.StringValue) -> ir.TimestampValue:
        """What a clock in `zone` (a name, or a column of names: one per row) showed at a stored (UTC) time:
        for local hours and weekdays, daylight saving time included."""
        return value if isinstance(zone, str) and zone == "UTC" else self._utc_to_local(value, zone)

    # -- shared ------------------------------------------------------------------
    def table(self, name: str) -> ir.Table:
        return self.con.table(name)

    def has_table(self, name: str) -> bool:
        return name in self.con.list_tables()

    def ensure_canonical_tables(self) -> None:
        existing = set(self.con.list_tables())
        for name in schema.TABLES:
            if name not in existing or self._outdated(name):
                self.con.create_table(name, schema=schema.ibis_schema(name), overwrite=True)

    def _outdated(self, name: str) -> bool:
        """A derived table written by an older cx360 (other columns) is rebuilt; a stored one that lacks
        only columns cx360 has since added at its end gets them, empty; any other is an error."""
        have, want = tuple(self.table(name).columns), tuple(schema.ibis_schema(name).names)
        if have == want:
            return False
        if name in schema.DERIVED_TABLES:
            return True
        if want[: len(have)] == have:
            self._add_columns(name, {c: schema.ibis_schema(name)[c] for c in want[len(have) :]})
            return False
        raise Cx360Error(
            f"table {name!r} has columns {list(self.table(name).columns)}, but this cx360 expects "
            f"{list(schema.ibis_schema(name).names)}; the workspace was written by another version"
        )

    def insert(self, table: str, expr: ir.Table, *, step: str) -> None:
        """Append `expr` to `table`, in the table's column order."""
        columns = self.table(table).columns
        with self.step(step, expr):
            self._insert(table, expr.select(*columns))

    def _insert(self, table: str, rows: ir.Table) -> None:
        """INSERT the query's columns, by name."""
        self.con.insert(table, rows)

    def unstage(self, staged: ir.Table) -> None:
        self.con.raw_sql(f"DROP TABLE IF EXISTS {_quote(staged.op().name)}")  # temp or not

    @contextmanager
    def materialised(self, expr: ir.Table, *, step: str) -> Iterator[ir.Table]:
        """`expr` computed once into a staged table that the block's queries read, removed after."""
        with self.step(step, expr):
            staged = self._materialise(expr)
        try:
            yield staged
        finally:
            self.unstage(staged)

    def delete_batches(self, table: str, batch_ids: list[str]) -> None:
        """Remove the rows that the given batches wrote into `table`."""
        self.delete(table, self.table(table).batch_id.isin(batch_ids))

    def upsert(self, table: str, data: pa.Table | ir.Table, *, key: Sequence[str]) -> int:
        """Rows of `data` replace the rows of `table` with the same `key`, and new keys are added, all or
        nothing. A key that is NULL, or that appears twice in `data`, is an error naming it (which of two
        rows would win is not a choice to make silently). Returns how many rows were written."""
        key = list(key)
        missing = [k for k in key if k not in self.table(table).columns]
        if not key or missing:
            raise DataError(
                f"upsert into {table!r}: key columns {missing or key} are not columns of the table "
                f"{list(self.table(table).columns)}"
            )
        staged = self._materialise(data)
        try:
            rows = self._conform(table, staged)
            self._check_keys(table, rows, key)
            count = int(self.scalar(rows.count(), step=f"upsert into {table}: count"))
            with self.step(f"upsert into {table}"):
                self._upsert(table, rows, key)
            return count
        finally:
            self.unstage(staged)

    def map_batches(
        self,
        expr: ir.Table,
        fn: BatchFn,
        schema: pa.Schema,
        *,
        into: str | None = None,
        mode: WriteMode = "replace",
        key: Sequence[str] = (),
        batch_rows: int = BATCH_ROWS,
        step: str = "map batches",
    ) -> pa.Table | int:
        """Apply `fn` to the rows of `expr` in batches of at most `batch_rows`, where the data lives: in
        chunks streamed from DuckDB, on Spark's executors through `mapInArrow`.

        `fn` takes a pyarrow Table with `expr`'s schema and returns a pyarrow Table or pandas DataFrame
        with the columns of `schema`; it must treat each row on its own (batch boundaries differ between
        engines) and, on Spark, be picklable. With `into`, the results are written to that table (`mode`
        replace, upsert by `key`, or append), all or nothing, and the number of rows written is returned:
        the results never gather on the driver. Without it, the results come back as one Arrow table.
        """
        if mode not in ("replace", "upsert", "append"):
            raise DataError(f"map_batches: mode {mode!r}; expected replace, upsert or append")
        if mode == "upsert" and not key:
            raise DataError("map_batches: mode 'upsert' needs the key columns (key=[...])")
        if batch_rows < 1:
            raise DataError(f"map_batches: batch_rows must be at least 1, got {batch_rows}")
        with self.step(step, expr):
            staged = self._map_into_stage(expr, fn, schema, batch_rows)
        try:
            if into is None:
                return self.to_arrow(staged, step=f"{step}: results").cast(schema)
            if mode == "upsert":
                return self.upsert(into, staged, key=key)
            count = int(self.scalar(staged.count(), step=f"{step}: count"))
            if mode == "replace":
                with self.step(f"{step}: replace {into}"):
                    self.replace(into, self._conform(into, staged))
            else:
                self.insert(into, self._conform(into, staged), step=f"{step}: append to {into}")
            return count
        finally:
            self.unstage(staged)

    def _conform(self, table: str, data: ir.Table) -> ir.Table:
        """`data` with the columns of `table`, in its order and types; a missing column is an error."""
        target = self.table(table).schema()
        missing = [c for c in target.names if c not in data.columns]
        if missing:
            raise DataError(f"rows for {table!r} lack the columns {missing}; they have {list(data.columns)}")
        return data.select(*[data[c].cast(target[c]).name(c) for c in target.names])

    def _check_keys(self, table: str, rows: ir.Table, key: list[str]) -> None:
        nulls = rows.filter(ibis.or_(*[rows[k].isnull() for k in key]))
        if int(self.scalar(nulls.count(), step=f"upsert into {table}: null keys")):
            raise DataError(f"upsert into {table!r}: some new rows have no value for the key ({', '.join(key)})")
        counts = rows.group_by(key).aggregate(_n=rows.count())
        dup = self.to_arrow(
            counts.filter(counts._n > 1).limit(1), step=f"upsert into {table}: duplicate keys"
        ).to_pylist()
        if dup:
            value = ", ".join(f"{k}={dup[0][k]!r}" for k in key)
            raise DataError(
                f"upsert into {table!r}: the key ({value}) appears {dup[0]['_n']} times in the new rows; "
                "each key may appear once"
            )

    def append(self, table: str, data: pa.Table, *, step: str) -> None:
        """Append Arrow rows to `table`."""
        staged = self.stage(data)
        try:
            self.insert(table, staged, step=step)
        finally:
            self.unstage(staged)

    def to_arrow(self, expr: ir.Expr, *, step: str) -> pa.Table:
        with self.step(step, expr):
            return expr.to_pyarrow()

    def scalar(self, expr: ir.Scalar, *, step: str):
        """The value, with SQL's NULL as None: Ibis answers the max of no timestamps with pandas' NaT."""
        with self.step(step, expr):
            value = expr.execute()
        return None if value is pd.NaT or value is pd.NA else value

    @contextmanager
    def step(self, name: str, expr: ir.Expr | None = None) -> Iterator[None]:
        """Wrap engine failures with the step name and the SQL that failed."""
        try:
            yield
        except Cx360Error:
            raise
        except Exception as exc:  # the engines raise many unrelated types
            sql = ""
            if expr is not None:
                try:
                    sql = str(ibis.to_sql(expr, dialect=self.con.name))[:800]
                except Exception:  # noqa: BLE001 - the original error matters more
                    sql = ""
            raise EngineError(name, sql, exc) from exc

    @abstractmethod
    def compact(self) -> None:
        """Rewrite the storage so that no byte of a deleted row is left in it (erasure needs this: DuckDB
        keeps deleted rows' bytes in its file)."""

    def close(self) -> None:
        self.con.disconnect()

    @staticmethod
    def _temp_name() -> str:
        return f"{STAGE_PREFIX}{uuid.uuid4().hex[:12]}"


def _as_batch(out: pa.Table | pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """What a batch function returned, as Arrow with exactly `schema` (a missing column is an error)."""
    if isinstance(out, pa.RecordBatch):
        out = pa.Table.from_batches([out])
    if isinstance(out, pa.Table):
        missing = [n for n in schema.names if n not in out.column_names]
        if missing:
            raise DataError(f"map_batches: the function returned no columns {missing}; it returned {out.column_names}")
        return out.select(schema.names).cast(schema)
    return pa.Table.from_pandas(out, schema=schema, preserve_index=False)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class DuckDB(Engine):
    kind = "duckdb"

    def __init__(self, settings: DuckDBEngine, root: Path, *, read_only: bool = False):
        path = root / settings.path
        extra = {k: v for k, v in (("threads", settings.threads), ("memory_limit", settings.memory_limit)) if v}
        if read_only:  # a reader (the dashboard's reports): any number of processes may share the file
            con = _connect_duckdb(path, {**extra, "read_only": True})
            con.raw_sql("SET TimeZone = 'UTC'")
            super().__init__(con)
            self.path, self._options = path, extra
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_name(path.name + REWRITE_SUFFIX).unlink(missing_ok=True)  # a rewrite cut short: redone later
        con = _connect_duckdb(path, extra)
        con.raw_sql("SET TimeZone = 'UTC'")
        super().__init__(con)
        self.path, self._options = path, extra
        for name in con.list_tables():  # staging tables of a run that crashed
            if name.startswith(STAGE_PREFIX):
                con.drop_table(name, force=True)

    @classmethod
    def in_memory(cls) -> DuckDB:
        """A scratch engine in memory, with the canonical tables: the stream processor runs the batch
        stages' own code (ingest's checks, the traits, the segments) over one micro-batch in it."""
        self = cls.__new__(cls)
        con = ibis.duckdb.connect()
        con.raw_sql("SET TimeZone = 'UTC'")
        con.raw_sql("SET threads = 1")  # tiny tables: a thread pool costs more than it gives
        Engine.__init__(self, con)
        self.path, self._options = None, {}
        self.ensure_canonical_tables()
        return self

    def compact(self) -> None:
        """Copy every table into a new file and swap it in atomically: only a newly written file is
        free of deleted rows (DELETE, CHECKPOINT and VACUUM all leave their bytes in place). A crash
        before the swap leaves the old file, and the half-written new one is removed on the next open."""
        import duckdb

        self.con.raw_sql("CHECKPOINT")
        self.con.disconnect()
        fresh = self.path.with_name(self.path.name + REWRITE_SUFFIX)
        fresh.unlink(missing_ok=True)
        try:
            con = duckdb.connect()
            try:
                con.execute(f"ATTACH '{_sql_text(self.path)}' AS old (READ_ONLY)")
                con.execute(f"ATTACH '{_sql_text(fresh)}' AS fresh")
                con.execute("COPY FROM DATABASE old TO fresh")
                con.execute("DETACH fresh")
                con.execute("DETACH old")
            finally:
                con.close()
            _fsync(fresh)
            os.replace(fresh, self.path)
            self.path.with_name(self.path.name + ".wal").unlink(missing_ok=True)  # the old file's, if any
            _fsync(self.path.parent)
        finally:
            fresh.unlink(missing_ok=True)
            self.con = _connect_duckdb(self.path, self._options)
            self.con.raw_sql("SET TimeZone = 'UTC'")

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self.con.raw_sql("BEGIN TRANSACTION")
        try:
            yield
            self.con.raw_sql("COMMIT")
        except BaseException:
            self.con.raw_sql("ROLLBACK")
            raise

    def stage(self, data: pa.Table) -> ir.Table:
        return self.con.create_table(self._temp_name(), obj=ibis.memtable(data), temp=True)

    def replace(self, table: str, data: pa.Table | ir.Table) -> None:
        staged = self.stage(data) if isinstance(data, pa.Table) else None
        columns = self.table(table).columns
        try:
            with self._transaction():
                self.con.raw_sql(f"DELETE FROM {_quote(table)}")
                self._insert(table, (data if staged is None else staged).select(*columns))
        finally:
            if staged is not None:
                self.unstage(staged)

    def delete(self, table: str, predicate: ir.BooleanValue) -> int:
        import sqlglot

        query = self.table(table).filter(predicate)
        with self.step(f"delete from {table}", query):
            select = sqlglot.parse_one(str(ibis.to_sql(query, dialect="duckdb")), read="duckdb")
            source = select.args.get("from_") or select.args.get("from")
            if (
                not isinstance(select, sqlglot.exp.Select)
                or select.args.get("with")
                or select.args.get("joins")
                or not isinstance(source.this, sqlglot.exp.Table)
                or source.this.name != table
            ):
                raise DataError(f"delete from {table!r}: the condition must be a row-wise condition over the table")
            where = select.args["where"].this.sql(dialect="duckdb")
            self.con._run_pre_execute_hooks(query)  # registers in-memory tables the condition uses
            with self._transaction():
                return int(
                    self.con.raw_sql(f"DELETE FROM {source.this.sql(dialect='duckdb')} WHERE {where}").fetchone()[0]
                )

    def _materialise(self, data: pa.Table | ir.Table) -> ir.Table:
        if isinstance(data, pa.Table):
            return self.stage(data)
        return self.con.create_table(self._temp_name(), obj=data, temp=True)

    def _upsert(self, table: str, rows: ir.Table, key: list[str]) -> None:
        match = " AND ".join(f"t.{_quote(k)} = s.{_quote(k)}" for k in key)
        with self._transaction():
            self.con.raw_sql(
                f"DELETE FROM {_quote(table)} AS t USING ({ibis.to_sql(rows, dialect='duckdb')}) AS s WHERE {match}"
            )
            self._insert(table, rows)

    def _insert(self, table: str, rows: ir.Table) -> None:
        # The query compiled once: Ibis's own insert prints it, parses the text back and prints it again,
        # which for the profile stage's wide queries costs more than DuckDB's run of them.
        self.con._run_pre_execute_hooks(rows)  # registers in-memory tables the query uses
        columns = ", ".join(_quote(c) for c in rows.columns)
        self.con.raw_sql(f"INSERT INTO {_quote(table)} ({columns}) {self.con.compile(rows)}")

    def _map_into_stage(self, expr: ir.Table, fn: BatchFn, schema: pa.Schema, batch_rows: int) -> ir.Table:
        # Results go to a regular table through a second connection, because the first is busy streaming.
        staged = self.con.create_table(self._temp_name(), schema=ibis.Schema.from_pyarrow(schema))
        writer = self.con.con.cursor()
        expected = expr.schema().to_pyarrow()
        try:
            for batch in self.con.to_pyarrow_batches(expr, chunk_size=batch_rows):
                if batch.num_rows:
                    writer.register(
                        "_cx360_batch", _as_batch(fn(pa.Table.from_batches([batch]).cast(expected)), schema)
                    )
                    writer.execute(f"INSERT INTO {_quote(staged.op().name)} SELECT * FROM _cx360_batch")
                    writer.unregister("_cx360_batch")
        except BaseException:
            self.unstage(staged)
            raise
        finally:
            writer.close()
        return staged

    def _add_columns(self, table: str, columns: dict[str, dt.DataType]) -> None:
        from ibis.backends.sql.datatypes import DuckDBType

        with self._transaction():
            for column, dtype in columns.items():
                sql_type = DuckDBType.to_string(dtype)
                self.con.raw_sql(f"ALTER TABLE {_quote(table)} ADD COLUMN {_quote(column)} {sql_type}")

    def parse_timestamp(self, value: ir.StringValue, fmt: str) -> ir.TimestampValue:
        return _duckdb_try_strptime(value, fmt)

    def json_get(self, value: ir.StringValue, key: str) -> ir.StringValue:
        return _duckdb_json_extract_string(value, _json_path(key))

    def _local_to_utc(self, value: ir.TimestampValue, zone: str) -> ir.TimestampValue:
        # timezone(zone, TIMESTAMP) reads the wall clock in zone; the session's zone is UTC
        return _duckdb_local_to_utc(zone, value.cast("timestamp")).cast("timestamp")

    def _utc_to_local(self, value: ir.TimestampValue, zone: str) -> ir.TimestampValue:
        return _duckdb_utc_to_local(zone, value.cast("timestamp('UTC')"))


@ibis.udf.scalar.builtin(name="try_strptime")
def _duckdb_try_strptime(value: str, fmt: str) -> datetime.datetime:
    """DuckDB's strptime that returns NULL instead of raising."""


_INSTANT = dt.Timestamp(timezone="UTC")  # DuckDB's TIMESTAMPTZ


@ibis.udf.scalar.builtin(name="timezone")
def _duckdb_local_to_utc(zone: str, value: datetime.datetime) -> _INSTANT:
    """DuckDB's timezone(zone, TIMESTAMP): the wall-clock time in zone, as an instant."""


@ibis.udf.scalar.builtin(name="timezone")
def _duckdb_utc_to_local(zone: str, value: _INSTANT) -> datetime.datetime:
    """DuckDB's timezone(zone, TIMESTAMPTZ): the instant on zone's wall clock."""


@ibis.udf.scalar.builtin(name="to_utc_timestamp")
def _spark_local_to_utc(value: datetime.datetime, zone: str) -> datetime.datetime:
    """Spark's to_utc_timestamp: a wall-clock time in zone, as UTC."""


@ibis.udf.scalar.builtin(name="from_utc_timestamp")
def _spark_utc_to_local(value: datetime.datetime, zone: str) -> datetime.datetime:
    """Spark's from_utc_timestamp: a UTC time on zone's wall clock."""


@ibis.udf.scalar.builtin(name="json_extract_string")
def _duckdb_json_extract_string(value: str, path: str) -> str:
    """DuckDB's JSON path lookup, as text."""


@ibis.udf.scalar.builtin(name="get_json_object")
def _spark_get_json_object(value: str, path: str) -> str:
    """Spark's JSON path lookup, as text."""


def _json_path(key: str) -> str:
    if not key.replace("_", "").isalnum():
        raise ValueError(f"JSON property names are letters, digits and '_': got {key!r}")
    return f"$.{key}"


class Spark(Engine):
    """Spark through Ibis. Tables are Parquet folders under the workspace's warehouse folder,
    registered in the session's catalog on connect, so a workspace moves with its folder."""

    kind = "spark"

    def __init__(self, settings: SparkEngine, root: Path):
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:
            raise MissingDependencyError("the Spark engine", "spark") from exc
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        if settings.master.startswith("local"):  # Python workers run this interpreter, where cx360 is importable
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        self.warehouse = (root / settings.warehouse).resolve()
        self.warehouse.mkdir(parents=True, exist_ok=True)
        # A session that already runs (a notebook, a test suite) is borrowed, not stopped on close.
        # A borrowed session keeps its own settings: cx360's defaults go only to a session it starts,
        # the workspace's `conf` to both.
        self._owns_session = SparkSession.getActiveSession() is None
        defaults = {
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.shuffle.partitions": "4",
        }
        conf = {**(defaults if self._owns_session else {}), **settings.conf}
        if "spark.jars" not in conf and (jar := _splink_jar()):
            conf["spark.jars"] = jar  # Splink's string-similarity functions, for probabilistic matching
        builder = SparkSession.builder.master(settings.master).appName("cx360")
        for key, value in conf.items():
            builder = builder.config(key, value)
        self.session = builder.getOrCreate()
        self.session.sparkContext.setLogLevel("ERROR")
        # Non-ANSI casts yield NULL on a bad value, which ingestion turns into a per-row reason; stored
        # times are UTC. Both are needed for correct results, so they hold on a borrowed session too.
        self.session.conf.set("spark.sql.ansi.enabled", "false")
        self.session.conf.set("spark.sql.session.timeZone", "UTC")
        if self.session.sparkContext._jsc.sc().getCheckpointDir().isEmpty():
            # Splink breaks long query lineages by writing intermediate tables here.
            self.session.sparkContext.setCheckpointDir(str(self.warehouse / "_checkpoints"))
        super().__init__(ibis.pyspark.connect(self.session))
        self._recover_swaps()
        for folder in sorted(self.warehouse.iterdir()):
            if folder.is_dir() and not folder.name.startswith(("_", ".")):
                self._register(folder.name)

    def _register(self, name: str) -> None:
        self.session.sql(f"DROP TABLE IF EXISTS `{name}`")
        self.session.sql(f"CREATE TABLE `{name}` USING parquet LOCATION '{self.warehouse / name}'")

    def ensure_canonical_tables(self) -> None:
        from ibis.backends.pyspark.datatypes import PySparkSchema
        from pyspark.sql.pandas.types import to_arrow_schema

        for name in schema.TABLES:
            if not (self.warehouse / name).is_dir() or self._outdated(name):
                # An empty table is one Parquet file in Spark's own Arrow types, written here: a Spark job
                # per table would cost a new workspace seconds.
                folder = self.warehouse / name
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir()
                empty = to_arrow_schema(PySparkSchema.from_ibis(schema.ibis_schema(name))).empty_table()
                pq.write_table(empty, folder / "part-00000.parquet")
                self._register(name)

    def stage(self, data: pa.Table) -> ir.Table:
        name = self._temp_name()
        self.session.createDataFrame(data).createOrReplaceTempView(name)  # Arrow in directly: no pandas NaNs
        return self.con.table(name)

    def unstage(self, staged: ir.Table) -> None:
        self.session.catalog.dropTempView(staged.op().name)
        shutil.rmtree(self.warehouse / staged.op().name, ignore_errors=True)  # a query written out by _materialise

    def _materialise(self, data: pa.Table | ir.Table) -> ir.Table:
        if isinstance(data, pa.Table):
            return self.stage(data)
        return self._stage_frame(self._frame(data))

    def _stage_frame(self, frame) -> ir.Table:
        """Write a Spark frame into a staging folder and make it queryable (a folder, not a cached frame:
        it is computed once and never gathers on the driver)."""
        name = self._temp_name()
        frame.write.parquet(str(self.warehouse / name))
        self.session.read.parquet(str(self.warehouse / name)).createOrReplaceTempView(name)
        return self.con.table(name)

    def replace(self, table: str, data: pa.Table | ir.Table) -> None:
        columns = self.session.table(table).columns
        if isinstance(data, pa.Table):
            frame = self.session.createDataFrame(data.select(columns))
        else:
            frame = self._frame(data.select(*columns))
        self._swap(table, frame)

    def delete(self, table: str, predicate: ir.BooleanValue) -> int:
        current = self.table(table)
        kept = current.filter(~predicate.fill_null(False))  # NULL keeps the row, as DELETE does
        with self.step(f"delete from {table}", kept):
            before = self.session.table(table).count()
            return before - self._swap(table, self._frame(kept), count=True)

    def _upsert(self, table: str, rows: ir.Table, key: list[str]) -> None:
        self._swap(table, self._frame(self.table(table).anti_join(rows, key).union(rows)))

    def _frame(self, expr: ir.Table):
        self.con._run_pre_execute_hooks(expr)  # registers in-memory tables the query uses
        return self.session.sql(self.con.compile(expr))

    def _swap(self, table: str, frame, *, count: bool = False) -> int | None:
        """Write `frame` beside the table's folder, then swap folders: a crash leaves the old or the new
        content (`_recover_swaps` finishes a swap cut between its two renames). Returns the rows written
        when asked (counting them is one more Spark job)."""
        target = self.warehouse / table
        fresh, old = self.warehouse / f"_{table}.new", self.warehouse / f"_{table}.old"
        shutil.rmtree(fresh, ignore_errors=True)
        frame.write.parquet(str(fresh))
        target.rename(old)
        fresh.rename(target)
        shutil.rmtree(old)
        self.session.catalog.refreshTable(table)
        return self.session.read.parquet(str(target)).count() if count else None

    def _recover_swaps(self) -> None:
        for old in self.warehouse.glob("_*.old"):
            name = old.name[1 : -len(".old")]
            fresh, target = self.warehouse / f"_{name}.new", self.warehouse / name
            if not target.exists() and fresh.exists():  # cut between the renames: the new content is whole
                fresh.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        for fresh in self.warehouse.glob("_*.new"):  # a write that never finished
            shutil.rmtree(fresh, ignore_errors=True)
        for stage in self.warehouse.glob(f"{STAGE_PREFIX}*"):
            shutil.rmtree(stage, ignore_errors=True)

    def _map_into_stage(self, expr: ir.Table, fn: BatchFn, schema: pa.Schema, batch_rows: int) -> ir.Table:
        from ibis.backends.pyspark.datatypes import PySparkSchema
        from pyspark import cloudpickle
        from pyspark.sql.pandas.types import to_arrow_schema

        spark_schema = PySparkSchema.from_ibis(ibis.Schema.from_pyarrow(schema))
        wire = to_arrow_schema(spark_schema)  # Spark's Arrow types (timestamps in UTC)
        expected = expr.schema().to_pyarrow()

        def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            for batch in batches:
                if batch.num_rows:
                    out = _as_batch(fn(pa.Table.from_batches([batch]).cast(expected)), schema).cast(wire)
                    yield from out.to_batches()

        try:
            cloudpickle.dumps(run)
        except Exception as exc:  # pickling fails with many types
            raise EngineError("map batches", "the batch function cannot be shipped to Spark's executors", exc) from exc
        previous = self.session.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch")
        self.session.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch_rows))
        try:
            return self._stage_frame(self._frame(expr).mapInArrow(run, spark_schema))
        finally:
            self.session.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", previous)

    def _add_columns(self, table: str, columns: dict[str, dt.DataType]) -> None:
        t = self.table(table)
        self._swap(table, self._frame(t.mutate(**{c: ibis.null(d) for c, d in columns.items()})))

    def parse_timestamp(self, value: ir.StringValue, fmt: str) -> ir.TimestampValue:
        # With ANSI mode off, to_timestamp yields NULL on a mismatch; Ibis translates the format to Java's.
        return value.as_timestamp(java_literals(fmt))

    def json_get(self, value: ir.StringValue, key: str) -> ir.StringValue:
        return _spark_get_json_object(value, _json_path(key))

    def _local_to_utc(self, value: ir.TimestampValue, zone: str) -> ir.TimestampValue:
        return _spark_local_to_utc(value.cast("timestamp"), zone)

    def _utc_to_local(self, value: ir.TimestampValue, zone: str) -> ir.TimestampValue:
        return _spark_utc_to_local(value.cast("timestamp"), zone)

    def compact(self) -> None:
        # Deletes already wrote new Parquet folders; Splink's intermediate tables may hold copies of rows.
        for written in (self.warehouse / "_checkpoints").glob("*/*"):  # the session's own folder stays
            shutil.rmtree(written, ignore_errors=True)

    def close(self) -> None:
        if self._owns_session:
            self.session.stop()


def java_literals(fmt: str) -> str:
    """A strftime format whose literal letters are quoted, as Java's date patterns need them: the T of
    "%Y-%m-%dT%H:%M:%S" is a pattern letter to Java ("Unknown pattern letter: T") unless quoted."""

    def quote(m: re.Match[str]) -> str:
        text = m[0]
        return text if text.startswith("%") else "'" + text.replace("'", "''") + "'"

    return re.sub(r"%.|[A-Za-z']+", quote, fmt)


def _sql_text(value: object) -> str:
    return str(value).replace("'", "''")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _connect_duckdb(path: Path, options: dict) -> BaseBackend:
    """DuckDB allows one writing process per file: a held lock is "try again later", not a crash."""
    import duckdb

    try:
        return ibis.duckdb.connect(str(path), **options)
    except duckdb.ConnectionException as exc:
        # this process holds the file open as a writer and asks for a reader, or the other way round
        # (the dashboard's reports beside the server's own drain): the same wait as another writer's
        if "different configuration" not in str(exc):
            raise
        raise WarehouseLockedError(str(path), " (or by this process, opened in the other mode)") from None
    except duckdb.IOException as exc:
        message = str(exc)
        if "Could not set lock" not in message:
            raise
        holder = message.partition("Conflicting lock is held in")[2].strip()
        raise WarehouseLockedError(str(path), f" ({holder})" if holder else "") from None


def local_duckdb():
    """An in-memory DuckDB for work done over Arrow on the machine that runs cx360, whatever the
    workspace engine. cx360 reports its own progress, so DuckDB's bar stays off."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    return con


def _splink_jar() -> str | None:
    try:
        from splink.backends.spark import similarity_jar_location
    except ImportError:
        return None
    return similarity_jar_location()


def connect(settings: DuckDBEngine | SparkEngine, root: Path) -> Engine:
    engine = DuckDB(settings, root) if isinstance(settings, DuckDBEngine) else Spark(settings, root)
    engine.ensure_canonical_tables()
    return engine


def connect_read_only(settings: DuckDBEngine, root: Path) -> Engine:
    """The warehouse as it is, for reading only: its tables are not created or upgraded."""
    if not (root / settings.path).exists():
        raise StageNotRunError(f"no warehouse at {root / settings.path}", stage="ingest", workspace=root)
    return DuckDB(settings, root, read_only=True)
