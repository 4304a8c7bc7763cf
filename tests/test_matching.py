"""Probabilistic matching: names across alphabets and nicknames, swapped dates, and the
namesakes and spouses that must stay apart."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cx360.identity.matching import MatchModel, NotFittedError, TrainingDataError, features
from cx360.identity.names import canonical_first_name, latin


@pytest.mark.parametrize(
    "spellings",
    [
        ("Юлия", "Yuliya", "Julija", "Iuliia"),
        ("Фёдоров", "Fyodorov", "Fedorov"),
        ("Щукин", "Shchukin", "Schukin"),
        ("Наталья", "Natalya", "Natalia"),
        ("Алексей", "Aleksey", "Aleksei", "Alexei"),
    ],
)
def test_transliteration_variants_fold_to_one_spelling(spellings):
    assert len({latin(s) for s in spellings}) == 1


@pytest.mark.parametrize(
    ("nick", "full"),
    [
        ("Саша", "Александр"),
        ("Sasha", "Aleksandr"),
        ("Маша", "Мария"),
        ("Bob", "Robert"),
        ("Katie", "Katherine"),
        ("Женя", "Evgeniy"),
    ],
)
def test_diminutives_map_to_the_full_name(nick, full):
    assert canonical_first_name(nick) == canonical_first_name(full)


def test_surname_gender_is_kept():
    assert latin("Иванов") != latin("Иванова")


def people() -> pd.DataFrame:
    rows = []
    first = [
        "Иван",
        "Мария",
        "Сергей",
        "Анна",
        "Дмитрий",
        "Ольга",
        "Павел",
        "Елена",
        "Николай",
        "Татьяна",
        "Алексей",
        "Юлия",
        "Михаил",
        "Наталья",
        "Владимир",
        "Екатерина",
        "Андрей",
        "Светлана",
        "Роман",
        "Ирина",
    ]
    last = [
        "Петров",
        "Соколова",
        "Смирнов",
        "Кузнецова",
        "Попов",
        "Новикова",
        "Морозов",
        "Волкова",
        "Лебедев",
        "Козлова",
        "Орлов",
        "Зайцева",
        "Егоров",
        "Павлова",
        "Макаров",
        "Никитина",
        "Захаров",
        "Фёдорова",
        "Семёнов",
        "Степанова",
    ]
    for i, (f, l) in enumerate(zip(first, last, strict=True)):
        rows.append(
            {
                "unique_id": f"a{i}",
                "first_name": f,
                "last_name": l,
                "birth_date": f"19{60 + i}-0{1 + i % 9}-1{i % 9}",
                "email": f"user{i}@mail.ru",
                "phone": f"+7916{i:07d}",
                "city": "Москва",
            }
        )
    return pd.DataFrame(rows)


# The same people as another system spells them: transliterated, some by nickname.
LATIN_FIRST = [
    "Vanya",
    "Masha",
    "Sergey",
    "Anna",
    "Dima",
    "Olga",
    "Pavel",
    "Elena",
    "Nikolay",
    "Tatyana",
    "Aleksey",
    "Yuliya",
    "Misha",
    "Natalya",
    "Vladimir",
    "Ekaterina",
    "Andrey",
    "Svetlana",
    "Roman",
    "Irina",
]
LATIN_LAST = [
    "Petrov",
    "Sokolova",
    "Smirnov",
    "Kuznetsova",
    "Popov",
    "Novikova",
    "Morozov",
    "Volkova",
    "Lebedev",
    "Kozlova",
    "Orlov",
    "Zaytseva",
    "Yegorov",
    "Pavlova",
    "Makarov",
    "Nikitina",
    "Zakharov",
    "Fyodorova",
    "Semyonov",
    "Stepanova",
]


@pytest.fixture(scope="module")
def fitted():
    base = people()
    variants = base.copy()
    variants["unique_id"] = [f"b{i}" for i in range(len(base))]
    variants["first_name"], variants["last_name"] = LATIN_FIRST, LATIN_LAST
    variants.loc[3, "birth_date"] = "1963-14-04"  # not a date at all: no evidence either way
    variants.loc[1, "birth_date"] = "1961-12-02"  # day and month swapped (1961-02-12 in the other system)
    base.loc[1, "birth_date"] = "1961-02-12"
    variants["email"] = [None] * len(base)
    variants["city"] = "Moscow"
    # the spouse of record 0: same surname root, same home phone, different person
    spouse = {
        "unique_id": "s0",
        "first_name": "Ирина",
        "last_name": "Петрова",
        "birth_date": "1962-05-05",
        "email": "irina@mail.ru",
        "phone": "+79160000000",
        "city": "Москва",
    }
    records = pd.concat([base, variants, pd.DataFrame([spouse])], ignore_index=True)
    model = MatchModel(threshold=0.9, max_pairs=1e5).fit(records)
    return model, records


def test_the_same_people_match_across_alphabets_nicknames_and_swapped_dates(fitted):
    model, records = fitted
    pairs = model.predict(records).to_pandas()
    found = {frozenset(p) for p in zip(pairs.left_id, pairs.right_id, strict=True)}
    for i in range(20):
        assert frozenset({f"a{i}", f"b{i}"}) in found, f"a{i} ~ b{i} not matched"


def test_spouses_sharing_a_phone_do_not_match(fitted):
    model, records = fitted
    pairs = model.predict(records).to_pandas()
    found = {frozenset(p) for p in zip(pairs.left_id, pairs.right_id, strict=True)}
    assert not any("s0" in p for p in found)


def test_evidence_says_which_fields_agreed(fitted):
    model, records = fitted
    pairs = model.predict(records).to_pandas().set_index(["left_id", "right_id"])
    import json

    row = pairs.loc[("a2", "b2")] if ("a2", "b2") in pairs.index else pairs.loc[("b2", "a2")]
    evidence = json.loads(row.evidence)
    assert evidence["first_name"] > 0 and evidence["birth_date"] > 0 and evidence["phone"] > 0
    summary = model.summary()
    assert 0 < summary["probability_two_random_records_match"] < 1 and "birth_date" in summary["comparisons"]


def test_unfitted_model_and_unusable_input_say_what_to_do():
    with pytest.raises(NotFittedError, match="call fit"):
        MatchModel().predict(people())
    with pytest.raises(Exception, match="unique_id"):
        features(pd.DataFrame({"name": ["x"]}))


def test_dedupe_files_gives_one_cluster_per_person(tmp_path):
    from cx360.identity.dedupe import dedupe_files

    base = people()
    base.rename(columns={"birth_date": "dob", "unique_id": "id"}).to_csv(tmp_path / "a.csv", index=False)
    other = base.iloc[:10].copy()
    other["unique_id"] = [f"x{i}" for i in range(10)]
    other["first_name"] = other["first_name"].map(latin)
    other.rename(columns={"birth_date": "dob", "unique_id": "id"}).to_parquet(tmp_path / "b.parquet")
    out = dedupe_files([tmp_path / "a.csv", tmp_path / "b.parquet"], "id", {"dob": "birth_date"}, threshold=0.9)
    assert len(out) == 30 and set(out.columns) == {"file", "key", "cluster_id"}
    cluster = dict(zip(out.key, out.cluster_id, strict=True))
    assert all(cluster[f"a{i}"] == cluster[f"x{i}"] for i in range(10))
    assert out.cluster_id.nunique() == 20


def test_records_without_a_single_duplicate_are_a_clear_error_not_a_crash(tmp_path):
    import subprocess
    import sys

    rows = [
        f"{i},Name{i},Surname{i},u{i}@mail.ru,+7916{1000000 + i},19{50 + i % 50}-0{1 + i % 9}-1{i % 9}"
        for i in range(200)
    ]
    (tmp_path / "a.csv").write_text("id,first_name,last_name,email,phone,birth_date\n" + "\n".join(rows) + "\n")
    with pytest.raises(TrainingDataError, match="no two records agree on email"):
        MatchModel().fit(features(pd.read_csv(tmp_path / "a.csv", dtype=str).rename(columns={"id": "unique_id"})))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cx360",
            "identity",
            "dedupe",
            str(tmp_path / "a.csv"),
            "--key",
            "id",
            "-o",
            str(tmp_path / "out.csv"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1 and "no two records agree" in done.stderr and "Traceback" not in done.stderr


def test_a_value_shared_by_too_many_records_is_not_a_blocking_key():
    from cx360.identity.matching import add_blocks, block_column

    frame = pd.DataFrame(
        {
            "birth_date": ["1900-01-01"] * 4 + ["1980-05-05", "1980-05-05", None],
            "last_name": ["a", "b", "c", "d", "e", "e", "f"],
        }
    )
    (out,), oversized = add_blocks([frame], [("birth_date",), ("birth_date", "last_name")], max_block_size=3)
    assert out[block_column(("birth_date",))].tolist() == [None] * 4 + ["1980-05-05", "1980-05-05", None]
    assert out[block_column(("birth_date", "last_name"))].notna().sum() == 6
    assert oversized == [{"key": "birth_date", "value": "1900-01-01", "records": 4}]


def test_people_behind_a_placeholder_birth_date_still_match_on_other_keys():
    base = people()
    twins = base.copy()
    twins["unique_id"] = [f"t{i}" for i in range(len(base))]
    twins["email"] = None
    base["birth_date"] = twins["birth_date"] = "1900-01-01"  # 40 records: one block far over the limit
    model = MatchModel(threshold=0.9, max_pairs=1e5, max_block_size=10).fit(pd.concat([base, twins], ignore_index=True))
    assert {"key": "birth_date", "value": "1900-01-01", "records": 40} in model.oversized_blocks_
    pairs = model.predict(pd.concat([base, twins], ignore_index=True)).to_pandas()
    found = {frozenset(p) for p in zip(pairs.left_id, pairs.right_id, strict=True)}
    assert found == {frozenset({f"a{i}", f"t{i}"}) for i in range(20)}


@pytest.mark.spark
def test_matching_runs_on_spark_with_the_same_result(fitted, spark_session):
    duck, records = fitted
    model = MatchModel(threshold=0.9, max_pairs=1e5, spark_session=spark_session).fit(records)
    on_spark = model.predict(records).to_pandas()
    on_duckdb = duck.predict(records).to_pandas()
    pairs = lambda p: {frozenset(x) for x in zip(p.left_id, p.right_id, strict=True)}  # noqa: E731
    assert pairs(on_spark) == pairs(on_duckdb)
    assert model.summary()["probability_two_random_records_match"] == pytest.approx(
        duck.summary()["probability_two_random_records_match"], rel=0.05
    )


def test_the_model_does_not_depend_on_the_order_of_the_records(fitted):
    _, records = fitted
    shuffled = records.sample(frac=1, random_state=3)
    first, second = (
        MatchModel(threshold=0.9, max_pairs=1e5, max_training_records=30).fit(r) for r in (records, shuffled)
    )
    learned = lambda m: {k: v for k, v in m.settings_.items() if k != "linker_uid"}  # noqa: E731 - the uid names one run
    assert learned(first) == learned(second)


def test_an_m_probability_that_underflows_in_training_is_floored_not_fatal():
    import splink.comparison_library as cl

    from cx360.identity.matching import _floored, _tolerate_underflow

    level = cl.ExactMatch("city").get_comparison("duckdb").comparison_levels[1]
    with pytest.raises(ValueError, match="below the minimum"):
        level.m_probability = 3e-321  # what Splink 5.0 does with a value its own EM step computed
    with _tolerate_underflow():
        level.m_probability = 3e-321
    settings = {"comparisons": [{"comparison_levels": [{"m_probability": 3e-321, "u_probability": 0.5}]}]}
    assert _floored(settings)["comparisons"][0]["comparison_levels"][0] == {
        "m_probability": 1e-300,
        "u_probability": 0.5,
    }


def test_a_comparison_em_leaves_undefined_carries_no_weight_instead_of_breaking_prediction():
    # Records of the demo bank (30 people, seed 3): only one source holds middle names, and EM's
    # estimate of their m comes out 0/0, which Splink wrote into its SQL as a bare `nan`.
    records = pd.read_csv(Path(__file__).parent / "data" / "middle_names_on_one_side.csv", dtype=str)
    model = MatchModel().fit(records)
    assert model.unlearned_ == ["middle_name"] == model.summary()["unlearned"]
    middle = next(c for c in model.settings_["comparisons"] if c["output_column_name"] == "middle_name")
    levels = [lv for lv in middle["comparison_levels"] if not lv.get("is_null_level")]
    assert all(lv["m_probability"] == lv["u_probability"] for lv in levels)
    pairs = model.predict(records).to_pandas()
    assert len(pairs) > 0 and "middle_name" not in " ".join(pairs.evidence)
