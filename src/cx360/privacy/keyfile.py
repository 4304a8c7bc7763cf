"""Secrets of a workspace kept as owner-only key files under `privacy/`, created on first use."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from cx360.filemodes import private


def secret_at(path: Path, nbytes: int = 32) -> bytes:
    """The secret in `path` (hex text), written owner-only first if the file does not exist yet."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        private(path.parent)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(nbytes))
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):  # never replaces a secret another process created meanwhile
            os.link(tmp, path)
        tmp.unlink(missing_ok=True)
    return bytes.fromhex(path.read_text().strip())
