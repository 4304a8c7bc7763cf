"""Churn risk: the learner that cross-validates best, with a calibrated probability and per-customer reasons.

Three learners compete on the training rows (`learner="auto"`): a regularised logistic regression
(`LinearChurn`), gradient boosting (LightGBM, on the table as `TablePrep` reads it) and a blend, the mean
of their log-odds. Each is scored by out-of-fold ROC-AUC; the best wins, and within `SIMPLER_WITHIN` of it
the simplest does, since a small table rarely repays the trees. The probability is calibrated on a
held-out part of the training rows (the latest rows when a time column is given), which also stops the
boosting early. Reasons are the features that push this customer's log-odds up the most: SHAP values
(LightGBM `pred_contrib`) for the trees, coefficient times deviation from the mean for the regression.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from cx360.errors import ConfigError, DataError, ModelError
from cx360.models.evaluation import Baseline
from cx360.models.linear import LinearChurn
from cx360.models.tabular import TablePrep, describe_value

CALIBRATIONS = ("auto", "isotonic", "sigmoid")
LEARNERS = ("logistic", "lightgbm", "blend")  # simplest first: ties go to the earlier
SIMPLER_WITHIN = 0.002  # out-of-fold ROC-AUC a more complex learner must gain to be chosen
MODEL_FILE = "model.txt"
STATE_FILE = "churn_model.json"
FORMAT = 2
READS = (1, 2)  # format 1: LightGBM only


class ChurnModel(ClassifierMixin, BaseEstimator):
    """Binary churn classifier on a raw customer table; `y` is 1 for churners. A scikit-learn estimator:
    `clone`, `GridSearchCV` and `Pipeline` take it as they take their own."""

    def __init__(
        self,
        *,
        id_column: str | None = None,
        label_column: str | None = None,
        time_column: str | None = None,
        exclude: tuple[str, ...] = (),
        learner: str = "auto",
        cv_folds: int = 4,
        calibration: str = "auto",
        calibration_size: float = 0.2,
        n_estimators: int = 1000,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 20,
        top_k: int = 3,
        random_state: int = 0,
        n_jobs: int = 1,
    ):
        self.id_column = id_column
        self.label_column = label_column
        self.time_column = time_column
        self.exclude = exclude
        self.learner = learner
        self.cv_folds = cv_folds
        self.calibration = calibration
        self.calibration_size = calibration_size
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.top_k = top_k
        self.random_state = random_state
        self.n_jobs = n_jobs

    # ---- training

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> ChurnModel:
        if self.calibration not in CALIBRATIONS:
            raise ConfigError(f"calibration={self.calibration!r}: expected one of {', '.join(CALIBRATIONS)}")
        if self.learner not in ("auto", *LEARNERS):
            raise ConfigError(f"learner={self.learner!r}: expected one of auto, {', '.join(LEARNERS)}")
        y = np.asarray(y, dtype=int)
        skip = dict.fromkeys(self.exclude, "excluded")
        if self.id_column:
            skip[self.id_column] = "id"
        if self.label_column:
            skip[self.label_column] = "label"
        if self.time_column:
            skip[self.time_column] = "time column, used to split"
        self.prep_ = TablePrep.fit(X, skip=skip)
        features = self.prep_.transform(X, what="the training table")
        fit_idx, cal_idx = self._calibration_split(X, y)
        fit_rows, cal_rows = features.iloc[fit_idx], features.iloc[cal_idx]
        if self.learner == "auto":
            times = _time_values(X[self.time_column], self.time_column).to_numpy() if self.time_column else None
            self.selection_ = self._select(fit_rows, y[fit_idx], None if times is None else times[fit_idx])
        else:
            self.selection_ = {"chosen": self.learner, "why": f"set by learner={self.learner!r}", "cv": {}}
        self.learner_ = self.selection_["chosen"]
        self.booster_, self.linear_ = None, None
        if self.learner_ != "logistic":
            self.booster_ = self._boost(fit_rows, y[fit_idx], cal_rows, y[cal_idx])
        if self.learner_ != "lightgbm":
            self.linear_ = LinearChurn.fit(fit_rows, y[fit_idx], seed=self.random_state)
        self.calibrator_ = _fit_calibrator(self._raw(cal_rows), y[cal_idx], self.calibration)
        self.baseline_ = Baseline().fit(features, y)
        self.classes_ = np.array([0, 1])
        self.split_ = {"fit_rows": len(fit_idx), "calibration_rows": len(cal_idx)}
        if self.booster_ is not None:
            self.split_["trees"] = int(self.booster_.best_iteration or self.booster_.num_trees())
        return self

    def _boost(self, train_x: pd.DataFrame, train_y: np.ndarray, stop_x: pd.DataFrame, stop_y: np.ndarray):
        """A booster fitted on the train rows, its number of trees chosen on the stop rows."""
        import lightgbm as lgb

        params = {
            "objective": "binary",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "feature_fraction": 0.8,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "lambda_l2": 1.0,
            "seed": self.random_state,
            "deterministic": True,
            # One thread by default: on tables of this size OpenMP threads on a busy machine spin-wait and
            # train 10-50x slower than one thread (measured: 3,333 rows, 1.2 s on 1 thread, 22 s on 2).
            "force_col_wise": True,
            "num_threads": self.n_jobs,
            "verbose": -1,
        }
        train = lgb.Dataset(train_x, train_y, free_raw_data=False)
        valid = lgb.Dataset(stop_x, stop_y, reference=train)
        return lgb.train(
            params,
            train,
            num_boost_round=self.n_estimators,
            valid_sets=[valid],
            callbacks=[lgb.early_stopping(50, verbose=False)],
        )

    def _select(self, features: pd.DataFrame, y: np.ndarray, times: np.ndarray | None) -> dict:
        """Out-of-fold ROC-AUC of each learner on the training rows, and the one chosen with the reason."""
        from sklearn.metrics import roc_auc_score
        from sklearn.model_selection import train_test_split

        folds, how = self._folds(y, times)
        scores: dict[str, list[float]] = {name: [] for name in LEARNERS}
        for train_idx, test_idx in folds:
            # The booster's early stopping sees a part of the fold's training rows, never its test rows.
            inner, stop = train_test_split(
                train_idx, test_size=0.2, stratify=y[train_idx], random_state=self.random_state
            )
            booster = self._boost(features.iloc[inner], y[inner], features.iloc[stop], y[stop])
            linear = LinearChurn.fit(features.iloc[train_idx], y[train_idx], seed=self.random_state)
            test = features.iloc[test_idx]
            trees = booster.predict(test, raw_score=True)
            lines = linear.raw(test)
            for name, raw in (("logistic", lines), ("lightgbm", trees), ("blend", (lines + trees) / 2)):
                scores[name].append(float(roc_auc_score(y[test_idx], raw)))
        cv = {name: float(np.mean(v)) for name, v in scores.items()}
        best = max(cv.values())
        chosen = next(name for name in LEARNERS if cv[name] >= best - SIMPLER_WITHIN)
        ranked = ", ".join(f"{name} {cv[name]:.4f}" for name in sorted(cv, key=cv.get, reverse=True))
        why = f"out-of-fold ROC-AUC over {how}: {ranked}"
        if cv[chosen] < best:
            why += f"; {chosen} is within {SIMPLER_WITHIN} of the best and simpler"
        return {"chosen": chosen, "why": why, "cv": cv}

    def _folds(self, y: np.ndarray, times: np.ndarray | None) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
        """Cross-validation folds. With a time column they run forward, each fold trained on earlier
        times and tested on the next ones, as the model will be used: shuffled folds would let the
        trees learn a customer's later snapshot and be judged on an earlier one, which flatters them."""
        if times is not None:
            groups = np.array_split(np.unique(times), min(self.cv_folds + 1, len(np.unique(times))))
            folds = []
            for i in range(1, len(groups)):
                train_idx = np.flatnonzero(times < groups[i][0])
                test_idx = np.flatnonzero(np.isin(times, groups[i]))
                if len(np.unique(y[train_idx])) == 2 and len(np.unique(y[test_idx])) == 2:
                    folds.append((train_idx, test_idx))
            if folds:
                return folds, f"{len(folds)} forward fold(s) in time of the training rows"
        from sklearn.model_selection import StratifiedKFold

        splitter = StratifiedKFold(n_splits=self.cv_folds, shuffle=True, random_state=self.random_state)
        return list(splitter.split(np.zeros(len(y)), y)), f"{self.cv_folds} folds of the training rows"

    def _calibration_split(self, X: pd.DataFrame, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if np.bincount(y, minlength=2).min() < 10:
            raise DataError(
                f"too few rows of one class to train (churners: {int(y.sum())}, "
                f"others: {int(len(y) - y.sum())}); at least 10 of each are needed"
            )
        if self.time_column:
            order = np.argsort(_time_values(X[self.time_column], self.time_column).to_numpy(), kind="stable")
            cut = int(len(order) * (1 - self.calibration_size))
            fit_idx, cal_idx = np.sort(order[:cut]), np.sort(order[cut:])
            if len(np.unique(y[cal_idx])) == 2:
                return fit_idx, cal_idx
        from sklearn.model_selection import train_test_split

        idx = np.arange(len(y))
        fit_idx, cal_idx = train_test_split(
            idx, test_size=self.calibration_size, stratify=y, random_state=self.random_state
        )
        return np.sort(fit_idx), np.sort(cal_idx)

    # ---- scoring

    def _check(self) -> None:
        if not hasattr(self, "learner_"):
            raise ModelError("this ChurnModel is not fitted: call fit() or ChurnModel.load() first")

    def _raw(self, features: pd.DataFrame) -> np.ndarray:
        """The chosen learner's log-odds of churn, before calibration."""
        if self.learner_ == "logistic":
            return self.linear_.raw(features)
        trees = self.booster_.predict(features, raw_score=True)
        return trees if self.learner_ == "lightgbm" else (trees + self.linear_.raw(features)) / 2

    def _contributions(self, features: pd.DataFrame) -> np.ndarray:
        """Rows x features: each feature's push on the chosen learner's log-odds."""
        names = self.prep_.names
        parts = []
        if self.booster_ is not None:
            parts.append(np.asarray(self.booster_.predict(features, pred_contrib=True))[:, :-1])
        if self.linear_ is not None:
            parts.append(self.linear_.contributions(features, names))
        return sum(parts) / len(parts)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Two columns as in scikit-learn: P(stay), P(churn)."""
        p = self.churn_probability(X)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.churn_probability(X) >= 0.5).astype(int)

    def churn_probability(self, X: pd.DataFrame) -> np.ndarray:
        self._check()
        features = self.prep_.transform(X, what="the table to score")
        return _apply_calibrator(self.calibrator_, self._raw(features))

    def baseline_probability(self, X: pd.DataFrame) -> np.ndarray:
        self._check()
        return self.baseline_.predict_proba(self.prep_.transform(X, what="the table to score"))

    def reasons(self, X: pd.DataFrame, top_k: int | None = None) -> list[list[str]]:
        """Per row, the features that push this customer's risk up most: `name=value (+log-odds)`."""
        self._check()
        k = self.top_k if top_k is None else top_k
        features = self.prep_.transform(X, what="the table to score")
        contrib = self._contributions(features)
        order = np.argsort(-contrib, axis=1, kind="stable")[:, :k]
        names = self.prep_.names
        columns = [features[n].astype(object).to_numpy() for n in names]
        out = []
        for i, top in enumerate(order):
            out.append(
                [f"{names[j]}={describe_value(columns[j][i])} (+{contrib[i, j]:.2f})" for j in top if contrib[i, j] > 0]
            )
        return out

    def score_table(self, X: pd.DataFrame, top_k: int | None = None) -> pd.DataFrame:
        """id (when the model has one), churn_probability, reason_1..reason_k."""
        k = self.top_k if top_k is None else top_k
        out = pd.DataFrame(index=X.index)
        if self.id_column:
            if self.id_column not in X.columns:
                raise DataError(f"the table to score has no id column '{self.id_column}'")
            out[self.id_column] = X[self.id_column]
        out["churn_probability"] = self.churn_probability(X).round(6)
        reasons = self.reasons(X, k)
        for r in range(k):
            out[f"reason_{r + 1}"] = [row[r] if r < len(row) else "" for row in reasons]
        return out.reset_index(drop=True)

    # ---- persistence

    def save(self, path: Path, extra: dict | None = None) -> None:
        """The booster as LightGBM text, everything else as JSON: readable, no pickle."""
        self._check()
        path.mkdir(parents=True, exist_ok=True)
        (path / MODEL_FILE).unlink(missing_ok=True)
        if self.booster_ is not None:
            self.booster_.save_model(str(path / MODEL_FILE))
        state = {
            "format": FORMAT,
            "params": self.get_params(),
            "learner": self.learner_,
            "selection": self.selection_,
            "linear": self.linear_.to_dict() if self.linear_ is not None else None,
            "prep": self.prep_.to_dict(),
            "calibrator": self.calibrator_,
            "baseline": self.baseline_.to_dict(),
            "split": self.split_,
            "extra": extra or {},
        }
        (path / STATE_FILE).write_text(json.dumps(state, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> ChurnModel:
        import lightgbm as lgb

        if not path.is_dir():
            raise ModelError(f"{path}: no model directory here (train one with `cx360 churn train`)")
        try:
            state = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
            if state.get("format") not in READS:
                raise ValueError(f"format {state.get('format')!r}, this cx360 reads formats {READS}")
            model = cls(**{**state["params"], "exclude": tuple(state["params"]["exclude"])})
            model.learner_ = state.get("learner", "lightgbm")
            model.selection_ = state.get("selection", {"chosen": "lightgbm", "why": "format 1 model", "cv": {}})
            model.booster_ = None if model.learner_ == "logistic" else lgb.Booster(model_file=str(path / MODEL_FILE))
            model.linear_ = LinearChurn.from_dict(state["linear"]) if state.get("linear") else None
            model.classes_ = np.array([0, 1])
            model.prep_ = TablePrep.from_dict(state["prep"])
            model.calibrator_ = state["calibrator"]
            model.baseline_ = Baseline.from_dict(state["baseline"])
            model.split_ = state["split"]
            model.extra_ = state["extra"]
        except (OSError, ValueError, KeyError, TypeError, lgb.basic.LightGBMError) as exc:
            raise ModelError(f"{path}: not a readable churn model ({type(exc).__name__}: {exc})") from exc
        return model


def _time_values(values: pd.Series, column: str) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64")
    dates = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    if dates.isna().any():
        bad = values[dates.isna()].astype(str).unique()[:5]
        raise DataError(f"time column '{column}' holds values that are not dates: {', '.join(map(repr, bad))}")
    return dates.astype("int64").astype("float64")


def _fit_calibrator(raw: np.ndarray, y: np.ndarray, method: str) -> dict:
    # Isotonic needs enough rows not to overfit its steps; Platt's two parameters do with few.
    if method == "auto":
        method = "isotonic" if len(y) >= 1000 and min(y.sum(), len(y) - y.sum()) >= 50 else "sigmoid"
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y)
        return {"method": "isotonic", "x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e6).fit(raw.reshape(-1, 1), y)
    return {"method": "sigmoid", "a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])}


def _apply_calibrator(cal: dict, raw: np.ndarray) -> np.ndarray:
    if cal["method"] == "isotonic":
        # Isotonic steps tie many customers; a negligible term in the raw score breaks the ties in the
        # booster's order, so calibrating never costs ranking (ROC-AUC, lift).
        tie_break = 1e-6 / (1.0 + np.exp(-raw))
        return np.clip(np.interp(raw, cal["x"], cal["y"]) * (1 - 1e-6) + tie_break, 0.0, 1.0)
    return 1.0 / (1.0 + np.exp(-(cal["a"] * raw + cal["b"])))
