"""Lesion filling: replace lesion voxels with normal-appearing white-matter intensities.

As FSL's ``lesion_filling`` (and LST's filling, used in the paper) does: each
connected lesion component is filled with intensities drawn at random from the
normal-appearing white matter (NAWM) in a shell around it (the component dilated
step by step until the shell holds enough WM voxels), so the filled scan keeps the
local WM intensity and texture. Without a WM mask the NAWM is estimated as the
brain voxels at least as bright as the brain's median intensity (T1: WM is the
brightest tissue). The input is never modified: a new image is returned.
"""
from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from bagkit.errors import ImageError
from bagkit.imaging.images import check_image_size, single_volume
from bagkit.io.outputs import atomic_output, checked_output

MIN_SHELL_VOXELS = 20
MAX_DILATION = 12


def _image(img, what: str):
    if isinstance(img, (str, os.PathLike)):
        path = Path(img)
        if not path.is_file():
            raise ImageError(f"{path}: {what} file not found.")
        try:
            loaded = nib.load(str(path))
        except Exception as error:
            raise ImageError(f"{path}: the {what} is not a readable NIfTI image ({error}).") from error
        check_image_size(loaded, path)
        try:
            np.asarray(loaded.dataobj)
        except Exception as error:
            raise ImageError(f"{path}: the {what} is not a readable NIfTI image ({error}).") from error
        return loaded
    if not hasattr(img, "dataobj"):
        raise ImageError(f"the {what} must be a nibabel image or a NIfTI path, not {type(img).__name__}.")
    return img


def _name(img, what: str) -> str:
    return img.get_filename() or what


def fill_lesions(t1_img, lesion_mask_img, wm_mask_img=None, seed: int = 0):
    """A new T1 image with every lesion voxel filled from the surrounding NAWM.

    ``t1_img``, ``lesion_mask_img`` and ``wm_mask_img`` are nibabel images or NIfTI
    paths on the same grid. Raises :class:`~bagkit.errors.ImageError` for a shape or
    grid mismatch, an empty lesion mask, or no white matter to sample from.
    """
    t1 = _image(t1_img, "T1")
    lesion_image = _image(lesion_mask_img, "lesion mask")
    data = np.asarray(t1.dataobj, dtype=np.float32)
    data = single_volume(data)
    lesions = single_volume(np.asarray(lesion_image.dataobj))
    if lesions.shape != data.shape:
        raise ImageError(
            f"the lesion mask {_name(lesion_image, 'lesion mask')} has shape {lesions.shape}, the T1 "
            f"{_name(t1, 'T1')} has {data.shape}; they must be on the same grid."
        )
    if not np.allclose(lesion_image.affine, t1.affine, atol=1e-3):
        raise ImageError(
            f"the lesion mask {_name(lesion_image, 'lesion mask')} and the T1 {_name(t1, 'T1')} have different "
            f"affines (voxel-to-world transforms); resample the mask onto the T1 grid first."
        )
    lesions = lesions > 0.5
    if not lesions.any():
        raise ImageError(f"the lesion mask {_name(lesion_image, 'lesion mask')} is empty: nothing to fill.")
    brain = (data != 0) & ~lesions
    if wm_mask_img is not None:
        wm_image = _image(wm_mask_img, "white-matter mask")
        wm = single_volume(np.asarray(wm_image.dataobj))
        if wm.shape != data.shape:
            raise ImageError(
                f"the white-matter mask {_name(wm_image, 'white-matter mask')} has shape {wm.shape}, the T1 "
                f"{_name(t1, 'T1')} has {data.shape}."
            )
        nawm = (wm > 0.5) & ~lesions
    else:
        if not brain.any():
            raise ImageError(f"the T1 {_name(t1, 'T1')} has no brain voxels outside the lesions.")
        nawm = brain & (data >= np.median(data[brain]))
    if not nawm.any():
        raise ImageError(f"no normal-appearing white matter found in {_name(t1, 'T1')} to fill the lesions from.")

    rng = np.random.default_rng(seed)
    filled = data.copy()
    labels, n_components = ndimage.label(lesions, structure=np.ones((3, 3, 3)))
    boxes = ndimage.find_objects(labels)
    structure = ndimage.generate_binary_structure(3, 1)
    for component, box in enumerate(boxes, start=1):
        pad = MAX_DILATION + 1
        window = tuple(slice(max(s.start - pad, 0), min(s.stop + pad, dim)) for s, dim in zip(box, data.shape))
        here = labels[window] == component
        grown = here
        samples = np.empty(0, dtype=np.float32)
        for _ in range(MAX_DILATION):
            grown = ndimage.binary_dilation(grown, structure)
            shell = grown & ~here & nawm[window]
            samples = data[window][shell]
            if samples.size >= MIN_SHELL_VOXELS:
                break
        if samples.size == 0:
            samples = data[nawm]  # no WM near this lesion: the whole NAWM
        filled_window = filled[window]
        filled_window[here] = rng.choice(samples, size=int(here.sum()), replace=True)
        filled[window] = filled_window
    header = t1.header.copy()
    header.set_data_dtype(np.float32)
    return nib.Nifti1Image(filled, t1.affine, header)


def fill_lesions_file(t1_path, lesion_mask_path, out_path, wm_mask_path=None, seed: int = 0,
                      force: bool = False) -> Path:
    """:func:`fill_lesions` from files to a new file, written atomically.

    Refuses to overwrite an input, and an existing file unless ``force``."""
    inputs = [p for p in (t1_path, lesion_mask_path, wm_mask_path) if p is not None]
    out = checked_output(out_path, inputs=inputs, force=force, what="filled T1")
    image = fill_lesions(t1_path, lesion_mask_path, wm_mask_path, seed=seed)
    with atomic_output(out) as tmp:
        nib.save(image, str(tmp))
    return out


__all__ = ["fill_lesions", "fill_lesions_file"]
