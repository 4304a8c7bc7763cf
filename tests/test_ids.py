"""Request and audit entry ids: 32 hex digits, never the same twice, in one process or across a fork."""

from __future__ import annotations

import os
import re

from cx360.api.ids import unique_hex


def test_ids_are_32_hex_digits_and_unique_across_calls_and_a_fork():
    mine = [unique_hex() for _ in range(1000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in mine) and len(set(mine)) == 1000
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child's first id, as a forked worker would draw it
        os.write(write, unique_hex().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    theirs = os.read(read, 64).decode()
    os.close(read)
    assert theirs not in mine and theirs[:16] != mine[0][:16]
