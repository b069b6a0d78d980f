"""nibabel ↔ SimpleITK, and the MNI152 template the pipeline registers to.

nibabel speaks RAS world coordinates and (i, j, k) arrays; ITK speaks LPS and
stores arrays as (k, j, i). Both conversions go through here. SimpleITK and
nilearn are imported inside the functions (the ``preprocess`` extra).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from bagkit.errors import BagkitError

#: RAS <-> LPS: flip the first two world axes
LPS = np.diag([-1.0, -1.0, 1.0])
#: the template's BIDS identifier: nilearn ships the ICBM 152 2009a nonlinear symmetric T1 (1 mm, brain only)
TEMPLATE_SPACE = "MNI152NLin2009aSym"


def import_sitk():
    try:
        import SimpleITK
    except ImportError as error:
        raise BagkitError(
            "preprocessing raw T1 scans needs SimpleITK and deepbet: pip install 'bagkit[preprocess]' "
            "(or pip install SimpleITK deepbet)."
        ) from error
    return SimpleITK


def to_sitk(data: np.ndarray, affine: np.ndarray):
    """A SimpleITK image of ``data`` (i, j, k) with the nibabel (RAS) ``affine``."""
    sitk = import_sitk()
    affine = np.asarray(affine, dtype=float)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    direction = LPS @ (affine[:3, :3] / spacing)
    image = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(data, (2, 1, 0))))
    image.SetSpacing([float(s) for s in spacing])
    image.SetDirection([float(v) for v in direction.ravel()])
    image.SetOrigin([float(v) for v in LPS @ affine[:3, 3]])
    return image


def from_sitk(image) -> tuple[np.ndarray, np.ndarray]:
    """``(data, affine)`` of a SimpleITK image: the array in (i, j, k) order, a nibabel (RAS) affine."""
    sitk = import_sitk()
    data = np.transpose(sitk.GetArrayFromImage(image), (2, 1, 0))
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = LPS @ direction @ np.diag(image.GetSpacing())
    affine[:3, 3] = LPS @ np.asarray(image.GetOrigin(), dtype=float)
    return data, affine


def transform_points(transform, points_ras: np.ndarray) -> np.ndarray:
    """Map RAS points (n, 3) through an ITK transform (which works in LPS)."""
    points = np.asarray(points_ras, dtype=float) @ LPS
    mapped = np.array([transform.TransformPoint([float(v) for v in p]) for p in points])
    return mapped @ LPS


def affine_matrix(transform) -> np.ndarray:
    """The 4x4 RAS→RAS matrix of an ITK affine-like transform (template point → scan point)."""
    sitk = import_sitk()
    affine = sitk.AffineTransform(3)
    affine.SetMatrix(transform.GetMatrix())
    affine.SetCenter(transform.GetCenter())
    affine.SetTranslation(transform.GetTranslation())
    matrix = np.asarray(affine.GetMatrix(), dtype=float).reshape(3, 3)
    offset = np.asarray(affine.GetCenter()) + np.asarray(affine.GetTranslation()) - matrix @ np.asarray(
        affine.GetCenter())
    out = np.eye(4)
    out[:3, :3] = LPS @ matrix @ LPS
    out[:3, 3] = LPS @ offset
    return out


@dataclass(frozen=True)
class Template:
    """nilearn's MNI152 2009a template at 1 mm: the brain T1 (0..1), its brain mask, the grid."""

    t1: np.ndarray
    mask: np.ndarray
    affine: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.t1.shape)


@functools.lru_cache(maxsize=1)
def mni_template() -> Template:
    """The registration target, from nilearn's wheel (never downloaded)."""
    try:
        from nilearn import datasets
    except ImportError as error:
        raise BagkitError("preprocessing needs nilearn for the MNI152 template: pip install 'bagkit[preprocess]'.") \
            from error
    mask_image = datasets.load_mni152_brain_mask(resolution=1)
    mask = np.asarray(mask_image.dataobj) > 0
    t1 = np.asarray(datasets.load_mni152_template(resolution=1).get_fdata(), dtype=np.float32)
    return Template(t1=np.where(mask, t1, 0.0).astype(np.float32), mask=mask, affine=mask_image.affine.copy())


__all__ = ["TEMPLATE_SPACE", "to_sitk", "from_sitk", "transform_points", "affine_matrix", "mni_template",
           "Template", "import_sitk"]
