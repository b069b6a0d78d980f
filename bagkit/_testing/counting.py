"""A tiny predictor that logs every prediction it makes, for tests of batch and distributed runs.

Each scan is a small NIfTI whose voxels all hold one number ``v``; the predicted brain age is
``20 + v`` and its SD ``1 + v / 100``. Every predicted scan appends a line ``v pid`` to
``log_dir/predictions.log`` (``O_APPEND``: lines from several processes never mix), so a test
counts how often each scan was predicted, and by which process.

Each time the predictor is unpickled (e.g. on a Dask worker) it appends ``loaded pid`` to
``log_dir/loads.log``, so a test checks that a worker loads it once, not once per scan.

``hold`` names a scan file (its base name): loading it writes ``log_dir/started-<pid>`` and
waits until ``log_dir/release`` exists (at most ``hold_seconds``), so a test can act (kill the
worker, stop the client) while that scan is in flight. ``delay`` sleeps that long per scan.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from bagkit.errors import ImageError
from bagkit.predictors.protocol import BrainAgePredictor


class CountingPredictor(BrainAgePredictor):
    name = "counting"

    def __init__(self, log_dir=None, hold=None, delay: float = 0.0, hold_seconds: float = 60.0,
                 input_shape=(4, 4, 4)):
        self.log_dir = log_dir
        self.hold = hold
        self.delay = delay
        self.hold_seconds = hold_seconds
        self.input_shape = input_shape

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.log_dir is not None:
            _append(Path(self.log_dir) / "loads.log", f"loaded {os.getpid()}\n")

    def load_scan(self, scan) -> np.ndarray:
        if isinstance(scan, np.ndarray):  # already loaded (the batch hands loaded volumes to predict())
            return super().load_scan(scan)
        path = Path(scan)
        if self.hold is not None and path.name == self.hold and self.log_dir is not None:
            log = Path(self.log_dir)
            (log / f"started-{os.getpid()}").write_text(str(path))
            deadline = time.monotonic() + float(self.hold_seconds)
            while not (log / "release").exists() and time.monotonic() < deadline:
                time.sleep(0.02)
        if self.delay:
            time.sleep(float(self.delay))
        try:
            data = np.asarray(nib.load(str(path)).dataobj, dtype=np.float32)
        except Exception as error:
            raise ImageError(f"{path}: not a readable NIfTI ({error})") from error
        if data.shape != tuple(self.input_shape):
            raise ImageError(f"{path}: shape {data.shape}, expected {tuple(self.input_shape)}")
        return data

    def predict_arrays(self, volumes: np.ndarray):
        values = volumes.reshape(len(volumes), -1).mean(axis=1).astype(float)
        if self.log_dir is not None:
            _append(Path(self.log_dir) / "predictions.log", "".join(f"{value:g} {os.getpid()}\n" for value in values))
        return 20.0 + values, 1.0 + values / 100.0


def _append(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def loads_logged(log_dir) -> dict[int, int]:
    """How often each process unpickled the predictor, from ``log_dir/loads.log``."""
    log = Path(log_dir) / "loads.log"
    counts: dict[int, int] = {}
    if log.is_file():
        for line in log.read_text().splitlines():
            pid = int(line.split()[1])
            counts[pid] = counts.get(pid, 0) + 1
    return counts


def write_counting_scans(folder, values, shape=(4, 4, 4)) -> list[Path]:
    """One NIfTI per value (every voxel holds it), named ``scan-<value>.nii``; their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for value in values:
        path = folder / f"scan-{value:g}.nii"
        nib.save(nib.Nifti1Image(np.full(shape, value, dtype=np.float32), np.eye(4)), str(path))
        paths.append(path)
    return paths


def predictions_logged(log_dir) -> dict[float, int]:
    """How often each scan value was predicted, from ``log_dir/predictions.log``."""
    log = Path(log_dir) / "predictions.log"
    counts: dict[float, int] = {}
    if log.is_file():
        for line in log.read_text().splitlines():
            value = float(line.split()[0])
            counts[value] = counts.get(value, 0) + 1
    return counts


__all__ = ["CountingPredictor", "loads_logged", "predictions_logged", "write_counting_scans"]
