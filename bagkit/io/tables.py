"""The one table reader: CSV or TSV, every cell read as text, BIDS missing markers.

A file that is not a UTF-8 CSV/TSV is refused with a message that says what the file looks
like and what to do, never a raw codec or parser message: a spreadsheet workbook (``.xlsx``,
``.ods``, ``.xls``), a file in another text encoding (latin-1/Windows-1252), a semicolon-separated
file (as spreadsheets write CSV where the decimal mark is a comma), two columns of the same name.
"""
from __future__ import annotations

import csv
import gzip
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from bagkit.errors import CohortError

MISSING_VALUES = ["", "n/a", "N/A", "NA", "na", "NaN", "nan", "null", "NULL", "None", "."]

_SAVE_AS = ("save it from the spreadsheet as 'CSV UTF-8 (comma delimited)' or as tab-separated text "
            "(.tsv), with a point as the decimal mark")
# The first bytes of files that are not text tables.
_SIGNATURES = (
    (b"PK\x03\x04", "a zip archive — an Excel (.xlsx) or OpenDocument (.ods) workbook"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old-style Excel workbook (.xls)"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\x1f\x8b", "a gzip archive whose name does not end in .gz"),
)


def _raw_bytes(path: Path, what: str) -> bytes:
    try:
        if path.suffix.lower() == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError) as error:
        raise CohortError(f"{what} file {path} cannot be read: {error}") from None


def _decode(path: Path, raw: bytes, what: str) -> str:
    """The file's text (UTF-8, with or without a byte-order mark); a clear refusal otherwise."""
    for signature, looks_like in _SIGNATURES:
        if raw.startswith(signature):
            raise CohortError(f"{what} file {path} is {looks_like}, not a text table; bagkit reads CSV or TSV "
                              f"files: {_SAVE_AS}")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise CohortError(f"{what} file {path} is UTF-16 text (as Excel's 'Unicode text' writes); bagkit reads "
                          f"UTF-8: {_SAVE_AS}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        start = raw.rfind(b"\n", 0, error.start) + 1
        end = raw.find(b"\n", error.start)
        shown = raw[start:end if end >= 0 else len(raw)].decode("cp1252", errors="replace").strip()
        if len(shown) > 60:
            shown = shown[:60] + "…"
        raise CohortError(f"{what} file {path} is not UTF-8 text: line {line} holds byte "
                          f"0x{raw[error.start]:02x}, which UTF-8 does not allow; the file looks like latin-1 / "
                          f"Windows-1252 text (line {line} would read {shown!r}). Save it as UTF-8 "
                          f"('CSV UTF-8' in a spreadsheet, or: iconv -f WINDOWS-1252 -t UTF-8 "
                          f"{path.name} > {path.stem}-utf8{path.suffix})") from None


def read_text(path: Path, what: str) -> str:
    """A text file's content as UTF-8, refused in words when it is a workbook, binary or not UTF-8."""
    path = Path(path)
    return _decode(path, _raw_bytes(path, what), what)


def _header(text: str, sep: str) -> list[str]:
    first = text.lstrip("\n").split("\n", 1)[0].rstrip("\r")
    return [cell.strip() for cell in next(csv.reader([first], delimiter=sep), [])]


def read_table(path: Path, what: str, numeric: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a CSV or TSV (``.csv``, ``.tsv``, ``.txt``, optionally ``.gz``) with every cell as text
    (missing markers as NaN); the ``numeric`` columns that are present are converted to numbers, and
    a cell that is not one is refused naming the column and lines.

    Raises :class:`~bagkit.errors.CohortError` naming the file (and the line where it helps)
    for a missing file, a workbook or other binary file, a non-UTF-8 file, a semicolon-separated
    file, two columns of the same name, rows with more cells than the header, or no rows.
    """
    path = Path(path)
    if not path.is_file():
        raise CohortError(f"{what} file {path} does not exist")
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix.lower() == ".gz" else path.suffix.lower()
    if suffix in (".xlsx", ".xls", ".xlsm", ".ods"):
        raise CohortError(f"{what} file {path} is a spreadsheet workbook ({suffix}); bagkit reads CSV or TSV "
                          f"files: {_SAVE_AS}")
    text = _decode(path, _raw_bytes(path, what), what)
    sep = "\t" if suffix.startswith(".tsv") or suffix == ".txt" else ","
    header = _header(text, sep)
    if sep == "," and len(header) == 1 and "\t" in header[0]:
        sep, header = "\t", _header(text, "\t")
    if len(header) == 1 and ";" in header[0]:
        decimal_commas = re.search(r"\d,\d", text[:4096]) is not None
        raise CohortError(f"{what} file {path} is separated by semicolons (line 1: {header[0][:60]!r})"
                          + (", with commas as decimal marks" if decimal_commas else "")
                          + f", as spreadsheets write CSV where the decimal mark is a comma; bagkit reads "
                          f"comma- or tab-separated files with a point as the decimal mark: {_SAVE_AS}")
    named = [h for h in header if h]
    repeated = sorted({h for h in named if named.count(h) > 1})
    if repeated:
        where = "; ".join(f"'{name}' is column {' and '.join(str(i + 1) for i, h in enumerate(header) if h == name)}"
                          for name in repeated)
        raise CohortError(f"{what} file {path}: line 1 names a column more than once ({where}); each column "
                          f"needs its own name: rename or remove the extra one")
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, na_values=MISSING_VALUES,
                            keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise CohortError(f"{what} file {path} is empty; expected a header line and one row per "
                          f"{'visit' if what == 'visits' else 'subject'}") from None
    except pd.errors.ParserError as error:
        detail = str(error).replace("Error tokenizing data. C error: ", "").strip()
        raise CohortError(f"{what} file {path} cannot be read as {'TSV' if sep == chr(9) else 'CSV'}: {detail}; "
                          f"every line must have as many {'tabs' if sep == chr(9) else 'commas'} as the header "
                          f"(line 1; quote cells that contain one)") from None
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
    """File line numbers (header is line 1) of the rows where mask holds.

    The mask's index must be the row's position in the file as :func:`read_table` numbered it
    (0 = line 2), so that a filtered table still names the right lines."""
    lines = [str(int(i) + 2) for i in mask.index[np.asarray(mask, dtype=bool)]]
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
