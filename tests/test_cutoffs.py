"""ROC, AUC (DeLong CI) and cutoffs against R's pROC (``r/reference/cutoffs_reference.R``).

Tolerances: AUC and its CI to 1e-9 relative (both are closed-form sums of the same placement
values; the only difference is floating-point summation order); thresholds to 1e-9 absolute
(midpoints of the same two data values); sensitivity/specificity to 1e-12 (ratios of counts).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rtools import EXAMPLE_COHORT, EXAMPLE_VISITS, ROOT, rscript

from bagkit.errors import AnalysisError
from bagkit.stats.cutoffs import bootstrap_cutoff, find_cutoff, roc_analysis, roc_curve

SCRIPT = str(ROOT / "r" / "reference" / "cutoffs_reference.R")


def reference(frame: pd.DataFrame, tmp_path, spec: float = 0.8) -> pd.DataFrame:
    """Run the pROC reference on ``subset, marker, event`` rows; returns its tidy table."""
    path = tmp_path / "roc_in.csv"
    frame.to_csv(path, index=False)
    rscript(SCRIPT, "roc", str(path), str(tmp_path / "roc_ref.csv"), str(spec))
    return pd.read_csv(tmp_path / "roc_ref.csv", comment="#", keep_default_na=False,
                       dtype={"contrast": str, "term": str})


def compare(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    keys = ["analysis", "subset", "term", "contrast", "statistic"]
    merged = theirs[theirs["statistic"] != "n_tied"].merge(ours, on=keys, how="left", suffixes=("_r", "_py"))
    assert merged["value_py"].notna().all(), merged[merged["value_py"].isna()]
    for _, row in merged.iterrows():
        if row["statistic"] in ("auc", "ci_low", "ci_high"):
            assert row["value_py"] == pytest.approx(row["value_r"], rel=1e-9), row.to_dict()
        elif row["statistic"] == "threshold":
            assert row["value_py"] == pytest.approx(row["value_r"], abs=1e-9), row.to_dict()
        else:
            assert row["value_py"] == pytest.approx(row["value_r"], abs=1e-12), row.to_dict()


def ours_for(frame: pd.DataFrame, spec: float = 0.8) -> pd.DataFrame:
    return pd.concat([roc_analysis(part["marker"], part["event"], subset=subset, specificity_at_least=spec,
                                   direction="auto").tidy()
                      for subset, part in frame.groupby("subset", sort=False)], ignore_index=True)


def test_auc_delong_and_cutoffs_match_proc_on_asah(tmp_path):
    """pROC::aSAH (113 subarachnoid-haemorrhage patients, outcome Poor = event), markers s100b, ndka, age::

        r <- roc(event, marker, levels = c(0, 1), direction = "auto")
        auc(r); ci.auc(r, method = "delong")
        coords(r, "best", best.method = "youden")
        a <- coords(r, x = "all"); a <- a[a$specificity >= 0.8, ]; a[which.max(a$sensitivity), ]

    plus -s100b, which pROC's "auto" turns to direction ">" (AUC unchanged).
    """
    rscript(SCRIPT, "export-asah", str(tmp_path / "asah.csv"))
    data = pd.read_csv(tmp_path / "asah.csv")
    flipped = data[data["subset"] == "s100b"].assign(subset="minus_s100b")
    flipped["marker"] = -flipped["marker"]
    data = pd.concat([data, flipped], ignore_index=True)
    theirs = reference(data, tmp_path)
    ours = ours_for(data)
    compare(ours, theirs)
    # the published values (pROC's documentation of aSAH): AUC 0.7314, DeLong CI 0.6301-0.8326
    s100b = roc_curve(data.loc[data.subset == "s100b", "marker"], data.loc[data.subset == "s100b", "event"])
    assert (round(s100b.auc, 4), round(s100b.ci_low, 4), round(s100b.ci_high, 4)) == (0.7314, 0.6301, 0.8326)
    assert roc_curve(flipped["marker"], flipped["event"]).direction == ">"
    assert theirs.query("subset == 'minus_s100b' and statistic == 'direction_higher_is_event'")["value"].item() == 0


def test_other_specificity_floor_matches_proc(tmp_path):
    """The spec rule at specificity ≥ 0.9 (``a[a$specificity >= 0.9, ]``) on aSAH."""
    rscript(SCRIPT, "export-asah", str(tmp_path / "asah.csv"))
    data = pd.read_csv(tmp_path / "asah.csv")
    compare(ours_for(data, 0.9), reference(data, tmp_path, 0.9))


def test_coords_all_match_proc_thresholds(tmp_path):
    """Every threshold of ``coords(r, x = "all")`` is a midpoint between consecutive distinct values, ±Inf
    at the ends; sensitivity falls and specificity rises along them (direction "<")."""
    rng = np.random.default_rng(3)
    marker = np.round(rng.normal(size=60), 1)  # ties on purpose
    event = (marker + rng.normal(size=60) > 0).astype(float)
    curve = roc_curve(marker, event)
    values = np.unique(marker)
    assert np.isneginf(curve.thresholds[0]) and np.isposinf(curve.thresholds[-1])
    np.testing.assert_allclose(curve.thresholds[1:-1], (values[1:] + values[:-1]) / 2)
    assert (np.diff(curve.sensitivities) <= 0).all() and (np.diff(curve.specificities) >= 0).all()
    frame = pd.DataFrame({"subset": "ties", "marker": marker, "event": event})
    compare(ours_for(frame), reference(frame, tmp_path))


@pytest.mark.skipif(not EXAMPLE_COHORT.exists(), reason="examples/cohort.csv not generated yet "
                    "(python examples/make_example_cohort.py)")
def test_example_cohort_roc_matches_proc(tmp_path):
    """BAG for EDSS worsening per patient group of the example cohort (subjects with follow-up), as
    ``roc(worsening, bag)`` in pROC; bagkit's run_outcomes gives the same AUC, CI and cutoffs."""
    from bagkit.analyses.outcomes import run_outcomes
    from bagkit.cohort import read_cohort

    cohort = read_cohort(EXAMPLE_COHORT, visits=EXAMPLE_VISITS if EXAMPLE_VISITS.exists() else None)
    data = cohort.data[cohort.data["group"].isin(cohort.patient_groups) & cohort.data["worsening"].notna()
                       & cohort.data["bag"].notna()]
    frame = pd.DataFrame({"subset": data["group"], "marker": data["bag"], "event": data["worsening"]})
    ours = run_outcomes(cohort).tidy()
    compare(ours[ours["analysis"].isin(["roc", "cutoff"])], reference(frame, tmp_path))


