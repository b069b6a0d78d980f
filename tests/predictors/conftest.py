"""Shared fixtures for the predictor tests: small phantoms and NIfTI files made here."""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

SMALL = (40, 48, 40)


@pytest.fixture(scope="session")
def phantom_set():
    """300 small phantoms (40×48×40) with ages 20–80 y, normalised as preprocess() does."""
    pytest.importorskip("nilearn")
    from bagkit._testing.phantoms import make_phantoms

    rng = np.random.default_rng(2024)
    ages = rng.uniform(20, 80, 300)
    volumes = make_phantoms(ages, shape=SMALL, seed=7)
    volumes = np.stack([v / v[v != 0].mean() for v in volumes]).astype(np.float32)
    return volumes, ages


def _write_nifti(path, data, zooms=(1.0, 1.0, 1.0)):
    affine = np.diag([*zooms, 1.0])
    nib.save(nib.Nifti1Image(np.asarray(data, dtype=np.float32), affine), str(path))
    return path


@pytest.fixture
def write_nifti():
    """write_nifti(path, data, zooms=(1, 1, 1)) -> path"""
    return _write_nifti
