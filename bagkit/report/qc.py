"""The "Preprocessing QC" section: the QC table of the scans bagkit preprocessed and a montage of
the QC pictures of every flagged scan and a sample of passed ones. Formatting only: the numbers and
the choice of pictures come from the ``preprocessing_qc`` result (bagkit.analyses.preprocessing)."""
from __future__ import annotations

from pathlib import Path

from reportlab.platypus import Image, Table

from bagkit.imaging import qc as thresholds
from bagkit.report import format as fmt
from bagkit.report.layout import CONTENT_WIDTH, gap, paper_table, paragraph


def flowables(results, figures_dir) -> list:
    result = results.preprocessing_qc
    if result is None:
        return []
    counts = result.counts()
    flow = [paragraph("Preprocessing QC", "heading"),
            paragraph(f"{counts['ok']} scans passed, {counts['flagged']} were flagged, {counts['error']} failed"
                      + (f", {counts['passed through']} were declared preprocessed and passed through"
                         if counts["passed through"] else "") + ".", "body"), gap(1.5),
            paragraph("Preprocessing QC per scan: correlation (r) and brain-mask Dice against the MNI152 2009a "
                      "template after registration, and the mask volume (ICV estimate)", "caption")]
    rows = [["Subject", "Group", "Status", "Flags", "r", "Dice", "ICV, ml"]]
    for _, row in result.table.iterrows():
        rows.append([row["subject_id"], row["group"], row["status"], row["flags"].replace(";", ", "),
                     fmt.number(row["qc_template_correlation"], 3), fmt.number(row["qc_template_dice"], 3),
                     fmt.number(row["icv_ml"], 0)])
    widths = [w * CONTENT_WIDTH for w in (0.17, 0.12, 0.13, 0.26, 0.1, 0.1, 0.12)]
    flow += [paper_table(rows, widths), gap(1.5),
             paragraph(f"Flags: registration_failed when r < {thresholds.MIN_TEMPLATE_CORRELATION} or Dice < "
                       f"{thresholds.MIN_TEMPLATE_DICE}; mask_implausible when the mask volume lies outside "
                       f"{thresholds.MASK_VOLUME_RANGE_ML[0]:.0f}–{thresholds.MASK_VOLUME_RANGE_ML[1]:.0f} ml; "
                       f"fov_cut when more than {thresholds.MAX_OUTSIDE_FOV_FRACTION:.0%} of the template brain "
                       f"falls outside the scan. Flagged scans were left out of the prediction unless "
                       f"--keep-flagged (see the notes). Steps and thresholds: docs/preprocessing.md.", "note")]
    pictures = [(subject, label, Path(path)) for subject, label, path in result.montage if Path(path).is_file()]
    if pictures:
        flow += [gap(3), paragraph("QC pictures: every flagged scan and a sample of passed ones (registered T1; "
                                   "red: brain mask; cyan: template brain)", "caption")]
        cells = []
        for subject, label, path in pictures:
            image = Image(str(path))
            scale = CONTENT_WIDTH / 2.1 / image.imageWidth
            image.drawWidth, image.drawHeight = image.imageWidth * scale, image.imageHeight * scale
            cells.append([paragraph(f"{subject}: {label}", "note"), image])
        grid = [cells[i:i + 2] for i in range(0, len(cells), 2)]
        grid[-1] += [""] * (2 - len(grid[-1]))
        flow.append(Table([[c if c == "" else Table([[c[0]], [c[1]]]) for c in line] for line in grid],
                          colWidths=[CONTENT_WIDTH / 2] * 2))
    return flow
