"""The brain-age predictor protocol, the plug-in registry and cohort-wide prediction.

A predictor is sklearn-shaped (see ``docs/predictors.md``):

- parameters only in ``__init__`` (stored unchanged, no work done there);
- learned state in attributes ending ``_``;
- ``fit(scans, ages)`` returns ``self``;
- ``predict(scans)`` returns a DataFrame with columns ``brain_age`` and
  ``brain_age_sd``, indexed like the input;
- ``save(path)`` and the classmethod ``load(path)``.

Predictors are found through the ``bagkit.predictors`` entry-point group, the same
path a third party's predictor takes. Listing them never imports them (so listing
never imports torch); :func:`get_predictor` imports the one asked for.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import re
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from bagkit.errors import BagkitError, ImageError, PredictorError
from bagkit.outputs import atomic_output

ENTRY_POINT_GROUP = "bagkit.predictors"
PREDICTION_COLUMNS = ("brain_age", "brain_age_sd")
_ENTRY_POINT_VALUE = re.compile(r"^[A-Za-z_][\w.]*\s*:\s*[A-Za-z_][\w.]*$")


# --------------------------------------------------------------------------- protocol
class BrainAgePredictor:
    """Base class of every brain-age predictor.

    Subclasses set ``name`` and ``input_shape`` (a parameter or a class attribute),
    implement :meth:`fit`, :meth:`predict_arrays` (a stack of preprocessed volumes
    in, two 1-D arrays out) and, when they can be stored, :meth:`save` / :meth:`load`.
    Everything else (accepting paths, images or arrays, keeping the input's index)
    comes from this class.
    """

    #: the registry name (entry-point name) of the predictor
    name: str = "predictor"
    #: default preprocessed shape; a subclass may also take it as a parameter
    input_shape: tuple[int, int, int] = (160, 192, 160)

    # ------------------------------------------------------------------ sklearn API
    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [
            p.name for p in signature.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self) -> dict[str, Any]:
        """The ``__init__`` parameters, as given."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> "BrainAgePredictor":
        valid = set(self._param_names())
        for key, value in params.items():
            if key not in valid:
                raise PredictorError(
                    f"{type(self).__name__} has no parameter {key!r}; its parameters are "
                    f"{', '.join(sorted(valid))}."
                )
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    def fit(self, scans, ages) -> "BrainAgePredictor":
        raise PredictorError(
            f"predictor {self.name!r} cannot be trained here; load it with its weights instead."
        )

    def predict_arrays(self, volumes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predict from a stack ``(n, *input_shape)`` of preprocessed float32 volumes."""
        raise NotImplementedError

    def predict(self, scans) -> pd.DataFrame:
        """Brain age and its SD per scan, indexed like ``scans``.

        ``scans`` is a sequence (or a Series) of NIfTI paths, nibabel images or
        preprocessed arrays of shape ``input_shape``.
        """
        index = scan_index(scans)
        volumes = self.load_scans(scans)
        if len(volumes) == 0:
            return pd.DataFrame({c: pd.Series(dtype=float) for c in PREDICTION_COLUMNS}, index=index)
        brain_age, brain_age_sd = self.predict_arrays(volumes)
        return pd.DataFrame(
            {"brain_age": np.asarray(brain_age, dtype=float),
             "brain_age_sd": np.asarray(brain_age_sd, dtype=float)},
            index=index,
        )

    def save(self, path) -> Path:
        raise PredictorError(f"predictor {self.name!r} does not support saving.")

    @classmethod
    def load(cls, path) -> "BrainAgePredictor":
        raise PredictorError(f"predictor {cls.name!r} does not support loading.")

    # ------------------------------------------------------------------ input
    def load_scan(self, scan) -> np.ndarray:
        """One scan (path, nibabel image or array) as a preprocessed float32 volume."""
        from bagkit import imaging  # plain numpy/scipy/nibabel; no torch

        shape = tuple(int(s) for s in getattr(self, "input_shape", type(self).input_shape))
        if isinstance(scan, np.ndarray):
            if scan.shape != shape:
                raise ImageError(
                    f"a preprocessed array of shape {scan.shape} was given to {self.name!r}, "
                    f"which expects {shape}; pass the NIfTI path instead, or preprocess to {shape}."
                )
            return np.ascontiguousarray(scan, dtype=np.float32)
        if isinstance(scan, (str, os.PathLike)):
            image = imaging.load_t1(scan)
        else:
            image = scan
        return imaging.preprocess(image, shape=shape)

    def load_scans(self, scans) -> np.ndarray:
        items = list(scans.values) if isinstance(scans, pd.Series) else list(scans)
        if not items:
            shape = tuple(getattr(self, "input_shape", type(self).input_shape))
            return np.zeros((0, *shape), dtype=np.float32)
        return np.stack([self.load_scan(item) for item in items])

    # ------------------------------------------------------------------ identity
    def fingerprint(self) -> str:
        """A hash of what determines this predictor's output: its class, its
        parameters (files named by a parameter are hashed by content) and its
        learned state. Predictions are cached under it."""
        digest = hashlib.sha256()
        digest.update(f"{type(self).__module__}.{type(self).__qualname__}".encode())
        for key, value in sorted(self.get_params().items()):
            digest.update(key.encode())
            if isinstance(value, (str, os.PathLike)) and str(value) and Path(value).is_file():
                digest.update(file_hash(value).encode())
            else:
                digest.update(repr(value).encode())
        for key in sorted(vars(self)):
            if key.endswith("_") and not key.startswith("_"):
                _update_digest(digest, getattr(self, key))
        return digest.hexdigest()


def _update_digest(digest, value) -> None:
    if isinstance(value, np.ndarray):
        digest.update(str(value.shape).encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, (list, tuple)):
        for item in value:
            _update_digest(digest, item)
    elif isinstance(value, dict):
        for k in sorted(value, key=str):
            digest.update(str(k).encode())
            _update_digest(digest, value[k])
    elif isinstance(value, (int, float, str, bool, type(None), np.generic)):
        digest.update(repr(value).encode())
    else:  # an object we cannot hash by content (e.g. a torch module): the subclass
        digest.update(type(value).__qualname__.encode())  # should override fingerprint()


def scan_index(scans) -> pd.Index:
    """The index a prediction frame gets: the Series' own index, else 0..n-1."""
    if isinstance(scans, (pd.Series, pd.DataFrame)):
        return scans.index
    return pd.RangeIndex(len(scans))


def file_hash(path, chunk_size: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- registry
@functools.lru_cache(maxsize=1)
def _registered() -> tuple[tuple[str, metadata.EntryPoint], ...]:
    try:
        found = metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception as error:  # a distribution with broken metadata
        warnings.warn(f"bagkit could not read the installed predictor plug-ins: {error}", stacklevel=3)
        return ()
    entries: dict[str, metadata.EntryPoint] = {}
    for entry in found:
        try:
            name, value = entry.name, entry.value
        except Exception as error:  # pragma: no cover - defensive
            warnings.warn(f"skipping an unreadable bagkit predictor entry point: {error}", stacklevel=3)
            continue
        if not _ENTRY_POINT_VALUE.match(value or ""):
            warnings.warn(
                f"skipping bagkit predictor plug-in {name!r}: its entry point {value!r} is not of "
                f"the form 'module:ClassName'.", stacklevel=3,
            )
            continue
        if name in entries and entries[name].value != value:
            warnings.warn(
                f"two installed plug-ins register the predictor {name!r} ({entries[name].value} and "
                f"{value}); using the first.", stacklevel=3,
            )
            continue
        entries.setdefault(name, entry)
    return tuple(sorted(entries.items()))


def available_predictors() -> dict[str, metadata.EntryPoint]:
    """Installed predictors by name, from the ``bagkit.predictors`` entry points.

    Cached; never imports a plug-in. A malformed plug-in is skipped with a warning.
    Call ``available_predictors.cache_clear()`` after installing one in a running process.
    """
    return dict(_registered())


available_predictors.cache_clear = _registered.cache_clear  # type: ignore[attr-defined]


def get_predictor(name: str, **params) -> BrainAgePredictor:
    """Import the predictor registered as ``name`` and instantiate it with ``params``.

    ``bagkit.get_predictor("sfcn", weights="run_20190719_00_epoch_best_mae.p", age_range=(42, 82))``
    """
    registered = available_predictors()
    if name not in registered:
        installed = ", ".join(sorted(registered)) or "none"
        raise PredictorError(
            f"no brain-age predictor named {name!r} is installed (installed: {installed}). "
            f"Install one, e.g. `pip install -e predictors/sfcn`, or register your own under the "
            f"entry-point group {ENTRY_POINT_GROUP!r}."
        )
    entry = registered[name]
    try:
        cls = entry.load()
    except Exception as error:
        raise PredictorError(
            f"the predictor plug-in {name!r} ({entry.value}) is installed but failed to import: "
            f"{type(error).__name__}: {error}"
        ) from error
    if not (inspect.isclass(cls) and callable(getattr(cls, "predict", None))):
        raise PredictorError(
            f"the predictor plug-in {name!r} points at {entry.value}, which is not a predictor class "
            f"(expected a BrainAgePredictor subclass with fit/predict)."
        )
    try:
        return cls(**params)
    except TypeError as error:
        raise PredictorError(f"predictor {name!r} does not accept these options: {error}") from error


def resolve_predictor(predictor) -> BrainAgePredictor:
    """A predictor instance from an instance or a registry name."""
    if isinstance(predictor, str):
        return get_predictor(predictor)
    if not callable(getattr(predictor, "predict", None)):
        raise PredictorError(f"{predictor!r} is not a brain-age predictor (it has no predict method).")
    return predictor


# --------------------------------------------------------------------------- cohort prediction
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


__all__ = [
    "BrainAgePredictor", "ENTRY_POINT_GROUP", "PREDICTION_COLUMNS", "available_predictors",
    "get_predictor", "predict_cohort", "resolve_predictor", "file_hash", "scan_index",
]
