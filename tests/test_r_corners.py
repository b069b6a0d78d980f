"""Five corners where bagkit once parted from R, each checked against R run in the test
(``r/reference/corners_reference.R``, ``regression_reference.R``, ``matching_reference.R``) on data
made here.

1. log-rank with a stratum that has no expected events: ``survdiff`` leaves it out of the df;
2. KM median CI when the band turns back: ``quantile(survfit(...))`` (``findq``) still gives a limit;
3. times equal up to floating-point error: ``aeqSurv`` merges them before survfit, survdiff, coxph
   and cox.zph;
4. centre ANOVA with centres nested in groups: ``anova(lm(bag ~ group + center))`` on a
   rank-deficient design (df are ranks);
5. a user's own numeric covariate: read as a number, Table 2's mean ± SD row equal to R's
   matched-set means (MatchIt's ``summary(m)$sum.matched``).

Tolerances: log-rank chi-square and p 1e-10 relative (closed-form sums); KM medians and limits
exact (they are data times or midpoints); Cox coef 1e-6 and cox.zph 1e-5 relative (as
tests/test_survival.py: the same Newton–Raphson optimum); ANOVA 1e-8 relative (least squares);
matched means 1e-10 relative (the same doubles averaged).
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from rtools import ROOT, rscript
from test_matching import lalonde_csv  # noqa: F401 (a fixture)

from bagkit.cohort import read_cohort
from bagkit.errors import AnalysisError
from bagkit.stats.regression import center_anova
from bagkit.stats.survival import compare_strata, cox_model, equalize_times, kaplan_meier, logrank

CORNERS = str(ROOT / "r" / "reference" / "corners_reference.R")


def r_export(name: str, tmp_path) -> pd.DataFrame:
    """A public R data set, exported by ``corners_reference.R export NAME``."""
    path = tmp_path / f"{name}.csv"
    rscript(CORNERS, "export", name, str(path))
    return pd.read_csv(path, float_precision="round_trip")


def r_corner(command: str, frame: pd.DataFrame, tmp_path, *args: str) -> pd.Series:
    """Run one command of corners_reference.R on ``frame``; R's numbers by name (NA as NaN)."""
    source, out = tmp_path / f"{command}_in.csv", tmp_path / f"{command}_out.csv"
    frame.to_csv(source, index=False)  # 17 significant digits: doubles round-trip
    rscript(CORNERS, command, str(source), str(out), *args)
    table = pd.read_csv(out, comment="#", float_precision="round_trip")
    return table.set_index("name")["value"].astype(float)


# 1 --------------------------------------------------------------------------------------------
def test_logrank_leaves_out_a_stratum_without_expected_events(tmp_path):
    """``survdiff(Surv(time, event) ~ stratum)``: stratum c is censored before the first event, so
    E = 0 for it and R's df is 1, not 2 (``sum(sd$exp > 0) - 1``; p = ``sd$pvalue``)."""
    rng = np.random.default_rng(11)
    frame = pd.DataFrame({
        "time": np.r_[rng.uniform(1, 10, 25).round(2), rng.uniform(1, 10, 25).round(2), [0.1, 0.2, 0.3, 0.4]],
        "event": np.r_[rng.uniform(size=25) < 0.6, rng.uniform(size=25) < 0.3, np.zeros(4, bool)].astype(float),
        "stratum": ["a"] * 25 + ["b"] * 25 + ["c"] * 4})
    assert frame.loc[frame.event == 1, "time"].min() > 0.4
    chisq, df, p = logrank(frame.time, frame.event, frame.stratum)
    theirs = r_corner("logrank", frame, tmp_path)
    assert df == theirs["df"] == 1
    assert chisq == pytest.approx(theirs["chisq"], rel=1e-10)
    assert p == pytest.approx(theirs["p"], rel=1e-10)
    # the same through compare_strata (the Kaplan–Meier section's tidy rows)
    tidy = compare_strata(frame.time, frame.event, frame.stratum, "NMOSD").tidy().set_index("statistic")
    assert tidy.loc["logrank_df", "value"] == 1 and tidy.loc["logrank_p", "value"] == pytest.approx(p)


