"""bagkit.stats.distributions against R's pt/qt/pf/pchisq/pnorm/qnorm, and the analyses without
scipy.stats, statsmodels or scipy.optimize.

Tolerance: relative 1e-9 for every probability and quantile, both tails, down to 1e-300 (R's
algorithms and Cephes' differ in the last digits only: the largest relative gap on this grid,
measured with R 4.2.2 and scipy 1.17, is 2.3e-13, for pf). Probabilities below 1e-300 are compared absolutely (both are 0 or denormal).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from itertools import product

import numpy as np
from rtools import EXAMPLE_COHORT, EXAMPLE_VISITS, ROOT, rscript

from bagkit.stats import distributions as d

RTOL = 1e-9
TINY = 1e-300

T_X = [-40, -12, -5, -2, -0.5, 0, 0.3, 1.96, 4, 9, 40]
T_DF = [1, 2, 3.5, 10, 30, 117, 1000, 1e5, 1e7]
PROBABILITIES = [1e-15, 1e-8, 1e-4, 0.001, 0.025, 0.2, 0.5, 0.8, 0.975, 0.999, 1 - 1e-8]
F_X = [0.01, 0.5, 1, 2.5, 8, 40, 300]
F_DF1 = [1, 2, 5, 31]
F_DF2 = [1, 4, 50, 1000, 1e5]
CHI_X = [0.001, 0.5, 1, 3.84, 10, 50, 200, 1500]
CHI_DF = [1, 2, 5, 30, 200]
Z = [-38, -20, -8, -3, -1.96, -0.1, 0, 1, 5, 10, 37]
NORMAL_P = [1e-300, 1e-100, 1e-20, 1e-8, 0.025, 0.3, 0.5, 0.975, 1 - 1e-10]


def _r(expression: str) -> np.ndarray:
    out = rscript("-e", f"cat(sprintf('%.17g', {expression}), sep = '\\n')").stdout.split()
    return np.array(out, float)


def _vector(values) -> str:
    return "c(" + ", ".join(repr(float(v)) for v in values) + ")"


def _close(ours, r):
    ours, r = np.asarray(ours, float), np.asarray(r, float)
    assert ours.shape == r.shape
    small = np.abs(r) < TINY
    np.testing.assert_allclose(ours[~small], r[~small], rtol=RTOL, atol=0)
    np.testing.assert_allclose(ours[small], r[small], rtol=0, atol=TINY)


def test_t_distribution_matches_r():
    x, df = map(np.array, zip(*product(T_X, T_DF)))
    _close(d.t_cdf(x, df), _r(f"pt({_vector(x)}, {_vector(df)})"))
    _close(d.t_sf(x, df), _r(f"pt({_vector(x)}, {_vector(df)}, lower.tail = FALSE)"))
    _close(d.two_sided_t_p(x, df), _r(f"2 * pt(-abs({_vector(x)}), {_vector(df)})"))
    p, df = map(np.array, zip(*product(PROBABILITIES, T_DF)))
    _close(d.t_ppf(p, df), _r(f"qt({_vector(p)}, {_vector(df)})"))
    assert isinstance(d.t_ppf(0.975, 10), float) and isinstance(d.two_sided_t_p(2.0, 10), float)


def test_f_distribution_matches_r():
    x, df1, df2 = map(np.array, zip(*product(F_X, F_DF1, F_DF2)))
    _close(d.f_sf(x, df1, df2), _r(f"pf({_vector(x)}, {_vector(df1)}, {_vector(df2)}, lower.tail = FALSE)"))


def test_chi_square_matches_r():
    x, df = map(np.array, zip(*product(CHI_X, CHI_DF)))
    _close(d.chi2_sf(x, df), _r(f"pchisq({_vector(x)}, {_vector(df)}, lower.tail = FALSE)"))


def test_normal_matches_r():
    _close(d.norm_cdf(Z), _r(f"pnorm({_vector(Z)})"))
    _close(d.norm_sf(Z), _r(f"pnorm({_vector(Z)}, lower.tail = FALSE)"))
    _close(d.norm_ppf(NORMAL_P), _r(f"qnorm({_vector(NORMAL_P)})"))


def test_nan_propagates():
    assert np.isnan(d.two_sided_t_p(np.nan, 5)) and np.isnan(d.f_sf(np.nan, 1, 5))
    assert np.isnan(d.chi2_sf(np.nan, 2)) and np.isnan(d.norm_sf(np.nan))
    assert d.two_sided_t_p(np.inf, 5) == 0.0 and d.f_sf(np.inf, 2, 5) == 0.0


HEAVY = ("scipy.stats", "statsmodels", "scipy.optimize")
_ANALYZE = f"""
import json, sys
import bagkit
results = bagkit.analyze(bagkit.read_cohort({str(EXAMPLE_COHORT)!r}, visits={str(EXAMPLE_VISITS)!r}))
print(json.dumps({{"loaded": [m for m in {HEAVY!r} if m in sys.modules],
                   "sections": sorted(results.sections), "rows": len(results.tidy())}}))
"""


def test_analysis_imports_neither_scipy_stats_nor_statsmodels_nor_optimize():
    """The whole analysis of the example cohort (every section: Table 1, Tukey, regressions,
    matching, ROC cutoffs, Kaplan–Meier/Cox, agreement) in a fresh process, in one process
    (BAGKIT_NO_FORK), leaves scipy.stats, statsmodels and scipy.optimize unimported: together they
    cost ~2 s, paid twice when R's sections run in a forked child. The numbers themselves are
    compared with R by the other tests."""
    env = {**os.environ, "BAGKIT_NO_FORK": "1"}
    done = subprocess.run([sys.executable, "-c", _ANALYZE], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["loaded"] == [], f"the analysis imported {report['loaded']}"
    assert {"regressions", "matching", "outcomes"} <= set(report["sections"]), report["sections"]
    assert report["rows"] > 1000
