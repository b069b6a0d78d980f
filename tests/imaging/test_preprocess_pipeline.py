"""Raw T1 → MNI: synthetic heads (the MNI152 2009a brain in scalp/skull/CSF shells) moved by
known random affines (rotations ≤ 15°, shifts ≤ 20 mm, scaling ±10 %), with a smooth bias field
(±25 %), noise and anisotropic voxels stored LAS, go through ``bagkit preprocess``.

Expected values come from the construction, not from bagkit: the template's own brain mask (Dice)
and the true affine each head was moved by (displacement). Tolerances are the issue's: Dice ≥ 0.95,
mean displacement over the brain < 2 mm (a 1 mm grid; a registration that is off by a voxel
everywhere would still pass, one off by 10 mm / 10° would not — see the flag test).
"""
from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

pytest.importorskip("SimpleITK")
pytest.importorskip("deepbet")
pytest.importorskip("nilearn")

from bagkit.cli import cli  # noqa: E402
from bagkit.imaging import qc  # noqa: E402
from bagkit.imaging.itk import mni_template, transform_points  # noqa: E402
from bagkit.imaging.pipeline import output_paths  # noqa: E402

MIN_DICE = 0.95
MAX_MEAN_DISPLACEMENT_MM = 2.0


def test_outputs_have_bids_derivative_names(preprocessed):
    _, out, _, result = preprocessed
    assert result.exit_code == 0, result.output
    for stem in ("sub-01_ses-a", "sub-02"):
        files = output_paths(out, stem)
        assert files["t1"].name == f"{stem}_space-MNI152NLin2009aSym_desc-preproc_T1w.nii.gz"
        assert files["mask"].name == f"{stem}_space-MNI152NLin2009aSym_desc-brain_mask.nii.gz"
        assert files["transform"].name == f"{stem}_from-T1w_to-MNI152NLin2009aSym_mode-image_xfm.txt"
        for path in files.values():
            assert path.is_file(), path
        image = nib.load(str(files["t1"]))
        template = mni_template()
        assert image.shape == template.shape and np.allclose(image.affine, template.affine)
        data = np.asarray(image.dataobj)
        mask = np.asarray(nib.load(str(files["mask"])).dataobj) > 0
        assert np.all(data[~mask] == 0)
        assert data[mask].mean() == pytest.approx(1.0, abs=1e-4)   # divided by the mean in the mask
        assert files["qc_png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        sidecar = json.loads(files["sidecar"].read_text())
        assert len(sidecar["input_sha256"]) == 64 and sidecar["pipeline_version"]


def test_mask_dice_and_displacement_against_the_truth(preprocessed):
    import SimpleITK as sitk

    folder, out, truths, _ = preprocessed
    template = mni_template()
    points = np.argwhere(template.mask)[::97]
    ras = points @ template.affine[:3, :3].T + template.affine[:3, 3]
    for name, true_affine in truths.items():
        files = output_paths(out, name.replace("_T1w.nii.gz", ""))
        mask = np.asarray(nib.load(str(files["mask"])).dataobj) > 0
        dice = qc.dice(mask, template.mask)
        transform = sitk.ReadTransform(str(files["transform"]))   # the file, as ANTs/ITK would read it
        estimated = transform_points(transform, ras)
        truth = ras @ true_affine[:3, :3].T + true_affine[:3, 3]
        displacement = np.linalg.norm(estimated - truth, axis=1)
        print(f"{name}: Dice {dice:.4f}, displacement mean {displacement.mean():.2f} mm, "
              f"max {displacement.max():.2f} mm")
        assert dice >= MIN_DICE, name
        assert displacement.mean() < MAX_MEAN_DISPLACEMENT_MM, name


def test_qc_table_passes_good_scans(preprocessed):
    _, out, _, _ = preprocessed
    table = pd.read_csv(out / "qc.csv", keep_default_na=False)
    assert list(table["name"]) == ["sub-01_ses-a", "sub-02"]
    assert list(table["status"]) == ["ok", "ok"], table[["name", "flags", "error"]]
    assert (table["template_correlation"] >= qc.MIN_TEMPLATE_CORRELATION).all()
    assert table["input_sha256"].str.len().eq(64).all()


def test_rerun_does_nothing(preprocessed):
    folder, out, _, _ = preprocessed
    files = output_paths(out, "sub-02")
    before = {role: path.stat().st_mtime_ns for role, path in files.items()}
    result = CliRunner().invoke(cli, ["preprocess", str(folder / "sub-02_T1w.nii.gz"), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert "1 from the cache" in result.output
    assert {role: path.stat().st_mtime_ns for role, path in files.items()} == before


def test_outputs_of_another_input_are_kept_without_force(preprocessed, tmp_path):
    folder, out, _, _ = preprocessed
    other = tmp_path / "sub-02_T1w.nii.gz"   # same name, other content
    image = nib.load(str(folder / "sub-02_T1w.nii.gz"))
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj)[::-1].copy(), image.affine), str(other))
    before = output_paths(out, "sub-02")["t1"].read_bytes()
    result = CliRunner().invoke(cli, ["preprocess", str(other), "-o", str(out), "-q"])
    assert result.exit_code != 0                     # the only scan failed
    assert "--force" in result.output and "sub-02" in result.output
    assert output_paths(out, "sub-02")["t1"].read_bytes() == before


def test_a_bad_registration_is_flagged(preprocessed):
    """The good result of sub-02 moved 8 mm forward and 6 mm up off the template must be flagged."""
    _, out, _, _ = preprocessed
    template = mni_template()
    files = output_paths(out, "sub-02")
    t1 = np.asarray(nib.load(str(files["t1"])).dataobj)
    mask = np.asarray(nib.load(str(files["mask"])).dataobj) > 0
    good = qc.assess(t1, mask, 0.0, 1500.0, template)
    assert good["flags"] == "", good
    bad = qc.assess(np.roll(t1, (8, 6), axis=(1, 2)), np.roll(mask, (8, 6), axis=(1, 2)), 0.0, 1500.0, template)
    print("good", good, "bad", bad)
    assert "registration_failed" in bad["flags"].split(";")


def test_flags_follow_the_documented_thresholds():
    good = {"template_correlation": 0.95, "template_dice": 0.97, "mask_volume_ml": 1500.0,
            "outside_fov_fraction": 0.0}
    assert qc.flags(good) == []
    assert qc.flags({**good, "template_correlation": qc.MIN_TEMPLATE_CORRELATION - 0.01}) == ["registration_failed"]
    assert qc.flags({**good, "template_dice": qc.MIN_TEMPLATE_DICE - 0.01}) == ["registration_failed"]
    assert qc.flags({**good, "mask_volume_ml": qc.MASK_VOLUME_RANGE_ML[1] + 1}) == ["mask_implausible"]
    assert qc.flags({**good, "mask_volume_ml": qc.MASK_VOLUME_RANGE_ML[0] - 1}) == ["mask_implausible"]
    assert qc.flags({**good, "outside_fov_fraction": 0.1}) == ["fov_cut"]