def test_bootstrap_cutoff_is_seeded_and_covers_the_estimate():
    rng = np.random.default_rng(11)
    marker = np.r_[rng.normal(2, 3, 40), rng.normal(0, 3, 80)]
    event = np.r_[np.ones(40), np.zeros(80)]
    one = bootstrap_cutoff(marker, event, "spec80", n_bootstrap=200, seed=5)
    two = bootstrap_cutoff(marker, event, "spec80", n_bootstrap=200, seed=5)
    assert one == two
    result = roc_analysis(marker, event, n_bootstrap=200, seed=5)
    cut = result.cutoff
    assert cut.ci_low <= cut.threshold <= cut.ci_high
    assert {"threshold_ci_low", "threshold_ci_high"} <= set(result.tidy()["statistic"])


def test_spec80_picks_highest_sensitivity_among_allowed():
    marker = np.arange(10, dtype=float)
    event = np.array([0, 0, 0, 0, 1, 0, 1, 1, 0, 1], dtype=float)
    curve = roc_curve(marker, event)
    cut = find_cutoff(curve, "spec80")
    table = curve.coords()
    allowed = table[table.specificity >= 0.8]
    assert cut.sensitivity == allowed.sensitivity.max()
    assert cut.specificity >= 0.8


@pytest.mark.parametrize("event, message", [
    (np.zeros(10), "no events: all 10 subjects censored"),
    (np.ones(10), "every one of the 10 subjects had the event: none without it"),
    (np.r_[np.zeros(5), np.full(5, 2.0)], "0/1"),
])
def test_bad_events_are_named(event, message):
    with pytest.raises(AnalysisError, match=message):
        roc_curve(np.arange(10.0), event)


def test_unknown_rule_is_named():
    with pytest.raises(AnalysisError, match="unknown cutoff rule 'best'"):
        roc_analysis(np.arange(10.0), np.r_[np.zeros(5), np.ones(5)], rule="best")
