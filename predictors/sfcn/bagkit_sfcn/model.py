"""The SFCN network of Peng et al. (2021), its soft labels, loss and weight loading.

Architecture as published (Peng, Gong, Beckmann, Vedaldi, Smith, Medical Image
Analysis 2021; layer names as in the authors' UK Biobank release so their state
dict loads unchanged):

- ``feature_extractor.conv_0`` … ``conv_4``: Conv3d(3×3×3, padding 1) → BatchNorm3d
  → MaxPool3d(2) → ReLU, with 32, 64, 128, 256, 256 channels;
- ``feature_extractor.conv_5``: Conv3d(1×1×1) → BatchNorm3d → ReLU, 64 channels;
- ``classifier``: average pool over the remaining grid (5×6×5 for a 160×192×160
  input) → Dropout(0.5) → ``conv_6`` Conv3d(1×1×1) to ``n_bins`` → log-softmax.

The age is a distribution over bins; brain age is its mean and the predicted
SD its standard deviation. Training targets are Gaussian soft labels (σ = 1 y)
integrated over each bin, with a Kullback–Leibler divergence loss.
"""
from __future__ import annotations

import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy.stats import norm

from bagkit.errors import PredictorError

PUBLISHED_CHANNELS = (32, 64, 128, 256, 256, 64)


