"""The validated, immutable :class:`Cohort`."""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from bagkit.cohort.examples import ExampleInput
from bagkit.cohort.qc import load_qc_pictures
from bagkit.cohort.schema import COLUMNS, DERIVED_LABELS


@dataclass(frozen=True)
class Cohort:
    """A validated cohort table.

    Attributes
    ----------
    data : DataFrame indexed 0..n-1, canonical column names, derived columns added.
    control : the control group's label, or None when the cohort has none.
    groups : every group label, in the order the user gave them (file order by default).
    labels : display label per column (the paper's wording unless the user gave one).
    source : where the table came from.
    inputs : every file the cohort was read from, by role (``cohort``, ``visits``, ``column mapping``).
    derivations : how derived columns were made (e.g. ``{"brain age": "predicted by sfcn"}``), for provenance.
    examples : example subjects' input slices and age distributions (Figure 1 D–G), made where the
        scans were predicted (:func:`bagkit.predictors.examples.with_example_inputs`); empty otherwise.
    qc_pictures : the preprocessing QC pictures the report shows (subject_id → RGB uint8 pixels), read
        once when the cohort was built (:func:`bagkit.cohort.qc.load_qc_pictures`); empty without QC.
    """

    data: pd.DataFrame
    control: str | None
    groups: tuple[str, ...]
    labels: Mapping[str, str] = field(default_factory=dict)
    source: str | None = None
    notes: tuple[str, ...] = ()
    inputs: Mapping[str, str] = field(default_factory=dict)
    derivations: Mapping[str, str] = field(default_factory=dict)  # how derived columns were made, in words
    bias_correction: Mapping[str, object] = field(default_factory=dict)  # the fitted age-bias correction, if any
    examples: tuple[ExampleInput, ...] = ()
    qc_pictures: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def patient_groups(self) -> tuple[str, ...]:
        return tuple(g for g in self.groups if g != self.control)

    def has(self, column: str) -> bool:
        """True when the column exists and holds at least one value."""
        return column in self.data.columns and bool(self.data[column].notna().any())

    def label(self, column: str) -> str:
        if column in self.labels:
            return self.labels[column]
        if column in COLUMNS:
            return COLUMNS[column].label
        return DERIVED_LABELS.get(column, column)

    def group(self, name: str) -> pd.DataFrame:
        return self.data[self.data["group"] == name]

    def subset(self, mask, notes: Sequence[str] = ()) -> "Cohort":
        """A cohort of the rows where ``mask`` holds, groups kept in order (empty groups dropped)."""
        data = self.data[np.asarray(mask, dtype=bool)].reset_index(drop=True)
        present = set(data["group"])
        groups = tuple(g for g in self.groups if g in present)
        control = self.control if self.control in present else None
        return dataclasses.replace(self, data=data, control=control, groups=groups,
                                   notes=tuple(self.notes) + tuple(notes))

    def with_predictions(self, predicted: pd.DataFrame, predictor: str,
                         inputs: Mapping[str, str] | None = None) -> "Cohort":
        """The cohort with ``brain_age``/``brain_age_sd`` from a predictor and ``bag`` recomputed.

        ``predicted`` is row-aligned with :attr:`data` (as ``predict_cohort`` returns it), with a
        ``prediction_error`` column that is empty where the scan was predicted. Subjects whose scan
        failed keep no brain age and get a note; ``inputs`` (e.g. the weights file) join the
        cohort's inputs for provenance; how a distributed prediction ran (``predicted.attrs
        ["prediction_run"]``) joins its derivations. Existing brain-age columns are replaced, with a warning.
        """
        if len(predicted) != len(self.data):
            raise ValueError(f"predictions for {len(predicted)} rows, cohort has {len(self.data)}")
        data = self.data.copy()
        if self.has("brain_age"):
            warnings.warn(f"{self.source or 'the cohort'}: its brain_age / brain_age_sd columns are replaced by "
                          f"the predictions of {predictor}", UserWarning, stacklevel=2)
        for column in ("brain_age", "brain_age_sd"):
            data[column] = pd.to_numeric(predicted[column], errors="coerce").to_numpy(dtype=float)
        data["bag"] = data["brain_age"] - data["age"]
        errors = predicted["prediction_error"].fillna("").astype(str).to_numpy() if "prediction_error" in \
            predicted else np.full(len(data), "", dtype=object)
        failed = np.flatnonzero(errors != "")
        ids = data["subject_id"].astype(str).to_numpy()
        notes = tuple(f"brain age: no prediction for {ids[i]} ({errors[i]})" for i in failed)
        derivations = dict(self.derivations)
        derivations["brain age"] = f"predicted by {predictor}: {len(data) - len(failed)} of {len(data)} subjects"
        run = predicted.attrs.get("prediction_run")  # set by bagkit.predictors.distributed
        if run:
            derivations["brain age computed on"] = (
                f"Dask distributed {run['distributed_version']} (dask {run['dask_version']}), {run['cluster']}, "
                f"scheduler {run['scheduler']}, {run['workers']} worker(s), {run['threads']} thread(s)")
        data, volume_notes = _with_preprocessing(data, predicted)
        pictures, picture_notes = load_qc_pictures(data) if "icv_ml" in predicted.columns else ({}, ())
        notes = volume_notes + picture_notes + notes
        return dataclasses.replace(self, data=data, notes=tuple(self.notes) + notes,
                                   inputs={**self.inputs, **(inputs or {})}, derivations=derivations,
                                   examples=(),  # examples of earlier predictions no longer hold
                                   qc_pictures=pictures or self.qc_pictures)

    def with_examples(self, examples, notes: Sequence[str] = ()) -> "Cohort":
        """The cohort carrying ``examples`` (:class:`~bagkit.cohort.examples.ExampleInput`, one per
        subject of the table, at most one each) for the report's Figure 1 D–G, and ``notes``."""
        examples = tuple(examples)
        ids = set(self.data["subject_id"].astype(str))
        seen: set[str] = set()
        for example in examples:
            if not isinstance(example, ExampleInput):
                raise TypeError(f"examples must be ExampleInput objects, not {type(example).__name__}")
            if example.subject_id not in ids or example.subject_id in seen:
                raise ValueError(f"example subject {example.subject_id!r} is not in the cohort, or given twice")
            seen.add(example.subject_id)
        return dataclasses.replace(self, examples=examples, notes=tuple(self.notes) + tuple(notes))

    @property
    def bias_corrected(self) -> bool:
        """True when ``bag`` holds an age-bias-corrected gap (the raw one is in ``bag_uncorrected``)."""
        return "bag_uncorrected" in self.data.columns

    def with_corrected_bag(self, corrected, description: str, fit: Mapping[str, object],
                           inputs: Mapping[str, str] | None = None) -> "Cohort":
        """The cohort whose ``bag`` is an age-bias-corrected gap (row-aligned with :attr:`data`).

        The gap as computed from the table (brain_age − age) is kept in ``bag_uncorrected`` and
        every analysis then reads the corrected ``bag``; ``description`` (the method, its fit and
        how the controls' own values were made) joins the derivations for provenance and ``fit``
        (method, slope, intercept, n, fitted_on, controls_values, folds) is kept as
        :attr:`bias_correction` for the analyses that report it.
        """
        corrected = np.asarray(corrected, dtype=float)
        if corrected.shape != (len(self.data),):
            raise ValueError(f"corrected BAG for {corrected.size} rows, cohort has {len(self.data)}")
        if self.bias_corrected:
            raise ValueError("the cohort's BAG is already bias-corrected")
        data = self.data.copy()
        data["bag_uncorrected"] = data["brain_age"] - data["age"]
        data["bag"] = corrected
        labels = {**self.labels, "bag": "Brain age gap, bias-corrected, yr",
                  "bag_uncorrected": "Brain age gap, uncorrected, yr"}
        return dataclasses.replace(self, data=data, labels=labels, inputs={**self.inputs, **(inputs or {})},
                                   derivations={**self.derivations, "brain age gap": description},
                                   bias_correction=dict(fit))

    def __len__(self) -> int:
        return len(self.data)


