"""The conformance check every brain-age predictor passes, in the spirit of scikit-learn's
``check_estimator``: :func:`check_predictor` runs the protocol's rules on a predictor (the
built-ins in the tests; a third party on theirs) and raises ``AssertionError`` naming the
rule that failed.

::

    from bagkit.predictors import check_predictor
    check_predictor(lambda: MyBrainAge(input_shape=(40, 48, 40)))   # synthetic scans
    check_predictor(factory, scans=my_volumes, ages=my_ages)         # or your own
"""
from __future__ import annotations

import inspect
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from bagkit.errors import PredictorError
from bagkit.predictors.protocol import PREDICTION_COLUMNS, AgeDistribution, BrainAgePredictor


def synthetic_scans(shape: Sequence[int], ages: Sequence[float], seed: int = 0) -> list[np.ndarray]:
    """Preprocessed-looking volumes (mean 1 inside a spherical "brain", 0 outside) whose dark
    central "ventricle" widens with age: cheap input for the check when none is given."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, int(s)) for s in shape], indexing="ij"))
    radius = np.sqrt((grid ** 2).sum(axis=0))
    volumes = []
    for age in ages:
        inner = 0.15 + 0.004 * (float(age) - 20.0)
        brain = (radius < 0.85) & (radius >= inner)
        volume = brain * (1.0 + rng.normal(0.0, 0.05, size=radius.shape))
        volume = volume / volume[volume != 0].mean()
        volumes.append(volume.astype(np.float32))
    return volumes


def check_predictor(
    factory: Callable[[], BrainAgePredictor],
    scans: Sequence[np.ndarray] | None = None,
    ages: Sequence[float] | None = None,
    atol: float = 1e-4,
    tmp_dir=None,
) -> list[str]:
    """Check that the predictors ``factory()`` makes follow bagkit's predictor protocol.

    ``factory`` returns a fresh predictor: not fitted when the class implements ``fit``, ready
    to predict when it does not (e.g. weights given as a parameter). ``scans`` are
    preprocessed volumes of the predictor's ``input_shape`` (normalised to mean 1 in the
    brain, as ``bagkit.imaging.preprocess`` makes them) with their ``ages``; by default a
    dozen synthetic ones. ``atol`` is the tolerance (years) for predictions that must agree
    (in a batch or one by one, from arrays or from NIfTI files, before and after save/load).
    Keep the predictor small (a reduced ``input_shape`` and network): the check fits it once
    and predicts a few times.

    Returns the names of the checks that ran; raises ``AssertionError`` naming the first
    rule broken. What is checked: parameters are stored unchanged and round-trip through
    ``get_params``/``set_params``; ``runtime_params`` are parameters and stay out of the
    fingerprint, every other parameter is in it; ``fit`` returns ``self``, keeps the
    parameters, learns attributes ending ``_`` and refuses mismatched lengths, non-finite
    ages and too few scans with a ``PredictorError``; ``check()`` refuses an unfitted
    predictor; ``predict`` keeps the input's index, returns finite brain ages and SDs ≥ 0,
    handles an empty input, is deterministic, gives the same numbers in a batch and one by
    one, from arrays and from NIfTI paths, and leaves the fingerprint unchanged;
    ``age_distribution`` (optional) returns ``None`` or probabilities over increasing bins that sum
    to 1 per scan, whose mean and SD are ``predict``'s brain age and SD;
    ``predict_cohort`` gives ``predict``'s numbers and its cache keeps them; ``load(path,
    **overrides)`` is the loader's signature, ``save``/``load`` round-trip, an unknown
    override, a missing, an empty or a garbage file are a ``PredictorError`` naming the file.
    """
    done: list[str] = []
    first = factory()
    _require(isinstance(first, BrainAgePredictor), "subclass",
             f"{type(first).__name__} must subclass bagkit.predictors.BrainAgePredictor")
    shape = tuple(int(s) for s in getattr(first, "input_shape", type(first).input_shape))
    if scans is None:
        ages = np.linspace(25.0, 75.0, 12)
        scans = synthetic_scans(shape, ages)
    scans = [np.asarray(s, dtype=np.float32) for s in scans]
    ages = np.asarray(ages, dtype=float)
    _require(len(scans) == len(ages) and len(scans) >= max(4, int(first.min_fit_scans) + 1), "data",
             f"give at least {max(4, int(first.min_fit_scans) + 1)} scans, one age each")
    _require(all(s.shape == shape for s in scans), "data",
             f"the scans must have the predictor's input_shape {shape}")

    with tempfile.TemporaryDirectory(dir=tmp_dir) as folder:
        folder = Path(folder)
        _check_params(first)
        done.append("params")
        trainable = type(first).fit is not BrainAgePredictor.fit
        if trainable:
            _check_fit_refuses_bad_input(factory, scans, ages)
            done.append("fit_refuses_bad_input")
            predictor = _check_fit(factory, scans, ages)
            done.append("fit")
        else:
            predictor = first
        predictor.check()
        done.append("check")
        _check_predict(predictor, scans, atol)
        done.append("predict")
        _check_age_distribution(predictor, scans, atol)
        done.append("age_distribution")
        _check_fingerprint(predictor, scans, atol)
        done.append("fingerprint")
        _check_paths_and_cohort(predictor, scans, folder, atol)
        done.append("predict_cohort")
        _check_load(predictor, scans, folder, atol)
        done.append("load")
    return done


# ---------------------------------------------------------------------------- the rules
def _require(condition, rule: str, message: str) -> None:
    if not condition:
        raise AssertionError(f"check_predictor [{rule}]: {message}")


def _raises_predictor_error(call, rule: str, what: str, names: str | None = None) -> None:
    try:
        call()
    except PredictorError as error:
        if names is not None:
            _require(names in str(error), rule, f"{what}: the PredictorError does not name {names}: {error}")
        return
    except Exception as error:  # noqa: BLE001 - the wrong kind of error is the finding
        raise AssertionError(
            f"check_predictor [{rule}]: {what} raised {type(error).__name__} ({error}), expected a PredictorError"
        ) from error
    raise AssertionError(f"check_predictor [{rule}]: {what} was accepted; expected a PredictorError")


def _same(a, b) -> bool:
    try:
        return bool(np.all(np.asarray(a) == np.asarray(b))) and np.shape(a) == np.shape(b)
    except Exception:  # noqa: BLE001
        return a == b


def _check_params(predictor: BrainAgePredictor) -> None:
    params = predictor.get_params()
    init = inspect.signature(type(predictor).__init__).parameters
    _require(not any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in init.values()), "params",
             "__init__ must name its parameters (no *args / **kwargs)")
    for name, value in params.items():
        _require(_same(getattr(predictor, name), value), "params", f"parameter {name!r} is not stored as given")
    clone = type(predictor)(**params)
    _require(set(clone.get_params()) == set(params), "params", "get_params() does not round-trip through __init__")
    for name, value in params.items():
        _require(_same(clone.get_params()[name], value), "params",
                 f"parameter {name!r} changes in __init__ (store it unchanged; work belongs in fit/predict)")
    _raises_predictor_error(lambda: clone.set_params(no_such_parameter_=1), "params", "set_params(unknown name)")
    stray = set(predictor.runtime_params) - set(params)
    _require(not stray, "params", f"runtime_params names {sorted(stray)}, which are not __init__ parameters")
    fresh_fitted = [k for k in vars(predictor) if k.endswith("_") and not k.startswith("_")
                    and getattr(predictor, k) is not None]
    if type(predictor).fit is not BrainAgePredictor.fit:
        _require(not fresh_fitted, "params", f"a new predictor already has learned attributes {fresh_fitted}")
        _raises_predictor_error(predictor.check, "check", "check() on an unfitted predictor")


def _check_fit_refuses_bad_input(factory, scans, ages) -> None:
    predictor = factory()
    _raises_predictor_error(lambda: predictor.fit(scans, ages[:-1]), "fit_refuses_bad_input",
                            "fit() with one age fewer than scans")
    bad = ages.copy()
    bad[1] = np.nan
    _raises_predictor_error(lambda: predictor.fit(scans, bad), "fit_refuses_bad_input", "fit() with a NaN age")
    n = int(predictor.min_fit_scans) - 1
    _raises_predictor_error(lambda: predictor.fit(scans[:n], ages[:n]), "fit_refuses_bad_input",
                            f"fit() with {n} scan(s), fewer than min_fit_scans={predictor.min_fit_scans}")


def _check_fit(factory, scans, ages) -> BrainAgePredictor:
    predictor = factory()
    before = predictor.get_params()
    attributes = set(vars(predictor))
    fitted = predictor.fit(list(scans), ages)
    _require(fitted is predictor, "fit", "fit() must return self")
    after = predictor.get_params()
    for name in before:
        _require(_same(before[name], after[name]), "fit", f"fit() changed the parameter {name!r}")
    learned = [k for k in set(vars(predictor)) - attributes if not k.startswith("_")]
    _require(learned, "fit", "fit() learned no attribute ending '_'")
    plain = [k for k in learned if not k.endswith("_")]
    _require(not plain, "fit", f"fit() set public attributes {plain}; learned state must end with '_'")
    return predictor


def _check_predict(predictor: BrainAgePredictor, scans, atol: float) -> None:
    index = pd.Index([f"subject-{i}" for i in range(len(scans))])
    result = predictor.predict(pd.Series(list(scans), index=index))
    _require(isinstance(result, pd.DataFrame), "predict", "predict() must return a DataFrame")
    _require(set(PREDICTION_COLUMNS) <= set(result.columns), "predict",
             f"predict() must return the columns {PREDICTION_COLUMNS}, not {list(result.columns)}")
    _require(result.index.equals(index), "predict", "predict() must keep the index of a Series of scans")
    values = result[list(PREDICTION_COLUMNS)].to_numpy(dtype=float)
    _require(np.all(np.isfinite(values)), "predict", "predict() returned brain ages or SDs that are not finite")
    _require(np.all(values[:, 1] >= 0), "predict", "predict() returned a negative brain_age_sd")
    empty = predictor.predict([])
    _require(isinstance(empty, pd.DataFrame) and len(empty) == 0
             and set(PREDICTION_COLUMNS) <= set(empty.columns), "predict",
             "predict([]) must return an empty DataFrame with the prediction columns")
    again = predictor.predict(list(scans))[list(PREDICTION_COLUMNS)].to_numpy(dtype=float)
    _require(np.allclose(again, values, rtol=0, atol=atol), "predict", "predict() is not deterministic")
    single = np.vstack([predictor.predict([s])[list(PREDICTION_COLUMNS)].to_numpy(dtype=float) for s in scans])
    _require(np.allclose(single, values, rtol=0, atol=atol), "predict",
             f"a scan's prediction depends on the batch it is in (largest difference "
             f"{np.max(np.abs(single - values)):.3g} y > atol {atol})")


def _check_age_distribution(predictor: BrainAgePredictor, scans, atol: float) -> None:
    """``age_distribution`` is optional: ``None`` (not supported), or an :class:`AgeDistribution`
    that keeps the index, has increasing bin centres, rows of probabilities ≥ 0 summing to 1 (within
    1e-6) and gives ``predict``'s brain ages and SDs as its mean and SD (within ``atol``)."""
    index = pd.Index([f"subject-{i}" for i in range(min(3, len(scans)))])
    chosen = pd.Series(list(scans[:len(index)]), index=index)
    distribution = predictor.age_distribution(chosen)
    if distribution is None:
        return
    rule = "age_distribution"
    _require(isinstance(distribution, AgeDistribution), rule,
             f"age_distribution() must return an AgeDistribution or None, not {type(distribution).__name__}")
    _require(distribution.index.equals(index), rule, "age_distribution() must keep the index of a Series of scans")
    centers, p = distribution.bin_centers, distribution.probabilities
    _require(len(centers) >= 2 and np.all(np.diff(centers) > 0), rule, "the bin centres must increase")
    _require(np.all(np.isfinite(p)) and np.all(p >= 0), rule, "the probabilities must be finite and ≥ 0")
    _require(np.allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-6), rule, "each scan's probabilities must sum to 1")
    mean = p @ centers
    sd = np.sqrt(np.clip(p @ centers ** 2 - mean ** 2, 0, None))
    _require(np.allclose(distribution.brain_age, mean, rtol=0, atol=atol)
             and np.allclose(distribution.brain_age_sd, sd, rtol=0, atol=max(atol, 1e-6)), rule,
             "brain_age / brain_age_sd must be the mean and SD of each scan's distribution")
    predicted = predictor.predict(chosen)[list(PREDICTION_COLUMNS)].to_numpy(dtype=float)
    given = np.column_stack([distribution.brain_age, distribution.brain_age_sd])
    _require(np.allclose(given, predicted, rtol=0, atol=atol), rule,
             f"the distribution's mean and SD differ from predict()'s brain age and SD (largest difference "
             f"{np.max(np.abs(given - predicted)):.3g} y > atol {atol})")


