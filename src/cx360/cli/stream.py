"""`cx360 stream`: the stream processor in a process of its own; `cx360 stream consume`: land the
workspace's Redis streams in its event log, apart from `cx360 serve`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cx360.cli.output import Format, FormatOpt, WorkspaceOpt, emit, err

stream_app = typer.Typer(help="The stream processor and the collector's event transport.")


def register(app: typer.Typer) -> None:
    app.add_typer(stream_app, name="stream")


@stream_app.callback(invoke_without_command=True)
def stream(
    ctx: typer.Context,
    workspace: WorkspaceOpt = Path("."),
    once: Annotated[bool, typer.Option("--once", help="Apply what the log holds now, then exit.")] = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """Apply the event log's partitions that no other processor holds to the online profile store (every
    live server's too, open segments included), and deliver the triggers they fire, until stopped. With
    `[stream] processor = "separate"` the servers leave this to one or more `cx360 stream` processes."""
    if ctx.invoked_subcommand is not None:
        return
    import signal
    import threading

    from cx360.api.app import open_context
    from cx360.errors import ConfigError
    from cx360.online.feed import Feeds
    from cx360.online.processor import Processor

    context, _ = open_context(workspace)
    if context.store.online is None:
        context.close()
        raise ConfigError(f"{workspace}: [serve] online is off: there is no online store to apply events to")
    feeds = Feeds(context.root, context.store.online.offset)
    proc = None
    try:
        if once:
            proc = Processor(context.config, context.store.online, context.store, feeds, vault=context.vault)
            while proc.step() or proc.tick():
                pass
        else:
            stop = threading.Event()
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
            context.start_online(feeds)
            proc = context.processor
            err.print(f"applying the event log of {context.root} to the online store (Ctrl-C stops)")
            while not stop.wait(0.5):
                pass
        owned = ", ".join(p.name for p in feeds.owned) or "none (other processors hold them)"
    finally:
        if once and proc is not None:
            proc.slices.close()
        feeds.close()
        context.close()
    rows = [("partitions", owned), ("events applied", proc.applied), ("skipped", proc.skipped)]
    per_batch = round(1000 * proc.seconds / proc.batches, 1) if proc.batches else None
    rows += [("micro-batches", proc.batches), ("ms per micro-batch", per_batch)]
    emit(fmt, "Stream processor", ["what", "value"], rows)


@stream_app.command("consume")
def consume(
    workspace: WorkspaceOpt = Path("."),
    consumer: Annotated[
        str | None, typer.Option(help="This consumer's name in the group (default: HOST-PID); unique per process.")
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Land what waits now, then exit.")] = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """Read the Redis streams of `[collector] transport = "redis"` in their consumer group and land each
    batch in the workspace's event log (fsynced) before acknowledging it; `cx360 ingest` then loads it."""
    import signal

    from cx360.errors import ConfigError
    from cx360.stream.eventlog import Partition
    from cx360.stream.redis_log import RedisLog, RedisRelay
    from cx360.workspace import Workspace

    ws = Workspace(workspace)
    cfg = ws.config
    settings = cfg.collector
    if settings.transport != "redis":
        raise ConfigError(
            f"{ws.config_path}: [collector] transport is {settings.transport!r}: the server writes the event log "
            'itself and there is nothing to consume; set transport = "redis" and redis_url to use Redis Streams'
        )
    redis = RedisLog(settings, cfg.workspace.name)
    partition = Partition(ws.root, segment_bytes=int(settings.segment_mb * (1 << 20)))
    relay = RedisRelay(redis, partition, settings, consumer=consumer)

    def seal() -> None:
        for log in partition.logs():
            log.seal_older_than(settings.seal_seconds)

    try:
        if once:
            accepted, rejected = relay.drain()
        else:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: relay.close())
            err.print(f"landing {redis.events.stream} in {partition.folder} (Ctrl-C stops)")
            relay.run(tick=seal)
            accepted, rejected = relay.relays[0].stats.messages, relay.relays[1].stats.messages
    finally:
        partition.close()  # seals what it holds, so the drain sees it
        redis.close()
    emit(fmt, "Landed in the event log", ["stream", "messages"], [("accepted", accepted), ("rejected", rejected)])
