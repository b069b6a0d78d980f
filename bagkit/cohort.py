"""The cohort table: read, map a user's column names, validate, derive.

One row per subject (CSV, TSV or a BIDS ``participants.tsv``). The canonical
columns are listed in :data:`COLUMNS`; a user's own names map onto them. The
result is a validated, immutable :class:`Cohort` whose ``data`` holds canonical
columns (plus any extra columns the user had) and the derived ``bag``, ``nbv``
and, from a visits table, ``worsening`` and ``followup_years``.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from bagkit.errors import CohortError

__all__ = ["Column", "COLUMNS", "Cohort", "read_cohort", "read_visits", "derive_worsening",
           "read_column_mapping", "worsening_threshold"]


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
_MISSING = ["", "n/a", "N/A", "NA", "na", "NaN", "nan", "null", "NULL", "None", "."]
_SEX = {"f": "F", "female": "F", "w": "F", "woman": "F", "m": "M", "male": "M", "man": "M"}
_AQP4 = {"pos": "pos", "positive": "pos", "+": "pos", "1": "pos", "neg": "neg", "negative": "neg", "-": "neg",
         "0": "neg"}
_BINARY = {"0": 0.0, "1": 1.0, "0.0": 0.0, "1.0": 1.0, "no": 0.0, "yes": 1.0, "false": 0.0, "true": 1.0}


def worsening_threshold(baseline_edss):
    """The paper's EDSS-worsening rule: a rise of ≥ 1.0 when baseline ≤ 5.5, ≥ 0.5 when > 5.5."""
    return np.where(np.asarray(baseline_edss, dtype=float) <= 5.5, 1.0, 0.5)


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


def read_column_mapping(path: str | Path) -> tuple[dict[str, str], dict[str, str]]:
    """Read a mapping file: JSON ``{"columns": {canonical: yours}, "labels": {canonical: label}}``
    (a flat ``{canonical: yours}`` works too) or a two-column CSV/TSV ``canonical,yours``."""
    path = Path(path)
    if not path.is_file():
        raise CohortError(f"column mapping file {path} does not exist")
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as error:
            raise CohortError(f"column mapping file {path} is not valid JSON: {error}") from None
        if not isinstance(raw, dict):
            raise CohortError(f"column mapping file {path} must hold a JSON object")
        columns = raw.get("columns", raw if "labels" not in raw else {})
        labels = raw.get("labels", {})
    else:
        frame = pd.read_csv(path, sep=None, engine="python", header=None, dtype=str, comment="#")
        if frame.shape[1] != 2:
            raise CohortError(f"column mapping file {path} must have two columns (canonical, yours); "
                              f"found {frame.shape[1]}")
        if frame.iloc[0, 0].strip().lower() in ("canonical", "bagkit"):
            frame = frame.iloc[1:]
        columns, labels = dict(zip(frame[0].str.strip(), frame[1].str.strip())), {}
    for what, mapping in (("columns", columns), ("labels", labels)):
        if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
            raise CohortError(f"column mapping file {path}: '{what}' must map names to strings")
    return dict(columns), dict(labels)


