"""Agreement between two brain-age measurements (raw vs lesion-filled, predictor vs predictor).

:func:`bland_altman` gives R², Pearson r (and its p), the Bland–Altman mean
difference ± SD and the 95% limits of agreement with their confidence intervals,
after Bland & Altman (1999, Stat Methods Med Res 8:135–160): with differences
``d = a − b``, mean ``d̄``, SD ``s`` and ``n`` pairs,

- mean difference CI: ``d̄ ± t(0.975, n−1) · s / √n``;
- limits of agreement: ``d̄ ± 1.96 s``;
- their CIs: ``LoA ± t(0.975, n−1) · √(3 s² / n)``.

:func:`compare_predictions` puts several predictors side by side on one cohort.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Mapping

import numpy as np
import pandas as pd

from bagkit.errors import AnalysisError
from bagkit.results import concat_tidy, tidy_frame
from bagkit.stats.comparisons import pearson
from bagkit.stats.distributions import t_ppf

LOA_MULTIPLIER = 1.96


@dataclass(frozen=True)
class BlandAltman:
    """Agreement of ``a`` with ``b`` (differences are ``a − b``)."""

    labels: tuple[str, str]
    n: int
    r_squared: float
    pearson_r: float
    pearson_p: float
    mean_difference: float
    sd_difference: float
    mean_difference_ci: tuple[float, float]
    lower_limit: float
    upper_limit: float
    lower_limit_ci: tuple[float, float]
    upper_limit_ci: tuple[float, float]
    confidence: float = 0.95
    subset: str = "all"
    means: tuple = field(default=(), repr=False)
    differences: tuple = field(default=(), repr=False)

    @property
    def contrast(self) -> str:
        return f"{self.labels[0]} - {self.labels[1]}"

    def tidy(self) -> pd.DataFrame:
        rows = [
            ("n", self.n), ("r_squared", self.r_squared), ("pearson_r", self.pearson_r),
            ("pearson_p", self.pearson_p), ("mean_difference", self.mean_difference),
            ("sd_difference", self.sd_difference),
            ("mean_difference_ci_low", self.mean_difference_ci[0]),
            ("mean_difference_ci_high", self.mean_difference_ci[1]),
            ("lower_limit", self.lower_limit), ("upper_limit", self.upper_limit),
            ("lower_limit_ci_low", self.lower_limit_ci[0]), ("lower_limit_ci_high", self.lower_limit_ci[1]),
            ("upper_limit_ci_low", self.upper_limit_ci[0]), ("upper_limit_ci_high", self.upper_limit_ci[1]),
        ]
        return tidy_frame(("agreement", self.subset, "brain_age", self.contrast, s, v) for s, v in rows)

    def summary(self) -> pd.DataFrame:
        """One row per statistic (as :meth:`tidy`, without the key columns): ``statistic, value``."""
        return self.tidy()[["statistic", "value"]].reset_index(drop=True)

    def describe(self) -> str:
        """The result in one sentence, as a methods section would report it."""
        lo, hi = self.mean_difference_ci
        return (
            f"{self.labels[0]} vs {self.labels[1]} (n = {self.n}): R² = {self.r_squared:.3f}, "
            f"r = {self.pearson_r:.3f} (p = {self.pearson_p:.3g}); mean difference {self.mean_difference:.2f} "
            f"± {self.sd_difference:.2f} (95% CI {lo:.2f} to {hi:.2f}); limits of agreement "
            f"{self.lower_limit:.2f} (95% CI {self.lower_limit_ci[0]:.2f} to {self.lower_limit_ci[1]:.2f}) to "
            f"{self.upper_limit:.2f} (95% CI {self.upper_limit_ci[0]:.2f} to {self.upper_limit_ci[1]:.2f})"
        )


def bland_altman(a, b, labels: tuple[str, str] = ("a", "b"), confidence: float = 0.95,
                 subset: str = "all") -> BlandAltman:
    """Bland–Altman agreement of two paired measurements (pairs with a missing value are dropped)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise AnalysisError(f"{labels[0]} has {a.size} values but {labels[1]} has {b.size}; they must be paired.")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = int(a.size)
    if n < 3:
        raise AnalysisError(f"Bland–Altman needs at least 3 complete pairs of {labels[0]} and {labels[1]}; got {n}.")
    difference = a - b
    mean_difference = float(difference.mean())
    sd = float(difference.std(ddof=1))
    t = t_ppf(0.5 + confidence / 2, n - 1)
    half = t * sd / np.sqrt(n)
    lower = mean_difference - LOA_MULTIPLIER * sd
    upper = mean_difference + LOA_MULTIPLIER * sd
    loa_half = t * np.sqrt(3.0 * sd**2 / n)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        r, p = float("nan"), float("nan")
    else:
        r, p = pearson(a, b)
    return BlandAltman(
        labels=(str(labels[0]), str(labels[1])), n=n, r_squared=float(r) ** 2, pearson_r=float(r),
        pearson_p=float(p), mean_difference=mean_difference, sd_difference=sd,
        mean_difference_ci=(mean_difference - half, mean_difference + half),
        lower_limit=lower, upper_limit=upper,
        lower_limit_ci=(lower - loa_half, lower + loa_half), upper_limit_ci=(upper - loa_half, upper + loa_half),
        confidence=confidence, subset=subset,
        means=tuple(((a + b) / 2).tolist()), differences=tuple(difference.tolist()),
    )


