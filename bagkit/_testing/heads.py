"""Synthetic raw T1 heads for testing the preprocessing pipeline.

The brain is nilearn's MNI152 2009a template (its wheel ships it; nothing is
downloaded), wrapped in the shells of a head, from the inside out: CSF, the
skull's inner table, diploë (bright marrow), outer table, muscle, scalp fat and
skin, with the brainstem continued as a spinal cord inside a neck below the
template's field of view. The head is then placed in a scanner frame by a known
affine (rotation, shift, per-axis scaling), sampled on an anisotropic grid stored
in a non-RAS orientation, multiplied by a smooth bias field and given noise.

:func:`make_raw_head` returns the image and the true transform, so a test can
check where the pipeline maps each template point: ``true_affine`` maps template
(MNI, RAS mm) coordinates to the scanner's world coordinates.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import nibabel as nib
import numpy as np
from scipy import ndimage

from bagkit.errors import BagkitError
from bagkit.imaging.itk import from_sitk, import_sitk, to_sitk

LPS_4 = np.diag([-1.0, -1.0, 1.0, 1.0])

#: T1 intensities of the head's shells (WM of the template ≈ 0.85), thickness in mm
SHELLS = (("csf", 3.0, 0.12), ("inner_table", 2.0, 0.04), ("diploe", 2.5, 0.55), ("outer_table", 1.5, 0.04),
          ("muscle", 2.0, 0.35), ("fat", 4.0, 0.95), ("skin", 1.0, 0.45))
PAD_MM = 20          # room for the shells around the template's grid
NECK_MM = 45         # neck below the template's field of view


@dataclass(frozen=True)
class TemplateHead:
    """The head in template (MNI) space on a padded 1 mm grid."""

    t1: np.ndarray         # float32 intensities
    affine: np.ndarray     # voxel -> MNI mm (RAS)


@dataclass(frozen=True)
class RawHead:
    image: nib.Nifti1Image   # the "scanner" image
    true_affine: np.ndarray  # MNI (RAS mm) -> scanner world (RAS mm), 4x4


def _nilearn_datasets():
    try:
        from nilearn import datasets
    except ImportError as error:
        raise BagkitError("bagkit._testing.heads needs nilearn for the MNI152 template: `pip install nilearn`.") \
            from error
    return datasets


@functools.lru_cache(maxsize=1)
def template_head() -> TemplateHead:
    """The MNI152 2009a brain inside synthetic head shells (1 mm, padded grid)."""
    datasets = _nilearn_datasets()
    template = datasets.load_mni152_template(resolution=1)
    mask_image = datasets.load_mni152_brain_mask(resolution=1)
    brain = np.asarray(mask_image.dataobj) > 0
    t1 = np.where(brain, np.asarray(template.get_fdata(), dtype=np.float32), 0.0).astype(np.float32)
    pad = ((PAD_MM, PAD_MM), (PAD_MM, PAD_MM), (PAD_MM + NECK_MM, PAD_MM))
    t1 = np.pad(t1, pad)
    brain = np.pad(brain, pad)
    # the spinal cord: the brainstem's lowest cross-section continued down through the neck
    bottom = pad[2][0]
    cord = ndimage.binary_erosion(brain[:, :, bottom], iterations=2)
    cord_value = float(np.median(t1[:, :, bottom][cord])) if cord.any() else 0.6
    for z in range(bottom):
        brain[:, :, z] = cord
        t1[:, :, z] = np.where(cord, cord_value, 0.0)
    # the inner surface of the skull: the brain, smoothed into a head-like hull
    # (at 2 mm, which is plenty for shells a few mm thick, and four times faster)
    coarse = brain[::2, ::2, ::2].astype(np.float32)
    hull_coarse = ndimage.gaussian_filter(coarse, 2.5) > 0.15
    outside_coarse = ndimage.distance_transform_edt(~hull_coarse, sampling=2.0).astype(np.float32)
    outside = ndimage.zoom(outside_coarse, np.array(brain.shape) / np.array(coarse.shape), order=1)
    outside = outside[: brain.shape[0], : brain.shape[1], : brain.shape[2]]
    outside = np.pad(outside, [(0, n - m) for n, m in zip(brain.shape, outside.shape)], mode="edge")
    hull = (outside <= 0.0) | brain
    outside = np.where(hull, 0.0, np.maximum(outside, 0.01)).astype(np.float32)
    # the neck: a wide cylinder under the brain, inside which only the cord is "brain"
    neck = np.zeros_like(brain)
    centre = np.array(ndimage.center_of_mass(brain[:, :, bottom + 10]))
    xx, yy = np.meshgrid(np.arange(brain.shape[0]), np.arange(brain.shape[1]), indexing="ij")
    section = ((xx - centre[0]) / 42.0) ** 2 + ((yy - centre[1] - 10) / 48.0) ** 2 <= 1.0
    neck[:, :, :bottom + 20] = section[:, :, None]
    head = np.zeros_like(t1)
    head[hull & ~brain] = SHELLS[0][2]
    depth = 0.0
    for _, thickness, value in SHELLS:
        layer = (outside > depth) & (outside <= depth + thickness)
        head[layer] = value
        depth += thickness
    neck_tissue = neck & (outside > 0) & (outside <= depth + 25)
    head[neck_tissue & (head == 0)] = SHELLS[4][2]
    head = np.where(brain, t1, head).astype(np.float32)
    affine = mask_image.affine.copy()
    affine[:3, 3] -= np.array([pad[0][0], pad[1][0], pad[2][0]], dtype=float)
    return TemplateHead(t1=head, affine=affine)


@functools.lru_cache(maxsize=1)
def _template_head_image():
    head = template_head()
    return to_sitk(head.t1, head.affine)


def random_affine(rng: np.random.Generator, max_rotation_deg: float = 15.0, max_shift_mm: float = 20.0,
                  max_scale: float = 0.10) -> np.ndarray:
    """A random 4x4 affine: rotations about each axis up to ``max_rotation_deg``, shifts up to
    ``max_shift_mm``, per-axis scaling within ``1 ± max_scale`` (about the template's origin)."""
    angles = np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg, size=3))
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    out = np.eye(4)
    out[:3, :3] = rz @ ry @ rx @ np.diag(rng.uniform(1 - max_scale, 1 + max_scale, size=3))
    out[:3, 3] = rng.uniform(-max_shift_mm, max_shift_mm, size=3)
    return out


