"""The whole analysis of a cohort: one :class:`Results` object that fills the PDF, the CSVs and the API.

``analyze`` runs each analysis the cohort supports, in the paper's order, and
records a note for each one it had to skip (and why), so that a partial cohort
still gets every section it can support.
"""
from __future__ import annotations

import datetime as _dt
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import pandas as pd

from bagkit import rbridge
from bagkit.analyses.bias import (
    AgeAdjusted,
    BiasCorrectionSummary,
    correct_cohort,
    name_corrected_terms,
    run_age_adjusted,
    run_bias_correction,
)
from bagkit.analyses.centers import CenterMeans, run_center_means
from bagkit.analyses.examples import ExampleSubjects, run_example_subjects
from bagkit.analyses.matching import MatchingAnalysis, run_matching
from bagkit.analyses.options import AnalysisOptions
from bagkit.analyses.outcomes import Outcomes, Regressions, run_outcomes, run_regressions
from bagkit.analyses.performance import BrainAgeModel, run_brain_age_model
from bagkit.analyses.preprocessing import PreprocessingQC, run_preprocessing_qc
from bagkit.analyses.provenance import Provenance, capture_provenance
from bagkit.analyses.table1 import GroupTable, table1
from bagkit.cohort import Cohort
from bagkit.errors import BagkitError, RequestError
from bagkit.results import concat_tidy

__all__ = ["AnalysisOptions", "Results", "Skip", "analyze", "ANALYSES"]


@dataclass(frozen=True)
class Skip:
    """A section (or part of the cohort) that could not be analysed, and why."""

    section: str
    reason: str

    def __str__(self) -> str:
        return f"{self.section}: {self.reason}"


@dataclass(frozen=True)
class Results:
    """Every result of one analysis run: a typed field per report section (``None`` when the
    cohort could not support it; :attr:`skipped` then says why), and the run's provenance.
    Each result object knows how to ``tidy()`` itself."""

    cohort: Cohort
    options: AnalysisOptions
    table1: GroupTable
    center_means: CenterMeans | None = None
    example_subjects: ExampleSubjects | None = None
    matching: MatchingAnalysis | None = None
    outcomes: Outcomes | None = None
    regressions: Regressions | None = None
    brain_age_model: BrainAgeModel | None = None
    preprocessing_qc: PreprocessingQC | None = None
    bias_correction: BiasCorrectionSummary | None = None
    age_adjusted: AgeAdjusted | None = None
    skipped: tuple[Skip, ...] = ()
    provenance: Provenance | None = None

    def __post_init__(self):
        if self.provenance is None:  # a Results made by hand: its provenance is recorded when it is made
            object.__setattr__(self, "provenance", capture_provenance(
                _cohort_inputs(self.cohort), _dt.datetime.now().astimezone(), False, self.cohort.derivations))

    @property
    def sections(self) -> dict[str, Any]:
        """The sections that were made, by name, in the paper's order."""
        return {name: getattr(self, name) for name, _ in ANALYSES if getattr(self, name) is not None}

    def skip_reason(self, section: str) -> str | None:
        """Why ``section`` was skipped (None when it was made)."""
        return next((s.reason for s in self.skipped if s.section == section), None)

    def tidy(self) -> pd.DataFrame:
        """All numbers, unrounded: ``analysis, subset, term, contrast, statistic, value``.

        With an age-bias correction the corrected gap's rows carry term ``bag_corrected`` (and
        Table 1's uncorrected gap ``bag``); see :func:`bagkit.analyses.bias.name_corrected_terms`."""
        frame = concat_tidy([self.table1.tidy(), *(s.tidy() for s in self.sections.values())])
        return name_corrected_terms(frame) if self.cohort.bias_corrected else frame

    def write(self, out, force: bool = False, progress: Callable[[str], None] | None = None,
              formats=("pdf", "docx", "html"), figures=None):
        """Write report.pdf/.docx/.html (``formats``), tables/*.csv, table1.csv, results.csv and
        figures/*.png into ``out``; see bagkit.report (``figures``: figures encoded already)."""
        from bagkit.report import write_outputs
        return write_outputs(self, out, force=force, progress=progress, formats=formats, figures=figures)


