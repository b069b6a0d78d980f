"""Cohort-wide prediction with the content-addressed cache.

One batch path: the predictor is checked once (``predictor.check()``), each scan is
loaded on its own (a bad scan is that subject's ``prediction_error``), and the
loaded volumes go through the predictor's own ``predict`` in batches. A prediction
that is not finite counts as failed. The cache helpers (``read_cached``,
``write_cached``, ``plan_prediction``) are small functions of their own, shared by other batch runners.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bagkit.errors import BagkitError, PredictorError
from bagkit.io.hashing import file_hash
from bagkit.io.outputs import atomic_output
from bagkit.predictors.protocol import PREDICTION_COLUMNS
from bagkit.predictors.registry import resolve_predictor


def _cache_path(cache_dir: Path, predictor_name: str, scan_digest: str, predictor_digest: str) -> Path:
    key = hashlib.sha256(f"{scan_digest}:{predictor_name}:{predictor_digest}".encode()).hexdigest()
    return cache_dir / predictor_name / f"{key}.json"


def scan_digest(path: Path, cache_dir: Path | None) -> str:
    """The SHA-256 of a scan, remembered in ``cache_dir`` under the file's identity (device, inode,
    size, modification and change times): a rerun over 50 000 scans stats them instead of reading
    them all again. Any write to the file changes its change time (which no tool can set back), so
    a remembered digest is never stale; without a cache the file is simply hashed."""
    if cache_dir is None:
        return file_hash(path)
    resolved = Path(path).resolve()
    note = cache_dir / ".scan-digests" / f"{hashlib.sha256(str(resolved).encode()).hexdigest()}.digest"
    stat = resolved.stat()
    identity = [stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]
    try:
        remembered = json.loads(note.read_text())
        if remembered["identity"] == identity and remembered["path"] == str(resolved):
            return str(remembered["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    digest = file_hash(resolved)
    with atomic_output(note) as tmp:
        tmp.write_text(json.dumps({"path": str(resolved), "identity": identity, "sha256": digest}))
    return digest


def read_cached(cache_dir: Path, predictor_name: str, scan_digest: str,
                predictor_digest: str) -> tuple[float, float] | None:
    """The cached (brain_age, brain_age_sd) of a scan, or None (absent, damaged or not finite)."""
    cached = _cache_path(cache_dir, predictor_name, scan_digest, predictor_digest)
    if not cached.is_file():
        return None
    try:
        stored = json.loads(cached.read_text())
        age, sd = float(stored["brain_age"]), float(stored["brain_age_sd"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a damaged cache entry: predict again
    return (age, sd) if np.isfinite(age) and np.isfinite(sd) else None


def write_cached(cache_dir: Path, predictor_name: str, scan_digest: str, predictor_digest: str,
                 brain_age: float, brain_age_sd: float, scan_path) -> Path:
    """Store one prediction in the cache, atomically (a reader never sees half an entry)."""
    target = _cache_path(cache_dir, predictor_name, scan_digest, predictor_digest)
    with atomic_output(target) as tmp:
        tmp.write_text(json.dumps({
            "brain_age": float(brain_age), "brain_age_sd": float(brain_age_sd),
            "scan": str(scan_path), "predictor": predictor_name,
        }))
    return target


@dataclasses.dataclass
class PredictionPlan:
    """What a cohort-wide prediction has to do: ``out`` (the result frame, with the cached
    predictions and the per-subject errors found so far filled in) and ``todo`` (row label,
    scan path, scan digest) of the scans still to predict. Shared by the serial and the
    distributed paths, so both read the same cache entries."""

    predictor: Any
    name: str
    cache: Path | None
    predictor_digest: str
    out: pd.DataFrame
    todo: list[tuple[Any, Path, str]]


def plan_prediction(frame: pd.DataFrame, predictor, base_dir=".", cache_dir=None) -> PredictionPlan:
    """Check the table, resolve the predictor, and look every scan up in the cache."""
    if "scan" not in frame.columns:
        raise BagkitError(
            "the cohort table has no 'scan' column; add one with the T1 NIfTI path of each subject "
            "(relative to the table's folder), or give brain_age / brain_age_sd directly."
        )
    predictor = resolve_predictor(predictor)
    check = getattr(predictor, "check", None)
    if callable(check):
        check()  # once, before the batch: a predictor that cannot predict is one error, not one per scan
    name = getattr(predictor, "name", type(predictor).__name__)
    base = Path(base_dir)
    cache = Path(cache_dir) if cache_dir is not None else None
    predictor_digest = predictor.fingerprint() if cache is not None else ""

    out = pd.DataFrame(index=frame.index)
    out["brain_age"] = np.nan
    out["brain_age_sd"] = np.nan
    out["prediction_error"] = ""
    if "subject_id" in frame.columns:
        out.insert(0, "subject_id", frame["subject_id"].values)

    todo: list[tuple[Any, Path, str]] = []  # (row label, path, scan digest)
    for label, scan in frame["scan"].items():
        if scan is None or (isinstance(scan, float) and np.isnan(scan)) or str(scan).strip() == "":
            out.at[label, "prediction_error"] = "no scan given"
            continue
        path = Path(str(scan))
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            out.at[label, "prediction_error"] = f"scan file not found: {path}"
            continue
        digest = scan_digest(path, cache) if cache is not None else ""
        stored = read_cached(cache, name, digest, predictor_digest) if cache is not None else None
        if stored is not None:
            out.at[label, "brain_age"], out.at[label, "brain_age_sd"] = stored
            continue
        todo.append((label, path, digest))
    return PredictionPlan(predictor, name, cache, predictor_digest, out, todo)



def predict_cohort(
    frame: pd.DataFrame,
    predictor,
    base_dir=".",
    cache_dir=None,
    progress: bool = True,
    batch_size: int = 8,
    scheduler: str | None = None,
    workers: int | None = None,
) -> pd.DataFrame:
    """Predict brain age for every subject of a cohort table with a ``scan`` column.

    ``scan`` paths are relative to ``base_dir`` (the folder of the cohort table).
    Returns a frame indexed like ``frame`` with ``brain_age``, ``brain_age_sd`` and
    ``prediction_error`` (empty when the scan was predicted; otherwise what went
    wrong, e.g. a corrupt file, or a brain age that is not a number) — a bad scan
    never stops the batch. A predictor that cannot predict at all (bad weights, bad
    parameters, not fitted) does: ``predictor.check()`` runs once before the batch and
    its :class:`~bagkit.errors.PredictorError` propagates. Scans are handed to the
    predictor's own ``predict`` ``batch_size`` at a time. With ``cache_dir``, each
    prediction is stored under (scan file hash, predictor name, predictor fingerprint —
    which leaves out runtime settings such as the device or the progress bar), so a
    second run reads them back instead of predicting.

    With ``scheduler`` (a Dask scheduler address or scheduler file) or ``workers`` (a local
    cluster of that many processes), the scans are predicted as Dask distributed tasks by
    :func:`bagkit.predictors.distributed.predict_cohort_distributed` (same results, same cache);
    without either, Dask is not imported.
    """
    if scheduler is not None or workers is not None:
        from bagkit.predictors.distributed import predict_cohort_distributed

        return predict_cohort_distributed(frame, predictor, base_dir=base_dir, cache_dir=cache_dir,
                                          progress=progress, scheduler=scheduler, workers=workers)
    plan = plan_prediction(frame, predictor, base_dir, cache_dir)
    predictor, name, cache, predictor_digest = plan.predictor, plan.name, plan.cache, plan.predictor_digest
    out, todo = plan.out, plan.todo

    step = max(1, int(batch_size))
    bar = _progress(total=len(todo), enabled=progress, desc=f"brain age ({name})")
    try:
        with _own_progress_off(predictor):
            for start in range(0, len(todo), step):
                chunk = todo[start:start + step]
                loaded, volumes = [], []
                for label, path, digest in chunk:
                    try:
                        volumes.append(predictor.load_scan(path))
                        loaded.append((label, path, digest))
                    except PredictorError:
                        raise
                    except Exception as error:  # noqa: BLE001 - recorded per subject
                        out.at[label, "prediction_error"] = _describe(error, path)
                if loaded:
                    for (label, path, digest), result in zip(loaded, _predict_batch(predictor, volumes)):
                        if isinstance(result, Exception):
                            out.at[label, "prediction_error"] = _describe(result, path)
                            continue
                        age, sd = result
                        if not (np.isfinite(age) and np.isfinite(sd)):
                            out.at[label, "prediction_error"] = (
                                f"{path}: predictor {name!r} returned brain_age={age}, brain_age_sd={sd}, "
                                f"not finite numbers"
                            )
                            continue
                        out.at[label, "brain_age"] = age
                        out.at[label, "brain_age_sd"] = sd
                        if cache is not None:
                            write_cached(cache, name, digest, predictor_digest, age, sd, path)
                bar.update(len(chunk))
    finally:
        bar.close()
    return out


def _predict_batch(predictor, volumes: list[np.ndarray]) -> list:
    """(brain_age, brain_age_sd) or the exception, per volume, through ``predictor.predict``.

    The batch goes whole; when it fails with anything but a :class:`PredictorError` (which
    is the predictor's, not a scan's, and stops the run), each volume is retried on its own
    to isolate the one that failed."""
    try:
        return _prediction_pairs(predictor, predictor.predict(volumes), len(volumes))
    except PredictorError:
        raise
    except Exception as error:  # noqa: BLE001 - recorded per subject, after a retry one by one
        if len(volumes) == 1:
            return [error]
        return [item for volume in volumes for item in _predict_batch(predictor, [volume])]


def _prediction_pairs(predictor, result, n: int) -> list[tuple[float, float]]:
    name = getattr(predictor, "name", type(predictor).__name__)
    if not isinstance(result, pd.DataFrame) or not set(PREDICTION_COLUMNS) <= set(result.columns) \
            or len(result) != n:
        found = (f"a DataFrame with columns {list(result.columns)} and {len(result)} rows"
                 if isinstance(result, pd.DataFrame) else type(result).__name__)
        raise PredictorError(
            f"predictor {name!r}: predict() returned {found}; expected a DataFrame with columns "
            f"brain_age and brain_age_sd and one row per scan ({n})."
        )
    ages = pd.to_numeric(result["brain_age"], errors="coerce").to_numpy(dtype=float)
    sds = pd.to_numeric(result["brain_age_sd"], errors="coerce").to_numpy(dtype=float)
    return [(float(a), float(s)) for a, s in zip(ages, sds)]


def require_predictions(predictions: pd.DataFrame, source="the cohort") -> None:
    """Raise :class:`PredictorError` when ``predict_cohort`` predicted no scan at all (every
    row failed), with the first reasons; a partly predicted batch passes."""
    if len(predictions) == 0 or (predictions["prediction_error"] == "").any():
        return
    errors = predictions["prediction_error"]
    reasons = list(dict.fromkeys(errors))
    first = "; ".join(reasons[:3]) + (f"; and {len(reasons) - 3} other reason(s)" if len(reasons) > 3 else "")
    raise PredictorError(
        f"{source}: none of the {len(predictions)} scans could be predicted ({first})."
    )


@contextlib.contextmanager
def _own_progress_off(predictor):
    """The batch has its own progress bar: the predictor's (a runtime parameter, outside its
    fingerprint) is switched off while the batch runs."""
    get_params = getattr(predictor, "get_params", None)
    params = get_params() if callable(get_params) else {}
    if "progress" not in params or "progress" not in getattr(predictor, "runtime_params", ()):
        yield
        return
    predictor.set_params(progress=False)
    try:
        yield
    finally:
        predictor.set_params(progress=params["progress"])


def _describe(error: Exception, path: Path) -> str:
    message = str(error)
    if str(path) not in message:
        message = f"{path}: {message}"
    return f"{type(error).__name__}: {message}"


def _progress(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit="scan")
