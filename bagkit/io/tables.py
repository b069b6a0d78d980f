"""The one table reader: CSV or TSV, every cell read as text, BIDS missing markers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bagkit.errors import CohortError

MISSING_VALUES = ["", "n/a", "N/A", "NA", "na", "NaN", "nan", "null", "NULL", "None", "."]


def read_table(path: Path, what: str) -> pd.DataFrame:
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
    return frame


def line_numbers(mask: pd.Series, limit: int = 8) -> str:
    """File line numbers (header is line 1) of the rows where mask holds."""
    lines = [str(i + 2) for i in np.flatnonzero(mask.to_numpy())]
    more = f" and {len(lines) - limit} more" if len(lines) > limit else ""
    return ", ".join(lines[:limit]) + more



#: what makes a spreadsheet read a cell as a formula (OWASP, "CSV Injection")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """``value`` as a CSV cell a spreadsheet will not run: text beginning with ``=``, ``+``,
    ``-``, ``@``, a tab or a carriage return gets a leading ``'`` (OWASP's advice for CSV
    injection). Numbers (also ``-1.5`` written as text) and other values are returned unchanged."""
    if not isinstance(value, str) or len(value) < 2 or not value.startswith(FORMULA_STARTS):
        return value
    try:
        float(value)
        return value  # a negative number is not a formula
    except ValueError:
        return "'" + value


def spreadsheet_safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells and column names went through :func:`spreadsheet_safe`
    (numeric columns untouched): write every CSV bagkit hands to a person through it."""
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column].dtype):
            safe[column] = safe[column].map(spreadsheet_safe)
    safe.columns = [spreadsheet_safe(str(c)) if isinstance(c, str) else c for c in safe.columns]
    return safe
