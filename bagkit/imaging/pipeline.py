"""Raw T1 → the predictors' input: the paper's preprocessing, inside bagkit.

Per scan (:func:`preprocess_scan`; a batch: :func:`preprocess_scans`):

1. **check and reorient** — a 3-D T1-like volume with a sane affine
   (:func:`check_raw_t1`), reoriented to RAS;
2. **N4 bias-field correction** (SimpleITK's N4, on a 4× shrunk copy, the field
   applied at full resolution);
3. **skull stripping** with deepbet (its wheel ships the weights) on the native
   scan;
4. **affine registration** of the stripped brain to nilearn's MNI152 2009a brain
   template: 12 parameters, Mattes mutual information, two resolutions (4 and 2 mm),
   initialised by the image moments after a rigid stage;
5. **resampling** of the bias-corrected scan and the mask to the template's 1 mm grid
   (197×233×189, linear; the mask at 0.5), the brain kept and divided by its mean;
6. **QC** (:mod:`bagkit.imaging.qc`): correlation and mask Dice against the template,
   brain volume, field-of-view coverage, flags.

``order="register-first"`` runs the paper's order instead (register the whole
head, then strip the registered scan); see ``docs/preprocessing.md`` for the
measurements behind the default.

Outputs in BIDS-derivatives names keep the input's entities (``sub-01_ses-1_T1w.nii.gz`` →
``sub-01_ses-1_space-MNI152NLin2009aSym_desc-preproc_T1w.nii.gz``, ``..._desc-brain_mask.nii.gz``,
``sub-01_ses-1_from-T1w_to-MNI152NLin2009aSym_mode-image_xfm.txt`` (ITK text: template
points to scan points, as ``antsApplyTransforms`` takes it), ``..._desc-qc.png``, and a JSON
sidecar that records the input's SHA-256 and the pipeline version: a rerun on the same input
does nothing. Heavy imports (SimpleITK, deepbet, torch) happen inside the functions.
"""
from __future__ import annotations

import functools
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import nibabel as nib
import numpy as np
import pandas as pd

from bagkit.errors import BagkitError, ImageError, OutputExistsError
from bagkit.imaging import qc as qc_module
from bagkit.imaging.images import check_image_size, single_volume
from bagkit.imaging.itk import TEMPLATE_SPACE, from_sitk, import_sitk, mni_template, to_sitk
from bagkit.io.hashing import file_hash
from bagkit.io.outputs import atomic_output

#: bump when a change alters any output; part of every cache key
PIPELINE_VERSION = "1.0"
STRIP_FIRST, REGISTER_FIRST = "strip-first", "register-first"
#: a head needs at least this field of view (mm) along each axis
MIN_EXTENT_MM = 100.0
#: voxel sizes outside this range (mm) mean a broken header
VOXEL_RANGE_MM = (0.2, 8.0)
#: at most this cosine between two voxel axes (a sheared affine is refused, not guessed at)
MAX_AXIS_COSINE = 0.02


@dataclass(frozen=True)
class PreprocessOptions:
    """What the pipeline does; every field is part of the cache key."""

    order: str = STRIP_FIRST
    n4: bool = True
    #: registration levels (mm): the template is smoothed and shrunk to each in turn
    registration_levels_mm: tuple[float, ...] = (4.0, 2.0)
    registration_iterations: int = 200
    #: deepbet's threshold on its brain probability
    mask_threshold: float = 0.5
    #: deepbet's working grid: the brain's bounding box (+10 %) resampled to this many voxels a side
    #: (deepbet's own default is 256, about 0.75 mm for an adult head; 192 is about 1 mm, the scans'
    #: own resolution, and twice as fast: see docs/preprocessing.md)
    strip_grid: int = 192

    def __post_init__(self):
        if self.order not in (STRIP_FIRST, REGISTER_FIRST):
            raise BagkitError(f"preprocessing order {self.order!r}: expected {STRIP_FIRST!r} or {REGISTER_FIRST!r}.")

    def key(self) -> str:
        fields = {"version": PIPELINE_VERSION, "order": self.order, "n4": self.n4,
                  "levels": list(self.registration_levels_mm), "iterations": self.registration_iterations,
                  "mask_threshold": self.mask_threshold, "strip_grid": self.strip_grid}
        return json.dumps(fields, sort_keys=True)


@dataclass(frozen=True)
class PipelineResult:
    """What :func:`run_pipeline` computes for one scan (in memory)."""

    t1: nib.Nifti1Image          # on the template grid, brain only, mean 1 inside the mask
    mask: nib.Nifti1Image        # on the template grid, uint8
    transform: object            # SimpleITK AffineTransform: template point -> scan point (LPS)
    native_mask_ml: float        # brain-mask volume in the scan's own space
    qc: dict                     # metrics and flags (bagkit.imaging.qc.assess)
    seconds: dict                # per step


