"""Probabilistic record linkage: a Fellegi-Sunter model trained by EM, through Splink.

`MatchModel` is a scikit-learn-style estimator over a table of records (`unique_id` plus any of
the canonical person fields). It prepares match features (names in one Latin spelling, full first
names for diminutives, birth-date parts, e-mail local parts, phone digits), compares only the
fields present, and blocks on strong keys so that the number of compared pairs stays near-linear.
"""

from __future__ import annotations

import json
import logging
import math
from contextlib import contextmanager

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.base import BaseEstimator

from cx360.errors import Cx360Error, NotFittedError, TrainingDataError
from cx360.identity.names import canonical_first_name, latin

FIELDS = (
    "first_name",
    "middle_name",
    "last_name",
    "birth_date",
    "gender",
    "email",
    "phone",
    "address",
    "city",
    "postcode",
)


def features(records: pa.Table | pd.DataFrame, exact_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """The columns the model compares, derived from whatever canonical fields the records have.

    Vectorised in Arrow; the Python name rules (transliteration, diminutives) and date parsing
    run once per distinct value.
    """
    table = records if isinstance(records, pa.Table) else pa.Table.from_pandas(records, preserve_index=False)
    if "unique_id" not in table.column_names:
        raise Cx360Error("records need a unique_id column")
    has = lambda c: c in table.column_names  # noqa: E731
    out = {"unique_id": table["unique_id"].cast(pa.string())}
    if has("source_dataset"):
        out["source_dataset"] = table["source_dataset"].cast(pa.string())
    if has("first_name"):
        out["first_name"] = _per_value(_text(table["first_name"]), canonical_first_name)
        out["first_initial"] = pc.utf8_slice_codeunits(out["first_name"], 0, 1)
    for col in ("last_name", "middle_name", "city"):
        if has(col):
            out[col] = _per_value(_text(table[col]), latin)
    if "last_name" in out:
        out["last_initial"] = pc.utf8_slice_codeunits(out["last_name"], 0, 1)
    if has("birth_date"):
        born = _dates(table["birth_date"])
        for col, pattern in (
            ("birth_date", "%Y-%m-%d"),
            ("birth_year", "%Y"),
            ("birth_md", "%m-%d"),
            ("birth_dm", "%d-%m"),
        ):
            out[col] = pc.strftime(born, format=pattern)
    if has("email"):
        out["email"] = pc.utf8_lower(_text(table["email"]))
        local = pc.list_element(pc.split_pattern(out["email"], "@"), 0)
        out["email_user"] = pc.replace_substring_regex(local, r"[^a-z0-9]", "")
    if has("phone"):
        digits = pc.replace_substring_regex(_text(table["phone"]), r"\D", "")
        out["phone"] = _blank_to_null(pc.utf8_slice_codeunits(digits, -10, 2**31 - 1))
    if has("address"):
        words = pc.replace_substring_regex(pc.utf8_lower(_text(table["address"])), r"[^\p{L}\p{N}_ ]", " ")
        out["address"] = pc.utf8_trim_whitespace(pc.replace_substring_regex(words, r"\s+", " "))
    for col in ("postcode", "gender", *exact_columns):
        if has(col):
            out[col] = pc.utf8_lower(_text(table[col]))
    # In a fixed order, so that the training sample (and so the model) does not depend on how the engine
    # returned the rows.
    return pa.table(out).sort_by("unique_id").to_pandas()


def _text(column) -> pa.ChunkedArray:
    return _blank_to_null(pc.utf8_trim_whitespace(column.cast(pa.string())))


def _blank_to_null(column):
    return pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)


def _per_value(column, rule) -> pa.ChunkedArray:
    """`rule` applied once per distinct value."""
    distinct = pc.unique(column)
    mapped = pa.array([rule(v) for v in distinct.to_pylist()], pa.string())
    return pc.take(mapped, pc.index_in(column, value_set=distinct))


