"""What the PII vault costs a read: profile lookups by e-mail and searches by last name, in process
(cx360.api.services, the code behind the API and the dashboard), on the demo bank with the vault off
and the same bank with it on, side by side in one run (the four readers in turn, request by request);
and the serving index's build time.

A role with `pii` (admin) reads clear values (with the vault on: one reveal of the golden record and
one of the identifiers per lookup); a role without it (analyst) reads tokens and never opens the vault.

    python benchmarks/bench_vault_read.py                       # 60 customers, 300 lookups per role
    python benchmarks/bench_vault_read.py --customers 300 --requests 1000
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from cx360.api import index, services
from cx360.api.access import create_key
from cx360.api.app import open_context
from cx360.demo import generate_world
from cx360.pipeline import run
from cx360.privacy.vault import Vault
from cx360.workspace import Workspace


def build(base: Path, customers: int) -> dict[str, Path]:
    off, on = base / "off", base / "on"
    generate_world(off, customers=customers, seed=3)
    shutil.copytree(off, on)
    toml = on / "cx360.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + "\n[privacy]\nvault = true\n", encoding="utf-8")
    for root in (off, on):
        with Workspace(root) as ws:
            assert run(ws).ok, root
    return {"off": off, "on": on}


def people(off: Path) -> list[tuple[str, str]]:
    """(e-mail, last name) of every profile that has both, from the vault-off bank."""
    with Workspace(off, read_only=True) as ws:
        rows = ws.engine.table("profiles").select("identifiers", "last_name").to_pyarrow().to_pylist()
    out = []
    for r in rows:
        emails = json.loads(r["identifiers"] or "{}").get("email")
        if emails and r["last_name"]:
            out.append((emails[0], r["last_name"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=60)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        banks = build(Path(tmp), args.customers)
        who = people(banks["off"])
        built, readers, contexts = {}, {}, []
        for name, root in banks.items():
            with Workspace(root) as ws:
                vault = Vault.of(ws)
            started = time.perf_counter()
            index.ensure(root / "warehouse.duckdb", force=True, vault=vault)
            built[name] = time.perf_counter() - started
            if vault is not None:
                vault.close()
            keys = {role: create_key(root, role, role)[1] for role in ("admin", "analyst")}
            ctx, _ = open_context(root)
            ctx.search_limit.rate = ctx.search_limit.burst = 10**9  # measure the read, not the limit
            contexts.append(ctx)
            for role, key in keys.items():
                readers[(name, role)] = (ctx, ctx.keys.authenticate(key))
        look = {r: [] for r in readers}
        search = {r: [] for r in readers if readers[r][1].can("pii")}
        try:
            for i in range(args.requests):  # every reader in turn, so that load on the machine falls on all alike
                email, last = who[i % len(who)]
                for r, (ctx, principal) in readers.items():
                    started = time.perf_counter()
                    services.get_profile(ctx, principal, email, kind="email")
                    look[r].append((time.perf_counter() - started) * 1000)
                    if r in search:
                        started = time.perf_counter()
                        services.search(ctx, principal, last)
                        search[r].append((time.perf_counter() - started) * 1000)
        finally:
            for ctx in contexts:
                ctx.close()
        print(
            f"{args.customers} customers, {len(who)} people with an e-mail and a last name, {args.requests} reads each"
        )
        print(f"{'vault':6} {'role':8} {'lookup p50':>11} {'p99':>8} {'search p50':>11} {'index build':>12}")
        for (name, role), times in look.items():
            p99 = statistics.quantiles(times, n=100)[98]
            shown = f"{statistics.median(search[(name, role)]):9.2f}ms" if (name, role) in search else f"{'403':>11}"
            print(f"{name:6} {role:8} {statistics.median(times):9.2f}ms {p99:6.2f}ms {shown} {built[name]:10.2f} s")


if __name__ == "__main__":
    main()
