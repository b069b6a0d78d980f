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


