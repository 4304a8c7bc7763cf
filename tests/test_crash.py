"""Crash suite: kill -9 every stage that writes at seeded random points, rerun it, and get exactly the
tables a clean run gets.

Each stage runs as the real `cx360` command in a subprocess, which SIGKILLs itself after a seeded delay
counted from the moment the command starts its work (imports excluded, so the kill lands in the stage).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cx360.cli.identity import run_resolve
from cx360.cli.profile import run_build
from cx360.cli.segments import run_evaluate
from cx360.profiles.build import dt
from cx360.sources.ingest import ingest
from cx360.status import table_counts
from cx360.workspace import Workspace

SRC = str(Path(__file__).resolve().parents[1] / "src")
AS_OF = "2025-07-01"
CUSTOMERS = 200
CONFIG = """
[workspace]
name = "crash"
default_region = "RU"
[engine]
kind = "duckdb"
[identity]
probabilistic = false  # deterministic links only: the suite is about crashes, not about matching

[[sources]]
name = "crm"
kind = "csv"
path = "data/crm.csv"
[sources.records]
record_id = "id"
identifiers = { customer_no = "id", email = "email", phone = "phone" }
attributes = { first_name = "first", last_name = "last", city = "city" }

[[sources]]
name = "web"
kind = "jsonl"
path = "data/web-*.jsonl"
[sources.events]
event_id = "id"
timestamp = { column = "at", type = "timestamp" }
name = { column = "type" }
identifiers = { cookie_id = "cookie", customer_no = "user" }

[[sources]]
name = "cards"
kind = "parquet"
path = "data/cards-*.parquet"
[sources.events]
event_id = "tx"
timestamp = "at"
name = { value = "card_payment" }
amount = "amount"
identifiers = { customer_no = "who" }
properties = { category = "category" }

[segmentation]
clusters = 3

[[segments]]
name = "spenders"
where = "spend_total > 500"
"""
# Runs a cx360 command in this process, and SIGKILLs the process `delay` seconds after cx360 is imported.
KILLER = """
import os, signal, sys, threading
from cx360.cli import main
threading.Timer(float(sys.argv[1]), lambda: os.kill(os.getpid(), signal.SIGKILL)).start()
sys.argv = ["cx360", *sys.argv[2:]]
main()
"""
STAGES = [  # (command, kills): every stage that writes; churn scoring needs a trained model and is left out
    (["ingest"], 2),
    (["identity", "resolve"], 2),
    (["profile", "build", "--as-of", AS_OF], 1),
    (["segments", "evaluate"], 1),
]


def make_world(root: Path, rng: random.Random) -> None:
    (root / "data").mkdir(parents=True)
    (root / "cx360.toml").write_text(CONFIG, encoding="utf-8")
    cities = ["Москва", "Казань", "Тула"]
    crm = ["id,email,phone,first,last,city"]
    for i in range(CUSTOMERS):
        crm.append(f"C{i},user{i}@mail.ru,+7916{i:07d},Имя{i % 40},Фам{i % 60},{cities[i % 3]}")
    (root / "data" / "crm.csv").write_text("\n".join(crm) + "\n", encoding="utf-8")
    for part in range(2):
        lines = []
        for j in range(600):
            n = part * 600 + j
            who = rng.randrange(CUSTOMERS)
            event = {
                "id": f"w{n}",
                "at": f"2025-0{1 + n % 6}-{1 + n % 28:02d}T10:00:00Z",
                "cookie": f"ck{who}",
                "type": rng.choice(["page_viewed", "login"]),
            }
            if n % 3 == 0:
                event["user"] = f"C{who}"
            lines.append(json.dumps(event))
        (root / "data" / f"web-{part}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for part in range(2):
        n = 2000
        pq.write_table(
            pa.table(
                {
                    "tx": [f"t{part}-{k}" for k in range(n)],
                    "who": [f"C{rng.randrange(CUSTOMERS)}" for _ in range(n)],
                    "at": pa.array(
                        [dt.datetime(2025, 1, 1) + dt.timedelta(minutes=rng.randrange(250_000)) for _ in range(n)],
                        pa.timestamp("us"),
                    ),
                    "amount": [round(rng.uniform(1, 300), 2) for _ in range(n)],
                    "category": [rng.choice(["Food", "Travel", "Fuel"]) for _ in range(n)],
                }
            ),
            root / "data" / f"cards-{part}.parquet",
        )


def clean_run(root: Path) -> tuple[dict[str, int], list[float]]:
    """Every stage once, in this process: the counts to reach, and how long each stage took."""
    seconds = []
    with Workspace(root) as ws:
        for step in (
            lambda: ingest(ws),
            lambda: run_resolve(ws),
            lambda: run_build(ws, dt.datetime(2025, 7, 1)),
            lambda: run_evaluate(ws),
        ):
            began = time.perf_counter()
            step()
            seconds.append(time.perf_counter() - began)
        return table_counts(ws), seconds


def cx360(root: Path, args: list[str], kill_after: float | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": SRC, "COLUMNS": "200"}
    command = ["-c", KILLER, str(kill_after), *args] if kill_after is not None else ["-m", "cx360", *args]
    return subprocess.run(
        [sys.executable, *command, "-w", str(root)], capture_output=True, text=True, timeout=300, env=env
    )


def test_kill_9_anywhere_then_rerun_gives_the_clean_tables(tmp_path):
    rng = random.Random(20260412)
    clean, crashed = tmp_path / "clean", tmp_path / "crashed"
    make_world(clean, random.Random(7))
    make_world(crashed, random.Random(7))
    expected, seconds = clean_run(clean)
    assert expected["profiles"] > 0 and expected["segment_members"] > 0
    killed = 0
    for (args, kills), took in zip(STAGES, seconds, strict=True):
        for _ in range(kills):
            result = cx360(crashed, args, kill_after=rng.uniform(0.05, 1.2 * took))
            killed += result.returncode == -9
            assert result.returncode in (0, -9), result.stderr  # finished before the kill, or killed
            assert "Traceback" not in result.stderr
        finished = cx360(crashed, args)
        assert finished.returncode == 0, finished.stderr
    assert killed >= 4  # most kills landed inside a stage
    with Workspace(crashed) as ws:
        counts = table_counts(ws)
    # table_versions logs every completed stage run, and the crashed workspace ran some stages more often
    assert {t: n for t, n in counts.items() if t != "table_versions"} == {
        t: n for t, n in expected.items() if t != "table_versions"
    }
