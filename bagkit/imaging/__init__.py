"""T1 images: loading, checking and the model-input preprocessing (``images``), lesion filling
(``lesion``). numpy/scipy/nibabel only; never torch."""
from bagkit.imaging.images import (
                                   DEFAULT_SHAPE,
                                   MAX_IMAGE_BYTES,
                                   VOXEL_TOLERANCE_MM,
                                   check_image_size,
                                   crop_or_pad,
                                   load_and_preprocess,
                                   load_t1,
                                   max_image_bytes,
                                   preprocess,
                                   resample_to_1mm,
)

__all__ = ["DEFAULT_SHAPE", "VOXEL_TOLERANCE_MM", "MAX_IMAGE_BYTES", "max_image_bytes", "check_image_size",
           "load_t1", "preprocess", "resample_to_1mm", "crop_or_pad", "load_and_preprocess"]
