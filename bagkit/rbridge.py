"""The one door to R.

Only this module imports rpy2. It starts R lazily (the first time an analysis
asks for it), sources the ``.R`` files of bagkit's ``r/`` folder into private
environments with ``STAP``, converts pandas ↔ R with a local converter (never
``pandas2ri.activate()``), turns R warnings into Python warnings and R errors
into :class:`~bagkit.errors.RBridgeError`.

    result = run_r("match_groups", script="matching.R", data=frame, covariates=["x1", "x2"])

R functions called this way return a named list; it comes back as a ``dict`` of
pandas DataFrames, numpy arrays and Python scalars (length-1 vectors).

Ctrl-C while R runs: Python's own SIGINT handler would raise KeyboardInterrupt inside
whichever rpy2 callback R happens to call next, where cffi prints "Exception ignored from
cffi callback" and R simply runs on. So while R runs, SIGINT is only recorded (and R is
asked to stop at its next interrupt check through ``R_interrupts_pending``); once R has
returned, :func:`run_r` raises KeyboardInterrupt in Python, where it stops the run.
"""
from __future__ import annotations

import functools
import os
import signal
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bagkit.errors import RBridgeError

__all__ = ["run_r", "r_scripts_dir", "require_r_packages", "r_versions", "started", "calls", "RWarning"]

_CALLS = [0]  # run_r calls in this process (provenance: did this analysis use R?)

_INSTALL_HINT = ("Install R and the R packages from Debian (apt-get install r-base-core r-base-dev "
                 "r-cran-matchit r-cran-survival r-cran-sandwich r-cran-lmtest) and rpy2>=3.5,<3.6 in Python (bash scripts/setup.sh "
                 "does both).")
_DEBIAN = {"MatchIt": "r-cran-matchit", "survival": "r-cran-survival", "pROC": "r-cran-proc",
           "sandwich": "r-cran-sandwich", "lmtest": "r-cran-lmtest"}


class RWarning(UserWarning):
    """A warning R raised while bagkit ran R code."""


def r_scripts_dir() -> Path:
    """Where the ``.R`` files are: ``bagkit/r`` in a wheel, the repository's ``r/`` in an editable install."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "r", here.parent / "r"):
        if (candidate / "bridge.R").is_file():
            return candidate
    raise RBridgeError(f"bagkit's R scripts (bridge.R) were not found next to {here}; the installation "
                       f"is incomplete — reinstall bagkit")


@functools.lru_cache(maxsize=None)
def _rpy2():
    """Import rpy2 (starting R) once; a clear error when R or rpy2 is missing."""
    os.environ.setdefault("RPY2_CFFI_MODE", "ABI")
    try:
        import rpy2.robjects as robjects
        from rpy2.rinterface_lib import callbacks
        from rpy2.rinterface_lib.embedded import RRuntimeError
        from rpy2.robjects import default_converter, numpy2ri, pandas2ri
        from rpy2.robjects.conversion import localconverter
        from rpy2.robjects.packages import STAP
    except Exception as error:  # ImportError, or R itself failing to start
        raise RBridgeError(f"R is not available through rpy2 ({type(error).__name__}: {error}). "
                           + _INSTALL_HINT) from None
    # R's console output is not for the user of a Python library: keep it quiet.
    callbacks.consolewrite_print = lambda text: None
    callbacks.consolewrite_warnerror = lambda text: None
    converter = default_converter + numpy2ri.converter + pandas2ri.converter
    return robjects, converter, localconverter, STAP, RRuntimeError


@functools.lru_cache(maxsize=None)
def _script(name: str):
    robjects, converter, localconverter, STAP, RRuntimeError = _rpy2()
    path = r_scripts_dir() / name
    if not path.is_file():
        raise RBridgeError(f"R script {name} not found in {path.parent}")
    try:
        with _InterruptsWhileR():
            return STAP(path.read_text(encoding="utf-8"), name.removesuffix(".R"))
    except RRuntimeError as error:
        raise RBridgeError(f"R could not load {path}: {error}") from None


def require_r_packages(*names: str) -> None:
    """Raise a clear error naming the Debian package when an R package is missing."""
    bridge = _script("bridge.R")
    with _InterruptsWhileR():
        missing = [n for n in names if not bool(bridge.bagkit_has_package(n)[0])]
    if missing:
        packages = " ".join(_DEBIAN.get(n, f"r-cran-{n.lower()}") for n in missing)
        raise RBridgeError(f"R package(s) {', '.join(missing)} not installed; install them with "
                           f"apt-get install {packages}")


def started() -> bool:
    """Whether R was started in this process (nothing here starts it)."""
    return _rpy2.cache_info().currsize > 0


def calls() -> int:
    """How many R functions bagkit has called in this process."""
    return _CALLS[0]


def r_versions(*packages: str) -> dict[str, str]:
    """R's version and the versions of the given R packages (for the provenance page)."""
    robjects = _rpy2()[0]
    bridge = _script("bridge.R")
    with _InterruptsWhileR():
        out = {"R": str(robjects.r("R.version.string")[0])}
        for name in packages:
            version = bridge.bagkit_package_version(name)[0]
            out[name] = str(version) if version is not robjects.NA_Character else "not installed"
    return out