def _read_table(path: Path, what: str) -> pd.DataFrame:
    if not path.is_file():
        raise CohortError(f"{what} file {path} does not exist")
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix.lower() == ".gz" else path.suffix.lower()
    sep = "\t" if suffix.startswith(".tsv") or suffix == ".txt" else ","
    try:
        frame = pd.read_csv(path, sep=sep, dtype=str, na_values=_MISSING, keep_default_na=False,
                            skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as error:
        raise CohortError(f"{what} file {path} cannot be read as {'TSV' if sep == chr(9) else 'CSV'}: "
                          f"{error}") from None
    if frame.shape[1] == 1 and sep == "," and "\t" in frame.columns[0]:
        frame = pd.read_csv(path, sep="\t", dtype=str, na_values=_MISSING, keep_default_na=False)
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise CohortError(f"{what} file {path} has no rows")
    return frame


def _rows(mask: pd.Series, limit: int = 8) -> str:
    """File line numbers (header is line 1) of the rows where mask holds."""
    lines = [str(i + 2) for i in np.flatnonzero(mask.to_numpy())]
    more = f" and {len(lines) - limit} more" if len(lines) > limit else ""
    return ", ".join(lines[:limit]) + more


def _parse_numeric(frame: pd.DataFrame, column: str, source_name: str, path: Path) -> pd.Series:
    raw = frame[column]
    values = pd.to_numeric(raw.str.strip(), errors="coerce")
    bad = raw.notna() & values.isna()
    if bad.any():
        examples = ", ".join(repr(v) for v in raw[bad].unique()[:3])
        raise CohortError(f"{path}: column '{source_name}' must be numeric; found {examples} "
                          f"on line(s) {_rows(bad)}")
    spec = COLUMNS.get(column)
    if spec and spec.low is not None:
        out = values.notna() & ((values < spec.low) | (values > spec.high))
        if out.any():
            raise CohortError(f"{path}: column '{source_name}' must lie in [{spec.low:g}, {spec.high:g}]; "
                              f"found {values[out].iloc[0]:g} on line(s) {_rows(out)}")
    return values.astype(float)


def _parse_coded(frame, column, source_name, path, codes: Mapping[str, object], expected: str) -> pd.Series:
    raw = frame[column]
    parsed = raw.str.strip().str.lower().map(codes)
    bad = raw.notna() & parsed.isna()
    if bad.any():
        examples = ", ".join(repr(v) for v in raw[bad].unique()[:3])
        raise CohortError(f"{path}: column '{source_name}' must be {expected}; found {examples} "
                          f"on line(s) {_rows(bad)}")
    return parsed


def read_cohort(path: str | Path, control: str | None = "HC", columns: Mapping[str, str] | None = None,
                labels: Mapping[str, str] | None = None, visits: str | Path | None = None,
                groups: Sequence[str] | None = None, mapping_file: str | Path | None = None) -> Cohort:
    """Read and validate a cohort table.

    Parameters
    ----------
    path : CSV or TSV (a BIDS ``participants.tsv`` works: ``participant_id`` is taken as subject_id).
    control : label of the control group (``None``: the cohort has no control group).
    columns : ``{canonical: your_column}`` for columns named otherwise in the file.
    labels : ``{canonical: display label}`` for the report.
    visits : optional visits table (``subject_id, years, edss``) from which EDSS worsening and
        the time to it are derived by the paper's rule.
    groups : the groups to analyse, in this order (default: every group, in file order).
    mapping_file : a file giving ``columns`` and ``labels`` (see :func:`read_column_mapping`).
    """
    path = Path(path)
    frame = _read_table(path, "cohort")
    mapping: dict[str, str] = {}
    display: dict[str, str] = {}
    if mapping_file is not None:
        mapping, display = read_column_mapping(mapping_file)
    mapping.update(columns or {})
    display.update(labels or {})

    renames: dict[str, str] = {}
    for canonical, yours in mapping.items():
        if canonical not in COLUMNS:
            raise CohortError(f"column mapping names '{canonical}', which is not a bagkit column; "
                              f"known columns: {', '.join(COLUMNS)}")
        if yours not in frame.columns:
            raise CohortError(f"column mapping says '{canonical}' is column '{yours}', but {path} has no "
                              f"column '{yours}'; its columns are: {', '.join(frame.columns)}")
        if canonical in frame.columns and canonical != yours:
            raise CohortError(f"{path} has a column '{canonical}' and the mapping also maps '{yours}' onto "
                              f"'{canonical}'; rename one of them")
        renames[yours] = canonical
    for alias, canonical in _ALIASES.items():
        if alias in frame.columns and canonical not in frame.columns and canonical not in renames.values():
            renames[alias] = canonical
    source_names = {canonical: yours for yours, canonical in renames.items()}
    frame = frame.rename(columns=renames)
    if frame.columns.duplicated().any():
        dup = sorted(set(frame.columns[frame.columns.duplicated()]))
        raise CohortError(f"{path}: column name(s) {', '.join(dup)} appear more than once")

    missing = [c.name for c in COLUMNS.values() if c.required and c.name not in frame.columns]
    if missing:
        raise CohortError(f"{path}: required column(s) {', '.join(repr(m) for m in missing)} not found; "
                          f"the file has: {', '.join(frame.columns)}. Map your own names with "
                          f"--column CANONICAL=YOURS or a mapping file.")

    data = pd.DataFrame(index=frame.index)
    for name in frame.columns:
        spec = COLUMNS.get(name)
        shown = source_names.get(name, name)
        if spec is None or spec.kind in ("label", "id", "path"):
            data[name] = frame[name].str.strip() if frame[name].dtype == object else frame[name]
        elif spec.kind == "numeric":
            data[name] = _parse_numeric(frame, name, shown, path)
        elif spec.kind == "sex":
            data[name] = _parse_coded(frame, name, shown, path, _SEX, "F or M (female/male)")
        elif spec.kind == "binary":
            data[name] = _parse_coded(frame, name, shown, path, _BINARY, "0 or 1").astype(float)
        elif spec.kind == "aqp4":
            data[name] = _parse_coded(frame, name, shown, path, _AQP4, "pos, neg or empty")

    for name in ("subject_id", "group", "age"):
        empty = data[name].isna()
        if empty.any():
            raise CohortError(f"{path}: column '{source_names.get(name, name)}' is required for every row "
                              f"but is empty (NaN) on line(s) {_rows(empty)}")
    duplicated = data["subject_id"].duplicated(keep=False)
    if duplicated.any():
        ids = ", ".join(repr(i) for i in data.loc[duplicated, "subject_id"].unique()[:5])
        raise CohortError(f"{path}: subject_id must be unique; {ids} appear(s) more than once "
                          f"(line(s) {_rows(duplicated)})")

    present = list(dict.fromkeys(data["group"]))
    in_file = set(data["subject_id"])  # visits may cover subjects of groups left out by `groups`
    if groups is not None:
        groups = [str(g) for g in groups]
        absent = [g for g in groups if g not in present]
        if absent:
            raise CohortError(f"{path}: group(s) {', '.join(repr(g) for g in absent)} have no subjects; "
                              f"the groups in the table are: {', '.join(present)}")
        data = data[data["group"].isin(groups)]
        present = groups
    if control is not None and control not in present:
        raise CohortError(f"control group '{control}' is not among the groups of {path}: "
                          f"{', '.join(present)}. Name it with --control, or give --no-control.")
    for g in present:
        n = int((data["group"] == g).sum())
        if n < 2:
            raise CohortError(f"{path}: group '{g}' has {n} subject; at least 2 are needed per group")

    if "brain_age" in data:
        data["bag"] = data["brain_age"] - data["age"]
    if "nbv" not in data and {"brain_volume_ml", "icv_ml"} <= set(data.columns):
        data["nbv"] = data["brain_volume_ml"] / data["icv_ml"]

    data = data.reset_index(drop=True)
    notes: list[str] = []
    if visits is not None:
        data = _attach_visits(data, read_visits(visits), path, visits, in_file)
    else:
        data = _derive_followup_columns(data, path)
    inputs = {"cohort": str(path)}
    if visits is not None:
        inputs["visits"] = str(visits)
    if mapping_file is not None:
        inputs["column mapping"] = str(mapping_file)
    shown_labels = {**{c: source_names[c] for c in source_names if c not in COLUMNS}, **display}
    return Cohort(data=data, control=control, groups=tuple(present), labels=shown_labels,
                  source=str(path), notes=tuple(notes), inputs=inputs)


def _derive_followup_columns(data: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Check the follow-up columns for consistency and derive worsening from edss_followup."""
    if "worsening" in data and "followup_years" not in data:
        raise CohortError(f"{path}: column 'worsening' needs 'followup_years' (time to worsening or to the "
                          f"last visit)")
    if "edss_followup" in data and "worsening" not in data:
        if "followup_years" not in data or "edss" not in data:
            raise CohortError(f"{path}: column 'edss_followup' needs 'edss' (baseline) and 'followup_years'")
        has = data["edss_followup"].notna() & data["edss"].notna()
        rise = data["edss_followup"] - data["edss"]
        data["worsening"] = np.where(has, (rise >= worsening_threshold(data["edss"]) - 1e-9).astype(float),
                                     np.nan)
    if "worsening" in data:
        only_one = data["worsening"].notna() != data["followup_years"].notna()
        if only_one.any():
            raise CohortError(f"{path}: 'worsening' and 'followup_years' must be both given or both empty; "
                              f"line(s) {_rows(only_one)} have only one")
    return data


def read_visits(path: str | Path) -> pd.DataFrame:
    """Read a visits table: ``subject_id, years, edss`` (years since the baseline scan)."""
    path = Path(path)
    frame = _read_table(path, "visits")
    missing = [c for c in ("subject_id", "years", "edss") if c not in frame.columns]
    if missing:
        raise CohortError(f"visits file {path}: required column(s) {', '.join(missing)} not found; "
                          f"the file has: {', '.join(frame.columns)}")
    visits = pd.DataFrame({"subject_id": frame["subject_id"].str.strip()})
    for column, low, high in (("years", 0, 100), ("edss", 0, 10)):
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() | (values < low) | (values > high)
        if bad.any():
            raise CohortError(f"visits file {path}: column '{column}' must be a number in [{low}, {high}]; "
                              f"found {frame[column][bad].iloc[0]!r} on line(s) {_rows(bad)}")
        visits[column] = values.astype(float)
    if visits["subject_id"].isna().any():
        raise CohortError(f"visits file {path}: subject_id is empty on line(s) "
                          f"{_rows(visits['subject_id'].isna())}")
    visits.attrs["source"] = str(path)
    return visits


def derive_worsening(baseline_edss: pd.Series, visits: pd.DataFrame) -> pd.DataFrame:
    """EDSS worsening and its time from visits, by the paper's rule.

    ``baseline_edss`` is indexed by subject_id; ``visits`` has ``subject_id, years, edss`` with
    years > 0 (follow-up visits). Worsening is the first visit whose EDSS rises ≥ 1.0 over a
    baseline ≤ 5.5 (≥ 0.5 over a baseline > 5.5); its ``followup_years`` is that visit's time.
    Subjects who never worsen are censored at their last visit. Returns a frame indexed by
    subject_id with ``worsening`` (0/1), ``followup_years`` (time to worsening or censoring, the
    survival time) and ``followup_total_years`` (time of the last visit: the follow-up time of Table 1).
    """
    visits = visits[visits["years"] > 0].sort_values(["subject_id", "years"], kind="mergesort")
    baseline = visits["subject_id"].map(baseline_edss).to_numpy(dtype=float)
    event = visits["edss"].to_numpy() - baseline >= worsening_threshold(baseline) - 1e-9
    visits = visits.assign(event=event)
    last = visits.groupby("subject_id", sort=False)["years"].max()
    first_event = visits[visits["event"]].groupby("subject_id", sort=False)["years"].min()
    out = pd.DataFrame({"worsening": 0.0, "followup_years": last, "followup_total_years": last})
    out.loc[first_event.index, "worsening"] = 1.0
    out.loc[first_event.index, "followup_years"] = first_event
    return out


def _attach_visits(data: pd.DataFrame, visits: pd.DataFrame, path: Path, visits_path,
                   in_file: set | None = None) -> pd.DataFrame:
    clash = [c for c in ("worsening", "followup_years", "followup_total_years", "edss_followup") if c in data]
    if clash:
        raise CohortError(f"{path} already has {', '.join(clash)} and a visits table was given too; "
                          f"give follow-up one way only")
    known = set(data["subject_id"]) if in_file is None else in_file
    unknown = ~visits["subject_id"].isin(known)
    if unknown.any():
        ids = ", ".join(repr(i) for i in visits.loc[unknown, "subject_id"].unique()[:5])
        raise CohortError(f"visits file {visits_path}: subject(s) {ids} are not in the cohort {path} "
                          f"(line(s) {_rows(unknown)})")
    visits = visits[visits["subject_id"].isin(set(data["subject_id"]))]
    baseline = data.set_index("subject_id")["edss"] if "edss" in data else pd.Series(dtype=float)
    at_zero = visits[visits["years"] == 0].groupby("subject_id")["edss"].first()
    if len(at_zero):
        given = baseline.reindex(at_zero.index)
        disagree = given.notna() & (given - at_zero).abs().gt(1e-9)
        if disagree.any():
            sid = disagree[disagree].index[0]
            raise CohortError(f"visits file {visits_path}: the year-0 EDSS of '{sid}' ({at_zero[sid]:g}) "
                              f"differs from its baseline edss in the cohort ({given[sid]:g})")
        baseline = baseline.combine_first(at_zero)
    followed = visits.loc[visits["years"] > 0, "subject_id"].unique()
    no_baseline = [s for s in followed if pd.isna(baseline.get(s, np.nan))]
    if no_baseline:
        raise CohortError(f"visits file {visits_path}: subject(s) {', '.join(map(repr, no_baseline[:5]))} "
                          f"have follow-up visits but no baseline EDSS (cohort column 'edss' or a "
                          f"year-0 visit)")
    derived = derive_worsening(baseline, visits)
    return data.join(derived, on="subject_id")