def _dates(column) -> pa.ChunkedArray:
    """Dates from a date column, or from text in any common format (unparseable text is null)."""
    if pa.types.is_date(column.type) or pa.types.is_timestamp(column.type):
        return column.cast(pa.timestamp("s"))
    text = _text(column)
    distinct = pc.unique(text)
    parsed = pd.to_datetime(pd.Series(distinct.to_pylist(), dtype="string"), errors="coerce", format="mixed")
    return pc.take(pa.array(parsed, pa.timestamp("s")), pc.index_in(text, value_set=distinct))


def _comparisons(cols: set[str], exact_columns: tuple[str, ...]):
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    comps = []
    if "first_name" in cols:
        comps.append(cl.JaroWinklerAtThresholds("first_name", [0.95, 0.85]))
    if "last_name" in cols:
        comps.append(cl.JaroWinklerAtThresholds("last_name", [0.95, 0.85]))
    if "middle_name" in cols:
        comps.append(cl.JaroWinklerAtThresholds("middle_name", [0.9]))
    if "birth_date" in cols:
        comps.append(
            cl.CustomComparison(
                output_column_name="birth_date",
                comparison_levels=[
                    cll.NullLevel("birth_date"),
                    cll.ExactMatchLevel("birth_date"),
                    cll.CustomLevel("birth_year_l = birth_year_r AND birth_md_l = birth_dm_r", "day and month swapped"),
                    cll.DamerauLevenshteinLevel("birth_date", 1),
                    cll.ExactMatchLevel("birth_year"),
                    cll.ElseLevel(),
                ],
            )
        )
    if "email" in cols:
        comps.append(
            cl.CustomComparison(
                output_column_name="email",
                comparison_levels=[
                    cll.NullLevel("email"),
                    cll.ExactMatchLevel("email"),
                    cll.ExactMatchLevel("email_user"),
                    cll.ElseLevel(),
                ],
            )
        )
    if "phone" in cols:
        comps.append(cl.LevenshteinAtThresholds("phone", [1]))
    if "address" in cols:
        comps.append(cl.JaroWinklerAtThresholds("address", [0.95, 0.8]))
    for col in ("city", "postcode", "gender"):
        if col in cols:
            comps.append(cl.ExactMatch(col))
    for col in exact_columns:
        if col in cols:
            comps.append(cl.LevenshteinAtThresholds(col, [1]))
    return comps