def _check_fingerprint(predictor: BrainAgePredictor, scans, atol: float) -> None:
    digest = predictor.fingerprint()
    _require(isinstance(digest, str) and digest, "fingerprint", "fingerprint() must return a non-empty str")
    _require(predictor.fingerprint() == digest, "fingerprint", "fingerprint() is not deterministic")
    predictor.predict(list(scans[:2]))
    _require(predictor.fingerprint() == digest, "fingerprint", "predict() changed the fingerprint")
    params = predictor.get_params()
    for name in sorted(predictor.runtime_params):
        predictor.set_params(**{name: "<another runtime value>"})
        changed = predictor.fingerprint() != digest
        predictor.set_params(**{name: params[name]})
        _require(not changed, "fingerprint",
                 f"the runtime parameter {name!r} changes the fingerprint (the prediction cache key)")
    reference = predictor.predict(list(scans[:2]))[list(PREDICTION_COLUMNS)].to_numpy(dtype=float)
    for name in sorted(predictor.runtime_params):  # a runtime setting never changes the numbers
        value = params[name]
        if isinstance(value, bool):
            other = not value
        elif isinstance(value, (int, float, np.integer, np.floating)):
            other = value + 1
        else:
            continue
        predictor.set_params(**{name: other})
        try:
            changed = predictor.predict(list(scans[:2]))[list(PREDICTION_COLUMNS)].to_numpy(dtype=float)
        finally:
            predictor.set_params(**{name: value})
        _require(np.allclose(changed, reference, rtol=0, atol=atol), "fingerprint",
                 f"the runtime parameter {name!r} changes the predictions; runtime_params must only change "
                 f"how a prediction runs")
    for name, value in sorted(params.items()):
        if name in predictor.runtime_params or isinstance(value, bool) \
                or not isinstance(value, (int, float, np.integer, np.floating)):
            continue
        predictor.set_params(**{name: value + 1})
        changed = predictor.fingerprint() != digest
        predictor.set_params(**{name: value})
        _require(changed, "fingerprint",
                 f"the parameter {name!r} is not in the fingerprint; if it never changes a prediction, "
                 f"name it in runtime_params")
    _require(predictor.fingerprint() == digest, "fingerprint", "set_params back to the same values changed it")


