"""Example subjects (the paper's Figure 1 D–G): each one's input slices beside the predicted age
distribution, with brain age ± SD, chronological age and BAG.

The inputs and distributions were made where the scans were predicted
(:func:`bagkit.predictors.examples.with_example_inputs`) and ride on the cohort; this section
copies them, adds the subject's numbers from the cohort's table and computes what the figure
states (the age range shown, the probability mass inside it and within ± SD, the peak), so that
every number a reader sees is in ``results.csv`` and the plot only draws. It reads no file.

``results.csv``: analysis ``example_subjects`` (subset: the group, term: the subject id, contrast:
why it is shown — ``smallest BAG``, ``largest BAG``, ``only subject`` or ``chosen``), statistics
``age, brain_age, brain_age_sd, bag`` (and ``bag_corrected`` with an age-bias correction), and for a
predictor with age bins ``peak_age, peak_probability, probability_within_sd,
probability_mass_shown, shown_from, shown_to, bin_width``; analysis ``example_age_distribution``
(same subset and term, contrast ``bin <centre>``, statistic ``probability``): every bin.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from bagkit.cohort import Cohort
from bagkit.errors import AnalysisError
from bagkit.results import tidy_frame

__all__ = ["ExampleSubject", "ExampleSubjects", "run_example_subjects", "MIN_PROBABILITY_SHOWN"]

#: bins whose probability reaches this are inside the age range the figure shows (with each subject's
#: chronological age and brain age ± 2 SD); the mass the range leaves out is reported
MIN_PROBABILITY_SHOWN = 1e-3


@dataclass(frozen=True, eq=False)
class ExampleSubject:
    """One example: who, why, the numbers the figure states, the slices and the distribution.

    ``bag`` is brain age − age as predicted; ``bag_corrected`` the age-bias-corrected gap the
    analyses used (``None`` without a correction). ``bin_centers``/``probabilities`` are ``None``
    for a predictor without age bins; ``peak_age`` … ``probability_mass_shown`` are then ``None``.
    """

    subject_id: str
    group: str
    chosen_as: str
    age: float
    brain_age: float
    brain_age_sd: float
    bag: float
    bag_corrected: float | None
    planes: Mapping[str, np.ndarray]
    bin_centers: np.ndarray | None
    probabilities: np.ndarray | None
    peak_age: float | None = None
    peak_probability: float | None = None
    probability_within_sd: float | None = None
    probability_mass_shown: float | None = None
    bin_width: float | None = None

    @property
    def has_distribution(self) -> bool:
        return self.bin_centers is not None and self.probabilities is not None


@dataclass(frozen=True, eq=False)
class ExampleSubjects:
    """The example subjects in the order shown, the predictor, and the age range every panel shows."""

    subjects: tuple[ExampleSubject, ...]
    predictor: str
    shown_from: float
    shown_to: float

    @property
    def has_distribution(self) -> bool:
        return any(s.has_distribution for s in self.subjects)

    def tidy(self) -> pd.DataFrame:
        rows = []
        for s in self.subjects:
            numbers = {"age": s.age, "brain_age": s.brain_age, "brain_age_sd": s.brain_age_sd, "bag": s.bag}
            if s.bag_corrected is not None:
                numbers["bag_corrected"] = s.bag_corrected
            if s.has_distribution:
                numbers.update(peak_age=s.peak_age, peak_probability=s.peak_probability,
                               probability_within_sd=s.probability_within_sd,
                               probability_mass_shown=s.probability_mass_shown, shown_from=self.shown_from,
                               shown_to=self.shown_to, bin_width=s.bin_width)
            rows += [("example_subjects", s.group, s.subject_id, s.chosen_as, name, value)
                     for name, value in numbers.items()]
            if s.has_distribution:
                rows += [("example_age_distribution", s.group, s.subject_id, f"bin {centre:g}", "probability", p)
                         for centre, p in zip(s.bin_centers, s.probabilities)]
        return tidy_frame(rows)


def run_example_subjects(cohort: Cohort, options=None) -> ExampleSubjects | None:
    """The cohort's example subjects as a result; None without brain age (said once elsewhere),
    an :class:`AnalysisError` (a skip note) when brain age was not predicted from scans here."""
    if not cohort.has("brain_age"):
        return None
    if not cohort.examples:
        if _predicted_here(cohort):
            raise AnalysisError(
                "no example inputs and age distributions (Figure 1 D-G): brain age was predicted, but no example "
                "subject's scan was read (see the notes; with the API, call "
                "bagkit.predictors.examples.with_example_inputs after Cohort.with_predictions)")
        raise AnalysisError(
            "Figure 1 D-G (example inputs and age distributions) needs brain age predicted from scans "
            "(--predictor NAME); it was given in the table")
    data = cohort.data.set_index(cohort.data["subject_id"].astype(str))
    raw_bag = "bag_uncorrected" if cohort.bias_corrected else "bag"
    subjects = []
    for example in cohort.examples:
        if example.subject_id not in data.index:
            continue
        row = data.loc[example.subject_id]
        subjects.append(ExampleSubject(
            subject_id=example.subject_id, group=example.group, chosen_as=example.chosen_as,
            age=float(row["age"]), brain_age=float(row["brain_age"]), brain_age_sd=float(row["brain_age_sd"]),
            bag=float(row[raw_bag]), bag_corrected=float(row["bag"]) if cohort.bias_corrected else None,
            planes=dict(example.planes), bin_centers=example.bin_centers, probabilities=example.probabilities))
    if not subjects:
        raise AnalysisError("none of the example subjects is in the analysed cohort")
    low, high = _shown_range(subjects)
    subjects = [_with_distribution_numbers(s, low, high) for s in subjects]
    return ExampleSubjects(subjects=tuple(subjects), predictor=cohort.examples[0].predictor, shown_from=low,
                           shown_to=high)


def _predicted_here(cohort: Cohort) -> bool:
    return str(cohort.derivations.get("brain age", "")).startswith("predicted by")


def _shown_range(subjects) -> tuple[float, float]:
    """One age range for every panel (so they compare at a glance): each subject's chronological age,
    brain age ± 2 SD and bins with probability ≥ MIN_PROBABILITY_SHOWN, to whole years, inside the bins."""
    lows, highs = [], []
    edges = None
    for s in subjects:
        lows += [s.age, s.brain_age - 2 * s.brain_age_sd]
        highs += [s.age, s.brain_age + 2 * s.brain_age_sd]
        if s.has_distribution:
            centers, p = np.asarray(s.bin_centers, float), np.asarray(s.probabilities, float)
            width = float(np.median(np.diff(centers))) if len(centers) > 1 else 1.0
            kept = centers[p >= MIN_PROBABILITY_SHOWN]
            if len(kept):
                lows.append(float(kept.min()) - width / 2)
                highs.append(float(kept.max()) + width / 2)
            first, last = float(centers[0]) - width / 2, float(centers[-1]) + width / 2
            edges = (first, last) if edges is None else (min(edges[0], first), max(edges[1], last))
        else:  # a Gaussian from the predictive SD: ± 3 SD
            lows.append(s.brain_age - 3 * s.brain_age_sd)
            highs.append(s.brain_age + 3 * s.brain_age_sd)
    low, high = float(np.floor(np.nanmin(lows))), float(np.ceil(np.nanmax(highs)))
    if edges is not None:
        low, high = max(low, edges[0]), min(high, edges[1])
        low, high = min(low, float(np.floor(np.nanmin([s.age for s in subjects])))), \
            max(high, float(np.ceil(np.nanmax([s.age for s in subjects]))))
    return low, high


def _with_distribution_numbers(s: ExampleSubject, low: float, high: float) -> ExampleSubject:
    if not s.has_distribution:
        return s
    centers, p = np.asarray(s.bin_centers, float), np.asarray(s.probabilities, float)
    peak = int(np.argmax(p))
    within = (centers >= s.brain_age - s.brain_age_sd) & (centers <= s.brain_age + s.brain_age_sd)
    shown = (centers >= low) & (centers <= high)
    width = float(np.median(np.diff(centers))) if len(centers) > 1 else float("nan")
    return ExampleSubject(**{**s.__dict__, "peak_age": float(centers[peak]), "peak_probability": float(p[peak]),
                             "probability_within_sd": float(p[within].sum()),
                             "probability_mass_shown": float(p[shown].sum()), "bin_width": width})