class SFCN(nn.Module):
    """Simple Fully Convolutional Network for brain age (Peng et al. 2021)."""

    def __init__(self, channels: Sequence[int] = PUBLISHED_CHANNELS, n_bins: int = 84, dropout: float = 0.5):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        self.feature_extractor = nn.Sequential()
        in_channels = 1
        for i, out_channels in enumerate(channels):
            last = i == len(channels) - 1
            if not last:
                block = nn.Sequential(
                    nn.Conv3d(in_channels, out_channels, kernel_size=3, padding=1),
                    nn.BatchNorm3d(out_channels),
                    nn.MaxPool3d(2, stride=2),
                    nn.ReLU(),
                )
            else:
                block = nn.Sequential(
                    nn.Conv3d(in_channels, out_channels, kernel_size=1, padding=0),
                    nn.BatchNorm3d(out_channels),
                    nn.ReLU(),
                )
            self.feature_extractor.add_module(f"conv_{i}", block)
            in_channels = out_channels
        self.classifier = nn.Sequential()
        # The authors use AvgPool3d([5, 6, 5]), the whole 5×6×5 grid left from a
        # 160×192×160 input; averaging the whole grid is the same thing there and
        # also works for the reduced inputs used in tests.
        self.classifier.add_module("average_pool", nn.AdaptiveAvgPool3d(1))
        if dropout:
            self.classifier.add_module("dropout", nn.Dropout(float(dropout)))
        self.classifier.add_module(
            f"conv_{len(channels)}", nn.Conv3d(in_channels, int(n_bins), kernel_size=1, padding=0)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log-probabilities over the age bins, shape (batch, n_bins)."""
        x = self.classifier(self.feature_extractor(x))
        return F.log_softmax(x.flatten(1).float(), dim=1)


def bin_centers(age_range: Sequence[float], bin_step: float = 1.0) -> np.ndarray:
    start, end = float(age_range[0]), float(age_range[1])
    n = (end - start) / float(bin_step)
    if end <= start or abs(n - round(n)) > 1e-9:
        raise PredictorError(
            f"age_range {tuple(age_range)} with bin_step {bin_step}: the range must be increasing and "
            f"a whole number of bins (e.g. (6, 90) or (42, 82) with 1-year bins)."
        )
    return start + bin_step / 2 + bin_step * np.arange(int(round(n)))


def soft_labels(ages, age_range: Sequence[float], bin_step: float = 1.0, sigma: float = 1.0) -> np.ndarray:
    """Gaussian soft labels: N(age, σ²) integrated over each bin, shape (n, n_bins)."""
    centers = bin_centers(age_range, bin_step)
    ages = np.atleast_1d(np.asarray(ages, dtype=float))[:, None]
    lower = norm.cdf(centers - bin_step / 2, loc=ages, scale=sigma)
    upper = norm.cdf(centers + bin_step / 2, loc=ages, scale=sigma)
    return upper - lower


def kl_loss(log_probabilities: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """KL(target ‖ output) summed over bins, averaged over the batch (as the authors' loss)."""
    target = target + 1e-16
    return F.kl_div(log_probabilities, target, reduction="sum") / log_probabilities.shape[0]


def bin_probabilities(log_probabilities: torch.Tensor) -> np.ndarray:
    """The network's log-probabilities as float64 probabilities, each row renormalised to sum to 1."""
    probabilities = log_probabilities.detach().float().exp().cpu().numpy().astype(np.float64)
    return probabilities / probabilities.sum(axis=1, keepdims=True)


def probability_moments(probabilities: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and SD of each row's distribution over the bin ``centers``."""
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(-1, len(centers))
    mean = probabilities @ centers
    variance = probabilities @ (centers ** 2) - mean ** 2
    return mean, np.sqrt(np.clip(variance, 0.0, None))


def distribution_moments(log_probabilities: torch.Tensor, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and SD of the predicted age distribution."""
    return probability_moments(bin_probabilities(log_probabilities), centers)


# --------------------------------------------------------------------------- weights
def read_checkpoint(path) -> "tuple[OrderedDict[str, torch.Tensor], dict]":
    """Read SFCN weights safely (``torch.load(weights_only=True)``): the state dict (``module.``
    prefix stripped) and the bagkit ``config`` stored beside it (empty for a plain state dict).

    Accepts the authors' UK Biobank file (a DataParallel state dict, keys prefixed
    ``module.``), a plain state dict, or a bagkit checkpoint (a dict holding
    ``model_state``). Anything that needs arbitrary unpickling is refused.
    """
    path = Path(path)
    if not path.is_file():
        raise PredictorError(f"{path}: SFCN weights file not found.")
    if path.stat().st_size == 0:
        raise PredictorError(f"{path}: the weights file is empty; expected an SFCN state dict "
                             f"saved with torch.save(model.state_dict()).")
    try:
        payload = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise PredictorError(
            f"{path}: refused to load — the file holds pickled objects other than tensors, which could "
            f"run arbitrary code. Expected an SFCN state dict saved with torch.save(model.state_dict()). "
            f"({error.__class__.__name__})"
        ) from error
    except Exception as error:  # noqa: BLE001 - torch's legacy reader raises many kinds on a non-weights file
        raise PredictorError(
            f"{path}: not a readable torch weights file ({type(error).__name__}: {error}); expected an "
            f"SFCN state dict saved with torch.save(model.state_dict())."
        ) from error
    config = {}
    if isinstance(payload, dict) and "model_state" in payload and isinstance(payload["model_state"], dict):
        config = payload.get("config") if isinstance(payload.get("config"), dict) else {}
        payload = payload["model_state"]
    if not isinstance(payload, dict) or not payload or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in payload.items()
    ):
        raise PredictorError(
            f"{path}: expected a state dict (parameter names → tensors), found {type(payload).__name__}"
            + (" (empty)" if isinstance(payload, dict) and not payload else "") + "."
        )
    state = OrderedDict()
    for key, value in payload.items():
        state[key[len("module."):] if key.startswith("module.") else key] = value
    return state, dict(config)


def read_state_dict(path) -> "OrderedDict[str, torch.Tensor]":
    """Read a state dict safely (``torch.load(weights_only=True)``); see :func:`read_checkpoint`."""
    return read_checkpoint(path)[0]


def infer_architecture(state: dict, path="the weights") -> tuple[tuple[int, ...], int]:
    """Channels and number of bins from a state dict."""
    channels = []
    i = 0
    while f"feature_extractor.conv_{i}.0.weight" in state:
        weight = state[f"feature_extractor.conv_{i}.0.weight"]
        if weight.ndim != 5:
            raise PredictorError(
                f"{path}: feature_extractor.conv_{i}.0.weight has shape {tuple(weight.shape)}; an SFCN "
                f"convolution weight is 5-D (out, in, k, k, k)."
            )
        channels.append(int(weight.shape[0]))
        i += 1
    classifier = f"classifier.conv_{i}.weight"
    if not channels or classifier not in state or state[classifier].ndim != 5:
        some = ", ".join(list(state)[:4])
        raise PredictorError(
            f"{path}: not an SFCN state dict (expected keys such as "
            f"'module.feature_extractor.conv_0.0.weight' and 'module.classifier.conv_6.weight'; found {some}, ...)."
        )
    return tuple(channels), int(state[classifier].shape[0])


def check_state(state: dict, path="the weights") -> tuple[tuple[int, ...], int]:
    """Check a (prefix-stripped) state dict against the SFCN it describes: every key present,
    none extra, every shape right, every value finite, variances ≥ 0. Returns (channels, n_bins)."""
    channels, n_bins = infer_architecture(state, path)
    with torch.device("meta"):
        expected = SFCN(channels=channels, n_bins=n_bins, dropout=0).state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} is {tuple(state[k].shape)}, expected {tuple(expected[k].shape)}"
             for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:5]}" + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
        if unexpected:
            parts.append(f"unexpected keys {unexpected[:5]}"
                         + (f" and {len(unexpected) - 5} more" if len(unexpected) > 5 else ""))
        if wrong:
            parts.append("wrong shapes: " + "; ".join(wrong[:5]) + (f" and {len(wrong) - 5} more" if len(wrong) > 5 else ""))
        raise PredictorError(
            f"{path}: the state dict does not match the SFCN layers it names (channels {list(channels)}, "
            f"{n_bins} age bins): " + "; ".join(parts) + "."
        )
    not_finite = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if not_finite:
        raise PredictorError(
            f"{path}: {len(not_finite)} of its {len(state)} tensors hold NaN or infinite values "
            f"(e.g. {not_finite[:3]}); expected finite weights — the file is damaged or comes from a "
            f"training run that diverged."
        )
    negative = [k for k, v in state.items() if k.endswith("running_var") and bool((v < 0).any())]
    if negative:
        raise PredictorError(f"{path}: negative BatchNorm variances in {negative[:3]}; expected variances ≥ 0.")
    return channels, n_bins


def load_state(model: SFCN, state: dict, path="the weights") -> None:
    """Load a (prefix-stripped) state dict, tolerating a missing ``num_batches_tracked``."""
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as error:  # size mismatches
        raise PredictorError(f"{path}: the state dict does not fit the SFCN layers: {error}") from error
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise PredictorError(
            f"{path}: the state dict does not match the SFCN layers (missing: {missing[:5]}, "
            f"unexpected: {list(result.unexpected_keys)[:5]})."
        )


def fold_batch_norm(model: SFCN) -> nn.Module:
    """An inference copy with each BatchNorm folded into the preceding convolution."""
    import copy

    folded = copy.deepcopy(model).eval()
    for block in folded.feature_extractor:
        conv, bn = block[0], block[1]
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        with torch.no_grad():
            conv.weight.mul_(scale.reshape(-1, 1, 1, 1, 1))
            bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
        block[1] = nn.Identity()
    return folded


# --------------------------------------------------------------------------- fast inference
def channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` in channels-last 3-D layout, including when it has a single channel.

    With one channel the NCDHW and NDHWC layouts hold the same bytes and torch
    cannot tell them apart, so a convolution of a one-channel volume writes its
    32-channel output as NCDHW, and every layer after it pays for that. Giving
    the channel dimension stride 1 says "channels last" unambiguously.
    """
    x = x.contiguous(memory_format=torch.channels_last_3d)
    if x.shape[1] == 1:
        x = x.as_strided(x.shape, (x.stride(0), 1, *x.stride()[2:]))
    return x


def max_pool2_relu(y: torch.Tensor, out: torch.Tensor) -> None:
    """``out[:] = relu(max_pool3d(y, 2))`` for channels-last ``y``, as three pairwise maxima.

    Equal to ``F.max_pool3d(y, 2).relu()`` (a maximum is exact in any precision), without
    the argmax indices torch's kernel computes, and written straight into ``out``.
    """
    v = y.permute(0, 2, 3, 4, 1)  # N D H W C: the bytes of a channels-last tensor, in order
    d, h, w = (size // 2 * 2 for size in v.shape[1:4])
    v = torch.maximum(v[:, 0:d:2], v[:, 1:d:2])
    v = torch.maximum(v[:, :, 0:h:2], v[:, :, 1:h:2])
    target = out.permute(0, 2, 3, 4, 1)
    torch.maximum(v[:, :, :, 0:w:2], v[:, :, :, 1:w:2], out=target)
    target.relu_()


class SlabInference(nn.Module):
    """A BatchNorm-folded SFCN for CPU inference, the largest blocks computed in depth slabs.

    Each of the first ``slab_blocks`` blocks (convolution → max-pool → ReLU) is run
    a few output slices at a time: the convolution of one slab (its input slices
    plus a one-slice halo) is pooled while it is still in cache, so the
    full-resolution output — 32 channels × 160×192×160, 315 MB per scan in bf16,
    for the first block — never exists. ``slab_bytes`` bounds the unpooled output
    of one slab. The first convolution has a single input channel, which oneDNN
    handles poorly; its three depth taps become three input channels (the volume
    shifted by 0, 1 and 2 slices) of a 1×3×3 convolution with the same weights.
    The results are those of the plain network up to bf16 rounding of sums taken in
    another order; max-pooling is exact.
    """

    def __init__(self, folded: SFCN, slab_blocks: int = 2, slab_bytes: int = 8 << 20):
        super().__init__()
        self.feature_extractor = folded.feature_extractor
        self.classifier = folded.classifier
        self.slab_bytes = int(slab_bytes)
        self.slabbed = [i < int(slab_blocks) and _is_slabbable(block) for i, block in enumerate(self.feature_extractor)]
        # depth taps as channels, for a one-channel convolution: (out, 1, kd, kh, kw) → (out, kd, 1, kh, kw)
        self.depth_weights = {}
        for i, block in enumerate(self.feature_extractor):
            conv = block[0]
            if self.slabbed[i] and conv.in_channels == 1:
                self.depth_weights[i] = conv.weight.detach().transpose(1, 2).contiguous(
                    memory_format=torch.channels_last_3d)

    def _block_by_slabs(self, x: torch.Tensor, index: int) -> torch.Tensor:
        block = self.feature_extractor[index]
        conv = block[0]
        depth_weight = self.depth_weights.get(index)
        taps, pad = conv.kernel_size[0], conv.padding[0]
        n, _, depth, height, width = x.shape
        out_depth = depth // 2
        out = torch.empty((n, conv.out_channels, out_depth, height // 2, width // 2), dtype=x.dtype, device=x.device)
        out = out.contiguous(memory_format=torch.channels_last_3d)
        per_slice = 2 * height * width * conv.out_channels * x.element_size()  # unpooled bytes per output slice
        step = max(1, self.slab_bytes // per_slice)
        for i in range(n):
            for start in range(0, out_depth, step):
                stop = min(out_depth, start + step)
                # input slices 2·start − pad … 2·stop + pad, zero beyond the volume (the convolution's depth padding)
                first, last = 2 * start - pad, 2 * stop + pad
                slab = x[i:i + 1, :, max(first, 0):min(last, depth)]
                if first < 0 or last > depth:
                    slab = F.pad(slab, (0, 0, 0, 0, max(-first, 0), max(last - depth, 0)))
                if depth_weight is not None:
                    volume, slices = slab[0, 0], 2 * (stop - start)
                    shifted = torch.stack([volume[k:k + slices] for k in range(taps)], dim=-1)  # D H W taps
                    y = F.conv3d(shifted.permute(3, 0, 1, 2)[None], depth_weight, conv.bias,
                                 padding=(0, pad, pad))
                else:
                    y = F.conv3d(channels_last(slab), conv.weight, conv.bias, padding=(0, pad, pad))
                max_pool2_relu(y, out[i:i + 1, :, start:stop])
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = channels_last(x)
        for i, block in enumerate(self.feature_extractor):
            x = self._block_by_slabs(x, i) if self.slabbed[i] else block(x)
        x = self.classifier(x)
        return F.log_softmax(x.flatten(1).float(), dim=1)


def _is_slabbable(block: nn.Module) -> bool:
    """A folded SFCN block as the slabs assume it: a stride-1 "same" convolution with an odd cubic
    kernel, no BatchNorm left (folded into the convolution), a 2×2×2 max-pool, then ReLU."""
    if not (isinstance(block, nn.Sequential) and len(block) == 4):
        return False
    conv, folded, pool, relu = block
    cubic = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v,) * 3  # noqa: E731
    return (isinstance(conv, nn.Conv3d) and conv.stride == (1, 1, 1) and conv.dilation == (1, 1, 1)
            and conv.groups == 1 and len(set(conv.kernel_size)) == 1 and conv.kernel_size[0] % 2 == 1
            and conv.padding == (conv.kernel_size[0] // 2,) * 3 and conv.padding_mode == "zeros"
            and isinstance(folded, nn.Identity) and isinstance(relu, nn.ReLU)
            and isinstance(pool, nn.MaxPool3d) and cubic(pool.kernel_size) == (2, 2, 2)
            and cubic(pool.stride) == (2, 2, 2) and cubic(pool.padding) == (0, 0, 0)
            and cubic(pool.dilation) == (1, 1, 1) and not pool.ceil_mode)
