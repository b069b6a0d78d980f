"""`bagkit report --predictor`: brain age predicted from the cohort's scans, cached between runs."""
from __future__ import annotations

import hashlib

import pandas as pd
import pytest
from click.testing import CliRunner


@pytest.fixture(scope="module")
def scan_cohort(tmp_path_factory):
    """16 phantom scans (HC and MS, MS brains 8 y older), a cohort CSV with a scan column and no
    brain_age, and a small GPR model trained on the controls and saved."""
    pytest.importorskip("nilearn")
    pytest.importorskip("bagkit_gpr")
    from bagkit._testing.phantoms import write_phantom_cohort
    from bagkit_gpr import GaussianProcessBrainAge

    folder = tmp_path_factory.mktemp("scan_cohort")
    path = write_phantom_cohort(folder, n=16, seed=5, groups={"HC": 0.0, "MS": 8.0})
    frame = pd.read_csv(path)
    frame["sex"] = ["F", "M"] * (len(frame) // 2)
    frame.to_csv(path, index=False)
    controls = frame[frame.group == "HC"]
    model = GaussianProcessBrainAge(input_shape=(40, 48, 40), downsample=2, n_components=5,
                                    n_restarts_optimizer=0)
    model.fit([folder / s for s in controls.scan], controls.age.to_numpy())
    saved = model.save(folder / "gpr.npz")
    return path, saved


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_report_predicts_then_reads_the_cache(scan_cohort, tmp_path, monkeypatch):
    from bagkit.cli import cli
    from bagkit_gpr import GaussianProcessBrainAge

    cohort_csv, model = scan_cohort
    before = _digest(cohort_csv)
    calls = []
    original = GaussianProcessBrainAge.predict_arrays

    def counting(self, volumes):
        calls.append(len(volumes))
        return original(self, volumes)

    monkeypatch.setattr(GaussianProcessBrainAge, "predict_arrays", counting)
    cache = tmp_path / "cache"
    runner = CliRunner()
    args = ["report", str(cohort_csv), "--predictor", "gpr", "--model", str(model), "--cache-dir", str(cache),
            "--force"]

    first = runner.invoke(cli, [*args, "-o", str(tmp_path / "first")])
    assert first.exit_code == 0, first.output
    assert sum(calls) == 16
    assert "16 of 16 subjects" in first.output  # "brain age: predicted by gpr: 16 of 16 subjects"
    assert len(list(cache.rglob("*.json"))) == 16

    calls.clear()
    second = runner.invoke(cli, [*args, "-o", str(tmp_path / "second")])
    assert second.exit_code == 0, second.output
    assert calls == []  # every prediction came from the cache

    results = [pd.read_csv(tmp_path / run / "results.csv") for run in ("first", "second")]
    pd.testing.assert_frame_equal(results[0], results[1])
    table1 = results[0]
    brain_age_rows = table1[(table1.analysis == "table1") & (table1.term == "brain_age")]
    assert len(brain_age_rows) > 0  # the predictions reached the analysis
    assert _digest(cohort_csv) == before  # the input table is never written to


def test_report_options_need_a_predictor(scan_cohort, tmp_path):
    from bagkit.cli import cli

    cohort_csv, model = scan_cohort
    result = CliRunner().invoke(cli, ["report", str(cohort_csv), "--model", str(model), "-o", str(tmp_path / "o")])
    assert result.exit_code != 0
    assert "--predictor" in result.output


def test_report_predictor_unknown_name(scan_cohort, tmp_path):
    from bagkit.cli import cli

    cohort_csv, _ = scan_cohort
    result = CliRunner().invoke(cli, ["report", str(cohort_csv), "--predictor", "nosuch", "--cache-dir",
                                      str(tmp_path / "c"), "-o", str(tmp_path / "o")])
    assert result.exit_code != 0
    assert "nosuch" in result.output and "installed" in result.output
