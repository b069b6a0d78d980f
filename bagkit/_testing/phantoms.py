"""Age-varying synthetic brains built on the MNI152 template shipped with nilearn.

Each phantom is the skull-stripped MNI152 T1 with two age effects of the ageing
brain: the lateral ventricles widen (CSF grows outward from them) and the cortex
thins (grey matter at the brain surface turns to CSF), both growing linearly
with a "biological age" (chronological age plus individual variation). Then a
random global gain, Gaussian noise and a small random shift. Small output
shapes (e.g. 40×48×40) make learning tests fast.

nilearn is needed only here (``pip install nilearn``); it ships the templates in
its wheel, so nothing is downloaded.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from bagkit.errors import BagkitError

SMALL_SHAPE = (40, 48, 40)


def _nilearn_datasets():
    try:
        from nilearn import datasets
    except ImportError as error:
        raise BagkitError(
            "bagkit._testing.phantoms needs nilearn for the MNI152 template: `pip install nilearn` "
            "(or `pip install -e '.[test]'`)."
        ) from error
    return datasets


@dataclass(frozen=True)
class PhantomTemplate:
    """The template maps a phantom is computed from, all on the output grid."""

    t1: np.ndarray                   # skull-stripped T1, intensities 0..1
    grey_matter: np.ndarray          # GM probability
    brain: np.ndarray                # brain mask (bool)
    ventricle_distance_mm: np.ndarray  # distance to the lateral ventricles
    surface_depth_mm: np.ndarray     # distance from outside the brain
    csf_intensity: float
    affine: np.ndarray


@functools.lru_cache(maxsize=4)
def phantom_template(shape: tuple[int, int, int] | None = SMALL_SHAPE) -> PhantomTemplate:
    """Template maps at ``shape`` (``None``: the native 1 mm 197×233×189 grid)."""
    datasets = _nilearn_datasets()
    resolution = 1 if shape is None else 2
    spacing = float(resolution)
    t1 = np.asarray(datasets.load_mni152_template(resolution=resolution).get_fdata(), dtype=np.float32)
    gm = np.asarray(datasets.load_mni152_gm_template(resolution=resolution).get_fdata(), dtype=np.float32)
    wm = np.asarray(datasets.load_mni152_wm_template(resolution=resolution).get_fdata(), dtype=np.float32)
    mask_image = datasets.load_mni152_brain_mask(resolution=resolution)
    brain = np.asarray(mask_image.dataobj) > 0
    affine = mask_image.affine
    t1 = np.where(brain, t1, 0.0).astype(np.float32)

    # lateral ventricles: CSF (neither GM nor WM) near the middle of the brain
    csf = brain & (gm + wm < 0.35)
    centre = np.array(ndimage.center_of_mass(brain))
    grid = np.indices(brain.shape, dtype=np.float32)
    half_box = np.array([18.0, 30.0, 20.0]) / spacing  # mm → voxels
    central = np.ones(brain.shape, dtype=bool)
    for axis in range(3):
        central &= np.abs(grid[axis] - centre[axis]) < half_box[axis]
    ventricles = ndimage.binary_opening(csf & central)
    labels, n = ndimage.label(ventricles)
    if n > 1:  # keep the larger components (the two lateral ventricles)
        sizes = ndimage.sum(ventricles, labels, range(1, n + 1))
        keep = np.argsort(sizes)[::-1][:2] + 1
        ventricles = np.isin(labels, keep)
    ventricle_distance = ndimage.distance_transform_edt(~ventricles, sampling=spacing).astype(np.float32)
    surface_depth = ndimage.distance_transform_edt(brain, sampling=spacing).astype(np.float32)
    csf_intensity = float(np.median(t1[ventricles])) if ventricles.any() else 0.1

    if shape is not None:
        factors = [s / float(b) for s, b in zip(shape, brain.shape)]

        def to_grid(volume, order=1):
            out = ndimage.zoom(volume.astype(np.float32), factors, order=order, mode="nearest", grid_mode=True)
            return out[: shape[0], : shape[1], : shape[2]]

        t1, gm = to_grid(t1), to_grid(gm)
        brain = to_grid(brain.astype(np.float32)) > 0.5
        ventricle_distance, surface_depth = to_grid(ventricle_distance), to_grid(surface_depth)
        affine = np.eye(4)  # a small brain on a 1 mm grid (see write_phantom_cohort)
    return PhantomTemplate(
        t1=t1, grey_matter=gm, brain=brain, ventricle_distance_mm=ventricle_distance,
        surface_depth_mm=surface_depth, csf_intensity=csf_intensity, affine=affine,
    )


def _ramp(x: np.ndarray, width_mm: float) -> np.ndarray:
    """A soft step from 1 (x ≪ 0) to 0 (x ≫ 0)."""
    return 1.0 / (1.0 + np.exp(np.clip(x / width_mm, -30, 30)))


def make_phantom(
    age: float,
    rng: np.random.Generator,
    shape: tuple[int, int, int] | None = SMALL_SHAPE,
    ventricle_mm_per_decade: float = 3.0,
    cortex_mm_per_decade: float = 1.0,
    biological_sd_years: float = 2.0,
    noise: float = 0.03,
    max_shift_voxels: float = 1.0,
    template: PhantomTemplate | None = None,
) -> np.ndarray:
    """One phantom brain (float32, ``shape``) of chronological age ``age`` (years); ``template``
    (e.g. a crop of ``phantom_template(None)``) replaces the template of ``shape``."""
    if template is None:
        template = phantom_template(None if shape is None else tuple(int(s) for s in shape))
    biological_age = float(age) + rng.normal(0.0, biological_sd_years)
    decades = max(biological_age - 20.0, 0.0) / 10.0
    widening = ventricle_mm_per_decade * decades
    thinning = cortex_mm_per_decade * decades
    ventricle_csf = _ramp(template.ventricle_distance_mm - widening, 1.0) * template.brain
    # only grey matter within `thinning` mm of the surface atrophies
    cortex_csf = _ramp(template.surface_depth_mm - thinning, 0.75) * template.grey_matter * template.brain
    weight = np.maximum(ventricle_csf, np.clip(cortex_csf, 0, 1))
    volume = template.t1 * (1.0 - weight) + template.csf_intensity * weight * template.brain
    volume = volume * rng.uniform(0.9, 1.1)
    volume = volume + rng.normal(0.0, noise, size=volume.shape) * template.brain
    if max_shift_voxels > 0:
        volume = ndimage.shift(volume, rng.uniform(-max_shift_voxels, max_shift_voxels, size=3), order=1,
                               mode="constant", cval=0.0)
    return np.clip(volume, 0.0, None).astype(np.float32)


def make_phantoms(ages: Sequence[float], shape=SMALL_SHAPE, seed: int = 0, **options) -> np.ndarray:
    """A stack ``(n, *shape)`` of phantoms, one per age; reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    return np.stack([make_phantom(age, rng, shape=shape, **options) for age in ages])


