"""T1 input: the contract checks (errors name the file) and preprocessing on the real MNI152 T1."""
from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest

from bagkit import imaging
from bagkit.errors import ImageError


def _brain(shape=(20, 24, 20)):
    data = np.zeros(shape, dtype=np.float32)
    data[4:-4, 4:-4, 4:-4] = 100.0
    return data


def test_corrupt_file_error_names_the_file(tmp_path, write_nifti):
    path = tmp_path / "sub-01_T1w.nii.gz"
    path.write_bytes(gzip.compress(b"this is not a NIfTI header at all" * 10))
    with pytest.raises(ImageError) as error:
        imaging.load_t1(path)
    assert "sub-01_T1w.nii.gz" in str(error.value)


def test_truncated_file_error_names_the_file(tmp_path, write_nifti):
    good = write_nifti(tmp_path / "good.nii", _brain())
    bad = tmp_path / "truncated.nii"
    bad.write_bytes(good.read_bytes()[:600])
    with pytest.raises(ImageError, match="truncated.nii"):
        imaging.load_t1(bad)


def test_four_d_image_is_refused(tmp_path, write_nifti):
    path = write_nifti(tmp_path / "bold.nii.gz", np.ones((8, 8, 8, 3)))
    with pytest.raises(ImageError, match=r"bold\.nii\.gz.*4-D"):
        imaging.load_t1(path)


def test_wrong_voxel_size_is_refused_unless_resampling(tmp_path, write_nifti):
    path = write_nifti(tmp_path / "thick.nii.gz", _brain(), zooms=(1.0, 1.0, 3.0))
    with pytest.raises(ImageError, match=r"thick\.nii\.gz.*voxel size"):
        imaging.load_t1(path)
    image = imaging.load_t1(path, resample=True)
    out = imaging.preprocess(image, shape=(20, 24, 60))
    assert out.shape == (20, 24, 60)


def test_empty_image_and_empty_mask(tmp_path, write_nifti):
    path = write_nifti(tmp_path / "empty.nii.gz", np.zeros((10, 10, 10)))
    with pytest.raises(ImageError, match=r"empty\.nii\.gz.*empty"):
        imaging.load_t1(path)
    image = imaging.load_t1(write_nifti(tmp_path / "brain.nii.gz", _brain()))
    with pytest.raises(ImageError, match="brain mask is empty"):
        imaging.preprocess(image, mask=np.zeros((20, 24, 20)), shape=(20, 24, 20))


def test_missing_file(tmp_path, write_nifti):
    with pytest.raises(ImageError, match="nowhere.nii"):
        imaging.load_t1(tmp_path / "nowhere.nii")


def test_preprocess_real_mni152_template():
    datasets = pytest.importorskip("nilearn.datasets")
    t1 = datasets.load_mni152_template(resolution=1)
    mask = datasets.load_mni152_brain_mask(resolution=1)
    out = imaging.preprocess(t1, mask=mask)
    assert out.shape == (160, 192, 160) and out.dtype == np.float32
    reoriented_mask = imaging.crop_or_pad(np.asarray(nib.as_closest_canonical(mask).dataobj) > 0, out.shape)
    assert out[reoriented_mask].mean(dtype=np.float64) == pytest.approx(1.0, rel=1e-5)
    # without a mask the non-zero voxels are the mask
    plain = imaging.preprocess(t1)
    assert plain[plain != 0].mean(dtype=np.float64) == pytest.approx(1.0, rel=1e-5)


def test_preprocess_reorients_to_ras_and_resamples(tmp_path, write_nifti):
    data = _brain((20, 24, 20))
    data[5, 6, 7] = 500.0  # a marker
    flipped = nib.Nifti1Image(data[::-1].copy(), np.diag([-1.0, 1.0, 1.0, 1.0]))
    ras = imaging.preprocess(nib.Nifti1Image(data, np.eye(4)), shape=(20, 24, 20))
    las = imaging.preprocess(flipped, shape=(20, 24, 20))
    np.testing.assert_allclose(ras, las)
    coarse = nib.Nifti1Image(data[::2, ::2, ::2].copy(), np.diag([2.0, 2.0, 2.0, 1.0]))
    out = imaging.preprocess(coarse, shape=(20, 24, 20))
    assert out.shape == (20, 24, 20) and out[out != 0].mean() == pytest.approx(1.0, rel=1e-5)


def test_crop_or_pad_is_centred():
    data = np.arange(6 * 6 * 6, dtype=np.float32).reshape(6, 6, 6)
    assert imaging.crop_or_pad(data, (4, 8, 6)).shape == (4, 8, 6)
    np.testing.assert_array_equal(imaging.crop_or_pad(data, (4, 8, 6))[:, 1:7], data[1:5])
