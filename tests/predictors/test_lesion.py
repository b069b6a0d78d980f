"""Lesion filling: lesions get NAWM intensities; the input on disk is unchanged."""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from bagkit.errors import ImageError, OutputExistsError
from bagkit.imaging.lesion import fill_lesions, fill_lesions_file


@pytest.fixture
def scan(tmp_path, write_nifti):
    rng = np.random.default_rng(0)
    t1 = np.zeros((30, 30, 30), np.float32)
    t1[3:27, 3:27, 3:27] = rng.normal(60, 3, (24, 24, 24))       # grey matter
    t1[8:22, 8:22, 8:22] = rng.normal(100, 4, (14, 14, 14))      # white matter
    wm = np.zeros_like(t1)
    wm[8:22, 8:22, 8:22] = 1
    lesion = np.zeros_like(t1)
    lesion[12:15, 12:15, 12:15] = 1                               # two T1-dark lesions
    lesion[17:19, 16:19, 10:12] = 1
    t1[lesion > 0] = 35.0
    paths = [write_nifti(tmp_path / name, data) for name, data in
             (("t1.nii.gz", t1), ("lesion.nii.gz", lesion), ("wm.nii.gz", wm))]
    return paths, t1, lesion > 0, wm > 0


@pytest.mark.parametrize("use_wm_mask", [True, False])
def test_filled_voxels_come_from_white_matter(scan, tmp_path, use_wm_mask):
    (t1_path, lesion_path, wm_path), t1, lesion, wm = scan
    before = t1_path.read_bytes()
    out = fill_lesions_file(t1_path, lesion_path, tmp_path / "filled.nii.gz",
                            wm_mask_path=wm_path if use_wm_mask else None, seed=1)
    filled = np.asarray(nib.load(str(out)).dataobj)
    nawm = t1[wm & ~lesion]
    assert filled[lesion].min() >= nawm.min() and filled[lesion].max() <= nawm.max()
    assert abs(filled[lesion].mean() - 100) < 3
    np.testing.assert_array_equal(filled[~lesion], t1[~lesion])      # nothing else changes
    assert t1_path.read_bytes() == before                             # input untouched on disk


def test_refuses_to_overwrite_input(scan, tmp_path):
    (t1_path, lesion_path, _), *_ = scan
    before = t1_path.read_bytes()
    with pytest.raises(OutputExistsError, match="overwrite the input"):
        fill_lesions_file(t1_path, lesion_path, t1_path, force=True)
    assert t1_path.read_bytes() == before
    out = tmp_path / "filled.nii.gz"
    out.write_bytes(b"an earlier result")
    with pytest.raises(OutputExistsError, match="force"):
        fill_lesions_file(t1_path, lesion_path, out)
    assert out.read_bytes() == b"an earlier result"
    assert fill_lesions_file(t1_path, lesion_path, out, force=True) == out
    assert nib.load(str(out)).shape == nib.load(str(t1_path)).shape


def test_shape_mismatch_and_empty_mask(scan, tmp_path, write_nifti):
    (t1_path, _, _), *_ = scan
    small = write_nifti(tmp_path / "small_mask.nii.gz", np.ones((10, 10, 10)))
    with pytest.raises(ImageError, match=r"small_mask\.nii\.gz.*shape"):
        fill_lesions(t1_path, small)
    empty = write_nifti(tmp_path / "empty_mask.nii.gz", np.zeros((30, 30, 30)))
    with pytest.raises(ImageError, match=r"empty_mask\.nii\.gz.*empty"):
        fill_lesions(t1_path, empty)