# Each further analysis registers here as (section name, function(cohort, options) -> result);
# the name is the field of Results that holds the result. A function raises BagkitError (or
# returns None) when the cohort cannot support it; the message becomes the Skip shown in the
# report. A RequestError (what the user asked for explicitly cannot be made) is not a Skip: it
# stops the run.
ANALYSES: list[tuple[str, Callable[[Cohort, AnalysisOptions], Any]]] = [
    ("center_means", run_center_means),
    ("example_subjects", run_example_subjects),
    ("matching", run_matching),
    ("outcomes", run_outcomes),
    ("regressions", run_regressions),
    ("brain_age_model", run_brain_age_model),
    ("preprocessing_qc", run_preprocessing_qc),
    ("bias_correction", run_bias_correction),
    ("age_adjusted", run_age_adjusted),
]


def _partial_notes(cohort: Cohort) -> list[Skip]:
    """What a partial cohort cannot support, said once at the top of the skip list."""
    notes = []
    if cohort.control is None:
        notes.append(Skip("control group", "none (--no-control), so Table 1 has no patient-vs-control contrasts "
                          "and nothing is fitted on controls"))
    if not cohort.has("brain_age"):
        notes.append(Skip("brain age", "the cohort has no brain_age column (nor predictions from scans), so "
                          "there is no brain age gap and no BAG analysis"))
    if len(cohort.patient_groups) < 2:
        notes.append(Skip("patient groups", f"{len(cohort.patient_groups)} "
                          f"({', '.join(cohort.patient_groups) or 'none'}), so there is no patient-vs-patient "
                          f"contrast"))
    return notes


def analyze(cohort: Cohort, options: AnalysisOptions | None = None,
            progress: Callable[[str], None] | None = None,
            while_waiting: Callable[[Results, Callable[[], bool]], None] | None = None) -> Results:
    """Run every analysis the cohort supports; see :class:`Results`.

    With two cores the sections that call R run in a forked child while the others run here;
    ``while_waiting(partial, busy)`` is then called once, here, after the other sections and
    before waiting for R's: ``partial`` holds every section computed here (the R sections are
    None and nothing is skipped; its provenance is a placeholder) and ``busy()`` says whether R's
    child is still computing. The CLI imports the renderers and draws figures meanwhile."""
    options = options or AnalysisOptions()
    say = progress or (lambda message: None)
    started = _dt.datetime.now().astimezone()
    r_calls = rbridge.calls()
    if options.bias_correction != "none" or options.bias_calibration:
        say(f"age-bias correction ({options.bias_correction})")
        cohort = correct_cohort(cohort, options)  # asked for explicitly: an error if it cannot be done
    background = _r_sections_in_background(cohort, options, say)
    try:
        say("Table 1")
        first = table1(cohort, options.table1, welch=options.welch)
        sections: dict[str, Any] = {}
        skipped: list[Skip] = [_cohort_note(note) for note in cohort.notes] + _partial_notes(cohort)
        outcomes: dict[str, Any] = {}
        here = [(name, run) for name, run in ANALYSES if background is None or name not in R_SECTIONS]
        for name, run in here:
            say(name)
            outcomes[name] = _section(name, run, cohort, options, None)
        if background is not None:
            if while_waiting is not None:
                done_here = {name: outcome for name, outcome in outcomes.items()
                             if outcome is not None and not isinstance(outcome, Skip)}
                partial = Results(cohort, options, first, **done_here, provenance=_PENDING)
                while_waiting(partial, background.running)
            for name, run in ANALYSES:
                if name in R_SECTIONS:
                    outcomes[name] = _section(name, run, cohort, options, background)
        for name, _ in ANALYSES:  # in the paper's order
            outcome = outcomes[name]
            if isinstance(outcome, Skip):
                skipped.append(outcome)
            elif outcome is not None:
                sections[name] = outcome
        r_used = rbridge.calls() > r_calls or (background is not None and background.r_used)
        r_software = background.r_software if background is not None else None
    finally:
        if background is not None:
            background.close()
    provenance = capture_provenance(_cohort_inputs(cohort), started, r_used, cohort.derivations,
                                    r_software=r_software)
    return Results(cohort, options, first, **sections, skipped=tuple(skipped), provenance=provenance)


