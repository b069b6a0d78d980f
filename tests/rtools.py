"""Paths of the bundled example cohort and an Rscript runner, shared by the R cross-check tests.

(Its own module, not conftest.py: tests/predictors has a conftest.py too, and ``from conftest
import ...`` would find whichever was imported first.)"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_COHORT = ROOT / "examples" / "cohort.csv"
EXAMPLE_VISITS = ROOT / "examples" / "visits.csv"


def rscript(*args: str, cwd=None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run Rscript; fail the test with R's own message when it fails."""
    if shutil.which("Rscript") is None:
        pytest.fail("Rscript not found: R is required for the cross-checks (bash scripts/setup.sh installs it)")
    done = subprocess.run(["Rscript", "--vanilla", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    if done.returncode != 0:
        pytest.fail(f"Rscript {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done
