"""Propensity-score matching: bagkit (MatchIt through the R bridge) against MatchIt run directly by Rscript.

The reference is made in the test run itself: ``Rscript r/reference/matching_reference.R`` reads
the same CSV bagkit reads, runs ``MatchIt::matchit(..., method = "nearest", distance = "glm")``
with the same options and writes the matched subjects, weights, subclasses, distances, the
match matrix, ``summary(m)$sum.all`` / ``$sum.matched`` / ``$nn`` and, for Table 2,
``t.test(a, b, var.equal = TRUE)`` on the matched sets. The public data set (``MatchIt::lalonde``)
is exported from R by Rscript in the test; no number is pasted in.

Tolerances (both sides run the same MatchIt on the same doubles; the only difference is how the
numbers travel: rpy2 in memory vs CSV with 17 significant digits, which round-trips doubles):

* matched subjects, weights, subclasses, pairs and counts: identical;
* distances (propensity scores): absolute difference <= 1e-10;
* balance statistics: relative difference <= 1e-8 (absolute 1e-12 near zero);
* Table 2 difference, CI, t, df: relative 1e-8 (scipy's t distribution against R's ``qt``/``pt``);
  p: absolute 1e-10.
"""
from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rtools import rscript

from bagkit import rbridge
from bagkit.analyses import AnalysisOptions, analyze
from bagkit.analyses.matching import run_matching, table2
from bagkit.cohort import Cohort, read_cohort
from bagkit.errors import AnalysisError, BagkitError, RBridgeError, RequestError
from bagkit.plots.matching import plot_love
from bagkit.stats.matching import SMD_THRESHOLD, MatchingWarning, match_groups

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_SCRIPT = ROOT / "r" / "reference" / "matching_reference.R"
EXAMPLE_COHORT = ROOT / "examples" / "cohort.csv"
LALONDE_COVARIATES = ("age", "educ", "race", "married", "nodegree", "re74", "re75")
PAPER_COVARIATES = ("sex", "age_at_diagnosis", "edss", "nbv")
DISTANCE_ABS, BALANCE_REL, NEAR_ZERO = 1e-10, 1e-8, 1e-12

pytestmark = pytest.mark.skipif(shutil.which("Rscript") is None,
                                reason="Rscript is not on PATH (install r-base-core r-cran-matchit; see README)")


def _read_reference(path: Path) -> pd.DataFrame:
    header = path.read_text().splitlines()[0]
    assert header.startswith("# R version") and "MatchIt" in header, header
    return pd.read_csv(path, comment="#", keep_default_na=False, na_values=["NA"], dtype={"id": str},
                       float_precision="round_trip")


def r_matching(csv: Path, out_dir: Path, covariates, *, group=None, groups=None, treat=None, ratio=1,
               caliper=None, replace=False, exact=(), m_order="data", seed=20240101, compare=(),
               id_column="subject_id") -> dict[str, pd.DataFrame]:
    """Run r/reference/matching_reference.R and read everything it wrote."""
    prefix = out_dir / "r_matching"
    command = ["Rscript", "--vanilla", str(REFERENCE_SCRIPT), str(csv), str(prefix), "--id", id_column,
               "--covariates", ",".join(covariates), "--ratio", str(ratio), "--m-order", m_order,
               "--seed", str(seed)]
    command += ["--treat", treat] if treat else ["--group", group, "--groups", ",".join(groups)]
    if caliper is not None:
        command += ["--caliper", repr(float(caliper))]
    if replace:
        command.append("--replace")
    if exact:
        command += ["--exact", ",".join(exact)]
    if compare:
        command += ["--compare", ",".join(compare)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stderr[-3000:]}"
    names = ["subjects", "pairs", "balance_all", "balance_matched", "nn", "left_out", "timing", "caliper"]
    names += ["ttest"] if compare else []
    return {name: _read_reference(Path(f"{prefix}_{name}.csv")) for name in names}


