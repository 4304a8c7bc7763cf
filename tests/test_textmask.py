"""Personal data in free text masked before storage: each kind found and replaced, look-alikes left
alone, and `[privacy] mask_text` applied at ingest to loaded and quarantined rows alike."""

from __future__ import annotations

import json

import pytest

from cx360.privacy.textmask import find, mask, mask_many


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("мой телефон +7 (916) 123-45-67, перезвоните", "мой телефон [phone], перезвоните"),
        ("звоните 89161234567 или 8 916 123 45 67", "звоните [phone] или [phone]"),
        ("пишите на anna.petrova@mail.ru", "пишите на [email]"),
        ("карта 4276 3800 1234 5679 заблокирована", "карта [card] заблокирована"),
        (
            "паспорт 45 06 123456, ИНН 7707083893, СНИЛС 112-233-445 95",
            "паспорт [document], ИНН [document], СНИЛС [document]",
        ),
        ("IBAN DE89 3704 0044 0532 0130 00, SSN 536-90-4399", "IBAN [document], SSN [document]"),
        ("Hi, my name is John Smith, call +44 20 7946 0958", "Hi, my name is [name], call [phone]"),
        (
            "Здравствуйте, меня зовут Анна Петрова, я по поводу кредита",
            "Здравствуйте, меня зовут [name], я по поводу кредита",
        ),
        ("Спасибо оператору Ивану Сидорову за помощь!", "Спасибо оператору [name] за помощь!"),
    ],
)
def test_each_kind_is_masked(text, masked):
    assert mask(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "номер заявки 4276 3800 1234 5675",  # 16 digits that fail the Luhn check: not a card
        "перевёл 15 000 руб 12.03.2025, договор № 2024-17-334",
        "ИНН 7707083894",  # a wrong check digit
        "Отличный банк, всё быстро и удобно @demobank",
        "I am happy with the new app, thanks!",
        "Открыл вклад в Сбербанке в Москве",  # organisations and places are not people
    ],
)
def test_look_alikes_are_left_alone(text):
    assert find(text) == [], find(text)


def test_repeated_texts_are_read_once_and_empty_ones_kept():
    assert mask_many(["a@b.ru", None, "", "a@b.ru"]) == ["[email]", None, "", "[email]"]


SOURCE = """
[privacy]
mask_text = true

[[sources]]
name = "calls"
kind = "csv"
path = "data/calls.csv"
[sources.events]
timestamp = { column = "at", type = "timestamp" }
name = { value = "call" }
channel = { value = "call_centre" }
identifiers = { phone = "phone" }
properties = { text = "summary", reason = "reason" }
"""


def test_ingest_masks_the_free_text_of_loaded_and_quarantined_rows(duckdb_workspace):
    duckdb_workspace.write(
        "data/calls.csv",
        "at,phone,summary,reason\n"
        '2025-03-01 10:00:00,+79161234567,"Меня зовут Ольга Смирнова, перезвоните на 8 916 765 43 21",card\n'
        "not a time,+79161234568,пишите на olga@mail.ru,card\n",
    )
    ws = duckdb_workspace.config(SOURCE)
    try:
        from cx360.sources.ingest import ingest

        [report] = ingest(ws)
        assert (report.loaded, report.quarantined) == (1, 1)
        [event] = ws.engine.table("events").to_pyarrow().to_pylist()
        assert json.loads(event["properties"]) == {
            "text": "Меня зовут [name], перезвоните на [phone]",
            "reason": "card",
        }
        assert event["phone"] == "+79161234567", "identifiers are not free text: they load as ever"
        [bad] = ws.engine.table("quarantine").to_pyarrow().to_pylist()
        assert "olga@mail.ru" not in bad["raw"] and "[email]" in bad["raw"]
    finally:
        ws.close()


def test_a_segment_export_is_masked_inside_its_properties(duckdb_workspace):
    message = {
        "type": "track",
        "messageId": "m1",
        "userId": "c-001",
        "event": "review_posted",
        "properties": {"text": "Пишите мне на ivan@mail.ru", "rating": 2},
        "timestamp": "2025-03-01T10:00:00Z",
    }
    duckdb_workspace.write("data/export.jsonl", json.dumps(message, ensure_ascii=False) + "\n")
    ws = duckdb_workspace.config(
        '[privacy]\nmask_text = true\n\n[[sources]]\nname = "web"\nkind = "jsonl"\npath = "data/export.jsonl"\n'
        'format = "segment"\n'
    )
    try:
        from cx360.sources.ingest import ingest

        [report] = ingest(ws)
        assert report.loaded == 1, report
        [event] = ws.engine.table("events").to_pyarrow().to_pylist()
        assert json.loads(event["properties"]) == {"text": "Пишите мне на [email]", "rating": 2}
    finally:
        ws.close()
