"""Age-bias correction: fitted on controls only, recovers a known linear bias."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bagkit.errors import AnalysisError
from bagkit.stats.bias import AgeBiasCorrection, fit_bias_correction


def _cohort(n=200, seed=0):
    rng = np.random.default_rng(seed)
    age = rng.uniform(20, 80, n)
    group = np.where(np.arange(n) % 4 == 0, "MS", "HC")
    true_gap = np.where(group == "MS", 6.0, 0.0)
    # regression to the mean: brain_age = 0.7·(age + gap) + 15 (+ tiny noise)
    brain_age = 0.7 * (age + true_gap) + 15.0 + rng.normal(0, 0.01, n)
    return pd.DataFrame({"subject_id": range(n), "group": group, "age": age, "brain_age": brain_age})


def test_refuses_patients_unless_asked():
    frame = _cohort()
    with pytest.raises(AnalysisError, match="controls only.*MS"):
        AgeBiasCorrection.fit(frame.age, frame.brain_age, groups=frame.group)
    both = AgeBiasCorrection.fit(frame.age, frame.brain_age, groups=frame.group, allow_patients=True)
    assert both.fitted_on.startswith("all")


def test_linear_correction_recovers_known_bias():
    frame = _cohort()
    correction = fit_bias_correction(frame, control="HC", method="linear")
    assert correction.slope == pytest.approx(0.7, abs=1e-3)
    assert correction.intercept == pytest.approx(15.0, abs=0.05)
    assert correction.n == (frame.group == "HC").sum()
    out = correction.apply(frame)
    controls, patients = out[out.group == "HC"], out[out.group == "MS"]
    assert controls.bag_corrected.abs().max() < 0.1
    assert patients.bag_corrected.mean() == pytest.approx(6.0, abs=0.1)  # the true gap comes back
    assert abs(np.corrcoef(controls.age, controls.bag_corrected)[0, 1]) < 0.2


def test_bag_correction_formula():
    frame = _cohort()
    correction = fit_bias_correction(frame, method="bag")
    controls = frame[frame.group == "HC"]
    alpha, beta = np.polyfit(controls.age, controls.brain_age - controls.age, 1)
    assert (correction.slope, correction.intercept) == pytest.approx((alpha, beta))
    out = correction.apply(frame)
    expected = (frame.brain_age - frame.age) - (alpha * frame.age + beta)
    np.testing.assert_allclose(out.bag_corrected, expected)
    np.testing.assert_allclose(out.brain_age_corrected, frame.age + expected)
    tidy = correction.tidy()
    assert list(tidy.columns) == ["analysis", "subset", "term", "contrast", "statistic", "value"]


def test_clear_errors():
    frame = _cohort()
    with pytest.raises(AnalysisError, match="no controls labelled 'CTRL'"):
        fit_bias_correction(frame, control="CTRL")
    with pytest.raises(AnalysisError, match="'brain_age'"):
        fit_bias_correction(frame.drop(columns="brain_age"))
    with pytest.raises(AnalysisError, match="method"):
        fit_bias_correction(frame, method="quadratic")