def test_logrank_two_strata_one_without_expected_events(tmp_path):
    """Two strata, one with E = 0: R says ``Chisq = 0 on 0 degrees of freedom, p = 1``."""
    frame = pd.DataFrame({"time": [1.0, 2, 3, 4, 5, 6, 0.5, 0.6], "event": [1.0, 1, 0, 1, 1, 0, 0, 0],
                          "stratum": list("aaaaaabb")})
    theirs = r_corner("logrank", frame, tmp_path)
    assert logrank(frame.time, frame.event, frame.stratum) == (theirs["chisq"], theirs["df"], theirs["p"]) \
        == (0.0, 0, 1.0)


# 2 --------------------------------------------------------------------------------------------
def test_km_median_upper_limit_when_the_band_turns_back(tmp_path):
    """70 events in a row, 28 censorings, then 1 event among the last 2 at risk: the upper band
    (conf.type "log") crosses 0.5 at t = 61, rises back above it after the last event (se jumps).
    ``quantile(survfit(Surv(time, event) ~ 1), 0.5)`` still gives 61 as the upper limit."""
    time = np.r_[np.arange(1.0, 71.0), 71.0 + np.arange(28.0), [100.0, 101.0]]
    event = np.r_[np.ones(70), np.zeros(28), [1.0, 0.0]]
    curve = kaplan_meier(time, event)
    assert (1 - curve.upper)[-1] < 0.5 < (1 - curve.upper).max()  # the band does turn back
    theirs = r_corner("km", pd.DataFrame({"time": time, "event": event}), tmp_path)
    assert (curve.median, curve.median_ci_low, curve.median_ci_high) == \
        (theirs["median"], theirs["ci_low"], theirs["ci_high"]) == (50.5, 42.0, 61.0)


def test_km_limits_on_random_curves_match_r(tmp_path):
    """Ten small random data sets (many with non-monotone bands): median and both limits as R's."""
    rng = np.random.default_rng(3)
    frames = []
    for k in range(10):
        n = int(rng.integers(8, 40))
        frames.append(pd.DataFrame({"time": rng.exponential(5, n).round(1) + 0.1,
                                    "event": (rng.uniform(size=n) < rng.uniform(0.3, 0.9)).astype(float)}))
    theirs = r_corner("km", pd.concat([f.assign(set=f"s{k}") for k, f in enumerate(frames)]), tmp_path)
    for k, frame in enumerate(frames):
        curve = kaplan_meier(frame.time, frame.event)
        for ours, name in ((curve.median, "median"), (curve.median_ci_low, "ci_low"),
                           (curve.median_ci_high, "ci_high")):
            r = theirs[f"{name}_s{k}"]
            assert (np.isnan(ours) and np.isnan(r)) or ours == pytest.approx(r, abs=1e-9), (k, name, ours, r)


@pytest.mark.parametrize("name", ["km-aml", "km-ovarian", "km-veteran", "km-lung"])
def test_km_limits_on_public_data_match_r(name, tmp_path):
    """survival's aml, ovarian, veteran and lung: ``quantile(survfit(Surv(time, event) ~ 1), 0.5)``."""
    frame = r_export(name, tmp_path)
    curve = kaplan_meier(frame.time, frame.event)
    theirs = r_corner("km", frame, tmp_path)
    for ours, key in ((curve.median, "median"), (curve.median_ci_low, "ci_low"), (curve.median_ci_high, "ci_high")):
        assert (np.isnan(ours) and np.isnan(theirs[key])) or ours == pytest.approx(theirs[key], abs=1e-9), key


