"""Read a cohort table: map a user's column names, validate, derive."""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from bagkit.cohort.bids import read_bids
from bagkit.cohort.model import Cohort
from bagkit.cohort.qc import load_qc_pictures
from bagkit.cohort.schema import _ALIASES, _AQP4, _BINARY, _SEX, COLUMNS, worsening_threshold
from bagkit.cohort.visits import _attach_visits, read_visits
from bagkit.errors import CohortError
from bagkit.io.tables import line_numbers, read_table, read_text


def read_column_mapping(path: str | Path) -> tuple[dict[str, str], dict[str, str]]:
    """Read a mapping file: JSON ``{"columns": {canonical: yours}, "labels": {canonical: label}}``
    (a flat ``{canonical: yours}`` works too) or a two-column CSV/TSV ``canonical,yours``."""
    path = Path(path)
    if not path.is_file():
        raise CohortError(f"column mapping file {path} does not exist")
    text = read_text(path, "column mapping")
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
        frame = pd.read_csv(io.StringIO(text), sep=None, engine="python", header=None, dtype=str, comment="#")
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




def _parse_numeric(frame: pd.DataFrame, column: str, source_name: str, path: Path) -> pd.Series:
    raw = frame[column]
    values = pd.to_numeric(raw.str.strip(), errors="coerce")
    bad = raw.notna() & values.isna()
    if bad.any():
        examples = ", ".join(repr(v) for v in raw[bad].unique()[:3])
        comma = raw[bad].str.strip().str.fullmatch(r"[-+]?\d+,\d+").all()
        hint = (f" (a comma as the decimal mark: write {raw[bad].iloc[0].strip().replace(',', '.')!r})"
                if comma else "")
        raise CohortError(f"{path}: column '{source_name}' must be numeric; found {examples} "
                          f"on line(s) {line_numbers(bad)}{hint}")
    spec = COLUMNS.get(column)
    if spec and spec.low is not None:
        out = values.notna() & ((values < spec.low) | (values > spec.high))
        if out.any():
            raise CohortError(f"{path}: column '{source_name}' must lie in [{spec.low:g}, {spec.high:g}]; "
                              f"found {values[out].iloc[0]:g} on line(s) {line_numbers(out)}")
    return values.astype(float)


def _parse_extra(raw: pd.Series) -> pd.Series:
    """A column beyond the canonical ones (a user's own covariate): numbers when every value given
    reads as a number (so it can be a matching covariate with a mean ± SD row), else text."""
    text = raw.str.strip() if raw.dtype == object else raw
    present = text.dropna()
    if len(present) == 0:
        return text
    values = pd.to_numeric(present, errors="coerce")
    if values.notna().all() and np.isfinite(values.to_numpy(dtype=float)).all():
        return pd.to_numeric(text, errors="coerce").astype(float)
    return text


def _parse_coded(frame, column, source_name, path, codes: Mapping[str, object], expected: str) -> pd.Series:
    raw = frame[column]
    parsed = raw.str.strip().str.lower().map(codes)
    bad = raw.notna() & parsed.isna()
    if bad.any():
        examples = ", ".join(repr(v) for v in raw[bad].unique()[:3])
        raise CohortError(f"{path}: column '{source_name}' must be {expected}; found {examples} "
                          f"on line(s) {line_numbers(bad)}")
    return parsed


#: The most groups a cohort may have. A study compares a handful of groups (the paper: 3); a table
#: with hundreds is almost surely a subject-level column read as ``group``, and each group costs a
#: Table-1 column and a pass over the table, so more are refused at once (``read_cohort(max_groups=)``).
MAX_GROUPS = 50


def _shown(labels: Sequence[str], limit: int = 10) -> str:
    more = f" and {len(labels) - limit} more" if len(labels) > limit else ""
    return ", ".join(str(g) for g in labels[:limit]) + more