#: the raw-scan preprocessing's per-subject QC columns (see bagkit.predictors.raw)
_QC_COLUMNS = ("preprocess_status", "preprocess_flags", "qc_template_correlation", "qc_template_dice", "qc_picture")


def _with_preprocessing(data: pd.DataFrame, predicted: pd.DataFrame) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """``data`` with the preprocessing's QC columns (for the report's QC page) and ``icv_ml`` /
    ``brain_volume_ml`` (and ``nbv``) from its brain masks where the table has none, with the note
    that says so. Unchanged when the predictions came without preprocessing."""
    if "icv_ml" not in predicted.columns:
        return data, ()
    filled = []
    for column in _QC_COLUMNS:
        data[column] = predicted[column].to_numpy()
    if "preprocessed_scan" in predicted.columns:  # the file predicted: the report's example inputs show it
        data["preprocessed_scan"] = predicted["preprocessed_scan"].to_numpy()
    for column in ("icv_ml", "brain_volume_ml"):
        if column not in data.columns or data[column].isna().all():
            data[column] = predicted[column].to_numpy(dtype=float)
            filled.append(column)
    if not filled:
        return data, ()
    if "nbv" not in data.columns or data["nbv"].isna().all() or "brain_volume_ml" in filled:
        data["nbv"] = data["brain_volume_ml"] / data["icv_ml"]
    return data, (f"brain volumes: {' and '.join(filled)} estimated from the preprocessing's brain masks "
                  f"(bagkit preprocess: ICV = deepbet mask volume, brain volume = its grey + white matter by "
                  f"3-class Otsu); not a segmentation tool's volumes",)
