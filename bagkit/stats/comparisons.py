"""Group comparisons as R computes them.

Each function takes samples (one array per group, in order) and returns
:class:`Comparison` objects, so Table 1, Table 2 and the subgroup analyses share
one implementation. The R equivalents, which the tests compare against:

========================  ===========================================================
``anova_tukey``           ``aov(y ~ g)`` + ``TukeyHSD`` (single-step, studentized range)
``student_t``             ``t.test(a, b, var.equal = TRUE)``
``welch_t``               ``t.test(a, b)``
``rank_sum``              ``wilcox.test(a, b)``: exact when n < 50 in both and no ties,
                          else normal approximation with continuity and tie correction
``kruskal``               ``kruskal.test``
``chi_square``            ``chisq.test(table)`` (Yates' correction for 2 × 2, as R)
========================  ===========================================================
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Sequence

import numpy as np
import scipy  # scipy.stats loads on first use (~0.5 s): not at `import bagkit`

from bagkit.stats.tukey import ptukey, qtukey

__all__ = ["Comparison", "anova_tukey", "student_t", "welch_t", "rank_sum", "kruskal", "chi_square",
           "mean_ci", "pairs_for", "p_adjust", "standardized_difference", "P_ADJUST_METHODS"]


@dataclass(frozen=True)
class Comparison:
    """One test. ``contrast`` is ``"A vs B"`` or ``"overall"``; ``diff`` is mean(A) − mean(B)."""

    contrast: str
    method: str
    statistic_name: str
    statistic: float
    p: float
    df: float | None = None
    diff: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None

    @property
    def difference_contrast(self) -> str:
        return self.contrast.replace(" vs ", " - ")

    def rows(self, analysis: str, subset: str, term: str) -> list[tuple]:
        rows = [(analysis, subset, term, self.contrast, "p", self.p),
                (analysis, subset, term, self.contrast, self.statistic_name, self.statistic)]
        if self.df is not None:
            rows.append((analysis, subset, term, self.contrast, "df", self.df))
        if self.diff is not None:
            c = self.difference_contrast
            rows += [(analysis, subset, term, c, "diff", self.diff),
                     (analysis, subset, term, c, "ci_low", self.ci_low),
                     (analysis, subset, term, c, "ci_high", self.ci_high)]
        return rows


def pairs_for(groups: Sequence[str], control: str | None) -> list[tuple[str, str]]:
    """The paper's pairwise contrasts: each patient group vs the control, then patient vs patient."""
    patients = [g for g in groups if g != control]
    pairs = [(g, control) for g in patients] if control in groups else []
    return pairs + list(combinations(patients, 2))


def mean_ci(x, level: float = 0.95) -> tuple[float, float]:
    """t-based confidence interval of a mean, as ``t.test(x)$conf.int``."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    half = scipy.stats.t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / np.sqrt(n)
    return float(x.mean() - half), float(x.mean() + half)


def anova_tukey(samples: Sequence[np.ndarray], names: Sequence[str],
                pairs: Sequence[tuple[str, str]]) -> list[Comparison]:
    """One-way ANOVA (overall F test) and Tukey HSD for the requested pairs.

    Each pair's statistic is R's studentized range ``q = |diff| / sqrt(MSE/2 (1/n_a + 1/n_b))``.
    """
    samples = [np.asarray(s, dtype=float) for s in samples]
    n, k = sum(len(s) for s in samples), len(samples)
    anova = scipy.stats.f_oneway(*samples)
    out = [Comparison("overall", "one-way ANOVA", "F", float(anova.statistic), float(anova.pvalue),
                      df=float(k - 1))]
    mse = sum(((s - s.mean()) ** 2).sum() for s in samples) / (n - k)
    critical = qtukey(0.95, k, n - k)  # as TukeyHSD: one family-wise 95% quantile for every pair
    index = {name: i for i, name in enumerate(names)}
    for a, b in pairs:
        i, j = index[a], index[b]
        diff = float(samples[i].mean() - samples[j].mean())
        se = np.sqrt(mse / 2 * (1 / len(samples[i]) + 1 / len(samples[j])))
        q = abs(diff) / se
        out.append(Comparison(f"{a} vs {b}", "Tukey HSD", "q", float(q),
                              float(ptukey(q, k, n - k, lower_tail=False)), df=float(n - k), diff=diff,
                              ci_low=diff - critical * se, ci_high=diff + critical * se))
    return out


def _t(a, b, equal_var: bool, method: str, contrast: str) -> Comparison:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    result = scipy.stats.ttest_ind(a, b, equal_var=equal_var)
    ci = result.confidence_interval(0.95)
    return Comparison(contrast, method, "t", float(result.statistic), float(result.pvalue),
                      df=float(result.df), diff=float(a.mean() - b.mean()),
                      ci_low=float(ci.low), ci_high=float(ci.high))


def student_t(a, b, contrast: str) -> Comparison:
    """Student's two-sample t-test (equal variances), as the paper."""
    return _t(a, b, True, "Student's t-test", contrast)