def _prediction_keys(cols: set[str], exact_columns: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The keys whose agreement makes two records a candidate pair."""
    keys = [(c,) for c in ("phone", "email", *exact_columns, "birth_date") if c in cols]
    # Name keys carry the birth year when there is one, so that common names do not make huge blocks;
    # a day/month swap or a typo in one name still leaves one of these keys intact.
    year = ("birth_year",) if "birth_year" in cols else ()
    for key in (
        ("last_name", "first_initial", *year),
        ("first_name", "last_initial", *year),
        ("postcode", "first_initial"),
    ):
        if set(key) <= cols:
            keys.append(key)
    return keys


def _training_keys(
    cols: set[str], exact_columns: tuple[str, ...]
) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    """Keys for the prior (pairs that are almost surely matches) and for the EM passes, in order of preference."""
    deterministic = [(c,) for c in ("email", "phone", *exact_columns) if c in cols]
    if {"first_name", "last_name", "birth_date"} <= cols:
        deterministic.append(("first_name", "last_name", "birth_date"))
    em = [(c,) for c in ("email", "phone", *exact_columns, "birth_date") if c in cols]
    em += [k for k in (("last_name", "first_initial"), ("postcode",)) if set(k) <= cols]
    return deterministic, em


@contextmanager
def _tolerate_underflow():
    """Let EM keep an m or u below 1e-300.

    Splink 5.0 rejects such a value when its own EM step computes one (a level seen only in pairs
    that are nothing alike), although it floors m and u at 1e-300 whenever it turns them into
    weights; a whole training run would fail on one rare level. `_floored` floors them in the
    saved model, so loading it needs no such allowance.
    """
    from splink.internals import comparison_level

    strict = comparison_level._validate_m_u_probability

    def tolerant(value, *args):
        if not (isinstance(value, float) and 0 <= value < comparison_level.M_U_CLAMP_MIN):
            strict(value, *args)

    comparison_level._validate_m_u_probability = tolerant
    try:
        yield
    finally:
        comparison_level._validate_m_u_probability = strict


def _floored(settings: dict) -> dict:
    from splink.internals.comparison_level import M_U_CLAMP_MIN

    for comparison in settings["comparisons"]:
        for level in comparison["comparison_levels"]:
            for p in ("m_probability", "u_probability"):
                if isinstance(level.get(p), float) and level[p] < M_U_CLAMP_MIN:
                    level[p] = M_U_CLAMP_MIN
    return settings


def _unlearned(settings: dict) -> list[str]:
    """Give no weight to a comparison whose m EM left undefined, and name those comparisons.

    EM divides by the matching pairs in which a column is present: when no pair of a pass has that
    column (a middle name few records carry), its m comes out 0/0 = NaN, which Splink would write into
    its SQL as a bare `nan`. Such a comparison was not learned from this data, so each of its levels gets
    m = u: a Bayes factor of 1, evidence neither way.
    """
    names = []
    for comparison in settings["comparisons"]:
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        if not any(isinstance(lv.get("m_probability"), float) and math.isnan(lv["m_probability"]) for lv in levels):
            continue
        for level in levels:
            level["m_probability"] = level.get("u_probability")
        names.append(comparison["output_column_name"])
    return names


def _require_similarity_functions(spark) -> None:
    """Splink's string similarities come from its jar, which must be on the session from the start."""
    try:
        spark.sql("SELECT jaro_winkler('a', 'b')").collect()
    except Exception as exc:
        from splink.backends.spark import similarity_jar_location

        raise Cx360Error(
            "this Spark session lacks Splink's similarity functions: start it with "
            f"spark.jars={similarity_jar_location()} (a Spark workspace's own session has it)"
        ) from exc


def _strings(frame: pd.DataFrame) -> pa.Table:
    """Every match feature is text; a column with no value at all still needs a type on Spark."""
    return pa.Table.from_pandas(
        frame, schema=pa.schema([(c, pa.string()) for c in frame.columns]), preserve_index=False
    )


def _rule(key: tuple[str, ...]):
    """Block on the key's capped column; naming the fields too tells an EM pass which comparisons it cannot learn."""
    from splink import block_on

    return block_on(block_column(key), *key)


def block_column(key: tuple[str, ...]) -> str:
    return "block__" + "__".join(key)


def add_blocks(
    tables: list[pd.DataFrame], keys: list[tuple[str, ...]], max_block_size: int
) -> tuple[list[pd.DataFrame], list[dict]]:
    """One blocking column per key: the key's values joined, or null where the value is shared by
    more than `max_block_size` records.

    A placeholder birth date or the most common surname would otherwise make one block of
    thousands of records, and its pairs (quadratic in the block) would swamp time and memory
    while adding almost no true matches. Returns the tables and the values left out.
    """
    out = [t.copy() for t in tables]
    oversized = []
    for key in keys:
        joined = []
        for t in out:
            value = t[key[0]].astype("string")
            for field in key[1:]:
                value = value + "\x1f" + t[field].astype("string")
            joined.append(value)
        counts = pd.concat(joined).value_counts()
        big = counts[counts > max_block_size]
        for value, n in big.items():
            oversized.append({"key": "+".join(key), "value": value.replace("\x1f", " "), "records": int(n)})
        for t, value in zip(out, joined, strict=True):
            kept = value.where(~value.isin(big.index))
            t[block_column(key)] = kept.astype(object).where(kept.notna(), None)
    return out, oversized


class MatchModel(BaseEstimator):
    """Fellegi-Sunter record matcher, trained unsupervised by expectation-maximisation.

    Parameters are keyword-only; `fit` learns match (m) and non-match (u) probabilities and the
    prior; `predict` scores candidate pairs and keeps those at or above `threshold`.
    Blocking values shared by more than `max_block_size` records find no candidates (see
    `add_blocks`); training reads a seeded sample of at most `max_training_records` records per
    table (m, u and the prior do not depend on how many records there are).
    `spark_session` runs Splink on Spark instead of an embedded DuckDB.
    """

    def __init__(
        self,
        *,
        threshold: float = 0.9,
        max_pairs: float = 2e6,
        seed: int = 42,
        exact_columns: tuple[str, ...] = (),
        recall: float = 0.8,
        max_block_size: int = 1000,
        max_training_records: int = 300_000,
        spark_session=None,
    ):
        self.threshold = threshold
        self.max_pairs = max_pairs
        self.seed = seed
        self.exact_columns = exact_columns
        self.recall = recall
        self.max_block_size = max_block_size
        self.max_training_records = max_training_records
        self.spark_session = spark_session

    def _linker(self, tables: list[pd.DataFrame], settings):
        from splink import DuckDBAPI, Linker

        if self.spark_session is None:
            from cx360.engine import local_duckdb

            db = DuckDBAPI(local_duckdb())
            frames = [db.register(t) for t in tables]
        else:
            from splink import SparkAPI

            db = SparkAPI(spark_session=self.spark_session)
            _require_similarity_functions(self.spark_session)
            frames = [db.register(self.spark_session.createDataFrame(_strings(t))) for t in tables]
        # Splink narrates training at INFO; a cx360 user wants the result, not the narration.
        return Linker(frames if len(frames) > 1 else frames[0], settings, log_level=logging.ERROR)

    def _tables(self, records, other) -> list[pd.DataFrame]:
        return [features(t, self.exact_columns) for t in (records, other) if t is not None]

    def fit(self, records, other=None, *, link_type: str | None = None) -> MatchModel:
        from splink import SettingsCreator

        tables = self._tables(records, other)
        cols = set.intersection(*({c for c in t.columns if t[c].notna().any()} for t in tables))
        self.keys_ = _prediction_keys(cols, self.exact_columns)
        if not self.keys_:
            # the data cannot train a matcher (identity resolution then keeps its deterministic links)
            raise TrainingDataError(
                f"no column to block on: give at least one of phone, email, birth_date, "
                f"last_name + first_name (have {sorted(cols)})"
            )
        deterministic, em = _training_keys(cols, self.exact_columns)
        tables, oversized = add_blocks(
            tables, list(dict.fromkeys(self.keys_ + deterministic + em)), self.max_block_size
        )
        predicting = {"+".join(k) for k in self.keys_}
        self.oversized_blocks_ = [
            o for o in oversized if o["key"] in predicting
        ]  # training-only keys find no candidates anyway
        training = [
            t.sample(n=self.max_training_records, random_state=self.seed) if len(t) > self.max_training_records else t
            for t in tables
        ]
        self.link_type_ = link_type or ("link_only" if other is not None else "dedupe_only")
        linker = self._linker(
            training,
            SettingsCreator(
                link_type=self.link_type_,
                comparisons=_comparisons(cols, self.exact_columns),
                blocking_rules_to_generate_predictions=[_rule(k) for k in self.keys_],
                retain_intermediate_calculation_columns=True,
                retain_matching_columns=False,
            ),
        )
        prior_keys = deterministic or self.keys_[:1]
        linker.training.estimate_probability_two_random_records_match(
            [_rule(k) for k in prior_keys], recall=self.recall
        )
        if not linker.misc.save_model_to_json()["probability_two_random_records_match"]:
            # Splink weighs every pair by log2 of this prior, which is undefined at 0
            raise TrainingDataError(
                "no two records agree on " + " or ".join("+".join(k) for k in prior_keys) + ", so the matcher "
                "cannot learn how often records match (the data may hold no duplicates)"
            )
        linker.training.estimate_u_using_random_sampling(max_pairs=self.max_pairs, seed=self.seed)
        linker = self._train_em(linker, em, training)
        self.settings_ = _floored(linker.misc.save_model_to_json())
        self.unlearned_ = _unlearned(self.settings_)
        return self

    def _train_em(self, linker, keys: list[tuple[str, ...]], training: list[pd.DataFrame]):
        """Two EM passes on different keys (a pass cannot learn the columns it blocks on).

        A strong identifier makes the best first pass: the pairs it yields are mostly true matches,
        which teaches what agreement on names and dates looks like. A key whose pass cannot run is
        skipped for the next one when it yields no pairs in this data; a failed pass can leave
        Splink's linker half-changed (its blocked comparisons dropped), so training goes on from a
        fresh linker with the model as it was. `em_passes_` records what was used and what was skipped.
        """
        from splink.internals.exceptions import EMTrainingException

        strong = ("email", "phone", *self.exact_columns)
        self.em_passes_ = []
        for key in keys:
            done = sum(p["trained"] for p in self.em_passes_)
            if done == 2 or (done == 1 and key[0] in strong):
                continue
            before = linker.misc.save_model_to_json()
            try:
                with _tolerate_underflow():
                    linker.training.estimate_parameters_using_expectation_maximisation(
                        _rule(key), max_pairs=self.max_pairs
                    )
                self.em_passes_.append({"key": "+".join(key), "trained": True})
            except EMTrainingException as exc:
                self.em_passes_.append({"key": "+".join(key), "trained": False, "reason": str(exc).splitlines()[0]})
                linker = self._linker(training, before)
        if not any(p["trained"] for p in self.em_passes_):
            tried = ", ".join(p["key"] for p in self.em_passes_) or "nothing"
            raise TrainingDataError(
                f"too few similar records to train the matcher (tried blocking on {tried}); "
                "add data, or set [identity] probabilistic = false to link on shared identifiers only"
            )
        return linker

    def predict(self, records, other=None, *, threshold: float | None = None) -> pa.Table:
        if not hasattr(self, "settings_"):
            raise NotFittedError("MatchModel is not fitted: call fit(records) first")
        tables, _ = add_blocks(self._tables(records, other), self.keys_, self.max_block_size)
        linker = self._linker(tables, self.settings_)
        cut = self.threshold if threshold is None else threshold
        pairs = linker.inference.predict(threshold_match_probability=cut).as_pandas_dataframe()
        # Evidence: each field's partial match weight (log2 Bayes factor): > 0 agreed, < 0 disagreed.
        weights = [c for c in pairs.columns if c.startswith("mw_")]
        evidence = [
            json.dumps(
                {
                    w[3:]: round(float(v), 2)
                    for w, v in zip(weights, row, strict=True)
                    if v is not None and v == v and v != 0
                }
            )
            for row in pairs[weights].itertuples(index=False)
        ]
        return pa.table(
            {
                "left_id": pairs["unique_id_l"].astype(str),
                "right_id": pairs["unique_id_r"].astype(str),
                "match_probability": pairs["match_probability"].astype(float),
                "match_weight": pairs["match_weight"].astype(float),
                "evidence": evidence,
            }
        )

    def summary(self) -> dict:
        """λ (the prior probability that two records match) and m/u per comparison level."""
        if not hasattr(self, "settings_"):
            raise NotFittedError("MatchModel is not fitted: call fit(records) first")
        return {
            "probability_two_random_records_match": self.settings_["probability_two_random_records_match"],
            "em_passes": self.em_passes_,
            "unlearned": self.unlearned_,
            "comparisons": {
                c["output_column_name"]: [
                    {"level": lv.get("label_for_charts"), "m": lv.get("m_probability"), "u": lv.get("u_probability")}
                    for lv in c["comparison_levels"]
                    if not lv.get("is_null_level")
                ]
                for c in self.settings_["comparisons"]
            },
        }
