"""Raw-T1 preprocessing as Dask distributed tasks: ``bagkit preprocess --workers N / --scheduler ADDRESS``.

One task per scan runs :func:`bagkit.imaging.pipeline.preprocess_one` on a worker, which writes
the scan's outputs (BIDS-derivative names, atomically) into the output folder; the client
collects each scan's result (its QC row) as tasks finish and writes ``qc.csv`` (atomically),
as :func:`~bagkit.imaging.pipeline.preprocess_scans` does. The cluster set-up, the worker
check and the failure wording are :mod:`bagkit.predictors.distributed`'s.

- The client reads the cache first (the outputs' sidecars, by input SHA-256 and pipeline
  options): only scans not yet preprocessed become tasks, so a rerun does nothing and needs
  no cluster.
- A scan that fails (not a T1, a library error, a worker that died on it each time it was
  tried) is that scan's error, and the batch goes on.
- The workers WRITE the outputs: with ``--scheduler`` the scans and the output folder must be
  on a filesystem shared with the workers, at the same paths. A worker that cannot read a scan
  or write into the folder stops the run with a :class:`~bagkit.errors.BagkitError` naming it
  (the scans done so far are in ``qc.csv``).

:func:`cohort_runner` does the same for ``bagkit predict / report --preprocess --workers N /
--scheduler ADDRESS``: it is :func:`~bagkit.imaging.pipeline.preprocess_cohort`'s runner, one task
per distinct raw scan, each writing into its own folder of the content-addressed store (no
``qc.csv``: the QC travels in the predictions), on the cluster the prediction then uses
(:func:`bagkit.predictors.distributed.shared_cluster`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

from bagkit.errors import BagkitError
from bagkit.imaging.pipeline import (
    PreprocessedScan,
    PreprocessJob,
    PreprocessOptions,
    cached_scan,
    describe_done,
    name_clashes,
    output_name,
    output_paths,
    preprocess_one,
    write_qc_table,
)
from bagkit.io.hashing import file_hash
from bagkit.predictors.distributed import (
    WorkerSetupError,
    _check_workers,
    _connect,
    _import_distributed,
    _task_failure,
    usable_cores,
)

#: what a worker must import to preprocess
WORKER_MODULES = ["bagkit", "bagkit.imaging.pipeline", "SimpleITK", "deepbet", "nilearn"]


def preprocess_scans_distributed(paths: Iterable, out_dir, options: PreprocessOptions = PreprocessOptions(),
                                 force: bool = False, progress: Callable[[str], None] | None = None,
                                 names: Sequence[str] | None = None, *, scheduler: str | None = None,
                                 workers: int | None = None, retries: int = 1, timeout: float | None = None,
                                 bar: bool = True) -> list[PreprocessedScan]:
    """:func:`~bagkit.imaging.pipeline.preprocess_scans` on a Dask cluster: the same outputs, the
    same ``qc.csv``, the same results (in the order of ``paths``). ``scheduler``/``workers``: as
    for :func:`~bagkit.predictors.distributed.predict_cohort_distributed`. ``retries``: reruns of
    a task that raised (a scan's own failure is returned, not raised). ``bar``: a progress bar
    over the tasks (on stderr); ``progress``: called with a line per scan done."""
    if scheduler is None and workers is None:
        raise BagkitError("distributed preprocessing needs a scheduler address or a number of workers.")
    if workers is not None and (isinstance(workers, bool) or int(workers) < 1):
        raise BagkitError(f"workers={workers!r}: give a number of worker processes of 1 or more.")
    _dask, distributed = _import_distributed()
    paths = [Path(p) for p in paths]
    names = list(names) if names is not None else [output_name(p) for p in paths]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clashes = name_clashes(paths, names)
    results: list[PreprocessedScan | None] = [None] * len(paths)
    todo: list[tuple[int, PreprocessJob]] = []
    for index, (path, name) in enumerate(zip(paths, names)):
        if index in clashes:
            results[index] = PreprocessedScan(source=path, name=name, error=clashes[index])
            continue
        if not path.is_file():
            results[index] = PreprocessedScan(source=path, name=name, error=f"{path}: scan file not found.")
            continue
        job = PreprocessJob(source=path, folder=out_dir, name=name, digest=file_hash(path), force=force,
                            options=options)
        done = cached_scan(path, out_dir, options, name=name, digest=job.digest)
        if done is not None:
            results[index] = done
        else:
            todo.append((index, job))
    if progress:
        progress(f"preprocess: {len(paths)} scan(s), {len(paths) - len(todo)} cached or refused, "
                 f"{len(todo)} to run on Dask")

    def keep_done():  # a stopped run: the scans done so far in qc.csv (those not done: no row; a rerun does them)
        done_rows = [r for r in results if r is not None]
        if done_rows:
            write_qc_table(out_dir / "qc.csv", done_rows)

    if todo:
        _run(distributed, todo, results, progress=progress, scheduler=scheduler, workers=workers, retries=retries,
             timeout=timeout, bar=bar, kept=f"are in {out_dir}/qc.csv", on_stop=keep_done)
    write_qc_table(out_dir / "qc.csv", results)
    return results


def cohort_runner(*, scheduler: str | None = None, workers: int | None = None, retries: int = 1,
                  timeout: float | None = None, bar: bool = True, progress: Callable[[str], None] | None = None
                  ) -> Callable[[Sequence[PreprocessJob]], list[PreprocessedScan]]:
    """A ``runner`` for :func:`~bagkit.imaging.pipeline.preprocess_cohort` (``bagkit predict /
    report --preprocess --workers N / --scheduler ADDRESS``): one Dask task per job, each writing
    into its own folder of the store. A job already in the store (same input SHA-256 and pipeline
    options) is read back here, not submitted (all cached: no cluster); a scan that fails is its
    result's ``error`` and the batch goes on; a worker that lacks what preprocessing needs, or
    cannot read a scan or write into the store, stops the run with a
    :class:`~bagkit.errors.BagkitError`. Inside :func:`bagkit.predictors.distributed.shared_cluster`
    the cluster is the one the prediction then uses."""
    if scheduler is None and workers is None:
        raise BagkitError("distributed preprocessing needs a scheduler address or a number of workers.")
    if workers is not None and (isinstance(workers, bool) or int(workers) < 1):
        raise BagkitError(f"workers={workers!r}: give a number of worker processes of 1 or more.")

    def run(jobs: Sequence[PreprocessJob]) -> list[PreprocessedScan]:
        _dask, distributed = _import_distributed()
        results: list[PreprocessedScan | None] = [None] * len(jobs)
        todo: list[tuple[int, PreprocessJob]] = []
        for index, job in enumerate(jobs):
            results[index] = cached_scan(job.source, job.folder, job.options, name=job.name, digest=job.digest)
            if results[index] is None:
                todo.append((index, job))
        if progress:
            progress(f"preprocess: {len(jobs)} scan(s), {len(jobs) - len(todo)} in the store, "
                     f"{len(todo)} to run on Dask")
        if todo:
            made = [Path(job.folder) for _, job in todo if not Path(job.folder).exists()]
            for folder in made:  # the task checks that its folder is there and writable
                folder.mkdir(parents=True, exist_ok=True)
            store = os.path.commonpath([os.path.abspath(job.folder) for _, job in todo])
            try:
                _run(distributed, todo, results, progress=progress, scheduler=scheduler, workers=workers,
                     retries=retries, timeout=timeout, bar=bar, kept=f"are kept in {store}")
            finally:
                for folder in made:  # those of scans that failed stay empty: not left in the store
                    with contextlib.suppress(OSError):
                        folder.rmdir()
        return results

    return run


def _run(distributed, todo: list[tuple[int, PreprocessJob]], results: list, *, progress, scheduler, workers,
         retries, timeout, bar, kept: str, on_stop: Callable[[], None] | None = None) -> None:
    """Submit a task per ``(index, job)`` of ``todo`` (each into its job's folder) and put each
    scan's result at ``results[index]`` as it arrives. A worker-setup failure stops the run (a
    :class:`~bagkit.errors.BagkitError` saying the scans done so far ``kept``); ``on_stop`` runs
    when the run stops early, before the error propagates."""
    from tqdm.auto import tqdm

    with _connect(distributed, scheduler, workers, timeout) as (client, address, _cluster):
        found = _check_workers(client, None, address, modules=WORKER_MODULES, what="preprocessing")
        # a local cluster shares this machine's cores: each of its concurrent tasks gets its share;
        # on an existing scheduler each worker shares its own machine's cores (see _preprocess_task)
        threads = max(1, usable_cores() // sum(found.values())) if scheduler is None else None
        futures = [client.submit(_preprocess_task, os.path.abspath(job.source), os.path.abspath(job.folder),
                                 job.options, force=job.force, name=job.name, digest=job.digest, threads=threads,
                                 pure=False, retries=retries,  # absolute paths: a worker's working folder is not ours
                                 key=f"bagkit-preprocess-{job.name}-{index}" + os.urandom(4).hex())
                   for index, job in todo]
        where = {future.key: (index, job) for future, (index, job) in zip(futures, todo)}
        meter = tqdm(total=len(todo), disable=not bar, desc="preprocess (dask)", unit="scan", file=sys.stderr)
        started, count = time.perf_counter(), 0
        try:
            for future in distributed.as_completed(futures):
                index, job = where[future.key]
                if future.status == "finished":
                    done = future.result()  # the client's paths (the worker had absolute ones)
                    done = dataclasses.replace(done, source=job.source, files=output_paths(job.folder, job.name)
                                               if done.files else {})
                else:
                    error = future.exception() if future.status == "error" else None
                    if isinstance(error, (WorkerSetupError, ImportError)):
                        done_count = sum(1 for r in results if r is not None and not r.error)
                        raise BagkitError(f"{error}. The run stopped; {done_count} scan(s) preprocessed or "
                                          f"cached {kept}; a rerun goes on from there.") from None
                    why = _task_failure(error, distributed) if error is not None else "cancelled"
                    done = PreprocessedScan(source=job.source, name=job.name, error=f"{job.source}: {why}")
                future.release()
                results[index] = done
                count += 1
                meter.update(1)
                meter.set_postfix(failed=sum(1 for r in results if r is not None and r.error), refresh=False)
                if progress:
                    rate = count / max(time.perf_counter() - started, 1e-9)
                    progress(f"preprocess [{count}/{len(todo)}] {describe_done(done)} ({rate:.2f} scans/s)")
        except BaseException:
            client.cancel([f for f in futures if not f.done()])
            if on_stop is not None:
                on_stop()
            raise
        finally:
            meter.close()


# ---------------------------------------------------------------------------------- worker side
def pin_threads(threads: int) -> None:
    """Use ``threads`` threads in SimpleITK (N4, registration, resampling) and torch (deepbet):
    a worker's own share of the cores, so workers do not oversubscribe them (and a run with the
    same thread count as another gives the same numbers)."""
    from bagkit.imaging.itk import import_sitk

    import_sitk().ProcessObject.SetGlobalDefaultNumberOfThreads(int(threads))
    # torch is deepbet's (skull stripping), imported by it on the worker anyway; bagkit's core does
    # not import it by name (the import contract): here it is only told how many threads to use
    try:
        torch = importlib.import_module("torch")
    except ImportError:  # pragma: no cover - deepbet needs torch; its absence is the scan's error
        return
    torch.set_num_threads(int(threads))


def _preprocess_task(path, out_dir, options, force=False, name=None, digest=None,
                     threads: int | None = None) -> PreprocessedScan:
    """One task: one scan through :func:`~bagkit.imaging.pipeline.preprocess_one` with ``threads``
    threads (None: this machine's cores shared by the worker's concurrent tasks)."""
    from bagkit.predictors.distributed import _worker_name, _worker_threads, usable_cores

    if not (os.path.isfile(path) and os.access(path, os.R_OK)):
        raise WorkerSetupError(f"{_worker_name()} cannot read the scan {path}, which the client reads: the workers "
                               f"need the scans at the same paths (a shared filesystem)")
    if not (os.path.isdir(out_dir) and os.access(out_dir, os.W_OK | os.X_OK)):
        raise WorkerSetupError(f"{_worker_name()} cannot write into the output folder {out_dir}: the workers write "
                               f"the preprocessed scans, so it must be on a filesystem they share, at the same path")
    pin_threads(threads or max(1, usable_cores() // _worker_threads()))
    return preprocess_one(path, out_dir, options, force=force, name=name, digest=digest)


__all__ = ["preprocess_scans_distributed", "cohort_runner", "pin_threads", "WORKER_MODULES"]
