"""``bagkit preprocess --workers 2``: one Dask task per scan gives the serial outputs and qc.csv;
a broken scan is that scan's error; a rerun reads the cache and starts no cluster.

The two small raw heads of conftest.py; the serial reference is made here with 1 thread, as each
task of `--workers 2` on 2 cores has."""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from tests.imaging.conftest import VOXELS

pytest.importorskip("distributed")

from bagkit.imaging.qc import METRICS  # noqa: E402

REFERENCE = "sub-02_T1w.nii.gz"  # the head also preprocessed serially (1 thread)


@pytest.fixture(scope="module")
def distributed_run(tmp_path_factory):
    """The same two heads and a broken 'scan', preprocessed by `--workers 2` into a new folder."""
    from bagkit.cli import cli
    from bagkit.imaging.pipeline import preprocess_scans
    from bagkit.predictors.preprocess_distributed import pin_threads

    pytest.importorskip("SimpleITK")
    pytest.importorskip("deepbet")
    pytest.importorskip("nilearn")
    from bagkit._testing.heads import make_raw_head

    inputs = tmp_path_factory.mktemp("dask-raw")
    for seed, (name, voxels) in enumerate(VOXELS.items(), start=11):  # conftest's heads
        nib.save(make_raw_head(np.random.default_rng(seed), voxel_mm=voxels).image, str(inputs / name))
    # the serial reference with the threads of each task of `--workers 2` on 2 cores: 1 (N4,
    # registration and deepbet sum in another order with more threads: ~1e-4 apart)
    import SimpleITK as sitk
    import torch

    before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads(), torch.get_num_threads()
    serial_out = tmp_path_factory.mktemp("serial-1-thread")
    try:
        pin_threads(1)
        preprocess_scans([inputs / REFERENCE], serial_out)  # one head (the suite's time); both are named
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(before[0])
        torch.set_num_threads(before[1])
    (inputs / "sub-03_T1w.nii.gz").write_bytes(b"not a NIfTI file")
    out = inputs / "derivatives"
    scans = [str(inputs / n) for n in (*VOXELS, "sub-03_T1w.nii.gz")]
    result = CliRunner().invoke(cli, ["preprocess", *scans, "-o", str(out), "--workers", "2", "-q"])
    return inputs, out, serial_out, scans, result


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_workers_give_the_serial_outputs_and_qc(distributed_run):
    _inputs, out, serial_out, _scans, result = distributed_run
    assert result.exit_code == 0, result.output
    assert "2 passed, 0 flagged, 1 failed" in result.output
    # the same BIDS-derivative names for the serial head; the other head's files are named alike
    assert [f for f in _files(out) if "sub-02" in f] == [f for f in _files(serial_out) if f != "qc.csv"]
    assert sorted(f.replace("sub-01_ses-a", "sub-02") for f in _files(out) if "sub-01" in f) == \
        [f for f in _files(serial_out) if f != "qc.csv"]
    assert not [f for f in _files(out) if "sub-03" in f]  # nothing for the broken scan
    qc = pd.read_csv(out / "qc.csv").set_index("name")
    serial = pd.read_csv(serial_out / "qc.csv").set_index("name")
    for name in serial.index:
        assert qc.at[name, "status"] == serial.at[name, "status"] == "ok"
        assert qc.at[name, "input_sha256"] == serial.at[name, "input_sha256"]
        for column in METRICS:  # every QC number (not the seconds)
            assert qc.at[name, column] == pytest.approx(serial.at[name, column], rel=1e-6, abs=1e-6), column
    for path in serial_out.rglob("*_T1w.nii.gz"):
        mine = nib.load(str(out / path.relative_to(serial_out)))
        theirs = nib.load(str(path))
        np.testing.assert_allclose(mine.affine, theirs.affine, atol=1e-6)
        np.testing.assert_allclose(np.asarray(mine.dataobj), np.asarray(theirs.dataobj), atol=1e-6)


def test_a_broken_scan_is_its_own_error(distributed_run):
    _inputs, out, _serial_out, scans, result = distributed_run
    qc = pd.read_csv(out / "qc.csv", keep_default_na=False).set_index("name")
    assert qc.at["sub-03", "status"] == "error"
    assert scans[2] in qc.at["sub-03", "error"]
    assert f"failed {scans[2]}" in result.output
    assert list(qc.loc[["sub-01_ses-a", "sub-02"], "status"]) == ["ok", "ok"]


def test_a_rerun_does_nothing_and_starts_no_cluster(distributed_run, monkeypatch):
    from bagkit.cli import cli
    from bagkit.predictors import distributed as engine

    _inputs, out, _serial_out, scans, _result = distributed_run
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != "qc.csv"}

    def no_cluster(*_args, **_kwargs):
        raise AssertionError("a rerun of cached scans must not start a cluster")

    monkeypatch.setattr(engine, "_connect", no_cluster)
    from bagkit.predictors import preprocess_distributed

    monkeypatch.setattr(preprocess_distributed, "_connect", no_cluster)
    result = CliRunner().invoke(cli, ["preprocess", *scans[:2], "-o", str(out), "--workers", "2", "-q"])
    assert result.exit_code == 0, result.output
    assert "2 from the cache" in result.output
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_a_worker_that_cannot_read_a_scan_or_write_the_output_says_so(tmp_path):
    """The task's own check (run here, as a worker would): not a per-scan error but a stop."""
    from bagkit.predictors.distributed import WorkerSetupError
    from bagkit.predictors.preprocess_distributed import _preprocess_task

    with pytest.raises(WorkerSetupError, match="cannot read the scan .*missing_T1w.nii.gz.*same paths"):
        _preprocess_task(str(tmp_path / "missing_T1w.nii.gz"), str(tmp_path), None)
    scan = tmp_path / "sub-09_T1w.nii.gz"
    scan.write_bytes(b"x")
    with pytest.raises(WorkerSetupError, match="cannot write into the output folder .*nowhere"):
        _preprocess_task(str(scan), str(tmp_path / "nowhere"), None)
