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

import hashlib
import inspect
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bagkit.errors import ImageError, PredictorError
from bagkit.io.hashing import file_hash

ENTRY_POINT_GROUP = "bagkit.predictors"
PREDICTION_COLUMNS = ("brain_age", "brain_age_sd")


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
    def model_path(cls, path) -> Path:
        """The file :meth:`save` writes when asked for ``path`` (override it when ``save`` adds a
        suffix): ``bagkit train`` checks that file before training, so none is overwritten unasked."""
        return Path(path)

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
