"""Prediction as Dask distributed tasks: the serial results and cache, resilience, resuming, bad input.

Real clusters on 127.0.0.1: a LocalCluster of 2 worker processes (shared by the tests of this
file), `dask scheduler` + `dask worker` started as separate processes, and the CLI's own
`--workers 2`. The predictor that counts its predictions (bagkit._testing.counting) logs each
prediction with the process that made it, so "predicted exactly once" is counted, not assumed.
"""
from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

from bagkit._testing.counting import (  # noqa: E402
    CountingPredictor,
    loads_logged,
    predictions_logged,
    write_counting_scans,
)
from bagkit.errors import BagkitError  # noqa: E402
from bagkit.predictors import predict_cohort  # noqa: E402
from bagkit.predictors.distributed import predict_cohort_distributed  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PYTHON_PATH = os.pathsep.join([str(ROOT), str(ROOT / "predictors" / "sfcn"), str(ROOT / "predictors" / "gpr")])


def _wait_for(condition, seconds=30.0, what="condition"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _env(*extra_paths, **variables):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*map(str, extra_paths), PYTHON_PATH])
    env.update(variables)
    return env


@pytest.fixture(scope="module")
def local_cluster():
    """A LocalCluster of 2 worker processes (1 thread each), as --workers 2 makes on 2 cores."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Port .* is already in use", category=UserWarning)
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None, silence_logs=40)
    with cluster:
        yield cluster


@pytest.fixture(scope="module")
def entry_point_dir(tmp_path_factory):
    """A folder that, on a process's path, registers CountingPredictor as the predictor 'counting'."""
    folder = tmp_path_factory.mktemp("entry-points")
    info = folder / "bagkit_test_counting-0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bagkit-test-counting\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text(
        "[bagkit.predictors]\ncounting = bagkit._testing.counting:CountingPredictor\n")
    return folder


@pytest.fixture
def counting_registered(entry_point_dir, monkeypatch):
    """The predictor 'counting' registered in this process (for the CLI run in-process)."""
    from bagkit.predictors import available_predictors

    monkeypatch.syspath_prepend(str(entry_point_dir))
    available_predictors.cache_clear()
    yield
    available_predictors.cache_clear()


def _bagkit(*arguments):
    """Run the CLI in this process; (exit code, stdout, stderr)."""
    from click.testing import CliRunner

    from bagkit.cli import cli

    result = CliRunner().invoke(cli, [str(a) for a in arguments])
    return result.exit_code, result.stdout, result.stderr


