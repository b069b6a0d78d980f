"""The predictor registry: entry points, listing without importing torch, clear errors."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from bagkit.errors import PredictorError
from bagkit.predictors import registry as predictor_module


def test_builtin_predictors_are_registered():
    names = predictor_module.available_predictors()
    assert {"sfcn", "gpr"} <= set(names)
    assert names["sfcn"].value == "bagkit_sfcn:SFCNBrainAge"


def test_listing_predictors_does_not_import_torch():
    code = textwrap.dedent(
        """
        import sys, bagkit, bagkit.predictors, bagkit.imaging, bagkit.stats.bias, bagkit.stats.agreement, bagkit.imaging.lesion
        names = bagkit.predictors.available_predictors()
        assert "sfcn" in names, names
        from bagkit.cli.predictors import COMMANDS
        from click.testing import CliRunner
        from bagkit.cli.predictors import predictors_command
        result = CliRunner().invoke(predictors_command, [])
        assert result.exit_code == 0, result.output
        assert "sfcn" in result.output
        print("torch" in sys.modules, "bagkit_sfcn" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"], out.stdout + out.stderr


def test_unknown_predictor_names_the_installed_ones():
    with pytest.raises(PredictorError) as error:
        predictor_module.get_predictor("no-such-model")
    assert "no-such-model" in str(error.value) and "sfcn" in str(error.value)


def test_get_predictor_instantiates_with_options():
    gpr = predictor_module.get_predictor("gpr", n_components=7)
    assert type(gpr).__name__ == "GaussianProcessBrainAge" and gpr.n_components == 7
    with pytest.raises(PredictorError, match="does not accept"):
        predictor_module.get_predictor("gpr", no_such_option=1)


def test_broken_plugin_is_a_warning_not_a_crash(monkeypatch):
    from importlib import metadata

    good = metadata.EntryPoint("gpr", "bagkit_gpr:GaussianProcessBrainAge", "bagkit.predictors")
    malformed = metadata.EntryPoint("broken", "not a valid value!", "bagkit.predictors")
    missing = metadata.EntryPoint("ghost", "no_such_module_xyz:Model", "bagkit.predictors")
    monkeypatch.setattr(predictor_module.metadata, "entry_points",
                        lambda group: [good, malformed, missing])
    predictor_module.available_predictors.cache_clear()
    try:
        with pytest.warns(UserWarning, match="broken"):
            names = predictor_module.available_predictors()
        assert set(names) == {"gpr", "ghost"}  # listing never imports, so 'ghost' is listed
        with pytest.raises(PredictorError, match="ghost.*failed to import"):
            predictor_module.get_predictor("ghost")
    finally:
        monkeypatch.undo()
        predictor_module.available_predictors.cache_clear()
