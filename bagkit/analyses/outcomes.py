"""The outcome analyses of a cohort, one entry per report section.

:func:`run_outcomes` — per patient group with follow-up: ROC of BAG for EDSS worsening (AUC with
DeLong CI, ``spec80`` and ``youden`` cutoffs), Kaplan–Meier above vs below the chosen cutoff with
the log-rank test (Figure 2C/D), univariable and multivariable Cox models (Table 3).

:func:`run_regressions` — BAG ~ EDSS and BAG ~ nbv per patient group (Figure 2A/B), EDSS ~ BAG +
nbv + disease duration (Supplementary Table 3), predicted SD ~ BAG per group, subgroup t-tests
(AQP4 positive vs negative; brain lesions vs none), BAG across centers.

Whatever one group cannot support (no follow-up, no events, a constant covariate, too few
subjects) becomes a note in the result, shown in the report; the rest is still produced. Only a
cohort with nothing to analyse at all raises :class:`~bagkit.errors.AnalysisError` (then the
report says why the section is missing).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from bagkit.analyses.options import AnalysisOptions
from bagkit.cohort import Cohort
from bagkit.errors import AnalysisError
from bagkit.results import concat_tidy, tidy_frame
from bagkit.stats.cutoffs import DIRECTIONS, RocAnalysis, direction_words, roc_analysis
from bagkit.stats.regression import (
    CenterAnova,
    LinearModel,
    SubgroupComparison,
    center_anova,
    multiple_regression,
    simple_regression,
    subgroup_t_test,
)
from bagkit.stats.survival import (
    COX_COVARIATES,
    COX_LABELS,
    CoxModel,
    StrataComparison,
    compare_strata,
    cox_design,
    cox_model,
)

__all__ = ["GroupOutcomes", "Outcomes", "Regressions", "run_outcomes", "run_regressions", "COX_SELECTIONS"]

COX_SELECTIONS = ("all", "univariable_p05")


@dataclass(frozen=True, eq=False)
class GroupOutcomes:
    """Everything about time to worsening in one patient group (any part may be None, see ``notes``)."""

    group: str
    n_followup: int
    events: int
    roc: RocAnalysis | None = None
    km: StrataComparison | None = None
    cox_univariable: tuple[CoxModel, ...] = ()
    cox_multivariable: CoxModel | None = None
    notes: tuple[str, ...] = ()

    def univariable(self, term: str) -> CoxModel | None:
        return next((m for m in self.cox_univariable if m.terms and m.terms[0].term == term), None)

    def tidy(self) -> pd.DataFrame:
        rows = [("followup", self.group, "worsening", "", "n", self.n_followup),
                ("followup", self.group, "worsening", "", "events", self.events)]
        parts = [tidy_frame(rows)]
        if self.roc is not None:
            parts.append(self.roc.tidy())
        if self.km is not None:
            parts.append(self.km.tidy())
        parts += [m.tidy() for m in self.cox_univariable]
        if self.cox_multivariable is not None:
            parts.append(self.cox_multivariable.tidy())
        return concat_tidy(parts)


@dataclass(frozen=True, eq=False)
class Outcomes:
    """ROC, cutoffs, Kaplan–Meier and Cox per patient group; ``rule`` is the cutoff rule used for KM."""

    groups: tuple[GroupOutcomes, ...]
    rule: str
    specificity_at_least: float
    cox_selection: str
    covariates: tuple[str, ...]
    labels: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def __getitem__(self, group: str) -> GroupOutcomes:
        for g in self.groups:
            if g.group == group:
                return g
        raise KeyError(group)

    @property
    def all_notes(self) -> tuple[str, ...]:
        return tuple(self.notes) + tuple(n for g in self.groups for n in g.notes)

    def tidy(self) -> pd.DataFrame:
        return concat_tidy([g.tidy() for g in self.groups])


def _group_outcomes(cohort: Cohort, group: str, rule: str, specificity: float, bootstrap: int, seed: int,
                    covariates: Sequence[str], selection: str, direction: str = "<") -> GroupOutcomes:
    data = cohort.group(group)
    followed = data[data["followup_years"].notna() & data["worsening"].notna()]
    n, events = len(followed), int(followed["worsening"].sum()) if len(followed) else 0
    notes: list[str] = []
    if n == 0:
        return GroupOutcomes(group, 0, 0, notes=(f"{group}: no subjects with follow-up; ROC, Kaplan–Meier and "
                                                 f"Cox analyses skipped for this group",))
    if events == 0:
        return GroupOutcomes(group, n, 0, notes=(f"{group}: no EDSS worsening among {n} subjects with follow-up "
                                                 f"(all censored); ROC, Kaplan–Meier and Cox need events",))
    marked = followed[followed["bag"].notna()]
    roc = km = None
    try:
        roc = roc_analysis(marked["bag"], marked["worsening"], subset=group, marker_name="bag", rule=rule,
                           specificity_at_least=specificity, n_bootstrap=bootstrap, seed=seed, direction=direction)
        if direction == "auto" and roc.curve.direction != "<":
            notes.append(f"{group}: --roc-direction auto chose 'lower BAG marks worsening' (pROC direction '>', "
                         f"BAG is lower in those who worsened); the AUC is for lower BAG, and 'above' the "
                         f"cutoff means BAG below it")
        elif direction != "auto" and roc.curve.auc < 0.5:
            notes.append(f"{group}: AUC {roc.curve.auc:.3f} is below 0.5: BAG goes against the stated direction "
                         f"({direction_words(roc.curve.direction, event='worsening')}) in this group")
    except AnalysisError as error:
        notes.append(f"{group}: ROC not computed: {error}")
    if roc is not None:
        cut = roc.cutoff
        if not np.isfinite(cut.threshold):
            notes.append(f"{group}: the {rule} cutoff is infinite (no threshold reaches the rule); "
                         f"Kaplan–Meier by cutoff skipped")
        else:
            strata = np.where(cut.positive(marked["bag"]), "above", "below")
            try:
                km = compare_strata(marked["followup_years"], marked["worsening"], strata, subset=group,
                                    term="bag", contrast="above vs below", order=("above", "below"),
                                    threshold=cut.threshold)
            except AnalysisError as error:
                notes.append(f"{group}: Kaplan–Meier not computed: {error}")
    univariable: list[CoxModel] = []
    for name in covariates:
        if not followed[name].notna().any():
            notes.append(f"{group}: {COX_LABELS.get(name, name)} has no values among subjects with follow-up; "
                         f"left out of the Cox models")
            continue
        try:
            univariable.append(cox_model(followed["followup_years"], followed["worsening"],
                                         cox_design(followed, [name]), subset=group, kind="univariable"))
        except AnalysisError as error:
            notes.append(f"{group}: univariable Cox for {COX_LABELS.get(name, name)} not fitted: {error}")
    for model in univariable:
        notes += [f"{group}, univariable {model.terms[0].label}: {note}" for note in model.notes]
    fitted = [m.terms[0].term for m in univariable]
    if selection == "univariable_p05":
        chosen = [m.terms[0].term for m in univariable if m.terms[0].p < 0.05 or m.terms[0].term == "bag"]
    else:
        chosen = fitted
    multivariable = None
    if len(chosen) >= 2 or (chosen and selection == "univariable_p05"):
        try:
            multivariable = cox_model(followed["followup_years"], followed["worsening"],
                                      cox_design(followed, chosen), subset=group, kind="multivariable")
            notes += [f"{group}, multivariable Cox: {note}" for note in multivariable.notes]
        except AnalysisError as error:
            notes.append(f"{group}: multivariable Cox not fitted: {error}")
    elif selection == "all":
        notes.append(f"{group}: fewer than two covariates could be modelled; no multivariable Cox model")
    return GroupOutcomes(group, n, events, roc, km, tuple(univariable), multivariable, tuple(notes))


def run_outcomes(cohort: Cohort, options=None) -> Outcomes:
    """ROC + cutoffs, Kaplan–Meier and Cox for every patient group with follow-up (see module doc).

    Options used: ``cutoff_rule`` (``spec80``/``youden``), ``specificity_at_least``, ``seed``,
    ``roc_direction`` (``higher``: higher BAG marks worsening, pROC ``direction = "<"``, the default;
    ``lower``: ``">"``; ``auto``: pROC's median rule),
    ``cutoff_bootstrap`` (replicates for the cutoff's CI; 0 = none) and ``cox_selection``
    (``all``: every Table 3 covariate in the multivariable model; ``univariable_p05``: those with
    univariable p < 0.05, BAG always kept — what the paper's Table 3 shows).
    """
    options = options or AnalysisOptions()
    rule, specificity, seed = options.cutoff_rule, float(options.specificity_at_least), int(options.seed)
    bootstrap, selection = int(options.cutoff_bootstrap), options.cox_selection
    if options.roc_direction not in DIRECTIONS:
        raise AnalysisError(f"unknown roc_direction {options.roc_direction!r}; choose one of: "
                            f"{', '.join(DIRECTIONS)}")
    direction = DIRECTIONS[options.roc_direction]
    if selection not in COX_SELECTIONS:
        raise AnalysisError(f"unknown cox_selection {selection!r}; choose one of: {', '.join(COX_SELECTIONS)}")
    if not cohort.has("bag"):
        raise AnalysisError("no brain age gap: the cohort needs a brain_age column (or scans to predict it)")
    if not (cohort.has("worsening") and cohort.has("followup_years")):
        raise AnalysisError("no follow-up data: give 'worsening' and 'followup_years' columns, "
                            "'edss_followup' with 'followup_years', or a visits table (--visits)")
    covariates = tuple(c for c in COX_COVARIATES if cohort.has(c))
    notes = []
    absent = [COX_LABELS[c] for c in COX_COVARIATES if c not in covariates]
    if absent:
        notes.append(f"Cox covariates absent from the cohort: {', '.join(absent)}")
    groups = tuple(_group_outcomes(cohort, g, rule, specificity, bootstrap, seed, covariates, selection,
                                   direction) for g in cohort.patient_groups)
    labels = {c: COX_LABELS[c] for c in covariates}
    if cohort.bias_corrected and "bag" in labels:
        labels["bag"] = "Brain age gap (bias-corrected), yr"
    return Outcomes(groups, rule, specificity, selection, covariates, labels, tuple(notes))


@dataclass(frozen=True, eq=False)
class Regressions:
    """Linear models, subgroup t-tests and center ANOVAs (see :func:`run_regressions`)."""

    models: tuple[LinearModel, ...]
    subgroups: tuple[SubgroupComparison, ...]
    centers: tuple[CenterAnova, ...]
    notes: tuple[str, ...] = ()

    def model(self, subset: str, formula: str) -> LinearModel | None:
        return next((m for m in self.models if m.subset == subset and m.formula == formula), None)

    @property
    def all_notes(self) -> tuple[str, ...]:
        return self.notes

    def tidy(self) -> pd.DataFrame:
        rows = [r for m in self.models for r in m.rows()]
        rows += [r for s in self.subgroups for r in s.rows()]
        rows += [r for c in self.centers for r in c.rows()]
        return tidy_frame(rows)


MULTIVARIABLE_EDSS = ("bag", "nbv", "disease_duration")


def run_regressions(cohort: Cohort, options=None) -> Regressions:
    """BAG ~ EDSS, BAG ~ nbv, EDSS ~ BAG + nbv + disease_duration per patient group; predicted SD ~ BAG
    per group; AQP4 pos vs neg and lesions vs none (Student's t) per patient group; BAG across
    centers per group (one-way ANOVA) and over all groups adjusted for group. ``options.welch``: the
    subgroup comparisons by Welch's t-test instead."""
    if not cohort.has("bag"):
        raise AnalysisError("no brain age gap: the cohort needs a brain_age column (or scans to predict it)")
    welch = bool((options or AnalysisOptions()).welch)
    models, subgroups, centers, notes = [], [], [], []

    def attempt(what, make, into):
        try:
            into.append(make())
        except AnalysisError as error:
            notes.append(f"{what} skipped: {error}")

    for group in cohort.patient_groups:
        data = cohort.group(group)
        for predictor in ("edss", "nbv"):
            if cohort.has(predictor):
                attempt(f"{group}: bag ~ {predictor}", lambda: simple_regression(data, "bag", predictor, group), models)
        available = [c for c in MULTIVARIABLE_EDSS if cohort.has(c)]
        if cohort.has("edss") and len(available) >= 2:
            attempt(f"{group}: edss ~ {' + '.join(available)}",
                    lambda: multiple_regression(data, "edss", available, group), models)
    if cohort.has("brain_age_sd"):
        for group in cohort.groups:
            attempt(f"{group}: brain_age_sd ~ bag",
                    lambda: simple_regression(cohort.group(group), "brain_age_sd", "bag", group), models)
    for group in cohort.patient_groups:
        data = cohort.group(group)
        if cohort.has("aqp4") and data["aqp4"].notna().any():
            attempt(f"{group}: AQP4 pos vs neg",
                    lambda: subgroup_t_test(data.loc[data["aqp4"] == "pos", "bag"],
                                            data.loc[data["aqp4"] == "neg", "bag"], ("aqp4=pos", "aqp4=neg"),
                                            group, welch=welch), subgroups)
        if cohort.has("lesion_volume_ml") and data["lesion_volume_ml"].notna().any():
            lesions = data["lesion_volume_ml"]
            attempt(f"{group}: brain lesions vs none",
                    lambda: subgroup_t_test(data.loc[lesions > 0, "bag"], data.loc[lesions == 0, "bag"],
                                            ("lesions", "no lesions"), group, welch=welch), subgroups)
    if cohort.has("center"):
        for group in cohort.groups:
            attempt(f"{group}: BAG across centers", lambda: center_anova(cohort.group(group), group), centers)
        if len(cohort.groups) > 1:
            attempt("all groups: BAG across centers adjusted for group",
                    lambda: center_anova(cohort.data, "all", adjust_for_group=True), centers)
    if not (models or subgroups or centers):
        raise AnalysisError("no regression, subgroup or center analysis could be made: "
                            + ("; ".join(notes) or "the cohort has none of edss, nbv, brain_age_sd, aqp4, "
                                                   "lesion_volume_ml, center"))
    return Regressions(tuple(models), tuple(subgroups), tuple(centers), tuple(notes))
