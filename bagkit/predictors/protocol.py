"""The brain-age predictor protocol: the base class every predictor subclasses.

A predictor is sklearn-shaped (see ``docs/predictors.md``):

- parameters only in ``__init__`` (stored unchanged, no work done there);
  those that change how a prediction runs but not its numbers (device, threads,
  progress bar, inference batch size) are named in ``runtime_params`` and left
  out of :meth:`BrainAgePredictor.fingerprint`, the key of the prediction cache;
- learned state in attributes ending ``_``;
- ``fit(scans, ages)`` returns ``self`` and starts with the shared input checks
  (:meth:`BrainAgePredictor.validate_fit_input`);
- ``predict(scans)`` returns a DataFrame with columns ``brain_age`` and
  ``brain_age_sd``, indexed like the input; it is the one path to a prediction
  (``predict_cohort`` calls it on batches of loaded scans);
- ``check()`` raises :class:`~bagkit.errors.PredictorError` unless the predictor
  can predict (valid parameters, weights or a fitted model that match what the
  predictor expects, finite values); ``predict_cohort`` calls it once, before the batch;
- ``save(path)`` and one loader for every predictor, the classmethod
  ``load(path, **overrides)``: it reads the file (the subclass's ``_load``), applies
  ``overrides`` with ``set_params`` and runs ``check()``;
- optionally ``age_distribution(scans)``: the predicted distribution over age bins per scan
  (an :class:`AgeDistribution`) for predictors whose output is one (SFCN); the base returns
  ``None``, meaning "not supported" (the report then shows brain age ± SD only).

:func:`bagkit.predictors.check_predictor` checks all of this on a predictor.
"""

from __future__ import annotations

import hashlib
import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bagkit.errors import ImageError, PredictorError
from bagkit.io.hashing import file_hash

ENTRY_POINT_GROUP = "bagkit.predictors"
PREDICTION_COLUMNS = ("brain_age", "brain_age_sd")


@dataclass(frozen=True, eq=False)
class AgeDistribution:
    """A predictor's distribution over age bins, per scan (what SFCN outputs before its mean).

    ``bin_centers`` (years, increasing, shape ``(n_bins,)``); ``probabilities`` (shape
    ``(n_scans, n_bins)``, each row ≥ 0 and summing to 1); ``brain_age`` and ``brain_age_sd``
    (shape ``(n_scans,)``): the mean and SD of each row's distribution — the same numbers
    ``predict`` returns for those scans; ``index``: the input's index, as ``predict`` keeps it.
    """

    bin_centers: np.ndarray
    probabilities: np.ndarray
    brain_age: np.ndarray
    brain_age_sd: np.ndarray
    index: pd.Index

    def __post_init__(self):
        centers = np.asarray(self.bin_centers, dtype=float)
        probabilities = np.asarray(self.probabilities, dtype=float)
        if probabilities.ndim != 2 or centers.ndim != 1 or probabilities.shape[1] != centers.size:
            raise PredictorError(f"an age distribution needs probabilities of shape (n_scans, {centers.size}) for "
                                 f"{centers.size} bin centres; got {probabilities.shape}.")
        if len(self.brain_age) != len(probabilities) or len(self.brain_age_sd) != len(probabilities) \
                or len(self.index) != len(probabilities):
            raise PredictorError("an age distribution needs one brain_age, brain_age_sd and index label per scan.")
        for name, value in (("bin_centers", centers), ("probabilities", probabilities)):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "brain_age", np.asarray(self.brain_age, dtype=float))
        object.__setattr__(self, "brain_age_sd", np.asarray(self.brain_age_sd, dtype=float))

    def __len__(self) -> int:
        return len(self.probabilities)

    def frame(self) -> pd.DataFrame:
        """The probabilities as a DataFrame: one row per scan (the input's index), one column per bin centre."""
        return pd.DataFrame(self.probabilities, index=self.index, columns=pd.Index(self.bin_centers, name="age"))


