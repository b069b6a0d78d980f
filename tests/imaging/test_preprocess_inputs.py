"""Bad input to the preprocessing: each refused per scan with a message naming the file; the batch
goes on; the command fails only when every scan failed. BIDS folders as input. (No registration
runs here: every scan is refused before the pipeline's heavy steps.)"""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bagkit.cli import cli
from bagkit.cohort.bids import read_bids
from bagkit.errors import CohortError, ImageError
from bagkit.imaging.pipeline import PreprocessOptions, check_raw_t1, output_name


def _save(path, data, affine=None):
    nib.save(nib.Nifti1Image(np.asarray(data, dtype=np.float32), np.eye(4) if affine is None else affine), str(path))
    return path


def _head_like(shape=(128, 128, 120)):
    rng = np.random.default_rng(0)
    return rng.uniform(0, 100, size=shape).astype(np.float32)


@pytest.mark.parametrize("case, make, expected", [
    ("4d", lambda: np.zeros((128, 128, 120, 3)) + 1.0, "4-D"),
    ("2d", lambda: _head_like((200, 200, 1)), "slab or a 2-D"),
    ("tiny", lambda: _head_like((60, 128, 120)), "field of view"),
    ("constant", lambda: np.full((128, 128, 120), 7.0), "constant"),
])
def test_not_t1_like_is_refused_naming_the_file(tmp_path, case, make, expected):
    path = _save(tmp_path / f"{case}.nii.gz", make())
    with pytest.raises(ImageError) as error:
        check_raw_t1(path)
    assert str(path) in str(error.value) and expected in str(error.value)


def _save_with_sform(path, data, srow_x):
    header = nib.Nifti1Image(np.zeros((1, 1, 1), np.float32), np.eye(4)).header
    header["srow_x"] = srow_x
    header["sform_code"], header["qform_code"] = 1, 0
    nib.Nifti1Image(np.asarray(data, dtype=np.float32), None, header).to_filename(str(path))
    return path


def test_broken_and_sheared_affines_are_refused(tmp_path):
    path = _save_with_sform(tmp_path / "nan.nii.gz", _head_like(), [np.nan, 0, 0, 0])
    with pytest.raises(ImageError, match="non-finite") as error:
        check_raw_t1(path)
    assert str(path) in str(error.value)
    path = _save_with_sform(tmp_path / "flat.nii.gz", _head_like(), [0.0, 0, 0, 0])
    with pytest.raises(ImageError, match="voxel sizes"):
        check_raw_t1(path)
    sheared = np.eye(4)
    sheared[0, 1] = 0.5
    path = _save(tmp_path / "shear.nii.gz", _head_like(), sheared)
    with pytest.raises(ImageError, match="sheared"):
        check_raw_t1(path)


def test_a_good_scan_is_reoriented_to_ras(tmp_path):
    affine = np.diag([-1.2, 1.0, 1.5, 1.0])
    path = _save(tmp_path / "las.nii.gz", _head_like(), affine)
    image = check_raw_t1(path)
    assert nib.aff2axcodes(image.affine) == ("R", "A", "S")
    assert image.get_fdata().dtype == np.float64 and image.shape == (128, 128, 120)


def test_output_names_keep_bids_entities():
    assert output_name("/x/sub-01_ses-2_run-1_T1w.nii.gz") == "sub-01_ses-2_run-1"
    assert output_name("patient7.nii") == "patient7"


def test_options_refuse_an_unknown_order():
    with pytest.raises(Exception, match="strip-first"):
        PreprocessOptions(order="sideways")


def test_cli_batch_goes_on_and_fails_only_when_all_fail(tmp_path):
    bad_4d = _save(tmp_path / "a.nii.gz", np.ones((128, 128, 120, 2)))
    constant = _save(tmp_path / "b.nii.gz", np.full((128, 128, 120), 3.0))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["preprocess", str(bad_4d), str(constant), "-o", str(out), "-q"])
    assert result.exit_code != 0
    assert "all 2 scan(s) failed" in result.output
    table = pd.read_csv(out / "qc.csv", keep_default_na=False)
    assert list(table["status"]) == ["error", "error"]
    assert str(bad_4d) in table.loc[0, "error"] and str(constant) in table.loc[1, "error"]


