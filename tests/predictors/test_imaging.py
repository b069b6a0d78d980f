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


# ---------------------------------------------------------------------------------------------
# Memory bombs: the header's claim is checked before any data is read
# ---------------------------------------------------------------------------------------------

def _header_bytes(shape, dtype=np.uint8) -> bytes:
    import io

    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    header.set_zooms((1.0,) * len(shape))
    header["vox_offset"] = 352
    buffer = io.BytesIO()
    header.write_to(buffer)
    return buffer.getvalue() + b"\0" * 4


def test_small_file_claiming_2000_cubed_voxels_is_refused_before_reading(tmp_path):
    """A few-KB .nii.gz whose header claims 2000³ voxels (30 GiB as float32): refused at once."""
    import resource

    path = tmp_path / "bomb.nii.gz"
    path.write_bytes(gzip.compress(_header_bytes((2000, 2000, 2000)) + bytes(4000)))
    assert path.stat().st_size < 4096
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ImageError) as error:
        imaging.load_t1(path)
    message = str(error.value)
    for piece in ("bomb.nii.gz", "2000 × 2000 × 2000", "29.8 GiB", "up to 512 MiB", "BAGKIT_MAX_IMAGE_MIB"):
        assert piece in message, message
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024  # < 100 MB more (KiB)


def test_complete_1mb_gzip_of_1000_cubed_voxels_is_refused_before_reading(tmp_path):
    """A valid, complete 1 MB .nii.gz holding 1000³ zero voxels (3.7 GiB as float32; reading it took
    23 s and > 2 GB before it failed): refused from the header in milliseconds. The data are 100
    gzip members of 10 MB of zeros each, which gzip readers (and nibabel) read as one stream."""
    import time

    path = tmp_path / "zeros.nii.gz"
    member = gzip.compress(bytes(10_000_000), 9)
    with open(path, "wb") as handle:
        handle.write(gzip.compress(_header_bytes((1000, 1000, 1000))))
        for _ in range(100):
            handle.write(member)
    assert path.stat().st_size < 1_100_000
    start = time.perf_counter()
    with pytest.raises(ImageError, match=r"zeros\.nii\.gz: the header claims 1000 × 1000 × 1000 voxels of uint8"):
        imaging.load_t1(path)
    assert time.perf_counter() - start < 5
    with pytest.raises(ImageError, match=r"zeros\.nii\.gz"):  # lesion filling reads through the same check
        from bagkit.imaging.lesion import fill_lesions
        fill_lesions(path, path)


def test_image_limit_is_configurable(tmp_path, write_nifti, monkeypatch):
    path = write_nifti(tmp_path / "t1.nii.gz", _brain((64, 64, 64)))  # 1 MiB as float32
    assert imaging.load_t1(path).shape == (64, 64, 64)
    monkeypatch.setenv("BAGKIT_MAX_IMAGE_MIB", "0.5")
    with pytest.raises(ImageError, match=r"t1\.nii\.gz.*up to 0.5 MiB"):
        imaging.load_t1(path)
    monkeypatch.delenv("BAGKIT_MAX_IMAGE_MIB")
    with pytest.raises(ImageError, match="up to 1 MiB"):
        imaging.load_t1(path, max_bytes=2 ** 20 - 1)
    assert imaging.max_image_bytes() == imaging.MAX_IMAGE_BYTES == 512 ** 3 * 4


def test_voxel_size_message_gives_the_command_line_way(tmp_path, write_nifti):
    path = write_nifti(tmp_path / "sub-01_T1w.nii.gz", _brain(), zooms=(2.0, 2.0, 2.0))
    with pytest.raises(ImageError) as error:
        imaging.load_t1(path)
    message = str(error.value)
    assert "nib-conform --voxel-size 1 1 1 --out-shape 256 256 256 sub-01_T1w.nii.gz sub-01_T1w_1mm.nii.gz" \
        in message
    assert "load_t1(..., resample=True)" in message
