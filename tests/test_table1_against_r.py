"""Every Table 1 number bagkit computes, compared with R's own functions.

The reference is made in the test run itself: ``Rscript r/reference/table1_reference.R`` reads the
same cohort file bagkit reads and writes the tidy long table with ``mean``/``sd``/``min``/``max``,
``t.test(x)$conf.int``, ``quantile(type = 7)``, ``aov`` + ``TukeyHSD``, ``t.test(var.equal = TRUE)``,
``chisq.test`` (Yates for 2 x 2), ``wilcox.test`` and ``kruskal.test`` (see the script's header).
The public data sets are exported from R packages by Rscript in the test; no number is pasted in.

Every row R writes must exist in bagkit's ``table1(cohort).tidy()`` and vice versa (same
``analysis, subset, term, contrast, statistic`` keys), and the values must agree:

* estimates (means, SDs, quantiles, CIs, test statistics, counts, df): relative difference
  <= 1e-6 (absolute 1e-9 near zero). Both sides compute in double precision; the only difference
  is the order of floating-point operations and, for the Tukey CI, scipy's studentized-range
  quantile against R's ``qtukey`` (R stops its secant iteration once a step is below 1e-4, but the
  last step lands far closer: the CIs agree to ~1e-11 here; the test would say so if not).
* p-values: absolute difference <= 1e-4. R's ``ptukey`` (Tukey's p) integrates numerically, as
  does scipy's ``studentized_range``; the other p-values come from closed-form distributions.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bagkit.analyses.table1 import table1
from bagkit.cohort import read_cohort

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_SCRIPT = ROOT / "r" / "reference" / "table1_reference.R"
EXAMPLE_COHORT = ROOT / "examples" / "cohort.csv"
EXAMPLE_VISITS = ROOT / "examples" / "visits.csv"
KEY = ["analysis", "subset", "term", "contrast", "statistic"]
RELATIVE, ABSOLUTE_NEAR_ZERO, P_ABSOLUTE = 1e-6, 1e-9, 1e-4

pytestmark = pytest.mark.skipif(shutil.which("Rscript") is None,
                                reason="Rscript is not on PATH (install r-base-core; see README)")


def rscript(code: str, cwd: Path) -> None:
    """Run R code (here only to export a data set an R package ships)."""
    done = subprocess.run(["Rscript", "-e", code], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def r_table1(cohort_file: Path, out_dir: Path, control: str | None = "HC", columns: dict | None = None,
             visits: Path | None = None, groups: list[str] | None = None) -> pd.DataFrame:
    """Table 1 as R computes it: run r/reference/table1_reference.R and read its tidy table."""
    out = out_dir / f"{cohort_file.stem}_r_table1.csv"
    command = ["Rscript", str(REFERENCE_SCRIPT), str(cohort_file), str(out)]
    command += [control] if control is not None else ["--no-control"]
    for canonical, yours in (columns or {}).items():
        command += ["--column", f"{canonical}={yours}"]
    if visits is not None:
        command += ["--visits", str(visits)]
    if groups is not None:
        command += ["--groups", ",".join(groups)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stderr}"
    header = out.read_text().splitlines()[0]
    assert header.startswith("# R version"), header  # R and package versions
    frame = pd.read_csv(out, comment="#", dtype={c: str for c in KEY}, keep_default_na=False,
                        na_values={"value": ["NaN", "NA"]})
    return frame


def compare_with_r(reference: pd.DataFrame, ours: pd.DataFrame) -> None:
    """Every R row in bagkit and every bagkit row in R, with values within the stated tolerances."""
    assert not reference.duplicated(KEY).any(), reference[reference.duplicated(KEY, keep=False)]
    assert not ours.duplicated(KEY).any(), ours[ours.duplicated(KEY, keep=False)]
    merged = reference.merge(ours, on=KEY, how="outer", suffixes=("_r", "_bagkit"), indicator=True)
    only_r = merged[merged["_merge"] == "left_only"]
    only_bagkit = merged[merged["_merge"] == "right_only"]
    assert only_r.empty, f"rows R computes that bagkit lacks:\n{only_r[KEY + ['value_r']].to_string()}"
    assert only_bagkit.empty, f"rows bagkit has that R does not:\n{only_bagkit[KEY + ['value_bagkit']].to_string()}"

    r, b = merged["value_r"].to_numpy(float), merged["value_bagkit"].to_numpy(float)
    is_p = (merged["statistic"] == "p").to_numpy()
    both_nan = np.isnan(r) & np.isnan(b)
    difference = np.abs(r - b)
    allowed = np.where(is_p, P_ABSOLUTE, np.maximum(RELATIVE * np.abs(r), ABSOLUTE_NEAR_ZERO))
    bad = ~both_nan & ~(difference <= allowed)
    report = merged.loc[bad, KEY + ["value_r", "value_bagkit"]]
    assert not bad.any(), f"{bad.sum()} value(s) differ from R beyond tolerance:\n{report.to_string()}"
    assert len(merged) > 0


def statistics_of(frame: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(frame["term"], frame["statistic"]))


# --- public data sets shipped with R -----------------------------------------------------------

def test_plantgrowth_three_groups_tukey_and_kruskal(tmp_path):
    """PlantGrowth (datasets): 3 groups of 10, ctrl as control; weight as a continuous variable
    (ANOVA + Tukey HSD) and, copied, as the EDSS-like median variable (Kruskal–Wallis + pairwise
    Wilcoxon; trt2 vs ctrl and trt1 vs trt2 have no ties, so wilcox.test's p is exact there).

    R::

        d <- PlantGrowth; d$subject_id <- seq_len(nrow(d)); d$weight_copy <- d$weight
        fit <- aov(weight ~ group, d); summary(fit); TukeyHSD(fit)
        # trt1-ctrl diff -0.371 [-1.0622, 0.3202] p 0.3909; trt2-trt1 p 0.0120
        kruskal.test(weight ~ group, d); wilcox.test(weight ~ group, droplevels(subset(d, group != "trt1")))
    """
    rscript('d <- PlantGrowth; d$subject_id <- seq_len(nrow(d)); d$weight_copy <- d$weight; '
            'write.csv(d, "plantgrowth.csv", row.names = FALSE)', tmp_path)
    columns = {"age": "weight", "edss": "weight_copy"}
    reference = r_table1(tmp_path / "plantgrowth.csv", tmp_path, "ctrl", columns)
    cohort = read_cohort(tmp_path / "plantgrowth.csv", control="ctrl", columns=columns)
    ours = table1(cohort).tidy()
    compare_with_r(reference, ours)
    assert {("age", "q"), ("age", "F"), ("edss", "W"), ("edss", "chi2")} <= statistics_of(reference)
    assert set(reference["contrast"]) >= {"trt1 vs ctrl", "trt2 vs ctrl", "trt1 vs trt2", "trt1 - trt2"}


def test_two_groups_control_listed_first(tmp_path):
    """PlantGrowth ctrl and trt2 only, control first in the file: Student's t-test and the exact
    Wilcoxon rank-sum (n = 10 + 10, no ties), contrasts named patient vs control ("trt2 vs ctrl",
    diff = trt2 - ctrl) as the paper names them, whatever the file order.

    R::

        d <- droplevels(subset(PlantGrowth, group != "trt1"))
        t.test(d$weight[d$group == "trt2"], d$weight[d$group == "ctrl"], var.equal = TRUE)
        # t = 2.1340, df = 18, p = 0.04685; diff 0.494 [0.0077, 0.9803]
        wilcox.test(d$weight[d$group == "trt2"], d$weight[d$group == "ctrl"])  # W = 75, exact p
    """
    rscript('d <- PlantGrowth; d$subject_id <- seq_len(nrow(d)); d$weight_copy <- d$weight; '
            'write.csv(d, "plantgrowth.csv", row.names = FALSE)', tmp_path)
    columns = {"age": "weight", "edss": "weight_copy"}
    reference = r_table1(tmp_path / "plantgrowth.csv", tmp_path, "ctrl", columns, groups=["ctrl", "trt2"])
    cohort = read_cohort(tmp_path / "plantgrowth.csv", control="ctrl", columns=columns, groups=["ctrl", "trt2"])
    ours = table1(cohort).tidy()
    compare_with_r(reference, ours)
    assert {"trt2 vs ctrl", "trt2 - ctrl"} <= set(reference["contrast"])
    assert {("age", "t"), ("edss", "W")} <= statistics_of(reference)


def test_pbc_two_arms(tmp_path):
    """survival::pbc, the 312 randomised patients: D-penicillamine vs placebo (control), every
    column mapped onto canonical names with read_cohort(columns=...): sex f/m, stage as the
    median variable (ties: normal approximation with continuity correction), ascites as the 0/1
    variable, hepato (0/1) as the pos/neg variable, chol/platelet as volumes (nbv derived, NAs
    in both), bili as "brain age" (bag = bili - age), protime as its SD (t-based CI), trig as
    lesion volume, death (status 2) as worsening with years = time / 365.25. 2 x 2 chi-square
    tables get Yates' correction.

    R::

        d <- subset(survival::pbc, !is.na(trt))
        t.test(age ~ trt, d, var.equal = TRUE); chisq.test(table(d$trt, d$sex))
        wilcox.test(stage ~ trt, d); t.test(d$protime[d$trt == 1])$conf.int
    """
    rscript('d <- subset(survival::pbc, !is.na(trt)); '
            'd$group <- ifelse(d$trt == 1, "D-penicillamine", "placebo"); '
            'd$years <- d$time / 365.25; d$death <- as.integer(d$status == 2); '
            'write.csv(d, "pbc.csv", row.names = FALSE, na = "")', tmp_path)
    columns = {"subject_id": "id", "edss": "stage", "dmt": "ascites", "aqp4": "hepato",
               "brain_volume_ml": "chol", "icv_ml": "platelet", "brain_age": "bili",
               "brain_age_sd": "protime", "lesion_volume_ml": "trig", "followup_years": "years",
               "worsening": "death"}
    reference = r_table1(tmp_path / "pbc.csv", tmp_path, "placebo", columns)
    cohort = read_cohort(tmp_path / "pbc.csv", control="placebo", columns=columns)
    ours = table1(cohort).tidy()
    compare_with_r(reference, ours)
    assert {("sex", "chi2"), ("edss", "W"), ("nbv", "t"), ("bag", "ci_low"), ("worsening", "chi2"),
            ("followup", "count")} <= statistics_of(reference)
    assert "D-penicillamine vs placebo" in set(reference["contrast"])


def test_lung_three_ecog_groups_tsv(tmp_path):
    """survival::lung as a TSV, ph.ecog as the group (0 = control, 1, 2; the single ph.ecog 3
    patient is in the file but left out by groups=, rows without ph.ecog dropped on export), sex
    1/2 written as male/female, ph.karno / 10 as the median variable, meal.cal as a volume,
    pat.karno as "brain age", death as worsening with years = time / 365.25: 3 x 2 chi-square
    (no Yates), Kruskal–Wallis, ANOVA + Tukey with unequal group sizes and NAs.

    R::

        d <- subset(survival::lung, ph.ecog %in% 0:2); d$g <- factor(d$ph.ecog)
        TukeyHSD(aov(age ~ g, d)); chisq.test(table(d$g, d$sex)); kruskal.test(ph.karno ~ g, d)
    """
    rscript('d <- subset(survival::lung, !is.na(ph.ecog)); d$subject_id <- paste0("lung", seq_len(nrow(d))); '
            'd$sex <- ifelse(d$sex == 1, "male", "female"); d$karno10 <- d$ph.karno / 10; '
            'd$years <- d$time / 365.25; d$death <- as.integer(d$status == 2); '
            'write.table(d, "lung.tsv", sep = "\\t", row.names = FALSE, quote = FALSE, na = "n/a")', tmp_path)
    columns = {"group": "ph.ecog", "edss": "karno10", "brain_volume_ml": "meal.cal", "brain_age": "pat.karno",
               "center": "inst", "followup_years": "years", "worsening": "death"}
    groups = ["0", "1", "2"]
    reference = r_table1(tmp_path / "lung.tsv", tmp_path, "0", columns, groups=groups)
    cohort = read_cohort(tmp_path / "lung.tsv", control="0", columns=columns, groups=groups)
    ours = table1(cohort).tidy()
    compare_with_r(reference, ours)
    assert {("sex", "chi2"), ("edss", "chi2"), ("edss", "W"), ("bag", "q"), ("followup_years", "q"),
            ("worsening", "chi2")} <= statistics_of(reference)
    assert {"1 vs 0", "2 vs 0", "1 vs 2", "1 - 2"} <= set(reference["contrast"])


# --- the example cohort --------------------------------------------------------------------------

@pytest.mark.parametrize("groups", [None, ["NMOSD", "RRMS", "HC"], ["NMOSD", "HC"]],
                         ids=["file-order", "paper-order", "NMOSD-and-HC"])
def test_example_cohort_with_visits(tmp_path, groups):
    """examples/cohort.csv with examples/visits.csv (NMOSD, RRMS, HC), in the file's group order,
    in the paper's (--groups NMOSD,RRMS,HC), and NMOSD vs HC alone (the two-group tests: t-test,
    rank-sum, 2 x 2 chi-square; visits of RRMS patients ignored): every Table 1 row, worsening and
    follow-up derived from the visits independently in R by the paper's rule (rise >= 1.0 over a
    baseline <= 5.5, >= 0.5 over > 5.5; first such visit, else censored at the last visit).

    R::

        Rscript r/reference/table1_reference.R examples/cohort.csv table1_r.csv HC \\
            --visits examples/visits.csv [--groups NMOSD,RRMS,HC]
    """
    assert EXAMPLE_COHORT.is_file() and EXAMPLE_VISITS.is_file(), \
        "examples/cohort.csv and examples/visits.csv are part of the repository"
    reference = r_table1(EXAMPLE_COHORT, tmp_path, "HC", visits=EXAMPLE_VISITS, groups=groups)
    cohort = read_cohort(EXAMPLE_COHORT, control="HC", visits=EXAMPLE_VISITS, groups=groups)
    ours = table1(cohort).tidy()
    compare_with_r(reference, ours)
    terms = set(reference["term"])
    assert {"age", "sex", "aqp4", "dmt", "disease_duration", "edss", "brain_volume_ml", "nbv",
            "lesion_volume_ml", "brain_age", "bag", "brain_age_sd", "followup", "followup_total_years", "followup_years",
            "worsening"} <= terms
    if groups == ["NMOSD", "HC"]:
        assert set(reference["contrast"]) == {"", "NMOSD vs HC", "NMOSD - HC"}
        assert {("age", "t"), ("bag", "t"), ("sex", "chi2")} <= statistics_of(reference)
        return
    order = groups or list(dict.fromkeys(pd.read_csv(EXAMPLE_COHORT, usecols=["group"])["group"]))
    first, second = [g for g in order if g != "HC"]
    assert {"NMOSD vs HC", "RRMS vs HC", f"{first} vs {second}", f"{first} - {second}",
            "NMOSD - HC", "overall"} <= set(reference["contrast"])