def _check_group_sizes(group: pd.Series, present: Sequence[str], path: Path, max_groups: int) -> None:
    """Refuse too many groups and groups with < 2 subjects, vectorised (one pass over the table)."""
    counts = group.value_counts(sort=False)
    if len(present) > max_groups:
        singletons = int((counts < 2).sum())
        raise CohortError(f"{path}: column 'group' holds {len(present)} different labels (e.g. "
                          f"{', '.join(repr(g) for g in present[:3])}); at most {max_groups} groups are "
                          f"analysed ({singletons} label(s) have a single subject). Is 'group' the diagnosis "
                          f"column? Choose groups with --groups A,B,C, or map your diagnosis column with "
                          f"--column group=YOURS")
    small = counts.reindex(list(present), fill_value=0)
    small = small[small < 2]
    if len(small):
        shown = "; ".join(f"group '{g}' has {n} subject" + (f" (line {line_numbers(group == g)})" if n else "")
                          for g, n in small.head(5).items())
        more = f"; and {len(small) - 5} more group(s) like it" if len(small) > 5 else ""
        raise CohortError(f"{path}: {shown}{more}; at least 2 are needed per group: drop such groups with "
                          f"--groups or correct the labels")


def read_cohort(path: str | Path, control: str | None = "HC", columns: Mapping[str, str] | None = None,
                labels: Mapping[str, str] | None = None, visits: str | Path | None = None,
                groups: Sequence[str] | None = None, mapping_file: str | Path | None = None,
                max_groups: int = MAX_GROUPS) -> Cohort:
    """Read and validate a cohort table.

    Parameters
    ----------
    path : CSV or TSV (a BIDS ``participants.tsv`` works: ``participant_id`` is taken as subject_id),
        or a BIDS folder: ``participants.tsv`` plus each subject's ``sub-*/[ses-*/]anat/*_T1w.nii[.gz]``
        as the ``scan`` column (first session and first run by default, each choice stated in the
        notes; see :mod:`bagkit.cohort.bids`).
    control : label of the control group (``None``: the cohort has no control group).
    columns : ``{canonical: your_column}`` for columns named otherwise in the file.
    labels : ``{canonical: display label}`` for the report.
    visits : optional visits table (``subject_id, years, edss``) from which EDSS worsening and
        the time to it are derived by the paper's rule.
    groups : the groups to analyse, in this order (default: every group, in file order).
    mapping_file : a file giving ``columns`` and ``labels`` (see :func:`read_column_mapping`).
    max_groups : the most groups a cohort may have (:data:`MAX_GROUPS`); more is refused as implausible
        (a subject-level column read as ``group``) before any per-group work.
    """
    path = Path(path)
    bids_notes: tuple[str, ...] = ()
    if path.is_dir():  # a BIDS folder: participants.tsv + each subject's T1 (choices stated in the notes)
        bids = read_bids(path)
        frame, bids_notes = bids.data, tuple(f"BIDS: {note}" for note in bids.notes)
    else:
        frame = read_table(path, "cohort")
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

    if groups is None:  # an implausible number of groups is refused before any other per-row work
        labels = frame["group"].dropna().str.strip()
        if labels.nunique() > max_groups:
            _check_group_sizes(labels, list(pd.unique(labels)), path, max_groups)

    data = pd.DataFrame(index=frame.index)
    for name in frame.columns:
        spec = COLUMNS.get(name)
        shown = source_names.get(name, name)
        if spec is None:
            data[name] = _parse_extra(frame[name])
        elif spec.kind in ("label", "id", "path"):
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
                              f"but is empty (NaN) on line(s) {line_numbers(empty)}")
    duplicated = data["subject_id"].duplicated(keep=False)
    if duplicated.any():
        ids = ", ".join(repr(i) for i in data.loc[duplicated, "subject_id"].unique()[:5])
        raise CohortError(f"{path}: subject_id must be unique; {ids} appear(s) more than once "
                          f"(line(s) {line_numbers(duplicated)})")

    present = list(dict.fromkeys(data["group"]))
    in_file = set(data["subject_id"])  # visits may cover subjects of groups left out by `groups`
    if groups is None:
        _check_group_sizes(data["group"], present, path, max_groups)
    else:
        groups = [str(g) for g in groups]
        absent = [g for g in groups if g not in present]
        if absent:
            raise CohortError(f"{path}: group(s) {', '.join(repr(g) for g in absent)} have no subjects; "
                              f"the groups in the table are: {_shown(present)}")
        data = data[data["group"].isin(groups)]
        present = groups
        _check_group_sizes(data["group"], present, path, max_groups)
    if control is not None and control not in present:
        raise CohortError(f"control group '{control}' is not among the groups of {path}: "
                          f"{_shown(present)}. Name it with --control, or give --no-control.")

    if "brain_age" in data:
        data["bag"] = data["brain_age"] - data["age"]
    if "nbv" not in data and {"brain_volume_ml", "icv_ml"} <= set(data.columns):
        data["nbv"] = data["brain_volume_ml"] / data["icv_ml"]

    notes: list[str] = list(bids_notes)
    if visits is not None:
        visit_table = read_visits(visits)
        notes += visit_table.attrs.get("notes", [])
        data = _attach_visits(data.reset_index(drop=True), visit_table, path, visits, in_file)
    else:
        data = _derive_followup_columns(data, path).reset_index(drop=True)
    inputs = {"cohort": str(path / "participants.tsv" if path.is_dir() else path)}
    if visits is not None:
        inputs["visits"] = str(visits)
    if mapping_file is not None:
        inputs["column mapping"] = str(mapping_file)
    shown_labels = {**{c: source_names[c] for c in source_names if c not in COLUMNS}, **display}
    # a table written by `bagkit predict --preprocess`: its QC pictures are read here, once
    pictures, picture_notes = load_qc_pictures(data, base_dir=path if path.is_dir() else path.parent)
    return Cohort(data=data, control=control, groups=tuple(present), labels=shown_labels,
                  source=str(path), notes=tuple(notes) + picture_notes, inputs=inputs, qc_pictures=pictures)


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
                              f"line(s) {line_numbers(only_one)} have only one")
    if "followup_years" in data:
        # R's survdiff/coxph accept a time of 0 and, when every time is 0, compare the event
        # proportions as if they were survival (all-zero follow-up gave survdiff p = 1e-6): a time of
        # 0 carries no follow-up, so it is refused rather than analysed.
        not_positive = data["followup_years"].notna() & (data["followup_years"] <= 0)
        if not_positive.any():
            raise CohortError(f"{path}: column 'followup_years' (time to worsening or to the last visit) must be "
                              f"greater than 0; found {data.loc[not_positive, 'followup_years'].iloc[0]:g} on "
                              f"line(s) {line_numbers(not_positive)}. A subject without follow-up has "
                              f"followup_years and worsening both empty")
    return data


def read_calibration(path: str | Path, columns: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Read an age-bias calibration table: healthy subjects outside the cohort, one per row, with
    ``age`` and ``brain_age`` (``columns`` maps your names: ``{"age": "AgeAtScan"}``). Rows with
    either value empty are dropped; a non-numeric or out-of-range value is an error naming the line."""
    path = Path(path)
    frame = read_table(path, "bias calibration")
    renames = {yours: canonical for canonical, yours in (columns or {}).items()}
    frame = frame.rename(columns=renames)
    missing = [c for c in ("age", "brain_age") if c not in frame.columns]
    if missing:
        raise CohortError(f"bias calibration file {path}: column(s) {', '.join(missing)} not found; it needs "
                          f"age and brain_age (healthy subjects' chronological and predicted age); its columns "
                          f"are: {', '.join(frame.columns)}")
    out = pd.DataFrame({c: _parse_numeric(frame, c, c, path) for c in ("age", "brain_age")})
    out = out.dropna().reset_index(drop=True)
    if len(out) < 3:
        raise CohortError(f"bias calibration file {path}: {len(out)} row(s) with both age and brain_age; at least "
                          f"3 are needed to fit the correction")
    return out
