"""Age-bias correction of BAG inside the analysis, and BAG compared between groups adjusted for age.

:func:`correct_cohort` is the step ``analyze`` runs first when ``AnalysisOptions.bias_correction``
is ``linear`` or ``bag`` (the two methods of :mod:`bagkit.stats.bias`): the correction is fitted
on the controls only and applied to everybody; the controls' own values come from k-fold
cross-fitting (default, ``bias_folds`` = 10), or the correction is fitted on a separate
calibration table (``bias_calibration``) and applied to everybody. Why cross-fitting by default:
applied back to the very controls it was fitted on, the correction forces their corrected BAG to
mean zero and zero correlation with age, so nothing about the model could be read from them (de
Lange & Cole 2020 ask for the correction to be estimated on data independent of the subjects it
is evaluated on; Smith et al. 2019 and Le et al. 2018 estimate it on a training sample). Every
later analysis reads the corrected ``bag``; the raw gap stays in ``bag_uncorrected``.

Registered sections (``bagkit.analyses.ANALYSES``):

- ``bias_correction`` (:func:`run_bias_correction`): the fit (method, slope, intercept, n,
  fitted_on) and the controls' MAE, Pearson r of brain age with age, r of BAG with age and mean
  BAG, before and after. results.csv: ``bias_correction, controls|calibration, brain_age, <method>,
  slope|intercept|n|folds`` and ``bias_correction, <control>, brain_age, <method>, mae_before|mae_after|
  r_before|r_after|r_bag_age_before|r_bag_age_after|mean_bag_before|mean_bag_after|n_controls``.
- ``age_adjusted`` (:func:`run_age_adjusted`): per pair of groups, ``lm(bag ~ group)`` and
  ``lm(bag ~ group + age)`` (R), the group coefficient A − B with its SE, t, p and 95% CI.
  results.csv: ``bag_group_lm, all, bag, A - B | age, estimate|se|t|p|ci_low|ci_high|df``
  (and contrast ``A - B`` for the unadjusted model). Made whatever the correction.

With a correction, results.csv names the corrected gap ``bag_corrected`` wherever an analysis
reports ``bag`` (and the raw gap of Table 1 ``bag``): :func:`name_corrected_terms`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bagkit.cohort import Cohort, read_calibration
from bagkit.errors import AnalysisError
from bagkit.results import tidy_frame
from bagkit.stats.bias import METHODS, AgeBiasCorrection, cross_fitted_bag, fit_bias_correction
from bagkit.stats.comparisons import pairs_for, pearson
from bagkit.stats.regression import multiple_regression

__all__ = ["BIAS_CORRECTIONS", "correct_cohort", "BiasCorrectionSummary", "run_bias_correction", "AgeAdjusted",
           "GroupEffect", "run_age_adjusted", "name_corrected_terms"]

BIAS_CORRECTIONS = ("none", *METHODS)


def correct_cohort(cohort: Cohort, options) -> Cohort:
    """The cohort with its BAG age-bias-corrected as ``options`` ask (unchanged for ``none``)."""
    method = options.bias_correction
    if method not in BIAS_CORRECTIONS:
        raise AnalysisError(f"unknown bias correction {method!r}; choose one of: {', '.join(BIAS_CORRECTIONS)}")
    if method == "none":
        if options.bias_calibration:
            raise AnalysisError("a bias calibration table was given but --bias-correction is none; choose "
                                "linear or bag")
        return cohort
    if not cohort.has("brain_age"):
        raise AnalysisError(f"--bias-correction {method}: the cohort has no brain age to correct")
    data = cohort.data
    if options.bias_calibration:
        table = read_calibration(options.bias_calibration)
        fit = AgeBiasCorrection.fit(table["age"], table["brain_age"], method=method)
        fit = AgeBiasCorrection(fit.method, fit.slope, fit.intercept, fit.n, fitted_on="calibration")
        corrected = fit.corrected_bag(data["age"], data["brain_age"])
        controls_values, folds = "the calibration table's fit, as everybody", 0
        inputs = {"bias calibration": str(options.bias_calibration)}
    else:
        if cohort.control is None:
            raise AnalysisError(f"--bias-correction {method} is fitted on the controls, but the cohort has none; "
                                f"give a calibration table (--bias-calibration FILE)")
        fit = fit_bias_correction(data, control=cohort.control, method=method)
        corrected = fit.corrected_bag(data["age"], data["brain_age"])
        is_control = (data["group"] == cohort.control).to_numpy()
        folds = int(options.bias_folds)
        corrected[is_control] = cross_fitted_bag(data.loc[is_control, "age"], data.loc[is_control, "brain_age"],
                                                 method, folds, options.seed)
        folds = min(folds, fit.n)
        controls_values, inputs = f"{folds}-fold cross-fitting", {}
    words = "slope a = {:.4g}, intercept b = {:.4g}".format(fit.slope, fit.intercept) if method == "linear" else \
        "slope α = {:.4g}, intercept β = {:.4g}".format(fit.slope, fit.intercept)
    where = "a calibration table" if fit.fitted_on == "calibration" else f"the {fit.n} controls ({cohort.control})"
    description = (f"age-bias-corrected ({method}: {METHODS[method]}), fitted on {where} with {words}; "
                   f"controls' own values by {controls_values}; the uncorrected gap is bag_uncorrected")
    if cohort.control is not None:
        is_control = (data["group"] == cohort.control).to_numpy()
        age = data.loc[is_control, "age"].to_numpy(float)
        before = _accuracy(age, (data.loc[is_control, "brain_age"] - data.loc[is_control, "age"]).to_numpy(float))
        after = _accuracy(age, np.asarray(corrected, dtype=float)[is_control])
        description += (f"; controls' MAE {before['mae']:.2f} → {after['mae']:.2f} yr, Pearson r (brain age, age) "
                        f"{before['r']:.3f} → {after['r']:.3f}, r (BAG, age) {before['r_bag_age']:.3f} → "
                        f"{after['r_bag_age']:.3f}")
    record = {"method": method, "slope": fit.slope, "intercept": fit.intercept, "n": fit.n,
              "fitted_on": fit.fitted_on, "controls_values": controls_values, "folds": folds}
    return cohort.with_corrected_bag(corrected, description, record, inputs)


def _accuracy(age: np.ndarray, bag: np.ndarray) -> dict[str, float]:
    keep = np.isfinite(age) & np.isfinite(bag)
    age, bag = age[keep], bag[keep]
    return {"mae": float(np.abs(bag).mean()), "r": pearson(age + bag, age)[0],
            "r_bag_age": pearson(bag, age)[0], "mean_bag": float(bag.mean())}


@dataclass(frozen=True)
class BiasCorrectionSummary:
    """The fitted correction and the controls' accuracy before and after it."""

    method: str
    slope: float
    intercept: float
    n: int
    fitted_on: str  # "controls" | "calibration"
    controls_values: str  # how the controls' corrected values were made
    folds: int
    control: str | None
    n_controls: int
    before: dict
    after: dict

    def tidy(self) -> pd.DataFrame:
        m = self.method
        rows = [("bias_correction", self.fitted_on, "brain_age", m, "slope", self.slope),
                ("bias_correction", self.fitted_on, "brain_age", m, "intercept", self.intercept),
                ("bias_correction", self.fitted_on, "brain_age", m, "n", self.n),
                ("bias_correction", self.fitted_on, "brain_age", m, "folds", self.folds)]
        if self.control is not None:
            for when, values in (("before", self.before), ("after", self.after)):
                rows += [("bias_correction", self.control, "brain_age", m, f"{k}_{when}", v)
                         for k, v in values.items()]
            rows.append(("bias_correction", self.control, "brain_age", m, "n_controls", self.n_controls))
        return tidy_frame(rows)


