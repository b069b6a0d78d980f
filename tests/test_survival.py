"""Kaplan–Meier, log-rank and Cox models against R's survival (``r/reference/survival_reference.R``).

Tolerances, and why:
- Cox coef / HR / CI: 1e-6 relative. bagkit (``efron_fit``) and R's coxph both run Newton–Raphson
  on the same Efron partial likelihood to the same optimum; R stops at a relative log-likelihood
  change of 1e-9, bagkit at a Newton decrement of 1e-20, so R's last digits differ by ~1e-9.
- Wald p: 1e-5 relative (a tail probability amplifies the coefficient's last digits).
- cox.zph chi-square and p: 1e-5 relative (a score test evaluated at that optimum, same algebra).
- KM medians and their CIs: 1e-9 absolute (they are data times or midpoints of two).
- log-rank chi-square and p: 1e-8 relative (closed-form sums).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rtools import EXAMPLE_COHORT, EXAMPLE_VISITS, ROOT, rscript

from bagkit.errors import AnalysisError
from bagkit.stats.survival import COX_COVARIATES, compare_strata, cox_design, cox_model, kaplan_meier

SCRIPT = str(ROOT / "r" / "reference" / "survival_reference.R")
TOLERANCE = {"hr": 1e-6, "ci_low": 1e-6, "ci_high": 1e-6, "coef": 1e-6, "se": 1e-6, "p": 1e-5,
             "zph_chisq": 1e-5, "zph_p": 1e-5, "logrank_chisq": 1e-8, "logrank_p": 1e-8}


def export(name: str, tmp_path) -> pd.DataFrame:
    rscript(SCRIPT, "export", name, str(tmp_path / f"{name}.csv"))
    return pd.read_csv(tmp_path / f"{name}.csv")


def reference(frame: pd.DataFrame, covariates, tmp_path, strata: bool = True) -> pd.DataFrame:
    path = tmp_path / "surv_in.csv"
    frame.to_csv(path, index=False)
    rscript(SCRIPT, "fit", str(path), str(tmp_path / "surv_ref.csv"), ",".join(covariates),
            *(["--strata"] if strata else []))
    out = pd.read_csv(tmp_path / "surv_ref.csv", comment="#", keep_default_na=False, dtype={"contrast": str,
                                                                                            "term": str})
    out["value"] = pd.to_numeric(out["value"].replace("NA", np.nan))
    return out


def compare(ours: pd.DataFrame, theirs: pd.DataFrame) -> int:
    keys = ["analysis", "subset", "term", "contrast", "statistic"]
    merged = theirs.merge(ours, on=keys, how="left", suffixes=("_r", "_py"))
    missing = merged[merged["value_py"].isna() & merged["value_r"].notna()]
    assert missing.empty, missing
    for _, row in merged.iterrows():
        r, py = row["value_r"], row["value_py"]
        if np.isnan(r):
            assert np.isnan(py), row.to_dict()  # R's NA (median not reached) is our NaN
        elif row["statistic"] in TOLERANCE:
            assert py == pytest.approx(r, rel=TOLERANCE[row["statistic"]]), row.to_dict()
        else:  # medians, their CIs, counts
            assert py == pytest.approx(r, abs=1e-9), row.to_dict()
    return len(merged)


def ours_for(frame: pd.DataFrame, covariates, strata: bool = True) -> pd.DataFrame:
    parts = []
    for subset, part in frame.groupby("subset", sort=False):
        design = cox_design(part, covariates)
        for c in covariates:
            parts.append(cox_model(part["time"], part["event"], design[[c]], subset, "univariable").tidy())
        parts.append(cox_model(part["time"], part["event"], design, subset, "multivariable").tidy())
        if strata:
            parts.append(compare_strata(part["time"], part["event"], part["stratum"], subset, "bag").tidy())
    return pd.concat(parts, ignore_index=True)


def test_lung_cox_km_logrank_match_r(tmp_path):
    """survival::lung, complete cases, event = status - 1::

        fit <- coxph(Surv(time, event) ~ age + sex + ph.ecog + ph.karno + wt.loss, data = d, ties = "efron")
        summary(fit); cox.zph(fit)                 # and one coxph per covariate (univariable)
        summary(survfit(Surv(time, event) ~ sex, data = d))$table    # median, 0.95LCL, 0.95UCL
        survdiff(Surv(time, event) ~ sex, data = d)

    Published (survfit print on this subset): median 284 [223, 337] for sex 1, 433 [351, 641] for sex 2.
    """
    covariates = ["age", "sex", "ph.ecog", "ph.karno", "wt.loss"]
    data = export("lung", tmp_path)
    data["stratum"] = data["sex"].map({1: "male", 2: "female"})
    n = compare(ours_for(data, covariates), reference(data, covariates, tmp_path))
    assert n > 80
    male = kaplan_meier(data.loc[data.sex == 1, "time"], data.loc[data.sex == 1, "event"])
    assert (male.median, male.median_ci_low, male.median_ci_high) == (284, 223, 337)


def test_veteran_heavy_ties_match_r(tmp_path):
    """survival::veteran (many tied times, so Efron's correction matters)::

        fit <- coxph(Surv(time, status) ~ karno + age + trt + diagtime, data = veteran, ties = "efron")
        summary(fit); cox.zph(fit)
        summary(survfit(Surv(time, status) ~ trt, data = veteran))$table
        survdiff(Surv(time, status) ~ trt, data = veteran)

    The test arm's median, 52.5, is R's midpoint rule for a curve lying exactly at 0.5.
    """
    covariates = ["karno", "age", "trt", "diagtime"]
    data = export("veteran", tmp_path)
    data["stratum"] = data["trt"].map({1: "standard", 2: "test"})
    compare(ours_for(data, covariates), reference(data, covariates, tmp_path))
    test_arm = kaplan_meier(data.loc[data.trt == 2, "time"], data.loc[data.trt == 2, "event"])
    assert test_arm.median == 52.5


def test_veteran_celltype_four_strata_logrank(tmp_path):
    """``survdiff(Surv(time, status) ~ celltype, data = veteran)``: 3 degrees of freedom."""
    data = export("veteran", tmp_path)
    data["stratum"] = data["celltype"]
    theirs = reference(data, ["karno"], tmp_path)
    ours = ours_for(data, ["karno"])
    compare(ours, theirs)
    assert ours.query("statistic == 'logrank_df'")["value"].item() == 3


@pytest.mark.skipif(not EXAMPLE_COHORT.exists(), reason="examples/cohort.csv not generated yet "
                    "(python examples/make_example_cohort.py)")
def test_example_cohort_table3_and_km_match_r(tmp_path):
    """The example cohort's Table 3 and Figure 2C/D: per patient group with follow-up, the paper's six
    covariates (sex male = 1, nbv ×100), univariable and multivariable coxph (Efron) with cox.zph, and
    survfit/survdiff above vs below bagkit's spec80 cutoff (which test_cutoffs checks against pROC)."""
    from bagkit.analyses.outcomes import run_outcomes
    from bagkit.cohort import read_cohort

    cohort = read_cohort(EXAMPLE_COHORT, visits=EXAMPLE_VISITS if EXAMPLE_VISITS.exists() else None)
    outcomes = run_outcomes(cohort)
    frames = []
    for g in outcomes.groups:
        part = cohort.group(g.group)
        part = part[part["worsening"].notna()]
        stratum = np.where(part["bag"] > g.roc.cutoff.threshold, "above", "below")
        frame = part[list(COX_COVARIATES)].assign(subset=g.group, time=part["followup_years"],
                                                  event=part["worsening"], stratum=stratum)
        frames.append(frame.sort_values("stratum"))  # "above" first, as bagkit orders the strata
    theirs = reference(pd.concat(frames), COX_COVARIATES, tmp_path)
    assert compare(outcomes.tidy(), theirs) > 150


def _toy(n=60, events=20, seed=1):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"time": rng.uniform(1, 10, n), "event": 0.0, "x": rng.normal(size=n),
                          "z": rng.normal(size=n)})
    frame.loc[: events - 1, "event"] = 1.0
    return frame


