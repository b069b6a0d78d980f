"""The "Preprocessing QC" section: the QC table of the scans bagkit preprocessed and a montage of
the QC pictures of every flagged scan and a sample of passed ones. Formatting only: the numbers and
the choice of pictures come from the ``preprocessing_qc`` result (bagkit.analyses.preprocessing)."""
from __future__ import annotations

from bagkit.imaging import qc as thresholds
from bagkit.report import format as fmt
from bagkit.report.tables import Figure, Table, Text


def blocks(results) -> list:
    result = results.preprocessing_qc
    if result is None:
        return []
    counts = result.counts()
    out: list = [Text("Preprocessing QC", "heading"),
                 Text(f"{counts['ok']} scans passed, {counts['flagged']} were flagged, {counts['error']} failed"
                      + (f", {counts['passed through']} were declared preprocessed and passed through"
                         if counts["passed through"] else "") + ".", "body")]
    rows = []
    for _, row in result.table.iterrows():
        rows.append([row["subject_id"], row["group"], row["status"], row["flags"].replace(";", ", "),
                     fmt.number(row["qc_template_correlation"], 3), fmt.number(row["qc_template_dice"], 3),
                     fmt.number(row["icv_ml"], 0)])
    note = (f"Flags: registration_failed when r < {thresholds.MIN_TEMPLATE_CORRELATION} or Dice < "
            f"{thresholds.MIN_TEMPLATE_DICE}; mask_implausible when the mask volume lies outside "
            f"{thresholds.MASK_VOLUME_RANGE_ML[0]:.0f}–{thresholds.MASK_VOLUME_RANGE_ML[1]:.0f} ml; "
            f"fov_cut when more than {thresholds.MAX_OUTSIDE_FOV_FRACTION:.0%} of the template brain "
            f"falls outside the scan. Flagged scans were left out of the prediction unless "
            f"--keep-flagged (see the notes). Steps and thresholds: docs/preprocessing.md.")
    out.append(Table.of("preprocessing_qc", "Preprocessing QC per scan: correlation (r) and brain-mask Dice "
                        "against the MNI152 2009a template after registration, and the mask volume (ICV estimate)",
                        [["Subject", "Group", "Status", "Flags", "r", "Dice", "ICV, ml"]], rows, [note]))
    pictures = list(result.montage)
    if pictures:
        from bagkit.plots.qc import qc_montage

        shown, total = result.flagged_shown, result.flagged_pictures
        flagged = ("every flagged scan" if shown >= total
                   else f"{shown} of the {total} flagged scans (every one is in the table above)")
        caption = (f"QC pictures: {flagged} and a sample of passed ones (registered T1; red: brain mask; "
                   f"cyan: template brain)")
        # a page's worth of pictures per figure: a montage of many would be drawn too small to read
        chunks = [pictures[i:i + PICTURES_PER_FIGURE] for i in range(0, len(pictures), PICTURES_PER_FIGURE)]
        for k, chunk in enumerate(chunks, start=1):
            name = "qc_montage" if k == 1 else f"qc_montage_{k}"
            part = f" ({k} of {len(chunks)})" if len(chunks) > 1 else ""
            out.append(Figure(name, caption.replace("QC pictures:", f"QC pictures{part}:", 1),
                              lambda chunk=chunk: qc_montage(chunk)))
    return out


#: QC pictures in one figure (four rows of two): more go into further figures
PICTURES_PER_FIGURE = 8


def supplementary(results) -> list:
    return []
