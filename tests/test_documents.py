"""Document identifiers: checked by python-stdnum (or cx360's own rules for SNILS and passports),
compacted into one comparable form, and matched exactly by `identity dedupe --map COL=document:SCHEME`."""

from __future__ import annotations

import pandas as pd
import pytest
from test_matching import people

from cx360.documents import check_scheme, normalise
from cx360.errors import ConfigError, TrainingDataError
from cx360.identity.dedupe import dedupe_files, parse_map
from cx360.identity.names import latin


def test_documents_are_checked_and_compacted():
    assert normalise("ru.inn", " 7707083893 ") == normalise("ru.inn", "770-708-3893") == ("ru.inn:7707083893", None)
    assert normalise("us.ssn", "536-90-4399") == ("us.ssn:536904399", None)
    assert normalise("ru.snils", "112-233-445 95") == ("ru.snils:11223344595", None)
    assert normalise("ru.passport", "45 09 123456") == ("ru.passport:4509123456", None)
    assert normalise(None, "ab-12 34") == ("AB1234", None)
    assert normalise("ru.inn", "") == (None, None)
    value, why = normalise("ru.inn", "7707083894")
    assert value is None and why.startswith("not a valid ru.inn number: ")
    assert normalise("ru.snils", "112-233-445 96") == (None, "not a valid ru.snils number")
    with pytest.raises(ConfigError, match=r"document scheme 'xx\.nope' is not known: expected COUNTRY\.NAME"):
        check_scheme("xx.nope")


def test_parse_map_takes_documents_and_says_what_it_takes():
    assert parse_map(["inn=document:ru.inn", "id=document", "dob=birth_date"]) == {
        "inn": "document:ru.inn",
        "id": "document",
        "dob": "birth_date",
    }
    with pytest.raises(ConfigError, match="or document:SCHEME"):
        parse_map(["inn=passport"])
    with pytest.raises(ConfigError, match=r"'ru\.pasport' is not known"):
        parse_map(["p=document:ru.pasport"])


def inn(i: int) -> str:
    """A valid 10-digit INN (an organisation's): nine digits and their check digit."""
    digits = f"770{i:06d}"
    check = sum(int(d) * w for d, w in zip(digits, (2, 4, 10, 3, 5, 9, 4, 6, 8), strict=True)) % 11 % 10
    return digits + str(check)


def test_dedupe_links_people_by_a_valid_document_and_leaves_invalid_ones_out(tmp_path):
    # The second system knows ten of the twenty people by a Latin spelling and their INN only; one of
    # its INNs has a wrong check digit, which is reported and not used.
    a = people().rename(columns={"unique_id": "id"}).assign(tax_no=[inn(i) for i in range(20)])
    b = pd.DataFrame(
        {
            "id": [f"x{i}" for i in range(10)],
            "first_name": a.first_name.iloc[:10].map(latin),
            "last_name": a.last_name.iloc[:10].map(latin),
            "tax_no": [inn(i) for i in range(9)] + [inn(9)[:-1] + str((int(inn(9)[-1]) + 1) % 10)],
        }
    )
    a.to_csv(tmp_path / "a.csv", index=False)
    b.to_csv(tmp_path / "b.csv", index=False)
    files = [tmp_path / "a.csv", tmp_path / "b.csv"]
    out = dedupe_files(files, "id", parse_map(["tax_no=document:ru.inn"]))
    cluster = dict(zip(out.key, out.cluster_id, strict=True))
    assert all(cluster[f"a{i}"] == cluster[f"x{i}"] for i in range(9))
    assert out.cluster_id.nunique() == 21  # x9 stands alone: its INN is invalid, and names alone do not do
    [note] = out.attrs["notes"]
    assert "b.csv: 1 value(s) of tax_no left out (not a valid ru.inn number: " in note
    with pytest.raises(TrainingDataError, match="no two records agree"):  # without the INN, nothing links them
        dedupe_files(files, "id", {})
