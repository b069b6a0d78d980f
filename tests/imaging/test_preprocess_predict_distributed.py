"""``bagkit predict --preprocess --workers 2``: the preprocessing runs on the Dask cluster too (one
task per distinct raw scan, each into its folder of the content-addressed store), on the same
cluster as the prediction; the QC columns, the masks (bitwise) and the brain ages equal a serial
run's; a scan that fails on a worker is that scan's error; a rerun submits nothing.

The two small raw heads of conftest.py and its phantom GP model. The serial reference runs here
with 1 thread, as each task of `--workers 2` on 2 cores has."""
from __future__ import annotations

import time

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from tests.imaging.conftest import VOXELS

pytest.importorskip("distributed")
pytest.importorskip("SimpleITK")
pytest.importorskip("deepbet")
pytest.importorskip("nilearn")
pytest.importorskip("sklearn")

from bagkit.cli import cli  # noqa: E402
from bagkit.predictors.raw import QC_COLUMNS  # noqa: E402

SUBJECTS = ["a", "b", "b2", "bad"]   # b2: b's scan again (one job for both); bad: a constant image


def _predict(cohort, model, store, cache, out, *extra):
    return CliRunner().invoke(cli, ["predict", str(cohort), "-p", "gpr", "--model", str(model), "--preprocess",
                                    "--preprocess-dir", str(store), "--cache-dir", str(cache), "-o", str(out),
                                    *extra])


@pytest.fixture(scope="module")
def runs(tmp_path_factory, phantom_model):
    """The cohort predicted serially (1 thread) and with --workers 2; (folder, serial, dask, opened)."""
    import SimpleITK as sitk
    import torch

    from bagkit._testing.heads import make_raw_head
    from bagkit.predictors import distributed as engine
    from bagkit.predictors.preprocess_distributed import pin_threads

    folder = tmp_path_factory.mktemp("cohort-raw")
    names = list(VOXELS)
    for seed, (name, voxels) in enumerate(VOXELS.items(), start=11):  # conftest's heads
        nib.save(make_raw_head(np.random.default_rng(seed), voxel_mm=voxels).image, str(folder / name))
    nib.save(nib.Nifti1Image(np.full((128, 128, 120), 5.0, np.float32), np.eye(4)), str(folder / "constant.nii.gz"))
    pd.DataFrame({"subject_id": SUBJECTS, "age": [30, 40, 40, 50],
                  "scan": [names[0], names[1], names[1], "constant.nii.gz"]}).to_csv(folder / "cohort.csv", index=False)
    before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads(), torch.get_num_threads()
    clock = time.perf_counter()
    try:
        pin_threads(1)
        serial = _predict(folder / "cohort.csv", phantom_model, folder / "store-serial", folder / "cache-serial",
                          folder / "serial.csv", "--quiet")
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(before[0])
        torch.set_num_threads(before[1])
    serial_seconds = time.perf_counter() - clock
    opened = []
    real_open = engine._open

    def counting_open(*args, **kwargs):
        opened.append(args[1:3])
        return real_open(*args, **kwargs)

    clock = time.perf_counter()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "_open", counting_open)
        dask = _predict(folder / "cohort.csv", phantom_model, folder / "store-dask", folder / "cache-dask",
                        folder / "dask.csv", "--workers", "2")
    print(f"serial (1 thread): {serial_seconds:.1f} s; --workers 2: {time.perf_counter() - clock:.1f} s")
    return folder, serial, dask, opened


def _table(folder, name):
    return pd.read_csv(folder / name, keep_default_na=False).set_index("subject_id")


def test_workers_equal_the_serial_run(runs):
    folder, serial, dask, opened = runs
    assert serial.exit_code == 0, serial.output
    assert dask.exit_code == 0, dask.output
    # the preprocessing ran on Dask, one task per distinct scan (b and b2 share one), on the
    # cluster the prediction then used: one cluster for both stages
    assert "preprocess: 3 scan(s), 0 in the store, 3 to run on Dask" in dask.output
    assert opened == [(None, 2)]
    mine, theirs = _table(folder, "dask.csv"), _table(folder, "serial.csv")
    assert list(mine["preprocess_status"]) == ["ok", "ok", "ok", "error"]
    for column in QC_COLUMNS:
        if column == "qc_picture":  # in the run's own store
            assert [p.replace("store-dask", "store-serial") for p in mine[column]] == list(theirs[column])
        elif column.endswith("_ml") or column.startswith("qc_"):
            np.testing.assert_allclose(mine[column].replace("", np.nan).astype(float),
                                       theirs[column].replace("", np.nan).astype(float), rtol=1e-9, err_msg=column)
        else:
            assert list(mine[column]) == list(theirs[column]), column
    np.testing.assert_allclose(mine.loc[SUBJECTS[:3], "brain_age"].astype(float),
                               theirs.loc[SUBJECTS[:3], "brain_age"].astype(float), rtol=0, atol=1e-9)
    assert mine.loc["b", "brain_age"] == mine.loc["b2", "brain_age"]
    # the same store layout (folder per input SHA-256), the masks bitwise equal, the T1s to 1e-6
    files = sorted(p.relative_to(folder / "store-serial") for p in (folder / "store-serial").rglob("*.nii.gz"))
    assert files == sorted(p.relative_to(folder / "store-dask") for p in (folder / "store-dask").rglob("*.nii.gz"))
    assert len(files) == 4
    # the constant scan's folder, made for its task, is not left behind empty
    assert sorted(p.name for p in (folder / "store-dask").iterdir()) == \
        sorted(p.name for p in (folder / "store-serial").iterdir())
    for path in files:
        a = np.asarray(nib.load(str(folder / "store-dask" / path)).dataobj)
        b = np.asarray(nib.load(str(folder / "store-serial" / path)).dataobj)
        if "mask" in path.name:
            assert np.array_equal(a, b), path
        else:
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6, err_msg=str(path))