class _DaskProcesses:
    """`dask scheduler` and `dask worker` as separate processes on 127.0.0.1, stopped at the end."""

    def __init__(self, folder: Path):
        self.folder, self.processes = folder, []
        self.scheduler_file = folder / "scheduler.json"
        dask_cli = str(Path(sys.executable).with_name("dask"))
        self._start([dask_cli, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                     "--scheduler-file", str(self.scheduler_file)], _env())
        _wait_for(self.scheduler_file.is_file, 30, "the scheduler file")
        self.address = json.loads(self.scheduler_file.read_text())["address"]
        self.dask_cli = dask_cli

    def _start(self, command, env, prefix=()):
        log = open(self.folder / f"process-{len(self.processes)}.log", "w")
        process = subprocess.Popen([*prefix, *command], env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.processes.append(process)
        return process

    def add_worker(self, env=None, prefix=()):
        with distributed.Client(self.address, timeout=10) as client:
            before = len(client.scheduler_info(n_workers=-1)["workers"])
            self._start([self.dask_cli, "worker", self.address, "--nworkers", "1", "--nthreads", "1",
                         "--no-dashboard", "--host", "127.0.0.1"], env or _env(), prefix)
            client.wait_for_workers(before + 1, timeout=30)

    def stop_worker(self, process):
        """SIGTERM: a `dask worker` stops its own worker process (its child) before it exits."""
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop(self):
        scheduler, *workers = self.processes
        for process in workers:
            self.stop_worker(process)
        scheduler.kill()  # it has no child processes; no need to wait for a graceful close
        scheduler.wait()


@pytest.fixture(scope="module")
def dask_processes(tmp_path_factory, entry_point_dir):
    """A scheduler with one worker, both started with the `dask` command, as a user would."""
    cluster = _DaskProcesses(tmp_path_factory.mktemp("dask-processes"))
    try:
        cluster.add_worker(_env(entry_point_dir))
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def counting_cohort(tmp_path):
    """12 scans (voxel value i → brain age 20 + i) in a table with paths relative to it."""
    scans = write_counting_scans(tmp_path / "scans", range(12))
    frame = pd.DataFrame({"subject_id": [f"sub-{i:02d}" for i in range(12)],
                          "scan": [str(p.relative_to(tmp_path)) for p in scans]})
    (tmp_path / "log").mkdir()
    return frame, tmp_path


def _cache_entries(cache: Path) -> dict[str, dict]:
    """The cached predictions (not the remembered scan digests in .scan-digests/), by file name."""
    return {p.relative_to(cache).as_posix(): json.loads(p.read_text()) for p in sorted(cache.glob("[!.]*/*.json"))}


# ------------------------------------------------------------------------- the serial results
@pytest.fixture(scope="module")
def gpr_cohort(tmp_path_factory):
    """A GPR predictor trained on 10 small phantoms, and 14 scans to predict (one corrupt, one missing)."""
    pytest.importorskip("nilearn")
    bagkit_gpr = pytest.importorskip("bagkit_gpr")
    from bagkit._testing.phantoms import write_phantom_cohort

    folder = tmp_path_factory.mktemp("gpr-cohort")
    table = pd.read_csv(write_phantom_cohort(folder, n=12, seed=3))
    predictor = bagkit_gpr.GaussianProcessBrainAge(n_components=8, input_shape=(40, 48, 40), downsample=2,
                                                   n_restarts_optimizer=0)
    predictor.fit([str(folder / s) for s in table.scan[:10]], table.age[:10].to_numpy())
    (folder / "scans" / "corrupt_T1w.nii.gz").write_bytes(gzip.compress(b"not a nifti" * 50))
    extra = pd.DataFrame({"subject_id": ["corrupt", "missing"], "group": "HC", "age": 50.0,
                          "scan": ["scans/corrupt_T1w.nii.gz", "scans/missing_T1w.nii.gz"]})
    return pd.concat([table, extra], ignore_index=True), folder, predictor


def test_local_cluster_gives_the_serial_predictions_and_cache(gpr_cohort, local_cluster, tmp_path):
    from threadpoolctl import threadpool_limits

    frame, folder, predictor = gpr_cohort
    with threadpool_limits(1):  # the workers run BLAS on 1 thread (Dask sets OMP_NUM_THREADS=1)
        serial = predict_cohort(frame, predictor, base_dir=folder, cache_dir=tmp_path / "serial",
                                progress=False, batch_size=1)
    spread = predict_cohort(frame, predictor, base_dir=folder, cache_dir=tmp_path / "dask",
                            progress=False, scheduler=local_cluster.scheduler_address)
    assert list(spread.index) == list(serial.index) and list(spread.columns) == list(serial.columns)
    ok = serial.prediction_error == ""
    assert ok.sum() == 12 and (spread.prediction_error == "").sum() == 12
    # within 1e-6 y; and, with the same thread count (1) and batch (1 scan), bit-identical
    np.testing.assert_allclose(spread.brain_age[ok], serial.brain_age[ok], rtol=0, atol=1e-6)
    np.testing.assert_allclose(spread.brain_age_sd[ok], serial.brain_age_sd[ok], rtol=0, atol=1e-6)
    assert (spread.brain_age[ok].to_numpy() == serial.brain_age[ok].to_numpy()).all()
    assert (spread.brain_age_sd[ok].to_numpy() == serial.brain_age_sd[ok].to_numpy()).all()
    # the same per-scan failures, each naming its file
    errors = spread.set_index("subject_id").prediction_error
    assert "corrupt_T1w.nii.gz" in errors["corrupt"] and "ImageError" in errors["corrupt"]
    assert errors["missing"] == serial.set_index("subject_id").prediction_error["missing"]
    assert "not found" in errors["missing"]
    # the same cache entries (keys and contents)
    assert _cache_entries(tmp_path / "dask") == _cache_entries(tmp_path / "serial")
    assert len(_cache_entries(tmp_path / "dask")) == 12
    # how the run was made, as data for the provenance page
    run = spread.attrs["prediction_run"]
    assert run["engine"] == "dask.distributed" and run["workers"] == 2 and run["scans_predicted"] == 12
    assert run["dask_version"] == __import__("dask").__version__
    assert run["scheduler"] == local_cluster.scheduler_address


def test_a_second_run_reads_the_cache_without_a_cluster(counting_cohort, local_cluster, monkeypatch):
    frame, folder = counting_cohort
    predictor = CountingPredictor(log_dir=str(folder / "log"))
    monkeypatch.chdir(folder)  # scan paths relative to this folder, which is not the workers' working folder
    first = predict_cohort(frame, predictor, base_dir=".", cache_dir=folder / "cache", progress=False,
                           scheduler=local_cluster.scheduler_address)
    again = predict_cohort(frame, predictor, base_dir=folder, cache_dir=folder / "cache", progress=False,
                           workers=2)
    pd.testing.assert_frame_equal(first, again)
    assert predictions_logged(folder / "log") == {float(i): 1 for i in range(12)}
    # the predictor was sent once and unpickled once per worker process, not once per scan
    loads = loads_logged(folder / "log")
    assert set(loads.values()) == {1} and 1 <= len(loads) <= 2 and os.getpid() not in loads
    assert again.attrs["prediction_run"]["scans_from_cache"] == 12
    assert again.attrs["prediction_run"]["workers"] == 0  # nothing left to do: no cluster started
    np.testing.assert_array_equal(first.brain_age, 20.0 + np.arange(12))


def test_a_rerun_stats_the_scans_instead_of_reading_them(counting_cohort, monkeypatch):
    """50 000 scans are not hashed again on every resume: the digest is remembered by file identity."""
    import bagkit.predictors.batch as batch

    frame, folder = counting_cohort
    hashed = []
    monkeypatch.setattr(batch, "file_hash", lambda path: hashed.append(path) or _sha256(path))
    first = predict_cohort(frame, CountingPredictor(), base_dir=folder, cache_dir=folder / "cache", progress=False)
    assert len(hashed) == 12
    second = predict_cohort(frame, CountingPredictor(), base_dir=folder, cache_dir=folder / "cache", progress=False)
    assert len(hashed) == 12  # nothing read again
    pd.testing.assert_frame_equal(first, second)
    scan = folder / frame.scan[3]
    scan.write_bytes(scan.read_bytes())  # rewritten (same bytes): its change time moves, so it is hashed again
    third = predict_cohort(frame, CountingPredictor(), base_dir=folder, cache_dir=folder / "cache", progress=False)
    assert len(hashed) == 13 and hashed[-1] == scan.resolve()
    pd.testing.assert_frame_equal(first, third)  # same content: the same cache entry


def _sha256(path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ------------------------------------------------------------------------- resilience
def test_a_killed_worker_loses_no_scan_and_predicts_none_twice(counting_cohort, local_cluster):
    frame, folder = counting_cohort
    log = folder / "log"
    predictor = CountingPredictor(log_dir=str(log), hold="scan-5.nii", delay=0.05)
    outcome = {}

    def run():
        try:
            outcome["out"] = predict_cohort(frame, predictor, base_dir=folder, cache_dir=folder / "cache",
                                            progress=False, scheduler=local_cluster.scheduler_address)
        except BaseException as error:  # noqa: BLE001 - reported below
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    _wait_for(lambda: any(log.glob("started-*")), 60, "the held scan to start")
    victim = int(next(log.glob("started-*")).name.split("-")[1])
    # Results still on a worker when it dies are lost with it and computed again (Dask's resilience);
    # kill once every scan predicted so far is in the client's cache, so the count below is exact.
    _wait_for(lambda: len(_cache_entries(folder / "cache")) == sum(predictions_logged(log).values()), 60,
              "the results so far to reach the client")
    os.kill(victim, signal.SIGKILL)  # the worker process dies mid-task; its nanny starts a new one
    (log / "release").write_text("")
    thread.join(120)
    assert not thread.is_alive() and "error" not in outcome, outcome.get("error")
    out = outcome["out"]
    assert (out.prediction_error == "").all()
    np.testing.assert_array_equal(out.brain_age, 20.0 + np.arange(12))
    counts = predictions_logged(log)
    assert counts == {float(i): 1 for i in range(12)}  # every scan, exactly once
    assert len(_cache_entries(folder / "cache")) == 12
    held = [int(p.name.split("-")[1]) for p in log.glob("started-*")]
    assert len(held) == 2 and victim in held  # the held scan was started again, by another process


def test_ctrl_c_keeps_what_is_done_and_the_rerun_predicts_nothing_twice(counting_cohort, local_cluster,
                                                                        entry_point_dir):
    frame, folder = counting_cohort
    log = folder / "log"
    frame.to_csv(folder / "cohort.csv", index=False)
    out = folder / "predictions.csv"
    command = [sys.executable, "-m", "bagkit", "predict", str(folder / "cohort.csv"), "-p", "counting",
               "--param", f"log_dir={json.dumps(str(log))}", "--param", 'hold="scan-7.nii"',
               "--param", "delay=0.05", "--cache-dir", str(folder / "cache"), "--workers", "2",
               "-o", str(out), "--quiet"]
    client = subprocess.Popen(command, env=_env(entry_point_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, start_new_session=True)
    try:
        _wait_for(lambda: any(log.glob("started-*")), 90, "the held scan to start")
        os.killpg(client.pid, signal.SIGINT)  # Ctrl-C while scan 7 is in flight: the whole process group
        time.sleep(0.5)
        (log / "release").write_text("")
        _, stderr = client.communicate(timeout=60)
    finally:
        if client.poll() is None:
            client.kill()
    assert client.returncode != 0
    assert not out.exists()  # no half-written output
    assert "finishing the" in stderr and "the same command goes on from there" in stderr
    stopped = predictions_logged(log)
    assert stopped.get(7.0) == 1 and len(stopped) < 12
    cached = len(_cache_entries(folder / "cache"))
    assert cached == len(stopped)  # every scan predicted before the stop is in the cache

    predictor = CountingPredictor(log_dir=str(log), hold="scan-7.nii", delay=0.05)
    result = predict_cohort(frame, predictor, base_dir=folder, cache_dir=folder / "cache", progress=False,
                            scheduler=local_cluster.scheduler_address)
    assert (result.prediction_error == "").all()
    np.testing.assert_array_equal(result.brain_age, 20.0 + np.arange(12))
    assert predictions_logged(log) == {float(i): 1 for i in range(12)}  # nothing predicted twice
    assert result.attrs["prediction_run"]["scans_from_cache"] == cached


# ------------------------------------------------------------------------- dask scheduler + dask worker
def test_cli_scheduler_option_against_dask_processes(counting_cohort, dask_processes, counting_registered):
    frame, folder = counting_cohort
    frame.to_csv(folder / "cohort.csv", index=False)
    log = folder / "log"
    common = ["predict", folder / "cohort.csv", "-p", "counting", "--param", f"log_dir={json.dumps(str(log))}",
              "--quiet"]
    code, stdout, stderr = _bagkit(*common, "--cache-dir", folder / "cache", "--scheduler", dask_processes.address,
                                   "-o", folder / "dask.csv")
    assert code == 0, stderr
    assert "dask.distributed" in stdout and dask_processes.address in stdout and "12 scan(s) predicted" in stdout
    pids = {line.split()[1] for line in (log / "predictions.log").read_text().splitlines()}
    assert str(os.getpid()) not in pids and len(pids) == 1  # predicted by the `dask worker` process
    (log / "predictions.log").unlink()
    code, _, stderr = _bagkit(*common, "--cache-dir", folder / "serial-cache", "-o", folder / "serial.csv")
    assert code == 0, stderr
    pd.testing.assert_frame_equal(pd.read_csv(folder / "dask.csv"), pd.read_csv(folder / "serial.csv"))
    assert _cache_entries(folder / "cache") == _cache_entries(folder / "serial-cache")
    # a scheduler file works as the address; everything is cached now
    code, stdout, stderr = _bagkit(*common, "--cache-dir", folder / "cache", "--scheduler",
                                   dask_processes.scheduler_file, "-o", folder / "again.csv")
    assert code == 0, stderr
    assert "12 from the cache" in stdout


# ------------------------------------------------------------------------- bad input
def test_unreachable_scheduler_is_a_clear_error(counting_cohort, counting_registered):
    import socket

    frame, folder = counting_cohort
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    with pytest.raises(BagkitError, match=rf"cannot reach the Dask scheduler at {address}.*dask scheduler"):
        predict_cohort_distributed(frame, CountingPredictor(), base_dir=folder, cache_dir=folder / "cache",
                                   progress=False, scheduler=address, timeout=1)
    assert not _cache_entries(folder / "cache")  # nothing predicted
    # the CLI: the same message, no output file
    frame.to_csv(folder / "cohort.csv", index=False)
    out = folder / "predictions.csv"
    with __import__("dask").config.set({"distributed.comm.timeouts.connect": "1s"}):
        code, _, stderr = _bagkit("predict", folder / "cohort.csv", "-p", "counting", "--scheduler", address,
                                  "--cache-dir", folder / "cache", "-o", out)
    assert code != 0
    assert f"cannot reach the Dask scheduler at {address}" in stderr
    assert not out.exists()


def test_too_few_workers_is_a_clear_error(counting_cohort, dask_processes):
    frame, folder = counting_cohort
    with pytest.raises(BagkitError, match=r"has 1 worker\(s\); waited 1 s for 3.*dask worker"):
        predict_cohort_distributed(frame, CountingPredictor(), base_dir=folder, progress=False,
                                   scheduler=dask_processes.address, workers=3, timeout=1)


def test_workers_lacking_the_predictor_are_named(counting_cohort, dask_processes, tmp_path, monkeypatch):
    """A third-party predictor installed here but not on the workers."""
    frame, folder = counting_cohort
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "my_brain_age_plugin.py").write_text(
        "from bagkit._testing.counting import CountingPredictor\n\n"
        "class MyPredictor(CountingPredictor):\n    name = 'mine'\n")
    monkeypatch.syspath_prepend(str(plugin))
    from my_brain_age_plugin import MyPredictor

    with pytest.raises(BagkitError) as caught:
        predict_cohort(frame, MyPredictor(), base_dir=folder, cache_dir=folder / "cache", progress=False,
                       scheduler=dask_processes.address)
    message = str(caught.value)
    assert "my_brain_age_plugin" in message and "1 of 1 Dask worker(s)" in message and "'mine'" in message
    assert not _cache_entries(folder / "cache")  # nothing predicted


@pytest.fixture(scope="module")
def bare_scheduler(tmp_path_factory):
    """A scheduler for the workers that lack something (one at a time)."""
    cluster = _DaskProcesses(tmp_path_factory.mktemp("bare-scheduler"))
    yield cluster
    cluster.stop()


def test_workers_lacking_bagkit_are_named(counting_cohort, bare_scheduler, tmp_path):
    frame, folder = counting_cohort
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(  # this worker's Python cannot import bagkit
        "import sys\n\nclass _NoBagkit:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'bagkit' or name.startswith('bagkit.'):\n"
        "            raise ModuleNotFoundError(f\"No module named {name!r}\")\n"
        "        return None\n\nsys.meta_path.insert(0, _NoBagkit())\n")
    bare_scheduler.add_worker(_env(blocker))
    try:
        with pytest.raises(BagkitError) as caught:
            predict_cohort(frame, CountingPredictor(), base_dir=folder, cache_dir=folder / "cache",
                           progress=False, scheduler=bare_scheduler.address)
    finally:
        bare_scheduler.stop_worker(bare_scheduler.processes.pop())
    message = str(caught.value)
    assert "cannot import bagkit (ModuleNotFoundError" in message and "Install bagkit" in message
    assert not _cache_entries(folder / "cache")  # nothing predicted


def _can_unshare() -> bool:
    try:
        return subprocess.run(["unshare", "--mount", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def test_a_worker_that_cannot_read_a_scan_stops_the_run(counting_cohort, bare_scheduler, counting_registered,
                                                       entry_point_dir):
    """The scans are on a mount this worker does not have (a private mount namespace hides them)."""
    if not _can_unshare():
        pytest.skip("needs `unshare --mount` (root, Linux) to hide the scans from one worker")
    frame, folder = counting_cohort
    frame.iloc[:4].to_csv(folder / "cohort.csv", index=False)
    shell = f"mount -t tmpfs none {folder / 'scans'} && exec \"$0\" \"$@\""
    _wait_for(lambda: not _workers_of(bare_scheduler.address), 30, "the previous worker to leave")
    bare_scheduler.add_worker(_env(entry_point_dir), prefix=("unshare", "--mount", "sh", "-c", shell))
    out = folder / "predictions.csv"
    try:
        code, _, stderr = _bagkit("predict", folder / "cohort.csv", "-p", "counting", "--scheduler",
                                  bare_scheduler.address, "--cache-dir", folder / "cache", "-o", out, "--quiet")
    finally:
        bare_scheduler.stop_worker(bare_scheduler.processes.pop())
    assert code != 0
    assert "cannot read the scan" in stderr and str(folder / "scans" / "scan-") in stderr
    assert "shared filesystem" in stderr and "The run stopped" in stderr
    assert not out.exists()


def _workers_of(address) -> dict:
    with distributed.Client(address, timeout=10) as client:
        return client.scheduler_info(n_workers=-1)["workers"]


# ------------------------------------------------------------------------- bagkit report --predictor
def test_report_predicts_on_the_scheduler(counting_cohort, dask_processes, counting_registered):
    """`bagkit report --predictor NAME --scheduler ADDRESS`: the report's prediction step runs on Dask."""
    import bagkit
    from bagkit.cli.main import _with_predictions

    frame, folder = counting_cohort
    frame = frame.assign(group=["HC", "MS"] * 6, age=40.0)
    frame.to_csv(folder / "cohort.csv", index=False)
    said = []
    cohort = bagkit.read_cohort(folder / "cohort.csv", control="HC")
    predicted = _with_predictions(cohort, folder / "cohort.csv", "counting", None, None,
                                  (f"log_dir={json.dumps(str(folder / 'log'))}",), folder / "cache", True,
                                  said.append, scheduler=dask_processes.address)
    np.testing.assert_array_equal(predicted.data.brain_age, 20.0 + np.arange(12))
    np.testing.assert_array_equal(predicted.data.bag, 20.0 + np.arange(12) - 40.0)
    how = predicted.derivations["brain age computed on"]  # shown on the report's provenance page
    assert how.startswith("Dask distributed ") and dask_processes.address in how and "1 worker(s)" in how
    assert __import__("dask").__version__ in how
    assert any(line.startswith("brain age computed on: Dask distributed") for line in said)
    assert os.getpid() not in {int(line.split()[1]) for line in (folder / "log" / "predictions.log").open()}


def test_report_refuses_workers_without_a_predictor(small_cohort_csv, tmp_path):
    code, _, stderr = _bagkit("report", small_cohort_csv, "--workers", "2", "-o", tmp_path / "out")
    assert code == 2 and "--workers and --preprocess need --predictor NAME" in stderr
    assert not (tmp_path / "out").exists()


def test_shared_cluster_opens_one_cluster_for_the_stages_of_a_run(monkeypatch):
    """Inside shared_cluster the stages with its scheduler/workers get one session, opened by the
    first that connects and closed when the block ends; none opened when no stage connects;
    other settings, or no block, get their own (closed with their stage)."""
    import contextlib

    from bagkit.predictors import distributed as engine

    events = []

    @contextlib.contextmanager
    def fake_open(_distributed, scheduler, workers, _timeout):
        events.append(("open", scheduler, workers))
        try:
            yield f"session {len(events)}"
        finally:
            events.append(("close", scheduler, workers))

    monkeypatch.setattr(engine, "_open", fake_open)
    with engine.shared_cluster(None, 2):
        with engine._connect(None, None, 2, None) as first:
            pass
        with engine._connect(None, None, 2, None) as second:
            pass
        assert first == second and events == [("open", None, 2)]   # not closed between the stages
        with engine._connect(None, "tcp://elsewhere:8786", None, None):
            pass
    assert events == [("open", None, 2), ("open", "tcp://elsewhere:8786", None),
                      ("close", "tcp://elsewhere:8786", None), ("close", None, 2)]
    events.clear()
    with engine.shared_cluster(None, 2):
        pass
    assert events == []  # nothing to run: no cluster
    with engine._connect(None, None, 2, None):
        pass
    assert events == [("open", None, 2), ("close", None, 2)]  # outside a block: closed with its stage
    events.clear()
    with pytest.raises(RuntimeError, match="a stage failed"), engine.shared_cluster(None, 2):
        with engine._connect(None, None, 2, None):
            raise RuntimeError("a stage failed")
    assert events == [("open", None, 2), ("close", None, 2)]  # closed on the way out
