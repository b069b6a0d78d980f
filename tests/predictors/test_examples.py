"""Figure 1 D–G: example subjects' input slices beside their predicted age distributions.

SFCN's ``age_distribution`` against its own network (an independent forward pass) and against
``predict``; the choice of the smallest/largest BAG per group; the analysis' numbers; and
``bagkit report`` on phantom scans end to end (figure block, results.csv, renderers that open no
input file).
"""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bagkit.cohort import Cohort
from bagkit.cohort.examples import ExampleInput
from bagkit.errors import AnalysisError, RequestError


# ----------------------------------------------------------------------------- SFCN's distribution
@pytest.fixture(scope="module")
def tiny_sfcn():
    pytest.importorskip("torch")
    from bagkit_sfcn import SFCNBrainAge

    rng = np.random.default_rng(3)
    volumes = [rng.normal(1, 0.2, (32, 36, 32)).astype(np.float32) for _ in range(6)]
    model = SFCNBrainAge(channels=(4, 4, 8, 8, 8, 4), input_shape=(32, 36, 32), age_range=(20, 70), epochs=1,
                         batch_size=3, progress=False, validation_fraction=0.0, precision="fp32", num_threads=1,
                         predict_batch_size=2)
    model.fit(volumes, rng.uniform(25, 65, 6))
    return model, volumes


def test_sfcn_age_distribution_sums_to_one_and_gives_predicts_numbers(tiny_sfcn):
    import torch

    model, volumes = tiny_sfcn
    scans = pd.Series(volumes[:5], index=[10, 11, 12, 13, 14])
    distribution = model.age_distribution(scans)
    predicted = model.predict(scans)
    assert list(distribution.index) == [10, 11, 12, 13, 14]
    np.testing.assert_allclose(distribution.bin_centers, np.arange(20.5, 70.0, 1.0))  # 50 one-year bins
    assert distribution.probabilities.shape == (5, 50)
    assert (distribution.probabilities >= 0).all()
    np.testing.assert_allclose(distribution.probabilities.sum(axis=1), 1.0, atol=1e-12)
    # predict's brain age and SD are the distribution's mean and SD: the same float64 moments of the
    # same probabilities, so equal to rounding (1e-9 y)
    np.testing.assert_allclose(distribution.brain_age, predicted["brain_age"], atol=1e-9)
    np.testing.assert_allclose(distribution.brain_age_sd, predicted["brain_age_sd"], atol=1e-9)
    # independent reference: the trained network itself (BatchNorm not folded, float32), softmax
    # probabilities and two-pass moments in numpy; 1e-4 allows for the folded float32 inference path
    with torch.no_grad():
        log_p = model.model_.eval()(torch.from_numpy(np.stack(volumes[:5]))[:, None]).double()
    reference = log_p.exp().numpy()
    reference /= reference.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(distribution.probabilities, reference, atol=1e-4)
    centers = distribution.bin_centers
    mean = reference @ centers
    sd = np.sqrt((reference * (centers[None] - mean[:, None]) ** 2).sum(axis=1))
    np.testing.assert_allclose(distribution.brain_age, mean, atol=1e-4 * 70)
    np.testing.assert_allclose(distribution.brain_age_sd, sd, atol=1e-2)
    frame = distribution.frame()
    assert frame.shape == (5, 50) and list(frame.index) == [10, 11, 12, 13, 14]


def test_the_base_predictor_has_no_distribution_and_the_check_accepts_both():
    from bagkit.errors import PredictorError
    from bagkit.predictors import AgeDistribution, BrainAgePredictor

    assert BrainAgePredictor().age_distribution([np.zeros((2, 2, 2))]) is None
    # check_predictor's age_distribution rule on SFCN and GP regression: tests/predictors/test_conformance.py
    with pytest.raises(PredictorError, match="shape"):
        AgeDistribution(np.arange(3.0), np.ones((2, 4)) / 4, np.zeros(2), np.zeros(2), pd.RangeIndex(2))


