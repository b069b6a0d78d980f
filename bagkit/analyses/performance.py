"""How good is the brain-age model on this cohort: accuracy on the controls, what its predicted SD
says, raw vs lesion-filled agreement, and several predictors side by side.

:func:`run_brain_age_model` is the ``brain_age_model`` analysis (registered in
``bagkit.analyses.ANALYSES``); its result fills the report's "Brain-age model"
section and these rows of ``results.csv``:

- ``model_performance, <control>, brain_age, , n | mae | mean_error | sd_error | pearson_r | pearson_p``
  — error = brain age − age (the controls' BAG), MAE = mean |error|, r = Pearson r of brain age
  with age (R: ``mean(abs(e))``, ``cor.test(age, brain_age)``);
- ``model_performance, <control>, brain_age, center=<C>, n | mae | mean_error`` — the same per
  center (R: ``tapply(abs(e), center, mean)``);
- ``predicted_sd, <group> | all, brain_age_sd, bag, n | pearson_r | pearson_p`` — Pearson r of the
  predicted SD with BAG (R: ``cor.test(brain_age_sd, bag)``);
- ``agreement, all, brain_age, raw - filled, …`` — Bland–Altman of raw vs lesion-filled brain age
  (see :mod:`bagkit.stats.agreement`);
- ``predictor_accuracy``, ``predictor_bag`` and ``agreement, all, brain_age, A - B, …`` — the
  predictor comparison (:func:`bagkit.stats.agreement.compare_predictions`) when the cohort has several
  brain-age columns (``brain_age_<name>``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bagkit.cohort import Cohort
from bagkit.errors import AnalysisError
from bagkit.results import concat_tidy, tidy_frame
from bagkit.stats.agreement import BlandAltman, PredictorComparison, bland_altman, compare_predictions
from bagkit.stats.comparisons import pearson

NOT_PREDICTORS = ("brain_age_sd", "brain_age_filled")


@dataclass(frozen=True)
class ModelPerformance:
    """Brain age against chronological age in one subset (the controls, as a rule)."""

    subset: str
    n: int
    mae: float
    mean_error: float  # mean(brain age − age): the subset's mean BAG
    sd_error: float
    pearson_r: float   # brain age with age
    pearson_p: float
    by_center: tuple[tuple[str, int, float, float], ...] = ()  # (center, n, mae, mean_error)

    def rows(self) -> list[tuple]:
        s, t = self.subset, "brain_age"
        out = [("model_performance", s, t, "", k, v) for k, v in (
            ("n", self.n), ("mae", self.mae), ("mean_error", self.mean_error), ("sd_error", self.sd_error),
            ("pearson_r", self.pearson_r), ("pearson_p", self.pearson_p))]
        for center, n, mae, mean_error in self.by_center:
            c = f"center={center}"
            out += [("model_performance", s, t, c, "n", n), ("model_performance", s, t, c, "mae", mae),
                    ("model_performance", s, t, c, "mean_error", mean_error)]
        return out


@dataclass(frozen=True)
class Correlation:
    """Pearson correlation of ``term`` with ``with_term`` in one subset."""

    analysis: str
    subset: str
    term: str
    with_term: str
    n: int
    pearson_r: float
    pearson_p: float

    def rows(self) -> list[tuple]:
        return [(self.analysis, self.subset, self.term, self.with_term, k, v)
                for k, v in (("n", self.n), ("pearson_r", self.pearson_r), ("pearson_p", self.pearson_p))]


def _pearson(x, y) -> tuple[int, float, float]:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return int(len(x)), float("nan"), float("nan")
    r, p = pearson(x, y)
    return int(len(x)), float(r), float(p)


def model_performance(data: pd.DataFrame, subset: str, brain_age: str = "brain_age", age: str = "age",
                      center: str | None = "center") -> ModelPerformance:
    """MAE, mean error (brain age − age) and Pearson r of brain age with age in ``data``
    (rows missing either are left out), overall and per center when ``center`` is a column."""
    frame = data[[c for c in (age, brain_age, center) if c and c in data.columns]]
    frame = frame.dropna(subset=[age, brain_age])
    if len(frame) < 2:
        raise AnalysisError(f"{subset}: model performance needs at least 2 subjects with {brain_age} and {age}; "
                            f"found {len(frame)}")
    error = frame[brain_age].astype(float) - frame[age].astype(float)
    n, r, p = _pearson(frame[age], frame[brain_age])
    by_center = ()
    if center and center in frame.columns and frame[center].notna().any():
        centers = frame[center].astype("string")
        by_center = tuple(
            (str(c), int(len(e)), float(e.abs().mean()), float(e.mean()))
            for c, e in error.groupby(centers, sort=True)
        )
    return ModelPerformance(subset=subset, n=int(len(frame)), mae=float(error.abs().mean()),
                            mean_error=float(error.mean()), sd_error=float(error.std(ddof=1)),
                            pearson_r=r, pearson_p=p, by_center=by_center)


def _numeric(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce").astype(float)


def predictor_columns(data: pd.DataFrame) -> dict[str, str]:
    """Brain-age columns of several predictors: ``brain_age_<name>`` (every value given is a
    number; not the SD or the lesion-filled one), by name."""
    found = {}
    for column in data.columns:
        if (isinstance(column, str) and column.startswith("brain_age_") and column not in NOT_PREDICTORS
                and not column.startswith("brain_age_sd_")):
            given = data[column].notna() & (data[column].astype(str).str.strip() != "")
            numbers = _numeric(data[column])
            if given.any() and numbers[given].notna().all():
                found[column[len("brain_age_"):]] = column
    return found


@dataclass(frozen=True)
class BrainAgeModel:
    """The ``brain_age_model`` analysis: every part the cohort supports (None where it does not)."""

    control: str | None
    performance: ModelPerformance | None
    sd_vs_bag: tuple[Correlation, ...]
    filled: BlandAltman | None
    comparison: PredictorComparison | None
    predictors: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def tidy(self) -> pd.DataFrame:
        rows = list(self.performance.rows()) if self.performance else []
        for correlation in self.sd_vs_bag:
            rows += correlation.rows()
        return concat_tidy([tidy_frame(rows), self.filled.tidy() if self.filled else None,
                            self.comparison.tidy() if self.comparison else None])


def run_brain_age_model(cohort: Cohort, options=None) -> BrainAgeModel:
    """Model performance on the controls (overall and by center), predicted SD vs BAG (all
    subjects and per group), raw vs lesion-filled Bland–Altman, and the predictor comparison."""
    if not cohort.has("brain_age"):
        raise AnalysisError("no brain age: the cohort needs a brain_age column (or scans and --predictor)")
    data, notes = cohort.data, []
    performance = None
    if cohort.control is None:
        notes.append("model performance skipped: no control group")
    else:
        try:
            performance = model_performance(cohort.group(cohort.control), cohort.control)
        except AnalysisError as error:
            notes.append(f"model performance skipped: {error}")
    sd_vs_bag = []
    if cohort.has("brain_age_sd"):
        bag = data["brain_age"] - data["age"]
        for subset in ("all", *cohort.groups):
            rows = data.index if subset == "all" else data.index[data["group"] == subset]
            n, r, p = _pearson(data.loc[rows, "brain_age_sd"], bag.loc[rows])
            sd_vs_bag.append(Correlation("predicted_sd", subset, "brain_age_sd", "bag", n, r, p))
    filled = None
    if cohort.has("brain_age_filled"):
        try:
            filled = bland_altman(data["brain_age"], data["brain_age_filled"], labels=("raw", "filled"))
        except AnalysisError as error:
            notes.append(f"raw vs lesion-filled skipped: {error}")
    comparison, names = None, ()
    columns = predictor_columns(data)
    if columns:
        frames = {name: pd.DataFrame({"subject_id": data["subject_id"], "brain_age": _numeric(data[column])})
                  for name, column in columns.items()}
        if not any(np.allclose(data["brain_age"], frame["brain_age"], equal_nan=True) for frame in frames.values()):
            frames = {"brain_age": pd.DataFrame({"subject_id": data["subject_id"], "brain_age": data["brain_age"]}),
                      **frames}
        if len(frames) >= 2 and cohort.control is not None:
            try:
                comparison = compare_predictions(frames, data, control=cohort.control)
                names = tuple(frames)
            except AnalysisError as error:
                notes.append(f"predictor comparison skipped: {error}")
        elif cohort.control is None:
            notes.append("predictor comparison skipped: no control group")
    return BrainAgeModel(cohort.control, performance, tuple(sd_vs_bag), filled, comparison, names, tuple(notes))


__all__ = ["ModelPerformance", "Correlation", "BrainAgeModel", "model_performance", "predictor_columns",
           "run_brain_age_model"]
