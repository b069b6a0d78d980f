"""The whole analysis of a cohort: one :class:`Results` object that fills the PDF, the CSVs and the API.

``analyze`` runs each analysis the cohort supports, in the paper's order, and
records a note for each one it had to skip (and why), so that a partial cohort
still gets every section it can support.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import pandas as pd

from bagkit.analyses.matching import run_matching
from bagkit.analyses.outcomes import run_outcomes, run_regressions
from bagkit.analyses.performance import run_brain_age_model
from bagkit.analyses.preprocessing import run_preprocessing_qc
from bagkit.analyses.table1 import GroupTable, table1
from bagkit.cohort import Cohort
from bagkit.errors import BagkitError
from bagkit.results import concat_tidy

__all__ = ["AnalysisOptions", "Results", "analyze"]


@dataclass(frozen=True)
class AnalysisOptions:
    """Everything a user can choose about the analysis (recorded on the provenance page)."""

    match_groups: tuple[str, str] | None = None  # default: the first two patient groups
    match_covariates: tuple[str, ...] = ("sex", "age_at_diagnosis", "edss", "nbv")
    match_ratio: int = 1
    match_caliper: float | None = None
    match_replace: bool = False
    match_exact: tuple[str, ...] = ()
    match_order: str = "data"
    cutoff_rule: str = "spec80"  # or "youden"
    specificity_at_least: float = 0.80
    cutoff_bootstrap: int = 0  # bootstrap replicates for the cutoff's CI (0: none)
    cox_selection: str = "all"  # or "univariable_p05" (the paper's Table 3: univariable p < 0.05, BAG kept)
    seed: int = 20240101


@dataclass(frozen=True)
class Results:
    """Every result of one analysis run. Each attribute's object knows how to ``tidy()`` itself."""

    cohort: Cohort
    options: AnalysisOptions
    table1: GroupTable
    sections: Mapping[str, Any] = field(default_factory=dict)  # name -> result with tidy()
    skipped: tuple[str, ...] = ()  # one line per section that could not be made, and why

    def __getitem__(self, name: str):
        return self.sections[name]

    def get(self, name: str, default=None):
        return self.sections.get(name, default)

    def tidy(self) -> pd.DataFrame:
        """All numbers, unrounded: ``analysis, subset, term, contrast, statistic, value``."""
        return concat_tidy([self.table1.tidy(), *(s.tidy() for s in self.sections.values())])

    def write(self, out, force: bool = False, progress: Callable[[str], None] | None = None):
        """Write report.pdf, table1.csv, results.csv (and figures) into ``out``; see bagkit.report."""
        from bagkit.report import write_outputs
        return write_outputs(self, out, force=force, progress=progress)


# Each further analysis registers here as (section name, function(cohort, options) -> result).
# A function raises BagkitError (or returns None) when the cohort cannot support it; the
# message becomes the skip note shown in the report.
ANALYSES: list[tuple[str, Callable[[Cohort, AnalysisOptions], Any]]] = [
    ("matching", run_matching),
    ("outcomes", run_outcomes),
    ("regressions", run_regressions),
    ("brain_age_model", run_brain_age_model),
    ("preprocessing_qc", run_preprocessing_qc),
]


def _partial_notes(cohort: Cohort) -> list[str]:
    """What a partial cohort cannot support, said once at the top of the skip list."""
    notes = []
    if cohort.control is None:
        notes.append("control group: none (--no-control), so Table 1 has no patient-vs-control contrasts and "
                     "nothing is fitted on controls")
    if not cohort.has("brain_age"):
        notes.append("brain age: the cohort has no brain_age column (nor predictions from scans), so there is "
                     "no brain age gap and no BAG analysis")
    if len(cohort.patient_groups) < 2:
        notes.append(f"patient groups: {len(cohort.patient_groups)} "
                     f"({', '.join(cohort.patient_groups) or 'none'}), so there is no patient-vs-patient contrast")
    return notes


def analyze(cohort: Cohort, options: AnalysisOptions | None = None,
            progress: Callable[[str], None] | None = None) -> Results:
    """Run every analysis the cohort supports; see :class:`Results`."""
    options = options or AnalysisOptions()
    say = progress or (lambda message: None)
    say("Table 1")
    first = table1(cohort)
    sections: dict[str, Any] = {}
    skipped: list[str] = list(cohort.notes) + _partial_notes(cohort)
    for name, run in ANALYSES:
        say(name)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("default")
                result = run(cohort, options)
        except BagkitError as error:
            skipped.append(f"{name}: {error}")
            continue
        if result is not None:
            sections[name] = result
    return Results(cohort, options, first, sections, tuple(skipped))