def run_bias_correction(cohort: Cohort, options=None) -> BiasCorrectionSummary | None:
    """The ``bias_correction`` section (None when the BAG is uncorrected)."""
    if not cohort.bias_corrected:
        return None
    fit = cohort.bias_correction
    before = after = {}
    n_controls = 0
    if cohort.control is not None:
        controls = cohort.group(cohort.control)
        age = controls["age"].to_numpy(float)
        before = _accuracy(age, controls["bag_uncorrected"].to_numpy(float))
        after = _accuracy(age, controls["bag"].to_numpy(float))
        n_controls = int((np.isfinite(age) & controls["bag"].notna().to_numpy()).sum())
    return BiasCorrectionSummary(str(fit["method"]), float(fit["slope"]), float(fit["intercept"]), int(fit["n"]),
                                 str(fit["fitted_on"]), str(fit["controls_values"]), int(fit["folds"]),
                                 cohort.control, n_controls, before, after)


@dataclass(frozen=True)
class GroupEffect:
    """The group coefficient (A − B) of ``lm(bag ~ group [+ age])`` on the subjects of A and B."""

    groups: tuple[str, str]
    adjusted_for: tuple[str, ...]
    estimate: float
    se: float
    t: float
    p: float
    ci_low: float
    ci_high: float
    df: float
    n: int

    @property
    def contrast(self) -> str:
        base = f"{self.groups[0]} - {self.groups[1]}"
        return base if not self.adjusted_for else f"{base} | {' + '.join(self.adjusted_for)}"

    def rows(self) -> list[tuple]:
        return [("bag_group_lm", "all", "bag", self.contrast, k, getattr(self, k))
                for k in ("estimate", "se", "t", "p", "ci_low", "ci_high", "df", "n")]


