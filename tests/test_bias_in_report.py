"""Age-bias correction inside the analysis and the age-adjusted BAG comparison (issue 13, section 1),
against R run by Rscript (``r/reference/corners_reference.R bias`` and ``lm_age``).

R::

    fit <- lm(brain_age ~ age, data = controls)                 # linear; bag: lm(I(brain_age - age) ~ age)
    (brain_age - b) / a - age                                   # patients, by the full fit
    # each control by lm(...) on the controls of the other folds (bagkit's folds, sent to R)
    lm(bag ~ group); lm(bag ~ group + age)                      # per pair of groups; summary(), confint()

Tolerances: slope, intercept, corrected BAG 1e-9 relative (least squares, closed form); lm
coefficient, SE, t, CI 1e-8 relative, p 1e-8 relative.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_r_corners import r_corner

from bagkit.analyses import AnalysisOptions, analyze
from bagkit.analyses.bias import correct_cohort, run_age_adjusted
from bagkit.cohort import read_cohort
from bagkit.errors import BagkitError
from bagkit.stats.bias import cross_fitting_folds


@pytest.mark.parametrize("method", ["linear", "bag"])
def test_correction_and_cross_fitting_match_r(method, small_cohort_csv, tmp_path):
    cohort = read_cohort(small_cohort_csv)
    options = AnalysisOptions(bias_correction=method, bias_folds=5, seed=3)
    corrected = correct_cohort(cohort, options)
    data = cohort.data
    control = (data.group == "HC").to_numpy()
    fold = np.full(len(data), np.nan)
    fold[control] = cross_fitting_folds(int(control.sum()), 5, 3)
    theirs = r_corner("bias", pd.DataFrame({"age": data.age, "brain_age": data.brain_age,
                                            "control": control.astype(int), "fold": fold}), tmp_path, method)
    fit = corrected.bias_correction
    assert fit["slope"] == pytest.approx(theirs["slope"], rel=1e-9)
    assert fit["intercept"] == pytest.approx(theirs["intercept"], rel=1e-9, abs=1e-9)
    expected = np.array([theirs[f"bag_{i + 1}"] for i in range(len(data))])
    np.testing.assert_allclose(corrected.data["bag"], expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(corrected.data["bag_uncorrected"], data.brain_age - data.age)
    # cross-fitted: the controls' mean corrected BAG is not zero by construction
    assert abs(corrected.data.loc[control, "bag"].mean()) > 1e-6


def test_age_adjusted_comparison_matches_r(small_cohort_csv, tmp_path):
    cohort = read_cohort(small_cohort_csv)
    result = run_age_adjusted(cohort)
    for a, b in (("NMOSD", "HC"), ("RRMS", "HC"), ("NMOSD", "RRMS")):
        theirs = r_corner("lm_age", cohort.data[["bag", "group", "age"]], tmp_path, f"{a},{b}")
        for adjust, prefix in (((), ""), (("age",), "adjusted_")):
            effect = next(e for e in result.effects if e.groups == (a, b) and e.adjusted_for == adjust)
            for name in ("estimate", "se", "t", "ci_low", "ci_high", "df"):
                assert getattr(effect, name) == pytest.approx(theirs[prefix + name], rel=1e-8), (a, b, adjust, name)
            assert effect.p == pytest.approx(theirs[prefix + "p"], rel=1e-8)


def test_analyze_with_correction_tidy_rows(small_cohort_csv, tmp_path):
    """Every analysis reads the corrected BAG; results.csv names it bag_corrected, Table 1 has both."""
    cohort = read_cohort(small_cohort_csv)
    results = analyze(cohort, AnalysisOptions(bias_correction="linear", match_covariates=("sex", "age")))
    tidy = results.tidy()
    fit = tidy[tidy.analysis == "bias_correction"].set_index(["subset", "statistic"])["value"]
    assert {("controls", "slope"), ("controls", "intercept"), ("controls", "n"), ("HC", "mae_before"),
            ("HC", "mae_after"), ("HC", "r_before"), ("HC", "r_after")} <= set(fit.index)
    table1 = tidy[(tidy.analysis == "table1") & (tidy.statistic == "mean")]
    raw = table1[table1.term == "bag"].set_index("subset")["value"]
    corrected = table1[table1.term == "bag_corrected"].set_index("subset")["value"]
    data = results.cohort.data
    assert raw["NMOSD"] == pytest.approx((data.brain_age - data.age)[data.group == "NMOSD"].mean())
    assert corrected["NMOSD"] == pytest.approx(data.loc[data.group == "NMOSD", "bag"].mean())
    assert raw["NMOSD"] != pytest.approx(corrected["NMOSD"])
    assert "bag" not in set(tidy[tidy.analysis.isin(["regression", "psm", "bag_group_lm"])].term)
    assert (tidy.term == "bag_corrected").sum() > 50
    stated = dict(results.provenance.extra)["brain age gap"]  # the provenance page states the fit and accuracy
    summary = results.bias_correction
    assert f"{summary.slope:.4g}" in stated and f"{summary.after['mae']:.2f} yr" in stated


def test_calibration_table(small_cohort_csv, tmp_path):
    """--bias-calibration: fitted on the table (R: lm(brain_age ~ age) on it), applied to everybody."""
    rng = np.random.default_rng(5)
    age = rng.uniform(20, 70, 80)
    calibration = pd.DataFrame({"age": age.round(1), "brain_age": (0.8 * age + 9 + rng.normal(0, 4, 80)).round(2)})
    path = tmp_path / "calibration.csv"
    calibration.to_csv(path, index=False)
    cohort = read_cohort(small_cohort_csv)
    corrected = correct_cohort(cohort, AnalysisOptions(bias_correction="linear", bias_calibration=str(path)))
    theirs = r_corner("bias", calibration.assign(control=1, fold=np.nan), tmp_path, "linear")
    assert corrected.bias_correction["slope"] == pytest.approx(theirs["slope"], rel=1e-9)
    assert corrected.bias_correction["fitted_on"] == "calibration"
    a, b = theirs["slope"], theirs["intercept"]
    data = cohort.data
    np.testing.assert_allclose(corrected.data["bag"], (data.brain_age - b) / a - data.age, rtol=1e-9)
    assert corrected.inputs["bias calibration"] == str(path)


def test_bad_requests_are_errors(small_cohort_csv, tmp_path):
    no_control = read_cohort(small_cohort_csv, control=None)
    with pytest.raises(BagkitError, match="fitted on the controls, but the cohort has none"):
        analyze(no_control, AnalysisOptions(bias_correction="linear"))
    bad = tmp_path / "calibration.csv"
    bad.write_text("age,predicted\n30,31\n40,44\n50,52\n")
    with pytest.raises(BagkitError, match=r"calibration.csv: column\(s\) brain_age not found"):
        correct_cohort(read_cohort(small_cohort_csv), AnalysisOptions(bias_correction="bag",
                                                                      bias_calibration=str(bad)))
    with pytest.raises(BagkitError, match="unknown bias correction 'cole'"):
        correct_cohort(read_cohort(small_cohort_csv), AnalysisOptions(bias_correction="cole"))


def test_report_shows_the_new_numbers_with_their_r_equivalents(small_cohort_csv, tmp_path):
    """End to end (the PDF): bias correction, age-adjusted comparison, matched-set effect, ROC
    direction and cutoff comparison, forest plot — each with the R call named beside it."""
    from pypdf import PdfReader
    from test_roc_direction import _cohort_with_followup

    cohort = _cohort_with_followup(small_cohort_csv, tmp_path)
    options = AnalysisOptions(bias_correction="linear", match_covariates=("sex", "age_at_diagnosis", "edss"))
    written = analyze(cohort, options).write(tmp_path / "out")
    text = " ".join(" ".join(page.extract_text().split()) for page in PdfReader(written.pdf).pages)
    for expected in ("Age-bias correction (linear)", "Brain age gap, uncorrected", "Before correction",
                     "adjusted for age", "lm(bag ~ group + age)", "pair-clustered", "sandwich::vcovCL",
                     "Positive when", "BAG >", "Higher BAG marks EDSS worsening", "Forest plot",
                     "exp(confint(fit))", "cross-fitting"):
        assert expected in text, expected
    results = pd.read_csv(written.results_csv)
    assert {"bias_correction", "bag_group_lm", "psm_effect"} <= set(results.analysis)
    assert (written.out / "figures" / "forest.png").is_file()
