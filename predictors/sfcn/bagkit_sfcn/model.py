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

import io
import pickle
import zipfile
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


def distribution_moments(log_probabilities: torch.Tensor, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and SD of the predicted age distribution."""
    probabilities = log_probabilities.detach().float().exp().cpu().numpy().astype(np.float64)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    mean = probabilities @ centers
    variance = probabilities @ (centers ** 2) - mean ** 2
    return mean, np.sqrt(np.clip(variance, 0.0, None))


# --------------------------------------------------------------------------- weights
def read_state_dict(path) -> "OrderedDict[str, torch.Tensor]":
    """Read a state dict safely (``torch.load(weights_only=True)``).

    Accepts the authors' UK Biobank file (a DataParallel state dict, keys prefixed
    ``module.``), a plain state dict, or a bagkit checkpoint (a dict holding
    ``model_state``). Anything that needs arbitrary unpickling is refused.
    """
    path = Path(path)
    if not path.is_file():
        raise PredictorError(f"{path}: SFCN weights file not found.")
    try:
        payload = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise PredictorError(
            f"{path}: refused to load — the file holds pickled objects other than tensors, which could "
            f"run arbitrary code. Expected an SFCN state dict saved with torch.save(model.state_dict()). "
            f"({error.__class__.__name__}: {str(error).splitlines()[0] if str(error) else ''})"
        ) from error
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as error:
        raise PredictorError(
            f"{path}: not a readable torch weights file ({type(error).__name__}: {error})."
        ) from error
    if isinstance(payload, dict) and "model_state" in payload and isinstance(payload["model_state"], dict):
        payload = payload["model_state"]
    if not isinstance(payload, dict) or not payload or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in payload.items()
    ):
        raise PredictorError(
            f"{path}: expected a state dict (parameter names → tensors), found {type(payload).__name__}."
        )
    state = OrderedDict()
    for key, value in payload.items():
        state[key[len("module."):] if key.startswith("module.") else key] = value
    return state


def infer_architecture(state: dict, path="the weights") -> tuple[tuple[int, ...], int]:
    """Channels and number of bins from a state dict."""
    channels = []
    i = 0
    while f"feature_extractor.conv_{i}.0.weight" in state:
        channels.append(int(state[f"feature_extractor.conv_{i}.0.weight"].shape[0]))
        i += 1
    classifier = f"classifier.conv_{i}.weight"
    if not channels or classifier not in state:
        some = ", ".join(list(state)[:4])
        raise PredictorError(
            f"{path}: not an SFCN state dict (expected keys such as "
            f"'module.feature_extractor.conv_0.0.weight' and 'module.classifier.conv_6.weight'; found {some}, ...)."
        )
    return tuple(channels), int(state[classifier].shape[0])


def load_state(model: SFCN, state: dict, path="the weights") -> None:
    """Load a (prefix-stripped) state dict, tolerating a missing ``num_batches_tracked``."""
    result = model.load_state_dict(state, strict=False)
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