# ----------------------------------------------------------------------------- who is shown
def _cohort(bag, groups, ids=None, age=None) -> Cohort:
    n = len(bag)
    age = np.full(n, 50.0) if age is None else np.asarray(age, float)
    data = pd.DataFrame({"subject_id": ids or [f"s{i}" for i in range(n)], "group": groups, "age": age,
                         "brain_age": age + np.asarray(bag, float), "brain_age_sd": np.full(n, 4.0),
                         "bag": np.asarray(bag, float)})
    return Cohort(data=data, control="HC", groups=tuple(dict.fromkeys(groups)))


def test_pick_examples_smallest_then_largest_bag_per_group():
    from bagkit.predictors.examples import pick_examples

    #            s0    s1   s2    s3     s4   s5    s6    s7   s8
    bag = [3.0, -2.0, 7.0, np.nan, 1.0, 9.0, 9.0, -5.0, 2.0]
    groups = ["HC", "HC", "HC", "MS", "MS", "MS", "MS", "HC", "RRMS"]
    cohort = _cohort(bag, groups)
    picked = [(cohort.data.at[label, "subject_id"], why) for label, why in pick_examples(cohort.data, cohort.groups)]
    # HC: smallest s7 (-5), largest s2 (7); MS: NaN ignored, smallest s4, largest tie s5/s6 -> first (s5);
    # RRMS: one subject, shown once
    assert picked == [("s7", "smallest BAG"), ("s2", "largest BAG"), ("s4", "smallest BAG"), ("s5", "largest BAG"),
                      ("s8", "only subject")]
    chosen = pick_examples(cohort.data, cohort.groups, subjects=["s8", "s0"])
    assert [(cohort.data.at[label, "subject_id"], why) for label, why in chosen] == [("s8", "chosen"), ("s0", "chosen")]
    for subjects, message in ((["s0", "nobody"], "'nobody' is not a subject_id"), (["s3"], "'s3' has no brain age"),
                              (["x", "s0", "y"], "'x', 'y' are not subject_ids"),
                              (["s1", "s1"], "s1 given more than once")):
        with pytest.raises(RequestError, match=message):
            pick_examples(cohort.data, cohort.groups, subjects=subjects)


def test_the_file_shown_is_the_one_predicted(tmp_path):
    from bagkit.predictors.examples import _scan_paths

    data = pd.DataFrame({"scan": ["raw/a.nii.gz", "/abs/b.nii.gz", "raw/c.nii.gz", None],
                         "preprocessed_scan": ["/store/a_desc-preproc_T1w.nii.gz", "", np.nan, ""]})
    paths = _scan_paths(data, tmp_path)  # --preprocess: the preprocessed file, else the table's scan
    assert [None if p is None else str(p) for p in paths] == [
        "/store/a_desc-preproc_T1w.nii.gz", "/abs/b.nii.gz", str(tmp_path / "raw/c.nii.gz"), None]


def test_mid_planes_are_turned_for_display():
    from bagkit.predictors.examples import mid_planes

    volume = np.zeros((20, 24, 22), np.float32)  # RAS: x left→right, y posterior→anterior, z inferior→superior
    volume[2:19, 2:23, 2:21] = 1.0                # the "brain": centre (10, 12, 11)
    volume[4, 12, 18] = 5.0                       # left, mid, superior: on the coronal plane
    volume[10, 20, 11] = 7.0                      # mid, anterior, mid: on the sagittal and axial planes
    planes = mid_planes(volume)
    assert planes["coronal"].shape == (22, 20) and planes["sagittal"].shape == (22, 24)
    assert planes["axial"].shape == (24, 20)
    row, column = np.argwhere(planes["coronal"] == 5.0)[0]
    assert row == 22 - 1 - 18 and column == 4    # superior at the top, the subject's left on the left
    row, column = np.argwhere(planes["sagittal"] == 7.0)[0]
    assert row == 22 - 1 - 11 and column == 20   # anterior on the right
    row, column = np.argwhere(planes["axial"] == 7.0)[0]
    assert row == 24 - 1 - 20 and column == 10   # anterior at the top


# ----------------------------------------------------------------------------- the analysis
def _example(subject, group, why, centers=None, probabilities=None):
    planes = {name: np.ones((4, 5), np.float32) for name in ("sagittal", "coronal", "axial")}
    return ExampleInput(subject, group, why, f"/nowhere/{subject}.nii.gz", planes, centers, probabilities, "test")


