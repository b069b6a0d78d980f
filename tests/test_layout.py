"""Issue 12's rules of the layout: typed results, provenance captured by analyze(), one source of
defaults, convergence read from the fitter, one meaning per name, no domain logic in the CLI."""
from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys
import typing
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bagkit
from bagkit.analyses import AnalysisOptions, Results
from bagkit.analyses.run import Skip

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "cohort.csv"


def test_import_bagkit_stays_light():
    code = ("import sys, bagkit; heavy = ('torch', 'rpy2', 'matplotlib', 'reportlab', 'svglib', 'dask'); "
            "bad = [m for m in heavy if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_results_have_a_typed_field_per_section():
    hints = typing.get_type_hints(Results)
    for name in ("table1", "matching", "outcomes", "regressions", "brain_age_model", "skipped", "provenance"):
        assert name in hints, name
    assert "Mapping" not in str(hints["matching"])
    assert not hasattr(Results, "__getitem__"), "sections are fields, not string keys"


def _small_cohort(tmp_path, **columns):
    rng = np.random.default_rng(7)
    n = 60
    frame = pd.DataFrame({"subject_id": [f"S{i}" for i in range(n)], "group": ["HC", "A", "B"] * (n // 3),
                          "age": rng.uniform(30, 60, n)})
    frame["brain_age"] = frame["age"] + rng.normal(0, 4, n)
    for name, values in columns.items():
        frame[name] = values
    path = tmp_path / "cohort.csv"
    frame.to_csv(path, index=False)
    return path


def test_skips_are_data(tmp_path):
    cohort = bagkit.read_cohort(_small_cohort(tmp_path))
    results = bagkit.analyze(cohort)
    assert results.outcomes is None
    assert all(isinstance(s, Skip) for s in results.skipped)
    reason = results.skip_reason("outcomes")
    assert reason is not None and "follow-up" in reason
    assert results.skip_reason("table1") is None


def test_provenance_is_captured_when_the_analysis_runs(tmp_path):
    path = _small_cohort(tmp_path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    results = bagkit.analyze(bagkit.read_cohort(path))
    # the file changes after the analysis: the provenance still describes what was analysed
    path.write_text(path.read_text() + "\n")
    assert [(f.role, f.name, f.sha256) for f in results.provenance.inputs] == [("cohort", "cohort.csv", digest)]
    assert dict(results.provenance.software)["bagkit"] == bagkit.__version__
    assert dict(results.provenance.software)["R"] == "not used in this run"  # no matching: R never started
    pytest.importorskip("pypdf")
    from pypdf import PdfReader
    written = results.write(tmp_path / "out")
    last = PdfReader(written.pdf).pages[-1].extract_text()
    assert digest[:20] in last.replace("\n", "")


def test_one_source_of_defaults(tmp_path, monkeypatch):
    """Before: run_outcomes(cohort) bootstrapped with seed 0, analyze() with 20240101."""
    from bagkit.analyses import outcomes

    seen = []
    real = outcomes.roc_analysis

    def spy(*args, **kwargs):
        seen.append(kwargs.get("seed"))
        return real(*args, **kwargs)

    monkeypatch.setattr(outcomes, "roc_analysis", spy)
    cohort = bagkit.read_cohort(EXAMPLE, visits=ROOT / "examples" / "visits.csv")
    outcomes.run_outcomes(cohort)
    assert seen and set(seen) == {AnalysisOptions().seed}


def test_cli_defaults_are_analysis_options(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from bagkit.cli import cli

    captured = {}

    def fake_analyze(cohort, options=None, progress=None, while_waiting=None):
        captured["options"] = options
        raise bagkit.BagkitError("stop here")

    monkeypatch.setattr(bagkit, "analyze", fake_analyze)
    done = CliRunner().invoke(cli, ["report", str(_small_cohort(tmp_path)), "-o", str(tmp_path / "o"), "-q"])
    assert done.exit_code != 0 and "stop here" in done.output
    assert captured["options"] == AnalysisOptions()


def _cox_data():
    rng = np.random.default_rng(3)
    n = 120
    x = rng.normal(size=n)
    time = rng.exponential(np.exp(-0.5 * x))
    event = (rng.uniform(size=n) < 0.8).astype(float)
    return time, event, pd.DataFrame({"x": x})


def test_convergence_is_read_from_the_fit_not_from_warning_text(monkeypatch):
    """Before: any lifelines ConvergenceWarning mentioning 'converge' marked a converged model
    'DID NOT CONVERGE'; and a fit stopped early was 'converged' when lifelines' text differed.
    Now the fit is bagkit's own (Efron Newton-Raphson) and the verdict is the score left at the
    estimate: a warning changes nothing, a fit stopped after one step is not converged."""
    from bagkit.stats import survival
    from bagkit.stats.survival import cox_model

    time, event, design = _cox_data()
    real_fit = survival.efron_fit

    def noisy_fit(*args, **kwargs):
        warnings.warn("Newton-Raphson convergence completed successfully but norm(delta) is still high")
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(survival, "efron_fit", noisy_fit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cox_model(time, event, design).converged  # a warning's text is not the verdict

    monkeypatch.setattr(survival, "efron_fit", lambda *args, **kwargs: real_fit(*args, max_steps=1))
    model = cox_model(time, event, design)
    assert not model.converged
    assert any("did not reach the maximum" in note for note in model.notes)


def test_summary_is_a_dataframe_everywhere():
    from bagkit.stats.agreement import bland_altman

    rng = np.random.default_rng(1)
    a = rng.normal(50, 10, 40)
    result = bland_altman(a, a + rng.normal(0, 2, 40))
    assert isinstance(result.summary(), pd.DataFrame)
    assert "limits of agreement" in result.describe()


def test_bag_is_computed_only_by_the_cohort(tmp_path):
    """Before: the CLI merged predictions and recomputed BAG itself."""
    cohort = bagkit.read_cohort(_small_cohort(tmp_path))
    predicted = pd.DataFrame({"brain_age": cohort.data["age"] + 3.0, "brain_age_sd": 1.0,
                              "prediction_error": [""] * (len(cohort) - 1) + ["unreadable"]})
    with pytest.warns(UserWarning, match="replaced"):
        merged = cohort.with_predictions(predicted, "test", {"predictor weights": "w.p"})
    np.testing.assert_allclose(merged.data["bag"].iloc[:-1], 3.0)
    assert merged.inputs["predictor weights"] == "w.p"
    assert any("no prediction for S59" in note for note in merged.notes)
    for source in (ROOT / "bagkit" / "cli").glob("*.py"):
        text = source.read_text()
        assert '["bag"]' not in text and '["nbv"]' not in text and "icv_ml" not in text, source


def test_options_field_defaults_are_frozen_dataclass():
    assert dataclasses.is_dataclass(AnalysisOptions) and AnalysisOptions.__dataclass_params__.frozen