def write_phantom_cohort(
    folder,
    n: int = 20,
    age_range: tuple[float, float] = (20.0, 80.0),
    shape=SMALL_SHAPE,
    seed: int = 0,
    groups: dict | None = None,
    **options,
) -> Path:
    """Write ``n`` phantoms as ``scans/sub-XXX_T1w.nii.gz`` under ``folder`` and a
    ``cohort.csv`` (subject_id, group, age, scan — paths relative to the CSV).

    Small phantoms are written on a 1 mm grid (a small brain), so they pass
    :func:`bagkit.imaging.load_t1` and preprocess unchanged with ``shape``.
    ``groups`` maps labels to extra years of brain ageing, e.g. ``{"HC": 0, "MS": 6}``
    (default: all ``HC``).
    """
    folder = Path(folder)
    (folder / "scans").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    groups = groups or {"HC": 0.0}
    labels = list(groups)
    rows = []
    for i in range(n):
        age = float(rng.uniform(*age_range))
        group = labels[i % len(labels)]
        volume = make_phantom(age + float(groups[group]), rng, shape=shape, **options)
        affine = phantom_template(None if shape is None else tuple(int(s) for s in shape)).affine
        relative = Path("scans") / f"sub-{i + 1:03d}_T1w.nii.gz"
        nib.save(nib.Nifti1Image(volume, affine), str(folder / relative))
        rows.append({"subject_id": f"sub-{i + 1:03d}", "group": group, "age": round(age, 2),
                     "scan": relative.as_posix()})
    path = folder / "cohort.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


__all__ = ["SMALL_SHAPE", "PhantomTemplate", "phantom_template", "make_phantom", "make_phantoms",
           "write_phantom_cohort"]