def assert_same_matching(matching, reference: dict[str, pd.DataFrame]) -> None:
    """Same subjects, weights, subclasses, pairs, counts; distances and balance within tolerance."""
    ours = matching.subjects.set_index("subject_id")
    theirs = reference["subjects"].set_index("id")
    assert list(ours.index) == list(theirs.index), "different subjects (or order) sent to matchit"
    assert (ours["treated"].astype(int) == theirs["treat"]).all()
    np.testing.assert_allclose(ours["distance"], theirs["distance"], rtol=0, atol=DISTANCE_ABS)
    np.testing.assert_allclose(ours["weight"], theirs["weight"], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(ours["pair"].to_numpy(dtype=float), theirs["subclass"].to_numpy(dtype=float))
    assert set(matching.matched_ids) == set(theirs.index[theirs["weight"] > 0])

    key = ["treated_id", "control_id", "slot"]
    ours_pairs = matching.pairs[key].astype(str).sort_values(key).reset_index(drop=True)
    theirs_pairs = reference["pairs"][key].astype(str).sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(ours_pairs, theirs_pairs)

    balance = matching.balance.copy()
    balance["r_term"] = [c if level is None else f"{c}{level}" for c, level in
                         zip(balance["covariate"], balance["level"])]
    balance = balance.set_index("r_term")
    for suffix, name in (("before", "balance_all"), ("after", "balance_matched")):
        theirs = reference[name].set_index("term")
        assert list(balance.index) == list(theirs.index)
        for statistic in theirs.columns:
            if f"{statistic}_{suffix}" not in balance and theirs[statistic].isna().all():
                continue  # sum.all's Std. Pair Dist. column: NA before matching
            a = balance[f"{statistic}_{suffix}"].to_numpy(dtype=float)
            b = theirs[statistic].to_numpy(dtype=float)
            assert np.array_equal(np.isnan(a), np.isnan(b)), (suffix, statistic)
            ok = ~np.isnan(a)
            np.testing.assert_allclose(a[ok], b[ok], rtol=BALANCE_REL, atol=NEAR_ZERO,
                                       err_msg=f"{statistic} {suffix} matching")

    nn = reference["nn"].set_index("sample")
    a, b = matching.groups
    for ours_name, r_name in (("all", "All"), ("matched", "Matched"), ("unmatched", "Unmatched"),
                              ("discarded", "Discarded"), ("matched_ess", "Matched (ESS)")):
        assert matching.counts.loc[ours_name, a] == pytest.approx(nn.loc[r_name, "treated"], rel=1e-12)
        assert matching.counts.loc[ours_name, b] == pytest.approx(nn.loc[r_name, "control"], rel=1e-12)


# ---------------------------------------------------------------------------------------------
# MatchIt::lalonde
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lalonde_csv(tmp_path_factory) -> Path:
    """MatchIt's lalonde, exported by R:
    ``data("lalonde", package = "MatchIt");
    write.csv(data.frame(subject_id = rownames(lalonde), lalonde), f, row.names = FALSE)``"""
    path = tmp_path_factory.mktemp("lalonde") / "lalonde.csv"
    code = ('data("lalonde", package = "MatchIt"); '
            f'write.csv(data.frame(subject_id = rownames(lalonde), lalonde), "{path}", row.names = FALSE)')
    done = subprocess.run(["Rscript", "--vanilla", "-e", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return path


def lalonde_cohort(path: Path) -> Cohort:
    data = pd.read_csv(path, dtype={"subject_id": str}, float_precision="round_trip")
    data.insert(1, "group", np.where(data["treat"] == 1, "treated", "control"))
    return Cohort(data, control=None, groups=("treated", "control"), source=str(path))


LALONDE_OPTIONS = {
    "nearest 1:1": {},
    "ratio 2": {"ratio": 2},
    "caliper 0.2": {"caliper": 0.2},
    "replace": {"replace": True},
    "exact married": {"exact": ("married",)},
    "exact race (factor), not a covariate": {"exact": ("race",), "covariates": ("age", "educ", "re74")},
    "m.order largest": {"m_order": "largest"},
    "m.order random, seed": {"m_order": "random", "seed": 42, "ratio": 2, "caliper": 0.5},
}


@pytest.mark.parametrize("name", list(LALONDE_OPTIONS))
def test_lalonde_same_as_matchit(name, lalonde_csv, tmp_path):
    """R, for the default row (the other rows add ratio/caliper/replace/exact/m.order/seed):

        data("lalonde", package = "MatchIt"); set.seed(20240101)
        m <- matchit(treat ~ age + educ + race + married + nodegree + re74 + re75, data = lalonde,
                     method = "nearest", distance = "glm", ratio = 1, m.order = "data")
        summary(m)$sum.all; summary(m)$sum.matched; summary(m)$nn; m$distance; m$weights; m$subclass
    """
    options = dict(LALONDE_OPTIONS[name])
    covariates = options.pop("covariates", LALONDE_COVARIATES)
    seed = options.pop("seed", 20240101)
    reference = r_matching(lalonde_csv, tmp_path, covariates, treat="treat", seed=seed, **options)
    cohort = lalonde_cohort(lalonde_csv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rbridge.RWarning)  # e.g. "Fewer control units than treated units"
        matching = match_groups(cohort, ("treated", "control"), covariates, seed=seed, **options)
    assert_same_matching(matching, reference)
    assert matching.matchit_version


def test_lalonde_factor_levels_are_named(lalonde_csv):
    """race is a factor: its balance rows are race=black, race=hispan, race=white (R: raceblack, ...)."""
    matching = match_groups(lalonde_cohort(lalonde_csv), ("treated", "control"), LALONDE_COVARIATES)
    terms = list(matching.balance["term"])
    assert terms[:5] == ["distance", "age", "educ", "race=black", "race=hispan"]
    tidy = matching.tidy()
    row = tidy[(tidy["subset"] == "matched") & (tidy["term"] == "race=black") & (tidy["statistic"] == "smd")]
    assert len(row) == 1 and row["contrast"].iloc[0] == "treated vs control"


def assert_greedy_nearest(matching, order: str, caliper_width: float | None = None) -> None:
    """The definition of 1:1 nearest-neighbour matching without replacement, checked without R:
    treated subjects taken in ``order`` (data order, or largest propensity score first) each get the
    nearest control not yet used; with a caliper, only controls within it, and a treated subject
    with none stays unmatched. Tolerance 2e-9 on the score (bagkit's scaling of the score where
    MatchIt truncates differences, MatchIt #163)."""
    subjects = matching.subjects.set_index("subject_id")
    distance = subjects["distance"]
    treated = subjects.index[subjects["treated"]]
    if order == "largest":
        treated = distance[treated].sort_values(ascending=False, kind="mergesort").index
    control_of = dict(zip(matching.pairs["treated_id"], matching.pairs["control_id"]))
    available = set(subjects.index[~subjects["treated"]])
    for t in treated:
        gaps = {c: abs(distance[c] - distance[t]) for c in available}
        if caliper_width is not None:
            gaps = {c: g for c, g in gaps.items() if g <= caliper_width + 2e-9}
        if t not in control_of:
            assert caliper_width is not None and not gaps, f"{t} left unmatched with controls in reach"
            continue
        chosen = control_of[t]
        assert chosen in available, f"{t}: control {chosen} used twice"
        assert gaps[chosen] <= min(gaps.values()) + 2e-9, \
            f"{t}: matched at {gaps[chosen]:.6g}, the nearest available control is {min(gaps.values()):.6g} away"
        available.remove(chosen)


@pytest.mark.parametrize("order", ["data", "largest"])
@pytest.mark.parametrize("caliper", [None, 0.2, 0.05])
def test_nearest_is_nearest_and_caliper_bites(order, caliper, lalonde_csv):
    """Every pair is the nearest available control, and a caliper leaves treated subjects unmatched
    (R: ``m$caliper`` is the caliper in score units = caliper × sd(score)). This also holds where
    the installed MatchIt (4.5.1-4.5.3 built with C's integer abs(), MatchIt #163) would take the
    wrong neighbour and ignore the caliper: bagkit detects that and hands MatchIt a scaled score."""
    cohort = lalonde_cohort(lalonde_csv)
    matching = match_groups(cohort, ("treated", "control"), LALONDE_COVARIATES, caliper=caliper, m_order=order)
    width = None if caliper is None else caliper * float(matching.subjects["distance"].std())
    assert_greedy_nearest(matching, order, width)
    if caliper is not None:
        assert matching.n_unmatched["treated"] > 0, "a caliper this narrow cannot keep every treated subject"


def test_r_warnings_reach_python(lalonde_csv):
    """Fewer controls than treated (ratio 3 without replacement): R says so, as a Python warning.

    R: ``matchit(treat ~ age + educ, data = lalonde, ratio = 3)`` warns "Not all treated units will
    get 3 matches" (or fewer controls than ratio × treated)."""
    cohort = lalonde_cohort(lalonde_csv)
    with pytest.warns(rbridge.RWarning):
        matching = match_groups(cohort, ("treated", "control"), ("age", "educ"), ratio=3)
    assert any("R (" in note for note in matching.notes)


# ---------------------------------------------------------------------------------------------
# A cohort with the paper's columns (synthetic, seeded), and the example cohort
# ---------------------------------------------------------------------------------------------

def _paper_like(path: Path, n=(120, 140, 40), missing_edss: int = 0, seed: int = 11) -> Path:
    rng = np.random.default_rng(seed)
    rows = []
    for group, size, shift, age_mean in (("NMOSD", n[0], 5.0, 42), ("RRMS", n[1], 12.0, 33), ("HC", n[2], 0.8, 38)):
        for i in range(size):
            age = float(np.clip(rng.normal(age_mean, 11), 16, 75))
            patient = group != "HC"
            rows.append(dict(
                subject_id=f"{group}-{i:03d}", group=group, age=round(age, 1),
                sex=rng.choice(["F", "M"], p=[0.85, 0.15] if group == "NMOSD" else [0.7, 0.3]),
                edss=float(rng.choice(np.arange(0, 7.5, 0.5))) if patient else None,
                age_at_diagnosis=round(age - rng.uniform(0, 4), 1) if patient else None,
                disease_duration=round(abs(rng.normal(4, 4)), 1) if patient else None,
                nbv=round(rng.normal(0.75 - (0.01 if group == "RRMS" else 0), 0.04), 4),
                brain_age=round(age + rng.normal(shift, 9), 2), brain_age_sd=round(abs(rng.normal(5, 2)), 2)))
    frame = pd.DataFrame(rows)
    if missing_edss:
        frame.loc[rng.choice(n[0] + n[1], missing_edss, replace=False), "edss"] = np.nan
    frame.to_csv(path, index=False)
    return path


def _check_table2_against_r(table, reference) -> None:
    ttest = reference["ttest"].set_index("variable")
    for term in ("bag", "brain_age"):
        ours = table.difference(term)
        theirs = ttest.loc[term]
        assert ours.contrast == f"{table.groups[0]} vs {table.groups[1]}"
        for field, name in (("diff", "diff"), ("ci_low", "ci_low"), ("ci_high", "ci_high"),
                            ("statistic", "t"), ("df", "df")):
            assert getattr(ours, field) == pytest.approx(theirs[name], rel=1e-8, abs=1e-12), (term, field)
        assert ours.p == pytest.approx(theirs["p"], abs=1e-10)
    tidy = table.tidy()
    a, b = table.groups
    diff = tidy[(tidy["analysis"] == table.analysis) & (tidy["subset"] == "matched") & (tidy["term"] == "bag")
                & (tidy["contrast"] == f"{a} - {b}") & (tidy["statistic"] == "diff")]
    assert len(diff) == 1 and diff["value"].iloc[0] == pytest.approx(ttest.loc["bag", "diff"], rel=1e-8)


def test_paper_matching_and_table2_same_as_r(tmp_path):
    """R:

        d <- read.csv(f); d <- d[d$group %in% c("NMOSD", "RRMS"), ]; d$treat <- d$group == "NMOSD"
        d$sex <- as.numeric(d$sex == "M"); d$bag <- d$brain_age - d$age; set.seed(20240101)
        m <- matchit(treat ~ sex + age_at_diagnosis + edss + nbv, data = d, method = "nearest",
                     distance = "glm")
        summary(m); t.test(d$bag[d$treat & m$weights > 0], d$bag[!d$treat & m$weights > 0],
                           var.equal = TRUE)
    """
    csv = _paper_like(tmp_path / "cohort.csv")
    cohort = read_cohort(csv)
    reference = r_matching(csv, tmp_path, PAPER_COVARIATES, group="group", groups=("NMOSD", "RRMS"),
                           compare=("bag", "brain_age"))
    matching = match_groups(cohort)  # defaults: the first two patient groups, the paper's covariates
    assert matching.groups == ("NMOSD", "RRMS") and matching.covariates == PAPER_COVARIATES
    assert_same_matching(matching, reference)
    table = table2(cohort, matching)
    _check_table2_against_r(table, reference)
    assert table.table.n == {"NMOSD": 120, "RRMS": 120}
    assert [r.term for r in table.table.rows] == ["age_at_diagnosis", "sex", "disease_duration", "edss", "nbv",
                                                  "brain_age", "bag"]


def test_example_cohort_same_as_r(tmp_path):
    """The bundled example cohort, the paper's matching (NMOSD to RRMS, 1:1 nearest neighbour on sex,
    age at diagnosis, EDSS, nbv) and the Supplementary-Table-4 variant with brain_age_sd. R as in
    test_paper_matching_and_table2_same_as_r, with ``+ brain_age_sd`` for the variant."""
    if not EXAMPLE_COHORT.is_file():
        pytest.skip(f"{EXAMPLE_COHORT} not generated yet (python examples/make_example_cohort.py)")
    cohort = read_cohort(EXAMPLE_COHORT)
    groups = cohort.patient_groups[:2]
    for covariates, analysis in ((PAPER_COVARIATES, "psm"), (PAPER_COVARIATES + ("brain_age_sd",), "psm_sd")):
        out = tmp_path / analysis
        out.mkdir()
        reference = r_matching(EXAMPLE_COHORT, out, covariates, group="group", groups=groups,
                               compare=("bag", "brain_age"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MatchingWarning)
            matching = match_groups(cohort, groups, covariates, analysis=analysis)
        assert_same_matching(matching, reference)
        assert set(matching.left_out) == set(reference["left_out"]["id"].astype(str))
        _check_table2_against_r(table2(cohort, matching), reference)
        # balance reached, or the result says so explicitly
        assert matching.balanced or any("balance not reached" in n for n in matching.notes)


def test_missing_covariates_reported_and_left_out(tmp_path):
    """Subjects with a missing covariate are left out (as R's complete.cases before matchit), named by
    id in Matching.left_out, in a MatchingWarning, in the notes and counted in the tidy rows."""
    csv = _paper_like(tmp_path / "cohort.csv", missing_edss=7)
    cohort = read_cohort(csv)
    reference = r_matching(csv, tmp_path, PAPER_COVARIATES, group="group", groups=("NMOSD", "RRMS"))
    with pytest.warns(MatchingWarning, match="7 subject\\(s\\) left out") as caught:
        matching = match_groups(cohort)
    expected = set(reference["left_out"]["id"].astype(str))
    assert len(expected) == 7 and set(matching.left_out) == expected
    assert all(matching.left_out_columns[i] == ("edss",) for i in expected)
    assert any(next(iter(expected)) in str(w.message) or "more" in str(w.message) for w in caught)
    assert any("left out" in note for note in matching.notes)
    assert not expected & set(matching.subjects["subject_id"])
    assert_same_matching(matching, reference)
    tidy = matching.tidy()
    left = tidy[(tidy["statistic"] == "left_out_missing")].set_index("subset")["value"]
    assert left.sum() == 7


# ---------------------------------------------------------------------------------------------
# Names reach R safely; bad input is named
# ---------------------------------------------------------------------------------------------

def test_hostile_column_names_never_run(tmp_path):
    """A column named like R code is renamed (x1..xk) before R sees it and never executed; a name that
    is not a column is refused; the R side refuses any name but x1..xk / e1..ej."""
    pwn = tmp_path / "pwn"
    hostile = f'a); system("touch {pwn}"); (b'
    csv = _paper_like(tmp_path / "cohort.csv")
    frame = pd.read_csv(csv)
    frame[hostile] = np.random.default_rng(0).integers(0, 2, len(frame))
    frame.to_csv(csv, index=False)
    cohort = read_cohort(csv)
    assert hostile in cohort.data.columns

    matching = match_groups(cohort, covariates=("sex", "edss", hostile), exact=())
    assert hostile in set(matching.balance["covariate"])
    assert not pwn.exists()
    matching = match_groups(cohort, covariates=("sex", "edss"), exact=(hostile,))
    assert not pwn.exists()

    other = f'system("touch {pwn}")'
    with pytest.raises(AnalysisError, match="is not a column of the cohort") as error:
        match_groups(cohort, covariates=("sex", other))
    assert other in str(error.value)
    with pytest.raises(AnalysisError, match="is not a column"):
        match_groups(cohort, covariates=("sex",), exact=(other,))
    assert not pwn.exists()

    data = pd.DataFrame({"treat": [1, 0, 1, 0], "x1": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(RBridgeError, match="safe names"):
        rbridge.run_r("bagkit_match", "matching.R", data=data, covariates=[other])
    assert not pwn.exists()


@pytest.mark.parametrize("kwargs, message", [
    ({"groups": ("NMOSD", "MOGAD")}, "'MOGAD' not in the cohort"),
    ({"groups": ("NMOSD", "NMOSD")}, "two different groups"),
    ({"covariates": ("sex", "not_there")}, "'not_there' is not a column of the cohort"),
    ({"covariates": ("group",)}, "'group' cannot be a matching covariate"),
    ({"covariates": ("sex", "sex")}, "more than once"),
    ({"ratio": 0}, "ratio must be a whole number"),
    ({"caliper": -1.0}, "caliper must be a positive number"),
    ({"m_order": "closest-first"}, "order must be one of"),
])
def test_bad_options_named(kwargs, message, tmp_path):
    cohort = read_cohort(_paper_like(tmp_path / "cohort.csv"))
    with pytest.raises(AnalysisError, match=message):
        match_groups(cohort, **kwargs)


def test_missing_r_package_is_a_clear_error():
    """The bridge names the Debian package to install (here for a package that does not exist)."""
    with pytest.raises(RBridgeError, match="apt-get install r-cran-nosuchpackagexyz"):
        rbridge.require_r_packages("NoSuchPackageXYZ")


def test_default_covariates_missing_become_a_skip_note(tmp_path):
    csv = _paper_like(tmp_path / "cohort.csv")
    frame = pd.read_csv(csv).drop(columns=["nbv", "edss"])
    frame.to_csv(csv, index=False)
    cohort = read_cohort(csv)
    with pytest.raises(BagkitError, match="edss, nbv"):
        run_matching(cohort, AnalysisOptions())
    results = analyze(cohort)
    assert "matching" not in results.sections
    assert any(note.section == "matching" and "edss, nbv" in note.reason for note in results.skipped)


# ---------------------------------------------------------------------------------------------
# The analysis entry, tidy rows, love plot
# ---------------------------------------------------------------------------------------------

def test_run_matching_tidy_rows_and_options(tmp_path):
    cohort = read_cohort(_paper_like(tmp_path / "cohort.csv"))
    result = run_matching(cohort, AnalysisOptions())
    tidy = result.tidy()
    assert set(tidy["analysis"]) == {"psm", "psm_balance", "psm_effect", "psm_sd", "psm_sd_balance", "psm_sd_effect"}
    key = tidy.set_index(["analysis", "subset", "term", "contrast", "statistic"])["value"]
    assert not key.index.duplicated().any()
    assert key[("psm", "matched", "bag", "NMOSD - RRMS", "diff")] == pytest.approx(
        result.primary.difference("bag").diff)
    assert key[("psm_balance", "NMOSD", "subjects", "", "matched")] == 120
    assert ("psm_balance", "all", "edss", "NMOSD vs RRMS", "smd") in key.index
    assert ("psm_sd_balance", "matched", "brain_age_sd", "NMOSD vs RRMS", "smd") in key.index
    assert result.with_sd.table.row("brain_age_sd")

    # user options reach MatchIt: controls vs a patient group, 1:2 with a caliper, exact on sex
    options = AnalysisOptions(match_groups=("HC", "NMOSD"), match_covariates=("sex", "nbv"), match_ratio=2,
                              match_caliper=0.5, match_exact=("sex",), match_order="largest")
    with pytest.warns(rbridge.RWarning, match="Not all treated units will get 2 matches"):
        result = run_matching(cohort, options)
    matching = result.primary.matching
    assert matching.groups == ("HC", "NMOSD") and matching.options["ratio"] == 2
    assert matching.options["exact"] == ("sex",) and matching.options["m_order"] == "largest"
    assert result.primary.notes  # weights are not all 1 with ratio 2: said so


def test_balance_note_when_smd_not_reached(tmp_path):
    """140 RRMS to 40 controls, 1:1: most RRMS stay unmatched and brain age stays imbalanced. R warns
    (``matchit(...)``: "Fewer control units than treated units"), and the result says balance was not
    reached, naming the covariates."""
    cohort = read_cohort(_paper_like(tmp_path / "cohort.csv"))
    with pytest.warns(rbridge.RWarning, match="Fewer control units"):
        matching = match_groups(cohort, ("RRMS", "HC"), ("sex", "nbv", "brain_age"))
    assert matching.n_matched == {"RRMS": 40, "HC": 40} and matching.n_unmatched["RRMS"] == 100
    assert not matching.balanced
    note = next(n for n in matching.notes if "balance not reached" in n)
    assert f"|SMD| ≥ {SMD_THRESHOLD}" in note
    assert all(term in note for term in matching.imbalanced_terms) and "brain_age" in note


def test_love_plot(tmp_path):
    from matplotlib.figure import Figure

    cohort = read_cohort(_paper_like(tmp_path / "cohort.csv"))
    matching = match_groups(cohort)
    fig = plot_love(matching)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()][::-1] == list(
        matching.balance.loc[matching.balance["covariate"] != "distance", "label"])
    fig2 = Figure()
    ax2 = fig2.add_subplot()
    assert plot_love(matching, ax2) is fig2
    fig.savefig(tmp_path / "love.png")


# ---------------------------------------------------------------------------------------------
# Explicit requests are errors; bagkit's own choices are skip notes (issue 11)
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("options, pieces", [
    (AnalysisOptions(match_groups=("NMOSD", "NMOSD")), ["--match NMOSD,NMOSD", "two different groups"]),
    (AnalysisOptions(match_groups=("NMOSD", "MOG")), ["--match NMOSD,MOG", "'MOG' not in the cohort",
                                                      "NMOSD, RRMS, HC"]),
    (AnalysisOptions(match_covariates=("sex", "lesion_volume_ml")),
     ["--covariates sex,lesion_volume_ml", "'lesion_volume_ml' is not a column of the cohort"]),
    (AnalysisOptions(match_exact=("center",)), ["--exact center", "'center' is not a column of the cohort"]),
    (AnalysisOptions(match_groups=("NMOSD", "HC")),  # the default covariates: HC have no edss
     ["--match NMOSD,HC", "fewer than 2 subjects with every covariate"]),
])
def test_explicit_matching_request_that_cannot_be_made_stops_the_analysis(tmp_path, options, pieces, recwarn):
    cohort = read_cohort(_paper_like(tmp_path / "cohort.csv"))
    with pytest.raises(RequestError) as error:
        analyze(cohort, options)  # NMOSD,HC also warns that the controls lack edss (recwarn takes it)
    for piece in pieces:
        assert piece in str(error.value), str(error.value)


def test_default_matching_that_cannot_be_made_is_still_a_note(tmp_path):
    """One patient group: bagkit's default (the first two patient groups) cannot be matched → a note."""
    csv = _paper_like(tmp_path / "cohort.csv")
    pd.read_csv(csv).query("group != 'RRMS'").to_csv(csv, index=False)
    results = analyze(read_cohort(csv))
    assert "matching" not in results.sections
    assert any(n.section == "matching" and "--match A,B" in n.reason for n in results.skipped)


def test_no_overlap_of_the_propensity_score_is_named_as_separation(tmp_path):
    """EDSS separates the groups completely (NMOSD 0–2.5, RRMS 6–9): R's glm does not converge. bagkit
    says so in one MatchingWarning (no overlap / separation) instead of passing R's glm.fit warning
    on; R's own glm on the same data agrees that the fitted scores do not overlap."""
    csv = _paper_like(tmp_path / "cohort.csv")
    frame = pd.read_csv(csv)
    rng = np.random.default_rng(0)
    frame.loc[frame.group == "NMOSD", "edss"] = rng.choice(np.arange(0, 3, 0.5), (frame.group == "NMOSD").sum())
    frame.loc[frame.group == "RRMS", "edss"] = rng.choice(np.arange(6, 9.5, 0.5), (frame.group == "RRMS").sum())
    frame.to_csv(csv, index=False)
    cohort = read_cohort(csv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        matching = match_groups(cohort, ("NMOSD", "RRMS"), ("sex", "edss", "nbv"))
    ours = [str(w.message) for w in caught if issubclass(w.category, MatchingWarning)]
    assert any("no overlap of the propensity score between NMOSD and RRMS" in m and "perfect separation" in m
               and "sex, edss, nbv" in m for m in ours), ours
    assert not any("glm.fit" in str(w.message) for w in caught)
    assert any("no overlap" in n for n in matching.notes)
    # with a caliper MatchIt matches nobody and stops ("No units were matched"): said in the same words
    with pytest.raises(AnalysisError, match="matched no NMOSD subject to a RRMS subject within the caliper "
                                            r"\(0.1 SD.*may not overlap"):
        match_groups(cohort, ("NMOSD", "RRMS"), ("sex", "edss", "nbv"), caliper=0.1)

    script = tmp_path / "glm.R"
    script.write_text('d <- read.csv(commandArgs(TRUE)[1]); d <- d[d$group %in% c("NMOSD", "RRMS"), ]\n'
                      'd$treat <- as.integer(d$group == "NMOSD"); d$male <- as.integer(d$sex == "M")\n'
                      'f <- suppressWarnings(glm(treat ~ male + edss + nbv, data = d, family = binomial))\n'
                      'p <- fitted(f)\n'
                      'cat(min(p[d$treat == 1]) > max(p[d$treat == 0]), f$converged, "\\n")\n')
    no_overlap, converged = rscript(str(script), str(csv)).stdout.split()
    assert no_overlap == "TRUE" and converged == "FALSE"
