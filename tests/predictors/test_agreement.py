"""Bland–Altman and predictor comparison, checked against R run in the test itself.

Reference (R, run below through Rscript on the same numbers):
    d <- a - b; mean(d); sd(d); mean(d) -/+ 1.96*sd(d)
    mean(d) +/- qt(0.975, n-1)*sd(d)/sqrt(n)                  # CI of the mean difference
    LoA +/- qt(0.975, n-1)*sqrt(3*sd(d)^2/n)                  # Bland & Altman 1999 CIs of the LoA
    cor.test(a, b)$estimate; cor.test(a, b)$p.value; summary(lm(a ~ b))$r.squared
Tolerance 1e-8 relative: both sides do the same double-precision arithmetic.
"""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from bagkit.errors import AnalysisError
from bagkit.plots.agreement import plot_bland_altman
from bagkit.stats.agreement import bland_altman, compare_predictions

R_SCRIPT = """
x <- read.csv(commandArgs(TRUE)[1]); a <- x$a; b <- x$b; n <- length(a); d <- a - b
m <- mean(d); s <- sd(d); t <- qt(0.975, n - 1); lo <- m - 1.96 * s; hi <- m + 1.96 * s
h <- t * sqrt(3 * s^2 / n); ct <- cor.test(a, b)
out <- c(n = n, mean_difference = m, sd_difference = s, lower_limit = lo, upper_limit = hi,
         mean_difference_ci_low = m - t * s / sqrt(n), mean_difference_ci_high = m + t * s / sqrt(n),
         lower_limit_ci_low = lo - h, lower_limit_ci_high = lo + h,
         upper_limit_ci_low = hi - h, upper_limit_ci_high = hi + h,
         pearson_r = unname(ct$estimate), pearson_p = ct$p.value,
         r_squared = summary(lm(a ~ b))$r.squared)
write.csv(data.frame(statistic = names(out), value = sprintf("%.17g", out)), row.names = FALSE)
"""


@pytest.fixture
def paired(tmp_path):
    rng = np.random.default_rng(3)
    raw = rng.uniform(20, 70, 60)
    filled = raw - 0.28 + rng.normal(0, 2.1, 60)  # as the paper's raw vs lesion-filled
    path = tmp_path / "paired.csv"
    pd.DataFrame({"a": raw, "b": filled}).to_csv(path, index=False, float_format="%.17g")
    return raw, filled, path


@pytest.mark.skipif(shutil.which("Rscript") is None, reason="R (Rscript) is not installed")
def test_bland_altman_matches_r(paired, tmp_path):
    raw, filled, path = paired
    script = tmp_path / "ba.R"
    script.write_text(R_SCRIPT)
    out = subprocess.run(["Rscript", str(script), str(path)], capture_output=True, text=True, check=True)
    reference = pd.read_csv(pd.io.common.StringIO(out.stdout)).set_index("statistic")["value"]
    data = pd.read_csv(path)
    result = bland_altman(data.a, data.b, labels=("raw", "filled"))
    ours = result.tidy().set_index("statistic")["value"]
    for statistic, expected in reference.items():
        assert ours[statistic] == pytest.approx(float(expected), rel=1e-8), statistic
    assert result.contrast == "raw - filled"
    assert set(result.tidy().analysis) == {"agreement"}


def test_bland_altman_bad_input():
    with pytest.raises(AnalysisError, match="paired"):
        bland_altman([1, 2, 3], [1, 2], labels=("x", "y"))
    with pytest.raises(AnalysisError, match="at least 3"):
        bland_altman([1, np.nan, 3], [1, 2, np.nan])


def test_plot_uses_a_figure_not_pyplot(paired):
    import matplotlib.pyplot as plt

    raw, filled, _ = paired
    before = plt.get_fignums()
    ax = plot_bland_altman(bland_altman(raw, filled, labels=("raw", "filled")))
    assert plt.get_fignums() == before
    assert ax.figure is not None and len(ax.collections) >= 1


def test_compare_predictions():
    rng = np.random.default_rng(5)
    n = 90
    cohort = pd.DataFrame({"subject_id": [f"s{i}" for i in range(n)], "age": rng.uniform(20, 70, n),
                           "group": np.repeat(["HC", "NMOSD", "RRMS"], n // 3)})
    shift = cohort.group.map({"HC": 0.0, "NMOSD": 5.0, "RRMS": 12.0})
    sfcn = pd.DataFrame({"subject_id": cohort.subject_id, "brain_age": cohort.age + shift + rng.normal(0, 3, n)})
    gpr = pd.DataFrame({"subject_id": cohort.subject_id[::-1].values,
                        "brain_age": (cohort.age + shift + rng.normal(0, 5, n))[::-1].values})
    comparison = compare_predictions({"sfcn": sfcn, "gpr": gpr}, cohort, control="HC")
    controls = cohort.group == "HC"
    assert comparison.accuracy.loc["sfcn", "mae"] == pytest.approx(
        np.mean(np.abs(sfcn.brain_age[controls] - cohort.age[controls])))
    assert comparison.accuracy.loc["sfcn", "n"] == controls.sum()
    gpr_aligned = cohort.subject_id.map(gpr.set_index("subject_id").brain_age)
    assert comparison.agreement[("sfcn", "gpr")].mean_difference == pytest.approx(
        np.mean(sfcn.brain_age - gpr_aligned))
    assert comparison.bag_by_group.loc["RRMS", ("sfcn", "mean_bag")] > comparison.bag_by_group.loc[
        "NMOSD", ("sfcn", "mean_bag")]
    tidy = comparison.tidy()
    assert {"predictor_accuracy", "predictor_bag", "agreement"} <= set(tidy.analysis)
    assert tidy.value.notna().all()
