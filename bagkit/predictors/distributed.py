"""Cohort-wide prediction as Dask distributed tasks: same results, same cache, resumable.

``predict_cohort(..., workers=N)`` or ``predict_cohort(..., scheduler=ADDRESS)`` (and the CLI's
``--workers`` / ``--scheduler``) land here; without them Dask is never imported.

How a run goes::

    client (this process)                          Dask workers (processes, maybe other machines)
    plan: hash each scan, read the cache  ─┐
    check every worker: bagkit and the     │
      predictor's module import there      ├──→  run the check, report what is missing
    ship the predictor once: one task      │
      whose output is the pickled predictor├──→  each worker unpickles it once (a worker-side
                                           │       cache keyed by its hash); torch-style
    one task per scan (per batch where     │       predictors get the worker's thread count
      the predictor batches)               ├──→  read the scan, predict, return the numbers
    as_completed: each result is written   ←─┘
      to the cache at once; progress bar

- The client owns the cache and the output: a result is in the cache as soon as it arrives,
  so a run stopped anywhere resumes where it stopped. On Ctrl-C the scans already running
  are finished and cached first (Ctrl-C again stops at once).
- A scan that cannot be predicted (corrupt file, wrong shape) is a ``prediction_error`` and
  the batch goes on, as in the serial path. A worker that dies has its tasks rerun elsewhere
  by the scheduler (``distributed.scheduler.allowed-failures``); a scan that kills workers
  that often becomes a ``prediction_error``.
- A worker that lacks bagkit or the predictor, or cannot read a scan the client reads, stops
  the run with a :class:`~bagkit.errors.BagkitError` naming the worker and what is missing;
  the predictions made so far stay in the cache and nothing else is written.
- Workers need read access to the scans at the same paths as the client (a shared
  filesystem); they write nothing.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import hashlib
import itertools
import logging
import os
import signal
import sys
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bagkit.errors import BagkitError, PredictorError
from bagkit.predictors.batch import _describe, _predict_batch, plan_prediction, write_cached

#: the key of ``DataFrame.attrs`` under which the result carries its :class:`PredictionRun`
RUN_ATTRIBUTE = "prediction_run"


class WorkerSetupError(PredictorError):
    """A worker lacks something the run needs (the predictor's package, read access to a scan):
    not a fault of one scan, so the run stops."""


@dataclasses.dataclass(frozen=True)
class PredictionRun:
    """How the predictions were made (for the provenance page): carried as
    ``result.attrs["prediction_run"]`` (a dict) by the frame ``predict_cohort`` returns."""

    engine: str
    scheduler: str
    cluster: str
    workers: int
    threads: int
    dask_version: str
    distributed_version: str
    scans_predicted: int
    scans_from_cache: int
    scans_failed: int
    seconds: float

    @property
    def scans_per_second(self) -> float:
        return self.scans_predicted / self.seconds if self.seconds > 0 else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "scans_per_second": self.scans_per_second}



def _import_distributed():
    try:
        import dask
        import distributed
    except ImportError as error:
        raise BagkitError(
            f"--scheduler / --workers need Dask distributed, which is not installed ({error}); "
            f"install it with `pip install 'bagkit[distributed]'` (or `pip install 'dask[distributed]'`)."
        ) from error
    return dask, distributed


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def predict_cohort_distributed(
    frame: pd.DataFrame,
    predictor,
    base_dir=".",
    cache_dir=None,
    progress: bool = True,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    batch_size: int | None = None,
    retries: int = 2,
    timeout: float | None = None,
) -> pd.DataFrame:
    """:func:`~bagkit.predictors.predict_cohort` on a Dask cluster (the same frame, the same cache).

    ``scheduler``: the address of a running Dask scheduler (``tcp://host:8786``) or the path of
    its scheduler file (``dask scheduler --scheduler-file``); ``workers``: with ``scheduler``,
    wait until that many workers have joined; alone, start a local cluster of that many worker
    processes here, with ``cores // workers`` threads each. ``batch_size``: scans per task
    (default: the predictor's ``predict_batch_size``, else 1 — one task per scan). ``retries``:
    reruns of a task that raised (a worker that dies is handled by the scheduler). ``timeout``:
    seconds to reach the scheduler and to wait for workers (default: Dask's connect timeout).
    """
    if scheduler is None and workers is None:
        raise BagkitError("distributed prediction needs a scheduler address or a number of workers.")
    if workers is not None and (isinstance(workers, bool) or int(workers) < 1):
        raise BagkitError(f"workers={workers!r}: give a number of worker processes of 1 or more.")
    dask, distributed = _import_distributed()  # before hashing the scans, not after
    started = time.perf_counter()
    plan = plan_prediction(frame, predictor, base_dir, cache_dir)
    out = plan.out
    from_cache = int(out["brain_age"].notna().sum())
    if not plan.todo:  # everything is cached (or failed on the client): no cluster needed
        run = PredictionRun("dask.distributed", str(scheduler or "local"), "none needed (all scans cached)",
                            0, 0, dask.__version__, distributed.__version__, 0, from_cache,
                            int((out["prediction_error"] != "").sum()), time.perf_counter() - started)
        out.attrs[RUN_ATTRIBUTE] = run.as_dict()
        return out

    size = batch_size if batch_size is not None else getattr(plan.predictor, "predict_batch_size", 1)
    size = max(1, int(size or 1))
    chunks = [plan.todo[i:i + size] for i in range(0, len(plan.todo), size)]
    payload = _serialize(plan.predictor)
    token = hashlib.sha256(payload).hexdigest()[:24]
    with _connect(distributed, scheduler, workers, timeout) as (client, address, cluster):
        found = _check_workers(client, plan.predictor, address)
        threads = sum(found.values())
        with warnings.catch_warnings():  # a loaded model is large; it is sent once, on purpose
            warnings.filterwarnings("ignore", message="Sending large graph", category=UserWarning)
            shipped = client.submit(_the_predictor, payload, key=f"bagkit-predictor-{token}", pure=False)
        stop = distributed.Event(f"bagkit-stop-{uuid.uuid4().hex}", client=client)
        futures = client.map(  # absolute paths: a worker's working folder is not ours
            _predict_scans, [[(label, os.path.abspath(path)) for label, path, _ in chunk] for chunk in chunks],
            payload=shipped, token=token, stop=stop.name, pure=False, retries=retries,
            key=f"bagkit-predict-{plan.name}",  # + a random suffix (pure=False): runs never share tasks
        )
        predicted = _collect(client, futures, chunks, plan, progress, distributed, stop)
        run = PredictionRun(
            "dask.distributed", address, cluster, len(found), threads, dask.__version__, distributed.__version__,
            predicted, from_cache, int((out["prediction_error"] != "").sum()), time.perf_counter() - started,
        )
    out.attrs[RUN_ATTRIBUTE] = run.as_dict()
    return out


# ---------------------------------------------------------------------------------- client side
def _serialize(predictor) -> bytes:
    import cloudpickle  # a dependency of distributed

    try:
        return cloudpickle.dumps(predictor)
    except Exception as error:
        raise PredictorError(
            f"the predictor {predictor!r} cannot be pickled to send to the Dask workers "
            f"({type(error).__name__}: {error}); make its state picklable (e.g. open large resources lazily, from a path)."
        ) from error


class _SharedCluster:
    """The cluster of a :func:`shared_cluster` block: opened by the first stage that needs one."""

    def __init__(self, scheduler, workers, timeout):
        self.key, self.timeout = (scheduler, workers), timeout
        self.session, self.stack = None, contextlib.ExitStack()

    def open(self, distributed):
        if self.session is None:
            self.session = self.stack.enter_context(_open(distributed, *self.key, self.timeout))
        return self.session


_SHARED: contextvars.ContextVar[_SharedCluster | None] = contextvars.ContextVar("bagkit_shared_cluster",
                                                                                 default=None)


@contextlib.contextmanager
def shared_cluster(scheduler: str | None = None, workers: int | None = None, timeout: float | None = None):
    """Inside this block the Dask stages of one run with the same ``scheduler`` and ``workers``
    (``bagkit predict --preprocess --workers N``: preprocessing, then prediction) use one cluster
    and one client: a local cluster starts once (seconds), not once per stage. It starts when the
    first stage needs it (a run whose scans are all cached starts none) and goes when the block
    ends. Without ``scheduler`` and ``workers`` it does nothing."""
    if scheduler is None and workers is None:
        yield
        return
    shared = _SharedCluster(scheduler, workers, timeout)
    token = _SHARED.set(shared)
    try:
        with shared.stack:
            yield
    finally:
        _SHARED.reset(token)


@contextlib.contextmanager
def _connect(distributed, scheduler, workers, timeout):
    """Yield (client, scheduler address, cluster description); the cluster goes when the block
    ends, unless it is the one of an enclosing :func:`shared_cluster` block (then it goes with that)."""
    shared = _SHARED.get()
    if shared is not None and shared.key == (scheduler, workers):
        yield shared.open(distributed)
        return
    with _open(distributed, scheduler, workers, timeout) as session:
        yield session


@contextlib.contextmanager
def _open(distributed, scheduler, workers, timeout):
    quiet = logging.ERROR
    if scheduler is None:
        n = int(workers)
        threads = max(1, usable_cores() // n)
        try:
            with warnings.catch_warnings():  # the scheduler's HTTP port: another cluster may hold 8787
                warnings.filterwarnings("ignore", message="Port .* is already in use", category=UserWarning)
                cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=threads, processes=True,
                                                   dashboard_address=None, silence_logs=quiet)
        except Exception as error:
            raise BagkitError(f"could not start a local Dask cluster of {n} worker processes: "
                              f"{type(error).__name__}: {error}") from error
        with cluster, distributed.Client(cluster) as client:
            # A terminal's Ctrl-C reaches the whole process group: the local workers must outlive it
            # so that the scans they are predicting can still be finished and cached.
            client.run(_ignore_interrupts)
            yield client, cluster.scheduler_address, f"local cluster, {n} processes x {threads} thread(s)"
        return
    how = {"scheduler_file": str(scheduler)} if Path(str(scheduler)).is_file() else {"address": str(scheduler)}
    options = {"timeout": timeout} if timeout is not None else {}
    try:
        client = distributed.Client(**how, **options)
    except Exception as error:  # OSError, TimeoutError, ValueError for a malformed address
        raise BagkitError(
            f"cannot reach the Dask scheduler at {scheduler} ({type(error).__name__}: {error}). Start one with "
            f"`dask scheduler` (and workers with `dask worker {scheduler}`), check the address and that this "
            f"machine may connect to it, or use --workers N for a cluster on this machine."
        ) from None
    with client:
        wanted = int(workers) if workers is not None else 1
        wait = timeout if timeout is not None else _connect_timeout()
        try:
            client.wait_for_workers(wanted, timeout=wait)
        except Exception:  # TimeoutError
            have = len(client.scheduler_info(n_workers=-1).get("workers", {}))
            raise BagkitError(
                f"the Dask scheduler at {scheduler} has {have} worker(s); waited {wait:g} s for {wanted}. "
                f"Start workers with `dask worker {client.scheduler.address}`."
            ) from None
        yield client, client.scheduler.address, "existing scheduler"


def _ignore_interrupts() -> None:
    import signal

    with contextlib.suppress(ValueError):  # not the main thread of the worker: leave it
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _connect_timeout() -> float:
    import dask
    from dask.utils import parse_timedelta

    return float(parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), default="s"))


def _needed_modules(predictor) -> list[str]:
    modules = ["bagkit", "bagkit.predictors.distributed"]
    module = type(predictor).__module__
    if module not in ("__main__", "builtins") and module not in modules:
        modules.append(module)
    return modules


def _make_probe():
    # A local function: cloudpickle ships it by value, so it runs on a worker that lacks bagkit.
    def probe(modules):
        import importlib

        missing = {}
        for module in modules:
            try:
                importlib.import_module(module)
            except Exception as error:  # noqa: BLE001 - reported by name
                missing[module] = f"{type(error).__name__}: {error}"
        try:
            from distributed import get_worker

            threads = int(get_worker().state.nthreads)
        except Exception:  # noqa: BLE001
            threads = 1
        return {"missing": missing, "threads": threads}

    return probe


def _check_workers(client, predictor, address, modules: list[str] | None = None,
                   what: str | None = None) -> dict[str, int]:
    """Threads per worker, after checking every worker imports bagkit and the predictor (or
    ``modules``, for the work ``what`` names: e.g. preprocessing)."""
    modules = modules or _needed_modules(predictor)
    try:
        found = client.run(_make_probe(), modules)
    except Exception as error:
        raise BagkitError(f"could not run a check on the Dask workers of {address}: "
                          f"{type(error).__name__}: {error}") from error
    lacking = {worker: info["missing"] for worker, info in found.items() if info["missing"]}
    if lacking:
        lines = "; ".join(f"{worker} cannot import {', '.join(f'{m} ({why})' for m, why in missing.items())}"
                          for worker, missing in sorted(lacking.items()))
        if what is None:
            name = getattr(predictor, "name", type(predictor).__name__)
            what = f"predicting with {name!r}"
            install = f"bagkit and the predictor's package (the module {modules[-1]})"
        else:
            install = f"bagkit and what it needs there ({', '.join(modules)})"
        raise BagkitError(
            f"{len(lacking)} of {len(found)} Dask worker(s) at {address} lack what {what} needs: {lines}. "
            f"Install {install} in every worker's environment, the same versions as here."
        )
    return {worker: info["threads"] for worker, info in found.items()}


def _collect(client, futures, chunks, plan, progress, distributed, stop) -> int:
    """Stream results into ``plan.out`` and the cache as tasks finish; the number of scans predicted."""
    from tqdm.auto import tqdm

    by_key = {future.key: chunk for future, chunk in zip(futures, chunks)}
    stored: set = set()
    out, counts = plan.out, {"predicted": 0, "failed": 0}
    bar = tqdm(total=len(plan.todo), disable=not progress, desc=f"brain age ({plan.name}, dask)", unit="scan")
    last_poll, stop_asked = [0.0], [False]
    interrupts = _Interrupts()

    def store(future, rows=None):
        with interrupts.protected():  # a Ctrl-C waits until this result is in the cache
            _store(future, rows)

    def _store(future, rows):
        chunk = by_key[future.key]
        paths = {label: (path, digest) for label, path, digest in chunk}
        if future.status == "finished":
            if rows is None:  # started after a Ctrl-C (or could not ask whether): nothing predicted
                stored.add(future.key)
                future.release()
                if not stop_asked[0]:
                    for label, path, _ in chunk:
                        out.at[label, "prediction_error"] = (f"{path}: not predicted (the worker could not reach "
                                                             f"the scheduler); run again to predict it")
                    counts["failed"] += len(chunk)
                    bar.update(len(chunk))
                return
        else:
            error = future.exception() if future.status == "error" else None
            if isinstance(error, (WorkerSetupError, ImportError)):
                raise _setup_failure(error, plan) from None
            why = _task_failure(error, distributed) if error is not None else "cancelled"
            rows = [(label, float("nan"), float("nan"), f"{path}: {why}") for label, path, _ in chunk]
        for label, age, sd, message in rows:
            if message:
                out.at[label, "prediction_error"] = message
                counts["failed"] += 1
                continue
            out.at[label, "brain_age"], out.at[label, "brain_age_sd"] = float(age), float(sd)
            counts["predicted"] += 1
            if plan.cache is not None:
                path, digest = paths[label]
                write_cached(plan.cache, plan.name, digest, plan.predictor_digest, age, sd, path)
        stored.add(future.key)
        # Let the cluster forget it: a result held only by a worker that later dies would
        # otherwise be computed again, for nothing (it is in the cache now).
        future.release()
        bar.update(len(rows))
        now = time.monotonic()
        if progress and now - last_poll[0] > 1.0:
            last_poll[0] = now
            running = sum(len(keys) for keys in client.processing().values())
            bar.set_postfix(failed=counts["failed"], running=running, refresh=False)

    try:
        with interrupts:
            try:
                for batch in distributed.as_completed(futures).batches():
                    _store_batch(client, batch, store)
            except KeyboardInterrupt:
                stop_asked[0] = True
                _drain(client, [f for f in futures if f.key not in stored], store, bar, stop)
                where = f" in {plan.cache}" if plan.cache is not None else ""
                bar.write(f"stopped: {counts['predicted']} scan(s) predicted in this run are cached{where}; "
                          f"the same command goes on from there", file=sys.stderr)
                raise
            except BaseException:
                client.cancel([f for f in futures if f.key not in stored])
                raise
    finally:
        bar.close()
    return counts["predicted"]


class _Interrupts:
    """While entered (in the main thread): Ctrl-C raises KeyboardInterrupt as usual, except inside
    ``protected()`` — a result being written to the cache — where it is held until the block ends."""

    def __init__(self):
        self.depth, self.pending, self.previous = 0, False, None

    def __enter__(self):
        try:
            self.previous = signal.signal(signal.SIGINT, self._handler)
        except ValueError:  # not the main thread: signals are not ours to handle
            self.previous = None
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False

    def _handler(self, signum, frame):
        if self.depth:
            self.pending = True
        else:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def protected(self):
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
            if not self.depth and self.pending:
                self.pending = False
                raise KeyboardInterrupt


def _store_batch(client, batch, store) -> None:
    """Store the futures that finished together, their results fetched in one gather (one
    ``future.result()`` each would cost a round trip per scan)."""
    finished = [future for future in batch if future.status == "finished"]
    results = dict(zip((f.key for f in finished), client.gather(finished))) if finished else {}
    for future in batch:
        store(future, results.get(future.key))


def _drain(client, futures, store, bar, stop) -> None:
    """After a Ctrl-C: drop the queued tasks, finish and cache those running (Ctrl-C again: stop).

    The stop event comes first: a task that starts after it predicts nothing, so every task
    that did start predicting is still processing (or done) when the queued ones are dropped."""
    import distributed

    try:
        stop.set()
        processing = set(itertools.chain.from_iterable(client.processing().values()))
        waiting = [f for f in futures if not f.done()]
        held = {key for key, workers in client.who_has(waiting).items() if workers}  # done, not yet here
        running = [f for f in futures if f.done() or f.key in processing or f.key in held]
        client.cancel([f for f in waiting if f.key not in processing and f.key not in held])
        if running:
            bar.write(f"stopping: finishing the {len(running)} task(s) in progress so their scans are cached "
                      f"(Ctrl-C again to stop now)", file=sys.stderr)
            pending = running
            while pending:
                try:
                    distributed.wait(pending, timeout=1, return_when="FIRST_COMPLETED")
                except TimeoutError:
                    if not client.scheduler_info(n_workers=-1).get("workers"):  # they went with the Ctrl-C
                        bar.write(f"stopping: the workers are gone; {len(pending)} task(s) in flight are lost "
                                  f"(a rerun predicts them)", file=sys.stderr)
                        break
                    continue
                done = {f.key for f in pending if f.done()}  # once: a future may finish meanwhile
                _store_batch(client, [f for f in pending if f.key in done and f.status != "cancelled"], store)
                pending = [f for f in pending if f.key not in done]
    except KeyboardInterrupt:
        pass
    finally:
        client.cancel([f for f in futures if not f.done()])
        with contextlib.suppress(Exception):
            stop.clear()  # forget the event on the scheduler


def _task_failure(error, distributed) -> str:
    killed = getattr(distributed, "KilledWorker", None)
    if killed is not None and isinstance(error, killed):
        return ("the worker running this scan died each time it was tried (out of memory? a crash in a "
                "native library?); see the workers' logs")
    return f"{type(error).__name__}: {error}"


def _setup_failure(error, plan) -> BagkitError:
    if isinstance(error, WorkerSetupError):
        message = str(error)
    else:
        message = (f"a Dask worker cannot import what predicting with {plan.name!r} needs "
                   f"({type(error).__name__}: {error}); install bagkit and the predictor's package there")
    done = int(plan.out["brain_age"].notna().sum())
    where = f" (kept in the cache {plan.cache})" if plan.cache is not None else ""
    return BagkitError(f"{message}. The run stopped; {done} prediction(s) made so far{where}; nothing else written.")


# ---------------------------------------------------------------------------------- worker side
_LOADED: dict[str, tuple[Any, threading.Lock]] = {}
_LOADED_LOCK = threading.Lock()
_KEEP_LOADED = 2  # predictors kept per worker (a run uses one)


def _the_predictor(payload: bytes) -> bytes:
    """The task whose output is the pickled predictor: lost with a worker, the scheduler reruns it."""
    return payload


def _worker_name() -> str:
    try:
        from distributed import get_worker

        worker = get_worker()
        return f"worker {worker.address} (host {os.uname().nodename})"
    except Exception:  # noqa: BLE001
        return f"worker on host {os.uname().nodename}"


def _worker_threads() -> int:
    try:
        from distributed import get_worker

        return int(get_worker().state.nthreads)
    except Exception:  # noqa: BLE001
        return 1


def _loaded_predictor(payload: bytes, token: str):
    """The predictor of ``token`` on this worker, unpickled once (and its lock: one prediction at a
    time per worker, scans loaded in parallel by the worker's threads)."""
    import cloudpickle

    with _LOADED_LOCK:
        entry = _LOADED.get(token)
        if entry is None:
            try:
                predictor = cloudpickle.loads(payload)
            except Exception as error:
                raise WorkerSetupError(
                    f"{_worker_name()} cannot load the predictor ({type(error).__name__}: {error}); install "
                    f"its package there, the same version as on the client"
                ) from None
            params = predictor.get_params() if callable(getattr(predictor, "get_params", None)) else {}
            if "num_threads" in params and params["num_threads"] is None:  # e.g. SFCN: the worker's threads,
                predictor.set_params(num_threads=_worker_threads())       # not every core of the machine
            while len(_LOADED) >= _KEEP_LOADED:
                _LOADED.pop(next(iter(_LOADED)))
            entry = _LOADED[token] = (predictor, threading.Lock())
    return entry


def _stopped(stop: str | None) -> bool:
    if stop is None:
        return False
    try:
        from distributed import Event

        return Event(stop).is_set()
    except Exception:  # noqa: BLE001 - no scheduler to ask (it is closing): the result would be lost
        return True


def _predict_scans(items: list[tuple[Any, str]], payload: bytes, token: str,
                   stop: str | None = None) -> list[tuple[Any, float, float, str]] | None:
    """One task: (row label, scan path) pairs in, (label, brain age, SD, error or "") out; None when
    the run was stopped (Ctrl-C on the client) before this task started."""
    if _stopped(stop):
        return None
    predictor, lock = _loaded_predictor(payload, token)
    rows, loaded, volumes = [], [], []
    for label, path in items:
        if not (os.path.isfile(path) and os.access(path, os.R_OK)):
            raise WorkerSetupError(
                f"{_worker_name()} cannot read the scan {path}, which the client reads: the workers need the "
                f"scans at the same paths (a shared filesystem, or paths valid on every worker)"
            )
        try:
            volumes.append(predictor.load_scan(path))
            loaded.append((label, path))
        except Exception as error:  # noqa: BLE001 - recorded per scan, as in the serial path
            rows.append((label, float("nan"), float("nan"), _describe(error, Path(path))))
    if not loaded:
        return rows
    with lock:  # the serial path's batch step: the predictor's own predict(), one by one on failure
        results = _predict_batch(predictor, volumes)
    name = getattr(predictor, "name", type(predictor).__name__)
    for (label, path), result in zip(loaded, results):
        if isinstance(result, Exception):
            rows.append((label, float("nan"), float("nan"), _describe(result, Path(path))))
            continue
        age, sd = result
        if not (np.isfinite(age) and np.isfinite(sd)):
            rows.append((label, float("nan"), float("nan"), f"{path}: predictor {name!r} returned "
                         f"brain_age={age}, brain_age_sd={sd}, not finite numbers"))
            continue
        rows.append((label, float(age), float(sd), ""))
    return rows


__all__ = ["PredictionRun", "WorkerSetupError", "predict_cohort_distributed", "shared_cluster", "usable_cores"]
