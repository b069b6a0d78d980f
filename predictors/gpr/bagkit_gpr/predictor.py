"""GaussianProcessBrainAge: voxels → PCA → Gaussian-process regression (as brainageR).

Features are the preprocessed T1 volume, block-averaged by ``downsample`` and
restricted to the voxels inside the training brain mask; PCA reduces them to
``n_components`` scores, and scikit-learn's ``GaussianProcessRegressor`` with a
``Constant × RBF + White`` kernel maps scores to age. ``predict`` returns the
posterior mean and the predictive SD (``return_std=True``).

Storage is a plain ``.npz`` of arrays plus JSON text (``allow_pickle=False``): loading
a model file never executes code. On load the GP is rebuilt from the stored
training scores, ages and fitted kernel hyperparameters (no re-optimisation).
"""
from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np

from bagkit.errors import PredictorError
from bagkit.io.outputs import atomic_output
from bagkit.predictors import BrainAgePredictor

FORMAT = "bagkit-gpr/1"


def _block_mean(volumes: np.ndarray, factor: int) -> np.ndarray:
    """Average non-overlapping factor³ blocks of a (n, x, y, z) stack (edges trimmed)."""
    if factor <= 1:
        return volumes
    n, x, y, z = volumes.shape
    x2, y2, z2 = x // factor, y // factor, z // factor
    trimmed = volumes[:, : x2 * factor, : y2 * factor, : z2 * factor]
    return trimmed.reshape(n, x2, factor, y2, factor, z2, factor).mean(axis=(2, 4, 6))