def test_analysis_numbers_from_the_distribution():
    from bagkit.analyses.examples import run_example_subjects

    cohort = _cohort([4.0, -3.0], ["HC", "HC"], ids=["a", "b"], age=[40.0, 60.0])
    centers = np.arange(20.5, 90.0, 1.0)
    p = np.exp(-0.5 * ((centers - 44.0) / 4.0) ** 2)
    p /= p.sum()
    q = np.where(centers == 57.5, 1.0, 0.0)
    cohort = cohort.with_examples([_example("b", "HC", "smallest BAG", centers, q),
                                   _example("a", "HC", "largest BAG", centers, p)])
    result = run_example_subjects(cohort)
    assert [s.subject_id for s in result.subjects] == ["b", "a"]
    a = result.subjects[1]
    assert a.brain_age == 44.0 and a.bag == 4.0 and a.age == 40.0
    assert a.peak_age == pytest.approx(44.5) or a.peak_age == pytest.approx(43.5)
    inside = (centers >= 40.0) & (centers <= 48.0)  # brain age ± SD = 44 ± 4
    assert a.probability_within_sd == pytest.approx(p[inside].sum(), abs=1e-12)
    # one range for every panel: both ages, brain age ± 2 SD and bins with p >= 1e-3, whole years
    low, high = result.shown_from, result.shown_to
    assert low <= 36.0 and high >= 64.0 and low == int(low) and high == int(high)
    assert a.probability_mass_shown == pytest.approx(p[(centers >= low) & (centers <= high)].sum())
    tidy = result.tidy()
    row = tidy[(tidy.analysis == "example_subjects") & (tidy.term == "a") & (tidy.statistic == "bag")]
    assert row[["subset", "contrast", "value"]].values.tolist() == [["HC", "largest BAG", 4.0]]
    bins = tidy[(tidy.analysis == "example_age_distribution") & (tidy.term == "b")]
    assert len(bins) == len(centers) and bins.value.sum() == pytest.approx(1.0)
    assert bins.loc[bins.value.idxmax(), "contrast"] == "bin 57.5"
    # with an age-bias correction: the gap as predicted beside the corrected one the analyses used
    corrected = run_example_subjects(cohort.with_corrected_bag([1.5, -0.5], "test correction", {}))
    assert [(s.bag, s.bag_corrected) for s in corrected.subjects] == [(-3.0, -0.5), (4.0, 1.5)]
    assert set(corrected.tidy().query("analysis == 'example_subjects' and term == 'a'").statistic) >= {
        "bag", "bag_corrected"}


def test_the_figure_draws_what_the_result_holds():
    pytest.importorskip("matplotlib")
    from bagkit.analyses.examples import run_example_subjects
    from bagkit.plots.examples import example_subjects_figure, panel_letters

    assert panel_letters(3) == ["D", "E", "F"] and panel_letters(25)[-3:] == ["Z", "A2", "B2"]
    centers = np.arange(20.5, 90.0, 1.0)
    p = np.exp(-0.5 * ((centers - 47.0) / 3.0) ** 2)
    cohort = _cohort([4.0, -3.0, 1.0], ["HC", "HC", "MS"], ids=["a", "b", "$c$"], age=[40.0, 60.0, 50.0])
    for examples in ([_example("a", "HC", "chosen", centers, p / p.sum())],
                     [_example("a", "HC", "chosen", centers, p / p.sum()), _example("b", "HC", "chosen"),
                      _example("$c$", "MS", "chosen", centers, p / p.sum())]):
        result = run_example_subjects(cohort.with_examples(examples))
        figure = example_subjects_figure(result, {"HC": "#7F7F7F"})
        assert len(figure.axes) == 2 * len(examples)
        titles = [ax.get_title(loc="left") for ax in figure.axes[::2]]
        assert titles == panel_letters(len(examples))
        lines = figure.axes[1].get_lines()  # brain age (solid), ± SD (dashed), age (dotted)
        assert [line.get_linestyle() for line in lines] == ["-", "--", "--", ":"]
        assert lines[0].get_xdata()[0] == pytest.approx(44.0) and lines[3].get_xdata()[0] == pytest.approx(40.0)
        figure.savefig(__import__("io").BytesIO(), format="png", dpi=40)  # a "$" in an id is text, not mathtext