def test_a_scan_that_fails_on_a_worker_is_its_own_error(runs):
    folder, _serial, dask, _opened = runs
    table = _table(folder, "dask.csv")
    assert table.loc["bad", "preprocess_status"] == "error"
    assert table.loc["bad", "prediction_error"].startswith("preprocessing: ")
    assert "constant.nii.gz" in table.loc["bad", "prediction_error"] and "constant" in table.loc["bad",
                                                                                                 "prediction_error"]
    assert "error: " in dask.output and "constant.nii.gz" in dask.output  # its progress line
    assert (table.loc[["a", "b", "b2"], "prediction_error"] == "").all()


def test_a_rerun_submits_nothing_and_starts_no_cluster(runs, phantom_model, monkeypatch):
    from bagkit.predictors import distributed as engine
    from bagkit.predictors import preprocess_distributed

    folder, _serial, _dask, _opened = runs

    def no_cluster(*_args, **_kwargs):
        raise AssertionError("a rerun of cached scans must not start a cluster")

    monkeypatch.setattr(engine, "_open", no_cluster)
    monkeypatch.setattr(engine, "_connect", no_cluster)
    monkeypatch.setattr(preprocess_distributed, "_connect", no_cluster)
    store = folder / "store-dask"
    before = {p: p.stat().st_mtime_ns for p in store.rglob("*") if p.is_file()}
    # the constant scan, never stored, would be tried again: the rerun is of the three others
    pd.read_csv(folder / "cohort.csv").iloc[:3].to_csv(folder / "good.csv", index=False)
    rerun = _predict(folder / "good.csv", phantom_model, store, folder / "cache-dask", folder / "rerun.csv",
                     "--workers", "2")
    assert rerun.exit_code == 0, rerun.output
    assert "preprocess: 2 scan(s), 2 in the store, 0 to run on Dask" in rerun.output
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert sorted(p for p in store.rglob("*") if p.is_file()) == sorted(before)
    again, first = _table(folder, "rerun.csv"), _table(folder, "dask.csv")
    # the cache's values (1 ulp: pandas' CSV parser reads the last digit of a float approximately)
    np.testing.assert_allclose(again["brain_age"].astype(float), first.loc[["a", "b", "b2"], "brain_age"].astype(float),
                               rtol=0, atol=1e-12)


def test_the_plan_gives_the_runner_one_job_per_distinct_scan(tmp_path):
    """preprocess_cohort's plan, with a runner that computes nothing: duplicates share a job, a
    missing scan or an empty cell is refused before any runner, a declared scan passes through."""
    from bagkit.imaging.pipeline import PreprocessedScan, output_paths, preprocess_cohort
    from bagkit.io.hashing import file_hash

    (tmp_path / "x_T1w.nii.gz").write_bytes(b"scan x")
    (tmp_path / "y_T1w.nii.gz").write_bytes(b"scan y")
    frame = pd.DataFrame({"subject_id": ["s1", "s2", "s3", "s4", "s5", "s6"],
                          "scan": ["x_T1w.nii.gz", "y_T1w.nii.gz", "x_T1w.nii.gz", "gone_T1w.nii.gz", "",
                                   "p_space-MNI152NLin2009aSym_desc-preproc_T1w.nii.gz"]})
    seen = []

    def runner(jobs):
        seen.extend(jobs)
        return [PreprocessedScan(source=jobs[0].source, name=jobs[0].name,
                                 files=output_paths(jobs[0].folder, jobs[0].name), qc={"mask_volume_ml": 1400.0}),
                PreprocessedScan(source=jobs[1].source, name=jobs[1].name, error="y: not a T1")]

    done = preprocess_cohort(frame, base_dir=tmp_path, out_dir=tmp_path / "store", runner=runner)
    assert [(j.source.name, j.folder.name, j.name, j.force) for j in seen] == [
        ("x_T1w.nii.gz", file_hash(tmp_path / "x_T1w.nii.gz")[:16], "x", False),
        ("y_T1w.nii.gz", file_hash(tmp_path / "y_T1w.nii.gz")[:16], "y", False)]
    assert list(done.status["preprocess_status"]) == ["ok", "error", "ok", "error", "error", "passed through"]
    assert done.status.loc[3, "preprocess_error"] == f"{tmp_path / 'gone_T1w.nii.gz'}: scan file not found."
    assert done.status.loc[4, "preprocess_error"] == "no scan given"
    assert done.scans[0] == done.scans[2] == str(output_paths(seen[0].folder, "x")["t1"])
    assert done.status.loc[0, "icv_ml"] == 1400.0
    assert [r.name for r in done.results] == ["x", "y", "x", "gone"]
    assert not (tmp_path / "store").exists()  # the runner wrote nothing, and neither did the plan
