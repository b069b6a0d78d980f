"""Time how fast implausible input is refused: a 1 000 000-row cohort with 500 000 group labels
(two subjects each) and NIfTI headers claiming 2000³ / 1000³ voxels.

Reference figures (2-core shared machine, 27 Nov 2026): the cohort took > 9 min without an answer
before the group count was checked once, vectorised (a pass over the table per label); now it is
refused in about 4 s (6–9 s when the count was checked after parsing every column), of which
reading the 20 MB CSV is 1.9 s. The 1 MB gzip of 1000³ voxels took
23 s and > 2 GB of memory before failing; now both headers are refused in < 0.01 s.

    .venv/bin/python benchmarks/bench_bad_input.py [--rows 1000000]
"""
from __future__ import annotations

import argparse
import gzip
import io
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

import bagkit
from bagkit import imaging
from bagkit.errors import BagkitError


def refused_in(label: str, function) -> None:
    start = time.perf_counter()
    try:
        function()
        outcome = "ACCEPTED (should have been refused)"
    except BagkitError as error:
        outcome = f"refused: {str(error)[:90]}…"
    print(f"  {label:<44s} {time.perf_counter() - start:7.2f} s  {outcome}", flush=True)


def _header(shape) -> bytes:
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(np.uint8)
    header["vox_offset"] = 352
    buffer = io.BytesIO()
    header.write_to(buffer)
    return buffer.getvalue() + b"\0" * 4


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    rows = parser.parse_args().rows
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        cohort = folder / "cohort.csv"
        rng = np.random.default_rng(0)
        pd.DataFrame({"subject_id": [f"s{i}" for i in range(rows)], "group": [f"G{i // 2}" for i in range(rows)],
                      "age": rng.uniform(20, 60, rows).round(1)}).to_csv(cohort, index=False)
        print(f"cohort: {rows} rows, {rows // 2} group labels")
        refused_in("read_cohort", lambda: bagkit.read_cohort(cohort, control=None))
        for n in (2000, 1000):
            scan = folder / f"bomb{n}.nii.gz"
            member = gzip.compress(bytes(10_000_000), 9)
            with open(scan, "wb") as handle:
                handle.write(gzip.compress(_header((n, n, n))))
                if n == 1000:
                    for _ in range(100):
                        handle.write(member)
            print(f"scan: {scan.stat().st_size} bytes claiming {n}³ voxels")
            refused_in("load_t1", lambda: imaging.load_t1(scan))


if __name__ == "__main__":
    main()