def _check_paths_and_cohort(predictor: BrainAgePredictor, scans, folder: Path, atol: float) -> None:
    import nibabel as nib

    from bagkit.predictors.batch import predict_cohort

    paths = []
    for i, volume in enumerate(scans[:3]):
        path = folder / f"sub-{i}_T1w.nii.gz"
        nib.save(nib.Nifti1Image(volume, np.eye(4)), str(path))
        paths.append(path)
    from_arrays = predictor.predict(list(scans[:3]))[list(PREDICTION_COLUMNS)].to_numpy(dtype=float)
    from_paths = predictor.predict([str(p) for p in paths])[list(PREDICTION_COLUMNS)].to_numpy(dtype=float)
    _require(np.allclose(from_paths, from_arrays, rtol=0, atol=atol), "predict_paths",
             "predict() of NIfTI paths differs from predict() of the same preprocessed arrays")
    frame = pd.DataFrame({"subject_id": ["a", "b", "c"], "scan": [p.name for p in paths]}, index=[7, 8, 9])
    cache = folder / "cache"
    first = predict_cohort(frame, predictor, base_dir=folder, cache_dir=cache, progress=False, batch_size=2)
    _require(list(first.index) == [7, 8, 9] and (first.prediction_error == "").all(), "predict_cohort",
             f"predict_cohort failed on good scans: {list(first.prediction_error)}")
    _require(np.allclose(first[list(PREDICTION_COLUMNS)].to_numpy(dtype=float), from_arrays, rtol=0, atol=atol),
             "predict_cohort", "predict_cohort's numbers differ from predict()'s")
    second = predict_cohort(frame, predictor, base_dir=folder, cache_dir=cache, progress=False)
    pd.testing.assert_frame_equal(first, second)


