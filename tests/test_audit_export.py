"""`cx360 audit export`: the audit log as JSON lines for a SIEM, oldest first, with the entries of a
process killed before its writer drained them, and `--since` for the next window."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from typer.testing import CliRunner

from cx360.cli import app

# A process that journals entries (each fsync'd, as a server does before it answers) and is killed
# before its writer thread drains them into access.sqlite.
KILLED = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from cx360.api.access import Principal
    from cx360.api.audit import AuditLog
    log = AuditLog(Path(sys.argv[1]), interval=3600)
    log._stop.set(); log._wake.set(); log._thread.join()  # the writer is gone: entries stay journaled
    for i in range(5):
        log.record(Principal("k1", "siem-test", "agent"), "profile", f"P{i:04d}", ["identifiers.email"], "10.0.0.1")
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_export_holds_every_entry_including_those_of_a_killed_process(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    (root / "cx360.toml").write_text('[workspace]\nname = "bank"\n', encoding="utf-8")
    killed = subprocess.run([sys.executable, "-c", KILLED, str(root)], check=False)
    assert killed.returncode == -9
    [journal] = (root / "audit-journal").glob("*.jsonl")
    assert journal.read_text(encoding="utf-8").count("\n") == 5, "the entries wait in the dead process's journal"

    out = tmp_path / "audit.jsonl"
    result = CliRunner().invoke(app, ["audit", "export", "-w", str(root), "-o", str(out)])
    assert result.exit_code == 0, result.output
    entries = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [e["profile_id"] for e in entries] == [f"P{i:04d}" for i in range(5)], "all of them, oldest first"
    first = entries[0]
    assert first["source"] == "cx360" and first["workspace"] == "bank" and len(first["id"]) == 32
    assert (first["key_id"], first["role"], first["fields"], first["client"]) == (
        "k1",
        "agent",
        ["identifiers.email"],
        "10.0.0.1",
    )
    assert not list((root / "audit-journal").glob("*.jsonl")), "the drained journal is removed"

    since = entries[3]["at"]
    result = CliRunner().invoke(app, ["audit", "export", "-w", str(root), "-o", "-", "--since", since])
    assert result.exit_code == 0
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == [
        e["id"] for e in entries if e["at"] >= since
    ]
    bad = CliRunner().invoke(app, ["audit", "export", "-w", str(root), "-o", str(out), "--since", "yesterday"])
    assert bad.exit_code == 1 and "--since: expected an ISO date" in str(bad.exception)
    shown = CliRunner().invoke(app, ["audit", "-w", str(root), "--format", "json"])
    assert shown.exit_code == 0 and len(json.loads(shown.stdout)) == 5, "`cx360 audit` still shows the log"
