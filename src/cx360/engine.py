"""Connect to DuckDB or Spark through Ibis: the only place where engines differ.

Stage code builds Ibis expressions and calls the few methods here; the engine
subclasses fill in a handful of hooks, like a dialect: how to stage Arrow data,
how to remove the rows of an unfinished batch, how to parse a timestamp
without failing the whole query on one bad value.
"""

from __future__ import annotations

import datetime
import os
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from cx360 import schema
from cx360.config import DuckDBEngine, SparkEngine
from cx360.errors import Cx360Error, EngineError, MissingDependencyError

if TYPE_CHECKING:
    from ibis.backends import BaseBackend


class Engine(ABC):
    kind: str

    def __init__(self, con: BaseBackend):
        self.con = con

    # -- hooks -----------------------------------------------------------------
    @abstractmethod
    def stage(self, data: pa.Table) -> ir.Table:
        """Make Arrow data queryable as a table for the length of a batch."""

    @abstractmethod
    def delete_batches(self, table: str, batch_ids: list[str]) -> None:
        """Remove the rows that the given batches wrote into `table`."""

    @abstractmethod
    def replace(self, table: str, data: pa.Table | ir.Table) -> None:
        """Replace the whole content of `table` with `data` (Arrow rows or a query), all or nothing."""

    @abstractmethod
    def parse_timestamp(self, value: ir.StringValue, fmt: str) -> ir.TimestampValue:
        """strptime-style parse that yields NULL (not an error) on a value that does not match."""

    @abstractmethod
    def json_get(self, value: ir.StringValue, key: str) -> ir.StringValue:
        """The top-level `key` of a JSON object string, as a string (NULL when absent)."""

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
        """A derived table written by an older cx360 (other columns) is rebuilt; a stored one is an error."""
        if tuple(self.table(name).columns) == tuple(schema.ibis_schema(name).names):
            return False
        if name in schema.DERIVED_TABLES:
            return True
        raise Cx360Error(f"table {name!r} has columns {list(self.table(name).columns)}, but this cx360 expects "
                         f"{list(schema.ibis_schema(name).names)}; the workspace was written by another version")

    def insert(self, table: str, expr: ir.Table, *, step: str) -> None:
        """Append `expr` to `table`, in the table's column order."""
        columns = self.table(table).columns
        with self.step(step, expr):
            self.con.insert(table, expr.select(*columns))

    def unstage(self, staged: ir.Table) -> None:
        self.con.drop_table(staged.get_name(), force=True)

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
        with self.step(step, expr):
            return expr.execute()

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

    def close(self) -> None:
        self.con.disconnect()

    @staticmethod
    def _temp_name() -> str:
        return f"_cx360_stage_{uuid.uuid4().hex[:12]}"


class DuckDB(Engine):
    kind = "duckdb"

    def __init__(self, settings: DuckDBEngine, root: Path):
        path = root / settings.path
        path.parent.mkdir(parents=True, exist_ok=True)
        extra = {k: v for k, v in (("threads", settings.threads), ("memory_limit", settings.memory_limit)) if v}
        con = ibis.duckdb.connect(str(path), **extra)
        con.raw_sql("SET TimeZone = 'UTC'")
        super().__init__(con)
        self.path = path

    def stage(self, data: pa.Table) -> ir.Table:
        return self.con.create_table(self._temp_name(), obj=ibis.memtable(data), temp=True)

    def replace(self, table: str, data: pa.Table | ir.Table) -> None:
        staged = self.stage(data) if isinstance(data, pa.Table) else None
        columns = self.table(table).columns
        self.con.raw_sql("BEGIN TRANSACTION")
        try:
            self.con.raw_sql(f'DELETE FROM "{table}"')
            self.con.insert(table, (data if staged is None else staged).select(*columns))
            self.con.raw_sql("COMMIT")
        except BaseException:
            self.con.raw_sql("ROLLBACK")
            raise
        finally:
            if staged is not None:
                self.unstage(staged)

    def delete_batches(self, table: str, batch_ids: list[str]) -> None:
        ids = ", ".join("'" + b.replace("'", "''") + "'" for b in batch_ids)
        self.con.raw_sql(f'DELETE FROM "{table}" WHERE batch_id IN ({ids})')

    def parse_timestamp(self, value: ir.StringValue, fmt: str) -> ir.TimestampValue:
        return _duckdb_try_strptime(value, fmt)

    def json_get(self, value: ir.StringValue, key: str) -> ir.StringValue:
        return _duckdb_json_extract_string(value, _json_path(key))


