"""A real learning test: on a few hundred small age-varying phantoms, SFCN (reduced input
and width) and GPR learn age with held-out MAE well below predicting the mean age."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow

N_TRAIN = 240


def _baseline_mae(ages):
    train, test = ages[:N_TRAIN], ages[N_TRAIN:]
    return float(np.mean(np.abs(test - train.mean())))


def test_gpr_learns_age_from_phantoms(phantom_set, tmp_path):
    from bagkit_gpr import GaussianProcessBrainAge

    volumes, ages = phantom_set
    model = GaussianProcessBrainAge(n_components=50, downsample=1, input_shape=(40, 48, 40))
    model.fit(list(volumes[:N_TRAIN]), ages[:N_TRAIN])
    predicted = model.predict(list(volumes[N_TRAIN:]))
    mae = float(np.mean(np.abs(predicted.brain_age.to_numpy() - ages[N_TRAIN:])))
    assert mae < 0.6 * _baseline_mae(ages), (mae, _baseline_mae(ages))
    assert (predicted.brain_age_sd > 0).all()
    # the .npz round trip gives the same predictions (and holds no pickle)
    loaded = GaussianProcessBrainAge.load(model.save(tmp_path / "gpr.npz"))
    np.testing.assert_allclose(loaded.predict(list(volumes[N_TRAIN:])).values, predicted.values, rtol=1e-6)


def test_sfcn_learns_age_from_phantoms(phantom_set):
    pytest.importorskip("torch")
    from bagkit_sfcn import SFCNBrainAge

    volumes, ages = phantom_set
    # The published design (conv-BN-maxpool-ReLU blocks, soft labels, KL loss, SGD), at a
    # reduced input size and width so that it trains in about a minute on 2 cores.
    model = SFCNBrainAge(
        channels=(8, 16, 32, 64, 64, 32), input_shape=(40, 48, 40), age_range=(10, 90), dropout=0,
        epochs=14, lr=0.1, lr_step_epochs=7, batch_size=8, max_shift=1, patience=14, progress=False,
    )
    model.fit(list(volumes[:N_TRAIN]), ages[:N_TRAIN])
    predicted = model.predict(list(volumes[N_TRAIN:]))
    mae = float(np.mean(np.abs(predicted.brain_age.to_numpy() - ages[N_TRAIN:])))
    assert mae < 0.6 * _baseline_mae(ages), (mae, _baseline_mae(ages), model.history_.to_string())
    assert np.isfinite(model.validation_mae_)
