"""Preprocessing QC as a result: which scans passed, were flagged or failed, with their QC numbers,
and which QC pictures the report shows (every flagged or failed scan with a picture, and a sample
of the passed ones). The columns come from ``bagkit report --preprocess``
(:func:`bagkit.predictors.raw.predict_from_raw`): ``preprocess_status``, ``preprocess_flags``,
``qc_template_correlation``, ``qc_template_dice``, ``icv_ml``, ``qc_picture``. The pictures' pixels
were read when the cohort was built (:mod:`bagkit.cohort.qc`); this analysis opens no file."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bagkit.cohort.qc import MAX_FLAGGED_SHOWN, PASSED_SAMPLE, montage_rows
from bagkit.results import tidy_frame

QC_NUMBERS = ("qc_template_correlation", "qc_template_dice", "icv_ml", "brain_volume_ml")


@dataclass(frozen=True)
class PreprocessingQC:
    table: pd.DataFrame          # subject_id, group, status, flags, the QC numbers, picture
    montage: tuple[tuple[str, str, np.ndarray], ...]   # (subject_id, status/flags, RGB uint8 pixels)
    flagged_pictures: int = 0    # flagged or failed scans with a QC picture
    flagged_shown: int = 0       # of which the montage shows (up to MAX_FLAGGED_SHOWN)

    def counts(self) -> dict[str, int]:
        return {status: int((self.table["status"] == status).sum())
                for status in ("ok", "flagged", "error", "passed through")}

    def tidy(self) -> pd.DataFrame:
        rows = [("preprocessing_qc", "all", "scans", "", status, n) for status, n in self.counts().items()]
        for _, row in self.table.iterrows():
            rows.append(("preprocessing_qc", str(row["subject_id"]), "scan", "", "flagged",
                         float(row["status"] == "flagged")))
            for column in QC_NUMBERS:
                if column in row and pd.notna(row[column]):
                    rows.append(("preprocessing_qc", str(row["subject_id"]), "scan", "",
                                 column.removeprefix("qc_"), float(row[column])))
        return tidy_frame(rows)


def run_preprocessing_qc(cohort, options=None) -> PreprocessingQC | None:
    """The QC of the scans preprocessed for this report; None when nothing was preprocessed."""
    data = cohort.data
    if "preprocess_status" not in data.columns or not data["preprocess_status"].astype(str).str.len().gt(0).any():
        return None
    table = pd.DataFrame({
        "subject_id": data["subject_id"].astype(str), "group": data["group"].astype(str),
        "status": data["preprocess_status"].fillna("").astype(str),
        "flags": data.get("preprocess_flags", pd.Series("", index=data.index)).fillna("").astype(str),
    })
    for column in QC_NUMBERS:
        table[column] = pd.to_numeric(data[column], errors="coerce") if column in data.columns else np.nan
    table["picture"] = data.get("qc_picture", pd.Series("", index=data.index)).fillna("").astype(str)
    table = table.reset_index(drop=True)
    pictures = getattr(cohort, "qc_pictures", None) or {}
    # the cohort carries the pictures of the scans the montage shows (same rule, bagkit.cohort.qc)
    rows = montage_rows(table["status"], table["subject_id"].isin(list(pictures)))
    montage = tuple((r.subject_id, r.flags or r.status, pictures[r.subject_id]) for r in table.loc[rows].itertuples())
    flagged = int((table["status"].isin(["flagged", "error"]) & (table["picture"] != "")).sum())
    shown = int(table.loc[rows, "status"].isin(["flagged", "error"]).sum())
    return PreprocessingQC(table=table, montage=montage, flagged_pictures=flagged, flagged_shown=shown)


__all__ = ["PreprocessingQC", "run_preprocessing_qc", "PASSED_SAMPLE", "MAX_FLAGGED_SHOWN"]
