"""SFCN's CPU inference form (depth slabs, depth taps as channels, pairwise max-pool) equals the plain network."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from bagkit_sfcn import SFCN  # noqa: E402
from bagkit_sfcn.model import SlabInference, channels_last, fold_batch_norm, max_pool2_relu  # noqa: E402


def folded_sfcn(seed=0, n_bins=40, channels=(8, 16, 16, 16, 16, 8)):
    torch.manual_seed(seed)
    model = SFCN(channels=channels, n_bins=n_bins)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm3d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.1, 0.1)
        model.classifier[-1].weight.mul_(20.0)  # spread the age distribution
    return fold_batch_norm(model.eval()).to(memory_format=torch.channels_last_3d)


def plain(model, x):
    """The folded network run layer by layer, as torch would without SlabInference."""
    return model(x.contiguous(memory_format=torch.channels_last_3d))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", [(8, 12, 10), (9, 13, 7), (4, 4, 4)])
def test_max_pool2_relu_is_max_pool_then_relu(dtype, shape):
    torch.manual_seed(1)
    y = torch.randn(2, 5, *shape).to(dtype).contiguous(memory_format=torch.channels_last_3d)
    expected = F.max_pool3d(y, 2).relu()
    out = torch.full_like(expected, float("nan")).contiguous(memory_format=torch.channels_last_3d)
    max_pool2_relu(y, out)
    assert torch.equal(out, expected)  # a maximum is exact: no tolerance


def test_one_channel_input_gives_channels_last_convolution_output():
    # bf16, the precision the CPU path runs in (torch's fp32 CPU convolution keeps NCDHW either way)
    x = torch.randn(1, 1, 6, 7, 8).to(torch.bfloat16)
    weight = torch.randn(4, 1, 3, 3, 3).to(torch.bfloat16).contiguous(memory_format=torch.channels_last_3d)
    naive = F.conv3d(x.contiguous(memory_format=torch.channels_last_3d), weight, padding=1)
    assert not naive.is_contiguous(memory_format=torch.channels_last_3d)  # torch's fallback that costs time
    fixed = F.conv3d(channels_last(x), weight, padding=1)
    assert fixed.is_contiguous(memory_format=torch.channels_last_3d)
    assert torch.equal(fixed, F.conv3d(x, weight, padding=1))


@pytest.mark.parametrize("shape", [(40, 48, 40), (37, 45, 33)])  # odd sizes: max-pool floors, as torch does
@pytest.mark.parametrize("slab_bytes", [1, 8 << 20])             # one output slice per slab / the whole volume
@pytest.mark.parametrize("slab_blocks", [1, 2, 5])
def test_slab_inference_equals_the_plain_network_in_fp32(shape, slab_bytes, slab_blocks):
    model = folded_sfcn()
    fast = SlabInference(model, slab_blocks=slab_blocks, slab_bytes=slab_bytes)
    assert fast.slabbed == [i < slab_blocks for i in range(5)] + [False]  # conv_5 has no pool
    assert 0 in fast.depth_weights  # the one-channel first block runs with its depth taps as channels
    torch.manual_seed(2)
    x = torch.rand(2, 1, *shape)
    with torch.inference_mode():
        expected, got = plain(model, x), fast(x)
    # the same sums in another order: float32 rounding only
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-5), (got - expected).abs().max()


def test_slab_inference_in_bf16_keeps_the_age():
    # A random network's pooled features barely differ between inputs; a large last layer spreads
    # the ages (and magnifies bf16 rounding with them, as in benchmarks/bench_sfcn.py).
    torch.manual_seed(3)
    model = SFCN(channels=(8, 16, 16, 16, 16, 8), n_bins=40)
    model.classifier[-1].weight.data.mul_(300.0)
    model = fold_batch_norm(model.eval()).to(memory_format=torch.channels_last_3d)
    centers = torch.arange(40, dtype=torch.float64) + 42.5
    torch.manual_seed(4)
    ramp = torch.linspace(0, 1, 40).reshape(1, 1, 40, 1, 1).expand(1, 1, 40, 48, 40)
    x = torch.cat([torch.rand(1, 1, 40, 48, 40), ramp, 3 * (1 - ramp)])
    with torch.inference_mode():
        age32 = plain(model, x).double().exp() @ centers
        fast = SlabInference(model.to(torch.bfloat16), slab_blocks=2, slab_bytes=1 << 14)
        age16 = fast(x.to(torch.bfloat16)).double().exp() @ centers
    assert float(age32.max() - age32.min()) > 0.3  # the inputs get different ages
    assert float((age16 - age32).abs().max()) < 0.1  # bagkit's bf16 tolerance


def test_blocks_the_slabs_do_not_cover_run_as_they_are():
    model = folded_sfcn()
    model.feature_extractor.conv_1[2] = nn.MaxPool3d(3, stride=2, padding=1)  # not the 2×2×2 pool of SFCN
    model.feature_extractor.conv_2[0].padding = (0, 0, 0)                         # not a "same" convolution
    model.feature_extractor.conv_3[1] = nn.BatchNorm3d(16).eval()                 # a BatchNorm not folded
    fast = SlabInference(model, slab_blocks=5, slab_bytes=1)
    assert fast.slabbed == [True, False, False, False, True, False]
    x = torch.rand(1, 1, 64, 64, 64)
    with torch.inference_mode():
        assert torch.allclose(fast(x), plain(model, x), rtol=1e-5, atol=1e-5)


def test_cpu_predictor_uses_the_slab_form_and_matches_the_training_model(tmp_path):
    from bagkit_sfcn import SFCNBrainAge

    torch.manual_seed(5)
    model = SFCN(channels=(8, 16, 16, 16, 16, 8), n_bins=40)
    model.classifier[-1].weight.data.mul_(20.0)
    weights = tmp_path / "weights.pt"
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, str(weights))
    predictor = SFCNBrainAge(weights=weights, precision="fp32", progress=False, input_shape=(40, 48, 40))
    volumes = np.random.default_rng(6).random((2, 40, 48, 40)).astype(np.float32)
    ages, _ = predictor.predict_arrays(volumes)
    assert isinstance(predictor._inference_model(torch.float32, torch.device("cpu")), SlabInference)
    with torch.inference_mode():
        log_p = model.eval()(torch.from_numpy(volumes)[:, None])
    expected = log_p.double().exp().numpy() @ (np.arange(40) + 42.5)
    np.testing.assert_allclose(ages, expected, atol=1e-3)
