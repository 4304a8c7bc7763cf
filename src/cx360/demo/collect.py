"""The demo's web and app activity replayed through the collector, with the real Segment client.

`cx360 demo --through-collector` writes the bank as usual, then turns the web and app exports into
the Segment calls a site and an app would have made (page, track, screen, with the cookie or the
device as anonymousId and the customer number once the person logs in), takes the two sources out of
cx360.toml and their files out of data/, starts `cx360 serve` on a free port of 127.0.0.1, and sends
every call with segment-analytics-python. The pipeline then drains the collector's event log into
`events` like any other source, and the demo shows what was sent, acknowledged and landed.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from cx360.config import CONFIG_FILE, load_config
from cx360.errors import Cx360Error, MissingDependencyError

SOURCES = ("web", "app")
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) cx360-demo"
APP_CONTEXT = {"app": {"name": "demobank", "version": "5.2.0"}, "os": {"name": "Android"}}


@dataclass(frozen=True)
class Call:
    """One SDK call: the client method (page, track, screen) and its arguments."""

    method: str
    kwargs: dict


@dataclass
class Replay:
    """What one source's calls came to: queued by the client, refused by it, acknowledged by cx360."""

    source: str
    sent: int = 0
    failed: list[str] = field(default_factory=list)  # messageIds the client gave up on (on_error)
    message_ids: set[str] = field(default_factory=set)

    @property
    def acknowledged(self) -> int:
        return self.sent - len(self.failed)


def calls_from_world(root: Path) -> dict[str, list[Call]]:
    """The web and app exports of the bank in `root` as the Segment calls that produced them; event names
    are those of the two sources' own mappings in cx360.toml, so both roads give the same events."""
    config = load_config(root / CONFIG_FILE)
    names = {s.name: dict(s.events.name.values) for s in config.sources if s.name in SOURCES and s.events}
    web: list[Call] = []
    for path in sorted((root / "data" / "web").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue  # a line cut short in the export: no client could have sent it
            web.append(_web_call(row, names.get("web", {})))
    app = [_app_call(r, names.get("app", {})) for r in pq.read_table(root / "data" / "app_events.parquet").to_pylist()]
    return {"web": web, "app": app}


def detach_sources(root: Path) -> None:
    """Take the web and app file sources out of the workspace: their activity arrives through the collector."""
    toml = (root / CONFIG_FILE).read_text(encoding="utf-8")
    head, *blocks = toml.split("\n# ")
    kept = [b for b in blocks if not any(f'\nname = "{s}"\n' in b for s in SOURCES)]
    note = "Web and app activity: collected by `cx360 serve` (Segment calls), drained by `cx360 ingest`.\n"
    (root / CONFIG_FILE).write_text("\n# ".join([head, note, *kept]), encoding="utf-8")
    for path in (root / "data" / "web").glob("*.jsonl"):
        path.unlink()
    (root / "data" / "web").rmdir()
    (root / "data" / "app_events.parquet").unlink()


@contextmanager
def serving(root: Path, log: Path) -> Iterator[str]:
    """`cx360 serve` over the workspace on a free port of 127.0.0.1, for as long as the block runs; its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with open(log, "w", encoding="utf-8") as err:
        proc = subprocess.Popen(
            # the demo loads what it sent with `cx360 run` right after: no need to apply it online as well
            [
                sys.executable,
                "-m",
                "cx360",
                "serve",
                "-w",
                str(root),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-online",
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        try:
            _wait_healthy(url, proc, log)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def replay(url: str, keys: dict[str, str], calls: dict[str, list[Call]]) -> list[Replay]:
    """Send each source's calls with its write key through segment-analytics-python, in batches of 100,
    retried by the client as it does for any server; returns what each source's client reported."""
    try:
        from segment.analytics import Client
    except ImportError as exc:
        raise MissingDependencyError("cx360 demo --through-collector", "demo") from exc
    results = []
    for source, todo in calls.items():
        result = Replay(source)
        lock = threading.Lock()

        def on_error(exc, batch, result=result, lock=lock):  # type: ignore[no-untyped-def]
            with lock:
                result.failed.extend(m["messageId"] for m in batch)

        client = Client(
            keys[source], host=url, on_error=on_error, gzip=True, upload_size=100, max_queue_size=len(todo) + 1
        )
        for call in todo:
            ok, message = getattr(client, call.method)(**call.kwargs)
            if ok:
                result.sent += 1
                result.message_ids.add(message["messageId"])
        client.shutdown()  # every queued message sent (or reported to on_error)
        results.append(result)
    return results


def _web_call(row: dict, names: dict[str, str]) -> Call:
    kind = row["type"]
    common = {
        "anonymous_id": row["anonymous_id"],
        "user_id": row.get("user_id"),
        "timestamp": _time(row["timestamp"]),
        "message_id": row["message_id"],
        "properties": row.get("properties") or {},
    }
    path = common["properties"].get("path")
    context = {"userAgent": USER_AGENT, **({"page": {"path": path}} if path else {})}
    if names.get(kind) == "page_viewed":
        return Call("page", {**common, "name": path, "context": context})
    return Call("track", {**common, "event": names.get(kind, kind), "context": context})


def _app_call(row: dict, names: dict[str, str]) -> Call:
    kind = row["event"]
    common = {
        "anonymous_id": row["device"],
        "user_id": row.get("customer"),
        "timestamp": row["occurred_at"].replace(tzinfo=dt.UTC),
        "message_id": row["event_uuid"],
        "context": {**APP_CONTEXT, "device": {"id": row["device"]}},
    }
    if names.get(kind) == "page_viewed":
        return Call("screen", {**common, "name": row["screen"]})
    return Call("track", {**common, "event": names.get(kind, kind), "properties": {"screen": row["screen"]}})


def _time(text: str) -> dt.datetime:
    stamp = dt.datetime.fromisoformat(text)
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
                raise Cx360Error(f"cx360 serve did not start on {url}: {tail.strip() or 'no output'}") from None
            time.sleep(0.2)
