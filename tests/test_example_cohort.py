"""The bundled example cohort (examples/cohort.csv, examples/visits.csv).

It is synthetic, made by examples/make_example_cohort.py, and must mirror the paper: the counts
of its Table 1 exactly, the means within ±0.5 (±0.01 for normalized brain volume, ±5 ml for
volumes), the SDs within ±15 %, the EDSS median and IQR exactly, and the follow-up design
(85 NMOSD / 124 RRMS followed, 31 / 42 worsening by the paper's EDSS rule).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SOURCE = "the paper's Table 1"


def _load_generator():
    spec = importlib.util.spec_from_file_location("make_example_cohort", EXAMPLES / "make_example_cohort.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


def _read(name):
    return pd.read_csv(EXAMPLES / name, keep_default_na=False, na_values=[""])


@pytest.fixture(scope="module")
def committed():
    return _read("cohort.csv"), _read("visits.csv")


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    out = tmp_path_factory.mktemp("example")
    cohort, visits = gen.make_cohort(seed=gen.DEFAULT_SEED)
    gen.write_cohort(cohort, visits, out)
    return out


def _worsening(cohort, visits):
    """The paper's rule, written out independently of the generator: the first visit whose EDSS
    rises ≥ 1.0 over a baseline ≤ 5.5 (≥ 0.5 over a baseline > 5.5) is worsening; otherwise the
    subject is censored at the last visit."""
    baseline = dict(zip(cohort["subject_id"], cohort["edss"]))
    rows = []
    for sid, v in visits.groupby("subject_id"):
        v = v.sort_values("years")
        base = baseline[sid]
        need = 1.0 if base <= 5.5 else 0.5
        hit = v[v["edss"] - base >= need - 1e-9]
        rows.append((sid, 1 if len(hit) else 0, hit["years"].iloc[0] if len(hit) else v["years"].iloc[-1]))
    out = pd.DataFrame(rows, columns=["subject_id", "worsening", "time"])
    return out.merge(cohort[["subject_id", "group"]], on="subject_id")


# --- reproducibility --------------------------------------------------------------------------
def test_default_seed_reproduces_the_committed_csvs(regenerated):
    for name in ("cohort.csv", "visits.csv"):
        committed = _read(name)
        fresh = pd.read_csv(regenerated / name, keep_default_na=False, na_values=[""])
        pd.testing.assert_frame_equal(fresh, committed, check_exact=True,
                                      obj=f"examples/{name} regenerated with seed {gen.DEFAULT_SEED}")


def test_columns_are_canonical_and_in_order(committed):
    cohort, visits = committed
    assert list(cohort.columns) == gen.COHORT_COLUMNS
    assert list(visits.columns) == ["subject_id", "years", "edss"]
    assert cohort["subject_id"].is_unique
    assert cohort["subject_id"].str.fullmatch(r"sub-\d{4}").all()


# --- exact counts (the paper's Table 1) -------------------------------------------------------
@pytest.mark.parametrize("group", ["NMOSD", "RRMS", "HC"])
def test_counts_are_the_papers(committed, group):
    cohort, visits = committed
    t = gen.TARGETS[group]
    d = cohort[cohort["group"] == group]
    assert len(d) == t["n"], f"{group} N: {len(d)}, target {t['n']} from {SOURCE}"
    female = int((d["sex"] == "F").sum())
    assert female == t["female"], f"{group} female: {female}, target {t['female']}/{t['n']} from {SOURCE}"
    assert set(d["sex"]) <= {"F", "M"}
    assert set(d["center"]) == set(gen.CENTERS), f"{group}: six centers, as in {SOURCE}'s cohort"
    if group == "HC":
        return
    dmt = int(d["dmt"].sum())
    assert dmt == t["dmt"], f"{group} DMT: {dmt}, target {t['dmt']}/{t['n']} from {SOURCE}"
    worse = _worsening(cohort, visits)
    w = worse[worse["group"] == group]
    assert len(w) == t["followup_n"], \
        f"{group} with follow-up: {len(w)}, target {t['followup_n']} from {SOURCE} (follow-up)"
    events = int(w["worsening"].sum())
    assert events == t["events"], \
        f"{group} EDSS worsening by the paper's rule: {events}, target {t['events']} from {SOURCE} (follow-up)"


def test_aqp4_counts_are_the_papers(committed):
    cohort, _ = committed
    nmosd = cohort[cohort["group"] == "NMOSD"]
    tested = int(nmosd["aqp4"].isin(["pos", "neg"]).sum())
    positive = int((nmosd["aqp4"] == "pos").sum())
    assert (positive, tested) == (84, 132), f"AQP4-IgG positive/tested: {positive}/{tested}, target 84/132 " \
                                            f"from {SOURCE}"
    assert cohort.loc[cohort["group"] != "NMOSD", "aqp4"].isna().all(), "AQP4 is tested in NMOSD only"


# --- means, SDs and EDSS quartiles (the paper's Table 1) --------------------------------------
MEAN_SD = [  # column, target key, mean tolerance
    ("age", "age", 0.5),
    ("disease_duration", "disease_duration", 0.5),
    ("brain_volume_ml", "brain_volume_ml", 5.0),
    ("nbv", "nbv", 0.01),
    ("lesion_volume_ml", "lesion_volume_ml", 0.5),
    ("brain_age", "brain_age", 0.5),
    ("bag", "bag", 0.5),
    ("brain_age_sd", "brain_age_sd", 0.5),
]


@pytest.mark.parametrize("group", ["NMOSD", "RRMS", "HC"])
@pytest.mark.parametrize("column,key,tol", MEAN_SD)
def test_means_and_sds_match_the_paper(committed, group, column, key, tol):
    cohort, _ = committed
    t = gen.TARGETS[group]
    if key not in t:
        pytest.skip(f"{column} is not reported for {group}")
    d = cohort[cohort["group"] == group]
    x = (d["brain_age"] - d["age"]) if column == "bag" else d[column]
    mean, sd = float(x.mean()), float(x.std())
    target_mean, target_sd = t[key][:2]
    assert abs(mean - target_mean) <= tol, \
        f"{group} {column} mean {mean:.3f}, target {target_mean} ± {tol} from {SOURCE}"
    assert abs(sd / target_sd - 1) <= 0.15, \
        f"{group} {column} SD {sd:.3f}, target {target_sd} ± 15 % from {SOURCE}"
    if len(t[key]) == 4:  # the paper's min and max (brain volume and brain age are model outputs)
        low, high = t[key][2:]
        if column not in ("brain_volume_ml", "brain_age"):
            assert (round(x.min(), 3), round(x.max(), 3)) == (low, high), \
                f"{group} {column} range [{x.min()}, {x.max()}], target [{low}, {high}] from {SOURCE}"


@pytest.mark.parametrize("group", ["NMOSD", "RRMS"])
def test_edss_median_and_iqr_are_the_papers(committed, group):
    cohort, _ = committed
    t = gen.TARGETS[group]
    edss = cohort.loc[cohort["group"] == group, "edss"].to_numpy()
    for method in ("linear", "hazen", "weibull", "median_unbiased", "lower", "higher", "nearest"):
        q1, q2, q3 = np.percentile(edss, [25, 50, 75], method=method)
        assert (q2, q3 - q1) == (t["edss_median"], t["edss_iqr"]), \
            f"{group} EDSS median (IQR) {q2} ({q3 - q1}) by quantile method {method}, target " \
            f"{t['edss_median']} ({t['edss_iqr']}) from {SOURCE}"
    assert (edss.min(), edss.max()) == (0.0, 9.0), f"{group} EDSS range, target [0, 9] from {SOURCE}"
    assert np.all(np.mod(edss * 2, 1) == 0), "EDSS in 0.5 steps"


@pytest.mark.parametrize("group", ["NMOSD", "RRMS"])
def test_followup_time_matches_the_paper(committed, group):
    cohort, visits = committed
    t = gen.TARGETS[group]
    ids = cohort.loc[cohort["group"] == group, "subject_id"]
    last = visits[visits["subject_id"].isin(ids)].groupby("subject_id")["years"].max()
    mean, sd, low, high = t["followup_years"]
    assert abs(last.mean() - mean) <= 0.5, \
        f"{group} follow-up mean {last.mean():.2f}, target {mean} ± 0.5 from {SOURCE} (follow-up)"
    assert abs(last.std() / sd - 1) <= 0.15, \
        f"{group} follow-up SD {last.std():.2f}, target {sd} ± 15 % from {SOURCE} (follow-up)"
    assert (last.min(), last.max()) == (low, high), \
        f"{group} follow-up range [{last.min()}, {last.max()}], target [{low}, {high}] from {SOURCE}"


# --- internal consistency ---------------------------------------------------------------------
def test_patient_only_columns_are_empty_for_controls(committed):
    cohort, _ = committed
    hc = cohort[cohort["group"] == "HC"]
    for column in ("age_at_diagnosis", "disease_duration", "edss", "dmt", "aqp4", "lesion_volume_ml",
                   "brain_age_filled"):
        assert hc[column].isna().all(), f"HC {column} must be empty"
    patients = cohort[cohort["group"] != "HC"]
    for column in ("age_at_diagnosis", "disease_duration", "edss", "dmt", "lesion_volume_ml", "brain_age_filled"):
        assert patients[column].notna().all(), f"patients' {column} must be filled"


def test_values_are_consistent(committed):
    cohort, visits = committed
    nbv = (cohort["brain_volume_ml"] / cohort["icv_ml"]).round(4)
    assert np.allclose(nbv, cohort["nbv"], atol=1e-9), "nbv = brain_volume_ml / icv_ml, from the rounded volumes"
    p = cohort[cohort["group"] != "HC"]
    assert (p["age_at_diagnosis"] <= p["age"]).all(), "diagnosis before the baseline scan"
    assert (p["age_at_diagnosis"] - p["disease_duration"] >= gen.MIN_ONSET_AGE - 1e-9).all(), "plausible onset age"
    assert (p["disease_duration"] >= 0).all() and (p["lesion_volume_ml"] >= 0).all()
    assert (visits["years"] > 0).all(), "visits are follow-up visits (years > 0)"
    assert visits["edss"].between(0, 10).all()
    assert set(visits["subject_id"]) <= set(p["subject_id"])
    diff = p["brain_age"] - p["brain_age_filled"]
    assert abs(diff.mean() - 0.28) <= 0.1 and abs(diff.std() / 2.11 - 1) <= 0.15, \
        "raw minus lesion-filled brain age 0.28 ± 2.11 (the paper's Supplementary Figure 3)"


def test_associations_the_analyses_should_find(committed):
    cohort, visits = committed
    c = cohort.assign(bag=cohort["brain_age"] - cohort["age"])
    for group, lo_e, hi_n in (("NMOSD", 0.1, -0.1), ("RRMS", 0.15, -0.25)):
        d = c[c["group"] == group]
        assert np.corrcoef(d["bag"], d["edss"])[0, 1] > lo_e, f"{group}: BAG rises with EDSS (paper's Results)"
        assert np.corrcoef(d["bag"], d["nbv"])[0, 1] < hi_n, f"{group}: BAG falls with nbv (paper's Results)"
    nm = c[c["group"] == "NMOSD"]
    with_lesions = nm.loc[nm["lesion_volume_ml"] > 0, "bag"].mean()
    without = nm.loc[nm["lesion_volume_ml"] == 0, "bag"].mean()
    assert with_lesions - without > 2, "NMOSD BAG higher with brain lesions (7.1 vs 3.4 in the paper)"
    worse = _worsening(cohort, visits).merge(c[["subject_id", "bag"]], on="subject_id")
    for group in ("NMOSD", "RRMS"):
        w = worse[worse["group"] == group]
        assert w.loc[w["worsening"] == 1, "bag"].mean() > w.loc[w["worsening"] == 0, "bag"].mean(), \
            f"{group}: BAG higher in those who worsen (paper: AUC 0.60 NMOSD, 0.67 RRMS)"


def test_bigger_cohorts_scale_the_counts():
    sizes = {"NMOSD": 398, "RRMS": 400, "HC": 538}
    cohort, visits = gen.make_cohort(seed=1, n_per_group=sizes)
    assert cohort.groupby("group").size().to_dict() == sizes
    worse = _worsening(cohort, visits)
    assert worse.groupby("group")["worsening"].agg(["size", "sum"]).to_dict("list") == \
        {"size": [170, 248], "sum": [62, 84]}, "twice the paper's follow-up and events"
    nm = cohort[cohort["group"] == "NMOSD"]
    assert (nm["sex"] == "F").sum() == 352 and nm["aqp4"].eq("pos").sum() == 168
