"""The collector under the real segment-analytics-python client: sustained acceptance rate of
`cx360 serve` (events/s acknowledged) with P load processes sending track calls in batches of 100,
p50/p99 of a batch's acknowledgement (the SDK's HTTP post, timed around it); and the kill -9 run:
the server killed with SIGKILL under that load and restarted, then sent, acknowledged, found in the
warehouse after `cx360 ingest`, lost, duplicated. Goal: >= 10,000 events/s on 2 cores (RudderStack:
1.7K/s on 2 cores); 0 lost, 0 duplicated.

With `--transport redis` the same runs go through Redis Streams ([collector] transport = "redis",
a durable redis-server started on 127.0.0.1, the server's own relay landing the stream in the
event log), plus a kill -9 of redis-server itself under load.

    python benchmarks/bench_collector.py --producers 2 --seconds 10 [--transport redis]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(root: Path, port: int, log, workers: int = 1) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cx360", "serve", "-w", str(root), "--port", str(port), "--workers", str(workers)],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("cx360 serve did not start") from None
            time.sleep(0.1)


def health(port: int) -> dict:
    return json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10))["collector"]


def produce(key: str, url: str, producer: int, seconds: float, out: mp.Queue) -> None:
    """Send track calls through the real SDK for `seconds`, as fast as its queue takes them."""
    import logging

    import segment.analytics.consumer as consumer
    from segment.analytics import Client

    logging.getLogger("segment").setLevel(logging.CRITICAL)  # "queue is full" is the load working
    latencies: list[tuple[float, float]] = []  # (when answered, seconds)
    failed: list[str] = []
    errors: list[str] = []  # why the SDK gave batches up
    real_post = consumer.post

    def timed_post(*args, **kwargs):
        began = time.perf_counter()
        try:
            return real_post(*args, **kwargs)
        finally:
            latencies.append((time.time(), time.perf_counter() - began))

    consumer.post = timed_post  # the SDK's own HTTP post, timed: a batch's acknowledgement
    client = Client(
        key,
        host=url,
        upload_size=100,
        upload_interval=0.01,
        thread=2,
        on_error=lambda e, batch: (failed.extend(m["messageId"] for m in batch), errors.append(repr(e)[:160])),
    )
    sent, i = [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        mid = f"p{producer}-{i:09d}"
        ok, _ = client.track(
            f"c{i % 20000:08d}",
            "login",
            {"product_id": f"sku-{i % 977}", "price": 19.99, "currency": "EUR"},
            anonymous_id=f"anon-{i % 5000:06d}",
            message_id=mid,
        )
        if ok:
            sent.append(mid)
            i += 1
        else:
            time.sleep(0.001)  # the SDK's queue is full: wait as an application would
    client.flush()
    client.join()
    out.put({"sent": sent, "failed": failed, "errors": errors, "latencies": latencies})


def workspace(
    folder: Path, drain_seconds: float, redis_url: str | None = None, consume: bool = True
) -> tuple[Path, str]:
    from cx360.api.access import create_key
    from cx360.pipeline import run_stage
    from cx360.workspace import Workspace, init_workspace

    root = folder / "ws"
    init_workspace(root)
    with (root / "cx360.toml").open("a") as f:
        f.write(f"\n[collector]\ndrain_seconds = {drain_seconds}\nmax_lag = 100000000\n")
        if redis_url:
            # one stream per run: the runs share one redis-server
            f.write(f'transport = "redis"\nredis_url = "{redis_url}"\nredis_stream = "cx360:{folder.name}:events"\n')
            f.write(f"redis_consume = {str(consume).lower()}\n")
    with Workspace(root) as ws:
        run_stage(ws, "ingest")
    return root, create_key(root, "writer", "bench", source="web")[1]


def landed(root: Path) -> dict[str, int]:
    import duckdb

    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    try:
        return dict(con.sql("SELECT event_id, count(*) FROM events WHERE source = 'web' GROUP BY 1").fetchall())
    finally:
        con.close()


def ingest(root: Path) -> dict:
    r = subprocess.run(
        [sys.executable, "-m", "cx360", "ingest", "-w", str(root), "--format", "json"], capture_output=True, text=True
    )
    if r.returncode:
        raise SystemExit(f"cx360 ingest failed: {r.stderr[-2000:]}")
    return json.loads(r.stdout)


def landed_by_relay(port: int, timeout: float = 300) -> None:
    """With Redis as the transport: wait until the server's relay has landed the stream in the event log."""
    deadline = time.monotonic() + timeout
    while health(port).get("transport_lag", 0) and time.monotonic() < deadline:
        time.sleep(0.2)


