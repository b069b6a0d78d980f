"""The cohort: the table's contract (schema), reading and validating it (loading), the paper's
follow-up rule (visits) and the validated :class:`Cohort` (model), the only place BAG is computed.

Imports only ``bagkit.io`` and ``bagkit.errors``.
"""
from bagkit.cohort.loading import read_calibration, read_cohort, read_column_mapping
from bagkit.cohort.model import Cohort
from bagkit.cohort.schema import COLUMNS, DERIVED_LABELS, Column, worsening_threshold
from bagkit.cohort.visits import derive_worsening, read_visits

__all__ = ["Column", "COLUMNS", "DERIVED_LABELS", "Cohort", "read_cohort", "read_visits", "derive_worsening",
           "read_column_mapping", "read_calibration", "worsening_threshold"]
