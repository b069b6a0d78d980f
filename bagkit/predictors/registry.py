"""The plug-in registry: predictors found through the ``bagkit.predictors`` entry-point group."""
from __future__ import annotations

import functools
import inspect
import re
import warnings
from importlib import metadata

from bagkit.errors import PredictorError
from bagkit.predictors.protocol import BrainAgePredictor

ENTRY_POINT_GROUP = "bagkit.predictors"


_ENTRY_POINT_VALUE = re.compile(r"^[A-Za-z_][\w.]*\s*:\s*[A-Za-z_][\w.]*$")


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


def predictor_class(name: str) -> type[BrainAgePredictor]:
    """The class registered as ``name`` (imports that plug-in, and only it)."""
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
    return cls


def get_predictor(name: str, **params) -> BrainAgePredictor:
    """Import the predictor registered as ``name`` and instantiate it with ``params``.

    ``bagkit.get_predictor("sfcn", weights="run_20190719_00_epoch_best_mae.p", age_range=(42, 82))``
    """
    cls = predictor_class(name)
    valid = set(cls._param_names()) if hasattr(cls, "_param_names") else None
    unknown = sorted(set(params) - valid) if valid is not None else []
    if unknown:
        raise PredictorError(
            f"predictor {name!r} does not accept these options: it has no parameter "
            f"{', '.join(map(repr, unknown))}; its parameters are "
            f"{', '.join(sorted(valid))}."
        )
    try:
        return cls(**params)
    except TypeError as error:
        raise PredictorError(f"predictor {name!r} does not accept these options: {error}") from error


def load_predictor(name: str, path, **overrides) -> BrainAgePredictor:
    """The predictor registered as ``name``, loaded from a model file with its one loader,
    ``load(path, **overrides)`` (which checks it can predict; errors name the file)."""
    return predictor_class(name).load(path, **overrides)


def resolve_predictor(predictor) -> BrainAgePredictor:
    """A predictor instance from an instance or a registry name."""
    if isinstance(predictor, str):
        return get_predictor(predictor)
    if not callable(getattr(predictor, "predict", None)):
        raise PredictorError(f"{predictor!r} is not a brain-age predictor (it has no predict method).")
    return predictor
