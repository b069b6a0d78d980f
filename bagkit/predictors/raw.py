"""Brain age from raw T1 scans: :mod:`bagkit.imaging.pipeline` (N4, skull stripping, MNI affine
registration, QC; cached by scan content), then :func:`bagkit.predictors.predict_cohort` on the
preprocessed scans. Nothing heavy is imported until it runs."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd

from bagkit.predictors.batch import predict_cohort

__all__ = ["QC_COLUMNS", "predict_from_raw"]

#: the preprocessing's per-subject columns that travel with the predictions (the report's QC page,
#: and the volumes the cohort may lack)
QC_COLUMNS = ("preprocess_status", "preprocess_flags", "icv_ml", "brain_volume_ml", "qc_template_correlation",
              "qc_template_dice", "qc_picture")


def predict_from_raw(frame: pd.DataFrame, predictor, store, base_dir=".", cache_dir=None, keep_flagged: bool = False,
                     progress: bool = True, say: Callable[[str], None] | None = None, scheduler=None,
                     workers=None) -> pd.DataFrame:
    """``predict_cohort`` on the preprocessed versions of the ``scan`` column's raw T1s.

    Each raw scan is preprocessed into ``store`` (one folder per input SHA-256; a rerun reads it
    back); scans that QC flagged are left out unless ``keep_flagged``. With ``scheduler`` or
    ``workers`` both stages run on Dask, on one cluster: one task per scan to preprocess (the
    workers write into ``store``: with ``scheduler`` it must be on a filesystem they share), then
    the prediction (:mod:`bagkit.predictors.distributed`). Returns the predictions
    with the columns of :data:`QC_COLUMNS` and ``preprocessed_scan`` (the file predicted) added; a scan the preprocessing left out has its reason
    in ``prediction_error``."""
    from bagkit.imaging.pipeline import preprocess_cohort

    say = say or (lambda message: None)
    say(f"preprocessing raw scans into {store}" + (" on Dask" if scheduler is not None or workers is not None else ""))
    if scheduler is None and workers is None:
        done = preprocess_cohort(frame, base_dir=base_dir, out_dir=Path(store), keep_flagged=keep_flagged,
                                 progress=say)
        prepared = frame.copy()
        prepared["scan"] = done.scans
        predicted = predict_cohort(prepared, predictor, base_dir=base_dir, cache_dir=cache_dir, progress=progress)
    else:  # one Dask cluster for both stages (started only if a stage has work for it); Dask imported only here
        from bagkit.predictors.distributed import shared_cluster
        from bagkit.predictors.preprocess_distributed import cohort_runner

        runner = cohort_runner(scheduler=scheduler, workers=workers, bar=progress, progress=say)
        with shared_cluster(scheduler, workers):
            done = preprocess_cohort(frame, base_dir=base_dir, out_dir=Path(store), keep_flagged=keep_flagged,
                                     progress=say, runner=runner)
            prepared = frame.copy()
            prepared["scan"] = done.scans
            predicted = predict_cohort(prepared, predictor, base_dir=base_dir, cache_dir=cache_dir,
                                       progress=progress, scheduler=scheduler, workers=workers)
    reasons = done.status["preprocess_error"]
    left_out = reasons.notna() & done.scans.isna()
    predicted.loc[left_out, "prediction_error"] = "preprocessing: " + reasons[left_out].astype(str)
    # the file each prediction read: the report's example inputs (Figure 1 D-G) show that one, not the raw scan
    predicted["preprocessed_scan"] = done.scans.astype(object).where(done.scans.notna(), "")
    for column in QC_COLUMNS:
        values = done.status[column]
        numeric = column.endswith("_ml") or column.startswith("qc_template")
        predicted[column] = values.astype(float) if numeric else values.fillna("")
    status = done.status["preprocess_status"]
    say(f"preprocessing: {int((status == 'ok').sum())} passed, {int((status == 'flagged').sum())} flagged, "
        f"{int((status == 'error').sum())} failed, {int((status == 'passed through').sum())} passed through")
    return predicted
