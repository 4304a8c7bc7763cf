"""The synthetic bank: deterministic, realistic enough to test every stage, and scored by its truth."""

from __future__ import annotations

import csv
import hashlib

import pandas as pd
import pytest

from cx360.config import load_config
from cx360.demo import generate_world
from cx360.demo.names import translit
from cx360.demo.people import ARCHETYPES


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    return generate_world(out, customers=400, seed=11)


def digest(folder):
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((folder / "data").rglob("*.*"))
    }


def test_same_seed_same_bytes_other_seed_differs(world, tmp_path):
    again = generate_world(tmp_path / "again", customers=400, seed=11)
    other = generate_world(tmp_path / "other", customers=400, seed=12)
    assert digest(world.out_dir) == digest(again.out_dir)
    assert digest(world.out_dir) != digest(other.out_dir)


def test_workspace_file_maps_every_data_file(world):
    config = load_config(world.out_dir / "cx360.toml")
    mapped = {f.relative_to(world.out_dir).as_posix() for s in config.sources for f in s.files(world.out_dir)}
    written = {p.relative_to(world.out_dir).as_posix() for p in (world.out_dir / "data").rglob("*.*")}
    assert mapped == written and len(config.sources) == 12
    assert all(n > 0 for n in world.rows.values())


def test_truth_covers_every_crm_record_and_the_crms_overlap(world):
    owners = pd.read_parquet(world.out_dir / "truth" / "record_owner.parquet")
    core = pd.read_csv(world.out_dir / "data" / "crm_core.csv", sep=";", dtype=str, on_bad_lines="skip")
    cards = pd.read_csv(world.out_dir / "data" / "crm_cards.csv", dtype=str)
    assert set(core.client_id) - {"C999999"} <= set(owners[owners.source == "crm_core"].record_id)
    assert set(cards.customer_ref) == set(owners[owners.source == "crm_cards"].record_id)
    both = owners.groupby("person_id").source.nunique()
    assert 0.45 < (both == 2).mean() < 0.75


def test_churned_people_stop_paying_after_their_churn_date(world):
    persons = pd.read_parquet(world.out_dir / "truth" / "persons.parquet")
    tx = pd.read_parquet(world.out_dir / "data" / "card_transactions.parquet")
    cards = pd.read_csv(world.out_dir / "data" / "crm_cards.csv", dtype=str)
    owner = pd.read_parquet(world.out_dir / "truth" / "record_owner.parquet")
    token_person = cards.merge(owner, left_on="customer_ref", right_on="record_id")[["card_token", "person_id"]]
    last = tx.merge(token_person, on="card_token").groupby("person_id").ts.max()
    churned = persons[persons.churned].set_index("person_id").churn_date
    joined = pd.concat([last.rename("last"), churned.rename("churn")], axis=1, join="inner")
    assert len(joined) > 10
    assert (joined["last"] <= joined["churn"] + pd.Timedelta(days=1)).all()


def test_planted_bad_rows_are_there(world):
    with open(world.out_dir / "data" / "crm_core.csv", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter=";"))
    assert sum(len(r) != len(rows[0]) for r in rows) == 1
    cards = pd.read_csv(world.out_dir / "data" / "crm_cards.csv", dtype=str)
    assert (cards.phone == "12-34").sum() >= 1 and (cards.email == "test@test.com").sum() >= 1
    tx = pd.read_parquet(world.out_dir / "data" / "card_transactions.parquet")
    assert tx.txn_id.duplicated().sum() == 5
    # identifiers that would merge different people: placeholders in both CRMs, a library cookie, a shared caller
    core = pd.read_csv(world.out_dir / "data" / "crm_core.csv", sep=";", dtype=str, on_bad_lines="skip")
    assert all(
        ((core.email == e).sum(), (cards.email == e).sum()) == (1, 1) for e in ("no-email@demobank.ru", "a@a.ru")
    )
    logins = (world.out_dir / "data" / "web" / "2025-h2.jsonl").read_text(encoding="utf-8").count('"ck-library-pc"')
    calls = pd.read_csv(world.out_dir / "data" / "contact_centre.csv", dtype=str, on_bad_lines="skip")
    assert logins == 3 and calls[calls.caller_phone == "+74957310466"].customer_number.nunique() == 2


def test_population_spans_the_six_archetypes(tmp_path):
    small = generate_world(tmp_path / "w", customers=2000, seed=3)
    persons = pd.read_parquet(small.out_dir / "truth" / "persons.parquet")
    assert set(persons.archetype) == set(ARCHETYPES)
    assert 0.05 < persons.churned.mean() < 0.35


def test_transliteration_schemes_differ_where_real_systems_do():
    assert {translit("Юлия", s) for s in range(3)} == {"Iuliia", "Yuliya", "Julija"}
    assert translit("Иванов", 0) == translit("Иванов", 2) == "Ivanov"
