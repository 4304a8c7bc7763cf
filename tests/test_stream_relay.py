"""The relay from a shared Redis stream into a durable sink, against real redis-server processes:
everything moves and is acknowledged only once the sink has it; a relay that dies between the two
leaves its batch to the next one (landed twice, never lost); a sink or source that goes away is
waited for."""

from __future__ import annotations

import json
import threading
import time

import pytest
from redis_server import RedisServer

from cx360.stream.redis_transport import RedisTransport
from cx360.stream.relay import GROUP, Relay


@pytest.fixture
def servers(tmp_path):
    a, b = RedisServer(tmp_path / "a").start(), RedisServer(tmp_path / "b").start()
    yield a, b
    a.kill()
    b.kill()


def _messages(n: int, start: int = 0) -> list[bytes]:
    return [json.dumps({"messageId": f"m{i}"}).encode() for i in range(start, start + n)]


def _landed(sink: RedisTransport) -> list[bytes]:
    return [f[b"m"] for _, f in sink._client.xrange(sink.stream)]


def test_everything_moves_and_is_acknowledged_after_it_landed(servers):
    a, b = servers
    source = RedisTransport(a.url, "events", groups=[GROUP])
    sink = RedisTransport(b.url, "landed")
    source.append(_messages(250))
    relay = Relay(source, sink, consumer="r1", batch=100)
    assert relay.drain() == 250
    assert _landed(sink) == _messages(250)
    assert source.lag(GROUP) == 0 and relay.stats.batches == 3


def test_a_relay_that_died_before_acknowledging_is_landed_again_by_the_next(servers):
    a, b = servers
    source = RedisTransport(a.url, "events", groups=[GROUP])
    sink = RedisTransport(b.url, "landed")
    source.append(_messages(30))
    # what a relay killed between landing and acknowledging leaves behind
    dead = source.read(GROUP, "dead", count=10)
    sink.append([e.message for e in dead])
    time.sleep(0.2)
    survivor = Relay(source, sink, consumer="r2", batch=100, reclaim_after_ms=100)
    assert survivor.drain() == 30
    landed = _landed(sink)
    assert set(landed) == set(_messages(30))  # nothing lost
    assert len(landed) == 40  # the dead relay's batch twice: the warehouse merge keeps one
    assert source.lag(GROUP) == 0


def test_a_sink_or_source_that_goes_away_is_waited_for(servers):
    a, b = servers
    source = RedisTransport(a.url, "events", groups=[GROUP])
    sink = RedisTransport(b.url, "landed")
    relay = Relay(source, sink, consumer="r", batch=50)
    worker = threading.Thread(target=relay.run, kwargs={"block_ms": 100})
    worker.start()
    try:
        source.append(_messages(50))
        b.kill()  # the sink refuses: the relay keeps its batch and retries
        source.append(_messages(50, 50))
        time.sleep(0.5)
        b.start()
        a.kill()  # the source cannot be reached: the relay waits
        time.sleep(0.3)
        a.start()
        source.append(_messages(50, 100))
        deadline = time.monotonic() + 15
        while source.lag(GROUP) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        relay.stop()
        worker.join(10)
    assert source.lag(GROUP) == 0
    assert set(_landed(sink)) == set(_messages(150))
    assert relay.stats.retries > 0
