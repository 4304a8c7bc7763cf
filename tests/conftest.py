"""Shared fixtures: a workspace factory, parametrised over the engines.

DuckDB always runs. Spark (local mode) runs when pyspark and Java are present;
with CX360_TEST_SPARK=1 (as in CI) their absence is a failure, not a skip.
The same goes for PostgreSQL with CX360_TEST_PG_URL / CX360_TEST_SERVICES=1.
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from cx360.workspace import Workspace

ENGINES = ["duckdb", pytest.param("spark", marks=pytest.mark.spark)]
# Spark runs each stage's main test; the cases around it, whose code is the same Ibis on both engines, run on
# DuckDB only, to keep the suite's time in bounds.
DUCKDB_ONLY = pytest.mark.parametrize("engine_kind", ["duckdb"], indirect=True)

# Spark settings for the tests' tiny tables: one partition, and expressions interpreted rather than compiled
# (compiling each of many small queries costs more than running it). The workspaces' cx360.toml carries them
# too (SPARK_ENGINE), for the commands a test runs in a process of their own, which start their own session.
SPARK_TEST_CONF = {
    "spark.sql.shuffle.partitions": "1",
    "spark.default.parallelism": "1",
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
}
SPARK_ENGINE = '[engine]\nkind = "spark"\nmaster = "local[2]"\n' + "".join(
    f'conf."{key}" = "{value}"\n' for key, value in SPARK_TEST_CONF.items()
)


def _spark_available() -> str | None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install 'cx360[spark]')"
    if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
        return "Java is not installed"
    return None


@pytest.fixture(scope="session")
def spark_session(tmp_path_factory):
    missing = _spark_available()
    if missing:
        if os.environ.get("CX360_TEST_SPARK") == "1":
            pytest.fail(f"Spark tests required (CX360_TEST_SPARK=1) but {missing}")
        pytest.skip(missing)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # batch functions run in workers of this interpreter
    from pyspark.sql import SparkSession
    from splink.backends.spark import similarity_jar_location

    builder = SparkSession.builder
    for key, value in SPARK_TEST_CONF.items():
        builder = builder.config(key, value)
    session = (
        builder.master("local[2]")
        .appName("cx360-tests")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.jars", similarity_jar_location())
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    session.sparkContext.setCheckpointDir(str(tmp_path_factory.mktemp("spark-checkpoints")))
    yield session
    session.stop()


@pytest.fixture(params=ENGINES)
def engine_kind(request) -> str:
    if request.param == "spark":
        request.getfixturevalue("spark_session")
    return request.param


class WorkspaceFactory:
    """Writes a cx360.toml (engine section chosen by the test's engine) and data files."""

    def __init__(self, root: Path, engine: str):
        self.root = root
        self.engine = engine
        (root / "data").mkdir(parents=True, exist_ok=True)

    def write(self, relative: str, content: str | bytes) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")
        return path

    def config(self, sources: str, *, region: str = "RU", extra: str = "") -> Workspace:
        engine = SPARK_ENGINE if self.engine == "spark" else '[engine]\nkind = "duckdb"\n'
        text = (
            f'[workspace]\nname = "test"\ndefault_region = "{region}"\n\n{engine}\n'
            f"{textwrap.dedent(extra)}\n{textwrap.dedent(sources)}"
        )
        (self.root / "cx360.toml").write_text(text, encoding="utf-8")
        return Workspace(self.root)


@pytest.fixture
def make_workspace(tmp_path, engine_kind):
    opened: list[Workspace] = []
    factory = WorkspaceFactory(tmp_path / "ws", engine_kind)
    original = factory.config

    def config(*args, **kwargs) -> Workspace:
        ws = original(*args, **kwargs)
        opened.append(ws)
        return ws

    factory.config = config  # type: ignore[method-assign]
    yield factory
    for ws in opened:
        ws.close()


@pytest.fixture
def duckdb_workspace(tmp_path) -> WorkspaceFactory:
    return WorkspaceFactory(tmp_path / "ws", "duckdb")


@pytest.fixture
def spark_twin(spark_session, tmp_path):
    """A Spark workspace with the configuration of a DuckDB workspace and copies of its `tables`: for
    checking that code run on both engines over the same tables gives the same answers."""
    opened: list[Workspace] = []

    def twin(root: Path, tables: tuple[str, ...]) -> Workspace:
        dest = tmp_path / f"spark-{len(opened)}"
        dest.mkdir()
        config = (root / "cx360.toml").read_text(encoding="utf-8")
        (dest / "cx360.toml").write_text(f"{config}\n{SPARK_ENGINE}", encoding="utf-8")
        spark = Workspace(dest)
        opened.append(spark)
        with Workspace(root, read_only=True) as ws:
            for name in tables:
                spark.engine.replace(name, ws.engine.table(name).to_pyarrow())
        return spark

    yield twin
    for ws in opened:
        ws.close()


def pg_test_url() -> str:
    """The test PostgreSQL's URL (CX360_TEST_PG_URL); skips without one, fails under CX360_TEST_SERVICES=1."""
    url = os.environ.get("CX360_TEST_PG_URL")
    if not url:
        if os.environ.get("CX360_TEST_SERVICES") == "1":
            pytest.fail("CX360_TEST_SERVICES=1 but CX360_TEST_PG_URL is not set")
        pytest.skip("no PostgreSQL: set CX360_TEST_PG_URL (see .ci/start-postgres)")
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


ONLINE_STORES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=ONLINE_STORES)
def online_store(request, monkeypatch):
    """The `[online]` table of a workspace: empty (online.sqlite), or a fresh schema of the test PostgreSQL
    named through $CX360_ONLINE_URL."""
    if request.param == "sqlite":
        yield ""
        return
    import uuid

    import psycopg

    url, schema = pg_test_url(), f"online_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as con:
        con.execute(f"CREATE SCHEMA {schema}")
    monkeypatch.setenv("CX360_ONLINE_URL", f"{url}?options=-csearch_path%3D{schema}")
    yield '\n[online]\nurl_env = "CX360_ONLINE_URL"\n'
    with psycopg.connect(url, autocommit=True) as con:
        con.execute(f"DROP SCHEMA {schema} CASCADE")