def _check_load(predictor: BrainAgePredictor, scans, folder: Path, atol: float) -> None:
    cls = type(predictor)
    signature = inspect.signature(cls.load)
    _require(any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())
             and list(signature.parameters)[:1] == ["path"], "load",
             f"{cls.__name__}.load must have the signature load(path, **overrides), not load{signature}")
    saves = cls.save is not BrainAgePredictor.save
    for name, content in (("empty.model", b""), ("garbage.model", b"not a model file" * 64)):
        bad = folder / name
        bad.write_bytes(content)
        _raises_predictor_error(lambda: cls.load(bad), "load", f"load() of {'an empty' if not content else 'a garbage'} "
                                f"file", names=str(bad))
    missing = folder / "missing.model"
    _raises_predictor_error(lambda: cls.load(missing), "load", "load() of a missing file", names=str(missing))
    if not saves:
        return
    path = Path(predictor.save(folder / "model"))
    _require(path.is_file(), "load", "save() must return the path it wrote")
    expected = predictor.predict(list(scans[:3]))[list(PREDICTION_COLUMNS)].to_numpy(dtype=float)
    loaded = cls.load(path)
    _require(np.allclose(loaded.predict(list(scans[:3]))[list(PREDICTION_COLUMNS)].to_numpy(dtype=float),
                         expected, rtol=0, atol=atol), "load", "a saved and loaded predictor predicts otherwise")
    _raises_predictor_error(lambda: cls.load(path, no_such_parameter_=1), "load", "load(path, unknown override)")
    for name in sorted(predictor.runtime_params):
        overridden = cls.load(path, **{name: loaded.get_params()[name]})
        _require(overridden.fingerprint() == loaded.fingerprint(), "load",
                 f"load(path, {name}=...) changed the fingerprint")


__all__ = ["check_predictor", "synthetic_scans"]
