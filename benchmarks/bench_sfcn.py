"""SFCN inference speed at 160×192×160: bagkit's predictor against a naive fp32 reference.

Both run the same weights (the published architecture, UK Biobank layout: 40 age
bins; random weights whose last layer is scaled by ``--head-scale``, 100 by default
— a random network's pooled features barely differ between scans, so without it
every scan gets the same age; the scaling magnifies bf16 rounding as much as the
differences between scans, so |Δ brain age| is a stringent check, and at ×1000 the
bf16 probe exceeds 0.1 y and bagkit falls back to fp32, as it should) on the same inputs (the MNI152 T1 from nilearn, preprocessed, with noise and
shifts), in the same process:

- reference: ``model.eval()``, contiguous fp32 NCDHW tensors, ``torch.no_grad()``,
  torch's default threads, one scan at a time;
- bagkit: ``SFCNBrainAge.predict_arrays`` — BatchNorm folded, channels-last 3-D,
  ``torch.inference_mode``, bf16 when the probe keeps every age within 0.1 y of fp32,
  and on a CPU the first two blocks computed in depth slabs that are pooled while in
  cache (``bagkit_sfcn.model.SlabInference``).

The two alternate for ``--rounds`` rounds (so that other load on a shared machine
hits both alike) and the medians are reported. Prints both times per scan, the
ratio and the largest |Δ brain age|, then NIfTI loading + preprocessing
throughput, and the load average before and after. Run:
``.venv/bin/python benchmarks/bench_sfcn.py`` (``--scans 4 --rounds 3`` by default,
about a minute on 2 cores; ``--device cuda`` on a GPU machine).
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from bagkit import imaging
from bagkit_sfcn import SFCN, SFCNBrainAge
from bagkit_sfcn.model import distribution_moments


def make_weights(head_scale: float = 100.0, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    model = SFCN(n_bins=40)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm3d):
                module.running_mean.uniform_(-0.05, 0.05)
                module.running_var.uniform_(0.5, 1.5)
        model.classifier.conv_6.weight.mul_(float(head_scale))
    return {f"module.{k}": v for k, v in model.state_dict().items()}  # as the authors saved it


def make_inputs(n: int, seed: int = 0) -> tuple[list[np.ndarray], nib.Nifti1Image]:
    from nilearn import datasets

    t1 = datasets.load_mni152_template(resolution=1)
    base = np.asarray(t1.dataobj, dtype=np.float32)
    rng = np.random.default_rng(seed)
    volumes = []
    for _ in range(n):
        data = np.roll(base, tuple(rng.integers(-3, 4, 3)), axis=(0, 1, 2)) * rng.uniform(0.9, 1.1)
        data = np.where(base > 0, data + rng.normal(0, 0.02, base.shape).astype(np.float32), 0)
        volumes.append(imaging.preprocess(nib.Nifti1Image(data.astype(np.float32), t1.affine)))
    return volumes, t1


def reference_model(state: dict, device: str) -> SFCN:
    """The naive reference: the published module as written, fp32, NCDHW, eval mode."""
    model = SFCN(n_bins=40)
    model.load_state_dict({k[len("module."):]: v for k, v in state.items()})
    return model.eval().to(device)


def reference_predict(model: SFCN, volumes, centers, device: str) -> tuple[np.ndarray, float]:
    ages, start = [], time.perf_counter()
    with torch.no_grad():
        for volume in volumes:
            log_p = model(torch.from_numpy(volume)[None, None].to(device))
            ages.append(distribution_moments(log_p, centers)[0][0])  # .cpu() inside: synchronises
    return np.asarray(ages), (time.perf_counter() - start) / len(volumes)


def bagkit_predict(predictor: SFCNBrainAge, volumes) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    ages, _ = predictor.predict_arrays(np.stack(volumes))
    return ages, (time.perf_counter() - start) / len(volumes)


def load_average() -> str:
    try:
        return " ".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:  # pragma: no cover - not Unix
        return "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating reference/bagkit rounds; medians are reported")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=2, help="bagkit's inference batch size")
    parser.add_argument("--head-scale", type=float, default=100.0,
                        help="factor on the random last layer (spreads the ages; magnifies rounding)")
    args = parser.parse_args()

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"default threads {torch.get_num_threads()}, device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""))
    print(f"load average before: {load_average()}")
    volumes, t1 = make_inputs(args.scans)
    state = make_weights(args.head_scale)
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "run_20190719_00_epoch_best_mae.p"
        torch.save(state, str(weights))
        predictor = SFCNBrainAge(weights=weights, predict_batch_size=args.batch, device=args.device, progress=False)
        start = time.perf_counter()
        predictor.predict_arrays(np.stack(volumes[:args.batch]))  # loads weights, probes bf16 vs fp32, warms up
        first_call = time.perf_counter() - start
        reference = reference_model(state, args.device)
        reference_predict(reference, volumes[:1], predictor.bin_centers_, args.device)  # warm-up

        # Alternate the two so that other load on the machine hits both alike.
        naive_times, fast_times, ratios = [], [], []
        for _ in range(max(1, args.rounds)):
            ages_ref, naive = reference_predict(reference, volumes, predictor.bin_centers_, args.device)
            ages_fast, fast = bagkit_predict(predictor, volumes)
            naive_times.append(naive)
            fast_times.append(fast)
            ratios.append(naive / fast)
        naive, fast = float(np.median(naive_times)), float(np.median(fast_times))

        print(f"precision chosen: {predictor.dtype_} (probe |Δ age| bf16 vs fp32: "
              f"{getattr(predictor, 'bf16_probe_difference_', float('nan')):.4f} y); first call incl. load+probe "
              f"{first_call:.2f} s")
        print(f"naive fp32 reference : {naive:.3f} s/scan (median of {len(naive_times)} rounds of {len(volumes)} scans;"
              f" {', '.join(f'{t:.3f}' for t in naive_times)})")
        print(f"bagkit SFCN          : {fast:.3f} s/scan (batch {args.batch}; {', '.join(f'{t:.3f}' for t in fast_times)})")
        print(f"speed-up             : {naive / fast:.2f}x  (per round {', '.join(f'{r:.2f}' for r in ratios)}; "
              f"goal >= 4x)")
        print(f"largest |Δ brain age|: {np.max(np.abs(ages_fast - ages_ref)):.4f} y "
              f"(ages {ages_ref.min():.2f}–{ages_ref.max():.2f} y)")

        paths = []
        for i in range(min(4, len(volumes))):
            path = Path(tmp) / f"sub-{i}_T1w.nii.gz"
            raw = np.asarray(t1.dataobj, dtype=np.float32) * (1 + 0.01 * i)
            nib.save(nib.Nifti1Image(raw, t1.affine), str(path))
            paths.append(path)
        throughput = loader_throughput(paths)
        print(f"NIfTI load + preprocess (197×233×189 .nii.gz → 160×192×160): "
              f"{throughput['seconds_per_scan']:.3f} s/scan, {throughput['scans_per_second']:.2f} scans/s")
        print(f"load average after: {load_average()}")



def loader_throughput(paths, shape=imaging.DEFAULT_SHAPE) -> dict:
    """Time loading + preprocessing of NIfTI files: scans per second and seconds per scan."""
    paths = list(paths)
    start = time.perf_counter()
    for path in paths:
        imaging.load_and_preprocess(path, shape=shape)
    seconds = time.perf_counter() - start
    n = len(paths)
    return {"scans": n, "seconds": seconds, "seconds_per_scan": seconds / n if n else float("nan"),
            "scans_per_second": n / seconds if seconds > 0 else float("nan")}


if __name__ == "__main__":
    main()
