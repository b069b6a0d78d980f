"""A BIDS folder as a cohort: ``participants.tsv`` plus each subject's T1.

    table = read_bids("ds000001")          # table.data: participants.tsv + a `scan` column
    table.notes                            # the choices made (sessions, runs), in words

Layout read: ``sub-<label>/[ses-<label>/]anat/sub-<label>[_ses-<label>][_acq-…][_run-<n>]_T1w.nii[.gz]``.
A subject with several sessions contributes its **first session** (sorted by label) unless
``session`` names one; several T1s in that session (runs, acquisitions): the first in sorted
order. Each such choice is stated in ``notes`` — never a silent pick. ``participant_id`` becomes
``subject_id``; subjects with a T1 but no row in ``participants.tsv`` are kept (other columns
empty) and named in the notes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bagkit.errors import CohortError
from bagkit.io.tables import read_table

T1_PATTERN = re.compile(r"^(sub-[A-Za-z0-9]+)(_ses-([A-Za-z0-9]+))?(_[a-z]+-[A-Za-z0-9]+)*_T1w\.nii(\.gz)?$")


@dataclass(frozen=True)
class BidsTable:
    data: pd.DataFrame
    notes: tuple[str, ...]
    folder: Path


def t1_files(folder) -> list[Path]:
    """Every ``*_T1w.nii[.gz]`` under ``sub-*/[ses-*/]anat/``, sorted."""
    folder = Path(folder)
    found = list(folder.glob("sub-*/anat/*_T1w.nii*")) + list(folder.glob("sub-*/ses-*/anat/*_T1w.nii*"))
    return sorted(p for p in found if T1_PATTERN.match(p.name))


def is_bids_folder(folder) -> bool:
    """A folder with at least one ``sub-*/[ses-*/]anat/*_T1w.nii[.gz]``."""
    return Path(folder).is_dir() and bool(t1_files(folder))


def read_bids(folder, session: str | None = None) -> BidsTable:
    """The cohort table of a BIDS folder (see the module's docstring)."""
    folder = Path(folder)
    files = t1_files(folder)
    if not files:
        raise CohortError(f"{folder}: no T1 scans found (expected sub-*/[ses-*/]anat/*_T1w.nii[.gz]).")
    notes = []
    chosen: dict[str, Path] = {}
    by_subject: dict[str, list[Path]] = {}
    for path in files:
        by_subject.setdefault(T1_PATTERN.match(path.name).group(1), []).append(path)
    for subject, paths in sorted(by_subject.items()):
        sessions = sorted({T1_PATTERN.match(p.name).group(3) or "" for p in paths})
        if session is not None:
            if session not in sessions:
                notes.append(f"{subject}: no session {session!r} (has {', '.join(s or 'none' for s in sessions)}); "
                             f"left out")
                continue
            pick = session
        else:
            pick = sessions[0]
            if len(sessions) > 1:
                notes.append(f"{subject}: {len(sessions)} sessions ({', '.join(sessions)}); the first, "
                             f"ses-{pick}, is used")
        in_session = [p for p in paths if (T1_PATTERN.match(p.name).group(3) or "") == pick]
        if len(in_session) > 1:
            notes.append(f"{subject}: {len(in_session)} T1 scans in {('ses-' + pick) if pick else 'the session'} "
                         f"({', '.join(p.name for p in in_session)}); the first, {in_session[0].name}, is used")
        chosen[subject] = in_session[0]
    participants_path = folder / "participants.tsv"
    if participants_path.is_file():
        participants = read_table(participants_path, "participants")
        if "participant_id" not in participants.columns:
            raise CohortError(f"{participants_path}: no participant_id column.")
        participants = participants.rename(columns={"participant_id": "subject_id"})
    else:
        notes.append(f"{folder}: no participants.tsv; only subject_id and scan are known")
        participants = pd.DataFrame({"subject_id": pd.Series(dtype=str)})
    participants["subject_id"] = participants["subject_id"].astype(str).str.strip()
    missing = sorted(set(chosen) - set(participants["subject_id"]))
    if missing:
        notes.append(f"{participants_path.name}: no row for {', '.join(missing)} (kept with empty columns)")
    scans = pd.DataFrame({"subject_id": list(chosen), "scan": [str(p.resolve()) for p in chosen.values()]})
    data = participants.merge(scans, on="subject_id", how="outer", sort=False)
    without = data["scan"].isna()
    if without.any():
        notes.append(f"{int(without.sum())} participant(s) without a T1 scan: "
                     f"{', '.join(data.loc[without, 'subject_id'].astype(str).head(8))}")
    return BidsTable(data=data, notes=tuple(notes), folder=folder)


__all__ = ["BidsTable", "read_bids", "is_bids_folder", "t1_files"]
