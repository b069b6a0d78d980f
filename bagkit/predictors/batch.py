"""Cohort-wide prediction with the content-addressed cache."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bagkit.errors import BagkitError
from bagkit.io.hashing import file_hash
from bagkit.io.outputs import atomic_output
from bagkit.predictors.registry import resolve_predictor

PREDICTION_COLUMNS = ("brain_age", "brain_age_sd")


def _cache_path(cache_dir: Path, predictor_name: str, scan_digest: str, predictor_digest: str) -> Path:
    key = hashlib.sha256(f"{scan_digest}:{predictor_name}:{predictor_digest}".encode()).hexdigest()
    return cache_dir / predictor_name / f"{key}.json"


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
    wrong, e.g. a corrupt file) — a bad scan never stops the batch. With
    ``cache_dir``, each prediction is stored under (scan file hash, predictor name,
    predictor fingerprint), so a second run reads them back instead of predicting.
    """
    if "scan" not in frame.columns:
        raise BagkitError(
            "the cohort table has no 'scan' column; add one with the T1 NIfTI path of each subject "
            "(relative to the table's folder), or give brain_age / brain_age_sd directly."
        )
    predictor = resolve_predictor(predictor)
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
            cached = _cache_path(cache, name, digest, predictor_digest)
            if cached.is_file():
                try:
                    stored = json.loads(cached.read_text())
                    out.at[label, "brain_age"] = float(stored["brain_age"])
                    out.at[label, "brain_age_sd"] = float(stored["brain_age_sd"])
                    continue
                except (ValueError, KeyError, TypeError):
                    pass  # a damaged cache entry: predict again
        todo.append((label, path, digest))

    bar = _progress(total=len(todo), enabled=progress, desc=f"brain age ({name})")
    try:
        for start in range(0, len(todo), max(1, int(batch_size))):
            chunk = todo[start:start + max(1, int(batch_size))]
            loaded, volumes = [], []
            for label, path, digest in chunk:
                try:
                    volumes.append(predictor.load_scan(path))
                    loaded.append((label, path, digest))
                except Exception as error:  # noqa: BLE001 - recorded per subject
                    out.at[label, "prediction_error"] = _describe(error, path)
                    bar.update(1)
            if not loaded:
                continue
            try:
                results = [predictor.predict_arrays(np.stack(volumes))]
                groups = [loaded]
            except Exception:  # noqa: BLE001 - retry one by one to isolate the bad scan
                results, groups = [], []
                for item, volume in zip(loaded, volumes):
                    try:
                        results.append(predictor.predict_arrays(volume[None]))
                        groups.append([item])
                    except Exception as error:  # noqa: BLE001
                        out.at[item[0], "prediction_error"] = _describe(error, item[1])
            for (ages, sds), items in zip(results, groups):
                for (label, path, digest), age, sd in zip(items, np.ravel(ages), np.ravel(sds)):
                    out.at[label, "brain_age"] = float(age)
                    out.at[label, "brain_age_sd"] = float(sd)
                    if cache is not None:
                        with atomic_output(_cache_path(cache, name, digest, predictor_digest)) as tmp:
                            tmp.write_text(json.dumps({
                                "brain_age": float(age), "brain_age_sd": float(sd),
                                "scan": str(path), "predictor": name,
                            }))
            bar.update(len(loaded))
    finally:
        bar.close()
    return out


def _describe(error: Exception, path: Path) -> str:
    message = str(error)
    if str(path) not in message:
        message = f"{path}: {message}"
    return f"{type(error).__name__}: {message}"


def _progress(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit="scan")
