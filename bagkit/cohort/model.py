"""The validated, immutable :class:`Cohort`."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

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
    """

    data: pd.DataFrame
    control: str | None
    groups: tuple[str, ...]
    labels: Mapping[str, str] = field(default_factory=dict)
    source: str | None = None
    notes: tuple[str, ...] = ()
    inputs: Mapping[str, str] = field(default_factory=dict)

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

    def __len__(self) -> int:
        return len(self.data)
