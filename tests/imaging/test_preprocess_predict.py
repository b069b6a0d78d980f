"""``bagkit predict --preprocess``: raw scans go through the pipeline (cached by content), scans
declared preprocessed pass through, a bad scan is left out with the reason, and brain age from the
raw path agrees with brain age from the clean image.

The predictor (``phantom_model``, conftest.py) is a GP regression trained on age-varying phantoms
(``bagkit._testing.phantoms``: ventricles widen and cortex thins with age) cut from the MNI152
template's 1 mm grid, so it reads the same region of a preprocessed scan. The synthetic head's brain *is* the template, so the clean
image is the template itself: the two brain ages must differ by < 1 y (the issue's tolerance).
"""
from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

pytest.importorskip("SimpleITK")
pytest.importorskip("deepbet")
pytest.importorskip("sklearn")

from bagkit.cli import cli  # noqa: E402
from bagkit.imaging.itk import mni_template  # noqa: E402
from bagkit.imaging.pipeline import output_paths  # noqa: E402


def test_predict_preprocess_raw_passthrough_and_bad(preprocessed, phantom_model, tmp_path):
    folder, out, _, result = preprocessed
    assert result.exit_code == 0, result.output
    # the store is content-addressed: seed it with sub-02's outputs, which must be found, not recomputed
    sidecar = json.loads(output_paths(out, "sub-02")["sidecar"].read_text())
    store = tmp_path / "store"
    (store / sidecar["input_sha256"][:16]).mkdir(parents=True)
    for path in output_paths(out, "sub-02").values():
        shutil.copy(path, store / sidecar["input_sha256"][:16] / path.name)
    template = mni_template()
    clean = tmp_path / "template_space-MNI152NLin2009aSym_desc-preproc_T1w.nii.gz"   # passes through by name
    nib.save(nib.Nifti1Image(template.t1 / template.t1[template.mask].mean(), template.affine), str(clean))
    constant = tmp_path / "constant.nii.gz"
    nib.save(nib.Nifti1Image(np.full((128, 128, 120), 5.0, np.float32), np.eye(4)), str(constant))
    cohort = tmp_path / "cohort.csv"
    pd.DataFrame({"subject_id": ["raw", "clean", "bad"], "age": [30, 30, 30],
                  "scan": [str(folder / "sub-02_T1w.nii.gz"), clean.name, constant.name]}).to_csv(cohort, index=False)
    predictions = tmp_path / "predictions.csv"
    run = CliRunner().invoke(cli, ["predict", str(cohort), "-p", "gpr", "--model", str(phantom_model), "--preprocess",
                                   "--preprocess-dir", str(store), "--cache-dir", str(tmp_path / "cache"),
                                   "-o", str(predictions), "--quiet"])
    assert run.exit_code == 0, run.output
    table = pd.read_csv(predictions, keep_default_na=False).set_index("subject_id")
    print(table.T)
    assert table.loc["raw", "preprocess_status"] == "ok"
    assert table.loc["clean", "preprocess_status"] == "passed through"
    assert table.loc["bad", "preprocess_status"] == "error"
    assert "preprocessing" in table.loc["bad", "prediction_error"] and "constant" in table.loc["bad", "prediction_error"]
    assert table.loc["raw", "prediction_error"] == "" and table.loc["clean", "prediction_error"] == ""
    difference = float(table.loc["raw", "brain_age"]) - float(table.loc["clean", "brain_age"])
    print(f"brain age raw path {table.loc['raw', 'brain_age']}, clean image {table.loc['clean', 'brain_age']}, "
          f"difference {difference:+.3f} y")
    assert abs(difference) < 1.0
    assert float(table.loc["raw", "icv_ml"]) == pytest.approx(sidecar["qc"]["mask_volume_ml"])
    assert 0 < float(table.loc["raw", "brain_volume_ml"]) < float(table.loc["raw", "icv_ml"])
    # nothing was recomputed: the store holds only the seeded folder
    assert [p.name for p in store.iterdir()] == [sidecar["input_sha256"][:16]]


def test_preprocess_options_need_preprocess(tmp_path):
    cohort = tmp_path / "c.csv"
    pd.DataFrame({"subject_id": ["a"], "scan": ["a.nii.gz"]}).to_csv(cohort, index=False)
    run = CliRunner().invoke(cli, ["predict", str(cohort), "-p", "gpr", "--keep-flagged", "-o", str(tmp_path / "p.csv")])
    assert run.exit_code != 0 and "need --preprocess" in run.output


