"""Age-bias correction of predicted brain age, fitted on healthy controls only.

Brain-age predictions regress towards the mean age of the training set: the young
look older and the old look younger, so the raw brain age gap (BAG = brain_age − age)
correlates negatively with age. Two corrections are in common use; both are fitted
on the controls and then applied to everybody:

``method="linear"`` — the linear (inverse) correction of Cole et al. (2018) and
de Lange et al. (2019). In the controls regress brain age on age,
``brain_age = a·age + b``; the corrected brain age is ``(brain_age − b) / a`` and the
corrected BAG is that minus age.

``method="bag"`` — the alternative of Smith et al. (2019) and Beheshti et al. (2019).
In the controls regress the gap on age, ``BAG = α·age + β``; the corrected BAG is
``BAG − (α·age + β)`` and the corrected brain age is ``age + corrected BAG``.

Fitting on patients would remove the very effect under study, so it is refused
unless ``allow_patients=True`` is passed on purpose.

The controls' own corrected values: a correction fitted on the controls and applied back to
them makes their mean corrected BAG zero (method ``bag``) and their corrected BAG uncorrelated
with age *by construction*, so their numbers would say nothing about the model. de Lange & Cole
(2020, NeuroImage: Clinical 26:102229) stress that the correction must be estimated on data
independent of the subjects it is evaluated on; :func:`cross_fitted_bag` does that within the
cohort by k-fold cross-fitting (each control is corrected by the fit on the other folds), and a
separate calibration sample (a table of healthy subjects' age and brain age) does it outside.
Le et al. (2018, Front. Psychiatry 9:317) add that group comparisons of BAG should include age
as a covariate whatever the correction: bagkit reports ``lm(bag ~ group + age)`` beside the
unadjusted comparison.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bagkit.errors import AnalysisError
from bagkit.results import tidy_frame

METHODS = {
    "linear": "Cole / de Lange: brain_age = a·age + b in controls; corrected = (brain_age − b) / a",
    "bag": "Smith / Beheshti: BAG = α·age + β in controls; corrected BAG = BAG − (α·age + β)",
}


@dataclass(frozen=True)
class AgeBiasCorrection:
    """A fitted age-bias correction (see the module docstring for both formulas).

    ``slope`` / ``intercept`` are ``a`` / ``b`` for ``method="linear"`` and ``α`` / ``β``
    for ``method="bag"``.
    """

    method: str
    slope: float
    intercept: float
    n: int
    fitted_on: str = "controls"

    @classmethod
    def fit(cls, age, brain_age, groups=None, control: str = "HC", method: str = "linear",
            allow_patients: bool = False) -> "AgeBiasCorrection":
        """Fit on the subjects given. ``groups`` (one label per subject) is checked:
        anyone not in the ``control`` group is refused unless ``allow_patients=True``."""
        if method not in METHODS:
            raise AnalysisError(f"bias-correction method must be one of {sorted(METHODS)}, not {method!r}.")
        age = np.asarray(age, dtype=float)
        brain_age = np.asarray(brain_age, dtype=float)
        if age.shape != brain_age.shape:
            raise AnalysisError(f"age has {age.size} values but brain_age has {brain_age.size}.")
        fitted_on = "controls"
        if groups is not None:
            labels = np.asarray(pd.Series(groups).astype(str))
            if labels.size != age.size:
                raise AnalysisError(f"groups has {labels.size} labels for {age.size} subjects.")
            patients = labels != str(control)
            if patients.any():
                if not allow_patients:
                    found = ", ".join(sorted(set(labels[patients])))
                    raise AnalysisError(
                        f"age-bias correction is fitted on healthy controls only, but {int(patients.sum())} "
                        f"subjects are not in the control group {control!r} (found: {found}). Fit on the "
                        f"controls, or pass allow_patients=True if you really mean it."
                    )
                fitted_on = "all subjects (patients allowed)"
        elif allow_patients:
            fitted_on = "all subjects (patients allowed)"
        keep = np.isfinite(age) & np.isfinite(brain_age)
        age, brain_age = age[keep], brain_age[keep]
        if age.size < 3:
            raise AnalysisError(f"age-bias correction needs at least 3 controls with age and brain_age; got {age.size}.")
        if np.ptp(age) == 0:
            raise AnalysisError("age-bias correction needs controls of different ages (all have the same age).")
        target = brain_age if method == "linear" else brain_age - age
        slope, intercept = np.polyfit(age, target, 1)
        if method == "linear" and abs(slope) < 1e-6:
            raise AnalysisError(
                "brain age does not change with age in the controls (slope ≈ 0); the linear correction "
                "(brain_age − b)/a is undefined. Check the predictions."
            )
        return cls(method=method, slope=float(slope), intercept=float(intercept), n=int(age.size),
                   fitted_on=fitted_on)

    def corrected_brain_age(self, age, brain_age) -> np.ndarray:
        age = np.asarray(age, dtype=float)
        brain_age = np.asarray(brain_age, dtype=float)
        if self.method == "linear":
            return (brain_age - self.intercept) / self.slope
        return age + self.corrected_bag(age, brain_age)

    def corrected_bag(self, age, brain_age) -> np.ndarray:
        age = np.asarray(age, dtype=float)
        brain_age = np.asarray(brain_age, dtype=float)
        if self.method == "linear":
            return self.corrected_brain_age(age, brain_age) - age
        return (brain_age - age) - (self.slope * age + self.intercept)

    def apply(self, frame: pd.DataFrame, age: str = "age", brain_age: str = "brain_age") -> pd.DataFrame:
        """A copy of ``frame`` with ``brain_age_corrected`` and ``bag_corrected`` added."""
        for column in (age, brain_age):
            if column not in frame.columns:
                raise AnalysisError(f"bias correction needs the column {column!r}; the table has "
                                    f"{', '.join(map(str, frame.columns))}.")
        out = frame.copy()
        out["brain_age_corrected"] = self.corrected_brain_age(frame[age], frame[brain_age])
        out["bag_corrected"] = self.corrected_bag(frame[age], frame[brain_age])
        return out

    def tidy(self) -> pd.DataFrame:
        return tidy_frame([
            ("bias_correction", self.fitted_on, "brain_age", self.method, "slope", self.slope),
            ("bias_correction", self.fitted_on, "brain_age", self.method, "intercept", self.intercept),
            ("bias_correction", self.fitted_on, "brain_age", self.method, "n", self.n),
        ])


DEFAULT_FOLDS = 10


def cross_fitting_folds(n: int, folds: int = DEFAULT_FOLDS, seed: int = 0) -> np.ndarray:
    """The fold (0..k−1) of each of ``n`` subjects: a seeded random permutation cut into ``k =
    min(folds, n)`` nearly equal parts."""
    folds = min(int(folds), n)
    fold = np.empty(n, dtype=int)
    for k, members in enumerate(np.array_split(np.random.default_rng(seed).permutation(n), folds)):
        fold[members] = k
    return fold


def cross_fitted_bag(age, brain_age, method: str = "linear", folds: int = DEFAULT_FOLDS,
                     seed: int = 0) -> np.ndarray:
    """Each control's corrected BAG from a correction fitted on the *other* folds (k-fold cross-fitting).

    The controls are split into ``folds`` seeded random folds of (nearly) equal size (at most one
    per control; each fold must leave at least 3 controls to fit on). Subjects without age or
    brain age get NaN.
    """
    age, brain_age = np.asarray(age, dtype=float), np.asarray(brain_age, dtype=float)
    known = np.flatnonzero(np.isfinite(age) & np.isfinite(brain_age))
    folds = int(folds)
    if folds < 2:
        raise AnalysisError(f"cross-fitting needs at least 2 folds; got {folds}")
    if len(known) < 4:
        raise AnalysisError(f"cross-fitting the age-bias correction needs at least 4 controls with age and "
                            f"brain age; got {len(known)}")
    fold = cross_fitting_folds(len(known), folds, seed)
    out = np.full(age.shape, np.nan)
    for k in range(fold.max() + 1):
        held_out, train = known[fold == k], known[fold != k]
        fit = AgeBiasCorrection.fit(age[train], brain_age[train], method=method)
        out[held_out] = fit.corrected_bag(age[held_out], brain_age[held_out])
    return out


def fit_bias_correction(frame: pd.DataFrame, control: str = "HC", method: str = "linear",
                        group: str = "group", age: str = "age", brain_age: str = "brain_age",
                        allow_patients: bool = False) -> AgeBiasCorrection:
    """Fit on the controls of a cohort table (all rows with ``allow_patients=True``)."""
    for column in (age, brain_age):
        if column not in frame.columns:
            raise AnalysisError(f"bias correction needs the column {column!r}; the table has "
                                f"{', '.join(map(str, frame.columns))}.")
    if allow_patients:
        return AgeBiasCorrection.fit(frame[age], frame[brain_age], method=method, allow_patients=True,
                                     groups=frame[group] if group in frame.columns else None, control=control)
    if group not in frame.columns:
        raise AnalysisError(f"bias correction is fitted on the controls, but the table has no {group!r} column.")
    controls = frame[frame[group].astype(str) == str(control)]
    if controls.empty:
        labels = ", ".join(sorted(frame[group].astype(str).unique()))
        raise AnalysisError(f"no controls labelled {control!r} in column {group!r} (labels: {labels}).")
    return AgeBiasCorrection.fit(controls[age], controls[brain_age], groups=controls[group], control=control,
                                 method=method)


__all__ = ["METHODS", "DEFAULT_FOLDS", "AgeBiasCorrection", "cross_fitting_folds", "cross_fitted_bag",
           "fit_bias_correction"]