# 3 --------------------------------------------------------------------------------------------
def _near_ties(seed: int = 5, n: int = 80) -> pd.DataFrame:
    """Follow-up as if computed from dates: half of the times carry a rounding error of ~1e-12
    relative (``sqrt(2)^2`` against ``2``), so pairs of equal times differ in the last bits."""
    rng = np.random.default_rng(seed)
    base = rng.integers(1, 25, n) / 4.0
    noisy = np.where(np.arange(n) % 2 == 0, base, base * (1 + 3e-12))
    noisy[:4] = [np.sqrt(2) ** 2, 2.0, np.sqrt(3) ** 2, 3.0]
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    event = (rng.uniform(size=n) < 1 / (1 + np.exp(-x1))).astype(float)
    return pd.DataFrame({"time": noisy, "event": event, "x1": x1, "x2": x2,
                         "stratum": np.where(x2 > 0, "above", "below")})


def test_equalize_times_is_aeqsurv():
    time = np.array([2.0, np.sqrt(2) ** 2, 3.0, 3.0 + 1e-9, 3.0 + 2e-9, 5.0, np.nan])
    out = equalize_times(time)
    assert list(out[:6]) == [2.0, 2.0, 3.0, 3.0, 3.0, 5.0] and np.isnan(out[6])
    assert len(np.unique(_near_ties()["time"])) > len(np.unique(equalize_times(_near_ties()["time"])))


def test_near_equal_times_logrank_km_cox_zph_match_r(tmp_path):
    """``survdiff``, ``survfit`` and ``coxph`` + ``cox.zph`` with their default ``timefix = TRUE``
    on times that are equal only up to floating-point error."""
    frame = _near_ties()
    chisq, df, p = logrank(frame.time, frame.event, frame.stratum)
    theirs = r_corner("logrank", frame[["time", "event", "stratum"]], tmp_path)
    assert (df, chisq, p) == (theirs["df"], pytest.approx(theirs["chisq"], rel=1e-10),
                              pytest.approx(theirs["p"], rel=1e-10))
    curve = kaplan_meier(frame.time, frame.event)
    km = r_corner("km", frame[["time", "event"]], tmp_path)
    assert (curve.median, curve.median_ci_low, curve.median_ci_high) == tuple(km[["median", "ci_low", "ci_high"]])
    model = cox_model(frame.time, frame.event, frame[["x1", "x2"]], "NMOSD")
    cox = r_corner("cox", frame[["time", "event", "x1", "x2"]], tmp_path)
    for term in model.terms:
        assert term.coef == pytest.approx(cox[f"coef_{term.term}"], rel=1e-6)
        assert term.zph_chisq == pytest.approx(cox[f"zph_chisq_{term.term}"], rel=1e-5)
        assert term.zph_p == pytest.approx(cox[f"zph_p_{term.term}"], rel=1e-5)
    assert model.zph_global_chisq == pytest.approx(cox["zph_global_chisq"], rel=1e-5)
    assert model.zph_global_p == pytest.approx(cox["zph_global_p"], rel=1e-5)


# 4 --------------------------------------------------------------------------------------------
def _nested(small_cohort_csv, tmp_path):
    frame = pd.read_csv(small_cohort_csv)
    frame.loc[frame.group == "HC", "center"] = "C9"  # the controls all come from C9, and C9 has only controls
    path = tmp_path / "nested.csv"
    frame.to_csv(path, index=False)
    return read_cohort(path)


