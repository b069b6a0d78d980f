"""The effect after matching and Welch's t-test (issue 13, section 3), against R run by Rscript.

R: the matching by ``r/reference/matching_reference.R`` (MatchIt run by Rscript, as
tests/test_matching.py), then on R's own matched set and subclasses
(``r/reference/corners_reference.R psm_effect``), MatchIt's vignette "Estimating Effects After
Matching"::

    fit <- lm(bag ~ treat, data = md, weights = weights)          # and + the covariates
    coeftest(fit, vcov. = vcovCL, cluster = ~subclass); coefci(fit, vcov. = vcovCL, cluster = ~subclass)

and ``t.test(a, b, var.equal = FALSE)`` for Welch.

Tolerances: estimate, SE, t, CI 1e-8 relative (the same R code on the same doubles; bagkit's data
travel through rpy2, the reference's through a CSV with 17 digits); p 1e-8 relative; Welch's t, df,
CI 1e-8 relative (scipy's t distribution against R's pt/qt).
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from test_matching import PAPER_COVARIATES, _paper_like, lalonde_csv, r_matching  # noqa: F401 (fixture)
from test_r_corners import r_corner

from bagkit.analyses import AnalysisOptions
from bagkit.analyses.matching import run_matching
from bagkit.cohort import read_cohort
from bagkit.stats.comparisons import welch_t


def _run(cohort, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_matching(cohort, AnalysisOptions(**options))


def test_psm_effect_matches_sandwich_lmtest(tmp_path):
    csv = _paper_like(tmp_path / "cohort.csv")
    cohort = read_cohort(csv)
    analysis = _run(cohort)
    matched = r_matching(csv, tmp_path, PAPER_COVARIATES, group="group", groups=("NMOSD", "RRMS"))["subjects"]
    data = cohort.data.assign(subject_id=cohort.data.subject_id.astype(str),
                              sex=(cohort.data.sex == "M").astype(float))
    md = matched.rename(columns={"id": "subject_id", "weight": "weights"}).merge(data, on="subject_id")
    theirs = r_corner("psm_effect", md[["bag", "treat", "subclass", "weights", *PAPER_COVARIATES]], tmp_path,
                      ",".join(PAPER_COVARIATES))
    for adjusted, prefix in ((False, ""), (True, "adjusted_")):
        effect = analysis.primary.effect(adjusted=adjusted)
        assert effect.n == theirs["n"] == 240 and effect.clusters == theirs["clusters"] == 120
        for name in ("estimate", "se", "t", "ci_low", "ci_high", "p", "df"):
            assert getattr(effect, name) == pytest.approx(theirs[prefix + name], rel=1e-8), (adjusted, name)
    # the unadjusted estimate is the paper's mean difference; only its SE / CI differ
    assert analysis.primary.effect().estimate == pytest.approx(analysis.primary.difference("bag").diff, rel=1e-10)
    tidy = analysis.tidy()
    rows = tidy[tidy.analysis == "psm_effect"]
    assert set(rows.contrast) == {"NMOSD - RRMS", "NMOSD - RRMS | sex + age_at_diagnosis + edss + nbv"}
    assert {"estimate", "se", "ci_low", "ci_high", "p"} <= set(rows.statistic)
    assert set(rows.subset) == {"matched"} and set(rows.term) == {"bag"}
    if analysis.with_sd is not None:  # the predicted-SD variant gets its own rows
        assert (tidy.analysis == "psm_sd_effect").any()


def test_welch_t_matches_r(tmp_path):
    rng = np.random.default_rng(8)
    a, b = rng.normal(2, 7.1, 45), rng.normal(-3, 12.7, 60)  # the paper's matched SDs
    ours = welch_t(a, b, "A vs B")
    theirs = r_corner("welch", pd.DataFrame({"value": np.r_[a, b], "group": ["A"] * 45 + ["B"] * 60}), tmp_path)
    for name, value in (("t", ours.statistic), ("df", ours.df), ("p", ours.p), ("diff", ours.diff),
                        ("ci_low", ours.ci_low), ("ci_high", ours.ci_high)):
        assert value == pytest.approx(theirs[name], rel=1e-8), name


def test_welch_on_sleep_matches_r(tmp_path):
    """R's sleep data: ``t.test(extra[group == 1], extra[group == 2])`` (Welch, R's default)."""
    from test_r_corners import r_export

    frame = r_export("sleep", tmp_path)
    ours = welch_t(frame.value[frame.group == "drug1"], frame.value[frame.group == "drug2"], "drug1 vs drug2")
    theirs = r_corner("welch", frame, tmp_path)
    for name, value in (("t", ours.statistic), ("df", ours.df), ("p", ours.p), ("ci_low", ours.ci_low),
                        ("ci_high", ours.ci_high)):
        assert value == pytest.approx(theirs[name], rel=1e-8), name


def test_welch_option_reaches_table2(tmp_path):
    """``--welch``: Table 2's BAG difference is ``t.test(bag[A], bag[B], var.equal = FALSE)`` on the
    matched subjects."""
    cohort = read_cohort(_paper_like(tmp_path / "cohort.csv"))
    table = _run(cohort, welch=True).primary
    comparison = table.difference("bag")
    assert comparison.method == "Welch's t-test"
    matched = table.matching.matched_cohort.data
    theirs = r_corner("welch", pd.DataFrame({"value": matched["bag"], "group": matched["group"]}), tmp_path)
    assert comparison.statistic == pytest.approx(theirs["t"], rel=1e-8)
    assert comparison.df == pytest.approx(theirs["df"], rel=1e-8)
    assert comparison.p == pytest.approx(theirs["p"], rel=1e-8)


def test_psm_effect_on_lalonde_matches_r(lalonde_csv, tmp_path):  # noqa: F811 (the fixture)
    """MatchIt::lalonde, the effect of the training programme on re78 after 1:1 nearest matching on
    age, educ, married, nodegree, re74, re75 — the example of MatchIt's vignette — with
    pair-clustered SEs: ``coeftest(lm(re78 ~ treat [+ covariates], md, weights), vcovCL, cluster = ~subclass)``."""
    from test_matching import lalonde_cohort

    from bagkit.stats.effects import matched_effect
    from bagkit.stats.matching import match_groups

    covariates = ("age", "educ", "married", "nodegree", "re74", "re75")
    cohort = lalonde_cohort(lalonde_csv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        matching = match_groups(cohort, ("treated", "control"), covariates)
    subjects = r_matching(lalonde_csv, tmp_path, covariates, treat="treat")["subjects"]
    data = pd.read_csv(lalonde_csv, dtype={"subject_id": str}, float_precision="round_trip")
    md = subjects.rename(columns={"id": "subject_id", "weight": "weights"}).merge(
        data.drop(columns="treat"), on="subject_id").rename(columns={"re78": "bag"})
    theirs = r_corner("psm_effect", md[["bag", "treat", "subclass", "weights", *covariates]], tmp_path,
                      ",".join(covariates))
    for adjusted, prefix in ((False, ""), (True, "adjusted_")):
        effect = matched_effect(matching, "re78", adjust=adjusted)
        assert effect.n == theirs["n"] == 370
        for name in ("estimate", "se", "t", "ci_low", "ci_high", "p", "df"):
            assert getattr(effect, name) == pytest.approx(theirs[prefix + name], rel=1e-8), (adjusted, name)