def test_without_scans_the_section_is_skipped_with_a_note():
    from bagkit.analyses.examples import run_example_subjects

    cohort = _cohort([1.0, 2.0], ["HC", "MS"])
    with pytest.raises(AnalysisError, match="Figure 1 D-G.*given in the table"):
        run_example_subjects(cohort)
    with pytest.warns(UserWarning, match="replaced by the predictions of x"):
        predicted = cohort.with_predictions(cohort.data[["brain_age", "brain_age_sd"]].assign(prediction_error=""), "x")
    with pytest.raises(AnalysisError, match="brain age was predicted, but.*with_example_inputs"):
        run_example_subjects(predicted)
    no_brain_age = Cohort(data=cohort.data.drop(columns=["brain_age", "brain_age_sd", "bag"]), control="HC",
                          groups=("HC", "MS"))
    assert run_example_subjects(no_brain_age) is None  # "no brain age" is said once, elsewhere


# ----------------------------------------------------------------------------- end to end
#: R's reading of results.csv: per example subject, the moments of its bins, the mass within brain age
#: ± SD, the peak; and per group the smallest / largest BAG of the cohort the report analysed
R_REFERENCE = r"""
args <- commandArgs(trailingOnly = TRUE)
r <- read.csv(args[1], stringsAsFactors = FALSE)
d <- read.csv(args[2], stringsAsFactors = FALSE)
bins <- r[r$analysis == "example_age_distribution", ]
ex <- r[r$analysis == "example_subjects", ]
for (s in unique(bins$term)) {
  b <- bins[bins$term == s, ]
  centre <- as.numeric(sub("^bin ", "", b$contrast)); p <- b$value
  m <- weighted.mean(centre, p)
  ba <- ex$value[ex$term == s & ex$statistic == "brain_age"]; sd <- ex$value[ex$term == s & ex$statistic == "brain_age_sd"]
  cat(sprintf("%s,mean,%.15g\n", s, m)); cat(sprintf("%s,sd,%.15g\n", s, sqrt(sum(p * (centre - m)^2))))
  cat(sprintf("%s,within,%.15g\n", s, sum(p[centre >= ba - sd & centre <= ba + sd])))
  cat(sprintf("%s,peak,%.15g\n", s, centre[which.max(p)]))
}
d$bag <- d$brain_age - d$age
for (g in unique(d$group)) {
  x <- d[d$group == g, ]
  cat(sprintf("%s,smallest,%s\n", g, x$subject_id[which.min(x$bag)]))
  cat(sprintf("%s,largest,%s\n", g, x$subject_id[which.max(x$bag)]))
}
"""


