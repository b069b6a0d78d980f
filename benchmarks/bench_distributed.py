"""Scans per second: the serial path against Dask workers on this machine, in the same run.

Two workloads, each predicted from scratch (an empty cache) by both paths:

1. SFCN at 160×192×160 (random weights in the UK Biobank layout, as bench_sfcn.py; scans are
   the MNI152 T1 with noise and shifts, written as NIfTI files): ``predict_cohort`` serially
   (torch on every core) and with ``scheduler=`` a LocalCluster of ``--workers`` processes
   with ``cores // workers`` threads each (started before, its start-up timed on its own).
   Prints scans/s of both, their ratio (Dask / serial) and the largest |Δ brain age|.
2. The engine's own cost: a predictor that does nothing (``bagkit._testing.counting``, 4³
   voxels) on ``--tiny-scans`` scans: scans/s here is the rate at which the client, the
   scheduler and the workers move one-scan tasks — the ceiling of any cluster (docs/distributed.md).

    .venv/bin/python benchmarks/bench_distributed.py                  # 8 SFCN scans, 2 workers
    .venv/bin/python benchmarks/bench_distributed.py --scans 4 --tiny-scans 100
    .venv/bin/python benchmarks/bench_distributed.py --device cuda     # on a GPU machine

No assertions: it prints its figures. On a 2-core machine both paths share the same two cores,
so the ratio shows the overhead of the distributed path, not a speed-up; a cluster's speed-up is
its number of worker machines (or GPUs) as long as the per-scan time dominates the per-task cost.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def _bench_sfcn():
    spec = importlib.util.spec_from_file_location("bench_sfcn", HERE / "bench_sfcn.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def _peak_memory_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _compare(label, frame, predictor, folder, scheduler, workers):
    import distributed

    from bagkit.predictors import predict_cohort

    serial, serial_s = _timed(predict_cohort, frame, predictor, cache_dir=folder / "cache-serial", progress=False)
    spread, spread_s = _timed(predict_cohort, frame, predictor, cache_dir=folder / "cache-dask", progress=False,
                              scheduler=scheduler)
    n = int((serial.prediction_error == "").sum())
    assert n == len(frame) and (spread.prediction_error == "").all(), (serial, spread)
    difference = float(np.max(np.abs(serial.brain_age.to_numpy() - spread.brain_age.to_numpy())))
    run = spread.attrs["prediction_run"]
    print(f"{label}: {n} scans")
    print(f"  serial             : {serial_s:7.2f} s  {n / serial_s:8.2f} scans/s")
    print(f"  dask, {workers} workers    : {spread_s:7.2f} s  {n / spread_s:8.2f} scans/s  "
          f"({run['threads']} threads; includes the first load of the predictor on each worker)")
    print(f"  ratio dask/serial  : {serial_s / spread_s:7.2f}   max |Δ brain age| {difference:.2e} y")
    with distributed.Client(scheduler) as client:
        peaks = client.run(_peak_memory_mb)
    print(f"  peak memory        : this process {_peak_memory_mb():.0f} MB; workers "
          + ", ".join(f"{mb:.0f} MB" for mb in peaks.values()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=8, help="SFCN scans (0: skip SFCN)")
    parser.add_argument("--tiny-scans", type=int, default=200, help="scans of the do-nothing predictor (0: skip)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="auto", help="SFCN device: auto (CUDA when present), cpu, cuda")
    args = parser.parse_args()

    import dask
    import distributed

    from bagkit._testing.counting import CountingPredictor, write_counting_scans
    from bagkit.predictors.distributed import usable_cores

    cores = usable_cores()
    threads = max(1, cores // args.workers)
    print(f"machine: {cores} usable cores, load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}; "
          f"dask {dask.__version__}, distributed {distributed.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=threads, processes=True,
                                      dashboard_address=None, silence_logs=40) as cluster:
            print(f"LocalCluster of {args.workers} processes x {threads} thread(s) started in "
                  f"{time.perf_counter() - start:.1f} s")
            if args.scans > 0:
                import torch

                from bagkit_sfcn import SFCNBrainAge

                bench = _bench_sfcn()
                volumes, t1 = bench.make_inputs(args.scans)
                paths = []
                for i, volume in enumerate(volumes):
                    paths.append(folder / "sfcn" / f"sub-{i:03d}_T1w.nii")
                    paths[-1].parent.mkdir(exist_ok=True)
                    nib.save(nib.Nifti1Image(volume, np.diag([1.0, 1.0, 1.0, 1.0])), str(paths[-1]))
                weights = folder / "run_20190719_00_epoch_best_mae.p"
                torch.save(bench.make_weights(), str(weights))
                predictor = SFCNBrainAge(weights=str(weights), device=args.device, progress=False)
                device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
                _compare(f"SFCN 160x192x160 (device {device}, torch {torch.__version__})",
                         pd.DataFrame({"scan": [str(p) for p in paths]}), predictor, folder / "sfcn",
                         cluster.scheduler_address, args.workers)
            if args.tiny_scans > 0:
                paths = write_counting_scans(folder / "tiny", range(args.tiny_scans))
                _compare("do-nothing predictor (the engine's cost per one-scan task)",
                         pd.DataFrame({"scan": [str(p) for p in paths]}), CountingPredictor(), folder / "tiny",
                         cluster.scheduler_address, args.workers)
    print(f"load average after: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    sys.exit(main())
