"""A BIDS folder wherever a cohort is: participants.tsv + each subject's T1 as the scan column."""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import bagkit
from bagkit.cli import cli


def _bids(tmp_path):
    folder = tmp_path / "ds"
    rng = np.random.default_rng(0)
    rows = []
    for i in range(12):
        subject = f"sub-{i:02d}"
        sessions = ["a", "b"] if i == 0 else [None]
        for session in sessions:
            anat = folder / subject / (f"ses-{session}" if session else "") / "anat"
            anat.mkdir(parents=True, exist_ok=True)
            name = f"{subject}{'_ses-' + session if session else ''}_T1w.nii.gz"
            nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.float32), np.eye(4)), str(anat / name))
        age = 30 + 2 * i
        rows.append({"participant_id": subject, "group": ["HC", "A", "B"][i % 3], "age": age,
                     "brain_age": age + rng.normal(0, 3)})
    pd.DataFrame(rows).to_csv(folder / "participants.tsv", sep="\t", index=False)
    return folder


def test_read_cohort_takes_a_bids_folder(tmp_path):
    folder = _bids(tmp_path)
    cohort = bagkit.read_cohort(folder)
    assert len(cohort) == 12 and cohort.groups == ("HC", "A", "B")
    scans = cohort.data.set_index("subject_id")["scan"]
    assert scans["sub-00"].endswith("sub-00/ses-a/anat/sub-00_ses-a_T1w.nii.gz")  # the first session, stated
    assert all(pd.io.common.file_exists(s) for s in scans)
    assert any("sub-00: 2 sessions (a, b); the first, ses-a, is used" in note for note in cohort.notes)
    np.testing.assert_allclose(cohort.data["bag"], cohort.data["brain_age"] - cohort.data["age"])


def test_report_on_a_bids_folder(tmp_path):
    folder = _bids(tmp_path)
    out = tmp_path / "report"
    done = CliRunner().invoke(cli, ["report", str(folder), "-o", str(out), "-q"])
    assert done.exit_code == 0, done.output
    assert (out / "results.csv").is_file()
    assert "2 sessions" in done.output  # the session choice is said, not silent


def test_a_folder_that_is_not_bids_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(bagkit.CohortError, match="no T1 scans found"):
        bagkit.read_cohort(tmp_path / "empty")
