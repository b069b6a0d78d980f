"""check_predictor: every registered predictor passes the protocol's conformance check (on small
MNI phantoms), and the check catches a predictor that breaks a rule."""
from __future__ import annotations

import numpy as np
import pytest

from bagkit.predictors import BrainAgePredictor, available_predictors, check_predictor

SHAPE = (40, 48, 40)


@pytest.fixture(scope="module")
def phantoms():
    """12 phantoms 40×48×40, ages 25–75 y, normalised to mean 1 in the brain (as preprocess())."""
    pytest.importorskip("nilearn")
    from bagkit._testing.phantoms import make_phantoms

    ages = np.linspace(25, 75, 12)
    volumes = make_phantoms(ages, shape=SHAPE, seed=11)
    return [v / v[v != 0].mean() for v in volumes], ages


def _sfcn():
    from bagkit_sfcn import SFCNBrainAge

    return SFCNBrainAge(channels=(4, 4, 8, 8, 8, 4), input_shape=SHAPE, age_range=(10, 90), epochs=1,
                        batch_size=4, validation_fraction=0.25, precision="fp32", progress=False)


def _gpr():
    from bagkit_gpr import GaussianProcessBrainAge

    return GaussianProcessBrainAge(n_components=4, downsample=2, input_shape=SHAPE, n_restarts_optimizer=0)


# a conformance factory for every built-in predictor; a new built-in adds one here
FACTORIES = {"sfcn": _sfcn, "gpr": _gpr}


@pytest.mark.parametrize("name", sorted(available_predictors()))
def test_every_registered_predictor_conforms(name, phantoms, tmp_path):
    if name not in FACTORIES:
        pytest.fail(f"the registered predictor {name!r} has no conformance factory in FACTORIES")
    pytest.importorskip("torch" if name == "sfcn" else "sklearn")
    scans, ages = phantoms
    done = check_predictor(FACTORIES[name], scans=scans, ages=ages, tmp_dir=tmp_path)
    assert done == ["params", "fit_refuses_bad_input", "fit", "check", "predict", "age_distribution",
                    "fingerprint", "predict_cohort", "load"]


class Good(BrainAgePredictor):
    """A minimal third-party predictor: a line through the mean intensity of the central third."""

    name = "good"

    def __init__(self, input_shape=(12, 14, 12), scale=2.0):
        self.input_shape = input_shape
        self.scale = scale

    def fit(self, scans, ages):
        items, ages = self.validate_fit_input(scans, ages)
        feature = self._feature(self.load_scans(items))
        self.coef_ = np.polyfit(feature, ages, 1)
        return self

    def _feature(self, volumes):
        c = [slice(s // 3, 2 * s // 3) for s in self.input_shape]
        return np.asarray(volumes)[:, c[0], c[1], c[2]].mean(axis=(1, 2, 3))

    def check(self):
        super().check()
        if getattr(self, "coef_", None) is None:
            from bagkit.errors import PredictorError
            raise PredictorError("not fitted")

    def predict_arrays(self, volumes):
        age = np.polyval(self.coef_, self._feature(volumes))
        return age, np.full(len(age), float(self.scale))


def test_a_third_party_predictor_passes_on_synthetic_scans(tmp_path):
    assert check_predictor(Good, tmp_dir=tmp_path)[-1] == "load"  # no save(): load checks only refusals


class NoisyFingerprint(Good):
    """Breaks a rule: its progress bar setting is a parameter but not declared a runtime one."""

    def __init__(self, input_shape=(12, 14, 12), scale=2.0, progress=True):
        super().__init__(input_shape, scale)
        self.progress = progress

    runtime_params = frozenset()


class Undeclared(NoisyFingerprint):
    runtime_params = frozenset({"progress", "scale"})  # scale changes the SD: not a runtime setting


class NoFitChecks(Good):
    def fit(self, scans, ages):  # skips validate_fit_input
        self.coef_ = np.polyfit(self._feature(self.load_scans(list(scans)[:len(ages)])), np.asarray(ages)[:len(scans)], 1)
        return self


class BatchDependent(Good):
    def predict_arrays(self, volumes):
        age, sd = super().predict_arrays(volumes)
        return age + len(volumes), sd


class OldLoad(Good):
    def save(self, path):
        np.save(str(path) + ".npy", self.coef_)
        return type(path)(str(path) + ".npy")

    @classmethod
    def load(cls, path):  # the old signature: no overrides
        predictor = cls()
        predictor.coef_ = np.load(path)
        return predictor


class ShiftedDistribution(Good):
    """Offers age bins whose mean is not its brain age (a Gaussian centred 1 y off)."""

    def age_distribution(self, scans):
        from bagkit.predictors import AgeDistribution, scan_index

        predicted = self.predict(scans)
        centers = np.arange(0.5, 120.0)
        p = np.exp(-0.5 * ((centers[None] - predicted["brain_age"].to_numpy()[:, None] - 1.0) / 3.0) ** 2)
        p /= p.sum(axis=1, keepdims=True)
        mean = p @ centers
        sd = np.sqrt(p @ centers ** 2 - mean ** 2)
        return AgeDistribution(centers, p, mean, sd, scan_index(scans))


@pytest.mark.parametrize("cls, rule", [
    (NoFitChecks, "fit_refuses_bad_input"),
    (BatchDependent, "predict"),
    (ShiftedDistribution, "age_distribution"),
    (Undeclared, "fingerprint"),
    (OldLoad, "load"),
])
def test_the_check_names_the_broken_rule(cls, rule, tmp_path):
    with pytest.raises(AssertionError, match=rf"\[{rule}\]"):
        check_predictor(cls, tmp_dir=tmp_path)


def test_a_parameter_not_declared_runtime_is_hashed_and_passes(tmp_path):
    # the check does not guess: a parameter that is not declared a runtime one is hashed (the cache is
    # then only less often reused), which is allowed
    assert "fingerprint" in check_predictor(NoisyFingerprint, tmp_dir=tmp_path)