class BrainAgePredictor:
    """Base class of every brain-age predictor.

    Subclasses set ``name`` and ``input_shape`` (a parameter or a class attribute),
    implement :meth:`fit` (starting with :meth:`validate_fit_input`),
    :meth:`predict_arrays` (a stack of preprocessed volumes in, two 1-D arrays out) or
    :meth:`predict` itself, and, when they can be stored, :meth:`save` and the
    classmethod ``_load(path)`` behind :meth:`load`. They extend :meth:`validate_params`
    and :meth:`check` with their own parameters and state. Everything else (accepting
    paths, images or arrays, keeping the input's index, the fingerprint) comes from here.
    """

    #: the registry name (entry-point name) of the predictor
    name: str = "predictor"
    #: default preprocessed shape; a subclass may also take it as a parameter
    input_shape: tuple[int, int, int] = (160, 192, 160)
    #: ``__init__`` parameters that change how a prediction runs (device, threads, progress
    #: bar, inference batch size, where checkpoints go) but never its numbers: left out of
    #: :meth:`fingerprint`, so changing them keeps the prediction cache
    runtime_params: frozenset[str] = frozenset()
    #: the fewest training scans :meth:`fit` accepts
    min_fit_scans: int = 2

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
        """Change parameters by name; an unknown name is a :class:`PredictorError`."""
        valid = set(self._param_names())
        unknown = sorted(set(params) - valid)
        if unknown:
            raise PredictorError(
                f"{type(self).__name__} ({self.name!r}) has no parameter {', '.join(map(repr, unknown))}; "
                f"its parameters are {', '.join(sorted(valid))}."
            )
        for key, value in params.items():
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    # ------------------------------------------------------------------ checks
    def validate_params(self) -> None:
        """Raise :class:`PredictorError` for a parameter value this predictor cannot use.

        The base checks ``input_shape`` (three positive integers); subclasses extend it
        (``super().validate_params()`` first) with their own parameters.
        """
        shape = getattr(self, "input_shape", type(self).input_shape)
        if not _is_int_sequence(shape, 3) or min(int(s) for s in shape) < 1:
            raise self.param_error("input_shape", shape, "three positive integers, e.g. [160, 192, 160]")

    def check(self) -> None:
        """Raise :class:`PredictorError` unless this predictor can predict.

        The base validates the parameters; a subclass extends it to load and check its
        weights or fitted state once (keys and shapes against what it expects, values
        finite), naming the file and what was expected. ``predict_cohort`` calls it
        before the batch, and :meth:`load` after reading a file, so that a predictor
        that cannot predict is one clear error rather than one per scan.
        """
        self.validate_params()

    def param_error(self, name: str, value, expected: str) -> PredictorError:
        """The error for a bad parameter value (to raise): the predictor, the parameter,
        what it was and what was expected."""
        return PredictorError(
            f"predictor {self.name!r}: parameter {name}={value!r} is not usable; expected {expected} "
            f"(on the command line: --param {name}=VALUE)."
        )

    def _require_int(self, name: str, minimum: int = 0, allow_none: bool = False) -> None:
        value = getattr(self, name)
        if value is None and allow_none:
            return
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise self.param_error(name, value, f"an integer ≥ {minimum}" + (" or null" if allow_none else ""))

    def _require_number(self, name: str, minimum: float | None = None, strict: bool = False,
                        maximum: float | None = None) -> None:
        value = getattr(self, name)
        ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
            and np.isfinite(value)
        if ok and minimum is not None:
            ok = value > minimum if strict else value >= minimum
        if ok and maximum is not None:
            ok = value <= maximum
        if not ok:
            bounds = "" if minimum is None else f" {'>' if strict else '≥'} {minimum:g}"
            bounds += "" if maximum is None else f" and ≤ {maximum:g}"
            raise self.param_error(name, value, f"a finite number{bounds}")

    def _require_choice(self, name: str, choices) -> None:
        value = getattr(self, name)
        if value not in tuple(choices):
            raise self.param_error(name, value, "one of " + ", ".join(repr(c) for c in choices))

    def validate_fit_input(self, scans, ages) -> tuple[list, np.ndarray]:
        """The shared checks at the start of every ``fit``: one finite age per scan and at least
        ``min_fit_scans`` scans. Returns the scans as a list and the ages as a float array."""
        items = list(scans.values) if isinstance(scans, pd.Series) else list(scans)
        try:
            ages = np.asarray(ages, dtype=float)
        except (TypeError, ValueError) as error:
            raise PredictorError(f"fit: the ages must be numbers (years); {error}.") from error
        if ages.ndim != 1:
            raise PredictorError(f"fit: the ages must be one number per scan, not an array of shape {ages.shape}.")
        if len(items) != len(ages):
            raise PredictorError(f"fit got {len(items)} scans but {len(ages)} ages; give one age per scan.")
        if not np.all(np.isfinite(ages)):
            bad = [int(i) for i in np.flatnonzero(~np.isfinite(ages))[:5]]
            raise PredictorError(
                f"fit: {int((~np.isfinite(ages)).sum())} age(s) are missing or not finite (positions {bad}); "
                f"drop those subjects first."
            )
        if len(items) < int(self.min_fit_scans):
            raise PredictorError(
                f"fit needs at least {int(self.min_fit_scans)} scans to train {self.name!r}; got {len(items)}."
            )
        return items, ages

    # ------------------------------------------------------------------ fit / predict
    def fit(self, scans, ages) -> "BrainAgePredictor":
        raise PredictorError(
            f"predictor {self.name!r} cannot be trained here; load it with its weights instead."
        )

    def predict_arrays(self, volumes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predict from a stack ``(n, *input_shape)`` of preprocessed float32 volumes."""
        raise NotImplementedError(f"{type(self).__name__} implements neither predict_arrays nor predict")

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

    def age_distribution(self, scans) -> AgeDistribution | None:
        """The predicted distribution over age bins per scan, or ``None`` when this predictor has
        none (the base: e.g. GP regression, whose output is a mean and a predictive SD only).

        A predictor whose output *is* a distribution over age bins (SFCN) overrides it: ``scans``
        as for :meth:`predict`; the :class:`AgeDistribution`'s ``brain_age`` / ``brain_age_sd``
        equal what :meth:`predict` returns for the same scans. The report's Figure 1 D–G draws it.
        """
        return None

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> Path:
        raise PredictorError(f"predictor {self.name!r} does not support saving.")

    @classmethod
    def model_path(cls, path) -> Path:
        """The file :meth:`save` writes when asked for ``path`` (override it when ``save`` adds a
        suffix): ``bagkit train`` checks that file before training, so none is overwritten unasked."""
        return Path(path)

    @classmethod
    def load(cls, path, **overrides) -> "BrainAgePredictor":
        """A predictor from a file written by :meth:`save` (or the predictor's own weights format).

        The one loader of every predictor: ``overrides`` are parameters set after reading
        (e.g. ``device="cpu"``, ``age_range=(42, 82)``; an unknown name is an error), then
        :meth:`check` runs, so a file that cannot predict is refused here, naming it.
        Subclasses implement the classmethod ``_load(path)`` and keep this signature.
        """
        path = Path(path)
        if not path.is_file():
            raise PredictorError(f"{path}: {cls.name} model file not found.")
        if path.stat().st_size == 0:
            raise PredictorError(
                f"{path}: the file is empty; expected a {cls.name} model (a file written by `bagkit train` "
                f"or the predictor's save())."
            )
        predictor = cls._load(path)
        try:
            predictor.set_params(**overrides)
            predictor.check()
        except PredictorError as error:
            message = str(error)
            raise PredictorError(message if str(path) in message else f"{path}: {message}") from error
        return predictor

    @classmethod
    def _load(cls, path: Path) -> "BrainAgePredictor":
        raise PredictorError(f"predictor {cls.name!r} does not support loading a model file ({path}).")

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
    def learned_state(self) -> dict[str, Any]:
        """The learned attributes (public, ending ``_``) that :meth:`fingerprint` hashes.
        A subclass drops what is not learned (e.g. a precision chosen at run time)."""
        return {key: value for key, value in vars(self).items() if key.endswith("_") and not key.startswith("_")}

    def fingerprint(self) -> str:
        """A hash of what determines this predictor's output: its class, its parameters
        except ``runtime_params`` (files named by a parameter are hashed by content) and its
        learned state. Predictions are cached under it."""
        digest = hashlib.sha256()
        digest.update(f"{type(self).__module__}.{type(self).__qualname__}".encode())
        runtime = set(self.runtime_params)
        for key, value in sorted(self.get_params().items()):
            if key in runtime:
                continue
            digest.update(key.encode())
            if isinstance(value, (str, os.PathLike)) and str(value) and Path(value).is_file():
                digest.update(file_hash(value).encode())
            else:
                digest.update(repr(value).encode())
        for key, value in sorted(self.learned_state().items()):
            digest.update(key.encode())
            _update_digest(digest, value)
        return digest.hexdigest()


def _is_int_sequence(value, length: int | None = None) -> bool:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        return False
    if length is not None and len(value) != length:
        return False
    return all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)


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
