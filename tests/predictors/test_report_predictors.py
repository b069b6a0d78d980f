"""The brain_age_model analysis (bagkit.analyses.performance) against R, and its "Brain-age model" PDF section.

Reference (R, run below through Rscript on the same table; ``R_REFERENCE``):

    hc <- d[d$group == "HC", ]; e <- hc$brain_age - hc$age
    mean(abs(e)); mean(e); sd(e); cor.test(hc$age, hc$brain_age)
    tapply(abs(e), hc$center, mean); tapply(e, hc$center, mean)
    cor.test(d$brain_age_sd, d$brain_age - d$age)            # all subjects and per group
    # each predictor column: MAE and cor.test on HC, mean/sd of BAG per group

Tolerances: means and correlations are the same arithmetic in another order, so they agree to
1e-12 (relative); p-values come from different implementations of the t / beta tail (R's pt,
scipy's beta), so 1e-6 relative. Raw-vs-filled Bland–Altman is checked against R in
test_agreement.py.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bagkit
from bagkit.analyses import AnalysisOptions, Results
from bagkit.analyses.performance import model_performance, predictor_columns, run_brain_age_model
from bagkit.analyses.table1 import table1
from bagkit.errors import AnalysisError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "cohort.csv"

R_REFERENCE = r"""
args <- commandArgs(TRUE)
d <- read.csv(args[1], stringsAsFactors = FALSE)
out <- function(k, v) cat(sprintf("%s,%.17g\n", k, as.numeric(v)))
hc <- d[d$group == "HC" & !is.na(d$brain_age), ]
e <- hc$brain_age - hc$age
out("n", length(e)); out("mae", mean(abs(e))); out("mean_error", mean(e)); out("sd_error", sd(e))
ct <- cor.test(hc$age, hc$brain_age); out("pearson_r", ct$estimate); out("pearson_p", ct$p.value)
if ("center" %in% names(d)) {
  m <- tapply(abs(e), hc$center, mean); me <- tapply(e, hc$center, mean); nn <- tapply(e, hc$center, length)
  for (c in names(m)) { out(paste0("mae:", c), m[[c]]); out(paste0("mean_error:", c), me[[c]]); out(paste0("n:", c), nn[[c]]) }
}
if ("brain_age_sd" %in% names(d)) {
  d$bag <- d$brain_age - d$age
  for (g in c("all", unique(d$group))) {
    s <- if (g == "all") d else d[d$group == g, ]
    ct <- cor.test(s$brain_age_sd, s$bag)
    out(paste0("sd_r:", g), ct$estimate); out(paste0("sd_p:", g), ct$p.value)
    out(paste0("sd_n:", g), sum(complete.cases(s$brain_age_sd, s$bag)))
  }
}
for (col in grep("^brain_age_(sfcn|gpr)$", names(d), value = TRUE)) {
  x <- d[d$group == "HC", col]; a <- d[d$group == "HC", "age"]
  out(paste0("mae:", col), mean(abs(x - a)))
  ct <- cor.test(a, x); out(paste0("r:", col), ct$estimate); out(paste0("p:", col), ct$p.value)
  bag <- d[[col]] - d$age
  for (g in unique(d$group)) {
    out(paste0("bag_mean:", col, ":", g), mean(bag[d$group == g])); out(paste0("bag_sd:", col, ":", g), sd(bag[d$group == g]))
  }
}
"""


def r_reference(table: Path) -> dict[str, float]:
    if shutil.which("Rscript") is None:
        pytest.fail("Rscript not found: R is required for the cross-checks (bash scripts/setup.sh installs it)")
    done = subprocess.run(["Rscript", "--vanilla", "-e", R_REFERENCE, str(table)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return {k: float(v) for k, v in (line.split(",") for line in done.stdout.strip().splitlines())}


def _tidy_value(tidy: pd.DataFrame, analysis, subset, contrast, statistic) -> float:
    row = tidy[(tidy.analysis == analysis) & (tidy.subset == subset) & (tidy.contrast == contrast)
               & (tidy.statistic == statistic)]
    assert len(row) == 1, (analysis, subset, contrast, statistic)
    return float(row.value.iloc[0])


def test_model_performance_and_predicted_sd_match_r_on_the_example_cohort():
    cohort = bagkit.read_cohort(EXAMPLE)
    r = r_reference(EXAMPLE)
    model = run_brain_age_model(cohort)
    p = model.performance
    assert p.subset == "HC" and p.n == r["n"]
    for statistic in ("mae", "mean_error", "sd_error", "pearson_r"):
        assert getattr(p, statistic) == pytest.approx(r[statistic], rel=1e-12), statistic
    assert p.pearson_p == pytest.approx(r["pearson_p"], rel=1e-6)
    assert {c for c, *_ in p.by_center} == {k.split(":")[1] for k in r if k.startswith("mae:")}
    for center, n, mae, mean_error in p.by_center:
        assert n == r[f"n:{center}"]
        assert mae == pytest.approx(r[f"mae:{center}"], rel=1e-12)
        assert mean_error == pytest.approx(r[f"mean_error:{center}"], rel=1e-12, abs=1e-12)
    assert [c.subset for c in model.sd_vs_bag] == ["all", *cohort.groups]
    for c in model.sd_vs_bag:
        assert c.n == r[f"sd_n:{c.subset}"]
        assert c.pearson_r == pytest.approx(r[f"sd_r:{c.subset}"], rel=1e-12)
        assert c.pearson_p == pytest.approx(r[f"sd_p:{c.subset}"], rel=1e-6)

    tidy = model.tidy()
    assert _tidy_value(tidy, "model_performance", "HC", "", "mae") == p.mae
    assert _tidy_value(tidy, "model_performance", "HC", "center=C1", "mae") == pytest.approx(r["mae:C1"], rel=1e-12)
    assert _tidy_value(tidy, "predicted_sd", "all", "bag", "pearson_r") == pytest.approx(r["sd_r:all"], rel=1e-12)
    assert _tidy_value(tidy, "agreement", "all", "raw - filled", "n") == cohort.data.brain_age_filled.notna().sum()
    assert set(tidy.columns) == {"analysis", "subset", "term", "contrast", "statistic", "value"}


@pytest.fixture
def two_predictors(tmp_path) -> Path:
    """A cohort with two predictors' brain ages (SFCN-like and GPR-like columns) and the primary one."""
    rng = np.random.default_rng(11)
    n = 120
    group = np.repeat(["HC", "NMOSD", "RRMS"], n // 3)
    age = rng.uniform(20, 70, n)
    shift = pd.Series(group).map({"HC": 0.0, "NMOSD": 5.0, "RRMS": 10.0}).to_numpy()
    sfcn = age + shift + rng.normal(0, 3, n)
    frame = pd.DataFrame({
        "subject_id": [f"s{i:03d}" for i in range(n)], "group": group, "age": age.round(2),
        "center": rng.choice(["A", "B", "C"], n), "brain_age": sfcn.round(3), "brain_age_sd": rng.uniform(2, 6, n).round(3),
        "brain_age_sfcn": sfcn.round(3), "brain_age_gpr": (age + shift + rng.normal(1, 5, n)).round(3),
    })
    path = tmp_path / "two_predictors.csv"
    frame.to_csv(path, index=False)
    return path


def test_predictor_comparison_matches_r(two_predictors):
    cohort = bagkit.read_cohort(two_predictors)
    assert predictor_columns(cohort.data) == {"sfcn": "brain_age_sfcn", "gpr": "brain_age_gpr"}
    model = run_brain_age_model(cohort)
    assert model.predictors == ("sfcn", "gpr")  # brain_age equals brain_age_sfcn: not listed twice
    r = r_reference(two_predictors)
    accuracy = model.comparison.accuracy
    for name in ("sfcn", "gpr"):
        column = f"brain_age_{name}"
        assert accuracy.loc[name, "mae"] == pytest.approx(r[f"mae:{column}"], rel=1e-12)
        assert accuracy.loc[name, "pearson_r"] == pytest.approx(r[f"r:{column}"], rel=1e-12)
        assert accuracy.loc[name, "pearson_p"] == pytest.approx(r[f"p:{column}"], rel=1e-6)
        for group in cohort.groups:
            by_group = model.comparison.bag_by_group.loc[group]
            assert by_group[(name, "mean_bag")] == pytest.approx(r[f"bag_mean:{column}:{group}"], rel=1e-12)
            assert by_group[(name, "sd_bag")] == pytest.approx(r[f"bag_sd:{column}:{group}"], rel=1e-12)
    tidy = model.tidy()
    assert {"model_performance", "predicted_sd", "predictor_accuracy", "predictor_bag", "agreement"} <= set(tidy.analysis)
    assert "sfcn - gpr" in set(tidy.contrast)


def test_partial_cohorts():
    cohort = bagkit.read_cohort(EXAMPLE)
    no_brain_age = dataclasses_replace(cohort, data=cohort.data.drop(columns=["brain_age", "bag"]))
    with pytest.raises(AnalysisError, match="brain_age"):
        run_brain_age_model(no_brain_age)
    patients = cohort.subset(cohort.data.group != "HC")
    model = run_brain_age_model(dataclasses_replace(patients, control=None))
    assert model.performance is None and any("no control group" in n for n in model.notes)
    assert model.filled is not None and model.sd_vs_bag
    with pytest.raises(AnalysisError, match="at least 2 subjects"):
        model_performance(cohort.data.iloc[:1], "HC")


def dataclasses_replace(cohort, **changes):
    import dataclasses

    return dataclasses.replace(cohort, **changes)


def _pdf_text(path: Path) -> list[str]:
    from pypdf import PdfReader

    return [page.extract_text() for page in PdfReader(str(path)).pages]


def _section_pdf(cohort, tmp_path) -> tuple[list[str], Path]:
    from bagkit.report import build_pdf

    results = Results(cohort, AnalysisOptions(), table1(cohort), brain_age_model=run_brain_age_model(cohort))
    figures = tmp_path / "figures"
    figures.mkdir()
    build_pdf(results, tmp_path / "report.pdf", figures)
    return _pdf_text(tmp_path / "report.pdf"), figures


def test_section_in_the_pdf_of_the_example_cohort(tmp_path):
    pytest.importorskip("pypdf")
    from bagkit.report import SECTIONS

    assert [title for title, _ in SECTIONS].index("Brain-age model") == \
        [title for title, _ in SECTIONS].index("Outcomes") + 1
    cohort = bagkit.read_cohort(EXAMPLE)
    pages, figures = _section_pdf(cohort, tmp_path)
    text = "\n".join(pages)
    start = next(i for i, page in enumerate(pages) if "Brain-age model" in page)
    section = "\n".join(pages[start:])
    model = run_brain_age_model(cohort)
    for expected in ("Brain-age model performance on the controls (HC)", "center C1", "Predicted SD of brain age vs BAG",
                     "raw − filled", "Bland–Altman plot of raw minus lesion-filled brain age",
                     f"{model.performance.mae:.2f}", f"{model.performance.pearson_r:.3f}",
                     f"{model.filled.mean_difference:.2f} ± {model.filled.sd_difference:.2f}"):
        assert expected.replace(" ", "") in section.replace(" ", "").replace("\n", ""), expected
    assert "Predictors compared" not in text  # one brain-age column only
    assert (figures / "predicted_sd_bag.png").stat().st_size > 5000
    assert (figures / "bland_altman_filled.png").stat().st_size > 5000


def test_section_shows_the_predictor_comparison(two_predictors, tmp_path):
    pytest.importorskip("pypdf")
    pages, _ = _section_pdf(bagkit.read_cohort(two_predictors), tmp_path)
    text = "\n".join(pages).replace("\n", " ")
    for expected in ("Predictors compared: accuracy on the controls (HC)", "brain age gap per group",
                     "every pair", "sfcn − gpr"):
        assert expected in text, expected
    assert "lesion-filled" not in text  # no brain_age_filled column