def test_too_few_events_is_named():
    frame = _toy(events=1)
    with pytest.raises(AnalysisError, match="1 event.*at least 2"):
        cox_model(frame.time, frame.event, frame[["x"]], "NMOSD")


def test_all_censored_is_named():
    frame = _toy(events=0)
    with pytest.raises(AnalysisError, match="all censored"):
        cox_model(frame.time, frame.event, frame[["x"]], "NMOSD")
    with pytest.raises(AnalysisError, match="no events"):
        compare_strata(frame.time, frame.event, np.where(frame.x > 0, "above", "below"), "NMOSD")


def test_constant_covariate_is_left_out_with_a_note():
    frame = _toy().assign(c=1.0)
    model = cox_model(frame.time, frame.event, frame[["x", "c"]], "NMOSD")
    assert [t.term for t in model.terms] == ["x"]
    assert any("c is constant in NMOSD" in note for note in model.notes)
    with pytest.raises(AnalysisError, match="every covariate is constant"):
        cox_model(frame.time, frame.event, frame[["c"]], "NMOSD")


def test_low_events_per_variable_warns():
    frame = _toy(events=8)
    model = cox_model(frame.time, frame.event, frame[["x", "z"]], "RRMS")
    assert any("4.0 events per variable" in note for note in model.notes)