def bias_field(shape, rng: np.random.Generator, strength: float = 0.25) -> np.ndarray:
    """A smooth multiplicative field, exp of a random quadratic in normalised coordinates
    (computed on a coarse grid and interpolated), from ``1/(1+strength)`` to ``1+strength``."""
    coarse = [max(2, n // 8) for n in shape]
    axes = [np.linspace(-1.0, 1.0, n, dtype=np.float32) for n in coarse]
    x, y, z = np.meshgrid(*axes, indexing="ij")
    terms = (x, y, z, x * y, y * z, x * z, x * x, y * y, z * z)
    log_field = sum(float(rng.normal(0.0, 1.0)) * t for t in terms)
    log_field = log_field / max(float(np.abs(log_field).max()), 1e-6) * np.log1p(strength)
    log_field = ndimage.zoom(log_field, [n / c for n, c in zip(shape, coarse)], order=1, grid_mode=False)
    return np.exp(log_field[: shape[0], : shape[1], : shape[2]]).astype(np.float32)


def make_raw_head(
    rng: np.random.Generator,
    voxel_mm=(1.1, 1.0, 1.4),
    true_affine: np.ndarray | None = None,
    bias_strength: float = 0.25,
    noise: float = 0.02,
    scale: float = 1000.0,
) -> RawHead:
    """A raw T1 "scan" of the synthetic head, moved by ``true_affine`` (random when ``None``).

    The scanner grid has voxels of ``voxel_mm`` and is stored left-to-right flipped
    (LAS), so the pipeline has to reorient. Intensities are scaled by ``scale`` and
    stored as int16, as a scanner would.
    """
    head = template_head()
    true_affine = random_affine(rng) if true_affine is None else np.asarray(true_affine, dtype=float)
    # the corners of the head's bounding box in the scanner's world, to size the field of view
    inside = np.argwhere(head.t1 > 0)
    first, last = inside.min(axis=0), inside.max(axis=0)
    corners = np.array([[i, j, k, 1.0] for i in (first[0], last[0]) for j in (first[1], last[1])
                        for k in (first[2], last[2])])
    world = (true_affine @ head.affine @ corners.T).T[:, :3]
    low, high = world.min(axis=0) - 2.0, world.max(axis=0) + 2.0
    voxel = np.asarray(voxel_mm, dtype=float)
    native_shape = np.ceil((high - low) / voxel).astype(int)
    native_affine = np.diag([-voxel[0], voxel[1], voxel[2], 1.0])  # LAS storage
    native_affine[:3, 3] = [high[0], low[1], low[2]]
    # each scanner voxel sampled from the template head through the inverse of true_affine
    # (SimpleITK: several times faster than scipy's map_coordinates)
    sitk = import_sitk()
    inverse = LPS_4 @ np.linalg.inv(true_affine) @ LPS_4
    transform = sitk.AffineTransform(3)
    transform.SetMatrix([float(v) for v in inverse[:3, :3].ravel()])
    transform.SetTranslation([float(v) for v in inverse[:3, 3]])
    reference = to_sitk(np.zeros(tuple(native_shape), dtype=np.uint8), native_affine)
    moved = sitk.Resample(_template_head_image(), reference, transform, sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    data = from_sitk(moved)[0] * bias_field(tuple(native_shape), rng, bias_strength)
    data = np.abs(data + rng.normal(0.0, noise, size=data.shape).astype(np.float32))  # Rician-like magnitude
    image = nib.Nifti1Image(np.round(data * scale).astype(np.int16), native_affine)
    image.header.set_xyzt_units("mm")
    return RawHead(image=image, true_affine=true_affine)


__all__ = ["TemplateHead", "RawHead", "template_head", "random_affine", "bias_field", "make_raw_head", "SHELLS"]
