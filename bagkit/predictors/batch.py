"""Cohort-wide prediction with the content-addressed cache.

One batch path: the predictor is checked once (``predictor.check()``), each scan is
loaded on its own (a bad scan is that subject's ``prediction_error``), and the
loaded volumes go through the predictor's own ``predict`` in batches. A prediction
that is not finite counts as failed. The cache helpers (``_cache_lookup``,
``_cache_store``) are small functions of their own, shared by other batch runners.
"""
from __future__ import annotations

import contextlib
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


def _cache_lookup(cache_dir: Path, predictor_name: str, scan_digest: str,
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


def _cache_store(cache_dir: Path, predictor_name: str, scan_digest: str, predictor_digest: str,
                 brain_age: float, brain_age_sd: float, scan: Path) -> None:
    """Store one prediction (written atomically)."""
    with atomic_output(_cache_path(cache_dir, predictor_name, scan_digest, predictor_digest)) as tmp:
        tmp.write_text(json.dumps({
            "brain_age": float(brain_age), "brain_age_sd": float(brain_age_sd),
            "scan": str(scan), "predictor": predictor_name,
        }))


def predict_cohort(
    frame: pd.DataFrame,
    predictor,
    base_dir=".",
    cache_dir=None,
    progress: bool = True,
    batch_size: int = 8,
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
    """
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
        digest = file_hash(path) if cache is not None else ""
        if cache is not None:
            cached = _cache_lookup(cache, name, digest, predictor_digest)
            if cached is not None:
                out.at[label, "brain_age"], out.at[label, "brain_age_sd"] = cached
                continue
        todo.append((label, path, digest))

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
                            _cache_store(cache, name, digest, predictor_digest, age, sd, path)
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
