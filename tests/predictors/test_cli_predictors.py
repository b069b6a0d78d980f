"""The predictor commands end to end on a small phantom cohort written as NIfTI files."""
from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bagkit.cli.predictors import COMMANDS


@pytest.fixture(scope="module")
def cli():
    try:
        from bagkit.cli import cli as main
    except Exception:  # the main CLI is someone else's; fall back to a local group
        import click

        main = click.Group("bagkit")
        for command in COMMANDS:
            main.add_command(command)
    return main


@pytest.fixture(scope="module")
def phantom_cohort(tmp_path_factory):
    pytest.importorskip("nilearn")
    from bagkit._testing.phantoms import write_phantom_cohort

    folder = tmp_path_factory.mktemp("cohort")
    path = write_phantom_cohort(folder, n=40, seed=3, groups={"HC": 0.0, "MS": 8.0})
    frame = pd.read_csv(path)
    # one corrupt scan among the patients
    bad = folder / "scans" / "sub-bad_T1w.nii.gz"
    bad.write_bytes(gzip.compress(b"not a nifti" * 50))
    frame.loc[len(frame)] = {"subject_id": "sub-bad", "group": "MS", "age": 50.0, "scan": "scans/sub-bad_T1w.nii.gz"}
    frame.to_csv(path, index=False)
    return path


def test_commands_are_plain_commands():
    import click

    assert [c.name for c in COMMANDS] == ["predictors", "predict", "train", "lesion-fill", "compare"]
    assert not any(isinstance(c, click.Group) for c in COMMANDS)


def test_predictors_lists_installed(cli):
    result = CliRunner().invoke(cli, ["predictors"])
    assert result.exit_code == 0, result.output
    assert "sfcn" in result.output and "gpr" in result.output


def test_train_predict_compare(cli, phantom_cohort, tmp_path):
    runner = CliRunner()
    model = tmp_path / "gpr.npz"
    shape = ["--input-shape", "40,48,40", "--param", "downsample=1", "--param", "n_components=10"]
    result = runner.invoke(cli, ["train", str(phantom_cohort), "-p", "gpr", "-o", str(model), *shape])
    assert result.exit_code == 0, result.output
    assert model.is_file()
    out = tmp_path / "pred.csv"
    result = runner.invoke(cli, ["predict", str(phantom_cohort), "-p", "gpr", "--model", str(model),
                                 "-o", str(out), "--cache-dir", str(tmp_path / "cache"), "--quiet"])
    assert result.exit_code == 0, result.output
    predictions = pd.read_csv(out, keep_default_na=False)
    assert list(predictions.columns) == ["subject_id", "brain_age", "brain_age_sd", "prediction_error"]
    assert "sub-bad_T1w.nii.gz" in predictions.set_index("subject_id").prediction_error["sub-bad"]
    assert (predictions.prediction_error == "").sum() == 40

    shifted = predictions.copy()
    shifted["brain_age"] = pd.to_numeric(shifted.brain_age, errors="coerce") + 0.5
    other = tmp_path / "filled.csv"
    shifted.to_csv(other, index=False)
    png = tmp_path / "ba.png"
    result = runner.invoke(cli, ["compare", str(out), str(other), "--labels", "raw,filled", "--plot", str(png)])
    assert result.exit_code == 0, result.output
    assert "mean difference -0.50" in result.output and png.stat().st_size > 1000


def test_lesion_fill_command(cli, tmp_path, write_nifti):
    rng = np.random.default_rng(0)
    t1 = np.zeros((20, 20, 20), np.float32)
    t1[2:18, 2:18, 2:18] = rng.normal(100, 5, (16, 16, 16))
    mask = np.zeros_like(t1)
    mask[8:11, 8:11, 8:11] = 1
    t1_path, mask_path = write_nifti(tmp_path / "t1.nii.gz", t1), write_nifti(tmp_path / "m.nii.gz", mask)
    out = tmp_path / "filled.nii.gz"
    result = CliRunner().invoke(cli, ["lesion-fill", str(t1_path), str(mask_path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file()
    result = CliRunner().invoke(cli, ["lesion-fill", str(t1_path), str(tmp_path / "m.nii.gz"), "-o", str(t1_path)])
    assert result.exit_code != 0 and "overwrite" in result.output


def test_outputs_never_replace_inputs_and_existing_files_need_force(cli, phantom_cohort, tmp_path):
    runner = CliRunner()
    before = phantom_cohort.read_bytes()
    # refused before anything is predicted or trained: the cohort table is an input
    for command in (["predict", str(phantom_cohort), "-p", "gpr", "-o", str(phantom_cohort), "--force"],
                    ["train", str(phantom_cohort), "-p", "gpr", "-o", str(phantom_cohort), "--force"],
                    ["compare", str(phantom_cohort), str(phantom_cohort), "--column", "age",
                     "--out", str(phantom_cohort), "--force"]):
        result = runner.invoke(cli, command)
        assert result.exit_code != 0 and "would overwrite the input" in result.output, result.output
    assert phantom_cohort.read_bytes() == before
    # an existing output is kept unless --force
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    pd.DataFrame({"brain_age": [50.0, 60.0, 70.0, 65.0]}).to_csv(a, index=False)
    pd.DataFrame({"brain_age": [51.0, 60.5, 69.0, 66.0]}).to_csv(b, index=False)
    out = tmp_path / "agreement.csv"
    out.write_text("keep me")
    result = runner.invoke(cli, ["compare", str(a), str(b), "--out", str(out)])
    assert result.exit_code != 0 and "--force" in result.output and out.read_text() == "keep me"
    result = runner.invoke(cli, ["compare", str(a), str(b), "--out", str(out), "--force"])
    assert result.exit_code == 0, result.output
    assert "mean_difference" in set(pd.read_csv(out)["statistic"])
