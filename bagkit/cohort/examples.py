"""Example inputs carried on the cohort: for a few chosen subjects, the slices of the scan a
predictor saw and its predicted age distribution (the paper's Figure 1 D–G).

They are made at the prediction stage (:mod:`bagkit.predictors.examples`, which reads the scans)
and travel on the :class:`~bagkit.cohort.Cohort` so that the analysis
(:mod:`bagkit.analyses.examples`) copies them into the results without reading a file. Only the
chosen subjects' slices are kept: a few small 2-D arrays, never whole volumes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

#: the planes kept per example, each a 2-D array ready to show (row 0 at the top: superior, or
#: anterior for the axial plane; the subject's left on the viewer's left as in the neurological convention)
PLANES = ("sagittal", "coronal", "axial")


@dataclass(frozen=True, eq=False)
class ExampleInput:
    """One example subject's input and output.

    ``subject_id``, ``group``; ``chosen_as``: why it is shown (``smallest BAG``, ``largest BAG``,
    ``only subject`` or ``chosen``); ``scan``: the file the predictor read; ``planes``: the mid slice
    of each plane of :data:`PLANES` through the brain's centre, as the predictor saw it (after its
    preprocessing), row 0 at the top; ``bin_centers`` and ``probabilities``: the predictor's age
    distribution (years; probabilities summing to 1), or ``None`` when the predictor has none (GP
    regression); ``predictor``: its name. The subject's ages and BAG are read from the cohort's table.
    """

    subject_id: str
    group: str
    chosen_as: str
    scan: str
    planes: Mapping[str, np.ndarray]
    bin_centers: np.ndarray | None
    probabilities: np.ndarray | None
    predictor: str

    @property
    def has_distribution(self) -> bool:
        return self.bin_centers is not None and self.probabilities is not None


__all__ = ["ExampleInput", "PLANES"]
