"""T1 input for the predictors: plain functions over nibabel images.

The input contract (as in the paper): a 3-D T1 NIfTI, affinely registered to MNI
space and skull-stripped, at (near) 1 mm. :func:`load_t1` checks it;
:func:`preprocess` makes the network input: reorient to RAS, resample to 1 mm
(linear), crop/pad centred to ``shape``, divide by the mean intensity inside the
brain mask.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import nibabel as nib
import numpy as np
from scipy import ndimage

from bagkit.errors import ImageError

DEFAULT_SHAPE = (160, 192, 160)
#: how far a voxel size may be from 1 mm before :func:`load_t1` refuses the scan
VOXEL_TOLERANCE_MM = 0.2
#: The most memory one scan's data may take once read (bytes): 512³ voxels of float32, 512 MiB.
#: A 1 mm T1 is about 256³ (64 MiB as float32); a header claiming much more is refused before any
#: data is read (a small .nii.gz can claim gigabytes). Raise it with the environment variable
#: ``BAGKIT_MAX_IMAGE_MIB`` (MiB) or ``load_t1(..., max_bytes=)``.
MAX_IMAGE_BYTES = 512 ** 3 * 4


def max_image_bytes() -> int:
    """:data:`MAX_IMAGE_BYTES`, or ``BAGKIT_MAX_IMAGE_MIB`` MiB when that environment variable is set."""
    value = os.environ.get("BAGKIT_MAX_IMAGE_MIB")
    if not value:
        return MAX_IMAGE_BYTES
    try:
        mib = float(value)
    except ValueError:
        raise ImageError(f"BAGKIT_MAX_IMAGE_MIB={value!r} is not a number of MiB") from None
    if not mib > 0:
        raise ImageError(f"BAGKIT_MAX_IMAGE_MIB={value!r} must be a positive number of MiB")
    return int(mib * 2 ** 20)


def check_image_size(image, path, max_bytes: int | None = None) -> None:
    """Refuse an image whose header claims more data than ``max_bytes`` (default :func:`max_image_bytes`)
    before its data is read: dimensions × the larger of float32 and the stored data type."""
    limit = max_image_bytes() if max_bytes is None else int(max_bytes)
    shape = tuple(int(n) for n in image.shape)
    stored = np.dtype(image.get_data_dtype()).itemsize
    needed = int(np.prod(shape, dtype=np.float64)) * max(4, stored)
    if needed > limit:
        raise ImageError(
            f"{path}: the header claims {' × '.join(map(str, shape))} voxels of "
            f"{np.dtype(image.get_data_dtype()).name}, {needed / 2 ** 30:.1f} GiB once read; bagkit reads "
            f"scans up to {limit / 2 ** 20:.4g} MiB (a 1 mm T1 is about 256³ voxels, 64 MiB). Check that this "
            f"is a single T1 scan; to read larger images set BAGKIT_MAX_IMAGE_MIB (MiB)."
        )


def single_volume(data: np.ndarray) -> np.ndarray:
    """A 4-D array that holds one volume as that 3-D volume (the one 4-D squeeze of bagkit);
    any other array unchanged."""
    return data[..., 0] if data.ndim == 4 and data.shape[3] == 1 else data


def load_t1(path, resample: bool = False, voxel_tolerance: float = VOXEL_TOLERANCE_MM,
            max_bytes: int | None = None) -> nib.Nifti1Image:
    """Read a T1 NIfTI and check it against the input contract.

    Raises :class:`~bagkit.errors.ImageError` naming the file when it is missing,
    unreadable (corrupt or truncated), not 3-D (a 4-D image with one volume is
    accepted), has voxels further than ``voxel_tolerance`` mm from 1 mm (unless
    ``resample=True``: :func:`preprocess` then resamples it), or holds no brain
    (all zero / not finite), or when its header claims more than ``max_bytes`` of data
    (:func:`max_image_bytes`, 512 MiB: 512³ float32), checked before any data is read.
    Returns an in-memory image with float32 data.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: scan file not found.")
    try:
        image = nib.load(str(path))
    except Exception as error:  # nibabel raises several kinds
        raise ImageError(
            f"{path}: not a readable NIfTI image ({type(error).__name__}: {error}); "
            f"expected a .nii or .nii.gz T1 scan."
        ) from error
    check_image_size(image, path, max_bytes)
    try:
        data = np.asarray(image.dataobj, dtype=np.float32)
    except Exception as error:
        raise ImageError(
            f"{path}: the image data cannot be read — the file looks corrupt or truncated "
            f"({type(error).__name__}: {error})."
        ) from error
    data = single_volume(data)
    if data.ndim != 3:
        raise ImageError(
            f"{path}: a {data.ndim}-D image of shape {data.shape}; expected one 3-D T1 volume "
            f"(split a 4-D series and pass one volume)."
        )
    zooms = np.asarray(image.header.get_zooms()[:3], dtype=float)
    if not resample and np.any(np.abs(zooms - 1.0) > voxel_tolerance):
        raise ImageError(
            f"{path}: voxel size {tuple(round(float(z), 3) for z in zooms)} mm is not 1 mm "
            f"(tolerance ±{voxel_tolerance} mm). Resample it to 1 mm first; from the command line, with "
            f"nibabel's tool (installed with bagkit): nib-conform --voxel-size 1 1 1 --out-shape 256 256 256 "
            f"{path.name} {_conformed_name(path)} (FreeSurfer: mri_convert -vs 1 1 1; FSL: flirt -applyisoxfm 1), "
            f"then give the resampled file in the scan column; from Python: load_t1(..., resample=True)."
        )
    finite = np.isfinite(data)
    if not finite.all():
        data = np.where(finite, data, 0.0).astype(np.float32)
    if not np.any(data != 0):
        raise ImageError(f"{path}: the image is empty (no non-zero voxel): no brain to predict from.")
    header = image.header.copy()
    header.set_data_dtype(np.float32)
    loaded = nib.Nifti1Image(data, image.affine, header)
    loaded.set_filename(str(path))
    return loaded


