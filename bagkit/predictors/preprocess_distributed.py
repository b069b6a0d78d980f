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
"""
from __future__ import annotations

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
    todo: list[tuple[int, Path, str, str]] = []
    for index, (path, name) in enumerate(zip(paths, names)):
        if index in clashes:
            results[index] = PreprocessedScan(source=path, name=name, error=clashes[index])
            continue
        if not path.is_file():
            results[index] = PreprocessedScan(source=path, name=name, error=f"{path}: scan file not found.")
            continue
        digest = file_hash(path)
        done = cached_scan(path, out_dir, options, name=name, digest=digest)
        if done is not None:
            results[index] = done
        else:
            todo.append((index, path, name, digest))
    if progress:
        progress(f"preprocess: {len(paths)} scan(s), {len(paths) - len(todo)} cached or refused, "
                 f"{len(todo)} to run on Dask")
    if todo:
        _run(distributed, todo, results, out_dir, options, force, progress, scheduler, workers, retries, timeout,
             bar)
    write_qc_table(out_dir / "qc.csv", results)
    return results


def _run(distributed, todo, results, out_dir, options, force, progress, scheduler, workers, retries, timeout,
         bar) -> None:
    from tqdm.auto import tqdm

    absolute = os.path.abspath(out_dir)  # a worker's working folder is not ours
    with _connect(distributed, scheduler, workers, timeout) as (client, address, _cluster):
        found = _check_workers(client, None, address, modules=WORKER_MODULES, what="preprocessing")
        # a local cluster shares this machine's cores: each of its concurrent tasks gets its share;
        # on an existing scheduler each worker shares its own machine's cores (see _preprocess_task)
        threads = max(1, usable_cores() // sum(found.values())) if scheduler is None else None
        futures = [client.submit(_preprocess_task, os.path.abspath(path), absolute, options, force=force, name=name,
                                 digest=digest, threads=threads, pure=False, retries=retries, key=f"bagkit-preprocess-{name}-{index}"
                                 + os.urandom(4).hex())
                   for index, path, name, digest in todo]
        where = {future.key: (index, path, name) for future, (index, path, name, _) in zip(futures, todo)}
        meter = tqdm(total=len(todo), disable=not bar, desc="preprocess (dask)", unit="scan", file=sys.stderr)
        started, count = time.perf_counter(), 0
        try:
            for future in distributed.as_completed(futures):
                index, path, name = where[future.key]
                if future.status == "finished":
                    done = future.result()  # the client's paths (the worker had absolute ones)
                    done = dataclasses.replace(done, source=path, files=output_paths(out_dir, name)
                                               if done.files else {})
                else:
                    error = future.exception() if future.status == "error" else None
                    if isinstance(error, (WorkerSetupError, ImportError)):
                        done_count = sum(1 for r in results if r is not None and not r.error)
                        raise BagkitError(f"{error}. The run stopped; {done_count} scan(s) preprocessed or "
                                          f"cached are in {out_dir}/qc.csv; a rerun goes on from there.") from None
                    why = _task_failure(error, distributed) if error is not None else "cancelled"
                    done = PreprocessedScan(source=path, name=name, error=f"{path}: {why}")
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
            done_rows = [r for r in results if r is not None]  # scans not done: no row; a rerun does them
            if done_rows:
                write_qc_table(Path(out_dir) / "qc.csv", done_rows)
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


__all__ = ["preprocess_scans_distributed", "pin_threads", "WORKER_MODULES"]
