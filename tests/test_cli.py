"""The `cx360` command as a user runs it: a real process, its output and its exit code."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")  # the sources under test, not whatever is installed

CSV_SOURCE = """
[[sources]]
name = "crm"
kind = "csv"
path = "data/crm.csv"
[sources.records]
record_id = "id"
identifiers = { email = "email" }
"""


def cx360(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cx360", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "PYTHONPATH": SRC},
    )


def test_help_lists_the_commands():
    result = cx360("--help")
    assert result.returncode == 0
    for command in ("init", "ingest", "run", "status", "demo", "quarantine"):
        assert command in result.stdout


def test_init_ingest_status_quarantine(tmp_path):
    ws = tmp_path / "bank"
    assert cx360("init", str(ws), "--region", "ru").returncode == 0
    (ws / "data" / "crm.csv").write_text("id,email\n1,a@x.com\n2,not-an-email\n,b@x.com\n", encoding="utf-8")
    with open(ws / "cx360.toml", "a", encoding="utf-8") as f:
        f.write(CSV_SOURCE)
    result = cx360("ingest", "-w", str(ws))
    assert result.returncode == 0, result.stderr
    assert "│ crm    │      1 │         0 │    3 │      2 │           1 │          0 │          0 │ ok" in result.stdout
    assert "1 rows quarantined" in result.stdout and "1 malformed identifiers dropped" in result.stdout
    status = cx360("status", "-w", str(ws))
    assert status.returncode == 0 and "records" in status.stdout and "│ crm" in status.stdout
    assert (
        "Identifiers dropped at ingest" in status.stdout
        and "│ email │ 1       │ email (email): not a valid email" in status.stdout
    )
    quarantine = cx360("quarantine", "-w", str(ws))
    assert "record_id (id): a value is required" in quarantine.stdout
    dropped = cx360("quarantine", "--dropped", "-w", str(ws))
    assert "records:2" in dropped.stdout and "not-an-email" in dropped.stdout
    again = cx360("run", "-w", str(ws))
    assert again.returncode == 0 and "│ crm    │      1 │         1 │    3 │      0 │" in again.stdout
    assert "probabilistic matching skipped:" in " ".join(again.stderr.split())


def test_config_typo_exits_non_zero_naming_the_key(tmp_path):
    ws = tmp_path / "bank"
    cx360("init", str(ws))
    with open(ws / "cx360.toml", "a", encoding="utf-8") as f:
        f.write(CSV_SOURCE.replace('path = "data/crm.csv"', 'paht = "data/crm.csv"'))
    result = cx360("ingest", "-w", str(ws))
    assert result.returncode == 1
    assert "sources[0] (crm).paht: unknown key" in result.stderr


def test_failing_source_exits_non_zero_after_loading_the_others(tmp_path):
    ws = tmp_path / "bank"
    cx360("init", str(ws))
    (ws / "data" / "crm.csv").write_text("id,email\n1,a@x.com\n", encoding="utf-8")
    with open(ws / "cx360.toml", "a", encoding="utf-8") as f:
        f.write(CSV_SOURCE + CSV_SOURCE.replace('"crm"', '"gone"').replace("crm.csv", "gone.csv"))
    result = cx360("ingest", "-w", str(ws))
    assert result.returncode == 1
    assert "gone: source 'gone': path = 'data/gone.csv': no such file" in " ".join(result.stderr.split())
    assert "│ crm    │      1 │         0 │    1 │      1 │" in result.stdout


def test_missing_workspace_is_a_clear_error(tmp_path):
    result = cx360("status", "-w", str(tmp_path / "nowhere"))
    assert result.returncode == 1 and "workspace file not found" in result.stderr


def test_identity_resolve_explain_block(tmp_path):
    ws = tmp_path / "bank"
    cx360("init", str(ws))
    (ws / "data" / "a.csv").write_text(
        "id,email,phone,name\n1,ann@x.com,+79161234567,Ann\n2,bob@x.com,,Bob\n", encoding="utf-8"
    )
    (ws / "data" / "b.csv").write_text("id,email,phone,name\nX,,+7 916 123-45-67,Anna\n", encoding="utf-8")
    text = (ws / "cx360.toml").read_text(encoding="utf-8").replace("match_threshold = 0.9", "probabilistic = false")
    for name in ("a", "b"):
        text += (
            f'\n[[sources]]\nname = "crm_{name}"\nkind = "csv"\npath = "data/{name}.csv"\n[sources.records]\n'
            'record_id = "id"\nidentifiers = { email = "email", phone = "phone" }\n'
            'attributes = { first_name = "name" }\n'
        )
    (ws / "cx360.toml").write_text(text.replace('default_region = "US"', 'default_region = "RU"'), encoding="utf-8")
    assert cx360("ingest", "-w", str(ws)).returncode == 0
    resolved = cx360("identity", "resolve", "-w", str(ws))
    assert resolved.returncode == 0, resolved.stderr
    assert "│ profiles                 │     2 │" in resolved.stdout
    explained = cx360("identity", "explain", "ANN@x.com", "-w", str(ws))
    assert explained.returncode == 0, explained.stderr
    assert "record:crm_b:X" in explained.stdout and "phone:+79161234567" in explained.stdout
    blocked = cx360(
        "identity", "block", "record:crm_b:X", "phone:+79161234567", "--reason", "not her", "--by", "qa", "-w", str(ws)
    )
    assert blocked.returncode == 0 and "│ profiles                 │     3 │" in blocked.stdout
    again = cx360("identity", "explain", "record:crm_b:X", "-w", str(ws))
    assert "not her" in again.stdout and "qa" in again.stdout
    missing = cx360("identity", "explain", "nobody@x.com", "-w", str(ws))
    assert missing.returncode == 1 and "no profile holds 'nobody@x.com'" in missing.stderr


def test_demo_builds_ingests_and_refuses_to_clobber(tmp_path):
    target = tmp_path / "demo"
    result = cx360("demo", str(target), "--customers", "150")
    assert result.returncode == 0, result.stderr
    assert "rows quarantined" in result.stdout and "│ events" in result.stdout
    spearman = next(line for line in result.stdout.splitlines() if "Spearman" in line)
    assert float(spearman.split("│")[2]) > 0.4, spearman  # lifetime value ranks people by their hidden spending
    assert (target / "truth" / "persons.parquet").exists() and (target / "warehouse.duckdb").exists()
    again = cx360("demo", str(target), "--customers", "150")
    assert again.returncode == 1 and "pass --force" in again.stderr
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.txt").write_text("precious")
    refused = cx360("demo", str(tmp_path / "mine"), "--force")
    assert refused.returncode == 1 and (tmp_path / "mine" / "thesis.txt").exists()


def test_identity_dedupe_writes_clusters_and_rejects_bad_maps(tmp_path):
    rows = (
        "id,first_name,last_name,dob,phone\n1,Ivan,Petrov,1980-01-02,+79161234567\n"
        "2,Anna,Sidorova,1990-05-06,+79031112233\n"
    )
    (tmp_path / "a.csv").write_text(rows, encoding="utf-8")
    (tmp_path / "b.csv").write_text(
        "id,first_name,last_name,dob,phone\n9,Иван,Петров,1980-01-02,+79161234567\n", encoding="utf-8"
    )
    bad = cx360(
        "identity",
        "dedupe",
        str(tmp_path / "a.csv"),
        "--key",
        "id",
        "--map",
        "dob=dateofbirth",
        "-o",
        str(tmp_path / "o.csv"),
    )
    assert bad.returncode == 1 and "FIELD one of" in bad.stderr
    missing = cx360("identity", "dedupe", str(tmp_path / "nope.csv"), "--key", "id", "-o", str(tmp_path / "o.csv"))
    assert missing.returncode == 1 and "no such file" in missing.stderr


def test_format_json_puts_one_document_on_stdout(tmp_path):
    ws = tmp_path / "bank"
    cx360("init", str(ws))
    (ws / "data" / "crm.csv").write_text("id,email\n1,a@x.com\n,not-an-email\n", encoding="utf-8")
    with open(ws / "cx360.toml", "a", encoding="utf-8") as f:
        f.write(CSV_SOURCE)
    ingest = cx360("ingest", "-w", str(ws), "--format", "json")
    assert ingest.returncode == 0, ingest.stderr
    assert json.loads(ingest.stdout) == [
        {
            "source": "crm",
            "inputs": 1,
            "unchanged": 0,
            "read": 2,
            "loaded": 1,
            "quarantined": 1,
            "duplicates": 0,
            "suppressed": 0,
            "status": "ok",
            "identifiers_dropped": 0,
            "error": None,
        }
    ]
    assert "1 rows quarantined" in ingest.stderr  # notes go to stderr in json mode
    status = json.loads(cx360("status", "-w", str(ws), "--format", "json").stdout)
    assert {"table": "records", "rows": 1} in status["tables"]
    assert status["sources"][0]["source"] == "crm" and status["sources"][0]["last_batch"]
    quarantine = json.loads(cx360("quarantine", "-w", str(ws), "--format", "json").stdout)
    assert quarantine[0]["row"] == 2 and "record_id (id): a value is required" in quarantine[0]["reasons"]
    assert "│" in cx360("status", "-w", str(ws)).stdout  # table stays the default


def test_version_and_completion():
    from cx360 import __version__

    assert cx360("--version").stdout.strip() == f"cx360 {__version__}"
    assert "--install-completion" in cx360("--help").stdout


def test_a_locked_warehouse_exits_75_with_a_clear_message(tmp_path):
    ws = tmp_path / "bank"
    cx360("init", str(ws))
    holder = subprocess.Popen(  # another process holds the warehouse open for writing
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('ready', flush=True); time.sleep(120)",
            str(ws / "warehouse.duckdb"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = cx360("status", "-w", str(ws))
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 75, result.stderr
    assert "is in use by another process" in result.stderr and "try again" in result.stderr
    assert "Traceback" not in result.stderr


def test_config_schema_validates_the_init_template(tmp_path):
    result = cx360("config", "schema")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert schema["title"] == "cx360.toml" and schema["additionalProperties"] is False
    cx360("init", str(tmp_path / "bank"))
    # TOML dates reach the schema as ISO strings, as editors' TOML validators pass them
    data = json.loads(
        json.dumps(
            tomllib.loads((tmp_path / "bank" / "cx360.toml").read_text(encoding="utf-8")),
            default=lambda v: v.isoformat(),
        )
    )
    jsonschema.validate(data, schema)  # what init writes is valid
    data["workspace"]["nmae"] = "typo"
    with pytest.raises(jsonschema.ValidationError, match="nmae"):
        jsonschema.validate(data, schema)


def test_every_table_command_speaks_json(tmp_path):
    from typer.testing import CliRunner

    from cx360.cli import app

    ws = tmp_path / "bank"
    runner = CliRunner()

    def run(*args: str, code: int = 0):
        result = runner.invoke(app, [*args, "--format", "json"])
        assert result.exit_code == code, (args, result.output)
        return json.loads(result.stdout)  # stdout is exactly one JSON document

    init = runner.invoke(app, ["init", str(ws)])
    assert init.exit_code == 0 and "Add [[sources]] to it, then run cx360 ingest -w" in " ".join(init.stdout.split())
    (ws / "data" / "crm.csv").write_text(
        "id,email\n1,ivan.petrov@mail.ru\n2,anna.sidorova@yandex.ru\n", encoding="utf-8"
    )
    with open(ws / "cx360.toml", "a", encoding="utf-8") as f:
        f.write(CSV_SOURCE + '\n[[segments]]\nname = "everyone"\nwhere = "age_years is null"\n')
    report = run("run", "-w", str(ws))
    assert [s["stage"] for s in report["stages"]] == [
        "ingest",
        "retention",
        "identity",
        "texts",
        "profiles",
        "churn",
        "archetypes",
        "segments",
        "listening",
    ]
    assert report["stages"][0]["rows_written"]["records"] == 2 and report["ok"] is True
    resolved = run("identity", "resolve", "-w", str(ws))
    assert resolved["records"] == 2 and resolved["profiles"] == 2
    explained = run("identity", "explain", "ivan.petrov@mail.ru", "-w", str(ws))
    assert explained["profile_id"].startswith("P") and "email:ivan.petrov@mail.ru" in json.dumps(explained["nodes"])
    assert run("profile", "build", "-w", str(ws))["profiles"] == 2
    evaluated = {r["name"]: r for r in run("segments", "evaluate", "-w", str(ws))}
    assert evaluated["everyone"]["status"] == "ok" and evaluated["everyone"]["size"] == 2
    listed = {r["name"]: r for r in run("segments", "list", "-w", str(ws))}
    assert listed["everyone"]["fresh"] is True and listed["everyone"]["size"] == 2
    members = run("segments", "members", "everyone", "-w", str(ws))
    assert members["rows"] == 2 and len(members["members"]) == 2 and members["members"][0]["left"] is None
    assert {t["trait"] for t in run("traits")} >= {"age_years", "spend_total"}
    assert runner.invoke(app, ["keys", "create", "--role", "analyst", "-w", str(ws)]).exit_code == 0
    assert [k["role"] for k in run("keys", "list", "-w", str(ws))] == ["analyst"]
    assert "identity explain" in {e["action"] for e in run("audit", "-w", str(ws))}  # CLI reads are audited
    assert "Tables" in runner.invoke(app, ["status", "-w", str(ws)]).stdout  # the next command is a table again
