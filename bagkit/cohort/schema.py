"""The cohort contract: canonical columns, their labels, coded values and the paper's worsening rule."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Column:
    """One canonical column of the cohort contract."""

    name: str
    kind: str  # id | label | numeric | sex | binary | aqp4 | path
    label: str  # how the report names it (the paper's wording)
    required: bool = False
    low: float | None = None  # plausible range for numeric columns (inclusive)
    high: float | None = None


COLUMNS: dict[str, Column] = {c.name: c for c in (
    Column("subject_id", "id", "Subject", required=True),
    Column("group", "label", "Group", required=True),
    Column("age", "numeric", "Age at baseline, yr", required=True, low=0, high=120),
    Column("sex", "sex", "Female, n (%)"),
    Column("center", "label", "Center"),
    Column("scan", "path", "T1 scan"),
    Column("brain_age", "numeric", "Predicted brain age, yr", low=-50, high=200),
    Column("brain_age_sd", "numeric", "Predicted brain age standard deviation, yr", low=0, high=100),
    Column("brain_age_filled", "numeric", "Brain age on lesion-filled scan, yr", low=-50, high=200),
    Column("edss", "numeric", "EDSS at baseline, median (IQR)", low=0, high=10),
    Column("age_at_diagnosis", "numeric", "Age at diagnosis, yr", low=0, high=120),
    Column("disease_duration", "numeric", "First onset to diagnosis, yr", low=0, high=120),
    Column("dmt", "binary", "Baseline treatment with DMT, n (%)"),
    Column("aqp4", "aqp4", "Seropositive for AQP4-IgG, n (%)"),
    Column("brain_volume_ml", "numeric", "Brain segmentation volume without ventricles, ml", low=0, high=5000),
    Column("icv_ml", "numeric", "Estimated total intracranial volume, ml", low=0, high=5000),
    Column("nbv", "numeric", "Normalized brain volume", low=0, high=1.5),
    Column("lesion_volume_ml", "numeric", "Total volume of lesion, ml", low=0, high=5000),
    Column("followup_years", "numeric", "Time to worsening or censoring, yr", low=0, high=100),
    Column("followup_total_years", "numeric", "Follow-up time, yr", low=0, high=100),
    Column("edss_followup", "numeric", "EDSS at follow-up", low=0, high=10),
    Column("worsening", "binary", "EDSS worsening, n (%)"),
)}

# Derived columns and their labels (never read from the file under these names unless given).
DERIVED_LABELS = {"bag": "Brain age gap, yr"}

# Names other tools use for canonical columns, taken when the canonical name is absent.
_ALIASES = {"participant_id": "subject_id", "diagnosis": "group"}
_SEX = {"f": "F", "female": "F", "w": "F", "woman": "F", "m": "M", "male": "M", "man": "M"}
_AQP4 = {"pos": "pos", "positive": "pos", "+": "pos", "1": "pos", "neg": "neg", "negative": "neg", "-": "neg",
         "0": "neg"}
_BINARY = {"0": 0.0, "1": 1.0, "0.0": 0.0, "1.0": 1.0, "no": 0.0, "yes": 1.0, "false": 0.0, "true": 1.0}


def worsening_threshold(baseline_edss):
    """The paper's EDSS-worsening rule: a rise of ≥ 1.0 when baseline ≤ 5.5, ≥ 0.5 when > 5.5."""
    return np.where(np.asarray(baseline_edss, dtype=float) <= 5.5, 1.0, 0.5)