@dataclass(frozen=True)
class PredictorComparison:
    """Several predictors on one cohort: accuracy on controls, pairwise agreement, BAG per group."""

    accuracy: pd.DataFrame       # index predictor; n, mae, pearson_r, pearson_p (controls)
    agreement: dict              # (name_a, name_b) -> BlandAltman
    bag_by_group: pd.DataFrame   # rows group; columns (predictor, statistic)
    control: str

    def tidy(self) -> pd.DataFrame:
        rows = []
        for name, row in self.accuracy.iterrows():
            for statistic in ("n", "mae", "pearson_r", "pearson_p"):
                rows.append(("predictor_accuracy", self.control, str(name), "", statistic, row[statistic]))
        for group, row in self.bag_by_group.iterrows():
            for (name, statistic), value in row.items():
                rows.append(("predictor_bag", str(group), str(name), "", statistic, value))
        return concat_tidy([tidy_frame(rows), *(result.tidy() for result in self.agreement.values())])


def _aligned(frames: Mapping[str, pd.DataFrame], cohort: pd.DataFrame) -> pd.DataFrame:
    out = cohort.copy()
    for name, frame in frames.items():
        if "brain_age" not in frame.columns:
            raise AnalysisError(f"the predictions of {name!r} have no 'brain_age' column "
                                f"(columns: {', '.join(map(str, frame.columns))}).")
        if "subject_id" in frame.columns and "subject_id" in cohort.columns:
            mapping = frame.drop_duplicates("subject_id").set_index("subject_id")["brain_age"]
            missing = set(cohort["subject_id"]) - set(mapping.index)
            if len(missing) == len(cohort):
                raise AnalysisError(f"none of the cohort's subject_id values appear in the predictions of {name!r}.")
            out[name] = cohort["subject_id"].map(mapping).astype(float).values
        else:
            out[name] = frame["brain_age"].reindex(cohort.index).astype(float).values
    return out


def compare_predictions(frames: Mapping[str, pd.DataFrame], cohort_frame: pd.DataFrame,
                        control: str = "HC", group: str = "group", age: str = "age") -> PredictorComparison:
    """Compare predictors on the same cohort.

    ``frames`` maps a predictor name to its predictions (``brain_age``, matched by
    ``subject_id`` when both tables have it, else by index). Returns MAE and Pearson r
    against age in the controls, Bland–Altman between every pair of predictors, and
    mean/SD of BAG per group for each predictor.
    """
    if len(frames) < 1:
        raise AnalysisError("compare_predictions needs at least one predictor's predictions.")
    for column in (age, group):
        if column not in cohort_frame.columns:
            raise AnalysisError(f"the cohort table has no {column!r} column, needed to compare predictors.")
    data = _aligned(frames, cohort_frame)
    names = list(frames)
    controls = data[data[group].astype(str) == str(control)]
    if controls.empty:
        raise AnalysisError(f"no controls labelled {control!r} in column {group!r}.")
    accuracy_rows = []
    for name in names:
        pair = controls[[age, name]].dropna()
        err = (pair[name] - pair[age]).abs()
        r, p = pearson(pair[age], pair[name]) if len(pair) >= 3 else (np.nan, np.nan)
        accuracy_rows.append({"predictor": name, "n": len(pair), "mae": float(err.mean()),
                              "pearson_r": float(r), "pearson_p": float(p)})
    accuracy = pd.DataFrame(accuracy_rows).set_index("predictor")
    agreement = {
        (a, b): bland_altman(data[a], data[b], labels=(a, b)) for a, b in combinations(names, 2)
    }
    pieces = {}
    for name in names:
        bag = (data[name] - data[age]).groupby(data[group].astype(str))
        pieces[(name, "n")] = bag.count()
        pieces[(name, "mean_bag")] = bag.mean()
        pieces[(name, "sd_bag")] = bag.std(ddof=1)
    bag_by_group = pd.DataFrame(pieces)
    bag_by_group.columns = pd.MultiIndex.from_tuples(bag_by_group.columns, names=["predictor", "statistic"])
    bag_by_group.index.name = group
    return PredictorComparison(accuracy=accuracy, agreement=agreement, bag_by_group=bag_by_group, control=control)


__all__ = ["BlandAltman", "bland_altman", "PredictorComparison", "compare_predictions"]
