"""The `format = "segment"` preset on a synthetic Segment export: ingest rate and stitching.

    python benchmarks/bench_segment.py --users 20000 --messages 500000

Writes N seeded messages of all six call types for U people (each with 1-3 browsers or app installs,
anonymous before they sign in, some tied in by alias calls, a few malformed lines) as JSON Lines,
then measures `cx360 ingest` (messages/s, with read = loaded + quarantined + duplicates) and
`cx360 identity resolve`, and checks stitching against the generator's truth: the share of
anonymous events (anonymousId only) that land in their person's profile, and the share that land
in someone else's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import tempfile
import time
from pathlib import Path

from cx360.identity.resolve import resolve
from cx360.profiles.events import attribute
from cx360.sources.ingest import ingest
from cx360.workspace import Workspace

TOML = """
[workspace]
name = "bench"
[identity]
probabilistic = false
[[sources]]
name = "web"
kind = "jsonl"
path = "export.jsonl"
format = "segment"
"""
EVENTS = ("login", "form_started", "form_submitted", "form_abandoned")


def export(path: Path, users: int, messages: int, seed: int) -> dict[str, str]:
    """Write the export; return each anonymous message's person (messageId -> userId)."""
    rng = random.Random(seed)
    start = dt.datetime(2025, 1, 1)
    devices = {u: [f"anon-{u}-{k}" for k in range(rng.randint(1, 3))] for u in range(users)}
    truth: dict[str, str] = {}
    with path.open("w", encoding="utf-8") as f:
        for n in range(messages):
            u = rng.randrange(users)
            anon = rng.choice(devices[u])
            user = f"u{u:07d}"
            ts = (start + dt.timedelta(seconds=rng.randrange(300 * 86400))).isoformat() + "Z"
            app = anon.endswith("-2")
            context = {"device": {"id": anon}, "app": {"name": "bank"}} if app else {"userAgent": "Mozilla/5.0"}
            base = {"messageId": f"m{n:09d}", "timestamp": ts, "context": context}
            r = rng.random()
            if r < 0.002:
                f.write('{"type": "track", "messageId": "cut\n')
                continue
            if r < 0.05:
                msg = {**base, "type": "identify", "userId": user, "anonymousId": anon,
                       "traits": {"email": f"{user}@example.org", "firstName": "A", "plan": "gold"}}  # fmt: skip
            elif r < 0.07:
                msg = {**base, "type": "alias", "previousId": anon, "userId": user}
            elif r < 0.08:
                msg = {**base, "type": "group", "userId": user, "groupId": f"g{u % 100}"}
            elif r < 0.5:  # anonymous: only the device knows who it is
                call = "screen" if app else "page"
                msg = {**base, "type": call, "anonymousId": anon, "name": "Home", "properties": {"path": "/"}}
                truth[msg["messageId"]] = user
            else:
                msg = {**base, "type": "track", "userId": user, "anonymousId": anon, "event": rng.choice(EVENTS),
                       "sentAt": ts, "receivedAt": ts}  # fmt: skip
            f.write(json.dumps(msg) + "\n")
    return truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--messages", type=int, default=500_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "cx360.toml").write_text(TOML, encoding="utf-8")
        began = time.perf_counter()
        truth = export(root / "export.jsonl", args.users, args.messages, args.seed)
        print(
            f"export: {args.messages:,} messages, {args.users:,} people, written in {time.perf_counter() - began:.1f} s"
        )
        with Workspace(root) as ws:
            began = time.perf_counter()
            [report] = ingest(ws)
            seconds = time.perf_counter() - began
            print(
                f"ingest: {seconds:.1f} s, {report.read / seconds:,.0f} messages/s; read {report.read:,} = loaded "
                f"{report.loaded:,} + quarantined {report.quarantined:,} + duplicates {report.duplicates:,}"
            )
            began = time.perf_counter()
            identity = resolve(ws)
            print(f"identity resolve: {time.perf_counter() - began:.1f} s, {identity.profiles:,} profiles")
            engine = ws.engine
            mapping = engine.table("identity_map")
            people = engine.to_arrow(mapping.filter(mapping.kind == "customer_no"), step="bench").to_pylist()
            profile_of = {r["node"].split(":", 1)[1]: r["profile_id"] for r in people}
            got = engine.to_arrow(attribute(engine.table("events"), mapping), step="bench").select(
                ["event_id", "profile_id"]
            )
            found = dict(zip(got["event_id"].to_pylist(), got["profile_id"].to_pylist(), strict=True))
            right = sum(found.get(m) == profile_of.get(u.upper()) for m, u in truth.items())
            wrong = sum(m in found and found[m] != profile_of.get(u.upper()) for m, u in truth.items())
            print(
                f"stitching: {len(truth):,} anonymous page and screen views; in their person's profile "
                f"{right / len(truth):.2%}, in another's {wrong / len(truth):.2%}"
            )


if __name__ == "__main__":
    main()
