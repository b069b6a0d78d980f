"""SFCNBrainAge: the SFCN network as a bagkit predictor (fit / predict / save / load)."""
from __future__ import annotations

import contextlib
import hashlib
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from bagkit.errors import PredictorError
from bagkit.io.outputs import atomic_output
from bagkit.predictors import AgeDistribution, BrainAgePredictor
from bagkit_sfcn.model import (
    PUBLISHED_CHANNELS,
    SFCN,
    SlabInference,
    bin_centers,
    bin_probabilities,
    channels_last,
    check_state,
    distribution_moments,
    fold_batch_norm,
    kl_loss,
    load_state,
    probability_moments,
    read_checkpoint,
    soft_labels,
)

PAPER_AGE_RANGE = (6, 90)        # the paper this toolkit follows (84 one-year bins)
UK_BIOBANK_AGE_RANGE = (42, 82)  # the authors' public UK Biobank weights (40 bins)
_CONFIG_KEYS = (
    "age_range", "bin_step", "sigma", "channels", "dropout", "input_shape", "precision", "bf16_tolerance",
)


def _usable_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _bf16_fast_on_cpu() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # pragma: no cover
        return False


class SFCNBrainAge(BrainAgePredictor):
    """SFCN brain age (Peng et al. 2021): age-bin distribution → brain age (mean) and SD.

    Parameters
    ----------
    weights : path to a state dict — the authors' UK Biobank file (``module.``-prefixed),
        a bagkit checkpoint or a file written by :meth:`save`. Loaded on first use
        with ``torch.load(weights_only=True)``.
    age_range, bin_step : the age bins; ``None`` means 6–90 y when training (as the
        paper) and, with weights, inferred from them (40 bins → 42–82 y, the UK Biobank
        release; 84 → 6–90 y).
    sigma : SD (years) of the Gaussian soft labels.
    channels : the six channel counts; the published ones by default.
    input_shape : preprocessed input shape (160×192×160; smaller for tests).
    epochs, lr, batch_size, weight_decay, momentum, lr_step_epochs, lr_gamma : SGD
        training (the authors: lr 0.01, ×0.3 every 30 epochs, weight decay 0.001, batch 8).
    patience : early stopping after this many epochs without a better validation MAE.
    validation_fraction : share of the training scans held out for validation MAE.
    max_shift, mirror : augmentation — random shifts up to ``max_shift`` voxels per
        axis and left–right mirroring.
    checkpoint_dir, resume : write ``last.pt`` / ``best.pt`` each epoch; continue from
        ``last.pt`` when ``resume``.
    precision : ``"auto"`` (bf16 when the CPU/GPU has fast bf16 *and* a probe on the
        first batch keeps every brain age within ``bf16_tolerance`` years of fp32),
        ``"bf16"`` or ``"fp32"``.
    device : ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    num_threads : CPU threads during training/inference (all usable cores when None).
    """

    name = "sfcn"
    #: how a prediction runs, not its numbers: outside the fingerprint (the cache key)
    runtime_params = frozenset({"device", "num_threads", "progress", "predict_batch_size", "checkpoint_dir"})
    min_fit_scans = 2
    #: parameters that decide how the weights file is read into a network
    _MODEL_PARAMS = frozenset({"weights", "age_range", "bin_step", "dropout"})
    #: parameters that decide the inference precision
    _PRECISION_PARAMS = frozenset({"precision", "bf16_tolerance", "device"})

    def __init__(
        self,
        weights=None,
        age_range=None,
        bin_step: float = 1.0,
        sigma: float = 1.0,
        channels: Sequence[int] = PUBLISHED_CHANNELS,
        dropout: float = 0.5,
        input_shape: Sequence[int] = (160, 192, 160),
        epochs: int = 130,
        lr: float = 0.01,
        batch_size: int = 8,
        weight_decay: float = 0.001,
        momentum: float = 0.9,
        lr_step_epochs: int = 30,
        lr_gamma: float = 0.3,
        patience: int = 20,
        validation_fraction: float = 0.1,
        max_shift: int = 2,
        mirror: bool = True,
        checkpoint_dir=None,
        resume: bool = False,
        precision: str = "auto",
        bf16_tolerance: float = 0.1,
        predict_batch_size: int = 2,
        device: str = "auto",
        num_threads=None,
        seed: int = 0,
        progress: bool = True,
    ):
        self.weights = weights
        self.age_range = age_range
        self.bin_step = bin_step
        self.sigma = sigma
        self.channels = channels
        self.dropout = dropout
        self.input_shape = input_shape
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.momentum = momentum
        self.lr_step_epochs = lr_step_epochs
        self.lr_gamma = lr_gamma
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.max_shift = max_shift
        self.mirror = mirror
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume
        self.precision = precision
        self.bf16_tolerance = bf16_tolerance
        self.predict_batch_size = predict_batch_size
        self.device = device
        self.num_threads = num_threads
        self.seed = seed
        self.progress = progress

    # ------------------------------------------------------------------ helpers
    def _device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if str(self.device).startswith("cuda") and not torch.cuda.is_available():
            raise PredictorError(f"device={self.device!r} was asked for, but torch sees no CUDA GPU; "
                                 f"use --param device=cpu (or auto).")
        return torch.device(self.device)

    @contextlib.contextmanager
    def _threads(self):
        before = torch.get_num_threads()
        wanted = int(self.num_threads) if self.num_threads else _usable_threads()
        torch.set_num_threads(wanted)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def _resolved_age_range(self, n_bins: int | None = None, config: dict | None = None) -> tuple[float, float]:
        config = config or {}
        if self.age_range is None and config.get("age_range") is not None \
                and float(config.get("bin_step", self.bin_step)) == float(self.bin_step):
            stored = tuple(float(a) for a in config["age_range"])
            if n_bins is None or len(bin_centers(stored, self.bin_step)) == n_bins:
                return stored
        if self.age_range is not None:
            age_range = (float(self.age_range[0]), float(self.age_range[1]))
            if n_bins is not None and len(bin_centers(age_range, self.bin_step)) != n_bins:
                raise PredictorError(
                    f"the weights have {n_bins} age bins but age_range={tuple(self.age_range)} with "
                    f"bin_step={self.bin_step} makes {len(bin_centers(age_range, self.bin_step))}; "
                    f"the public UK Biobank weights need age_range=(42, 82)."
                )
            return age_range
        if n_bins is None:
            return tuple(float(a) for a in PAPER_AGE_RANGE)
        for candidate in (UK_BIOBANK_AGE_RANGE, PAPER_AGE_RANGE):
            if len(bin_centers(candidate, self.bin_step)) == n_bins:
                return tuple(float(a) for a in candidate)
        raise PredictorError(
            f"the weights have {n_bins} age bins; say which ages they cover with age_range=(start, end)."
        )

    def set_params(self, **params) -> "SFCNBrainAge":
        super().set_params(**params)
        if self.weights is not None and self._MODEL_PARAMS & set(params):
            self.model_ = None  # read the weights again with the new settings
            self.dtype_ = None
        if self._PRECISION_PARAMS & set(params):
            self.dtype_ = None
        return self

    # ------------------------------------------------------------------ checks
    def validate_params(self) -> None:
        super().validate_params()
        if self.age_range is not None:
            ok = hasattr(self.age_range, "__len__") and not isinstance(self.age_range, str) \
                and len(self.age_range) == 2
            try:
                ok = ok and all(np.isfinite(float(a)) for a in self.age_range) \
                    and float(self.age_range[0]) < float(self.age_range[1])
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise self.param_error("age_range", self.age_range, "[start, end] in years, e.g. [42, 82]")
        self._require_number("bin_step", 0, strict=True)
        self._require_number("sigma", 0, strict=True)
        channels = self.channels
        if isinstance(channels, (str, bytes)) or not hasattr(channels, "__len__") or len(channels) < 2 or not all(
                isinstance(c, (int, np.integer)) and not isinstance(c, bool) and c > 0 for c in channels):
            raise self.param_error("channels", channels, "at least two positive integers, e.g. "
                                   "[32, 64, 128, 256, 256, 64]")
        self._require_number("dropout", 0, maximum=0.99)
        self._require_int("epochs", 0)
        self._require_number("lr", 0, strict=True)
        self._require_int("batch_size", 1)
        self._require_number("weight_decay", 0)
        self._require_number("momentum", 0, maximum=1)
        self._require_int("lr_step_epochs", 1)
        self._require_number("lr_gamma", 0, strict=True)
        self._require_int("patience", 0)
        self._require_number("validation_fraction", 0, maximum=0.9)
        self._require_int("max_shift", 0)
        self._require_choice("mirror", (True, False))
        self._require_choice("resume", (True, False))
        self._require_choice("precision", ("auto", "bf16", "bfloat16", "fp32", "float32"))
        self._require_number("bf16_tolerance", 0)
        self._require_int("predict_batch_size", 1)
        if not (isinstance(self.device, str) and (self.device in ("auto", "cpu", "cuda")
                                                  or self.device.startswith("cuda:"))):
            raise self.param_error("device", self.device, "'auto', 'cpu', 'cuda' or 'cuda:N'")
        self._require_int("num_threads", 1, allow_none=True)
        self._require_int("seed", 0)
        self._require_choice("progress", (True, False))
        if self.age_range is not None:
            bin_centers(self.age_range, self.bin_step)  # a whole number of bins

    def check(self) -> None:
        """Valid parameters, and weights that load into the SFCN they describe (every key and
        shape, finite values) and agree with ``age_range``; the device exists."""
        super().check()
        self._ensure_model()
        self._device()

    # ------------------------------------------------------------------ helpers
    def _ensure_model(self) -> None:
        if getattr(self, "model_", None) is not None:
            return
        if self.weights is None:
            raise PredictorError(
                "this SFCN predictor has no weights: pass weights=PATH (e.g. the UK Biobank "
                "run_20190719_00_epoch_best_mae.p with age_range=(42, 82)) or train it with fit()."
            )
        state, config = read_checkpoint(self.weights)
        channels, n_bins = check_state(state, self.weights)
        age_range = self._resolved_age_range(n_bins, config)
        model = SFCN(channels=channels, n_bins=n_bins, dropout=self.dropout)
        load_state(model, state, self.weights)
        self._set_fitted(model, age_range)

    def _set_fitted(self, model: SFCN, age_range) -> None:
        self.model_ = model.eval()
        self.age_range_ = tuple(float(a) for a in age_range)
        self.bin_centers_ = bin_centers(self.age_range_, self.bin_step)
        self._inference = {}

    def learned_state(self) -> dict:
        """The learned attributes hashed by fingerprint(): not the network object (its tensors are
        hashed in fingerprint), the precision chosen at run time or the training history."""
        skip = {"model_", "dtype_", "bf16_probe_difference_", "history_"}
        return {k: v for k, v in super().learned_state().items() if k not in skip}

    def fingerprint(self) -> str:
        if self.weights is not None and getattr(self, "model_", None) is None:
            try:
                self._ensure_model()  # the same fingerprint before and after the weights are read
            except Exception:  # noqa: BLE001 - unusable settings: check() says why; the key is params + file
                pass
        digest = hashlib.sha256(super().fingerprint().encode())
        model = getattr(self, "model_", None)
        if model is not None:
            for key, tensor in model.state_dict().items():
                digest.update(key.encode())
                digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()

    # ------------------------------------------------------------------ inference
    def _inference_model(self, dtype: torch.dtype, device: torch.device) -> torch.nn.Module:
        key = (str(dtype), str(device))
        cache = getattr(self, "_inference", None)
        if cache is None:
            cache = self._inference = {}
        if key not in cache:
            model = fold_batch_norm(self.model_).to(device)
            model = model.to(memory_format=torch.channels_last_3d).to(dtype)
            if device.type == "cpu":  # in fp32, oneDNN is slower on slabs of the second block than on it whole
                model = SlabInference(model, slab_blocks=2 if dtype == torch.bfloat16 else 1)
            cache[key] = model
        return cache[key]

    def _forward(self, volumes: np.ndarray, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        model = self._inference_model(dtype, device)
        x = torch.from_numpy(np.ascontiguousarray(volumes, dtype=np.float32))[:, None]
        return model(channels_last(x.to(device).to(dtype)))

    def _choose_dtype(self, probe: np.ndarray, device: torch.device) -> torch.dtype:
        precision = str(self.precision).lower()
        if precision in ("fp32", "float32"):
            return torch.float32
        if precision in ("bf16", "bfloat16"):
            return torch.bfloat16
        if precision != "auto":
            raise PredictorError(f"precision must be 'auto', 'bf16' or 'fp32', not {self.precision!r}.")
        if device.type == "cpu" and not _bf16_fast_on_cpu():
            return torch.float32
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            return torch.float32
        # the probe: bf16 only if every brain age of the first batch stays within tolerance of fp32
        age32, _ = distribution_moments(self._forward(probe, torch.float32, device), self.bin_centers_)
        age16, _ = distribution_moments(self._forward(probe, torch.bfloat16, device), self.bin_centers_)
        self.bf16_probe_difference_ = float(np.max(np.abs(age32 - age16)))
        return torch.bfloat16 if self.bf16_probe_difference_ <= float(self.bf16_tolerance) else torch.float32

    def _probabilities(self, volumes: np.ndarray) -> np.ndarray:
        """The network's age-bin probabilities (float64, rows summing to 1) for a stack of volumes,
        in inference batches of ``predict_batch_size``; the precision is chosen on the first batch."""
        self._ensure_model()
        volumes = np.asarray(volumes, dtype=np.float32)
        if volumes.ndim == 3:
            volumes = volumes[None]
        device = self._device()
        batch = max(1, int(self.predict_batch_size))
        out = []
        with self._threads(), torch.inference_mode():
            if getattr(self, "dtype_", None) is None:
                self.dtype_ = self._choose_dtype(volumes[:batch], device)
            for start in range(0, len(volumes), batch):
                out.append(bin_probabilities(self._forward(volumes[start:start + batch], self.dtype_, device)))
        return np.concatenate(out) if out else np.zeros((0, len(self.bin_centers_)))

    def predict_arrays(self, volumes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return probability_moments(self._probabilities(volumes), self.bin_centers_)

    def age_distribution(self, scans) -> AgeDistribution:
        """SFCN's output itself: the probability of each age bin per scan (paths, images or
        preprocessed arrays, as :meth:`predict`), with its mean (the brain age) and SD — the numbers
        :meth:`predict` gives, from the same computation. Scans are loaded ``predict_batch_size`` at a time."""
        from bagkit.predictors import scan_index

        index = scan_index(scans)
        items = list(scans.values) if isinstance(scans, pd.Series) else list(scans)
        self._ensure_model()
        batch = max(1, int(self.predict_batch_size))
        rows = [self._probabilities(np.stack([self.load_scan(item) for item in items[start:start + batch]]))
                for start in range(0, len(items), batch)]
        probabilities = np.concatenate(rows) if rows else np.zeros((0, len(self.bin_centers_)))
        mean, sd = probability_moments(probabilities, self.bin_centers_)
        return AgeDistribution(bin_centers=np.asarray(self.bin_centers_, dtype=float), probabilities=probabilities,
                               brain_age=mean, brain_age_sd=sd, index=index)

    def predict(self, scans) -> pd.DataFrame:
        """Brain age and SD per scan (paths, images or preprocessed arrays), with a progress bar."""
        from tqdm.auto import tqdm

        from bagkit.predictors import scan_index

        index = scan_index(scans)
        items = list(scans.values) if isinstance(scans, pd.Series) else list(scans)
        self._ensure_model()
        ages, sds = [], []
        batch = max(1, int(self.predict_batch_size))
        with tqdm(total=len(items), disable=not self.progress or len(items) < 2, desc="SFCN", unit="scan") as bar:
            for start in range(0, len(items), batch):
                volumes = np.stack([self.load_scan(item) for item in items[start:start + batch]])
                mean, sd = self.predict_arrays(volumes)
                ages.append(mean)
                sds.append(sd)
                bar.update(len(volumes))
        if not items:
            return pd.DataFrame({"brain_age": [], "brain_age_sd": []}, index=index, dtype=float)
        return pd.DataFrame({"brain_age": np.concatenate(ages), "brain_age_sd": np.concatenate(sds)}, index=index)

    # ------------------------------------------------------------------ training
    def _augment(self, volume: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        shift = int(self.max_shift)
        if shift > 0:
            offsets = rng.integers(-shift, shift + 1, size=3)
            if np.any(offsets):
                shifted = np.zeros_like(volume)
                src, dst = [], []
                for offset, size in zip(offsets, volume.shape):
                    if offset >= 0:
                        src.append(slice(0, size - offset))
                        dst.append(slice(offset, size))
                    else:
                        src.append(slice(-offset, size))
                        dst.append(slice(0, size + offset))
                shifted[tuple(dst)] = volume[tuple(src)]
                volume = shifted
        if self.mirror and rng.random() < 0.5:
            volume = volume[::-1]  # left–right in RAS
        return np.ascontiguousarray(volume)

    def _config(self) -> dict:
        return {
            "age_range": list(self.age_range_), "bin_step": float(self.bin_step), "sigma": float(self.sigma),
            "channels": [int(c) for c in self.channels], "dropout": float(self.dropout or 0.0),
            "input_shape": [int(s) for s in self.input_shape],
            "precision": str(self.precision), "bf16_tolerance": float(self.bf16_tolerance),
        }

    def fit(self, scans, ages, validation=None) -> "SFCNBrainAge":
        """Train on healthy controls' scans and ages (SGD, soft labels, KL loss).

        ``validation`` may be ``(scans, ages)``; otherwise ``validation_fraction`` of
        the training scans are held out. Validation MAE is computed every epoch; the
        weights of the best epoch are kept (early stopping after ``patience`` epochs).
        """
        from tqdm.auto import tqdm

        self.validate_params()
        items, ages = self.validate_fit_input(scans, ages)
        age_range = self._resolved_age_range()
        centers = bin_centers(age_range, self.bin_step)
        if ages.min() < age_range[0] or ages.max() > age_range[1]:
            raise PredictorError(
                f"training ages span {ages.min():.1f}–{ages.max():.1f} y, outside the age bins "
                f"{age_range[0]:g}–{age_range[1]:g} y; widen age_range."
            )
        rng = np.random.default_rng(self.seed)
        torch.manual_seed(self.seed)
        if validation is not None:
            val_items = list(validation[0])
            val_ages = np.asarray(validation[1], dtype=float)
            train_idx = np.arange(len(items))
        else:
            order = rng.permutation(len(items))
            n_val = int(round(len(items) * float(self.validation_fraction)))
            n_val = min(max(n_val, 1 if self.validation_fraction > 0 else 0), len(items) - 1)
            val_idx, train_idx = order[:n_val], order[n_val:]
            val_items = [items[i] for i in val_idx]
            val_ages = ages[val_idx]
        device = self._device()
        # preprocessed arrays are kept in memory when given as arrays; paths are read per batch
        model = SFCN(channels=self.channels, n_bins=len(centers), dropout=self.dropout).to(device)
        model = model.to(memory_format=torch.channels_last_3d)
        optimizer = torch.optim.SGD(
            model.parameters(), lr=float(self.lr), momentum=float(self.momentum),
            weight_decay=float(self.weight_decay),
        )
        scheduler = torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=max(1, int(self.lr_step_epochs)), gamma=float(self.lr_gamma)
        )
        history: list[dict] = []
        best_mae, best_epoch, best_state, start_epoch = math.inf, -1, None, 0
        checkpoint_dir = Path(self.checkpoint_dir) if self.checkpoint_dir else None
        if checkpoint_dir is not None and self.resume and (checkpoint_dir / "last.pt").is_file():
            saved = torch.load(str(checkpoint_dir / "last.pt"), map_location=device, weights_only=True)
            model.load_state_dict(saved["model_state"])
            optimizer.load_state_dict(saved["optimizer_state"])
            scheduler.load_state_dict(saved["scheduler_state"])
            start_epoch = int(saved["epoch"]) + 1
            best_mae, best_epoch = float(saved["best_mae"]), int(saved["best_epoch"])
            best_state = saved.get("best_state")
            history = [dict(h) for h in saved.get("history", [])]
            rng = np.random.default_rng([self.seed, start_epoch])
            torch.manual_seed(self.seed + start_epoch)

        self.age_range_ = tuple(age_range)
        self.bin_centers_ = centers
        targets = torch.from_numpy(soft_labels(ages, age_range, self.bin_step, self.sigma)).float()
        batch_size = max(1, int(self.batch_size))
        epochs_without_gain = sum(1 for h in history if h["epoch"] > best_epoch)
        with self._threads():
            bar = tqdm(range(start_epoch, int(self.epochs)), disable=not self.progress, desc="SFCN training",
                       unit="epoch", initial=start_epoch, total=int(self.epochs))
            for epoch in bar:
                if epochs_without_gain >= int(self.patience):
                    break
                model.train()
                order = rng.permutation(train_idx)
                losses = []
                for start in range(0, len(order), batch_size):
                    chosen = order[start:start + batch_size]
                    if len(chosen) < 2 and len(order) > 1:
                        continue  # BatchNorm needs more than one sample
                    volumes = np.stack([self._augment(self.load_scan(items[i]), rng) for i in chosen])
                    x = torch.from_numpy(volumes)[:, None].to(device)
                    x = x.contiguous(memory_format=torch.channels_last_3d)
                    y = targets[chosen].to(device)
                    optimizer.zero_grad(set_to_none=True)
                    loss = kl_loss(model(x), y)
                    loss.backward()
                    optimizer.step()
                    losses.append(float(loss.detach()))
                scheduler.step()
                val_mae = self._validation_mae(model, val_items, val_ages, device) if len(val_items) else math.nan
                record = {"epoch": epoch, "train_loss": float(np.mean(losses)) if losses else math.nan,
                          "validation_mae": val_mae, "lr": float(optimizer.param_groups[0]["lr"])}
                history.append(record)
                improved = (val_mae < best_mae) if np.isfinite(val_mae) else True
                if improved:
                    best_mae, best_epoch = (val_mae if np.isfinite(val_mae) else best_mae), epoch
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                    epochs_without_gain = 0
                else:
                    epochs_without_gain += 1
                bar.set_postfix(loss=f"{record['train_loss']:.3f}", val_mae=f"{val_mae:.2f}")
                if checkpoint_dir is not None:
                    checkpoint_dir.mkdir(parents=True, exist_ok=True)
                    payload = {
                        "model_state": model.state_dict(), "optimizer_state": optimizer.state_dict(),
                        "scheduler_state": scheduler.state_dict(), "epoch": epoch, "best_mae": best_mae,
                        "best_epoch": best_epoch, "best_state": best_state, "history": history,
                        "config": self._config(),
                    }
                    _atomic_save(payload, checkpoint_dir / "last.pt")
                    if improved:
                        _atomic_save({"model_state": best_state, "config": self._config(), "epoch": epoch,
                                      "validation_mae": best_mae}, checkpoint_dir / "best.pt")
            bar.close()
        if best_state is not None:
            model.load_state_dict(best_state)
        model = model.to(memory_format=torch.contiguous_format).cpu()
        self._set_fitted(model, age_range)
        self.history_ = pd.DataFrame(history)
        self.best_epoch_ = best_epoch
        self.validation_mae_ = best_mae
        self.dtype_ = None
        return self

    def _validation_mae(self, model, items, ages, device) -> float:
        model.eval()
        predictions = []
        with torch.inference_mode():
            for start in range(0, len(items), max(1, int(self.predict_batch_size) * 4)):
                volumes = np.stack([self.load_scan(item) for item in items[start:start + int(self.predict_batch_size) * 4]])
                x = torch.from_numpy(volumes)[:, None].to(device).contiguous(memory_format=torch.channels_last_3d)
                mean, _ = distribution_moments(model(x), self.bin_centers_)
                predictions.append(mean)
        return float(np.mean(np.abs(np.concatenate(predictions) - ages)))

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> Path:
        """Write the weights and the bin/shape configuration (loadable with weights_only=True)."""
        self._ensure_model()
        path = Path(path)
        payload = {"model_state": self.model_.state_dict(), "config": self._config(), "format": "bagkit-sfcn/1"}
        _atomic_save(payload, path)
        return path

    @classmethod
    def _load(cls, path: Path) -> "SFCNBrainAge":
        """A file written by :meth:`save`, a training checkpoint or the authors' UK Biobank state
        dict; the settings stored beside the weights (bins, shape) become parameters. Through
        :meth:`load`, which applies overrides and checks the weights."""
        _, config = read_checkpoint(path)
        settings = {k: (tuple(v) if isinstance(v, list) else v) for k, v in config.items() if k in _CONFIG_KEYS}
        return cls(weights=str(path), **settings)


def _atomic_save(payload, path: Path) -> None:
    with atomic_output(path) as tmp:
        torch.save(payload, str(tmp))