def acceptance(args, folder: Path, workers: int) -> None:
    redis_url = args.redis.url if args.redis else None
    # the warehouse load is measured apart
    # and with Redis, so is the relay into the event log (`cx360 stream consume --once` afterwards)
    root, key = workspace(folder / f"rate{workers}", drain_seconds=0, redis_url=redis_url, consume=False)
    port = _port()
    url = f"http://127.0.0.1:{port}"
    warmup = 2.0
    out: mp.Queue = mp.Queue()
    procs = [
        mp.Process(target=produce, args=(key, url, p, warmup + args.seconds + 1, out)) for p in range(args.producers)
    ]
    with (folder / "rate.log").open("w") as log:
        server = serve(root, port, log, workers)
        try:
            for p in procs:
                p.start()
            time.sleep(warmup)
            a0, t0 = _accepted(port), time.time()
            time.sleep(args.seconds)
            a1, t1 = _accepted(port), time.time()
            results = [out.get() for _ in procs]
            for p in procs:
                p.join()
            total = _accepted(port)
        finally:
            server.terminate()
            server.wait()
    sent = sum(len(r["sent"]) for r in results)
    failed = sum(len(r["failed"]) for r in results)
    lat = sorted(x for r in results for at, x in r["latencies"] if t0 <= at <= t1)
    relay = None
    if redis_url:
        began = time.monotonic()
        consume = [sys.executable, "-m", "cx360", "stream", "consume", "-w", str(root), "--once"]
        subprocess.run(consume, check=True, capture_output=True)
        relay = time.monotonic() - began
    began = time.monotonic()
    report = ingest(root)
    seconds = time.monotonic() - began
    stage = report["stages"][0] if "stages" in report else report
    print(
        f"acceptance ({args.transport}): cx360 serve --workers {workers}; {args.producers} segment-analytics-python "
        "processes, "
        f"batches of 100; measured over {t1 - t0:.1f} s after {warmup:.0f} s of warm-up"
    )
    print(f"  sent {sent:,}  acknowledged by the server {total:,}  failed in the SDK {failed:,}")
    print(
        f"  sustained acceptance: {(a1 - a0) / (t1 - t0):,.0f} events/s   "
        "(goal >= 10,000; RudderStack 1.7K/s on 2 cores)"
    )
    accepted = total
    print(
        f"  batch acknowledgement: p50 {statistics.median(lat) * 1000:.1f} ms  "
        f"p99 {lat[int(len(lat) * 0.99)] * 1000:.1f} ms  over {len(lat):,} batches"
    )
    if relay is not None:
        print(
            f"  relay afterwards (`cx360 stream consume --once`): {total:,} events from Redis into the event log "
            f"in {relay:.1f} s = {total / relay:,.0f} events/s"
        )
    print(
        f"  drain afterwards (`cx360 ingest`): {accepted:,} events in {seconds:.1f} s"
        f" = {accepted / seconds:,.0f} events/s"
    )
    print(f"  ingest report: {json.dumps(stage)[:300]}")


def kill9(args, folder: Path, victim: str = "cx360 serve") -> None:
    """SIGKILL of `victim` (cx360 serve, or redis-server with --transport redis) half-way through the load."""
    redis_url = args.redis.url if args.redis else None
    root, key = workspace(folder / f"kill-{victim.split()[0]}", drain_seconds=1, redis_url=redis_url)
    port = _port()
    url = f"http://127.0.0.1:{port}"
    out: mp.Queue = mp.Queue()
    with (folder / "kill.log").open("w") as log:
        server = serve(root, port, log)
        procs = [mp.Process(target=produce, args=(key, url, p, args.seconds, out)) for p in range(args.producers)]
        for p in procs:
            p.start()
        # Redis down answers 503 with Retry-After (5 s): kill it early enough for the SDKs to retry within the run
        time.sleep(args.seconds / (4 if victim == "redis-server" else 2))
        if victim == "redis-server":
            args.redis.kill()
            time.sleep(1)
            args.redis.start()
        else:
            server.kill()
            server.wait()
            time.sleep(1)
            server = serve(root, port, log)
        results = [out.get() for _ in procs]
        for p in procs:
            p.join()
        landed_by_relay(port)
        server.terminate()
        server.wait()
    ingest(root)
    sent = {m for r in results for m in r["sent"]}
    failed = {m for r in results for m in r["failed"]}
    acknowledged = sent - failed
    rows = landed(root)
    lost = acknowledged - set(rows)
    doubled = sum(n - 1 for n in rows.values())
    print(f"kill -9 ({args.transport}): SIGKILL of {victim} under load, restarted; then `cx360 ingest`")
    print(f"  sent {len(sent):,}  acknowledged {len(acknowledged):,}  in the warehouse {len(rows):,}")
    print(
        f"  lost {len(lost):,}  duplicated {doubled:,}  given up by the SDK {len(failed):,}"
        "   (goal: 0 lost, 0 duplicated)"
    )
    errors = sorted({e for r in results for e in r["errors"]})
    if errors:
        print(f"  the SDK gave up on: {'; '.join(errors[:3])}")


def _accepted(port: int) -> int:
    """Messages the server's processes accepted so far (every worker's, from /metrics)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith('cx360_collector_messages{receipt="accepted"}'):
            return int(float(line.split()[-1]))
    raise SystemExit("no cx360_collector_messages in /metrics")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--producers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="cx360 serve --workers, one run each")
    parser.add_argument("--skip-kill", action="store_true")
    parser.add_argument("--transport", choices=["log", "redis"], default="log", help="[collector] transport")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="cx360-bench-collector-") as tmp:
        args.redis = None
        if args.transport == "redis":
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
            from redis_server import RedisServer

            args.redis = RedisServer(Path(tmp) / "redis").start()  # appendonly yes, appendfsync always
        try:
            for workers in args.workers:
                acceptance(args, Path(tmp), workers)
            if not args.skip_kill:
                kill9(args, Path(tmp))
                if args.redis:
                    kill9(args, Path(tmp), victim="redis-server")
        finally:
            if args.redis:
                args.redis.kill()


if __name__ == "__main__":
    main()