@dataclass(frozen=True)
class PreprocessedScan:
    """One scan's outputs on disk (or its failure)."""

    source: Path
    name: str
    files: dict = field(default_factory=dict)   # role -> Path
    qc: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    input_sha256: str = ""
    cached: bool = False
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def flags(self) -> tuple[str, ...]:
        return tuple(f for f in str(self.qc.get("flags", "")).split(";") if f)

    @property
    def t1(self) -> Path | None:
        return self.files.get("t1")

    @property
    def mask(self) -> Path | None:
        return self.files.get("mask")

    def row(self) -> dict:
        """The scan's row of ``qc.csv``."""
        status = "error" if self.error else ("flagged" if self.flags else "ok")
        row = {"name": self.name, "source": str(self.source), "status": status, "flags": ";".join(self.flags)}
        for column in qc_module.METRICS:
            row[column] = self.qc.get(column, np.nan)
        for step in STEPS:
            row[f"seconds_{step}"] = self.seconds.get(step, np.nan)
        row.update({"input_sha256": self.input_sha256, "pipeline_version": PIPELINE_VERSION,
                    "preproc_t1": str(self.t1 or ""), "error": self.error})
        return row


STEPS = ("load", "n4", "strip", "register", "resample", "qc", "total")
QC_COLUMNS = ("name", "source", "status", "flags", *qc_module.METRICS, *(f"seconds_{s}" for s in STEPS),
              "input_sha256", "pipeline_version", "preproc_t1", "error")


# ---------------------------------------------------------------------------------------- input

