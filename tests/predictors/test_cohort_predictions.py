"""predict_cohort: scans relative to the table, a bad scan does not stop the batch, caching."""
from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from bagkit.errors import BagkitError
from bagkit.predictors import BrainAgePredictor, predict_cohort


class CountingPredictor(BrainAgePredictor):
    """A predictor whose brain age is the mean intensity × 10; counts its calls."""

    name = "counting"

    def __init__(self, input_shape=(10, 12, 10), offset=0.0):
        self.input_shape = input_shape
        self.offset = offset
        self.calls = 0

    def predict_arrays(self, volumes):
        self.calls += len(volumes)
        volumes = np.asarray(volumes)
        raw = volumes.reshape(len(volumes), -1)
        return raw.max(axis=1) * 10 + self.offset, np.full(len(volumes), 1.5)


@pytest.fixture
def cohort(tmp_path, write_nifti):
    scans = tmp_path / "scans"
    scans.mkdir()
    rows = []
    for i in range(5):
        data = np.zeros((10, 12, 10), np.float32)
        data[3:7, 3:9, 3:7] = 1.0
        data[5, 5, 5] = 2.0 + i  # max after normalisation depends on i
        write_nifti(scans / f"sub-{i}.nii.gz", data)
        rows.append({"subject_id": f"sub-{i}", "group": "HC", "age": 40 + i, "scan": f"scans/sub-{i}.nii.gz"})
    (scans / "sub-bad.nii.gz").write_bytes(gzip.compress(b"garbage" * 100))
    rows.insert(2, {"subject_id": "sub-bad", "group": "HC", "age": 50, "scan": "scans/sub-bad.nii.gz"})
    rows.append({"subject_id": "sub-missing", "group": "HC", "age": 51, "scan": "scans/none.nii.gz"})
    rows.append({"subject_id": "sub-noscan", "group": "HC", "age": 52, "scan": None})
    frame = pd.DataFrame(rows, index=pd.Index([f"r{i}" for i in range(len(rows))]))
    return frame, tmp_path


def test_batch_goes_on_past_a_bad_scan(cohort):
    frame, folder = cohort
    predictor = CountingPredictor()
    out = predict_cohort(frame, predictor, base_dir=folder, progress=False, batch_size=3)
    assert list(out.index) == list(frame.index)
    assert list(out.columns) == ["subject_id", "brain_age", "brain_age_sd", "prediction_error"]
    ok = out[out.prediction_error == ""]
    assert list(ok.subject_id) == [f"sub-{i}" for i in range(5)]
    assert ok.brain_age.notna().all() and (ok.brain_age_sd == 1.5).all()
    errors = out.set_index("subject_id").prediction_error
    assert "sub-bad.nii.gz" in errors["sub-bad"] and "ImageError" in errors["sub-bad"]
    assert "not found" in errors["sub-missing"] and "no scan" in errors["sub-noscan"]
    assert out.set_index("subject_id").brain_age[["sub-bad", "sub-missing", "sub-noscan"]].isna().all()


def test_second_run_reads_the_cache(cohort, tmp_path):
    frame, folder = cohort
    cache = tmp_path / "cache"
    first = CountingPredictor()
    out1 = predict_cohort(frame, first, base_dir=folder, cache_dir=cache, progress=False)
    assert first.calls == 5
    second = CountingPredictor()
    out2 = predict_cohort(frame, second, base_dir=folder, cache_dir=cache, progress=False)
    assert second.calls == 0
    pd.testing.assert_frame_equal(out1, out2)
    # other parameters: another fingerprint, predicted again
    third = CountingPredictor(offset=1.0)
    out3 = predict_cohort(frame, third, base_dir=folder, cache_dir=cache, progress=False)
    assert third.calls == 5
    np.testing.assert_allclose(out3.brain_age.dropna(), out1.brain_age.dropna() + 1.0)


def test_cohort_without_scan_column():
    with pytest.raises(BagkitError, match="'scan' column"):
        predict_cohort(pd.DataFrame({"subject_id": ["a"]}), CountingPredictor())