def welch_t(a, b, contrast: str) -> Comparison:
    return _t(a, b, False, "Welch's t-test", contrast)


def rank_sum(a, b, contrast: str) -> Comparison:
    """Wilcoxon rank-sum with R's choice between the exact and the normal-approximation p."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ties = len(np.unique(np.concatenate([a, b]))) < len(a) + len(b)
    exact = len(a) < 50 and len(b) < 50 and not ties
    result = scipy.stats.mannwhitneyu(a, b, alternative="two-sided", use_continuity=True,
                                method="exact" if exact else "asymptotic")
    return Comparison(contrast, "Wilcoxon rank-sum test", "W", float(result.statistic), float(result.pvalue))


def kruskal(samples: Sequence[np.ndarray]) -> Comparison:
    result = scipy.stats.kruskal(*[np.asarray(s, dtype=float) for s in samples])
    return Comparison("overall", "Kruskal-Wallis test", "chi2", float(result.statistic), float(result.pvalue),
                      df=float(len(samples) - 1))


def chi_square(table: np.ndarray, contrast: str = "overall") -> Comparison:
    """Pearson's chi-square test of a groups × levels table (Yates' correction when 2 × 2, as R)."""
    table = np.asarray(table, dtype=float)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    if table.shape[0] < 2 or table.shape[1] < 2:
        return Comparison(contrast, "Pearson's chi-square test", "chi2", np.nan, np.nan, df=np.nan)
    chi2, p, dof, _ = scipy.stats.chi2_contingency(table, correction=True)
    return Comparison(contrast, "Pearson's chi-square test", "chi2", float(chi2), float(p), df=float(dof))


P_ADJUST_METHODS = {"holm": "holm", "BH": "fdr_bh"}  # R's p.adjust method name -> statsmodels'


def p_adjust(p: Sequence[float], method: str) -> np.ndarray:
    """R's ``p.adjust(p, method)`` for ``"holm"`` and ``"BH"``; NaN p values are left out of the
    family and stay NaN (as ``p.adjust`` with ``NA``)."""
    from statsmodels.stats.multitest import multipletests

    if method not in P_ADJUST_METHODS:
        raise ValueError(f"p adjustment {method!r}: choose from {', '.join(P_ADJUST_METHODS)}")
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    known = np.isfinite(p)
    if known.any():
        out[known] = multipletests(p[known], method=P_ADJUST_METHODS[method])[1]
    return out


def standardized_difference(a, b, binary: bool = False) -> float:
    """The standardized mean difference as R's tableone (``ExtractSmd``) and cobalt (``s.d.denom =
    "pooled"``) compute it for two groups: ``(mean_a − mean_b) / sqrt((var_a + var_b) / 2)``, with
    sample variances (n − 1) for a continuous variable and ``p (1 − p)`` for a binary one."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if binary:
        pa, pb = a.mean(), b.mean()
        denominator = np.sqrt((pa * (1 - pa) + pb * (1 - pb)) / 2)
        return float((pa - pb) / denominator) if denominator > 0 else float("nan")
    denominator = np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    return float((a.mean() - b.mean()) / denominator) if denominator > 0 else float("nan")
