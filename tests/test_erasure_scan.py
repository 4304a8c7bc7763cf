"""The verification scan's byte search: blocks of any size find a value that straddles them, in any
case for ASCII values and in the usual cases for others."""

from __future__ import annotations

import pytest

from cx360.erasure import scan


@pytest.mark.parametrize("block", [7, 64, 1 << 20])
def test_values_are_found_across_blocks_in_any_case(tmp_path, monkeypatch, block):
    monkeypatch.setattr(scan, "_BLOCK", block)
    path = tmp_path / "store.bin"
    filler = b"\x00\x01" * 50
    path.write_bytes(filler + b"IVAN.Petrov@Mail.RU" + filler + "ПЕТРОВ".encode() + filler)
    terms = [("email", "ivan.petrov@mail.ru"), ("name", "Петров"), ("phone", "+79161234567"), ("name", "петр ов")]
    assert scan._raw_hits(path, terms) == ["email", "name"]
    assert scan._raw_hits(path, [("email", "anna@mail.ru")]) == []
