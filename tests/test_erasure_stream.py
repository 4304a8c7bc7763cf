"""Erasure reaches the event transport: a real redis-server, durable as cx360 requires."""

from __future__ import annotations

import json

from redis_server import RedisServer

from cx360.erasure.streams import erase_entries
from cx360.erasure.subject import Subject
from cx360.stream.redis_transport import RedisTransport


def test_a_persons_entries_leave_the_redis_stream_and_its_append_only_file(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    try:
        t = RedisTransport(server.url, "cx360:events", groups=["drain"])
        calls = [
            {"type": "identify", "userId": "c000186", "traits": {"email": "Ivan@Mail.ru"}, "messageId": "m1"},
            {"type": "track", "anonymousId": "ck-77", "event": "Page Viewed", "messageId": "m2"},
            {"type": "track", "userId": "C000200", "event": "Signed In", "messageId": "m3"},
            {"type": "track", "userId": "C000201", "properties": {"text": "thanks @ivan_p"}, "messageId": "m4"},
        ]
        t.append([json.dumps(c).encode() for c in calls])
        [pending] = t.read("drain", "c1", count=1)  # read, not acknowledged: theirs, and pending
        subject = Subject(
            profile_ids=["P1"],
            nodes=["customer_no:C000186", "email:ivan@mail.ru", "cookie_id:ck-77", "social_handle:ivan_p"],
            names=["Иван Петров"],
        )
        assert erase_entries(t, tmp_path, subject, "RU") == 3
        left = t.read("drain", "c2", count=10, reclaim_after_ms=0)
        assert [json.loads(e.message)["messageId"] for e in left] == ["m3"] and pending.offset != left[0].offset
        t.ack("drain", [e.offset for e in left])
        assert t.lag("drain") == 0  # nothing of theirs waits in the group
        files = [p for p in (tmp_path / "redis").rglob("*") if p.is_file() and p.name != "redis.log"]
        assert files and not any(b"ivan" in p.read_bytes().lower() or b"ck-77" in p.read_bytes() for p in files)
        t.close()
    finally:
        server.kill()


def test_a_persons_messages_leave_every_segment_of_the_event_log(tmp_path):
    from cx360.erasure.streams import erase_event_log
    from cx360.stream.eventlog import Partition

    subject = Subject(profile_ids=["P1"], nodes=["customer_no:C000186", "email:ivan@mail.ru"], names=[])
    calls = [
        {"type": "identify", "userId": "C000186", "traits": {"email": "ivan@mail.ru"}, "messageId": "m1"},
        {"type": "track", "userId": "C000200", "event": "Signed In", "messageId": "m2"},
        {"type": "track", "userId": "c000186", "event": "Signed In", "messageId": "m3"},
    ]
    live = Partition(tmp_path)  # a running server's partition (p0) is left as it is
    live.log("web").append([json.dumps(calls[0]).encode()])
    dead = Partition(tmp_path)  # a server that stopped (p1): its open segment is sealed, then rewritten
    dead.log("web").append([json.dumps(c).encode() for c in calls])
    dead.close()
    try:
        removed, busy = erase_event_log(tmp_path, subject, "RU")
    finally:
        live.close()
    assert removed == 2 and busy == ["p0"]
    p1 = [p for p in (tmp_path / "eventlog" / "p1").rglob("*") if p.is_file()]
    assert not any(b"C000186" in p.read_bytes().upper() or b"ivan@" in p.read_bytes() for p in p1)
    assert any(b'"m2"' in p.read_bytes() for p in p1)
