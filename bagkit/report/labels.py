"""The one label table of the report: how each column is named, in each kind of place.

A user's label (``--labels``/mapping file, kept in ``Cohort.labels``) wins everywhere: Table 1,
Table 2, Table 3, the balance table, the matching sentence, the figures' captions. Without one,
each place takes the paper's wording for it: Table 1 rows carry the summary ("EDSS at baseline,
median (IQR)"), Cox rows the unit of the hazard ratio ("Sex=Male"), sentences the plain words.
"""
from __future__ import annotations

from bagkit.stats.survival import COX_LABELS

__all__ = ["label", "WORDINGS"]

PROSE = {"sex": "sex", "age": "age", "age_at_diagnosis": "age at diagnosis", "edss": "baseline EDSS",
         "nbv": "normalized brain volume", "disease_duration": "first onset to diagnosis",
         "brain_age_sd": "predicted brain-age SD", "bag": "brain age gap"}

AXIS = {"edss": "Baseline EDSS", "nbv": "Normalized brain volume", "bag": "Brain age gap (years)"}

WORDINGS = {"table": {}, "cox": COX_LABELS, "prose": PROSE, "axis": AXIS}


def label(cohort, column: str, wording: str = "table") -> str:
    """The display label of ``column``: the user's, else the paper's wording for that place."""
    user = dict(getattr(cohort, "labels", None) or {}).get(column)
    if user:
        return str(user)
    specific = WORDINGS[wording].get(column)
    if specific:
        return specific
    return cohort.label(column) if hasattr(cohort, "label") else str(column)
