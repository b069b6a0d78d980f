"""Quality control of a preprocessed scan: numbers against the template, flags, a picture.

Metrics (columns of ``qc.csv``), computed on the template's 1 mm grid:

| metric | what | flag when |
|---|---|---|
| ``template_correlation`` | Pearson r of the registered brain and the template brain inside the template's brain mask | < ``MIN_TEMPLATE_CORRELATION`` → ``registration_failed`` |
| ``template_dice`` | Dice of the registered brain mask and the template's brain mask | < ``MIN_TEMPLATE_DICE`` → ``registration_failed`` |
| ``mask_volume_ml`` | brain-mask volume in the scan's own space (ml) | outside ``MASK_VOLUME_RANGE_ML`` → ``mask_implausible`` |
| ``brain_volume_ml`` | tissue (GM + WM) inside the mask: its voxels above the lower of two 3-class Otsu thresholds | — |
| ``outside_fov_fraction`` | part of the template's brain that falls outside the scan's field of view | > ``MAX_OUTSIDE_FOV_FRACTION`` → ``fov_cut`` |
| ``registration_metric`` | the final Mattes mutual information (negative; lower is better) | the optimiser stopped at its iteration cap → ``registration_not_converged`` (set by the pipeline) |

The thresholds were set on the synthetic heads of the tests (a correct registration:
r = 0.976–0.983, Dice = 0.974–0.978; the same result turned 10° and moved 10 mm: r = 0.33,
Dice = 0.84; a failed whole-head registration: r = 0.19, Dice = 0.65) and leave room for real
anatomy, which matches the template less well than a phantom does.
The QC picture (:func:`write_qc_png`) needs Pillow only.
"""
from __future__ import annotations

import numpy as np
import scipy  # scipy.ndimage loads on first use: the report reads only the thresholds

MIN_TEMPLATE_CORRELATION = 0.75
MIN_TEMPLATE_DICE = 0.88
#: adult intracranial volumes lie within about 1000–2000 ml; the MNI template's own mask is 1883 ml
MASK_VOLUME_RANGE_ML = (700.0, 2600.0)
MAX_OUTSIDE_FOV_FRACTION = 0.02
#: a brain mask covering more of the scan's field of view than this is an error, not a flag
MAX_MASK_FOV_FRACTION = 0.7

METRICS = ("template_correlation", "template_dice", "mask_volume_ml", "brain_volume_ml", "outside_fov_fraction",
           "registration_metric")
FLAGS = ("registration_failed", "registration_not_converged", "mask_implausible", "fov_cut")


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap of two boolean masks."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    total = int(a.sum()) + int(b.sum())
    return 2.0 * float(np.logical_and(a, b).sum()) / total if total else float("nan")


def assess(t1: np.ndarray, mask: np.ndarray, outside_fov_fraction: float, mask_volume_ml: float, template) -> dict:
    """QC metrics and flags (``flags``: ``;``-joined names, empty when none) of a registered
    scan ``t1`` with its ``mask`` on the template grid; ``outside_fov_fraction`` is the part of
    the template's brain that maps outside the scan's field of view."""
    inside = template.mask
    a = np.asarray(t1, dtype=np.float64)[inside]
    b = np.asarray(template.t1, dtype=np.float64)[inside]
    correlation = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else 0.0
    overlap = dice(mask, inside)
    outside = float(outside_fov_fraction)
    metrics = {"template_correlation": correlation, "template_dice": overlap,
               "mask_volume_ml": float(mask_volume_ml), "outside_fov_fraction": outside}
    metrics["flags"] = ";".join(flags(metrics))
    return metrics


def flags(metrics: dict) -> list[str]:
    """The QC flags the metrics raise (see the module's table)."""
    raised = []
    if metrics["template_correlation"] < MIN_TEMPLATE_CORRELATION or metrics["template_dice"] < MIN_TEMPLATE_DICE:
        raised.append("registration_failed")
    low, high = MASK_VOLUME_RANGE_ML
    if not low <= metrics["mask_volume_ml"] <= high:
        raised.append("mask_implausible")
    if metrics["outside_fov_fraction"] > MAX_OUTSIDE_FOV_FRACTION:
        raised.append("fov_cut")
    return raised


def _outline(mask: np.ndarray) -> np.ndarray:
    return mask & ~scipy.ndimage.binary_erosion(mask)


def qc_picture(t1: np.ndarray, mask: np.ndarray, template) -> np.ndarray:
    """An RGB uint8 picture: sagittal, coronal and axial planes through the brain's centre, the
    registered T1 in grey, the brain mask's outline in red, the template brain's outline in cyan."""
    t1 = np.asarray(t1, dtype=np.float32)
    mask = np.asarray(mask, dtype=bool)
    centre = [int(round(c)) for c in scipy.ndimage.center_of_mass(template.mask)]
    top = float(np.percentile(t1[mask], 99)) if mask.any() else float(t1.max() or 1.0)
    panels = []
    for axis in range(3):
        take = [slice(None)] * 3
        take[axis] = centre[axis]
        grey = np.clip(t1[tuple(take)] / max(top, 1e-6), 0, 1)
        rgb = np.repeat((grey * 255).astype(np.uint8)[..., None], 3, axis=2)
        rgb[_outline(template.mask[tuple(take)])] = (0, 220, 220)
        rgb[_outline(mask[tuple(take)])] = (255, 40, 40)
        panels.append(np.flip(np.transpose(rgb, (1, 0, 2)), axis=0))  # superior / anterior up
    height = max(p.shape[0] for p in panels)
    padded = [np.pad(p, ((height - p.shape[0], 0), (0, 4), (0, 0))) for p in panels]
    return np.concatenate(padded, axis=1)


def write_qc_png(path, t1: np.ndarray, mask: np.ndarray, template, title: str = "") -> None:
    """:func:`qc_picture` as a PNG (twice the size, with ``title`` above)."""
    from PIL import Image, ImageDraw

    picture = qc_picture(t1, mask, template)
    picture = np.repeat(np.repeat(picture, 2, axis=0), 2, axis=1)
    canvas = np.zeros((picture.shape[0] + 24, picture.shape[1], 3), dtype=np.uint8)
    canvas[24:] = picture
    image = Image.fromarray(canvas)
    if title:
        ImageDraw.Draw(image).text((6, 5), title[:160], fill=(255, 255, 255))
    image.save(str(path), format="PNG")


__all__ = ["METRICS", "FLAGS", "MIN_TEMPLATE_CORRELATION", "MIN_TEMPLATE_DICE", "MASK_VOLUME_RANGE_ML",
           "MAX_OUTSIDE_FOV_FRACTION", "MAX_MASK_FOV_FRACTION", "dice", "assess", "flags", "qc_picture",
           "write_qc_png"]
