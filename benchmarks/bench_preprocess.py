"""Raw T1 → brain age: seconds per step per scan, beside the prediction alone.

Synthetic raw heads (``bagkit._testing.heads``: the MNI152 2009a brain in scalp/skull/CSF
shells, moved by a random affine, bias field, noise; voxels ``--voxels``, 1.0×1.0×1.2 mm by
default, a typical research T1) go through ``bagkit.imaging.pipeline`` step by step:
check + reorient (load), N4, skull stripping (deepbet), affine registration (SimpleITK),
resampling to the template grid, QC, writing the outputs; then SFCN (random weights, 40 bins,
the published architecture) predicts from the preprocessed scan. Wall seconds and CPU
seconds (all threads of this process) per step are printed per scan and as the median, with
the total raw→age beside the prediction alone, the Dice of the mask against the template's
and the mean displacement error against the true affine, and the load average (on a shared
machine other work slows every wall time; CPU seconds are steadier).

    .venv/bin/python benchmarks/bench_preprocess.py --scans 2          # ~2-4 min on 2 idle cores
    .venv/bin/python benchmarks/bench_preprocess.py --order register-first

deepbet and SFCN use the GPU when torch sees one; SimpleITK steps stay on the CPU.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np


def _timed(function, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scans", type=int, default=2)
    parser.add_argument("--voxels", default="1.0,1.0,1.2", help="voxel size of the raw scans, mm")
    parser.add_argument("--order", default="strip-first", choices=["strip-first", "register-first"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--device", default="auto", help="SFCN device (auto, cpu, cuda)")
    args, _ = parser.parse_known_args()

    import SimpleITK as sitk
    import torch

    from bagkit._testing.heads import make_raw_head, template_head
    from bagkit.imaging import pipeline, qc
    from bagkit.imaging.itk import from_sitk, mni_template, to_sitk, transform_points
    from bagkit_sfcn import SFCNBrainAge

    voxels = tuple(float(v) for v in args.voxels.split(","))
    load_before = os.getloadavg()
    template = mni_template()
    template_head()
    pipeline._template_images()
    pipeline._brain_extractor()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_sfcn import make_weights  # random SFCN weights of the published layout (40 bins)

    weights_file = tempfile.NamedTemporaryFile(suffix=".pt", delete=False)
    torch.save(make_weights(), weights_file.name)
    predictor = SFCNBrainAge(weights=weights_file.name, device=args.device, progress=False)
    predictor.predict_arrays(np.zeros((1, 160, 192, 160), dtype=np.float32))  # warm up (model, threads)
    points = np.argwhere(template.mask)[::97]
    ras = points @ template.affine[:3, :3].T + template.affine[:3, 3]
    options = pipeline.PreprocessOptions(order=args.order)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for i in range(args.scans):
            head = make_raw_head(np.random.default_rng(args.seed + i), voxel_mm=voxels)
            path = Path(folder) / f"sub-{i + 1:02d}_T1w.nii.gz"
            nib.save(head.image, str(path))
            times = {}
            image, *times["load"] = _timed(pipeline.check_raw_t1, path)
            data, affine = np.asarray(image.dataobj, dtype=np.float32), image.affine
            native, *times["n4"] = _timed(pipeline.n4_correct, to_sitk(data, affine))
            data = from_sitk(native)[0]
            fixed, fixed_mask = pipeline._template_images()
            if args.order == "strip-first":
                mask, *times["strip"] = _timed(pipeline.skull_strip, data, affine)
                brain = to_sitk(np.where(mask, data, 0).astype(np.float32), affine)
                (transform, _), *times["register"] = _timed(pipeline.register_affine, fixed, brain, fixed_mask)
                mask_t, *times["resample"] = _timed(
                    lambda: pipeline._resample(to_sitk(mask.astype(np.float32), affine), template, transform) >= .5)
            else:
                (transform, _), *times["register"] = _timed(pipeline.register_affine, fixed, native, fixed_mask)
                head_t, *times["resample"] = _timed(pipeline._resample, native, template, transform)
                mask_t, *times["strip"] = _timed(pipeline.skull_strip, head_t, template.affine)
            # the whole pipeline with its file outputs, as `bagkit preprocess` runs it
            done, *times["pipeline"] = _timed(pipeline.preprocess_scan, path, Path(folder) / "out", options)
            _, *times["predict"] = _timed(lambda: predictor.predict_arrays(predictor.load_scan(done.t1)[None]))
            estimated = transform_points(sitk.ReadTransform(str(done.files["transform"])), ras)
            truth = ras @ head.true_affine[:3, :3].T + head.true_affine[:3, 3]
            final_mask = np.asarray(nib.load(str(done.mask)).dataobj) > 0
            rows.append({"times": times, "dice": qc.dice(final_mask, template.mask),
                         "displacement": float(np.linalg.norm(estimated - truth, axis=1).mean()),
                         "shape": image.shape, "flags": done.flags})
            del mask_t
    steps = ["load", "n4", "strip", "register", "resample", "pipeline", "predict"]
    print(f"raw T1 -> brain age, {args.scans} synthetic scan(s) of {voxels} mm, order {args.order}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads "
          f"{torch.get_num_threads()}, cuda {torch.cuda.is_available()}")
    print(f"{'scan':<6}" + "".join(f"{s:>18}" for s in steps) + f"{'raw->age':>12}{'Dice':>8}{'disp mm':>9}")
    for i, row in enumerate(rows, start=1):
        t = row["times"]
        print(f"{i:<6}" + "".join(f"{t[s][0]:8.1f}s ({t[s][1]:5.1f})" for s in steps)
              + f"{t['pipeline'][0] + t['predict'][0]:11.1f}s{row['dice']:8.3f}{row['displacement']:9.2f}"
              + (f"  flags: {','.join(row['flags'])}" if row["flags"] else ""))
    median = {s: float(np.median([r["times"][s][0] for r in rows])) for s in steps}
    print(f"{'median':<6}" + "".join(f"{median[s]:8.1f}s{'':>8}" for s in steps)
          + f"{median['pipeline'] + median['predict']:11.1f}s")
    print("(wall seconds, CPU seconds of this process in brackets; 'pipeline' = the whole of bagkit preprocess "
          "for the scan, steps + writing the outputs; 'predict' = SFCN alone on the preprocessed scan)")
    print(f"load average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}")
    os.unlink(weights_file.name)


if __name__ == "__main__":
    main()