@dataclass(frozen=True)
class AgeAdjusted:
    """BAG between each pair of groups, by ``lm(bag ~ group)`` and ``lm(bag ~ group + age)``."""

    effects: tuple[GroupEffect, ...]
    notes: tuple[str, ...] = ()

    def tidy(self) -> pd.DataFrame:
        return tidy_frame([r for e in self.effects for r in e.rows()])


def _group_effect(data: pd.DataFrame, a: str, b: str, adjust: tuple[str, ...]) -> GroupEffect:
    part = data[data["group"].isin((a, b))]
    frame = pd.DataFrame({"bag": part["bag"], "group_a": (part["group"] == a).astype(float),
                          **{c: part[c] for c in adjust}})
    model = multiple_regression(frame, "bag", ("group_a", *adjust), subset=f"{a} vs {b}")
    k = model.coefficient("group_a")
    return GroupEffect((a, b), adjust, k.beta, k.se, k.t, k.p, k.ci_low, k.ci_high,
                       float(model.n - len(adjust) - 2), model.n)


def run_age_adjusted(cohort: Cohort, options=None) -> AgeAdjusted:
    """The ``age_adjusted`` section: for each pair of groups (patients vs control, then patient vs
    patient), ``lm(bag ~ group)`` and ``lm(bag ~ group + age)`` (Le et al. 2018)."""
    if not cohort.has("bag"):
        raise AnalysisError("no brain age gap: the cohort needs a brain_age column (or scans to predict it)")
    effects, notes = [], []
    for a, b in pairs_for(cohort.groups, cohort.control):
        for adjust in ((), ("age",)):
            try:
                effects.append(_group_effect(cohort.data, a, b, adjust))
            except AnalysisError as error:
                notes.append(f"{a} vs {b}{' adjusted for age' if adjust else ''}: {error}")
    if not effects:
        raise AnalysisError("no pair of groups could be compared: " + "; ".join(notes))
    return AgeAdjusted(tuple(effects), tuple(notes))


_FORMULA_BAG = re.compile(r"\bbag\b")


def name_corrected_terms(frame: pd.DataFrame) -> pd.DataFrame:
    """results.csv of a bias-corrected run: the corrected gap is ``bag_corrected`` wherever an analysis
    reports ``bag`` (terms and model formulas), the raw gap (``bag_uncorrected``) is ``bag``."""
    out = frame.copy()
    corrected = out["term"] == "bag"
    out.loc[corrected, "term"] = "bag_corrected"
    out.loc[out["term"] == "bag_uncorrected", "term"] = "bag"
    formulas = out["contrast"].str.contains("~", regex=False)
    out.loc[formulas, "contrast"] = out.loc[formulas, "contrast"].str.replace(_FORMULA_BAG, "bag_corrected",
                                                                            regex=True)
    return out