def test_report_preprocess_fills_volumes_and_shows_qc(preprocessed, phantom_model, tmp_path):
    """bagkit report --preprocess: volumes from the masks (said in the notes), the QC page, QC numbers
    in results.csv. Both raw heads are seeded into the store (cached), so nothing is recomputed."""
    pypdf = pytest.importorskip("pypdf")
    folder, out, _, _ = preprocessed
    store = tmp_path / "store"
    for stem in ("sub-01_ses-a", "sub-02"):
        sidecar = json.loads(output_paths(out, stem)["sidecar"].read_text())
        (store / sidecar["input_sha256"][:16]).mkdir(parents=True)
        for path in output_paths(out, stem).values():
            shutil.copy(path, store / sidecar["input_sha256"][:16] / path.name)
    constant = tmp_path / "constant.nii.gz"
    nib.save(nib.Nifti1Image(np.full((128, 128, 120), 5.0, np.float32), np.eye(4)), str(constant))
    cohort = tmp_path / "cohort.csv"
    pd.DataFrame({"subject_id": ["a", "b", "c", "d"], "group": ["HC", "HC", "MS", "MS"], "age": [30, 40, 35, 45],
                  "scan": [str(folder / "sub-01_ses-a_T1w.nii.gz"), str(folder / "sub-02_T1w.nii.gz"),
                           str(folder / "sub-02_T1w.nii.gz"), constant.name]}).to_csv(cohort, index=False)
    run = CliRunner().invoke(cli, ["report", str(cohort), "-p", "gpr", "--model", str(phantom_model), "--preprocess",
                                   "--preprocess-dir", str(store), "--cache-dir", str(tmp_path / "cache"),
                                   "-o", str(tmp_path / "report"), "-q"])
    assert run.exit_code == 0, run.output
    results = pd.read_csv(tmp_path / "report" / "results.csv", dtype={"subset": str})
    qc_rows = results[results["analysis"] == "preprocessing_qc"]
    counts = qc_rows[qc_rows["subset"] == "all"].set_index("statistic")["value"]
    assert float(counts["ok"]) == 3 and float(counts["error"]) == 1
    dice = qc_rows[(qc_rows["subset"] == "a") & (qc_rows["statistic"] == "template_dice")]["value"]
    assert float(dice.iloc[0]) >= 0.95
    text = "".join(page.extract_text() for page in pypdf.PdfReader(tmp_path / "report" / "report.pdf").pages)
    assert "Preprocessing QC" in text and "estimated from the preprocessing" in text
    # Figure 1 D-G from the preprocessed scans the predictor read (d failed): HC's smallest and largest, MS's only
    examples = results[results["analysis"] == "example_subjects"].drop_duplicates("term")
    assert examples[["subset", "contrast"]].values.tolist() == [["HC", "smallest BAG"], ["HC", "largest BAG"],
                                                                ["MS", "only subject"]]
    assert "Figure 1 D–F. Sample inputs" in text and "Gaussian N(brain age, SD²)" in text
    assert sorted(p.name for p in store.iterdir()) == sorted(
        json.loads(output_paths(out, s)["sidecar"].read_text())["input_sha256"][:16] for s in ("sub-01_ses-a", "sub-02"))


def test_report_preprocess_needs_a_predictor(tmp_path, small_cohort_csv):
    run = CliRunner().invoke(cli, ["report", str(small_cohort_csv), "--preprocess", "-o", str(tmp_path / "r")])
    assert run.exit_code != 0 and "--preprocess need --predictor" in run.output


def test_qc_result_picks_flagged_and_a_sample_of_passed():
    from bagkit.analyses.preprocessing import PASSED_SAMPLE, run_preprocessing_qc
    from bagkit.cohort import Cohort

    n = 10
    data = pd.DataFrame({"subject_id": [f"s{i}" for i in range(n)], "group": ["HC"] * n, "age": [40.0] * n,
                         "preprocess_status": ["ok"] * 7 + ["flagged", "error", "passed through"],
                         "preprocess_flags": [""] * 7 + ["fov_cut", "", ""],
                         "qc_template_correlation": np.linspace(0.9, 0.99, n), "qc_template_dice": [0.97] * n,
                         "icv_ml": [1500.0] * n, "qc_picture": [f"/x/s{i}.png" for i in range(8)] + ["", ""]})
    pixels = {f"s{i}": np.zeros((4, 8, 3), np.uint8) for i in range(8)}  # read when the cohort was built
    result = run_preprocessing_qc(Cohort(data=data, control="HC", groups=("HC",), qc_pictures=pixels))
    assert result.counts() == {"ok": 7, "flagged": 1, "error": 1, "passed through": 1}
    shown = [subject for subject, _, _ in result.montage]
    assert shown[0] == "s7" and len(shown) == 1 + PASSED_SAMPLE and "s0" in shown and "s6" in shown
    tidy = result.tidy()
    assert tidy.query("subset == 's3' and statistic == 'template_correlation'")["value"].iloc[0] == \
        pytest.approx(data.loc[3, "qc_template_correlation"])