def r_reference(results_csv, cohort_csv) -> dict[tuple[str, str], str]:
    if shutil.which("Rscript") is None:
        pytest.fail("Rscript not found: R is required for the cross-checks (bash scripts/setup.sh installs it)")
    done = subprocess.run(["Rscript", "--vanilla", "-e", R_REFERENCE, str(results_csv), str(cohort_csv)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return {(k, what): v for k, what, v in (line.split(",") for line in done.stdout.strip().splitlines())}


@pytest.fixture(scope="module")
def phantom_study(tmp_path_factory):
    """12 phantom scans in three groups, a tiny SFCN trained on them (2 epochs) and saved."""
    pytest.importorskip("nilearn")
    pytest.importorskip("torch")
    from bagkit._testing.phantoms import write_phantom_cohort
    from bagkit_sfcn import SFCNBrainAge

    folder = tmp_path_factory.mktemp("examples_study")
    path = write_phantom_cohort(folder, n=12, seed=3, groups={"HC": 0.0, "MS": 8.0, "NMOSD": 4.0})
    frame = pd.read_csv(path)
    frame["sex"] = ["F", "M"] * 6
    frame.to_csv(path, index=False)
    model = SFCNBrainAge(channels=(4, 4, 8, 8, 8, 4), input_shape=(40, 48, 40), age_range=(10, 90), epochs=2,
                         batch_size=4, progress=False, validation_fraction=0.25, precision="fp32", num_threads=1)
    model.fit([folder / s for s in frame.scan], frame.age.to_numpy())
    return path, model.save(folder / "sfcn.pt")


def _with_brain_age(cohort_csv, cache, weights, folder):
    """The cohort table with the brain ages the report used (read back from its prediction cache)."""
    from bagkit.predictors import load_predictor, predict_cohort

    frame = pd.read_csv(cohort_csv)
    predicted = predict_cohort(frame, load_predictor("sfcn", weights, num_threads=1), base_dir=cohort_csv.parent,
                               cache_dir=cache, progress=False)
    frame["brain_age"] = predicted["brain_age"]
    frame.to_csv(folder / "with_brain_age.csv", index=False)
    return folder / "with_brain_age.csv"


def test_report_shows_the_examples(phantom_study, tmp_path):
    from bagkit.cli import cli

    cohort_csv, weights = phantom_study
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["report", str(cohort_csv), "-p", "sfcn", "--model", str(weights), "--param",
                                      "num_threads=1", "--cache-dir", str(tmp_path / "cache"), "-o", str(out),
                                      "--formats", "pdf"])
    assert result.exit_code == 0, result.output
    assert "Figure 1 D-G: input slices and age distributions of 6 example subject(s) (sfcn)" in result.output
    assert (out / "figures" / "figure1_examples.png").is_file()
    tidy = pd.read_csv(out / "results.csv")
    cohort = pd.read_csv(cohort_csv)
    rows = tidy[tidy.analysis == "example_subjects"]
    shown = rows.drop_duplicates("term")
    assert shown[["subset", "contrast"]].values.tolist() == [
        [group, why] for group in ("HC", "MS", "NMOSD") for why in ("smallest BAG", "largest BAG")]
    table1 = tidy[(tidy.analysis == "table1") & (tidy.term == "bag") & (tidy.statistic.isin(["min", "max"]))]
    for _, row in shown.iterrows():  # the smallest / largest BAG of its group, as Table 1's min / max
        bag = rows[(rows.term == row.term) & (rows.statistic == "bag")].value.iloc[0]
        extreme = table1[(table1.subset == row.subset) & (table1.statistic == ("min" if "smallest" in row.contrast
                                                                               else "max"))].value.iloc[0]
        assert bag == pytest.approx(extreme, abs=1e-9)
        age = rows[(rows.term == row.term) & (rows.statistic == "age")].value.iloc[0]
        assert age == pytest.approx(cohort.set_index("subject_id").at[row.term, "age"])
        bins = tidy[(tidy.analysis == "example_age_distribution") & (tidy.term == row.term)]
        assert len(bins) == 80 and bins.value.sum() == pytest.approx(1.0, abs=1e-9)
        mean = (bins.contrast.str.removeprefix("bin ").astype(float) * bins.value).sum()
        brain_age = rows[(rows.term == row.term) & (rows.statistic == "brain_age")].value.iloc[0]
        assert mean == pytest.approx(brain_age, abs=1e-6)  # the bars' mean is the brain age the report states (as R)

    # R on the same numbers: the bins' weighted mean and SD are the stated brain age and SD (1e-6 y: the bins
    # come from a forward pass of the one volume, the brain age from the cohort's batches; float32 kernels
    # chosen per batch size differ in the last bits, ~1e-9 y here), the mass within ± SD and the peak are R's
    # on the same CSV values (1e-12),
    # and the subjects shown are R's which.min / which.max of brain_age - age per group
    reference = r_reference(out / "results.csv", _with_brain_age(cohort_csv, tmp_path / "cache", weights, tmp_path))
    for _, row in shown.iterrows():
        values = rows[rows.term == row.term].set_index("statistic").value
        assert float(reference[(row.term, "mean")]) == pytest.approx(values["brain_age"], abs=1e-6)
        assert float(reference[(row.term, "sd")]) == pytest.approx(values["brain_age_sd"], abs=1e-6)
        assert float(reference[(row.term, "within")]) == pytest.approx(values["probability_within_sd"], abs=1e-12)
        assert float(reference[(row.term, "peak")]) == pytest.approx(values["peak_age"], abs=1e-12)
        assert reference[(row.subset, row.contrast.split()[0])] == row.term

    refused = CliRunner().invoke(cli, ["report", str(cohort_csv), "-p", "sfcn", "--model", str(weights),
                                       "--cache-dir", str(tmp_path / "cache2"), "-o", str(tmp_path / "r2"),
                                       "--formats", "pdf", "--example-subjects", "sub-001,nobody"])
    assert refused.exit_code == 1 and "'nobody' is not a subject_id" in refused.output
    assert not (tmp_path / "cache2").exists()  # refused before any scan was predicted
    unasked = CliRunner().invoke(cli, ["report", str(cohort_csv), "--example-subjects", "sub-001", "-o",
                                       str(tmp_path / "r3")])
    assert unasked.exit_code == 2
    assert "--example-subjects, --weights" in unasked.output and "need --predictor" in unasked.output


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_api_examples_reach_every_renderer_without_opening_a_scan(phantom_study, tmp_path):
    pytest.importorskip("bagkit_gpr")
    import bagkit
    from bagkit.predictors import load_predictor, predict_cohort
    from bagkit.predictors.examples import with_example_inputs
    from bagkit.report import document
    from bagkit.report.tables import Figure, figures_of
    from bagkit_gpr import GaussianProcessBrainAge

    cohort_csv, weights = phantom_study
    folder = tmp_path / "study"
    shutil.copytree(cohort_csv.parent, folder)
    cohort = bagkit.read_cohort(folder / "cohort.csv")
    sfcn = load_predictor("sfcn", weights, num_threads=1)
    cohort = cohort.with_predictions(predict_cohort(cohort.data, sfcn, base_dir=folder, progress=False), "sfcn")
    chosen = with_example_inputs(cohort, sfcn, base_dir=folder, subjects=["sub-003", "sub-001"])
    assert [(e.subject_id, e.chosen_as, e.probabilities.shape) for e in chosen.examples] == [
        ("sub-003", "chosen", (80,)), ("sub-001", "chosen", (80,))]

    # GP regression has no age bins: brain age ± SD with the Gaussian of its predictive SD, said in the caption
    controls = cohort.data[cohort.data.group == "HC"]
    gpr = GaussianProcessBrainAge(input_shape=(40, 48, 40), downsample=2, n_components=3, n_restarts_optimizer=0)
    gpr.fit([folder / s for s in controls.scan], controls.age.to_numpy())
    with pytest.warns(UserWarning, match="replaced by the predictions of gpr"):
        gpr_cohort = cohort.with_predictions(predict_cohort(cohort.data, gpr, base_dir=folder, progress=False), "gpr")
    gpr_cohort = with_example_inputs(gpr_cohort, gpr, base_dir=folder)
    assert len(gpr_cohort.examples) == 6 and not any(e.has_distribution for e in gpr_cohort.examples)

    shutil.rmtree(folder / "scans")  # from here on, nothing may read a scan
    for case, subject_count, words in ((chosen, 2, "(D) NMOSD sub-003, chosen: brain age"),
                                        (gpr_cohort, 6, "Gaussian N(brain age, SD²) of its predictive SD")):
        results = bagkit.analyze(case)
        assert len(results.example_subjects.subjects) == subject_count
        doc = document(results)
        figure = next(f for f in figures_of(doc) if f.name == "figure1_examples")
        assert isinstance(figure, Figure) and words in figure.caption
        names = [getattr(b, "name", None) for b in doc.blocks()]
        assert names.index("figure1_examples") == names.index("figure1") + 1  # right after Figure 1 A-C
    written = results.write(tmp_path / "out", formats=("pdf", "docx", "html"))
    assert (written.out / "figures" / "figure1_examples.png").stat().st_size > 10_000
    import docx

    from bagkit.report.tables import plain

    html = plain(written.html.read_text(encoding="utf-8"))
    word = plain("\n".join(p.text for p in docx.Document(str(written.docx)).paragraphs))
    for text in (html, word):  # the same caption in every format, from the one model
        assert "Figure 1 D–I. Sample inputs and prediction results" in text and "(I) NMOSD sub-" in text
    assert html.count("<img") >= 3 and len(docx.Document(str(written.docx)).inline_shapes) >= 3
    tidy = results.tidy()
    assert "example_age_distribution" not in set(tidy.analysis)  # no bins for GPR
    assert {"age", "brain_age", "brain_age_sd", "bag"} == set(tidy[tidy.analysis == "example_subjects"].statistic)
