"""T1 images: loading, checking and the model-input preprocessing (``images``), lesion filling
(``lesion``). numpy/scipy/nibabel only; never torch.

The names below load ``images`` (nibabel, scipy.ndimage: ~0.25 s) on first use, so a report that
only reads QC thresholds from :mod:`bagkit.imaging.qc` does not pay for them."""
import importlib

__all__ = ["DEFAULT_SHAPE", "VOXEL_TOLERANCE_MM", "MAX_IMAGE_BYTES", "max_image_bytes", "check_image_size",
           "load_t1", "preprocess", "resample_to_1mm", "crop_or_pad", "load_and_preprocess"]


def __getattr__(name: str):
    if name in __all__:
        value = getattr(importlib.import_module("bagkit.imaging.images"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'bagkit.imaging' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
