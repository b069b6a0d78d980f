"""Issue 14: the QC montage is drawn from arrays. The preprocessing QC pictures are read once
where the data are loaded (the cohort table, or the predictions of --preprocess), downsampled,
only for the scans the montage shows (every flagged one up to a bound, and a sample of passed
ones); the analysis carries the pixels and the plot and the report draw with the PNG files gone."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import bagkit
from bagkit.analyses.preprocessing import run_preprocessing_qc
from bagkit.cohort import Cohort
from bagkit.cohort.qc import MAX_FLAGGED_SHOWN, PASSED_SAMPLE, PICTURE_WIDTH


def _qc_frame(tmp_path, statuses, relative=True):
    """A cohort with the preprocessing's QC columns and one QC PNG per scan (1260 × 482, as
    bagkit.imaging.qc.write_qc_png writes them), each filled with its own grey level."""
    n = len(statuses)
    rng = np.random.default_rng(3)
    paths = []
    for i in range(n):
        path = tmp_path / "qc" / f"s{i}_qc.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(np.full((482, 1260, 3), i % 250, np.uint8)).save(path)
        paths.append(str(path.relative_to(tmp_path)) if relative else str(path))
    return pd.DataFrame({
        "subject_id": [f"s{i}" for i in range(n)], "group": ["HC", "MS"] * (n // 2) + ["HC"] * (n % 2),
        "age": rng.uniform(30, 60, n), "brain_age": rng.uniform(30, 60, n),
        "preprocess_status": statuses,
        "preprocess_flags": ["fov_cut" if s == "flagged" else "" for s in statuses],
        "qc_template_correlation": rng.uniform(0.8, 0.99, n), "qc_template_dice": rng.uniform(0.9, 0.99, n),
        "icv_ml": rng.uniform(1300, 1600, n), "qc_picture": paths})


def _delete_pictures(tmp_path):
    for path in (tmp_path / "qc").glob("*.png"):
        path.unlink()


STATUSES = ["ok"] * 7 + ["flagged", "error", "passed through"]


def test_table_cohort_reads_the_shown_pictures_once_and_the_report_draws_without_the_files(tmp_path):
    frame = _qc_frame(tmp_path, STATUSES)
    frame.to_csv(tmp_path / "cohort.csv", index=False)
    cohort = bagkit.read_cohort(tmp_path / "cohort.csv", control="HC")
    # flagged s7, failed s8 and four passed ones evenly through s0..s6; never s9 (passed through)
    assert sorted(cohort.qc_pictures) == ["s0", "s2", "s4", "s6", "s7", "s8"]
    for subject, pixels in cohort.qc_pictures.items():
        assert pixels.dtype == np.uint8 and pixels.shape == (245, PICTURE_WIDTH, 3), "downsampled 1260 → 640"
        assert (pixels == int(subject[1:])).all(), f"{subject}'s own picture"
    _delete_pictures(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = bagkit.analyze(cohort)
    result = results.preprocessing_qc
    assert [s for s, _, _ in result.montage] == ["s7", "s8", "s0", "s2", "s4", "s6"]
    assert [label for _, label, _ in result.montage][:2] == ["fov_cut", "error"]
    from bagkit.plots.qc import qc_montage

    figure = qc_montage(result.montage)
    drawn = [ax.images[0].get_array() for ax in figure.axes if ax.images]
    assert len(drawn) == 6 and (np.asarray(drawn[0]) == 7).all()
    written = results.write(tmp_path / "out", formats=("pdf",))
    assert (tmp_path / "out" / "figures" / "qc_montage.png").is_file()
    from pypdf import PdfReader

    text = " ".join(page.extract_text() for page in PdfReader(written.pdf).pages)
    assert "QC pictures: every flagged scan and a sample of passed ones" in " ".join(text.split())


def test_predictions_carry_the_pictures_into_the_cohort(tmp_path):
    """`bagkit report --preprocess`: the pictures are read from the predictions' qc_picture paths
    when the predictions join the cohort (Cohort.with_predictions), then the files may go."""
    frame = _qc_frame(tmp_path, STATUSES, relative=False)
    table = frame[["subject_id", "group", "age"]]
    cohort = Cohort(data=table.copy(), control="HC", groups=("HC", "MS"))
    predicted = frame.drop(columns=["subject_id", "group", "age"]).assign(
        brain_age_sd=3.0, prediction_error="", brain_volume_ml=1100.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cohort = cohort.with_predictions(predicted, "gpr")
    assert sorted(cohort.qc_pictures) == ["s0", "s2", "s4", "s6", "s7", "s8"]
    _delete_pictures(tmp_path)
    result = run_preprocessing_qc(cohort)
    from bagkit.plots.qc import qc_montage

    figure = qc_montage(result.montage)
    assert sum(bool(ax.images) for ax in figure.axes) == 6
    assert cohort.subset(cohort.data["group"] == "HC").qc_pictures.keys() == cohort.qc_pictures.keys()


def test_many_flagged_scans_are_bounded_and_a_missing_picture_is_a_note(tmp_path):
    statuses = ["flagged"] * (MAX_FLAGGED_SHOWN + 6) + ["ok"] * 10
    frame = _qc_frame(tmp_path, statuses)
    (tmp_path / frame.loc[1, "qc_picture"]).unlink()  # gone before the cohort is read
    frame.to_csv(tmp_path / "cohort.csv", index=False)
    cohort = bagkit.read_cohort(tmp_path / "cohort.csv", control="HC")
    assert len(cohort.qc_pictures) == MAX_FLAGGED_SHOWN - 1 + PASSED_SAMPLE, "only what the montage shows is read"
    assert "s1" not in cohort.qc_pictures
    note = next(n for n in cohort.notes if "QC picture" in n)
    assert "s1_qc.png (not found)" in note and "left out of the montage" in note
    result = run_preprocessing_qc(cohort)
    assert result.flagged_pictures == MAX_FLAGGED_SHOWN + 6 and result.flagged_shown == MAX_FLAGGED_SHOWN - 1
    from bagkit.report import qc as section

    results = type("R", (), {"preprocessing_qc": result})()
    caption = next(b.caption for b in section.blocks(results) if getattr(b, "name", "") == "qc_montage")
    assert f"{MAX_FLAGGED_SHOWN - 1} of the {MAX_FLAGGED_SHOWN + 6} flagged scans" in caption


def test_no_qc_columns_no_pictures(small_cohort_csv):
    cohort = bagkit.read_cohort(small_cohort_csv)
    assert cohort.qc_pictures == {}
    assert run_preprocessing_qc(cohort) is None


@pytest.mark.parametrize("module", ["bagkit.plots.qc", "bagkit.report.qc", "bagkit.analyses.preprocessing"])
def test_the_montage_path_opens_no_file(module):
    """The plot, the section and the analysis read no picture: no imread, no Image.open, no path test."""
    import importlib
    import inspect

    source = inspect.getsource(importlib.import_module(module))
    for opener in ("imread", "Image.open", "is_file(", "open(", "read_picture"):
        assert opener not in source, f"{module} calls {opener}"


def test_many_pictures_go_into_figures_of_eight(tmp_path):
    """The montage is split into figures of at most PICTURES_PER_FIGURE pictures (a page each at
    most), named uniquely, in montage order."""
    from bagkit.report import qc as section
    from bagkit.report.qc import PICTURES_PER_FIGURE

    statuses = ["flagged"] * 13 + ["ok"] * 6
    frame = _qc_frame(tmp_path, statuses)
    frame.to_csv(tmp_path / "cohort.csv", index=False)
    result = run_preprocessing_qc(bagkit.read_cohort(tmp_path / "cohort.csv", control="HC"))
    assert len(result.montage) == 13 + PASSED_SAMPLE
    results = type("R", (), {"preprocessing_qc": result})()
    figures = [b for b in section.blocks(results) if getattr(b, "name", "").startswith("qc_montage")]
    assert [f.name for f in figures] == ["qc_montage", "qc_montage_2", "qc_montage_3"]
    assert figures[0].caption.startswith("QC pictures (1 of 3): every flagged scan")
    drawn = [sum(bool(ax.images) for ax in f.draw().axes) for f in figures]
    assert drawn == [PICTURES_PER_FIGURE, PICTURES_PER_FIGURE, 13 + PASSED_SAMPLE - 2 * PICTURES_PER_FIGURE]
