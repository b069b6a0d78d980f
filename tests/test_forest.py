"""The forest plot of Table 3 (issue 13, section 5): its numbers are the Cox results of Table 3, and
those equal R's ``coxph`` (``r/reference/survival_reference.R fit``, as tests/test_survival.py):

    coxph(Surv(time, event) ~ x, ties = "efron")                 # each covariate (univariable)
    coxph(Surv(time, event) ~ x1 + ... + x6, ties = "efron")      # multivariable
    summary(fit)$conf.int[, c("exp(coef)", "lower .95", "upper .95")]

Tolerance 1e-6 relative (as tests/test_survival.py: the same Newton–Raphson optimum).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_roc_direction import _cohort_with_followup
from test_survival import reference

from bagkit.analyses.outcomes import run_outcomes
from bagkit.plots.forest import forest_figure, forest_rows
from bagkit.stats.survival import COX_COVARIATES


def test_forest_rows_are_table3_and_match_r(small_cohort_csv, tmp_path):
    cohort = _cohort_with_followup(small_cohort_csv, tmp_path)
    outcomes = run_outcomes(cohort)
    rows = forest_rows(outcomes)
    assert set(rows["group"]) == {"NMOSD", "RRMS"} and set(rows["kind"]) == {"univariable", "multivariable"}
    frames = []
    for group in ("NMOSD", "RRMS"):
        part = cohort.group(group)
        part = part[part["worsening"].notna()]
        frames.append(part[list(COX_COVARIATES)].assign(subset=group, time=part["followup_years"],
                                                        event=part["worsening"]))
    theirs = reference(pd.concat(frames), COX_COVARIATES, tmp_path, strata=False)
    theirs = theirs[theirs.statistic.isin(["hr", "ci_low", "ci_high"])]
    assert len(theirs) == 3 * len(rows)
    for _, r in theirs.iterrows():
        kind = r["analysis"].removeprefix("cox_")
        mine = rows[(rows.group == r["subset"]) & (rows.term == r["term"]) & (rows.kind == kind)]
        assert mine[r["statistic"]].item() == pytest.approx(r["value"], rel=1e-6), r.to_dict()


def test_forest_figure_draws_the_rows(small_cohort_csv, tmp_path):
    outcomes = run_outcomes(_cohort_with_followup(small_cohort_csv, tmp_path))
    fig = forest_figure(outcomes)
    rows = forest_rows(outcomes)
    drawn = []
    for ax in fig.axes:
        for line in ax.lines:
            x = line.get_xdata()
            if len(x) and line.get_marker() in ("o", "s"):
                drawn += list(np.asarray(x, float))
    np.testing.assert_allclose(sorted(drawn), sorted(rows["hr"]))
    assert [ax.get_xscale() for ax in fig.axes] == ["log", "log"]
