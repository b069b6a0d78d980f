"""Shared fixtures: paths of the bundled example cohort and a small synthetic cohort."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rtools import EXAMPLE_COHORT, EXAMPLE_VISITS, ROOT, rscript  # noqa: F401  (re-exported)


@pytest.fixture
def small_cohort_csv(tmp_path) -> Path:
    """A small three-group cohort with every Table 1 column (synthetic, seeded)."""
    rng = np.random.default_rng(7)
    rows = []
    for group, n, shift in (("NMOSD", 40, 5.0), ("RRMS", 40, 13.0), ("HC", 50, 0.8)):
        for i in range(n):
            age = float(rng.uniform(18, 65))
            patient = group != "HC"
            rows.append(dict(
                subject_id=f"{group}-{i:03d}", group=group, age=round(age, 1), sex=rng.choice(["F", "M"]),
                center=f"C{rng.integers(1, 4)}",
                edss=float(rng.choice(np.arange(0, 9.5, 0.5))) if patient else None,
                age_at_diagnosis=round(age - rng.uniform(0, 3), 1) if patient else None,
                disease_duration=round(abs(rng.normal(4, 4)), 1) if patient else None,
                dmt=int(rng.integers(0, 2)) if patient else None,
                aqp4=rng.choice(["pos", "neg", ""]) if group == "NMOSD" else "",
                brain_volume_ml=round(rng.normal(1100, 100), 1), icv_ml=round(rng.normal(1450, 80), 1),
                lesion_volume_ml=round(abs(rng.normal(5, 6)), 1) if patient else None,
                brain_age=round(age + rng.normal(shift, 8), 2), brain_age_sd=round(abs(rng.normal(5, 2)), 2)))
    path = tmp_path / "cohort.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path