@ibis.udf.scalar.builtin(name="try_strptime")
def _duckdb_try_strptime(value: str, fmt: str) -> datetime.datetime:
    """DuckDB's strptime that returns NULL instead of raising."""


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
        self.warehouse = (root / settings.warehouse).resolve()
        self.warehouse.mkdir(parents=True, exist_ok=True)
        # A session that already runs (a notebook, a test suite) is borrowed, not stopped on close.
        self._owns_session = SparkSession.getActiveSession() is None
        conf = {
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.shuffle.partitions": "4",
            **settings.conf,
        }
        if "spark.jars" not in conf and (jar := _splink_jar()):
            conf["spark.jars"] = jar  # Splink's string-similarity functions, for probabilistic matching
        builder = SparkSession.builder.master(settings.master).appName("cx360")
        for key, value in conf.items():
            builder = builder.config(key, value)
        self.session = builder.getOrCreate()
        self.session.sparkContext.setLogLevel("ERROR")
        # Non-ANSI casts yield NULL on a bad value, which ingestion turns into a per-row reason.
        self.session.conf.set("spark.sql.ansi.enabled", "false")
        if self.session.sparkContext._jsc.sc().getCheckpointDir().isEmpty():
            # Splink breaks long query lineages by writing intermediate tables here.
            self.session.sparkContext.setCheckpointDir(str(self.warehouse / "_checkpoints"))
        super().__init__(ibis.pyspark.connect(self.session))
        for folder in sorted(self.warehouse.iterdir()):
            if folder.is_dir() and not folder.name.startswith(("_", ".")):
                self._register(folder.name)

    def _register(self, name: str) -> None:
        self.session.sql(f"DROP TABLE IF EXISTS `{name}`")
        self.session.sql(f"CREATE TABLE `{name}` USING parquet LOCATION '{self.warehouse / name}'")

    def ensure_canonical_tables(self) -> None:
        from ibis.backends.pyspark.datatypes import PySparkSchema

        for name in schema.TABLES:
            if not (self.warehouse / name).is_dir() or self._outdated(name):
                empty = self.session.createDataFrame([], PySparkSchema.from_ibis(schema.ibis_schema(name)))
                empty.write.mode("overwrite").parquet(str(self.warehouse / name))
                self._register(name)

    def stage(self, data: pa.Table) -> ir.Table:
        name = self._temp_name()
        self.session.createDataFrame(data).createOrReplaceTempView(name)  # Arrow in directly: no pandas NaNs
        return self.con.table(name)

    def unstage(self, staged: ir.Table) -> None:
        self.session.catalog.dropTempView(staged.get_name())

    def delete_batches(self, table: str, batch_ids: list[str]) -> None:
        from pyspark.sql import functions as F

        # Spark cannot overwrite files it is reading: materialise the surviving rows first.
        kept = self.session.table(table).where(~F.col("batch_id").isin(batch_ids)).localCheckpoint()
        kept.write.mode("overwrite").parquet(str(self.warehouse / table))
        self.session.catalog.refreshTable(table)

    def replace(self, table: str, data: pa.Table | ir.Table) -> None:
        import shutil

        # Write beside, then swap folders: a crash leaves either the old or the new content.
        target = self.warehouse / table
        fresh = self.warehouse / f"_{table}.new"
        shutil.rmtree(fresh, ignore_errors=True)
        columns = self.session.table(table).columns
        if isinstance(data, pa.Table):
            frame = self.session.createDataFrame(data.select(columns))
        else:
            self.con._run_pre_execute_hooks(data)  # registers in-memory tables the query uses
            frame = self.session.sql(self.con.compile(data.select(*columns)))
        frame.write.parquet(str(fresh))
        old = self.warehouse / f"_{table}.old"
        target.rename(old)
        fresh.rename(target)
        shutil.rmtree(old)
        self.session.catalog.refreshTable(table)

    def parse_timestamp(self, value: ir.StringValue, fmt: str) -> ir.TimestampValue:
        # With ANSI mode off, to_timestamp yields NULL on a mismatch; Ibis translates the format to Java's.
        return value.as_timestamp(fmt)

    def json_get(self, value: ir.StringValue, key: str) -> ir.StringValue:
        return _spark_get_json_object(value, _json_path(key))

    def close(self) -> None:
        if self._owns_session:
            self.session.stop()


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