def check_raw_t1(path) -> nib.Nifti1Image:
    """Read a raw T1 and refuse what is not one: 2-D or 4-D data, a tiny field of view, a
    constant image, a broken or sheared affine. Returns the scan reoriented to RAS, float32.
    Every :class:`~bagkit.errors.ImageError` names the file."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: scan file not found.")
    try:
        image = nib.load(str(path))
    except Exception as error:  # nibabel raises several kinds
        raise ImageError(f"{path}: not a readable NIfTI image ({type(error).__name__}: {error}).") from error
    check_image_size(image, path)  # before any data is read: a header may claim gigabytes
    try:
        data = single_volume(np.asarray(image.dataobj, dtype=np.float32))
    except Exception as error:  # nibabel raises several kinds
        raise ImageError(f"{path}: not a readable NIfTI image ({type(error).__name__}: {error}).") from error
    if data.ndim != 3:
        raise ImageError(f"{path}: a {data.ndim}-D image of shape {data.shape}; expected one 3-D T1 volume "
                         f"(split a 4-D series and give one volume).")
    if min(data.shape) < 8:
        raise ImageError(f"{path}: shape {data.shape} is a slab or a 2-D slice; expected a 3-D T1 volume.")
    affine = np.asarray(image.affine, dtype=float)
    if not np.all(np.isfinite(affine)):
        raise ImageError(f"{path}: the header's affine has non-finite values; the scan's geometry is unknown.")
    zooms = np.linalg.norm(affine[:3, :3], axis=0)
    if np.any(zooms < VOXEL_RANGE_MM[0]) or np.any(zooms > VOXEL_RANGE_MM[1]) \
            or abs(np.linalg.det(affine[:3, :3])) < 1e-6:
        raise ImageError(f"{path}: the header's affine gives voxel sizes {tuple(np.round(zooms, 3))} mm; expected "
                         f"{VOXEL_RANGE_MM[0]}–{VOXEL_RANGE_MM[1]} mm (a broken header?).")
    axes = affine[:3, :3] / zooms
    cosines = np.abs(axes.T @ axes - np.eye(3))
    if cosines.max() > MAX_AXIS_COSINE:
        raise ImageError(f"{path}: the header's affine is sheared (voxel axes not orthogonal); reslice the scan "
                         f"to an orthogonal grid first.")
    extent = np.asarray(data.shape) * zooms
    if np.any(extent < MIN_EXTENT_MM):
        raise ImageError(f"{path}: field of view {tuple(np.round(extent).astype(int))} mm; a head needs at least "
                         f"{MIN_EXTENT_MM:g} mm along each axis (a partial-brain slab?).")
    data = np.where(np.isfinite(data), data, 0.0).astype(np.float32)
    if float(data.max()) <= float(data.min()):
        raise ImageError(f"{path}: the image is constant ({float(data.min()):g} everywhere); not a T1 scan.")
    if float(data.min()) < 0:
        data -= float(np.percentile(data, 0.5))
        np.clip(data, 0, None, out=data)
    loaded = nib.as_closest_canonical(nib.Nifti1Image(data, affine))
    loaded.set_filename(str(path))
    return loaded


def output_name(path) -> str:
    """The BIDS stem of a scan: ``sub-01_ses-1_run-2_T1w.nii.gz`` → ``sub-01_ses-1_run-2``; other
    names lose only their extension."""
    name = Path(path).name
    name = re.sub(r"\.nii(\.gz)?$", "", name, flags=re.IGNORECASE)
    return re.sub(r"_T1w$", "", name) or "scan"


def output_paths(out_dir, name: str) -> dict[str, Path]:
    """Where the outputs of the scan called ``name`` go (BIDS-derivatives names)."""
    out_dir = Path(out_dir)
    space = f"space-{TEMPLATE_SPACE}"
    return {
        "t1": out_dir / f"{name}_{space}_desc-preproc_T1w.nii.gz",
        "mask": out_dir / f"{name}_{space}_desc-brain_mask.nii.gz",
        "transform": out_dir / f"{name}_from-T1w_to-{TEMPLATE_SPACE}_mode-image_xfm.txt",
        "qc_png": out_dir / f"{name}_desc-qc.png",
        "sidecar": out_dir / f"{name}_{space}_desc-preproc_T1w.json",
    }


# ---------------------------------------------------------------------------------------- steps

def n4_correct(image, shrink: int = 4, iterations: Sequence[int] = (50, 50, 30)):
    """N4 bias-field correction of a SimpleITK image: the field is fitted on a ``shrink``× smaller
    copy inside an Otsu head mask and divided out at full resolution."""
    sitk = import_sitk()
    image = sitk.Cast(image, sitk.sitkFloat32)
    small = sitk.BinShrink(image, [shrink] * 3)
    small_mask = sitk.OtsuThreshold(small, 0, 1, 200)
    corrector = sitk.N4BiasFieldCorrectionImageFilter()
    corrector.SetMaximumNumberOfIterations([int(i) for i in iterations])
    corrector.Execute(small, small_mask)
    log_field = corrector.GetLogBiasFieldAsImage(image)
    return sitk.Cast(image / sitk.Exp(log_field), sitk.sitkFloat32)


@functools.lru_cache(maxsize=1)
def _brain_extractor():
    try:
        from deepbet import BrainExtraction
    except ImportError as error:
        raise BagkitError("skull stripping needs deepbet: pip install 'bagkit[preprocess]' (or pip install deepbet).") \
            from error
    return BrainExtraction()


def skull_strip(data: np.ndarray, affine: np.ndarray, threshold: float = 0.5, grid: int = 192) -> np.ndarray:
    """deepbet's brain mask (bool, the input's grid) of a RAS T1 volume, as ``BrainExtraction.run``
    makes it (bounding-box network, brain network on a ``grid``³ resampling of the box, the
    largest connected component, holes filled)."""
    extractor = _brain_extractor()
    canonical = nib.as_closest_canonical(nib.Nifti1Image(np.asarray(data, dtype=np.float32), affine))
    if not np.allclose(canonical.affine, affine):
        raise BagkitError("skull_strip expects a RAS volume (reorient with nibabel.as_closest_canonical first).")
    probability = extractor.run_model(np.asarray(canonical.dataobj, dtype=np.float32).copy(),
                                      shape=(int(grid),) * 3)
    return np.asarray(extractor.postprocess(probability > threshold, 0), dtype=bool)


def _binned(image, spacing_mm: float, mask: bool = False):
    """``image`` averaged into bins of about ``spacing_mm`` (BinShrink: fast, no aliasing)."""
    sitk = import_sitk()
    factors = [max(1, int(round(spacing_mm / s))) for s in image.GetSpacing()]
    if mask:
        return sitk.Cast(sitk.BinShrink(sitk.Cast(image, sitk.sitkFloat32), factors) > 0.5, sitk.sitkUInt8)
    return sitk.BinShrink(sitk.Cast(image, sitk.sitkFloat32), factors)


def register_affine(fixed, moving, fixed_mask=None, levels_mm: Sequence[float] = (4.0, 2.0),
                    iterations: int = 200, seed: int = 20240101):
    """12-parameter affine of ``moving`` to ``fixed`` (SimpleITK images; the result maps fixed
    points to moving points): a rigid stage at the coarsest level from the images' moments,
    then the affine at every level in ``levels_mm``; Mattes mutual information (32 bins,
    10 % of the voxels sampled at random, seeded). Both images are first binned to the finest
    level's voxel size, so the cost does not grow with the scan's resolution."""
    sitk = import_sitk()
    finest = float(min(levels_mm))
    fixed = _binned(fixed, finest)
    moving = _binned(moving, finest)
    fixed_mask = _binned(fixed_mask, finest, mask=True) if fixed_mask is not None else None
    shrinks = [max(1, int(round(level / finest))) for level in levels_mm]

    def method(factors):
        registration = sitk.ImageRegistrationMethod()
        registration.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
        registration.SetMetricSamplingStrategy(registration.RANDOM)
        registration.SetMetricSamplingPercentage(0.1, seed)
        if fixed_mask is not None:
            registration.SetMetricFixedMask(fixed_mask)
        registration.SetInterpolator(sitk.sitkLinear)
        registration.SetOptimizerAsRegularStepGradientDescent(
            learningRate=1.0, minStep=1e-3, numberOfIterations=int(iterations), relaxationFactor=0.6,
            gradientMagnitudeTolerance=1e-6)
        registration.SetOptimizerScalesFromPhysicalShift()
        registration.SetShrinkFactorsPerLevel(factors)
        registration.SetSmoothingSigmasPerLevel([0.5 * (f - 1) * finest for f in factors])
        registration.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
        return registration

    rigid = sitk.CenteredTransformInitializer(fixed, moving, sitk.Euler3DTransform(),
                                              sitk.CenteredTransformInitializerFilter.MOMENTS)
    stage = method(shrinks[:1])
    stage.SetInitialTransform(rigid, inPlace=True)
    stage.Execute(fixed, moving)
    affine = sitk.AffineTransform(3)
    affine.SetCenter(rigid.GetCenter())
    affine.SetMatrix(rigid.GetMatrix())
    affine.SetTranslation(rigid.GetTranslation())
    stage = method(shrinks)
    stage.SetInitialTransform(affine, inPlace=True)
    stage.Execute(fixed, moving)
    return affine, {"registration_metric": float(stage.GetMetricValue()),
                    "registration_iterations": int(stage.GetOptimizerIteration()),
                    "registration_stop": stage.GetOptimizerStopConditionDescription()}


@functools.lru_cache(maxsize=1)
def _template_images():
    return _template_image(mni_template())


def _template_image(template):
    sitk = import_sitk()
    fixed = to_sitk(template.t1, template.affine)
    # the metric looks at the brain and a 5 mm rim around it (the edge is what aligns best)
    from scipy import ndimage

    rim = ndimage.binary_dilation(template.mask, iterations=5)
    fixed_mask = sitk.Cast(to_sitk(rim.astype(np.uint8), template.affine), sitk.sitkUInt8)
    return fixed, fixed_mask


def _resample(image, template, transform, interpolator=None, default: float = 0.0) -> np.ndarray:
    sitk = import_sitk()
    reference = to_sitk(np.zeros(template.shape, dtype=np.uint8), template.affine)
    out = sitk.Resample(image, reference, transform, interpolator or sitk.sitkLinear, default, sitk.sitkFloat32)
    return from_sitk(out)[0]


def run_pipeline(image: nib.Nifti1Image, options: PreprocessOptions = PreprocessOptions(),
                 name: str | None = None) -> PipelineResult:
    """The pipeline on one (checked, RAS) image, in memory. Raises :class:`ImageError` naming the
    scan when the mask is empty or fills the field of view."""
    import_sitk()  # a clear error first when the preprocess extra is missing
    name = name or image.get_filename() or "the scan"
    template = mni_template()
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    data = np.asarray(image.dataobj, dtype=np.float32)
    affine = image.affine
    native = to_sitk(data, affine)
    if options.n4:
        native = n4_correct(native)
        data = from_sitk(native)[0]
    seconds["n4"] = time.perf_counter() - clock
    fixed, fixed_mask = _template_images()
    voxel_ml = float(abs(np.linalg.det(affine[:3, :3]))) / 1000.0

    if options.order == STRIP_FIRST:
        clock = time.perf_counter()
        native_mask = skull_strip(data, affine, options.mask_threshold, options.strip_grid)
        _check_mask(native_mask, name)
        seconds["strip"] = time.perf_counter() - clock
        clock = time.perf_counter()
        brain = to_sitk(np.where(native_mask, data, 0.0).astype(np.float32), affine)
        transform, info = register_affine(fixed, brain, fixed_mask, options.registration_levels_mm,
                                          options.registration_iterations)
        seconds["register"] = time.perf_counter() - clock
        clock = time.perf_counter()
        t1 = _resample(native, template, transform)
        mask = _resample(to_sitk(native_mask.astype(np.float32), affine), template, transform) >= 0.5
        native_mask_ml = float(native_mask.sum()) * voxel_ml
    else:
        clock = time.perf_counter()
        transform, info = register_affine(fixed, native, fixed_mask, options.registration_levels_mm,
                                          options.registration_iterations)
        seconds["register"] = time.perf_counter() - clock
        clock = time.perf_counter()
        t1 = _resample(native, template, transform)
        seconds["resample"] = time.perf_counter() - clock
        clock = time.perf_counter()
        mask = skull_strip(t1, template.affine, options.mask_threshold, options.strip_grid)
        _check_mask(mask, name)
        seconds["strip"] = time.perf_counter() - clock
        clock = time.perf_counter()
        determinant = abs(np.linalg.det(np.asarray(transform.GetMatrix()).reshape(3, 3)))
        native_mask_ml = float(mask.sum()) / 1000.0 * determinant  # template mm³ → scan mm³
    outside = outside_fov_fraction(template, transform, affine, data.shape)
    brain_values = t1[mask]
    mean = float(brain_values.mean(dtype=np.float64)) if brain_values.size else 0.0
    if not np.isfinite(mean) or mean <= 0:
        raise ImageError(f"{name}: the mean intensity inside the brain mask is {mean:g}; expected a positive T1.")
    normalised = np.where(mask, t1 / mean, 0.0).astype(np.float32)
    seconds["resample"] = seconds.get("resample", 0.0) + time.perf_counter() - clock
    clock = time.perf_counter()
    metrics = qc_module.assess(normalised, mask, outside, native_mask_ml, template)
    metrics["brain_volume_ml"] = native_mask_ml * tissue_fraction(normalised[mask])
    metrics.update(info)
    if info["registration_iterations"] >= options.registration_iterations:  # stopped by the cap, not converged
        metrics["flags"] = ";".join([f for f in metrics["flags"].split(";") if f] + ["registration_not_converged"])
    seconds["qc"] = time.perf_counter() - clock
    return PipelineResult(
        t1=nib.Nifti1Image(normalised, template.affine),
        mask=nib.Nifti1Image(mask.astype(np.uint8), template.affine),
        transform=transform, native_mask_ml=native_mask_ml, qc=metrics, seconds=seconds)


def outside_fov_fraction(template, transform, affine: np.ndarray, shape) -> float:
    """The part of the template's brain that ``transform`` maps outside the scan's field of view
    (every 8th brain voxel is enough for a fraction)."""
    from bagkit.imaging.itk import affine_matrix

    points = np.argwhere(template.mask)[::8]
    to_scan_voxel = np.linalg.inv(affine) @ affine_matrix(transform) @ template.affine
    voxels = points @ to_scan_voxel[:3, :3].T + to_scan_voxel[:3, 3]
    inside = np.all((voxels >= -0.5) & (voxels <= np.asarray(shape) - 0.5), axis=1)
    return float(1.0 - inside.mean())


def tissue_fraction(values: np.ndarray) -> float:
    """The part of the brain mask that is tissue (grey or white matter), not CSF: the voxels above
    the lower of two Otsu thresholds (three classes, SimpleITK) of the T1 intensities in the mask."""
    sitk = import_sitk()
    values = np.asarray(values, dtype=np.float32)
    if values.size < 10:
        return float("nan")
    otsu = sitk.OtsuMultipleThresholdsImageFilter()
    otsu.SetNumberOfThresholds(2)
    otsu.SetNumberOfHistogramBins(128)
    otsu.Execute(sitk.GetImageFromArray(values.reshape(1, 1, -1)))
    lower = min(otsu.GetThresholds())
    return float(np.mean(values > lower))


def _check_mask(mask: np.ndarray, name: str) -> None:
    fraction = float(mask.mean())
    if not mask.any():
        raise ImageError(f"{name}: skull stripping found no brain (empty mask); is this a T1-weighted head scan?")
    if fraction > qc_module.MAX_MASK_FOV_FRACTION:
        raise ImageError(f"{name}: the brain mask covers {fraction:.0%} of the field of view; expected a head "
                         f"inside a larger field of view (is this already skull-stripped and cropped?).")


# ---------------------------------------------------------------------------------------- files

def _read_sidecar(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def cached_scan(path, out_dir, options: PreprocessOptions = PreprocessOptions(), name: str | None = None,
                digest: str | None = None) -> PreprocessedScan | None:
    """The scan's outputs in ``out_dir`` when they are there, complete, and made from the same
    input (SHA-256) with the same pipeline options; else None (nothing is computed)."""
    source = Path(path)
    name = name or output_name(source)
    files = output_paths(out_dir, name)
    if not files["sidecar"].is_file() or not source.is_file():
        return None
    digest = digest or file_hash(source)
    sidecar = _read_sidecar(files["sidecar"])
    if sidecar and sidecar.get("input_sha256") == digest and sidecar.get("pipeline") == options.key() \
            and all(p.is_file() for p in files.values()):
        return PreprocessedScan(source=source, name=name, files=files, qc=sidecar.get("qc", {}),
                                seconds=sidecar.get("seconds", {}), input_sha256=digest, cached=True)
    return None


def preprocess_scan(path, out_dir, options: PreprocessOptions = PreprocessOptions(), force: bool = False,
                    name: str | None = None, digest: str | None = None) -> PreprocessedScan:
    """Preprocess one raw T1 into ``out_dir`` (see the module's docstring for the files).

    Cached: when the sidecar records the same input SHA-256 and pipeline options and every
    output is there, nothing is recomputed. Outputs from another input or pipeline version are
    replaced only with ``force``; an output path that is an input is always refused. Files are
    written atomically. Raises :class:`ImageError` (naming the file) for a scan that is not a T1.
    """
    source = Path(path)
    name = name or output_name(source)
    files = output_paths(out_dir, name)
    digest = digest or (file_hash(source) if source.is_file() else "")
    if not source.is_file():
        raise ImageError(f"{source}: scan file not found.")
    cached = cached_scan(source, out_dir, options, name=name, digest=digest)
    if cached is not None:
        return cached
    for role, target in files.items():
        if target.exists() and target.resolve() == source.resolve():
            raise OutputExistsError(f"{target}: the preprocessed {role} would overwrite the input {source}.")
        if target.exists() and not force:
            raise OutputExistsError(
                f"{target} exists but was made from another input or pipeline version than {source}; "
                f"pass --force (force=True) to replace it, or choose another output folder.")
    start = time.perf_counter()
    clock = time.perf_counter()
    image = check_raw_t1(source)
    load_seconds = time.perf_counter() - clock
    result = run_pipeline(image, options, name=str(source))
    seconds = {"load": load_seconds, **result.seconds}
    qc_write = time.perf_counter()
    with atomic_output(files["t1"]) as tmp:
        nib.save(result.t1, str(tmp))
    with atomic_output(files["mask"]) as tmp:
        nib.save(result.mask, str(tmp))
    sitk = import_sitk()
    with atomic_output(files["transform"]) as tmp:
        sitk.WriteTransform(result.transform, str(tmp))
    with atomic_output(files["qc_png"]) as tmp:
        qc_module.write_qc_png(tmp, np.asarray(result.t1.dataobj), np.asarray(result.mask.dataobj) > 0,
                               mni_template(), title=f"{name}: {result.qc.get('flags') or 'no QC flag'}")
    seconds["write"] = time.perf_counter() - qc_write
    seconds["total"] = time.perf_counter() - start
    record = {
        "Sources": [str(source)], "SkullStripped": True, "Space": TEMPLATE_SPACE,
        "input_sha256": digest, "pipeline_version": PIPELINE_VERSION, "pipeline": options.key(),
        "qc": _jsonable(result.qc), "seconds": seconds,
        "software": _versions(),
    }
    with atomic_output(files["sidecar"]) as tmp:
        tmp.write_text(json.dumps(record, indent=2))
    return PreprocessedScan(source=source, name=name, files=files, qc=record["qc"], seconds=seconds,
                            input_sha256=digest, cached=False)


def _jsonable(values: dict) -> dict:
    out = {}
    for key, value in values.items():
        if isinstance(value, (np.floating, np.integer)):
            value = value.item()
        out[key] = value
    return out


def _versions() -> dict:
    from importlib import metadata

    versions = {}
    for package in ("SimpleITK", "deepbet", "nilearn", "torch"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return versions


def preprocess_one(path, out_dir, options: PreprocessOptions = PreprocessOptions(), force: bool = False,
                   name: str | None = None, digest: str | None = None) -> PreprocessedScan:
    """:func:`preprocess_scan`, a failure returned as the scan's ``error`` (never raised): the
    step each scan of a batch goes through, in this process or as a task on a Dask worker."""
    path = Path(path)
    name = name or output_name(path)
    try:
        return preprocess_scan(path, out_dir, options, force=force, name=name, digest=digest)
    except BagkitError as error:
        return PreprocessedScan(source=path, name=name, error=str(error))
    except Exception as error:  # noqa: BLE001 - a library failure on one scan never stops the batch
        return PreprocessedScan(source=path, name=name, error=f"{path}: {type(error).__name__}: {error}")


def name_clashes(paths: Sequence[Path], names: Sequence[str]) -> dict[int, str]:
    """Index → error for each input whose output name an earlier, different input already has."""
    taken: dict[str, Path] = {}
    clashes = {}
    for index, (path, name) in enumerate(zip(paths, names)):
        if name in taken and taken[name].resolve() != Path(path).resolve():
            clashes[index] = (f"{path}: its outputs would be named {name!r} like those of {taken[name]}; rename "
                              f"one of them or preprocess them into different folders.")
        else:
            taken.setdefault(name, Path(path))
    return clashes


def describe_done(done: PreprocessedScan) -> str:
    """One progress line's end for a scan: its error, 'cached' or its time, and its QC flags."""
    state = ("error: " + done.error) if done.error else (
        "cached" if done.cached else f"{done.seconds.get('total', float('nan')):.1f} s")
    flags = f" QC flags: {', '.join(done.flags)}" if done.flags else ""
    return f"{done.name}: {state}{flags}"


def preprocess_scans(paths: Iterable, out_dir, options: PreprocessOptions = PreprocessOptions(),
                     force: bool = False, progress: Callable[[str], None] | None = None,
                     names: Sequence[str] | None = None) -> list[PreprocessedScan]:
    """Preprocess each scan into ``out_dir`` and write ``out_dir/qc.csv``; a scan that fails is
    recorded with its error (``PreprocessedScan.error``, status ``error`` in qc.csv) and the
    batch goes on. Two inputs that would get the same output name are an error for the second."""
    paths = [Path(p) for p in paths]
    names = list(names) if names is not None else [output_name(p) for p in paths]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clashes = name_clashes(paths, names)
    results: list[PreprocessedScan] = []
    for index, (path, name) in enumerate(zip(paths, names), start=1):
        if progress:
            progress(f"preprocess [{index}/{len(paths)}] {path}")
        if index - 1 in clashes:
            results.append(PreprocessedScan(source=path, name=name, error=clashes[index - 1]))
        else:
            results.append(preprocess_one(path, out_dir, options, force=force, name=name))
        if progress:
            progress(f"preprocess [{index}/{len(paths)}] {describe_done(results[-1])}")
    write_qc_table(out_dir / "qc.csv", results)
    return results


#: a scan whose file name says it is already in template space and preprocessed passes through
PREPROCESSED_NAME = re.compile(r"_space-MNI152[A-Za-z0-9]*_.*desc-preproc_T1w\.nii(\.gz)?$")
TRUE_VALUES = {"1", "1.0", "true", "yes", "y", "t"}
STATUS_COLUMNS = ("preprocess_status", "preprocess_flags", "preprocess_error", "icv_ml", "brain_volume_ml",
                  "qc_template_correlation", "qc_template_dice", "qc_picture")


@dataclass(frozen=True)
class CohortPreprocessing:
    """:func:`preprocess_cohort`'s answer, indexed like the cohort table."""

    scans: pd.Series          # the scan each row's prediction should use (NaN: none)
    status: pd.DataFrame      # preprocess_status, preprocess_flags, preprocess_error, icv_ml, brain_volume_ml,
    #                           qc_template_correlation, qc_template_dice, qc_picture
    results: tuple            # the PreprocessedScan of each preprocessed row
    notes: tuple[str, ...]


def is_declared_preprocessed(path, declared=None) -> bool:
    """A scan passes through when the table says so (``scan_preprocessed`` true) or its file
    name is a BIDS derivative in MNI space (``*_space-MNI152…_desc-preproc_T1w.nii[.gz]``)."""
    if declared is not None and str(declared).strip().lower() in TRUE_VALUES:
        return True
    return bool(PREPROCESSED_NAME.search(Path(str(path)).name))


@dataclass(frozen=True)
class PreprocessJob:
    """One scan to preprocess: where it is, what it hashes to, where its outputs go. What a
    runner of :func:`preprocess_cohort` (serial, or a Dask task each) receives."""

    source: Path
    folder: Path               # its outputs' folder (in a cohort's store: ``store/digest[:16]``)
    name: str                  # its outputs' stem (:func:`output_name`)
    digest: str                # the input's SHA-256
    force: bool = False        # replace outputs of another pipeline version there
    options: PreprocessOptions = PreprocessOptions()
    title: str = ""            # how progress lines name it (e.g. "subject: path")


def run_jobs_serially(jobs: Sequence[PreprocessJob],
                      progress: Callable[[str], None] | None = None) -> list[PreprocessedScan]:
    """The default runner of :func:`preprocess_cohort`: each job in this process, in turn; a
    scan that fails is its result's ``error`` (never raised)."""
    results = []
    for position, job in enumerate(jobs, start=1):
        if progress:
            progress(f"preprocess [{position}/{len(jobs)}] {job.title or job.source}")
        results.append(preprocess_one(job.source, job.folder, job.options, force=job.force, name=job.name,
                                      digest=job.digest))
    return results


def plan_cohort(frame: pd.DataFrame, base_dir=".", out_dir=None, options: PreprocessOptions = PreprocessOptions()):
    """The plan of :func:`preprocess_cohort`: per row of ``frame`` either a scan that passes
    through (a path), a refusal (a :class:`PreprocessedScan` with its error), or the index of a
    :class:`PreprocessJob`; and the jobs, one per distinct (folder, name): rows that name the
    same scan share its job. Hashes each raw scan; computes nothing else."""
    if "scan" not in frame.columns:
        raise BagkitError("the cohort table has no 'scan' column to preprocess.")
    if out_dir is None:
        raise BagkitError("preprocess_cohort needs out_dir, the folder that keeps the preprocessed scans.")
    base, store = Path(base_dir), Path(out_dir)
    declared = frame["scan_preprocessed"] if "scan_preprocessed" in frame.columns else pd.Series(None, frame.index)
    ids = frame["subject_id"] if "subject_id" in frame.columns else pd.Series(frame.index, index=frame.index)
    plan: dict = {}
    jobs: list[PreprocessJob] = []
    where: dict[tuple[Path, str], int] = {}
    for label, value in frame["scan"].items():
        if not isinstance(value, str) or not value.strip():
            plan[label] = None
            continue
        path = Path(value.strip())
        path = path if path.is_absolute() else base / path
        if is_declared_preprocessed(path, declared[label]):
            plan[label] = str(path)
            continue
        name = output_name(path)
        try:
            if not path.is_file():
                raise ImageError(f"{path}: scan file not found.")
            digest = file_hash(path)
        except BagkitError as error:
            plan[label] = PreprocessedScan(source=path, name=name, error=str(error))
            continue
        except OSError as error:  # unreadable: that scan's error, the batch goes on
            plan[label] = PreprocessedScan(source=path, name=name, error=f"{path}: {type(error).__name__}: {error}")
            continue
        folder = store / digest[:16]
        if (folder, name) not in where:
            # the store is bagkit's own: outputs of another pipeline version there (their sidecar
            # says bagkit made them) are replaced; anything else in it is still refused
            sidecar = _read_sidecar(output_paths(folder, name)["sidecar"]) or {}
            where[(folder, name)] = len(jobs)
            jobs.append(PreprocessJob(source=path, folder=folder, name=name, digest=digest,
                                      force="pipeline" in sidecar, options=options, title=f"{ids[label]}: {path}"))
        plan[label] = where[(folder, name)]
    return plan, jobs


def preprocess_cohort(frame: pd.DataFrame, base_dir=".", out_dir=None, options: PreprocessOptions = PreprocessOptions(),
                      keep_flagged: bool = False, progress: Callable[[str], None] | None = None, *,
                      runner: Callable[[Sequence[PreprocessJob]], Sequence[PreprocessedScan]] | None = None
                      ) -> CohortPreprocessing:
    """Preprocess every raw scan of a cohort table (``scan`` column, paths relative to
    ``base_dir``) into ``out_dir`` (a content-addressed store: one folder per input SHA-256, so
    a rerun reads everything back). Rows marked ``scan_preprocessed`` (or named as MNI-space
    derivatives) pass through. A scan that fails, or is QC-flagged without ``keep_flagged``,
    gets no scan to predict from and a note saying why.

    ``runner``: runs the jobs (:class:`PreprocessJob`, one per distinct scan) and returns their
    :class:`PreprocessedScan` in order, a failure as its ``error``; default: in this process, one
    after the other (:func:`run_jobs_serially`, with ``progress``). A Dask runner:
    :func:`bagkit.predictors.preprocess_distributed.cohort_runner`."""
    plan, jobs = plan_cohort(frame, base_dir, out_dir, options)
    if runner is None:
        done_jobs = run_jobs_serially(jobs, progress) if jobs else []
    else:
        done_jobs = list(runner(jobs)) if jobs else []
    if len(done_jobs) != len(jobs):
        raise BagkitError(f"the preprocessing runner returned {len(done_jobs)} result(s) for {len(jobs)} scan(s).")
    ids = frame["subject_id"] if "subject_id" in frame.columns else pd.Series(frame.index, index=frame.index)
    scans = pd.Series(np.nan, index=frame.index, dtype=object)
    status = pd.DataFrame(index=frame.index, columns=list(STATUS_COLUMNS), dtype=object)
    results, notes = [], []
    for label, step in plan.items():
        who = ids[label]
        if step is None:
            status.loc[label, ["preprocess_status", "preprocess_error"]] = ["error", "no scan given"]
            continue
        if isinstance(step, str):
            scans[label] = step
            status.loc[label, "preprocess_status"] = "passed through"
            continue
        done = step if isinstance(step, PreprocessedScan) else done_jobs[step]
        results.append(done)
        if done.error:
            status.loc[label, ["preprocess_status", "preprocess_error"]] = ["error", done.error]
            notes.append(f"preprocessing: {who} left out ({done.error})")
            continue
        status.loc[label, "preprocess_status"] = "flagged" if done.flags else "ok"
        status.loc[label, "preprocess_flags"] = ";".join(done.flags)
        status.loc[label, "icv_ml"] = done.qc.get("mask_volume_ml", np.nan)
        status.loc[label, "brain_volume_ml"] = done.qc.get("brain_volume_ml", np.nan)
        status.loc[label, "qc_template_correlation"] = done.qc.get("template_correlation", np.nan)
        status.loc[label, "qc_template_dice"] = done.qc.get("template_dice", np.nan)
        status.loc[label, "qc_picture"] = str(done.files["qc_png"])
        if done.flags and not keep_flagged:
            status.loc[label, "preprocess_error"] = f"QC flags {', '.join(done.flags)} (see {done.files['qc_png']})"
            notes.append(f"preprocessing: {who} left out for QC flags {', '.join(done.flags)} "
                         f"(keep it with --keep-flagged); see {done.files['qc_png']}")
            continue
        if done.flags:
            notes.append(f"preprocessing: {who} kept despite QC flags {', '.join(done.flags)} (--keep-flagged)")
        scans[label] = str(done.t1)
    return CohortPreprocessing(scans=scans, status=status, results=tuple(results), notes=tuple(notes))


def write_qc_table(path, results: Sequence[PreprocessedScan]) -> Path:
    """Write (or update) ``qc.csv``: a row per scan, rows of other scans already there kept.
    A ``qc.csv`` that bagkit did not write (other columns) is refused, not overwritten."""
    path = Path(path)
    rows = pd.DataFrame([r.row() for r in results], columns=list(QC_COLUMNS))
    if path.is_file():
        try:
            existing = pd.read_csv(path, dtype={"flags": str, "error": str}, keep_default_na=False,
                                   na_values=[""])
        except Exception as error:  # noqa: BLE001
            raise OutputExistsError(f"{path}: exists and is not a bagkit QC table ({error}); move it away.") from error
        if "name" not in existing.columns or "input_sha256" not in existing.columns:
            raise OutputExistsError(f"{path}: exists and is not a bagkit QC table; move it away.")
        kept = existing[~existing["name"].astype(str).isin(rows["name"].astype(str))]
        rows = pd.concat([kept.reindex(columns=list(QC_COLUMNS)), rows], ignore_index=True) if len(kept) else rows
    with atomic_output(path) as tmp:
        rows.to_csv(tmp, index=False)
    return path


__all__ = ["CohortPreprocessing", "preprocess_cohort", "PreprocessJob", "plan_cohort", "run_jobs_serially",
           "is_declared_preprocessed", "tissue_fraction",
           "PIPELINE_VERSION", "STRIP_FIRST", "REGISTER_FIRST", "PreprocessOptions", "PipelineResult",
           "PreprocessedScan", "check_raw_t1", "output_name", "output_paths", "n4_correct", "skull_strip",
           "register_affine", "run_pipeline", "preprocess_scan", "preprocess_scans", "preprocess_one", "cached_scan",
           "name_clashes", "describe_done", "write_qc_table",
           "QC_COLUMNS", "STEPS"]
