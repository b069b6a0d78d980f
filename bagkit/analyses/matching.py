"""The paper's Table 2: the matched groups compared as Table 1 compares groups."""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import pandas as pd

from bagkit.analyses.table1 import GroupTable, Variable, compare_groups
from bagkit.cohort import Cohort
from bagkit.errors import AnalysisError, BagkitError, RequestError
from bagkit.results import concat_tidy
from bagkit.stats.comparisons import Comparison
from bagkit.stats.effects import MatchedEffect, matched_effect
from bagkit.stats.matching import Matching, _default_groups, match_groups

__all__ = ["TABLE2_VARIABLES", "Table2", "MatchingAnalysis", "table2", "run_matching"]



TABLE2_VARIABLES: tuple[Variable, ...] = (
    Variable("age_at_diagnosis", "mean"),
    Variable("sex", "proportion", level="F"),
    Variable("disease_duration", "mean"),
    Variable("edss", "median"),
    Variable("nbv", "mean", decimals=3),
    Variable("brain_age", "mean"),
    Variable("bag", "mean"),
)
_SD_VARIABLE = Variable("brain_age_sd", "mean")


@dataclass(frozen=True)
class Table2:
    """The matched comparison (the paper's Table 2): a GroupTable on the matched subjects plus
    the BAG and brain-age differences A − B (Student's t-test on the matched sets)."""

    matching: Matching
    table: GroupTable
    notes: tuple[str, ...] = ()
    effects: tuple[MatchedEffect, ...] = ()  # lm(bag ~ group [+ covariates]) with pair-clustered SEs

    @property
    def analysis(self) -> str:
        return self.table.analysis

    @property
    def groups(self) -> tuple[str, str]:
        return self.matching.groups

    def difference(self, term: str = "bag") -> Comparison | None:
        """mean(A) − mean(B) of ``term`` in the matched sets with its 95% CI and p (None when absent)."""
        try:
            row = self.table.row(term)
        except KeyError:
            return None
        return row.test(f"{self.groups[0]} vs {self.groups[1]}")

    def tidy(self) -> pd.DataFrame:
        """``psm,matched,bag,NMOSD - RRMS,diff,…`` and the rest of the table, then the balance rows."""
        return concat_tidy([self.table.tidy(), self.matching.tidy(), *(e.tidy() for e in self.effects)])

    def effect(self, adjusted: bool = False) -> MatchedEffect | None:
        """The matched-set BAG effect, unadjusted or adjusted for the matching covariates."""
        return next((e for e in self.effects if bool(e.covariates) == adjusted), None)


def table2(cohort: Cohort, matching: Matching, analysis: str | None = None, welch: bool = False) -> Table2:
    """Table 2 of the paper for a matching: N, age at diagnosis, female, onset to diagnosis, EDSS,
    nbv, predicted brain age and BAG per matched group with the paper's tests (Student's t, chi-square,
    Wilcoxon rank-sum for EDSS); the brain_age_sd row too when it is a covariate, and a mean ± SD row
    for any other numeric covariate."""
    analysis = analysis or matching.analysis
    variables = list(TABLE2_VARIABLES)
    listed = {v.column for v in variables}
    for covariate in matching.covariates:
        if covariate in listed:
            continue
        if covariate == "brain_age_sd":
            variables.insert(len(variables) - 2, _SD_VARIABLE)
        elif pd.api.types.is_numeric_dtype(cohort.data[covariate]):
            variables.insert(len(variables) - 2, Variable(covariate, "mean"))
    table = compare_groups(matching.matched_cohort, variables, analysis=analysis, subset="matched", welch=welch)
    notes = []
    if not matching.uniform_weights:
        notes.append("Matching weights are not all 1 (ratio > 1, replacement or unequal sets): the matched "
                     "subjects are compared unweighted, each counted once.")
    return Table2(matching, table, tuple(notes))


@dataclass(frozen=True)
class MatchingAnalysis:
    """What the report shows: Table 2 (``psm``) and its Supplementary-Table-4 variant with the
    predicted brain-age SD as a further covariate (``psm_sd``; None when the cohort lacks it)."""

    primary: Table2
    with_sd: Table2 | None = None
    notes: tuple[str, ...] = ()

    def tidy(self) -> pd.DataFrame:
        return concat_tidy([self.primary.tidy(), self.with_sd.tidy() if self.with_sd is not None else None])


