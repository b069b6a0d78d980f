"""The raw heads of the preprocessing tests, preprocessed once per session by ``bagkit preprocess``."""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner

# coarser than a research scan (keeps each scan well under the suite's budget), anisotropic
VOXELS = {"sub-01_ses-a_T1w.nii.gz": (1.3, 1.2, 1.6), "sub-02_T1w.nii.gz": (1.6, 1.3, 1.3)}


@pytest.fixture(scope="session")
def preprocessed(tmp_path_factory):
    """Two raw heads preprocessed once by the CLI; (folder, out, {name: true affine}, result)."""
    pytest.importorskip("SimpleITK")
    pytest.importorskip("deepbet")
    pytest.importorskip("nilearn")
    from bagkit._testing.heads import make_raw_head
    from bagkit.cli import cli

    folder = tmp_path_factory.mktemp("raw")
    truths = {}
    for seed, (name, voxels) in enumerate(VOXELS.items(), start=11):
        head = make_raw_head(np.random.default_rng(seed), voxel_mm=voxels)
        nib.save(head.image, str(folder / name))
        truths[name] = head.true_affine
    out = folder / "derivatives"
    result = CliRunner().invoke(cli, ["preprocess", *(str(folder / n) for n in VOXELS), "-o", str(out)])
    return folder, out, truths, result


CROP = (64, 80, 64)   # the predictor's input: the centre of the template grid (ventricles, deep GM)


@pytest.fixture(scope="session")
def phantom_model(tmp_path_factory):
    """A GP brain-age model trained on 80 cropped phantoms, ages 20–80 (its path): it reads the centre
    of the template grid, so it predicts from preprocessed scans."""
    pytest.importorskip("sklearn")
    import dataclasses

    from bagkit._testing.phantoms import make_phantom, phantom_template
    from bagkit.imaging import crop_or_pad
    from bagkit_gpr import GaussianProcessBrainAge

    full = phantom_template(None)
    fields = {f.name: getattr(full, f.name) for f in dataclasses.fields(full)}
    cropped = dataclasses.replace(full, **{name: crop_or_pad(value, CROP) for name, value in fields.items()
                                           if isinstance(value, np.ndarray) and value.ndim == 3})
    rng = np.random.default_rng(5)
    ages = rng.uniform(20, 80, 80)
    volumes = np.stack([make_phantom(a, rng, shape=CROP, template=cropped, max_shift_voxels=0.5) for a in ages])
    volumes = np.stack([v / v[v != 0].mean() for v in volumes]).astype(np.float32)
    # 4×4×4 block means (16×20×16 features): the model reads anatomy at 4 mm, not the sharpness of edges,
    # which differs between a scan interpolated twice and the template (with 2×2×2 blocks the coarser
    # head read +0.95 y older than the clean template; with 4×4×4, +0.35 y)
    model = GaussianProcessBrainAge(n_components=30, downsample=4, input_shape=CROP, n_restarts_optimizer=0)
    model.fit(volumes, ages)
    # the model must read age at all, or agreeing within 1 y would mean nothing
    held_out = [make_phantom(age, np.random.default_rng(9), shape=CROP, template=cropped) for age in (30, 70)]
    (young, old), _ = model.predict_arrays(np.stack([v / v[v != 0].mean() for v in held_out]).astype(np.float32))
    assert old - young > 25, (young, old)
    path = tmp_path_factory.mktemp("model") / "gpr.npz"
    return model.save(path)
