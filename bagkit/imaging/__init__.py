"""T1 images: loading, checking and the model-input preprocessing (``images``), lesion filling
(``lesion``). numpy/scipy/nibabel only; never torch."""
from bagkit.imaging.images import (
                                   DEFAULT_SHAPE,
                                   VOXEL_TOLERANCE_MM,
                                   crop_or_pad,
                                   load_and_preprocess,
                                   load_t1,
                                   preprocess,
                                   resample_to_1mm,
)

__all__ = ["DEFAULT_SHAPE", "VOXEL_TOLERANCE_MM", "load_t1", "preprocess", "resample_to_1mm", "crop_or_pad",
           "load_and_preprocess"]
