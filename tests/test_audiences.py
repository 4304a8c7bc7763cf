"""Funnels and audiences on a small workspace: a funnel across channels through identity, on the command
line, and segments leaving the system (files, consent, staleness)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import uuid

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cx360.cli import app
from cx360.errors import ConfigError, DataError, NotFoundError, StageNotRunError
from cx360.identity.resolve import resolve
from cx360.profiles.build import build
from cx360.segments.evaluate import evaluate
from cx360.sources.ingest import ingest
from cx360.workspace import Workspace

CRM = """\
id,email,phone
C1,Anna@X.ru,+79160000001
C2,boris@x.ru,+79160000002
C3,vera@x.ru,
C4,gleb@x.ru,+79160000004
"""


def _e(i, ts, name, channel, **kw):
    return json.dumps({"id": f"e{i}", "ts": ts, "name": name, "channel": channel, **kw})


EVENTS = [
    # Anna: the cards page on the web, the form in the app, submitted in the app
    _e(1, "2025-06-01T10:00:00Z", "login", "web", cookie="ck1", customer="C1"),
    _e(2, "2025-06-01T10:01:00Z", "page_viewed", "web", cookie="ck1", path="/cards"),
    _e(3, "2025-06-02T09:00:00Z", "login", "mobile_app", device="dv1", customer="C1"),
    _e(4, "2025-06-02T09:05:00Z", "form_started", "mobile_app", device="dv1", form="card"),
    _e(5, "2025-06-02T09:15:00Z", "form_submitted", "mobile_app", device="dv1", form="card"),
    # Boris: the cards page, the form, but a submission ten days later, past the window
    _e(6, "2025-06-03T10:00:00Z", "page_viewed", "web", customer="C2", path="/cards"),
    _e(7, "2025-06-03T10:30:00Z", "form_started", "web", customer="C2", form="card"),
    _e(8, "2025-06-13T10:30:00Z", "form_submitted", "web", customer="C2", form="card"),
    # Vera: another page only
    _e(9, "2025-06-04T10:00:00Z", "page_viewed", "web", customer="C3", path="/deposits"),
    # Gleb: spends, so that a segment has him
    _e(10, "2025-06-05T10:00:00Z", "card_payment", "pos", customer="C4", amount=2000.0),
]

CONFIG = """
[identity]
probabilistic = false

[segmentation]
clusters = 0
rfm = false

[[sources]]
name = "crm"
kind = "csv"
path = "data/crm.csv"
[sources.records]
record_id = "id"
identifiers = { customer_no = "id", email = "email", phone = "phone" }

[[sources]]
name = "activity"
kind = "jsonl"
path = "data/activity.jsonl"
[sources.events]
event_id = "id"
timestamp = { column = "ts", type = "timestamp" }
name = "name"
channel = "channel"
amount = { column = "amount", type = "float" }
identifiers = { customer_no = "customer", cookie_id = "cookie", device_id = "device" }
properties = { path = "path", form = "form" }

[[funnels]]
name = "card_application"
steps = ["name = 'page_viewed' and path = '/cards'", "name = 'form_started'", "name = 'form_submitted'"]
within = "7d"

[[funnels]]
name = "typo"
steps = ["name = 'page_viewed' and pth = '/cards'", "name = 'form_started'"]