def test_center_anova_with_a_center_of_controls_only_matches_r(small_cohort_csv, tmp_path):
    """Center C9 holds all the controls and only them: the design of ``lm(bag ~ group + center)`` is
    rank-deficient (C9's column is aliased with the HC group) and R's df for center is its rank gain,
    2, not 3 (statsmodels' ``anova_lm`` counted 3 columns and gave another F and p).
    ``anova(lm(bag ~ factor(group) + factor(center)))["factor(center)", ]``."""
    cohort = _nested(small_cohort_csv, tmp_path)
    ours = center_anova(cohort.data, "all", adjust_for_group=True)
    theirs = r_corner("center", cohort.data[["bag", "group", "center"]], tmp_path)
    assert (ours.df_between, ours.df_within) == (theirs["df"], theirs["df_residual"]) == (2, 125)  # not 3
    assert ours.f == pytest.approx(theirs["f"], rel=1e-8)
    assert ours.p == pytest.approx(theirs["p"], rel=1e-8)


def test_chickweight_chicks_nested_in_diets_match_r(tmp_path):
    """R's ChickWeight: each chick is on one diet, so ``anova(lm(weight ~ Diet + Chick))`` has chick
    df 50 − 4 = 46, not 49 (the design is rank-deficient)."""
    frame = r_export("ChickWeight", tmp_path)
    ours = center_anova(frame, "all", adjust_for_group=True)
    theirs = r_corner("center", frame, tmp_path)
    assert (ours.df_between, ours.df_within) == (theirs["df"], theirs["df_residual"]) == (46, 528)
    assert ours.f == pytest.approx(theirs["f"], rel=1e-8)
    assert ours.p == pytest.approx(theirs["p"], rel=1e-8)


def test_centers_wholly_within_groups_are_named():
    """Every center inside one group: R's anova has no center row; bagkit says why."""
    data = pd.DataFrame({"group": ["A"] * 6 + ["B"] * 6, "center": ["C1"] * 6 + ["C2"] * 6,
                         "bag": np.arange(12.0)})
    with pytest.raises(AnalysisError, match="every center lies within one group"):
        center_anova(data, "all", adjust_for_group=True)


