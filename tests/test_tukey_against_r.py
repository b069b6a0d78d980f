"""bagkit.stats.tukey against R's ptukey/qtukey, and Tukey HSD against R's TukeyHSD.

Tolerances: |Δp| ≤ 1e-6 from 10 degrees of freedom on, and ≤ 3e-4 below (R's own quadrature is
less exact there: at ν = 2 its p differs from the closed form 2·P(t > q/√2) for k = 2 by up to
2e-4, checked below). Quantiles: relative 1e-6 from 10 degrees of freedom on. More than 25 000
degrees of freedom are treated as infinitely many, as R does.
"""
from __future__ import annotations

import numpy as np
import pytest
from rtools import rscript
from scipy import stats

from bagkit.stats.comparisons import anova_tukey
from bagkit.stats.tukey import ptukey, qtukey

QS = [0.3, 1, 2, 3, 3.5, 4, 5, 6, 8, 12]
KS = [2, 3, 4, 7, 12]
DFS = [2, 3, 5, 10, 27, 100, 665, 5000, 30000, 99997]


def _r_numbers(expression: str) -> np.ndarray:
    return np.array(rscript("-e", f"cat(format({expression}, digits = 17), sep = '\\n')").stdout.split(), float)


def test_ptukey_matches_r_over_k_df_and_q():
    grid = [(k, df) for k in KS for df in DFS]
    r = _r_numbers("unlist(lapply(list(%s), function(kd) ptukey(c(%s), kd[1], kd[2], lower.tail = FALSE)))" % (
        ", ".join(f"c({k}, {df})" for k, df in grid), ", ".join(map(str, QS)))).reshape(len(grid), len(QS))
    for (k, df), expected in zip(grid, r):
        ours = ptukey(QS, k, df, lower_tail=False)
        tolerance = 1e-6 if df >= 10 else 3e-4
        assert np.abs(ours - expected).max() <= tolerance, (k, df, ours, expected)
    lower = _r_numbers("ptukey(c(1, 3.5, 5), 4, 40)")
    np.testing.assert_allclose(ptukey([1, 3.5, 5], 4, 40), lower, atol=1e-8)


def test_ptukey_exact_for_two_means():
    """k = 2: Q = √2 |t|, so P(Q > q) = 2 P(t_ν > q/√2) exactly (R is off by up to 2e-4 at ν = 2)."""
    q = np.array(QS)
    for df in [2, 3, 5, 27, 665, 5000]:
        np.testing.assert_allclose(ptukey(q, 2, df, lower_tail=False), 2 * stats.t.sf(q / np.sqrt(2), df),
                                   rtol=0, atol=1e-12)


def test_qtukey_matches_r():
    grid = [(k, df) for k in KS for df in DFS if df >= 10]
    r = _r_numbers("sapply(list(%s), function(kd) qtukey(0.95, kd[1], kd[2]))" % (
        ", ".join(f"c({k}, {df})" for k, df in grid)))
    ours = np.array([qtukey(0.95, k, df) for k, df in grid])
    np.testing.assert_allclose(ours, r, rtol=1e-6)


@pytest.mark.parametrize("sizes", [(10, 10, 10), (40, 7, 300, 12)])
def test_anova_tukey_matches_tukeyhsd(tmp_path, sizes):
    rng = np.random.default_rng(len(sizes))
    samples = [rng.normal(50 + 3 * i, 10, n) for i, n in enumerate(sizes)]
    names = [f"g{i}" for i in range(len(sizes))]
    path = tmp_path / "d.csv"
    path.write_text("y,g\n" + "".join(f"{v:.17g},{name}\n" for s, name in zip(samples, names) for v in s))
    r = rscript("-e", f"d <- read.csv('{path}'); d$g <- factor(d$g, levels = c({', '.join(repr(n) for n in names)}));"
                "t <- TukeyHSD(aov(y ~ g, d))$g; cat(rownames(t), sep = '\\n'); "
                "cat(format(t, digits = 17), sep = '\\n')").stdout.split()
    pairs = len(sizes) * (len(sizes) - 1) // 2
    rows = r[:pairs]  # "g1-g0": mean(g1) - mean(g0)
    table = np.array(r[pairs:], float).reshape(4, pairs).T  # diff, lwr, upr, p adj
    comparisons = {c.contrast: c for c in anova_tukey(samples, names, [tuple(row.split("-")[::-1]) for row in rows])}
    for row, (diff, low, high, p) in zip(rows, table):
        b, a = row.split("-")
        c = comparisons[f"{a} vs {b}"]  # a − b = −(b − a)
        np.testing.assert_allclose([c.diff, c.ci_low, c.ci_high], [-diff, -high, -low], rtol=1e-8)
        assert abs(c.p - p) <= 1e-6, (row, c.p, p)
