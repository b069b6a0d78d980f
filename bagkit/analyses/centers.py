"""BAG per center and group (Figure 1C): n, mean and standard error of the mean, so the bars and
whiskers a reader sees are numbers in ``results.csv`` (``center_bag`` rows), not figure code."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bagkit.cohort import Cohort
from bagkit.results import tidy_frame

__all__ = ["CenterMeans", "run_center_means"]


@dataclass(frozen=True, eq=False)
class CenterMeans:
    """One row per (group, center) with at least two subjects: ``n, mean, sd, se`` of BAG
    (R: ``aggregate(bag ~ group + center, FUN = function(v) c(mean(v), sd(v) / sqrt(length(v))))``)."""

    table: pd.DataFrame  # columns: group, center, n, mean, sd, se
    term: str = "bag"

    def tidy(self) -> pd.DataFrame:
        rows = []
        for row in self.table.itertuples(index=False):
            for statistic in ("n", "mean", "sd", "se"):
                rows.append(("center_bag", row.group, self.term, f"center {row.center}", statistic,
                             getattr(row, statistic)))
        return tidy_frame(rows)

    def get(self, group: str, center) -> dict | None:
        hit = self.table[(self.table["group"] == group) & (self.table["center"] == center)]
        return None if hit.empty else hit.iloc[0].to_dict()


def run_center_means(cohort: Cohort, options=None) -> CenterMeans | None:
    if not (cohort.has("center") and cohort.has("bag")):
        return None
    data = cohort.data[["group", "center", "bag"]].dropna()
    rows = []
    centers = sorted(data["center"].unique(), key=str)
    for group in cohort.groups:
        for center in centers:
            values = data.loc[(data["group"] == group) & (data["center"] == center), "bag"].to_numpy(float)
            if len(values) >= 2:
                sd = float(np.std(values, ddof=1))
                rows.append((group, center, len(values), float(values.mean()), sd, sd / np.sqrt(len(values))))
    return CenterMeans(pd.DataFrame(rows, columns=["group", "center", "n", "mean", "sd", "se"]))
