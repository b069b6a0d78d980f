"""The preprocessing QC pictures a report shows, read once where the data are loaded.

Preprocessing writes one QC picture (a PNG) per scan and its path in the ``qc_picture`` column.
The report's montage shows every flagged or failed scan (up to :data:`MAX_FLAGGED_SHOWN`) and
:data:`PASSED_SAMPLE` passed ones; :func:`load_qc_pictures` reads exactly those, downsampled to
:data:`PICTURE_WIDTH` pixels, when the cohort is built (from the table, or from the predictions
of ``--preprocess``), so memory stays bounded and nothing after the cohort opens a file: the
analysis carries the pixels and the plot draws from arrays.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["PASSED_SAMPLE", "MAX_FLAGGED_SHOWN", "PICTURE_WIDTH", "montage_rows", "read_picture",
           "load_qc_pictures"]

#: passed scans shown beside the flagged ones in the report's montage
PASSED_SAMPLE = 4
#: flagged or failed scans shown at most (in table order; the QC table lists every one)
MAX_FLAGGED_SHOWN = 24
#: a picture's width in the montage's pixels: two per row of a 7-inch figure, printed at ~180 dpi
PICTURE_WIDTH = 640


def montage_rows(status: pd.Series, available: pd.Series) -> list:
    """Index labels of the scans the montage shows, in its order: every flagged or failed scan with
    a picture (the first :data:`MAX_FLAGGED_SHOWN`), then :data:`PASSED_SAMPLE` passed ones with a
    picture, evenly spaced through the table (deterministic, not the first few).

    ``status``: the ``preprocess_status`` per scan; ``available``: whether its picture is there."""
    status = status.fillna("").astype(str)
    available = available.astype(bool)
    shown = status.index[status.isin(["flagged", "error"]) & available][:MAX_FLAGGED_SHOWN]
    passed = status.index[(status == "ok") & available]
    if len(passed) > PASSED_SAMPLE:
        passed = passed[np.linspace(0, len(passed) - 1, PASSED_SAMPLE).round().astype(int)]
    return list(shown) + list(passed)


def read_picture(path, width: int = PICTURE_WIDTH) -> np.ndarray:
    """An RGB uint8 array of the picture at ``path``, no wider than ``width`` pixels."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
        if image.width > width:
            image = image.resize((width, max(1, round(image.height * width / image.width))),
                                 Image.Resampling.BOX)
        return np.asarray(image, dtype=np.uint8).copy()


def load_qc_pictures(data: pd.DataFrame, base_dir=None) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """(subject_id → picture pixels, notes) for the scans the montage shows (:func:`montage_rows`),
    read from the ``qc_picture`` paths (relative ones from ``base_dir``). A picture that is missing
    or unreadable is left out, with a note; nothing when the table has no QC columns."""
    if "qc_picture" not in data.columns or "preprocess_status" not in data.columns:
        return {}, ()
    paths = data["qc_picture"].fillna("").astype(str).str.strip()
    pictures: dict[str, np.ndarray] = {}
    missing: list[str] = []
    for row in montage_rows(data["preprocess_status"], paths != ""):
        path = Path(paths[row])
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        try:
            pictures[str(data.at[row, "subject_id"])] = read_picture(path)
        except (OSError, ValueError) as error:  # PIL raises OSError subclasses for what it cannot read
            missing.append(f"{path} ({'not found' if not path.exists() else type(error).__name__})")
    notes = (f"preprocessing QC: {len(missing)} QC picture(s) could not be read and are left out of the "
             f"montage: {', '.join(missing[:3])}{' …' if len(missing) > 3 else ''}",) if missing else ()
    return pictures, notes
