"""The workspace file: every mistake is an error naming the file, the key and what was expected."""

from __future__ import annotations

import pytest

from cx360.config import load_config
from cx360.errors import ConfigError
from cx360.workspace import Workspace, init_workspace

SOURCE = """
[[sources]]
name = "crm"
kind = "csv"
path = "data/crm.csv"
[sources.records]
record_id = "id"
"""


def write(tmp_path, text: str):
    path = tmp_path / "cx360.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


def test_init_writes_a_commented_file_that_loads(tmp_path):
    path = init_workspace(tmp_path / "bank", region="RU")
    assert path.read_text().count("#") > 10
    config = Workspace(tmp_path / "bank").config
    assert config.workspace.default_region == "RU" and config.engine.kind == "duckdb" and config.sources == []
    with pytest.raises(ConfigError, match="already exists"):
        init_workspace(tmp_path / "bank")


def test_typo_in_a_key_names_the_source_and_key(tmp_path):
    message = error_of(
        write(tmp_path, SOURCE.replace('path = "data/crm.csv"', 'path = "data/crm.csv"\ndelimter = ";"'))
    )
    assert str(tmp_path / "cx360.toml") in message
    assert "sources[0] (crm).delimter: unknown key" in message


def test_unknown_identifier_kind_lists_the_accepted_ones(tmp_path):
    message = error_of(write(tmp_path, SOURCE + 'identifiers = { emial = "e" }\n'))
    assert "sources[0] (crm).records.identifiers.emial" in message and "'email'" in message


def test_wrong_type_and_wrong_kind(tmp_path):
    message = error_of(write(tmp_path, SOURCE.replace('kind = "csv"', 'kind = "xlsx"')))
    assert "sources[0] (crm)" in message and "'csv'" in message and "'parquet'" in message
    message = error_of(write(tmp_path, '[engine]\nkind = "duckdb"\nthreads = "many"\n'))
    assert "engine.threads" in message and "integer" in message


def test_missing_required_key_and_exactly_one_mapping(tmp_path):
    message = error_of(write(tmp_path, SOURCE.replace('record_id = "id"', 'updated_at = "u"')))
    assert "records.record_id: required key is missing" in message
    message = error_of(write(tmp_path, SOURCE.replace('[sources.records]\nrecord_id = "id"\n', "")))
    assert "give exactly one of [sources.records], [sources.events] or [sources.consents]" in message


def test_unknown_event_name_in_mapping(tmp_path):
    text = """
[[sources]]
name = "web"
kind = "jsonl"
path = "w.jsonl"
[sources.events]
timestamp = "ts"
name = { column = "type", values = { pv = "page_view" } }
identifiers = { cookie_id = "c" }
"""
    assert "unknown event name(s) ['page_view']" in error_of(write(tmp_path, text))
    ok = write(tmp_path, '[events]\ncustom_names = ["page_view"]\n' + text)
    assert load_config(ok).sources[0].events.name.values == {"pv": "page_view"}


def test_duplicate_source_names_bad_toml_and_missing_file(tmp_path):
    assert "repeated: crm" in error_of(write(tmp_path, SOURCE + SOURCE))
    assert "not valid TOML" in error_of(write(tmp_path, "[workspace\nname='x'"))
    assert "workspace file not found" in error_of(tmp_path / "nowhere" / "cx360.toml")


def test_field_needs_exactly_one_origin_and_formats_only_for_dates(tmp_path):
    both = SOURCE.replace('record_id = "id"', 'record_id = { column = "id", value = "x" }')
    assert "exactly one of 'column'" in error_of(write(tmp_path, both))
    fmt = SOURCE + 'attributes = { first_name = { column = "f", formats = ["%d"] } }\n'
    assert "'formats' applies only to type 'date' or 'timestamp'" in error_of(write(tmp_path, fmt))


def test_identity_settings_are_checked(tmp_path):
    assert "survivorship names unknown attribute(s) ['nickname']" in error_of(
        write(tmp_path, '[identity]\nsurvivorship = { nickname = "most_recent" }\n')
    )
    assert "identity.match_threshold" in error_of(write(tmp_path, "[identity]\nmatch_threshold = 1.5\n"))
    assert "source_priority names unknown source(s) ['crm_x']" in error_of(
        write(tmp_path, '[identity]\nsource_priority = ["crm_x"]\n' + SOURCE)
    )