def test_cli_reads_a_cohort_table(tmp_path):
    (tmp_path / "scans").mkdir()
    _save(tmp_path / "scans" / "s1.nii.gz", np.full((128, 128, 120), 3.0))
    pd.DataFrame({"subject_id": ["s1", "s2"], "scan": ["scans/s1.nii.gz", ""]}).to_csv(tmp_path / "c.csv",
                                                                                      index=False)
    result = CliRunner().invoke(cli, ["preprocess", str(tmp_path / "c.csv"), "-o", str(tmp_path / "o"), "-q"])
    assert "line 3: no scan given" in result.output
    assert "s1.nii.gz" in result.output and "constant" in result.output


def test_qc_table_not_written_by_bagkit_is_kept(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "qc.csv").write_text("my,own\n1,2\n")
    bad = _save(tmp_path / "a.nii.gz", np.ones((128, 128, 120, 2)))
    result = CliRunner().invoke(cli, ["preprocess", str(bad), "-o", str(out), "-q"])
    assert result.exit_code != 0 and "not a bagkit QC table" in result.output
    assert (out / "qc.csv").read_text() == "my,own\n1,2\n"


def _bids(tmp_path):
    root = tmp_path / "bids"
    for sub, sessions in (("sub-01", ["b", "a"]), ("sub-02", [None]), ("sub-03", [None])):
        for ses in sessions:
            anat = root / sub / (f"ses-{ses}" if ses else "") / "anat"
            anat.mkdir(parents=True)
            stem = f"{sub}_ses-{ses}" if ses else sub
            (anat / f"{stem}_T1w.nii.gz").write_bytes(b"")
            if sub == "sub-02":
                (anat / f"{stem}_run-2_T1w.nii.gz").write_bytes(b"")
    (root / "participants.tsv").write_text("participant_id\tage\tgroup\nsub-01\t40\tHC\nsub-02\t50\tMS\n"
                                           "sub-04\t60\tMS\n")
    return root


def test_bids_first_session_and_first_run_are_stated(tmp_path):
    table = read_bids(_bids(tmp_path))
    data = table.data.set_index("subject_id")
    assert data.loc["sub-01", "scan"].endswith("ses-a/anat/sub-01_ses-a_T1w.nii.gz")
    assert data.loc["sub-02", "scan"].endswith("anat/sub-02_run-2_T1w.nii.gz") or \
        data.loc["sub-02", "scan"].endswith("anat/sub-02_T1w.nii.gz")
    assert data.loc["sub-01", "age"] == "40"
    notes = " | ".join(table.notes)
    assert "sub-01: 2 sessions (a, b); the first, ses-a, is used" in notes
    assert "sub-02: 2 T1 scans" in notes
    assert "no row for sub-03" in notes
    assert "without a T1 scan: sub-04" in notes


def test_bids_named_session(tmp_path):
    table = read_bids(_bids(tmp_path), session="b")
    assert list(table.data.dropna(subset=["scan"])["subject_id"]) == ["sub-01"]
    assert any("no session 'b'" in n for n in table.notes)


def test_not_a_bids_folder(tmp_path):
    with pytest.raises(CohortError, match="no T1 scans"):
        read_bids(tmp_path)


def test_cli_reads_a_bids_folder(tmp_path):
    anat = tmp_path / "bids" / "sub-01" / "ses-1" / "anat"
    anat.mkdir(parents=True)
    _save(anat / "sub-01_ses-1_T1w.nii.gz", np.full((128, 128, 120), 3.0))
    result = CliRunner().invoke(cli, ["preprocess", str(tmp_path / "bids"), "-o", str(tmp_path / "o"), "-q"])
    table = pd.read_csv(tmp_path / "o" / "qc.csv", keep_default_na=False)
    assert list(table["name"]) == ["sub-01_ses-1"] and "constant" in table.loc[0, "error"]
    assert result.exit_code != 0


def test_a_header_claiming_2000_cubed_voxels_is_refused_before_reading(tmp_path):
    """The raw-scan pipeline checks dimensions × dtype before reading data, as load_t1 does
    (before: `bagkit preprocess` read the whole claimed volume)."""
    import gzip
    import io
    import resource

    header = nib.Nifti1Header()
    header.set_data_shape((2000, 2000, 2000))
    header.set_data_dtype(np.uint8)
    header["vox_offset"] = 352
    buffer = io.BytesIO()
    header.write_to(buffer)
    path = tmp_path / "bomb.nii.gz"
    path.write_bytes(gzip.compress(buffer.getvalue() + b"\0" * 4 + bytes(4000)))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ImageError) as error:
        check_raw_t1(path)
    assert "bomb.nii.gz" in str(error.value) and "2000 × 2000 × 2000" in str(error.value)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024  # < 100 MB more (KiB)
