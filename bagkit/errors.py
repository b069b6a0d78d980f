"""One family of errors, written for people: what was found, what was expected, how to fix it."""
from __future__ import annotations


class BagkitError(Exception):
    """Base class of every error bagkit raises on purpose."""


class CohortError(BagkitError, ValueError):
    """The cohort table (or the visits table) does not meet the contract."""


class OutputError(BagkitError, OSError):
    """An output cannot be written where it was asked for (a path below a file, no permission, ...)."""


class OutputExistsError(OutputError, FileExistsError):
    """An output already exists (or would overwrite an input, or holds what bagkit did not write)
    and replacing it was not asked for or is refused."""


class RBridgeError(BagkitError, RuntimeError):
    """R, rpy2 or an R package is missing, or R code failed."""


class AnalysisError(BagkitError, ValueError):
    """An analysis cannot be run on the data it was given (too few events, a constant covariate, ...)."""


class RequestError(AnalysisError):
    """An analysis the user asked for explicitly (an option they gave) cannot be made as asked.

    Unlike an analysis bagkit chose by default, which is skipped with a note, this stops the run:
    :func:`bagkit.analyze` lets it through and the CLI exits non-zero."""


class PredictorError(BagkitError):
    """A brain-age predictor could not be found, loaded, fitted or run."""


class ImageError(BagkitError, ValueError):
    """A scan cannot be read or does not meet the input contract (3-D, near 1 mm, non-empty brain)."""
