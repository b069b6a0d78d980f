"""A predictor that cannot predict is one clear error and a non-zero exit, not one error per scan
with exit 0 (issue 11); one load(path, **overrides) for every predictor, runtime settings outside
the cache key, one batch path through predict() (issue 12). Each test failed before the fix."""
from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bagkit.errors import PredictorError
from bagkit.predictors import BrainAgePredictor, predict_cohort, require_predictions

torch = pytest.importorskip("torch")
pytest.importorskip("nilearn")

SHAPE = (40, 48, 40)
CHANNELS = (4, 4, 8, 8, 8, 4)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Six phantom scans and a cohort table, a small GPR model, and SFCN weights files: good ones
    (a bagkit checkpoint and a plain state dict) and bad ones of every kind."""
    from bagkit._testing.phantoms import write_phantom_cohort
    from bagkit_gpr import GaussianProcessBrainAge
    from bagkit_sfcn import SFCN

    folder = tmp_path_factory.mktemp("refusals")
    cohort = write_phantom_cohort(folder, n=6, seed=4, groups={"HC": 0.0, "MS": 8.0})
    frame = pd.read_csv(cohort)
    gpr = GaussianProcessBrainAge(input_shape=SHAPE, downsample=2, n_components=3, n_restarts_optimizer=0)
    gpr.fit([folder / s for s in frame.scan], frame.age.to_numpy())
    files = {"gpr": gpr.save(folder / "gpr.npz")}

    torch.manual_seed(0)
    state = SFCN(channels=CHANNELS, n_bins=80, dropout=0).state_dict()
    config = {"age_range": [10, 90], "bin_step": 1.0, "sigma": 1.0, "channels": list(CHANNELS), "dropout": 0.0,
              "input_shape": list(SHAPE)}
    files["good"] = folder / "good.pt"
    torch.save({"model_state": state, "config": config}, str(files["good"]))
    files["plain"] = folder / "plain.p"
    torch.save({f"module.{k}": v for k, v in state.items()}, str(files["plain"]))

    class Payload:
        def __reduce__(self):
            return (print, ("this would have run",))

    bad = {
        "evil.p": lambda p: torch.save({"model": Payload()}, str(p)),
        "plain_pickle.p": lambda p: p.write_bytes(pickle.dumps({"weights": Payload()})),
        "empty.p": lambda p: p.write_bytes(b""),
        "text.p": lambda p: p.write_text("these are not weights\n" * 20),
        "nan.pt": lambda p: torch.save({"model_state": {k: v * float("nan") if v.is_floating_point() else v
                                                        for k, v in state.items()}, "config": config}, str(p)),
        "wrong_shape.pt": lambda p: torch.save(
            {**state, "feature_extractor.conv_2.0.weight": torch.zeros(8, 3, 3, 3, 3)}, str(p)),
        "missing_keys.pt": lambda p: torch.save(
            {k: v for k, v in state.items() if not k.startswith("feature_extractor.conv_3.1")}, str(p)),
        "resnet.pt": lambda p: torch.save({"conv1.weight": torch.zeros(64, 1, 7, 7, 7),
                                           "fc.weight": torch.zeros(1, 512)}, str(p)),
        "empty_dict.pt": lambda p: torch.save({}, str(p)),
    }
    for name, write in bad.items():
        write(folder / name)
        files[name] = folder / name
    return cohort, files


def _cli(*args):
    from bagkit.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


def _predict(cohort, *args, out=None):
    out = out or cohort.parent / "predictions.csv"
    if out.exists():
        out.unlink()
    result = _cli("predict", cohort, *args, "--quiet", "-o", out, "--cache-dir", cohort.parent / "cache")
    return result, out


# ---------------------------------------------------------------------------- bad weights (issue 11)
EXPECTED = {
    "evil.p": "refused to load",
    "plain_pickle.p": "refused to load",
    "empty.p": "empty",
    "text.p": "SFCN state dict",
    "nan.pt": "NaN or infinite",
    "wrong_shape.pt": "feature_extractor.conv_2.0.weight is (8, 3, 3, 3, 3), expected (8, 4, 3, 3, 3)",
    "missing_keys.pt": "missing keys ['feature_extractor.conv_3.1.weight'",
    "resnet.pt": "not an SFCN state dict",
    "empty_dict.pt": "expected a state dict",
}


@pytest.mark.parametrize("option", ["--weights", "--model"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_sfcn_weights_are_one_error_and_exit_1(setup, name, option):
    cohort, files = setup
    extra = ["--param", "input_shape=[40,48,40]", "--param", "age_range=[10,90]"]
    result, out = _predict(cohort, "-p", "sfcn", option, files[name], *extra)
    assert result.exit_code == 1, result.output
    assert f"{files[name].name}" in result.output and EXPECTED[name] in result.output, result.output
    assert "skipped" not in result.output  # one error for the predictor, not one per scan
    assert "Traceback" not in result.output and not out.exists()
    assert sum(line.startswith("Error:") for line in result.output.splitlines()) == 1


def test_report_with_refused_weights_writes_no_report(setup, tmp_path):
    cohort, files = setup
    before = hashlib.sha256(files["evil.p"].read_bytes()).hexdigest()
    result = _cli("report", cohort, "-p", "sfcn", "--weights", files["evil.p"], "-o", tmp_path / "report",
                  "--cache-dir", tmp_path / "cache", "--quiet")
    assert result.exit_code == 1, result.output
    assert "evil.p" in result.output and "refused" in result.output
    assert not (tmp_path / "report").exists()
    assert hashlib.sha256(files["evil.p"].read_bytes()).hexdigest() == before


def _damaged_npz(path, source, **changes):
    with np.load(source, allow_pickle=False) as stored:
        data = {k: stored[k] for k in stored.files}
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    np.savez(path, **data)
    return path


@pytest.mark.parametrize("case, expected", [
    ("empty", "the file is empty"),
    ("missing", "lacks the arrays ['pca_components']"),
    ("shape", "pca_mean has shape (5,), expected"),
    ("nan", "train_ages hold NaN or infinite values"),
    ("format", "not a bagkit-gpr/1 file"),
])
def test_bad_gpr_model_files_name_the_file(setup, tmp_path, case, expected):
    cohort, files = setup
    path = tmp_path / f"{case}.npz"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "missing":
        _damaged_npz(path, files["gpr"], pca_components=None)
    elif case == "shape":
        _damaged_npz(path, files["gpr"], pca_mean=np.zeros(5))
    elif case == "nan":
        with np.load(files["gpr"]) as stored:
            ages = stored["train_ages"].copy()
        ages[0] = np.nan
        _damaged_npz(path, files["gpr"], train_ages=ages)
    elif case == "format":
        _damaged_npz(path, files["gpr"], format=np.array("other/1"))
    result, out = _predict(cohort, "-p", "gpr", "--model", path)
    assert result.exit_code == 1, result.output
    assert str(path) in result.output and expected in result.output, result.output
    assert "Aborted" not in result.output and not out.exists()


@pytest.mark.parametrize("args, expected", [
    (["-p", "sfcn", "--model", "GOOD", "--param", "precision=fp64"], "precision='fp64'"),
    (["-p", "sfcn", "--model", "GOOD", "--param", "age_range=abc"], "age_range='abc'"),
    (["-p", "sfcn", "--model", "GOOD", "--param", "predict_batch_size=0"], "predict_batch_size=0"),
    (["-p", "sfcn", "--model", "GOOD", "--param", "device=gpu"], "device='gpu'"),
    (["-p", "sfcn", "--model", "GOOD", "--param", "age_range=[6,90]"], "80 age bins"),
    (["-p", "sfcn", "--model", "GOOD", "--param", "no_such=1"], "no parameter 'no_such'"),
    (["-p", "gpr", "--model", "GPR", "--param", "downsample=4"], "mask has shape"),
    (["-p", "gpr", "--model", "GPR", "--param", "n_components=-1"], "n_components=-1"),
    (["-p", "gpr", "--param", "kernel=matern"], "kernel='matern'"),
    (["-p", "sfcn"], "has no weights"),
    (["-p", "gpr", "--weights", "GOOD"], "takes no --weights"),
])
def test_bad_params_are_one_error_and_exit_1(setup, args, expected):
    cohort, files = setup
    args = [{"GOOD": files["good"], "GPR": files["gpr"]}.get(a, a) for a in args]
    result, out = _predict(cohort, *args)
    assert result.exit_code == 1, result.output
    assert expected in result.output and "skipped" not in result.output, result.output
    assert not out.exists()


def test_a_checkpoint_given_as_weights_brings_its_settings(setup):
    cohort, files = setup
    result, out = _predict(cohort, "-p", "sfcn", "--weights", files["good"], "--param", "input_shape=[40,48,40]")
    assert result.exit_code == 0, result.output
    assert (pd.read_csv(out, keep_default_na=False).prediction_error == "").all()


# ---------------------------------------------------------------------------- one loader (issue 12)
def test_gpr_model_takes_params_like_every_predictor(setup):
    cohort, files = setup
    result, out = _predict(cohort, "-p", "gpr", "--model", files["gpr"], "--param", "seed=1")
    assert result.exit_code == 0, result.output
    assert "6 predicted, 0 failed" in result.output


def test_load_signature_is_the_same_for_every_predictor(setup):
    from bagkit_gpr import GaussianProcessBrainAge
    from bagkit_sfcn import SFCNBrainAge

    _, files = setup
    gpr = GaussianProcessBrainAge.load(files["gpr"], seed=3)
    sfcn = SFCNBrainAge.load(files["good"], device="cpu", progress=False)
    assert gpr.seed == 3 and sfcn.device == "cpu" and sfcn.age_range_ == (10.0, 90.0)
    with pytest.raises(PredictorError, match="gpr.npz.*no parameter 'weights'"):
        GaussianProcessBrainAge.load(files["gpr"], weights="x")


# ---------------------------------------------------------------------------- the cache key (issue 12)
def test_runtime_settings_keep_the_prediction_cache(setup, tmp_path, monkeypatch):
    from bagkit_sfcn import SFCNBrainAge

    cohort, files = setup
    frame = pd.read_csv(cohort)
    calls = []
    original = SFCNBrainAge.predict

    def counting(self, scans):
        calls.append(len(scans))
        return original(self, scans)

    monkeypatch.setattr(SFCNBrainAge, "predict", counting)
    first = SFCNBrainAge.load(files["good"], progress=True, precision="fp32")
    out1 = predict_cohort(frame, first, base_dir=cohort.parent, cache_dir=tmp_path, progress=False)
    assert sum(calls) == 6
    calls.clear()
    second = SFCNBrainAge.load(files["good"], progress=False, num_threads=1, predict_batch_size=1, device="cpu",
                               precision="fp32")
    assert second.fingerprint() == first.fingerprint()
    out2 = predict_cohort(frame, second, base_dir=cohort.parent, cache_dir=tmp_path, progress=False)
    assert calls == []  # every prediction came from the cache
    pd.testing.assert_frame_equal(out1, out2)
    # a setting that changes the numbers is another key
    assert SFCNBrainAge.load(files["good"], sigma=2.0).fingerprint() != first.fingerprint()


def test_fingerprint_does_not_change_when_the_predictor_predicts(setup):
    from bagkit_sfcn import SFCNBrainAge

    _, files = setup
    predictor = SFCNBrainAge(weights=files["good"], input_shape=SHAPE, progress=False)
    before = predictor.fingerprint()
    predictor.predict([np.ones(SHAPE, np.float32)])  # chooses the precision (bf16 probe) on first use
    assert predictor.fingerprint() == before


# ---------------------------------------------------------------------------- one batch path (issue 12)
class PredictOnly(BrainAgePredictor):
    """A third-party predictor that implements predict() only (no predict_arrays)."""

    name = "predict-only"

    def __init__(self, input_shape=SHAPE):
        self.input_shape = input_shape
        self.batches = []

    def predict(self, scans):
        volumes = self.load_scans(scans)
        self.batches.append(len(volumes))
        age = 40 + 10 * volumes.reshape(len(volumes), -1).max(axis=1)
        return pd.DataFrame({"brain_age": age, "brain_age_sd": np.ones(len(volumes))})


def test_predict_cohort_goes_through_predict_and_counts_nan_as_failed(setup, tmp_path, write_nifti):
    cohort, _ = setup
    frame = pd.read_csv(cohort)
    other = tmp_path / "other.nii.gz"  # a scan of its own (the cache is keyed by content)
    write_nifti(other, np.pad(np.full((10, 10, 10), 1.0, np.float32), 15))
    frame.loc[len(frame)] = {"subject_id": "sub-nan", "group": "MS", "age": 50, "scan": str(other)}
    predictor = PredictOnly()
    predictor.predict = _nan_for_last(predictor.predict)
    out = predict_cohort(frame, predictor, base_dir=cohort.parent, cache_dir=tmp_path / "c", progress=False,
                         batch_size=4)
    assert predictor.batches == [4, 3]  # the cohort's batches, through the predictor's own predict()
    errors = out.set_index("subject_id").prediction_error
    assert (errors.drop("sub-nan") == "").all()
    assert "not finite" in errors["sub-nan"] and np.isnan(out.brain_age.iloc[-1])
    assert len(list((tmp_path / "c").rglob("*.json"))) == 6  # the NaN is not cached


def _nan_for_last(predict):
    def wrapped(scans):
        result = predict(scans)
        if len(scans) == 3:
            result.iloc[-1, 0] = np.nan
        return result
    return wrapped


def test_every_scan_failed_is_an_error(setup, tmp_path):
    cohort, files = setup
    frame = pd.read_csv(cohort)
    frame["scan"] = "no/such/scan.nii.gz"
    broken = tmp_path / "cohort.csv"
    frame.to_csv(broken, index=False)
    with pytest.raises(PredictorError, match="none of the 6 scans could be predicted.*not found"):
        require_predictions(predict_cohort(frame, PredictOnly(), base_dir=tmp_path, progress=False))
    result, out = _predict(broken, "-p", "gpr", "--model", files["gpr"], out=tmp_path / "p.csv")
    assert result.exit_code == 1 and "none of the 6 scans could be predicted" in result.output, result.output
    assert not out.exists()
    result = _cli("report", broken, "-p", "gpr", "--model", files["gpr"], "-o", tmp_path / "r",
                  "--cache-dir", tmp_path / "cache", "--quiet")
    assert result.exit_code == 1 and "none of the 6 scans" in result.output, result.output
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------------------- shared fit checks (issue 12)
@pytest.mark.parametrize("name", ["sfcn", "gpr"])
def test_fit_input_checks_are_shared(name):
    from bagkit.predictors import get_predictor

    predictor = get_predictor(name, input_shape=SHAPE)
    scans = [np.ones(SHAPE, np.float32)] * 4
    for ages, message in (([40, 50, 60], "fit got 4 scans but 3 ages"),
                          ([40, "old", 60, 70], "ages must be numbers"),
                          ([40, np.nan, 60, 70], r"1 age\(s\) are missing or not finite \(positions \[1\]\)")):
        with pytest.raises(PredictorError, match=message):
            predictor.fit(scans, ages)
    with pytest.raises(PredictorError, match=f"at least {predictor.min_fit_scans} scans"):
        predictor.fit(scans[:1], [40])


# ---------------------------------------------------------------------------- the one table reader
def test_train_and_compare_refuse_non_numbers_naming_column_and_line(setup, tmp_path):
    cohort, _ = setup
    frame = pd.read_csv(cohort)
    frame["age"] = frame["age"].astype(object)
    frame.loc[2, "age"] = "forty"
    bad = tmp_path / "cohort.csv"
    frame.to_csv(bad, index=False)
    result = _cli("train", bad, "-p", "gpr", "-o", tmp_path / "m.npz")
    assert result.exit_code == 1, result.output
    assert "'age'" in result.output and "'forty'" in result.output and "line(s) 4" in result.output
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    pd.DataFrame({"subject_id": ["x", "y", "z"], "brain_age": [50, 60, 70]}).to_csv(a, index=False)
    pd.DataFrame({"subject_id": ["x", "y", "z"], "brain_age": [51, "sixty", 69]}).to_csv(b, index=False)
    result = _cli("compare", a, b)
    assert result.exit_code == 1 and "b.csv" in result.output and "'sixty'" in result.output, result.output
