"""SFCN: the authors' UK Biobank state-dict layout loads and predicts; unsafe payloads are refused."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from bagkit.errors import PredictorError  # noqa: E402
from bagkit_sfcn import SFCN, SFCNBrainAge, soft_labels  # noqa: E402

# The layout of ha-ha-ha-han/UKBiobank_deep_pretrain, dp_model/model_files/sfcn.py
# (SFCN(channel_number=[32, 64, 128, 256, 256, 64], output_dim=40) wrapped in
# torch.nn.DataParallel and saved with torch.save(model.state_dict())), written out
# here by hand so that the test does not depend on bagkit's own model class.
UKB_CHANNELS = [32, 64, 128, 256, 256, 64]


def ukbiobank_layout(n_bins=40):
    shapes = {}
    in_channels = 1
    for i, out_channels in enumerate(UKB_CHANNELS):
        k = 3 if i < 5 else 1
        prefix = f"module.feature_extractor.conv_{i}"
        shapes[f"{prefix}.0.weight"] = (out_channels, in_channels, k, k, k)
        shapes[f"{prefix}.0.bias"] = (out_channels,)
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.1.{name}"] = (out_channels,)
        shapes[f"{prefix}.1.num_batches_tracked"] = ()
        in_channels = out_channels
    shapes["module.classifier.conv_6.weight"] = (n_bins, 64, 1, 1, 1)
    shapes["module.classifier.conv_6.bias"] = (n_bins,)
    return shapes


def make_ukbiobank_state(seed=0):
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in ukbiobank_layout().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1000, dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        elif key.endswith("running_mean"):
            state[key] = torch.randn(shape, generator=generator) * 0.05
        elif key.endswith("1.weight"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
            state[key] = torch.randn(shape, generator=generator) / np.sqrt(fan_in)
    state["module.classifier.conv_6.weight"] *= 8.0  # a peaked age distribution
    return state


def reference_forward(state, x):
    """The authors' forward pass written with torch.nn.functional straight from the state dict."""
    s = {k[len("module."):]: v.float() for k, v in state.items()}
    for i in range(6):
        p = f"feature_extractor.conv_{i}"
        x = F.conv3d(x, s[f"{p}.0.weight"], s[f"{p}.0.bias"], padding=1 if i < 5 else 0)
        x = F.batch_norm(x, s[f"{p}.1.running_mean"], s[f"{p}.1.running_var"], s[f"{p}.1.weight"],
                         s[f"{p}.1.bias"], training=False, eps=1e-5)
        if i < 5:
            x = F.max_pool3d(x, 2, stride=2)
        x = F.relu(x)
    x = F.avg_pool3d(x, [5, 6, 5])
    x = F.conv3d(x, s["classifier.conv_6.weight"], s["classifier.conv_6.bias"])
    return F.log_softmax(x.flatten(1), dim=1)


def test_model_matches_the_published_layout():
    model = torch.nn.DataParallel(SFCN(n_bins=40))
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == ukbiobank_layout()


@pytest.fixture(scope="module")
def ukb_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "run_20190719_00_epoch_best_mae.p"
    state = make_ukbiobank_state()
    torch.save(state, str(path))
    return path, state


def test_ukbiobank_state_dict_loads_and_predicts(ukb_file):
    path, state = ukb_file
    rng = np.random.default_rng(0)
    volume = np.abs(rng.normal(1.0, 0.3, size=(160, 192, 160))).astype(np.float32)
    predictor = SFCNBrainAge(weights=path, precision="fp32", progress=False)
    result = predictor.predict([volume])
    assert predictor.age_range_ == (42.0, 82.0)  # 40 bins: the UK Biobank release
    with torch.no_grad():
        log_p = reference_forward(state, torch.from_numpy(volume)[None, None])
    centers = 42.5 + np.arange(40)
    p = log_p.exp().double().numpy()[0]
    expected_mean = float(p @ centers)
    expected_sd = float(np.sqrt(p @ centers**2 - expected_mean**2))
    assert result.brain_age.iloc[0] == pytest.approx(expected_mean, abs=1e-3)
    assert result.brain_age_sd.iloc[0] == pytest.approx(expected_sd, abs=1e-3)
    assert 42 < expected_mean < 82

    # the default precision picks bf16 only when the probe keeps the age within 0.1 y
    auto = SFCNBrainAge(weights=path, progress=False)
    auto_result = auto.predict([volume])
    assert abs(auto_result.brain_age.iloc[0] - expected_mean) <= 0.1 + 1e-6


def test_age_range_must_match_the_weights(ukb_file):
    path, _ = ukb_file
    with pytest.raises(PredictorError, match="40 age bins"):
        SFCNBrainAge(weights=path, age_range=(6, 90)).predict([np.zeros((160, 192, 160), np.float32)])


class Payload:  # an arbitrary object: unpickling it could run code
    def __reduce__(self):
        return (print, ("this would have run",))


def test_pickled_non_tensor_payload_is_refused(tmp_path):
    path = tmp_path / "evil.p"
    torch.save({"model": Payload()}, str(path))
    with pytest.raises(PredictorError, match="refused"):
        SFCNBrainAge(weights=path).predict([np.zeros((160, 192, 160), np.float32)])
    plain = tmp_path / "plain_pickle.p"
    plain.write_bytes(pickle.dumps({"weights": Payload()}))
    with pytest.raises(PredictorError, match="plain_pickle.p"):
        SFCNBrainAge.load(plain)


def test_not_a_state_dict(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([torch.zeros(3)], str(path))
    with pytest.raises(PredictorError, match="state dict"):
        SFCNBrainAge(weights=path).predict([np.zeros((32, 32, 32), np.float32)])


def test_soft_labels_are_gaussian_bins():
    labels = soft_labels([50.3], (42, 82), 1.0, 1.0)
    assert labels.shape == (1, 40)
    assert labels.sum() == pytest.approx(1.0, abs=1e-6)
    assert np.argmax(labels) == 8  # the 50–51 y bin


def test_save_load_roundtrip_and_training_checkpoints(tmp_path):
    rng = np.random.default_rng(1)
    volumes = [rng.normal(1, 0.1, (32, 32, 32)).astype(np.float32) for _ in range(8)]
    ages = rng.uniform(30, 60, 8)
    options = dict(channels=(4, 4, 8, 8, 8, 4), input_shape=(32, 32, 32), age_range=(20, 70), epochs=2,
                   batch_size=4, progress=False, checkpoint_dir=tmp_path / "ckpt", validation_fraction=0.25)
    model = SFCNBrainAge(**options).fit(volumes, ages)
    assert (tmp_path / "ckpt" / "last.pt").is_file() and (tmp_path / "ckpt" / "best.pt").is_file()
    assert list(model.history_.columns) == ["epoch", "train_loss", "validation_mae", "lr"]
    first = model.predict(volumes)
    loaded = SFCNBrainAge.load(model.save(tmp_path / "model.pt"), progress=False)
    np.testing.assert_allclose(loaded.predict(volumes).values, first.values, atol=1e-4)
    assert loaded.age_range_ == (20.0, 70.0)
    # resume: two more epochs continue from the checkpoint's epoch
    resumed = SFCNBrainAge(**{**options, "epochs": 4, "resume": True}).fit(volumes, ages)
    assert list(resumed.history_.epoch) == [0, 1, 2, 3]
    # a best.pt checkpoint loads as weights too
    assert len(SFCNBrainAge.load(tmp_path / "ckpt" / "best.pt", progress=False).predict(volumes)) == 8
