"""Regressions, subgroup t-tests and center ANOVAs against R (``r/reference/regression_reference.R``).

Tolerance: 1e-8 relative for every number (β, SE, t, p, CI, r, R², F, t-test and ANOVA results).
Both sides solve the same least-squares problems in closed form (QR / sums of squares); only
floating-point rounding differs. Counts and degrees of freedom must agree exactly.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rtools import EXAMPLE_COHORT, EXAMPLE_VISITS, ROOT, rscript

from bagkit.analyses.outcomes import run_regressions
from bagkit.cohort import read_cohort
from bagkit.errors import AnalysisError
from bagkit.stats.regression import center_anova, simple_regression, subgroup_t_test

SCRIPT = str(ROOT / "r" / "reference" / "regression_reference.R")


def reference(cohort, tmp_path) -> pd.DataFrame:
    path = tmp_path / "cohort_data.csv"
    cohort.data.to_csv(path, index=False)
    rscript(SCRIPT, str(path), str(tmp_path / "reg_ref.csv"), cohort.control)
    out = pd.read_csv(tmp_path / "reg_ref.csv", comment="#", keep_default_na=False, dtype={"contrast": str,
                                                                                          "term": str})
    out["value"] = pd.to_numeric(out["value"])
    return out


def compare(ours: pd.DataFrame, theirs: pd.DataFrame) -> int:
    keys = ["analysis", "subset", "term", "contrast", "statistic"]
    merged = theirs.merge(ours, on=keys, how="left", suffixes=("_r", "_py"))
    missing = merged[merged["value_py"].isna()]
    assert missing.empty, missing
    for _, row in merged.iterrows():
        assert row["value_py"] == pytest.approx(row["value_r"], rel=1e-8, abs=1e-300), row.to_dict()
    return len(merged)


def test_small_cohort_matches_r(small_cohort_csv, tmp_path):
    """The synthetic three-group cohort (tests/conftest.py), per patient group::

        lm(bag ~ edss); lm(bag ~ nbv); cor.test(x, bag)          # beta, se, t, p, confint, r, R², F
        lm(edss ~ bag + nbv + disease_duration)                   # Supplementary Table 3
        lm(brain_age_sd ~ bag)                                    # every group
        t.test(bag[aqp4 == "pos"], bag[aqp4 == "neg"], var.equal = TRUE)
        t.test(bag[lesion_volume_ml > 0], bag[lesion_volume_ml == 0], var.equal = TRUE)
        summary(aov(bag ~ factor(center)))                        # per group
        anova(lm(bag ~ factor(group) + factor(center)))           # all groups, center after group
    """
    cohort = read_cohort(small_cohort_csv)
    n = compare(run_regressions(cohort).tidy(), reference(cohort, tmp_path))
    assert n > 150


@pytest.mark.skipif(not EXAMPLE_COHORT.exists(), reason="examples/cohort.csv not generated yet "
                    "(python examples/make_example_cohort.py)")
def test_example_cohort_matches_r(tmp_path):
    """The example cohort, the same R calls as :func:`test_small_cohort_matches_r`."""
    cohort = read_cohort(EXAMPLE_COHORT, visits=EXAMPLE_VISITS if EXAMPLE_VISITS.exists() else None)
    assert compare(run_regressions(cohort).tidy(), reference(cohort, tmp_path)) > 150


def test_nbv_beta_is_per_unit():
    """β of BAG on nbv is per unit of normalized brain volume (the paper's −48.5), not per %."""
    rng = np.random.default_rng(2)
    nbv = rng.normal(0.75, 0.04, 200)
    data = pd.DataFrame({"nbv": nbv, "bag": -50 * nbv + rng.normal(0, 1, 200)})
    model = simple_regression(data, "bag", "nbv", "NMOSD")
    assert model.coefficient("nbv").beta == pytest.approx(-50, abs=3)
    assert model.formula == "bag ~ nbv"


def test_constant_predictor_is_named():
    data = pd.DataFrame({"bag": np.arange(10.0), "edss": 2.0})
    with pytest.raises(AnalysisError, match="edss is constant"):
        simple_regression(data, "bag", "edss", "NMOSD")


def test_too_few_rows_is_named():
    data = pd.DataFrame({"bag": [1.0, 2.0], "edss": [1.0, np.nan]})
    with pytest.raises(AnalysisError, match="at least 3 complete rows; found 1"):
        simple_regression(data, "bag", "edss", "NMOSD")


def test_subgroup_needs_two_per_side():
    with pytest.raises(AnalysisError, match="at least 2 subjects in each subgroup; found 1 and 3"):
        subgroup_t_test([1.0], [1.0, 2.0, 3.0], ("aqp4=pos", "aqp4=neg"), "NMOSD")


def test_one_center_is_named():
    data = pd.DataFrame({"group": "NMOSD", "center": "C1", "bag": np.arange(5.0)})
    with pytest.raises(AnalysisError, match="at least two centers; found 1"):
        center_anova(data, "NMOSD")


def test_missing_parts_become_notes(small_cohort_csv, tmp_path):
    """A patient group with every lesion volume > 0 cannot be split: a note, the rest still made."""
    frame = pd.read_csv(small_cohort_csv)
    frame.loc[frame.group == "RRMS", "lesion_volume_ml"] = 3.0
    frame["aqp4"] = np.where(frame.group == "NMOSD", "pos", "")
    path = tmp_path / "c.csv"
    frame.to_csv(path, index=False)
    result = run_regressions(read_cohort(path))
    assert any("RRMS: brain lesions vs none skipped" in n and "found 40 and 0" in n for n in result.notes)
    assert any("AQP4 pos vs neg skipped" in n for n in result.notes)
    assert result.model("RRMS", "bag ~ edss") is not None
