"""The Redis Streams transport against real redis-server processes: append, read, acknowledge and trim;
a consumer killed with entries pending and another taking them over; Redis killed and restarted with
nothing acknowledged lost, and a clear retryable error while it is down; a server that is not durable."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest
from redis_server import RedisServer

from cx360.errors import ConfigError, TransportUnavailableError
from cx360.stream.redis_transport import RedisTransport

GROUP = "warehouse"


@pytest.fixture
def server(tmp_path):
    s = RedisServer(tmp_path / "redis").start()
    yield s
    s.kill()


@pytest.fixture
def transport(server):
    t = RedisTransport(server.url, "cx360:test:events", groups=[GROUP])
    yield t
    t.close()


def _messages(n: int, start: int = 0) -> list[bytes]:
    return [json.dumps({"messageId": f"m{i}", "type": "track"}).encode() for i in range(start, start + n)]


def test_append_read_ack_in_order_and_trim_keeps_what_is_pending(transport):
    offsets = transport.append(_messages(10))
    assert len(offsets) == 10 and offsets == sorted(offsets, key=lambda o: tuple(map(int, o.split("-"))))
    assert transport.lag(GROUP) == 10

    got = transport.read(GROUP, "c1", count=6)
    assert [e.offset for e in got] == offsets[:6]
    assert [e.message for e in got] == _messages(6)
    assert transport.lag(GROUP) == 10  # delivered but not acknowledged still counts

    transport.ack(GROUP, [offsets[0], offsets[1], offsets[3]])
    assert transport.lag(GROUP) == 7
    # entries 0 and 1 are acknowledged and trimmed; 2 is pending, so it and all after it stay
    assert transport._client.xlen(transport.stream) == 8

    rest = transport.read(GROUP, "c1", count=100)
    assert [e.offset for e in rest] == offsets[6:]
    transport.ack(GROUP, [offsets[2], *offsets[4:]])
    assert transport.lag(GROUP) == 0
    assert transport._client.xlen(transport.stream) == 0
    assert transport.read(GROUP, "c1", count=10, block_ms=50) == []
    assert transport.size_bytes() > 0


def test_entries_appended_before_the_first_read_reach_a_declared_group(server):
    producer = RedisTransport(server.url, "s", groups=[GROUP])
    producer.append(_messages(3))
    consumer = RedisTransport(server.url, "s", groups=[GROUP])
    assert [e.message for e in consumer.read(GROUP, "c", count=10)] == _messages(3)
    # a second group sees the same entries independently, and trimming waits for both
    other = consumer.read("audit", "c", count=10)
    assert len(other) == 3
    consumer.ack(GROUP, [e.offset for e in other])
    assert consumer.lag(GROUP) == 0 and consumer.lag("audit") == 3
    assert consumer._client.xlen("s") == 3


def test_a_consumer_killed_with_entries_pending_is_taken_over(server, transport):
    transport.append(_messages(20))
    code = (
        "import sys, time\n"
        "from cx360.stream.redis_transport import RedisTransport\n"
        f"t = RedisTransport({server.url!r}, {transport.stream!r})\n"
        f"got = t.read({GROUP!r}, 'doomed', count=8)\n"
        "print(len(got), flush=True)\n"
        "time.sleep(60)\n"
    )
    doomed = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert doomed.stdout.readline().strip() == "8"
    finally:
        doomed.kill()
        doomed.wait()

    # the survivor first gets new entries only: the dead one's are not idle long enough yet
    first = transport.read(GROUP, "survivor", count=4, reclaim_after_ms=10_000)
    assert [e.message for e in first] == _messages(4, 8)
    transport.ack(GROUP, [e.offset for e in first])
    time.sleep(0.25)
    taken = transport.read(GROUP, "survivor", count=100, reclaim_after_ms=200)
    assert sorted(e.message for e in taken[:8]) == sorted(_messages(8))  # the reclaimed ones come first
    assert [e.message for e in taken[8:]] == _messages(8, 12)
    transport.ack(GROUP, [e.offset for e in taken])
    assert transport.lag(GROUP) == 0


def test_a_consumer_restarting_under_its_name_takes_back_its_own_pending(server, transport):
    transport.append(_messages(5))
    transport.read(GROUP, "c", count=3)
    again = RedisTransport(server.url, transport.stream)  # the same consumer, after a restart
    got = again.read(GROUP, "c", count=10, reclaim_after_ms=60_000)
    assert [e.message for e in got] == _messages(5)


def test_redis_killed_and_restarted_loses_nothing_acknowledged(server, transport):
    acknowledged: list[bytes] = []
    refused: list[str] = []
    stop = threading.Event()

    def produce() -> None:
        i = 0
        while not stop.is_set():
            batch = _messages(10, i)
            try:
                transport.append(batch)
            except TransportUnavailableError as exc:
                refused.append(str(exc))
                time.sleep(0.02)
                continue  # a client retries the same batch
            acknowledged.extend(batch)
            i += 10

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        time.sleep(0.3)
        server.kill()  # SIGKILL: only what Redis fsynced survives
        time.sleep(0.3)
        server.start()
        time.sleep(0.3)
    finally:
        stop.set()
        producer.join(30)

    assert refused and "cannot be reached" in refused[0] and "try again later" in refused[0]
    after = len(acknowledged)
    assert after > 0
    reader = RedisTransport(server.url, transport.stream)
    got = []
    while batch := reader.read(GROUP, "c", count=1000):
        got += batch
        reader.ack(GROUP, [e.offset for e in batch])
    stored = [e.message for e in got]
    assert set(acknowledged) <= set(stored)
    assert len(stored) - len(set(stored)) <= 10  # at most the one batch in flight at the kill, retried


def test_acknowledgements_survive_a_restart(server, transport):
    offsets = transport.append(_messages(6))
    transport.read(GROUP, "c", count=6)
    transport.ack(GROUP, offsets[:4])
    server.kill()
    with pytest.raises(TransportUnavailableError):
        transport.append(_messages(1, 6))
    server.start()
    assert transport.append(_messages(1, 6))
    later = RedisTransport(server.url, transport.stream)
    assert transport.lag(GROUP) == 3
    got = later.read(GROUP, "other", count=10, reclaim_after_ms=0)
    assert sorted(e.message for e in got) == sorted(_messages(3, 4))


def test_a_server_that_does_not_fsync_is_refused(tmp_path, caplog):
    server = RedisServer(tmp_path / "r", "--appendonly", "yes", "--appendfsync", "everysec").start()
    try:
        with pytest.raises(ConfigError, match=r"appendfsync everysec.*appendfsync always"):
            RedisTransport(server.url, "s")
        t = RedisTransport(server.url, "s", require_durable=False)
        assert t.durable is False
        assert "can be lost" in caplog.text
    finally:
        server.kill()


def test_an_unreachable_server_is_a_retryable_error(tmp_path):
    from redis_server import free_port

    with pytest.raises(TransportUnavailableError, match="cannot be reached") as info:
        RedisTransport(f"redis://:secret@127.0.0.1:{free_port()}/0", "s", timeout_s=0.5)
    assert info.value.http_status == 503 and info.value.retryable
    assert "secret" not in str(info.value)
