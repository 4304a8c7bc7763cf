"""The Redis Streams transport on its own: how many Segment-sized messages per second it stores durably
(appendfsync always, as cx360 requires) in batches of 100 from P producer processes, with p50/p99
of one batch's append, next to the same load on appendfsync everysec (what durability costs); and
a SIGKILL of redis-server under that load: acknowledged, found after the restart, lost, duplicated.

    python benchmarks/bench_redis_transport.py --producers 2 --seconds 10
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from redis_server import DURABLE, RedisServer

from cx360.errors import TransportUnavailableError
from cx360.stream.redis_transport import RedisTransport

STREAM, GROUP, BATCH = "cx360:bench:events", "bench", 100


def message(producer: int, i: int) -> bytes:
    """A track call as the collector logs it (about 450 bytes)."""
    return json.dumps(
        {
            "type": "track",
            "event": "Product Viewed",
            "messageId": f"p{producer}-{i:012d}",
            "anonymousId": f"anon-{i % 5000:06d}",
            "userId": f"c{i % 20000:08d}",
            "timestamp": "2026-01-01T12:00:00.000Z",
            "properties": {"product_id": f"sku-{i % 977}", "price": 19.99, "currency": "EUR", "category": "cards"},
            "context": {"library": {"name": "analytics-python", "version": "2.3.3"}, "ip": "10.0.0.1"},
            "receivedAt": "2026-01-01T12:00:00.120Z",
            "cx360": {"source": "web", "key": "k1", "fingerprint": "0" * 64},
        },
        separators=(",", ":"),
    ).encode()


def produce(url: str, producer: int, seconds: float, out: mp.Queue) -> None:
    """Append batches for `seconds`; retry a refused batch as a client would. Reports what was acknowledged."""
    transport = RedisTransport(url, STREAM, groups=[GROUP], require_durable=False)
    latencies, acked, refused, i = [], [], 0, 0
    start = time.time()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        batch = [message(producer, j) for j in range(i, i + BATCH)]
        began = time.perf_counter()
        try:
            transport.append(batch)
        except TransportUnavailableError:
            refused += 1
            time.sleep(0.02)
            continue
        latencies.append(time.perf_counter() - began)
        acked.append(i)
        i += BATCH
    out.put((producer, latencies, acked, refused, start, time.time()))


def load(url: str, producers: int, seconds: float, during=None) -> tuple[list[float], dict[int, list[int]], int, float]:
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=produce, args=(url, p, seconds, out)) for p in range(producers)]
    for p in procs:
        p.start()
    if during is not None:
        during()
    results = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    elapsed = max(r[5] for r in results) - min(r[4] for r in results)  # the producers' own time, not their start-up
    latencies = [x for r in results for x in r[1]]
    acked = {r[0]: r[2] for r in results}
    return latencies, acked, sum(r[3] for r in results), elapsed


def rate(name: str, options: tuple[str, ...], producers: int, seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp), *options).start()
        try:
            latencies, acked, _, elapsed = load(server.url, producers, seconds)
        finally:
            server.kill()
    events = sum(len(a) for a in acked.values()) * BATCH
    q = statistics.quantiles(latencies, n=100)
    print(
        f"{name:<24} {events / elapsed:>10,.0f} events/s   batch append p50 {q[49] * 1000:6.2f} ms"
        f"   p99 {q[98] * 1000:6.2f} ms   ({events:,} events, {producers} producers, {elapsed:.1f} s)"
    )


def kill_test(producers: int, seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp)).start()

        def kill_and_restart() -> None:
            time.sleep(2 + seconds / 3)  # the producers start up first
            server.kill()  # SIGKILL
            time.sleep(1.0)
            server.start()

        try:
            _, acked, refused, _ = load(server.url, producers, seconds, during=kill_and_restart)
            reader = RedisTransport(server.url, STREAM, groups=[GROUP])
            found: dict[bytes, int] = {}
            while entries := reader.read(GROUP, "check", count=10_000):
                for e in entries:
                    mid = json.loads(e.message)["messageId"].encode()
                    found[mid] = found.get(mid, 0) + 1
                reader.ack(GROUP, [e.offset for e in entries])
        finally:
            server.kill()
    expected = {f"p{p}-{i + j:012d}".encode() for p, starts in acked.items() for i in starts for j in range(BATCH)}
    lost = len(expected - found.keys())
    duplicates = sum(n - 1 for n in found.values())
    print(
        f"SIGKILL of redis-server under load: acknowledged {len(expected):,}, found {len(expected & found.keys()):,}, "
        f"lost {lost}, stored twice {duplicates}, batches refused while it was down {refused}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--producers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; batches of {BATCH}")
    rate("appendfsync always", DURABLE, args.producers, args.seconds)
    rate("appendfsync everysec", ("--appendonly", "yes", "--appendfsync", "everysec"), args.producers, args.seconds)
    kill_test(args.producers, args.seconds)


if __name__ == "__main__":
    main()