def test_non_convergence_is_reported(tmp_path):
    """A covariate equal to the event indicator: at every event time the subject who fails has the
    largest value in the risk set, so the partial likelihood rises without a maximum. R's coxph warns
    "Loglik converged before variable 1; coefficient may be infinite"; bagkit reports converged =
    False and says why. A covariate that merely tracks events (sep = 10·event + noise) has a finite
    maximum in R (7.0003) and in bagkit, and converges."""
    frame = _toy(events=20)
    frame["sep"] = frame["event"].astype(float)
    frame["near"] = frame["event"] * 10 + np.linspace(0, 1, len(frame))
    frame.to_csv(tmp_path / "d.csv", index=False)
    r = rscript("-e", f"library(survival); d <- read.csv('{tmp_path / 'd.csv'}'); "
                "w <- character(); f <- withCallingHandlers(coxph(Surv(time, event) ~ sep, d), "
                "warning = function(x) {{ w <<- conditionMessage(x); invokeRestart('muffleWarning') }}); "
                "g <- coxph(Surv(time, event) ~ near, d); cat(w, '\\n'); cat(format(coef(g), digits = 15), '\\n')")
    warning, near = r.stdout.splitlines()
    assert "coefficient may be infinite" in warning
    model = cox_model(frame.time, frame.event, frame[["sep"]], "NMOSD")
    assert not model.converged
    assert any("not estimable" in n for n in model.notes)
    finite = cox_model(frame.time, frame.event, frame[["near"]], "NMOSD")
    assert finite.converged and not finite.notes
    assert abs(finite.terms[0].coef - float(near)) <= 1e-6 * abs(float(near))


def test_one_stratum_is_named():
    frame = _toy()
    with pytest.raises(AnalysisError, match="falls in one stratum"):
        compare_strata(frame.time, frame.event, np.full(len(frame), "below"), "NMOSD")


def test_numbers_at_risk():
    curve = kaplan_meier([1, 2, 2, 3, 5, 8], [1, 0, 1, 1, 0, 1])
    assert list(curve.at_risk([0, 2, 2.5, 8, 9])) == [6, 5, 3, 1, 0]


def test_outcomes_groups_without_followup_or_events_get_notes(small_cohort_csv, tmp_path):
    """run_outcomes: a group with no follow-up and a group whose follow-up is all censored each get a
    note naming the group; the section is still produced (the report shows the notes)."""
    from bagkit.analyses.outcomes import run_outcomes
    from bagkit.cohort import read_cohort

    frame = pd.read_csv(small_cohort_csv)
    frame["followup_years"] = np.where(frame.group == "NMOSD", 3.0, np.nan)
    frame["worsening"] = np.where(frame.group == "NMOSD", 0.0, np.nan)
    path = tmp_path / "c.csv"
    frame.to_csv(path, index=False)
    outcomes = run_outcomes(read_cohort(path))
    notes = " | ".join(outcomes.all_notes)
    assert "RRMS: no subjects with follow-up" in notes
    assert "NMOSD: no EDSS worsening among 40 subjects with follow-up (all censored)" in notes
    assert set(outcomes.tidy()["analysis"]) == {"followup"}


def test_outcomes_without_followup_columns_is_named(small_cohort_csv):
    from bagkit.analyses.outcomes import run_outcomes
    from bagkit.cohort import read_cohort

    with pytest.raises(AnalysisError, match="no follow-up data.*visits"):
        run_outcomes(read_cohort(small_cohort_csv))


def test_report_shows_table3_and_notes(small_cohort_csv, tmp_path):
    """End to end: analyze + write on a cohort with follow-up gives Table 3, the cutoff table and
    Figure 2 in the PDF and every outcome analysis in results.csv; an all-censored group's note shows."""
    from bagkit.analyses import analyze
    from bagkit.cohort import read_cohort

    rng = np.random.default_rng(4)
    frame = pd.read_csv(small_cohort_csv)
    patient = frame.group == "NMOSD"
    frame["followup_years"] = np.where(frame.group != "HC", np.round(rng.uniform(1, 8, len(frame)), 2), np.nan)
    frame["worsening"] = np.where(patient, (rng.uniform(size=len(frame)) < 0.4).astype(float),
                                  np.where(frame.group == "RRMS", 0.0, np.nan))
    path = tmp_path / "c.csv"
    frame.to_csv(path, index=False)
    written = analyze(read_cohort(path)).write(tmp_path / "out")
    results = pd.read_csv(written.results_csv)
    assert {"roc", "cutoff", "km", "cox_univariable", "cox_multivariable", "regression", "subgroup",
            "center"} <= set(results["analysis"])
    from pypdf import PdfReader  # noqa: E402 (optional; skip the text check without it)
    text = " ".join(page.extract_text() for page in PdfReader(written.pdf).pages)
    for expected in ("Table 3", "Cutoffs of BAG", "Figure 2", "all censored"):
        assert expected in text


def test_all_event_group_is_not_called_all_censored(small_cohort_csv, tmp_path):
    """Every NMOSD subject worsened: ROC cannot be drawn (no one without the event), and the note says
    that — it used to say "all-censored data has no events", the opposite of the data."""
    from bagkit.analyses.outcomes import run_outcomes
    from bagkit.cohort import read_cohort

    frame = pd.read_csv(small_cohort_csv)
    frame["followup_years"] = np.where(frame.group == "NMOSD", np.linspace(0.5, 6, len(frame)), np.nan)
    frame["worsening"] = np.where(frame.group == "NMOSD", 1.0, np.nan)
    path = tmp_path / "c.csv"
    frame.to_csv(path, index=False)
    notes = " | ".join(run_outcomes(read_cohort(path)).all_notes)
    assert "NMOSD: ROC not computed" in notes and "every one of the 40 subjects had the event" in notes, notes
    assert "censored" not in notes.split("NMOSD: ROC not computed")[1].split("|")[0]