@functools.lru_cache(maxsize=None)
def _rlib():
    from rpy2.rinterface_lib import openrlib

    return openrlib.rlib


class _InterruptsWhileR:
    """While R runs (main thread only): record SIGINT instead of raising it inside an rpy2
    callback, ask R to stop at its next check; on leaving, raise KeyboardInterrupt if one came."""

    _NOT_SET = object()

    def __enter__(self):
        self.received = False
        self.previous = self._NOT_SET
        if threading.current_thread() is threading.main_thread():
            try:
                _rlib()  # imported now, not inside the handler
            except Exception:
                pass
            self.previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        self.received = True
        try:
            _rlib().R_interrupts_pending = 1
        except Exception:  # R not loaded: nothing to ask
            pass

    def __exit__(self, exc_type, exc, traceback):
        if self.previous is not self._NOT_SET:  # None: a handler not set from Python; fall back to the default
            signal.signal(signal.SIGINT, signal.SIG_DFL if self.previous is None else self.previous)
        if self.received:
            try:
                _rlib().R_interrupts_pending = 0  # a pending request must not stop the next R call
            except Exception:
                pass
            raise KeyboardInterrupt from None
        return False


def _to_r(value: Any):
    if isinstance(value, pd.DataFrame):
        return _frame_to_r(value)
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, str) for v in value):
            return _rpy2()[0].StrVector(list(value))
        return np.asarray(value)
    if value is None:
        return _rpy2()[0].NULL
    return value


def _frame_to_r(frame: pd.DataFrame):
    """A DataFrame as R's data.frame, as pandas2ri makes it (row names "0".."n-1"), with numeric
    and logical columns copied from memory: pandas2ri fills R vectors element by element (~1 s
    per 100 000 × 3 numbers); other columns still go through the active converter."""
    from rpy2.rinterface import FloatSexpVector, IntSexpVector

    robjects = _rpy2()[0]
    conversion = robjects.conversion.get_conversion()
    columns = {}
    for name, column in frame.items():
        values = column.to_numpy()
        if values.dtype.kind == "f":
            columns[str(name)] = FloatSexpVector.from_memoryview(memoryview(np.ascontiguousarray(values, np.float64)))
        elif values.dtype.kind in "iu" and (values.size == 0 or np.abs(values).max() < 2**31 - 1):
            columns[str(name)] = IntSexpVector.from_memoryview(memoryview(np.ascontiguousarray(values, np.int32)))
        else:
            columns[str(name)] = conversion.py2rpy(column.reset_index(drop=True))
    with robjects.conversion.localconverter(robjects.default_converter):  # stays an R object
        return _with_row_names()(robjects.DataFrame(columns))


@functools.lru_cache(maxsize=None)
def _with_row_names():
    return _rpy2()[0].r("function(d) { row.names(d) <- as.character(seq_len(nrow(d)) - 1L); d }")


def _to_python(obj):
    """R values (as the local converter hands them over) → dicts, DataFrames, arrays, scalars."""
    from rpy2.rinterface_lib.sexp import NULLType
    from rpy2.rlike.container import OrdDict
    if obj is None or isinstance(obj, NULLType):
        return None
    if isinstance(obj, pd.DataFrame):
        return obj
    if isinstance(obj, (OrdDict, dict)):
        items = list(obj.items())
        if items and all(k for k, _ in items):
            return {str(k): _to_python(v) for k, v in items}
        return [_to_python(v) for _, v in items]
    if isinstance(obj, (str, int, float, bool)):
        return obj
    array = obj if isinstance(obj, np.ndarray) else np.asarray(list(obj))
    if array.dtype.kind == "U":
        array = array.astype(object)
    if array.ndim == 1 and array.size == 1:
        return array[0].item() if hasattr(array[0], "item") else array[0]
    return array


def run_r(function: str, script: str, **arguments: Any) -> Any:
    """Call ``function`` of ``r/<script>`` with keyword arguments; return its value in Python.

    DataFrames go to R as data.frames, lists of strings as character vectors, numpy arrays as
    vectors. R warnings are re-raised as :class:`RWarning`; R errors become RBridgeError.
    """
    robjects, converter, localconverter, STAP, RRuntimeError = _rpy2()
    _CALLS[0] += 1
    module = _script(script)
    bridge = _script("bridge.R")
    r_function = getattr(module, function.replace(".", "_"), None)
    if r_function is None:
        raise RBridgeError(f"R function {function} not found in {script}")
    try:
        with _InterruptsWhileR(), localconverter(converter):
            r_args = robjects.vectors.ListVector({k: _to_r(v) for k, v in arguments.items()}) \
                if arguments else robjects.vectors.ListVector({})
            out = bridge.bagkit_call(r_function, r_args)
            out = _to_python(out)
            value, caught = out["value"], out["warnings"]
    except RRuntimeError as error:
        message = str(error).strip() or "R reported an error"
        raise RBridgeError(f"R error in {script}::{function}: {message}") from None
    if caught is not None:
        for message in np.atleast_1d(caught):
            warnings.warn(f"R ({function}): {message}", RWarning, stacklevel=2)
    return value