[[segments]]
name = "spenders"
where = "spend_total > 1000"
"""

runner = CliRunner()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("audiences")
    (root / "data").mkdir()
    (root / "data" / "crm.csv").write_text(CRM)
    (root / "data" / "activity.jsonl").write_text("\n".join(EVENTS) + "\n")
    (root / "cx360.toml").write_text('[workspace]\nname = "t"\ndefault_region = "RU"\n' + CONFIG)
    with Workspace(root) as ws:
        ingest(ws)
        resolve(ws)
        build(ws)
        evaluate(ws)
    return root


def _cli(*args):
    return runner.invoke(app, [*map(str, args)])


def test_a_funnel_follows_people_across_channels(workspace):
    result = _cli("funnels", "show", "card_application", "-w", workspace, "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [(s["step"], s["entered"], s["converted"]) for s in report["steps"]] == [(1, 2, 2), (2, 2, 1), (3, 1, 1)]
    # Anna: 23 h 04 min from the page to the form; Boris: 30 min
    assert report["steps"][1]["median_seconds_from_previous"] == pytest.approx((83040 + 1800) / 2)


def test_a_funnel_breaks_down_by_segment(workspace):
    result = _cli("funnels", "show", "card_application", "-w", workspace, "--by", "segment", "--format", "json")
    assert result.exit_code == 0, result.output
    groups = {g["group"]: [s["entered"] for s in g["steps"]] for g in json.loads(result.stdout)["groups"]}
    assert groups["(no segment)"] == [2, 2, 1]
    assert "spenders" not in groups  # Gleb, the only spender, never saw the page


def test_a_funnel_step_with_an_unknown_field_fails_clearly(workspace):
    result = _cli("funnels", "show", "typo", "-w", workspace)
    assert isinstance(result.exception, ConfigError)  # `cx360` prints it as one line and exits 1
    assert "unknown event field(s) 'pth'" in str(result.exception)
    assert "known: name, channel, amount, source, ts, form, path, properties.KEY" in str(result.exception)
    unknown = _cli("funnels", "show", "nope", "-w", workspace)
    assert isinstance(unknown.exception, NotFoundError)
    assert "declared funnels: card_application, typo" in str(unknown.exception)


def test_forms_on_the_command_line(workspace):
    result = _cli("forms", "show", "card", "-w", workspace, "--format", "json")
    assert result.exit_code == 0, result.output
    [card] = json.loads(result.stdout)
    assert (card["starts"], card["submitted"], card["submit_rate"]) == (2, 2, 1.0)
    assert card["median_seconds_to_submit"] == pytest.approx((600 + 864000) / 2)
    missing = _cli("forms", "show", "nope", "-w", workspace)
    assert isinstance(missing.exception, NotFoundError) and "forms: card" in str(missing.exception)


@pytest.fixture
def copy(workspace, tmp_path):
    """A copy of the workspace for a test that changes it."""
    target = tmp_path / "ws"
    shutil.copytree(workspace, target)
    return target


def _export(ws, *args):
    return _cli("segments", "export", *args, "-w", ws)


def _said(result) -> str:
    return " ".join(result.stderr.split())  # unwrapped


def test_an_export_without_a_purpose_is_the_members_ids(workspace, tmp_path):
    out = tmp_path / "spenders.csv"
    result = _export(workspace, "spenders", "-o", out)
    assert result.exit_code == 0, result.output
    rows = pacsv.read_csv(out).to_pylist()
    assert [list(r) for r in rows] == [["profile_id", "entered_at"]]
    assert "for profiling; identifiers: none); 0 withheld" in _said(result)
    history = _cli("segments", "history", "spenders", "-w", workspace, "--format", "json")
    assert [(r["size"], r["entered"], r["left"]) for r in json.loads(history.stdout)] == [(1, 1, 0)]


def test_an_export_carries_what_the_channel_reaches_and_only_with_consent(copy, tmp_path):
    out = tmp_path / "spenders.parquet"
    refused = _export(copy, "spenders", "-o", out, "--purpose", "marketing", "--channel", "sms")
    assert refused.exit_code == 0, refused.output
    assert pq.read_table(out).num_rows == 0 and "1 withheld by consent" in _said(refused)  # marketing is opt-in
    granted = _cli("consents", "grant", "gleb@x.ru", "--purpose", "marketing", "--channel", "sms", "-w", copy)
    assert granted.exit_code == 0, granted.output
    assert _export(copy, "spenders", "-o", out, "--purpose", "marketing", "--channel", "sms").exit_code == 0
    assert pq.read_table(out).select(["phone"]).to_pylist() == [{"phone": "+79160000004"}]
    assert (
        _export(copy, "spenders", "-o", out, "--purpose", "marketing", "--channel", "email", "--hashed").exit_code == 0
    )
    rows = pq.read_table(out).to_pylist()
    assert rows == []  # consent by SMS is not consent by e-mail
    assert (
        _cli("consents", "grant", "gleb@x.ru", "--purpose", "marketing", "--channel", "email", "-w", copy).exit_code
        == 0
    )
    assert (
        _export(copy, "spenders", "-o", out, "--purpose", "marketing", "--channel", "email", "--hashed").exit_code == 0
    )
    rows = pq.read_table(out).to_pylist()
    assert [r["email_sha256"] for r in rows] == [hashlib.sha256(b"gleb@x.ru").hexdigest()]
    assert "email" not in rows[0] and "phone_sha256" not in rows[0]
    audit = _cli("audit", "-w", copy, "--format", "json")
    assert "segments export" in audit.stdout


def test_a_failed_or_stale_segment_is_not_exported(copy, tmp_path):
    config = copy / "cx360.toml"
    config.write_text(config.read_text() + '\n[[segments]]\nname = "broken"\nwhere = "no_such_trait > 1"\n')
    with Workspace(copy) as ws:
        evaluate(ws)
    failed = _export(copy, "broken", "-o", tmp_path / "b.csv")
    assert isinstance(failed.exception, StageNotRunError)
    assert "failed at its last evaluation" in str(failed.exception) and "no_such_trait" in str(failed.exception)
    with Workspace(copy) as ws:
        build(ws, dt.datetime(2025, 7, 1))
    stale = _export(copy, "spenders", "-o", tmp_path / "s.csv")
    assert isinstance(stale.exception, StageNotRunError) and "is stale" in str(stale.exception)
    assert not (tmp_path / "s.csv").exists() and not (tmp_path / "b.csv").exists()


@pytest.fixture
def pg_url():
    url = os.environ.get("CX360_TEST_PG_URL")
    if not url:
        if os.environ.get("CX360_TEST_SERVICES") == "1":
            pytest.fail("CX360_TEST_SERVICES=1 but CX360_TEST_PG_URL is not set")
        pytest.skip("no PostgreSQL: set CX360_TEST_PG_URL (see .ci/start-postgres)")
    return url


def test_a_postgresql_table_follows_the_segment_and_a_hand_edit_is_detected(copy, pg_url, monkeypatch):
    import sqlalchemy as sa

    table = f"sms_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("CX360_DESTINATION_URL", pg_url)
    db = sa.create_engine(pg_url)

    def sync(*extra):
        args = ["segments", "sync", "spenders", "--table", table, "--purpose", "marketing", "--channel", "sms"]
        result = _cli(*args, *extra, "-w", copy, "--format", "json")
        return json.loads(result.stdout) if result.exit_code == 0 else result

    def rows():
        with db.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(f"SELECT profile_id, phone FROM {table}"))]

    def consent(status):
        assert (
            _cli("consents", status, "gleb@x.ru", "--purpose", "marketing", "--channel", "sms", "-w", copy).exit_code
            == 0
        )

    consent("grant")
    first = sync()
    assert (first["added"], first["removed"], first["rows"]) == (1, 0, 1)
    [(gleb, phone)] = rows()
    assert phone == "+79160000004"
    assert sync()["added"] == 0  # nothing changed, nothing written
    with db.begin() as conn:
        conn.execute(sa.text(f"INSERT INTO {table} (profile_id, phone) VALUES ('P-by-hand', '+70000000000')"))
    refused = sync()
    assert isinstance(refused.exception, DataError)
    assert "changed by hand since the last sync (1 rows added, 0 removed, 0 edited)" in str(refused.exception)
    assert len(rows()) == 2  # left alone
    forced = sync("--force")
    assert forced["forced"] and rows() == [(gleb, "+79160000004")]
    consent("withdraw")
    assert (sync()["removed"], rows()) == (1, [])
    with db.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE {table}"))