def run_matching(cohort: Cohort, options) -> MatchingAnalysis:
    """The analysis entry: the paper's matching with the user's options (``AnalysisOptions.match_*``).

    When the user named the groups, the covariates or exact variables, the matching is a request:
    if it cannot be made (a group the cohort lacks, the same group twice, a covariate that is not a
    column, too few subjects with every covariate, ...) a :class:`RequestError` stops the run.
    When everything was bagkit's choice, an :class:`AnalysisError` lets the report skip the section
    with a note."""
    asked = [f"--match {','.join(options.match_groups)}" if options.match_groups is not None else "",
             f"--covariates {','.join(options.match_covariates)}" if options.match_covariates is not None else "",
             f"--exact {','.join(options.match_exact)}" if options.match_exact else ""]
    asked = [a for a in asked if a]
    side = None
    try:
        groups = tuple(options.match_groups) if options.match_groups is not None else _default_groups(cohort)
        covariates = options.covariates_to_match
        lacking = [c for c in covariates if not cohort.has(c)]
        if lacking and options.match_covariates is None:
            raise AnalysisError(f"propensity-score matching needs covariate column(s) {', '.join(lacking)}, "
                                f"which the cohort lacks (or holds no values in); choose others with --covariates")
        common = dict(groups=groups, ratio=options.match_ratio, caliper=options.match_caliper,
                      replace=options.match_replace, exact=tuple(options.match_exact),
                      m_order=options.match_order, seed=options.seed)
        side = _sd_in_second_process(cohort, options, covariates, common, groups)  # before R starts here
        primary = match_groups(cohort, covariates=covariates, analysis="psm", **common)
    except BagkitError as error:
        if side is not None:
            side.close()
        if asked and not isinstance(error, RequestError):
            raise RequestError(f"the matching asked for ({' '.join(asked)}) cannot be made: {error}") from None
        raise
    try:
        primary_notes: list[str] = []
        primary_table = _with_effects(table2(cohort, primary, welch=options.welch), primary_notes)
        with_sd, notes = _sd_collected(side, cohort, options, covariates, common)
    finally:
        if side is not None:
            side.close()
    return MatchingAnalysis(primary_table, with_sd, tuple(notes + primary_notes))


#: matched groups at least this large: the predicted-SD matching (Supplementary Table 4) runs in a
#: second process beside the primary one (two nearest-neighbour matchings of 30 000 x 30 000 take
#: R about 15 s each); below it R's second start would cost more than it saves
SECOND_PROCESS_AT = 10_000


def _sd_matching(cohort: Cohort, options, covariates, common) -> tuple[Table2 | None, list[str]]:
    """Supplementary Table 4: the matching with the predicted brain-age SD as a further covariate."""
    notes: list[str] = []
    with_sd = None
    if "brain_age_sd" in covariates:
        notes.append("brain_age_sd is already a covariate: no separate predicted-SD matching")
    elif cohort.has("brain_age_sd"):
        try:
            sd_matching = match_groups(cohort, covariates=covariates + ("brain_age_sd",), analysis="psm_sd",
                                       **common)
            with_sd = _with_effects(table2(cohort, sd_matching, welch=options.welch), notes)
        except BagkitError as error:
            notes.append(f"matching with predicted SD (psm_sd) not made: {error}")
    else:
        notes.append("the cohort has no brain_age_sd: no matching with predicted SD (Supplementary Table 4)")
    return with_sd, notes


def _sd_in_second_process(cohort: Cohort, options, covariates, common, groups):
    """A forked child computing :func:`_sd_matching` (its own R) for large matched groups, started
    before this process starts R; None when it is not worth it or not possible."""
    from bagkit import rbridge
    from bagkit.analyses.background import Child, can_fork

    size = int(cohort.data["group"].isin(groups).sum())
    if (size < SECOND_PROCESS_AT or "brain_age_sd" in covariates or not cohort.has("brain_age_sd")
            or rbridge.started() or not can_fork()):
        return None
    return Child(lambda: _sd_matching(cohort, options, covariates, common))


def _sd_collected(side, cohort: Cohort, options, covariates, common) -> tuple[Table2 | None, list[str]]:
    from bagkit.analyses.background import ChildFailed

    if side is not None:
        try:
            (with_sd, notes), caught = side.result()
        except ChildFailed:
            pass  # made here instead, as without a second process
        else:
            for category, message in caught:
                warnings.warn(message, category, stacklevel=2)
            return with_sd, notes
    return _sd_matching(cohort, options, covariates, common)


def _with_effects(table: Table2, notes: list[str]) -> Table2:
    """Table 2 with the matched-set BAG effect (unadjusted and adjusted for the matching covariates)."""
    effects = []
    for adjust in (False, True):
        try:
            effects.append(matched_effect(table.matching, "bag", adjust=adjust))
        except BagkitError as error:
            notes.append(f"{table.analysis}: matched-set effect{' adjusted for the covariates' if adjust else ''} "
                         f"not estimated: {error}")
    return dataclasses.replace(table, effects=tuple(effects))


# ---------------------------------------------------------------------------------------------
# Love plot
# ---------------------------------------------------------------------------------------------
