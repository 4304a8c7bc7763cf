"""A throw-away redis-server for the tests: on a free port of 127.0.0.1, its files in a temp dir,
durable as cx360 requires (appendonly yes, appendfsync always), and killable and restartable on the
same port and files. Without redis-server the tests skip, unless CX360_TEST_SERVICES=1 (as in CI)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

DURABLE = ("--appendonly", "yes", "--appendfsync", "always")


def require_redis() -> str:
    binary = shutil.which("redis-server")
    missing = None
    if binary is None:
        missing = "redis-server is not installed (apt-get install redis-server)"
    else:
        try:
            import redis  # noqa: F401
        except ImportError:
            missing = "the redis package is not installed (pip install -e '.[serve]')"
    if missing:
        if os.environ.get("CX360_TEST_SERVICES") == "1":
            pytest.fail(f"Redis tests required (CX360_TEST_SERVICES=1) but {missing}")
        pytest.skip(missing)
    return binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, directory: Path, *options: str):
        self.binary = require_redis()
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.options = options or DURABLE
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)]
        args += ["--save", "", "--daemonize", "no", "--logfile", str(self.dir / "redis.log"), *self.options]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {(self.dir / 'redis.log').read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(10)
        self.process = None