def _section(name: str, run, cohort: Cohort, options: AnalysisOptions, background):
    """One section's result, or its Skip; a RequestError stops the run."""
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        try:
            if background is not None and name in R_SECTIONS:
                return background.section(name, run, cohort, options)
            return run(cohort, options)
        except RequestError:
            raise  # the user asked for it explicitly: an error, not a skip note
        except BagkitError as error:
            return Skip(name, str(error))


#: sections that call R: with two cores they run in a forked child beside the others
R_SECTIONS = ("matching",)


class _Background:
    """The R sections computed in a forked child (see bagkit.analyses.background)."""

    def __init__(self, cohort: Cohort, options: AnalysisOptions):
        from bagkit.analyses.background import Child

        self._child = Child(lambda: _run_r_sections(cohort, options))
        self._outcomes: dict[str, tuple[str, Any]] | None = None
        self.r_used = False
        self.r_software: dict[str, str] | None = None

    def section(self, name: str, run, cohort: Cohort, options: AnalysisOptions):
        from bagkit.analyses.background import ChildFailed

        if self._outcomes is None:
            try:
                (self._outcomes, calls, self.r_software), _ = self._child.result()
                self.r_used = calls > 0
            except ChildFailed:
                self._outcomes = {}  # run here, as without a child (an error then shows as it would)
        if name not in self._outcomes:
            return run(cohort, options)
        for category, message in self._caught_for(name):
            warnings.warn(message, category, stacklevel=2)
        kind, value = self._outcomes[name]
        if kind == "request":
            raise RequestError(value)
        if kind == "skip":
            raise BagkitError(value)
        return value

    def _caught_for(self, name: str) -> list:
        _, caught = self._outcomes.get("__warnings__", ("warnings", []))
        return [(category, message) for section, category, message in caught if section == name]

    def running(self) -> bool:
        return self._outcomes is None and self._child.running()

    def close(self) -> None:
        self._child.close()


#: the provenance of a partial Results (see analyze's while_waiting): recorded when the run ends
_PENDING = Provenance((), (), False, "")


def _run_r_sections(cohort: Cohort, options: AnalysisOptions):
    """In the child: each R section's outcome ("value" / "skip" / "request"), with its warnings."""
    from bagkit.analyses.provenance import R_PACKAGES

    before = rbridge.calls()
    outcomes: dict[str, tuple[str, Any]] = {}
    caught_all = []
    for name, run in ANALYSES:
        if name not in R_SECTIONS:
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                outcomes[name] = ("value", run(cohort, options))
            except RequestError as error:
                outcomes[name] = ("request", str(error))
            except BagkitError as error:
                outcomes[name] = ("skip", str(error))
        caught_all += [(name, w.category, str(w.message)) for w in caught]
    outcomes["__warnings__"] = ("warnings", caught_all)
    calls = rbridge.calls() - before
    software = rbridge.r_versions(*R_PACKAGES) if calls else None
    return outcomes, calls, software


def _r_sections_in_background(cohort: Cohort, options: AnalysisOptions, say) -> _Background | None:
    from bagkit.analyses.background import can_fork

    if rbridge.started() or not can_fork():  # R already runs here: keep it in one process
        return None
    say("matching (R) in a second process")
    # both processes compute p values with scipy.special (bagkit.stats.distributions): ~0.25 s to
    # import, paid once here before the fork instead of once in each process
    import scipy.special  # noqa: F401

    return _Background(cohort, options)


def _cohort_inputs(cohort: Cohort) -> dict[str, str]:
    return dict(cohort.inputs) or ({"cohort": cohort.source} if cohort.source else {})


def _cohort_note(note: str) -> Skip:
    """A note the cohort carries ("brain age: no prediction for S1 (...)") as a Skip."""
    section, _, reason = note.partition(": ")
    return Skip(section, reason) if reason else Skip("cohort", note)