class GaussianProcessBrainAge(BrainAgePredictor):
    """GP-regression brain age with predictive SD.

    Parameters
    ----------
    n_components : PCA components (capped at n_training − 1).
    kernel : only ``"rbf+white"`` (Constant × RBF + White noise), hyperparameters fitted
        by maximum marginal likelihood.
    downsample : block-average factor applied to the preprocessed volume (4: 160×192×160
        → 40×48×40).
    input_shape : preprocessed input shape.
    n_restarts_optimizer, seed : passed to scikit-learn.
    """

    name = "gpr"
    min_fit_scans = 3

    def __init__(
        self,
        n_components: int = 100,
        kernel: str = "rbf+white",
        downsample: int = 4,
        input_shape: Sequence[int] = (160, 192, 160),
        n_restarts_optimizer: int = 2,
        seed: int = 0,
    ):
        self.n_components = n_components
        self.kernel = kernel
        self.downsample = downsample
        self.input_shape = input_shape
        self.n_restarts_optimizer = n_restarts_optimizer
        self.seed = seed

    # ------------------------------------------------------------------ checks
    def validate_params(self) -> None:
        super().validate_params()
        self._require_int("n_components", 1)
        self._require_choice("kernel", ("rbf+white",))
        self._require_int("downsample", 1)
        self._require_int("n_restarts_optimizer", 0)
        self._require_int("seed", 0)
        if any(int(s) // int(self.downsample) < 1 for s in self.input_shape):
            raise self.param_error("downsample", self.downsample,
                                   f"at most the smallest side of input_shape {tuple(self.input_shape)}")

    def n_features(self) -> int:
        """Voxels per scan after block-averaging: the length of the mask."""
        return int(np.prod([int(s) // int(self.downsample) for s in self.input_shape]))

    def check(self) -> None:
        """Valid parameters and a fitted (or loaded) model whose arrays agree with them and with
        each other, all finite."""
        super().check()
        if getattr(self, "gp_", None) is None:
            raise PredictorError("this GP predictor is not fitted: call fit(scans, ages) or load(path) first.")
        _check_arrays({key: getattr(self, key + "_") for key in _ARRAYS}, self.n_features(),
                      "the fitted GP model")

    # ------------------------------------------------------------------ features
    def _voxels(self, volumes: np.ndarray) -> np.ndarray:
        volumes = np.asarray(volumes, dtype=np.float32)
        if volumes.ndim == 3:
            volumes = volumes[None]
        return _block_mean(volumes, int(self.downsample)).reshape(len(volumes), -1)

    def _scores(self, volumes: np.ndarray) -> np.ndarray:
        voxels = self._voxels(volumes)[:, self.mask_]
        return (voxels - self.pca_mean_) @ self.pca_components_.T

    def _make_kernel(self, length_scale: float, amplitude: float, noise: float):
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

        if self.kernel != "rbf+white":
            raise PredictorError(f"kernel must be 'rbf+white', not {self.kernel!r}.")
        return (
            ConstantKernel(amplitude, (1e-3, 1e3)) * RBF(length_scale, (1e-3 * length_scale, 1e3 * length_scale))
            + WhiteKernel(noise, (1e-5, 1e1))
        )

    def _build_gp(self, kernel, optimizer: bool):
        from sklearn.gaussian_process import GaussianProcessRegressor

        return GaussianProcessRegressor(
            kernel=kernel, normalize_y=True, optimizer="fmin_l_bfgs_b" if optimizer else None,
            n_restarts_optimizer=int(self.n_restarts_optimizer) if optimizer else 0,
            random_state=int(self.seed),
        )

    # ------------------------------------------------------------------ API
    def fit(self, scans, ages) -> "GaussianProcessBrainAge":
        """Fit PCA and the GP on healthy controls' scans and ages."""
        from sklearn.decomposition import PCA

        self.validate_params()
        items, ages = self.validate_fit_input(scans, ages)
        volumes = self.load_scans(items)
        voxels = self._voxels(volumes)
        self.mask_ = np.abs(voxels).mean(axis=0) > 1e-3
        if not self.mask_.any():
            raise PredictorError("fit: the training scans are empty after preprocessing.")
        n_components = int(min(self.n_components, len(volumes) - 1, int(self.mask_.sum())))
        pca = PCA(n_components=n_components, svd_solver="full" if voxels.shape[1] < 5000 else "randomized",
                  random_state=int(self.seed))
        pca.fit(voxels[:, self.mask_])
        self.pca_mean_ = pca.mean_.astype(np.float64)
        self.pca_components_ = pca.components_.astype(np.float64)
        scores = self._scores(volumes)
        distances = np.sqrt(((scores[:, None, :] - scores[None, :, :]) ** 2).sum(-1))
        length_scale = float(np.median(distances[np.triu_indices(len(scores), 1)])) or 1.0
        gp = self._build_gp(self._make_kernel(length_scale, 1.0, 0.1), optimizer=True)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*close to the specified (upper|lower) bound.*")
            gp.fit(scores, ages)
        self.gp_ = gp
        self.train_scores_ = scores
        self.train_ages_ = ages
        self.kernel_theta_ = np.asarray(gp.kernel_.theta, dtype=np.float64)
        return self

    def predict_arrays(self, volumes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if getattr(self, "gp_", None) is None:
            raise PredictorError("this GP predictor is not fitted: call fit(scans, ages) or load(path) first.")
        mean, sd = self.gp_.predict(self._scores(volumes), return_std=True)
        return np.asarray(mean, dtype=float), np.asarray(sd, dtype=float)

    def save(self, path) -> Path:
        """Write an ``.npz`` of plain arrays (no pickles), atomically."""
        if getattr(self, "gp_", None) is None:
            raise PredictorError("nothing to save: the GP predictor is not fitted.")
        path = self.model_path(path)
        params = dict(self.get_params())
        params["input_shape"] = [int(s) for s in params["input_shape"]]
        with atomic_output(path) as tmp:
            np.savez_compressed(
                tmp,
                format=np.array(FORMAT),
                params=np.array(json.dumps(params)),
                mask=self.mask_,
                pca_mean=self.pca_mean_,
                pca_components=self.pca_components_,
                train_scores=self.train_scores_,
                train_ages=self.train_ages_,
                kernel_theta=self.kernel_theta_,
            )
        return path

    @classmethod
    def model_path(cls, path) -> Path:
        """``path`` with ``.npz`` added unless it ends so (what :meth:`save` writes)."""
        path = Path(path)
        return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")

    @classmethod
    def _load(cls, path: Path) -> "GaussianProcessBrainAge":
        """Read a model written by :meth:`save` (arrays only; ``allow_pickle=False``), checking its
        keys, shapes and values first. Through :meth:`load`, which applies overrides and checks."""
        try:
            with np.load(path, allow_pickle=False) as stored:
                data = {key: stored[key] for key in stored.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
            raise PredictorError(
                f"{path}: not a bagkit GP model file (.npz of arrays written by `bagkit train -p gpr`) — "
                f"{type(error).__name__}: {error}"
            ) from error
        if not isinstance(data, dict) or str(data.get("format", "")) != FORMAT:
            raise PredictorError(f"{path}: not a {FORMAT} file (format field is {data.get('format')!r}); "
                                 f"expected a model written by `bagkit train -p gpr`.")
        missing = [key for key in ("params", *_ARRAYS) if key not in data]
        if missing:
            raise PredictorError(f"{path}: the {FORMAT} file lacks the arrays {missing}; expected "
                                 f"{['format', 'params', *_ARRAYS]}.")
        try:
            params = json.loads(str(data["params"]))
            if not isinstance(params, dict):
                raise ValueError(f"a {type(params).__name__}, not an object")
            params["input_shape"] = tuple(params["input_shape"])
            predictor = cls(**params)
        except (ValueError, KeyError, TypeError) as error:
            raise PredictorError(f"{path}: its 'params' entry is not the JSON object of GP parameters "
                                 f"save() writes ({type(error).__name__}: {error}).") from error
        try:
            predictor.validate_params()
        except PredictorError as error:
            raise PredictorError(f"{path}: {error}") from error
        _check_arrays({key: data[key] for key in _ARRAYS}, predictor.n_features(), path)
        predictor.mask_ = data["mask"].astype(bool)
        predictor.pca_mean_ = data["pca_mean"].astype(np.float64)
        predictor.pca_components_ = data["pca_components"].astype(np.float64)
        predictor.train_scores_ = data["train_scores"].astype(np.float64)
        predictor.train_ages_ = data["train_ages"].astype(np.float64)
        predictor.kernel_theta_ = data["kernel_theta"].astype(np.float64)
        kernel = predictor._make_kernel(1.0, 1.0, 0.1).clone_with_theta(predictor.kernel_theta_)
        gp = predictor._build_gp(kernel, optimizer=False)
        try:
            gp.fit(predictor.train_scores_, predictor.train_ages_)
        except (ValueError, np.linalg.LinAlgError) as error:
            raise PredictorError(f"{path}: the stored GP cannot be rebuilt ({type(error).__name__}: {error}).") \
                from error
        predictor.gp_ = gp
        return predictor


_ARRAYS = ("mask", "pca_mean", "pca_components", "train_scores", "train_ages", "kernel_theta")


def _check_arrays(arrays: dict, n_features: int, source) -> None:
    """The stored arrays agree with each other and with the parameters, and are finite."""
    mask = np.asarray(arrays["mask"])
    expected = {"mask": f"({n_features},) booleans (one per voxel after downsampling input_shape)"}
    problems = []
    if mask.ndim != 1 or len(mask) != n_features or mask.dtype.kind not in "biu":
        problems.append(f"mask has shape {mask.shape} ({mask.dtype}), expected {expected['mask']}")
    else:
        n_voxels = int(mask.astype(bool).sum())
        n_train = len(np.atleast_1d(arrays["train_ages"]))
        k = np.asarray(arrays["pca_components"]).shape[0] if np.asarray(arrays["pca_components"]).ndim == 2 else -1
        shapes = {"pca_mean": (n_voxels,), "pca_components": (k, n_voxels), "train_scores": (n_train, k),
                  "train_ages": (n_train,), "kernel_theta": (3,)}
        for key, shape in shapes.items():
            found = np.asarray(arrays[key]).shape
            if found != shape or k < 1:
                problems.append(f"{key} has shape {found}, expected {shape}")
        if n_voxels == 0:
            problems.append("the mask selects no voxel")
    if not problems:
        bad = [key for key in _ARRAYS if key != "mask"
               and not np.all(np.isfinite(np.asarray(arrays[key], dtype=np.float64)))]
        if bad:
            problems.append(f"{', '.join(bad)} hold NaN or infinite values; expected finite numbers")
    if problems:
        raise PredictorError(f"{source}: not a usable {FORMAT} model: " + "; ".join(problems) + ".")
