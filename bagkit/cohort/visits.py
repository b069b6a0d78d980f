"""The visits table and the paper's follow-up rule (EDSS worsening, time to it)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bagkit.cohort.schema import worsening_threshold
from bagkit.errors import CohortError
from bagkit.io.tables import line_numbers, read_table


def read_visits(path: str | Path) -> pd.DataFrame:
    """Read a visits table: ``subject_id, years, edss`` (years since the baseline scan)."""
    path = Path(path)
    frame = read_table(path, "visits")
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
                              f"found {frame[column][bad].iloc[0]!r} on line(s) {line_numbers(bad)}")
        visits[column] = values.astype(float)
    if visits["subject_id"].isna().any():
        raise CohortError(f"visits file {path}: subject_id is empty on line(s) "
                          f"{line_numbers(visits['subject_id'].isna())}")
    visits, notes = _same_time_visits(visits, path)
    visits.attrs["source"] = str(path)
    visits.attrs["notes"] = notes
    return visits


def _same_time_visits(visits: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, list[str]]:
    """Refuse two visits of one subject at the same time with different EDSS (which one is right
    decides whether the subject worsened); collapse exact repeats to one visit, with a note."""
    same_time = visits.duplicated(["subject_id", "years"], keep=False)
    if not same_time.any():
        return visits, []
    repeated = visits[same_time]
    by_time = repeated.groupby(["subject_id", "years"], sort=False)["edss"]
    spread = by_time.transform("max") - by_time.transform("min")
    conflict = spread > 1e-9
    if conflict.any():
        first = repeated[conflict].iloc[0]
        both = repeated[(repeated["subject_id"] == first["subject_id"]) & (repeated["years"] == first["years"])]
        shown = " and ".join(f"line {int(i) + 2} (edss {e:g})" for i, e in both["edss"].items())
        others = repeated[conflict].groupby(["subject_id", "years"], sort=False).ngroups - 1
        more = f"; {others} more subject-time pair(s) like it" if others else ""
        raise CohortError(f"visits file {path}: subject '{first['subject_id']}' has two visits at "
                          f"{first['years']:g} years with different EDSS: {shown}{more}. Keep one visit per "
                          f"subject and time (which EDSS is right decides whether the subject worsened)")
    extra = visits.duplicated(["subject_id", "years"], keep="first")
    note = (f"visits: {int(extra.sum())} visit(s) in {path} repeat another visit of the same subject at "
            f"the same time with the same EDSS (line(s) {line_numbers(extra)}); each is counted once")
    return visits[~extra], [note]


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
                          f"(line(s) {line_numbers(unknown)})")
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
