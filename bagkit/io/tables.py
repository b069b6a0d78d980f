"""The one table reader: CSV or TSV, every cell read as text, BIDS missing markers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bagkit.errors import CohortError

MISSING_VALUES = ["", "n/a", "N/A", "NA", "na", "NaN", "nan", "null", "NULL", "None", "."]


def read_table(path: Path, what: str, numeric: tuple[str, ...] = ()) -> pd.DataFrame:
    """Every cell as text (missing markers as NaN); the ``numeric`` columns that are present are
    converted to numbers, and a cell that is not one is refused naming the column and lines."""
    path = Path(path)
    if not path.is_file():
        raise CohortError(f"{what} file {path} does not exist")
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix.lower() == ".gz" else path.suffix.lower()
    sep = "\t" if suffix.startswith(".tsv") or suffix == ".txt" else ","
    try:
        frame = pd.read_csv(path, sep=sep, dtype=str, na_values=MISSING_VALUES, keep_default_na=False,
                            skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as error:
        raise CohortError(f"{what} file {path} cannot be read as {'TSV' if sep == chr(9) else 'CSV'}: "
                          f"{error}") from None
    if frame.shape[1] == 1 and sep == "," and "\t" in frame.columns[0]:
        frame = pd.read_csv(path, sep="\t", dtype=str, na_values=MISSING_VALUES, keep_default_na=False)
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise CohortError(f"{what} file {path} has no rows")
    for column in numeric:
        if column in frame.columns:
            frame[column] = _as_numbers(frame[column], path, what, column)
    return frame


def _as_numbers(values: pd.Series, path: Path, what: str, column: str) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() & values.notna()
    if bad.any():
        examples = ", ".join(repr(v) for v in dict.fromkeys(values[bad].astype(str)).keys() if v)[:120]
        raise CohortError(f"{what} file {path}: column {column!r} must hold numbers; found {examples} "
                          f"on line(s) {line_numbers(bad)}")
    return numbers.astype(float)


def line_numbers(mask: pd.Series, limit: int = 8) -> str:
    """File line numbers (header is line 1) of the rows where mask holds."""
    lines = [str(i + 2) for i in np.flatnonzero(mask.to_numpy())]
    more = f" and {len(lines) - limit} more" if len(lines) > limit else ""
    return ", ".join(lines[:limit]) + more

