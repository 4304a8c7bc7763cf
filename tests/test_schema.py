"""The canonical model and its documentation stay in step."""

from __future__ import annotations

from pathlib import Path

from cx360 import schema


def test_data_model_doc_lists_every_table_and_column():
    doc = (Path(__file__).parents[1] / "docs" / "data-model.md").read_text(encoding="utf-8")
    assert schema.markdown() in doc, "regenerate the tables section of docs/data-model.md from cx360.schema.markdown()"


def test_identifiers_and_personal_data_are_marked():
    assert set(schema.IDENTIFIER_KINDS) <= set(schema.pii_columns("events"))
    assert {"first_name", "last_name", "birth_date", "address", "extra"} <= set(schema.pii_columns("records"))
    assert "amount" not in schema.pii_columns("events")
