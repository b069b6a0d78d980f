"""The tidy long table every number passes through.

Every analysis result knows how to ``tidy()`` itself into rows of
``analysis, subset, term, contrast, statistic, value`` (see the README for the
vocabulary). The PDF, the CSVs and the Python API all read the same objects.
"""
from __future__ import annotations

from typing import Iterable, Protocol, runtime_checkable

import pandas as pd

TIDY_COLUMNS = ("analysis", "subset", "term", "contrast", "statistic", "value")


@runtime_checkable
class Tidy(Protocol):
    """What every analysis result offers: its numbers as tidy long rows."""

    def tidy(self) -> pd.DataFrame: ...


def tidy_frame(rows: Iterable[tuple]) -> pd.DataFrame:
    """Build a tidy frame from ``(analysis, subset, term, contrast, statistic, value)`` tuples."""
    frame = pd.DataFrame(list(rows), columns=list(TIDY_COLUMNS))
    for column in TIDY_COLUMNS[:-1]:
        frame[column] = frame[column].fillna("").astype(str)
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce").astype(float)
    return frame


def concat_tidy(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if f is not None and len(f)]
    if not frames:
        return tidy_frame([])
    return pd.concat(frames, ignore_index=True)[list(TIDY_COLUMNS)]
