"""Example subjects for the paper's Figure 1 D–G: the input slice beside the predicted age distribution.

At the prediction stage (the scans are at hand, brain age and BAG known from
:meth:`bagkit.cohort.Cohort.with_predictions`), :func:`with_example_inputs` picks, per group, the
subjects with the smallest and the largest BAG (or the subjects the caller names), reads only those
scans through the predictor's own loader (so the slices are what the predictor saw), keeps the mid
slice of each plane and asks the predictor for its age distribution
(:meth:`~bagkit.predictors.BrainAgePredictor.age_distribution`; ``None`` for a predictor without
one). The result rides on the cohort as :class:`~bagkit.cohort.examples.ExampleInput` objects, so
the analysis and the report never open a file. Memory stays bounded: one volume at a time, and only
the chosen subjects'.

::

    cohort = cohort.with_predictions(predicted, "sfcn")
    cohort = with_example_inputs(cohort, sfcn, base_dir="study/")                   # largest/smallest BAG
    cohort = with_example_inputs(cohort, sfcn, base_dir="study/", subjects=["sub-007", "sub-012"])
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from bagkit.cohort import Cohort
from bagkit.cohort.examples import PLANES, ExampleInput
from bagkit.errors import PredictorError, RequestError
from bagkit.predictors.protocol import AgeDistribution

__all__ = ["check_example_subjects", "pick_examples", "mid_planes", "example_inputs", "with_example_inputs", "SMALLEST", "LARGEST",
           "ONLY", "CHOSEN"]

SMALLEST, LARGEST, ONLY, CHOSEN = "smallest BAG", "largest BAG", "only subject", "chosen"


def check_example_subjects(data: pd.DataFrame, subjects: Sequence[str] | None) -> None:
    """Refuse (:class:`~bagkit.errors.RequestError`) example subject ids that are not in the table or
    are given twice — before any scan is predicted, so a typo costs no prediction time."""
    if subjects is None:
        return
    wanted = [str(s) for s in subjects]
    repeated = sorted({s for s in wanted if wanted.count(s) > 1})
    if repeated:
        raise RequestError(f"example subjects: {', '.join(repeated)} given more than once.")
    known = set(data["subject_id"].astype(str))
    missing = [s for s in wanted if s not in known]
    if missing:
        raise RequestError(f"example subjects: {', '.join(map(repr, missing))} "
                           f"{'is not a subject_id' if len(missing) == 1 else 'are not subject_ids'} of the cohort "
                           f"table.")


def pick_examples(data: pd.DataFrame, groups: Sequence[str], subjects: Sequence[str] | None = None
                  ) -> list[tuple[object, str]]:
    """(row label, why) of the example subjects, in the order they are shown.

    By default, per group (in ``groups`` order) the subject with the smallest BAG, then the one
    with the largest (ties: the first in the table; a group with one subject with a BAG gives it
    once, as ``only subject``; a group with none, nothing). BAG is the ``bag`` column as the
    predictions made it (brain age − age, before any age-bias correction the analysis applies).
    ``subjects``: the subject ids to show instead, in that order; an id that is not in the table,
    given twice or without a brain age is a :class:`~bagkit.errors.RequestError`.
    """
    ids = data["subject_id"].astype(str)
    bag = pd.to_numeric(data["bag"], errors="coerce") if "bag" in data.columns \
        else pd.Series(np.nan, index=data.index)
    if subjects is not None:
        check_example_subjects(data, subjects)
        picked = []
        for subject in (str(s) for s in subjects):
            rows = data.index[ids == subject]
            if not np.isfinite(bag[rows[0]]):
                raise RequestError(f"example subjects: {subject!r} has no brain age (its scan was not predicted), "
                                   f"so there is no age distribution to show.")
            picked.append((rows[0], CHOSEN))
        return picked
    picked = []
    for group in groups:
        values = bag[(data["group"].astype(str) == str(group)).to_numpy() & np.isfinite(bag.to_numpy())]
        if len(values) == 0:
            continue
        smallest, largest = values.idxmin(), values.idxmax()
        picked += [(smallest, ONLY)] if len(values) == 1 else [(smallest, SMALLEST), (largest, LARGEST)]
    return picked


def mid_planes(volume: np.ndarray) -> dict[str, np.ndarray]:
    """The mid sagittal, coronal and axial slices through the centre of the non-zero voxels (the
    brain, after skull stripping) of a RAS volume (axes: left→right, posterior→anterior,
    inferior→superior), each turned for display: row 0 at the top (superior; anterior for the
    axial slice), the subject's left on the viewer's left. float32 copies, not views."""
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise ValueError(f"mid_planes needs a 3-D volume, got shape {volume.shape}")
    inside = np.nonzero(volume)
    if len(inside[0]) == 0:
        centre = [s // 2 for s in volume.shape]
    else:
        centre = [int(round((int(axis.min()) + int(axis.max())) / 2)) for axis in inside]
    x, y, z = centre
    planes = {
        "sagittal": volume[x, :, :].T[::-1, :],   # rows: superior→inferior, columns: posterior→anterior
        "coronal": volume[:, y, :].T[::-1, :],    # rows: superior→inferior, columns: left→right
        "axial": volume[:, :, z].T[::-1, :],      # rows: anterior→posterior, columns: left→right
    }
    return {name: np.ascontiguousarray(planes[name], dtype=np.float32) for name in PLANES}


def _scan_paths(data: pd.DataFrame, base_dir) -> pd.Series:
    """The file each row's prediction read: the preprocessed scan when bagkit preprocessed it
    (``preprocessed_scan``, from ``--preprocess``), else the ``scan`` column, relative to ``base_dir``."""
    base = Path(base_dir)
    scans = data["scan"] if "scan" in data.columns else pd.Series(np.nan, index=data.index, dtype=object)
    if "preprocessed_scan" in data.columns:
        prepared = data["preprocessed_scan"]
        usable = prepared.notna() & (prepared.astype(str).str.strip() != "")
        scans = prepared.where(usable, scans)

    def resolve(value):
        if value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == "":
            return None
        path = Path(str(value))
        return path if path.is_absolute() else base / path
    return scans.map(resolve)


def example_inputs(cohort: Cohort, predictor, base_dir=".", subjects: Sequence[str] | None = None,
                   say: Callable[[str], None] | None = None) -> tuple[tuple[ExampleInput, ...], tuple[str, ...]]:
    """The example subjects' inputs and age distributions, and notes on those that could not be read.

    See :func:`pick_examples` for who is shown. Each scan is loaded with ``predictor.load_scan`` (the
    predictor's preprocessing), its mid planes kept, and ``predictor.age_distribution`` asked for
    that one volume; the volume is then dropped. A scan that cannot be read again is a note for the
    automatic choice and an error for ``subjects`` the caller named.
    """
    say = say or (lambda message: None)
    data = cohort.data
    if "bag" not in data.columns or not cohort.has("brain_age"):
        if subjects is not None:
            raise RequestError("example subjects: the cohort has no predicted brain age to show.")
        return (), ()
    picked = pick_examples(data, cohort.groups, subjects)
    if not picked:
        return (), ()
    paths = _scan_paths(data, base_dir)
    name = str(getattr(predictor, "name", type(predictor).__name__))
    say(f"Figure 1 D-G: input slices and age distributions of {len(picked)} example subject(s) ({name})")
    examples, notes = [], []
    for label, why in picked:
        subject = str(data.at[label, "subject_id"])
        path = paths[label]
        try:
            if path is None or not Path(path).is_file():
                raise FileNotFoundError(f"scan not found: {path}")
            volume = predictor.load_scan(path)
            planes = mid_planes(volume)
            distribution = _distribution(predictor, volume)
        except PredictorError:
            raise
        except Exception as error:  # noqa: BLE001 - one example's scan: a note (or the caller's error)
            if subjects is not None:
                raise RequestError(f"example subject {subject!r}: {path}: {error}") from error
            notes.append(f"Figure 1 D-G: {subject} ({why}) not shown ({type(error).__name__}: {error})")
            continue
        examples.append(ExampleInput(
            subject_id=subject, group=str(data.at[label, "group"]), chosen_as=why, scan=str(path), planes=planes,
            bin_centers=None if distribution is None else distribution.bin_centers,
            probabilities=None if distribution is None else distribution.probabilities[0],
            predictor=name))
        del volume
    return tuple(examples), tuple(notes)


def _distribution(predictor, volume: np.ndarray) -> AgeDistribution | None:
    method = getattr(predictor, "age_distribution", None)
    if not callable(method):
        return None
    distribution = method([volume])
    if distribution is None:
        return None
    if not isinstance(distribution, AgeDistribution) or len(distribution) != 1:
        raise PredictorError(f"predictor {getattr(predictor, 'name', type(predictor).__name__)!r}: "
                             f"age_distribution() of one scan returned {type(distribution).__name__}; expected an "
                             f"AgeDistribution with one row, or None.")
    return distribution


def with_example_inputs(cohort: Cohort, predictor, base_dir=".", subjects: Sequence[str] | None = None,
                        say: Callable[[str], None] | None = None) -> Cohort:
    """The cohort carrying its example subjects (see :func:`example_inputs`) for the report's
    Figure 1 D–G; scans that could not be read again are named in the cohort's notes."""
    examples, notes = example_inputs(cohort, predictor, base_dir=base_dir, subjects=subjects, say=say)
    return cohort.with_examples(examples, notes)