def _conformed_name(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            return name[: -len(suffix)] + "_1mm" + suffix
    return name + "_1mm.nii.gz"


def _as_image(img) -> nib.spatialimages.SpatialImage:
    if isinstance(img, (str, os.PathLike)):
        return load_t1(img, resample=True)
    if not hasattr(img, "affine") or not hasattr(img, "dataobj"):
        raise ImageError(f"expected a nibabel image or a NIfTI path, got {type(img).__name__}.")
    return img


def resample_to_1mm(data: np.ndarray, zooms: Sequence[float], order: int = 1) -> np.ndarray:
    """Resample a RAS volume with voxel sizes ``zooms`` (mm) to 1 mm (scipy, linear by default)."""
    zooms = np.asarray(zooms, dtype=float)
    if np.allclose(zooms, 1.0, atol=1e-3):
        return data
    return ndimage.zoom(data, zooms, order=order, mode="nearest", grid_mode=False)


def crop_or_pad(data: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Crop or zero-pad ``data`` centred to ``shape``."""
    out = np.zeros(tuple(int(s) for s in shape), dtype=data.dtype)
    src, dst = [], []
    for have, want in zip(data.shape, out.shape):
        if have >= want:
            start = (have - want) // 2
            src.append(slice(start, start + want))
            dst.append(slice(0, want))
        else:
            start = (want - have) // 2
            src.append(slice(0, have))
            dst.append(slice(start, start + have))
    out[tuple(dst)] = data[tuple(src)]
    return out


def preprocess(img, mask=None, shape: Sequence[int] = DEFAULT_SHAPE) -> np.ndarray:
    """The network input from a T1 image: a float32 array of ``shape``.

    Reorients to RAS (``nibabel.as_closest_canonical``), resamples to 1 mm (linear
    interpolation, scipy.ndimage), crops/pads centred to ``shape`` and divides by the
    mean intensity inside the brain mask (``mask``, an image or array of the input's
    shape; the non-zero voxels when not given), so the mean inside the mask is 1.
    """
    image = _as_image(img)
    name = image.get_filename() or "the image"
    if len(image.shape) == 4 and image.shape[3] == 1:
        image = image.slicer[..., 0]
    if len(image.shape) != 3:
        raise ImageError(f"{name}: a {len(image.shape)}-D image; expected one 3-D T1 volume.")
    canonical = nib.as_closest_canonical(image)
    data = np.asarray(canonical.dataobj, dtype=np.float32)
    data = np.where(np.isfinite(data), data, 0.0).astype(np.float32)
    zooms = canonical.header.get_zooms()[:3]

    if mask is not None:
        if hasattr(mask, "dataobj"):
            if mask.shape[:3] != image.shape[:3]:
                raise ImageError(
                    f"the brain mask has shape {mask.shape[:3]}, the scan {name} has {image.shape[:3]}; "
                    f"they must be on the same grid."
                )
            mask_data = np.asarray(nib.as_closest_canonical(
                nib.Nifti1Image(np.asarray(mask.dataobj), image.affine)).dataobj) > 0
        else:
            mask_array = np.asarray(mask)
            if mask_array.shape != image.shape[:3]:
                raise ImageError(
                    f"the brain mask has shape {mask_array.shape}, the scan {name} has {image.shape[:3]}."
                )
            mask_data = np.asarray(nib.as_closest_canonical(
                nib.Nifti1Image(mask_array.astype(np.uint8), image.affine)).dataobj) > 0
    else:
        mask_data = None

    data = resample_to_1mm(data, zooms, order=1)
    data = crop_or_pad(data, shape)
    if mask_data is not None:
        mask_data = resample_to_1mm(mask_data.astype(np.float32), zooms, order=0) > 0.5
        mask_data = crop_or_pad(mask_data, shape)
    else:
        mask_data = data != 0
    if not mask_data.any():
        raise ImageError(f"{name}: the brain mask is empty inside the {tuple(shape)} field of view.")
    mean = float(data[mask_data].mean(dtype=np.float64))
    if not np.isfinite(mean) or mean <= 0:
        raise ImageError(
            f"{name}: the mean intensity inside the brain mask is {mean:g}; expected a positive T1 "
            f"intensity (is the scan skull-stripped and non-negative?)."
        )
    data /= np.float32(mean)
    return np.ascontiguousarray(data, dtype=np.float32)


def load_and_preprocess(path, shape: Sequence[int] = DEFAULT_SHAPE, resample: bool = False) -> np.ndarray:
    """:func:`load_t1` then :func:`preprocess`."""
    return preprocess(load_t1(path, resample=resample), shape=shape)


__all__ = [
    "DEFAULT_SHAPE", "VOXEL_TOLERANCE_MM", "MAX_IMAGE_BYTES", "max_image_bytes", "check_image_size", "single_volume", "load_t1",
    "preprocess", "resample_to_1mm", "crop_or_pad", "load_and_preprocess",
]