# 5 --------------------------------------------------------------------------------------------
def test_lalonde_own_columns_are_numbers_with_table2_rows_equal_to_matchit(lalonde_csv, tmp_path):  # noqa: F811
    """MatchIt::lalonde read as a cohort table (a group column added): educ, re74, re75 are not
    bagkit columns, are read as numbers, can be matched on, and Table 2's rows for them equal
    MatchIt's matched-set means (``summary(m)$sum.matched``)."""
    from test_matching import r_matching

    from bagkit.analyses.matching import table2
    from bagkit.stats.matching import match_groups

    frame = pd.read_csv(lalonde_csv, dtype={"subject_id": str})
    frame.insert(1, "group", np.where(frame.treat == 1, "treated", "control"))
    path = tmp_path / "lalonde_cohort.csv"
    frame.to_csv(path, index=False)
    cohort = read_cohort(path, control=None)
    covariates = ("age", "educ", "re74", "re75")
    assert all(cohort.data[c].dtype == float for c in ("educ", "re74", "re75", "re78"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = table2(cohort, match_groups(cohort, ("treated", "control"), covariates))
    means = r_matching(path, tmp_path, covariates, treat="treat")["balance_matched"].set_index("term")
    for covariate in ("educ", "re74", "re75"):
        row = table.table.row(covariate)
        assert row.per_group["treated"]["mean"] == pytest.approx(means.loc[covariate, "mean_treated"], rel=1e-10)
        assert row.per_group["control"]["mean"] == pytest.approx(means.loc[covariate, "mean_control"], rel=1e-10)



def test_own_numeric_covariate_table2_row_equals_r_matched_means(tmp_path):
    """An extra column ``moca`` (not a bagkit column) is read as a number; matched on with
    ``--covariates sex,age_at_diagnosis,moca``, Table 2 has a mean ± SD row for it whose means
    equal MatchIt's ``summary(m)$sum.matched[c("Means Treated", "Means Control")]`` and whose
    difference equals ``t.test(moca[A], moca[B], var.equal = TRUE)`` on the matched sets."""
    from test_matching import r_matching

    from bagkit.analyses.matching import table2
    from bagkit.stats.matching import match_groups

    rng = np.random.default_rng(9)
    n = 60
    frame = pd.DataFrame({
        "subject_id": [f"s{i:03d}" for i in range(2 * n)], "group": ["NMOSD"] * n + ["RRMS"] * n,
        "age": rng.uniform(20, 60, 2 * n).round(1), "sex": rng.choice(["F", "M"], 2 * n),
        "age_at_diagnosis": rng.uniform(18, 55, 2 * n).round(1),
        "moca": np.r_[rng.normal(25, 2, n), rng.normal(27, 2, n)].round(1),
        "site_note": rng.choice(["scanner A", "scanner B"], 2 * n),
        "brain_age": rng.uniform(20, 70, 2 * n).round(2)})
    path = tmp_path / "own.csv"
    frame.to_csv(path, index=False)
    cohort = read_cohort(path, control=None)
    assert cohort.data["moca"].dtype == float and cohort.data["site_note"].dtype == object
    covariates = ("sex", "age_at_diagnosis", "moca")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = table2(cohort, match_groups(cohort, ("NMOSD", "RRMS"), covariates))
    reference = r_matching(path, tmp_path, covariates, group="group", groups=("NMOSD", "RRMS"),
                           compare=("moca",))
    means = reference["balance_matched"].set_index("term").loc["moca"]
    row = table.table.row("moca")
    assert row.per_group["NMOSD"]["mean"] == pytest.approx(means["mean_treated"], rel=1e-10)
    assert row.per_group["RRMS"]["mean"] == pytest.approx(means["mean_control"], rel=1e-10)
    test = row.test("NMOSD vs RRMS")
    assert test.diff == pytest.approx(reference["ttest"].set_index("variable").loc["moca", "diff"], rel=1e-8)
    tidy = table.tidy()
    assert len(tidy.query("term == 'moca' and subset == 'NMOSD' and statistic == 'sd'")) == 1


def test_lung_in_years_from_two_computations_matches_r(tmp_path):
    """survival::lung with follow-up in years computed two ways (``days / 365.25`` for half the
    subjects, ``days * (1 / 365.25)`` for the others, as two date pipelines would): equal days give
    times equal only up to floating-point error. survdiff / survfit / coxph + cox.zph by sex, as R."""
    from test_survival import export

    data = export("lung", tmp_path)
    years = np.where(np.arange(len(data)) % 2 == 0, data.time / 365.25, data.time * (1 / 365.25))
    assert len(np.unique(years)) > len(np.unique(data.time))  # some equal days now differ in the last bit
    frame = pd.DataFrame({"time": years, "event": data.event, "x1": data.age, "x2": data.sex,
                          "stratum": np.where(data.sex == 1, "male", "female")})
    chisq, df, p = logrank(frame.time, frame.event, frame.stratum)
    theirs = r_corner("logrank", frame[["time", "event", "stratum"]], tmp_path)
    assert (df, chisq, p) == (theirs["df"], pytest.approx(theirs["chisq"], rel=1e-10),
                              pytest.approx(theirs["p"], rel=1e-10))
    curve = kaplan_meier(frame.time, frame.event)
    km = r_corner("km", frame[["time", "event"]], tmp_path)
    for ours, name in ((curve.median, "median"), (curve.median_ci_low, "ci_low"), (curve.median_ci_high, "ci_high")):
        assert ours == pytest.approx(km[name], rel=1e-12)
    model = cox_model(frame.time, frame.event, frame[["x1", "x2"]], "all")
    cox = r_corner("cox", frame[["time", "event", "x1", "x2"]], tmp_path)
    for term in model.terms:
        assert term.coef == pytest.approx(cox[f"coef_{term.term}"], rel=1e-6)
        assert term.zph_chisq == pytest.approx(cox[f"zph_chisq_{term.term}"], rel=1e-5)
    assert model.zph_global_p == pytest.approx(cox["zph_global_p"], rel=1e-5)
