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
``pearson``               ``cor.test(x, y)`` (r; p from t = r √(n−2) / √(1−r²) on n − 2 df)
``p_adjust``              ``p.adjust(p, "holm" | "BH")``
========================  ===========================================================

Everything is computed here with numpy and :mod:`bagkit.stats.distributions`, following R's own
formulas (``stats:::t.test.default``, ``wilcox.test.default``, ``kruskal.test.default``,
``chisq.test``, ``p.adjust``): ``scipy.stats`` and statsmodels, which the analyses used before,
cost ~1.5 s to import.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Sequence

import numpy as np

from bagkit.stats.distributions import chi2_sf, f_sf, norm_cdf, norm_sf, t_ppf, two_sided_t_p
from bagkit.stats.tukey import ptukey, qtukey

__all__ = ["Comparison", "anova_tukey", "student_t", "welch_t", "rank_sum", "kruskal", "chi_square",
           "mean_ci", "pairs_for", "p_adjust", "pearson", "rank_average", "standardized_difference",
           "P_ADJUST_METHODS"]


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
    half = t_ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / np.sqrt(n)
    return float(x.mean() - half), float(x.mean() + half)


def anova_tukey(samples: Sequence[np.ndarray], names: Sequence[str],
                pairs: Sequence[tuple[str, str]]) -> list[Comparison]:
    """One-way ANOVA (overall F test) and Tukey HSD for the requested pairs.

    Each pair's statistic is R's studentized range ``q = |diff| / sqrt(MSE/2 (1/n_a + 1/n_b))``.
    """
    samples = [np.asarray(s, dtype=float) for s in samples]
    n, k = sum(len(s) for s in samples), len(samples)
    grand = np.concatenate(samples).mean()
    within = sum(((s - s.mean()) ** 2).sum() for s in samples)
    between = sum(len(s) * (s.mean() - grand) ** 2 for s in samples)
    mse = within / (n - k)
    with np.errstate(divide="ignore", invalid="ignore"):  # no spread within groups: F is inf (or NaN), as R
        f = float(between / (k - 1) / mse)
    out = [Comparison("overall", "one-way ANOVA", "F", f, f_sf(f, k - 1, n - k), df=float(k - 1))]
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
    """``t.test(a, b, var.equal = equal_var)``: statistic, df, two-sided p and the 95% CI of the
    difference, by R's formulas (``stats:::t.test.default``)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    na, nb = len(a), len(b)
    va, vb = a.var(ddof=1), b.var(ddof=1)
    if equal_var:
        df = na + nb - 2.0
        se = np.sqrt(((na - 1) * va + (nb - 1) * vb) / df * (1 / na + 1 / nb))
    else:
        sa, sb = va / na, vb / nb
        se = np.sqrt(sa + sb)
        with np.errstate(divide="ignore", invalid="ignore"):
            df = float((sa + sb) ** 2 / (sa**2 / (na - 1) + sb**2 / (nb - 1)))
    diff = float(a.mean() - b.mean())
    with np.errstate(divide="ignore", invalid="ignore"):  # constant data: t is ±inf or NaN
        t = float(diff / se)
    half = float(t_ppf(0.975, df) * se)
    return Comparison(contrast, method, "t", t, two_sided_t_p(t, df), df=float(df), diff=diff,
                      ci_low=diff - half, ci_high=diff + half)


def student_t(a, b, contrast: str) -> Comparison:
    """Student's two-sample t-test (equal variances), as the paper."""
    return _t(a, b, True, "Student's t-test", contrast)


def welch_t(a, b, contrast: str) -> Comparison:
    return _t(a, b, False, "Welch's t-test", contrast)


def rank_average(values) -> np.ndarray:
    """Ranks 1…n with ties given their average rank, as R's ``rank(x)`` (``ties.method = "average"``)."""
    values = np.asarray(values, dtype=float)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(values)]  # one past each run of equal values
    ranks = np.empty(len(values))
    ranks[order] = np.repeat((starts + ends + 1) / 2, ends - starts)
    return ranks


def _tie_sizes(values: np.ndarray) -> np.ndarray:
    return np.unique(values, return_counts=True)[1].astype(float)


def _wilcox_counts(m: int, n: int) -> np.ndarray:
    """The number of arrangements giving each W = 0…m n, R's ``cwilcox`` recurrence
    c(k; m, n) = c(k − n; m − 1, n) + c(k; m, n − 1), in doubles as R."""
    # row[j] holds c(·; i, j) for the current i, as arrays of length i j + 1
    row = [np.ones(1) for _ in range(n + 1)]  # i = 0: one arrangement, W = 0
    for i in range(1, m + 1):
        new = [np.ones(1)]  # j = 0: W = 0 only
        for j in range(1, n + 1):
            counts = np.zeros(i * j + 1)
            counts[j:j + len(row[j])] += row[j]  # the largest value is an x: W gains j
            counts[:len(new[j - 1])] += new[j - 1]  # the largest value is a y
            new.append(counts)
        row = new
    return row[n]


def rank_sum(a, b, contrast: str) -> Comparison:
    """Wilcoxon rank-sum with R's choice between the exact and the normal-approximation p.

    As ``wilcox.test(a, b)``: W is the rank sum of ``a`` less n_a (n_a + 1) / 2; exact (``pwilcox``)
    when both samples have fewer than 50 values and there are no ties, else the normal
    approximation with continuity correction and the tie correction of the variance."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    na, nb = len(a), len(b)
    pooled = np.concatenate([a, b])
    w = float(rank_average(pooled)[:na].sum() - na * (na + 1) / 2)
    ties = len(np.unique(pooled)) < na + nb
    if na < 50 and nb < 50 and not ties:
        counts = _wilcox_counts(na, nb)
        total = counts.sum()  # choose(na + nb, na)
        q = int(round(w))
        if w > na * nb / 2:
            p = 2 * counts[q:].sum() / total  # 2 * pwilcox(W - 1, lower.tail = FALSE)
        else:
            p = 2 * counts[:q + 1].sum() / total  # 2 * pwilcox(W)
        return Comparison(contrast, "Wilcoxon rank-sum test", "W", w, float(min(p, 1.0)))
    t = _tie_sizes(pooled)
    n = na + nb
    sigma = np.sqrt(na * nb / 12 * (n + 1 - (t**3 - t).sum() / (n * (n - 1))))
    z = w - na * nb / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (z - np.sign(z) * 0.5) / sigma
    p = 2 * min(norm_cdf(z), norm_sf(z))
    return Comparison(contrast, "Wilcoxon rank-sum test", "W", w, float(min(p, 1.0)))


def kruskal(samples: Sequence[np.ndarray]) -> Comparison:
    """``kruskal.test``: H from average ranks, divided by the tie correction 1 − Σ(t³ − t) / (n³ − n)."""
    samples = [np.asarray(s, dtype=float) for s in samples]
    pooled = np.concatenate(samples)
    n = len(pooled)
    ranks = rank_average(pooled)
    edges = np.cumsum([0] + [len(s) for s in samples])
    h = 12 / (n * (n + 1)) * sum(ranks[lo:hi].sum() ** 2 / (hi - lo) for lo, hi in zip(edges[:-1], edges[1:])
                                 if hi > lo) - 3 * (n + 1)
    t = _tie_sizes(pooled)
    with np.errstate(divide="ignore", invalid="ignore"):  # every value equal: NaN, as R
        h = float(h / (1 - (t**3 - t).sum() / (n**3 - n)))
    df = len(samples) - 1
    return Comparison("overall", "Kruskal-Wallis test", "chi2", h, chi2_sf(h, df), df=float(df))


def chi_square(table: np.ndarray, contrast: str = "overall") -> Comparison:
    """Pearson's chi-square test of a groups × levels table (Yates' correction when 2 × 2, as R:
    each |O − E| less min(0.5, |O − E|))."""
    table = np.asarray(table, dtype=float)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    if table.shape[0] < 2 or table.shape[1] < 2:
        return Comparison(contrast, "Pearson's chi-square test", "chi2", np.nan, np.nan, df=np.nan)
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    gap = np.abs(table - expected)
    if table.shape == (2, 2):
        gap = gap - np.minimum(0.5, gap)
    chi2 = float((gap**2 / expected).sum())
    dof = (table.shape[0] - 1) * (table.shape[1] - 1)
    return Comparison(contrast, "Pearson's chi-square test", "chi2", chi2, chi2_sf(chi2, dof), df=float(dof))


def pearson(x, y) -> tuple[float, float]:
    """Pearson's r and its two-sided p, as ``cor.test(x, y)``: t = r √(n − 2) / √(1 − r²) on
    n − 2 degrees of freedom. NaN (no warning) when either variable is constant or n < 3."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(x)
    if n < 3:
        return float("nan"), float("nan")
    dx, dy = x - x.mean(), y - y.mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        r = float(np.clip(np.dot(dx / np.linalg.norm(dx), dy / np.linalg.norm(dy)), -1.0, 1.0))
        t = np.sqrt(n - 2) * r / np.sqrt(1 - r * r)
    return r, two_sided_t_p(t, n - 2)


P_ADJUST_METHODS = ("holm", "BH")  # R's p.adjust method names


def p_adjust(p: Sequence[float], method: str) -> np.ndarray:
    """R's ``p.adjust(p, method)`` for ``"holm"`` and ``"BH"``; NaN p values are left out of the
    family and stay NaN (as ``p.adjust`` with ``NA``). R's source, with its stable ``order``::

        holm: o <- order(p);                   pmin(1, cummax((n - i + 1) * p[o]))[order(o)]
        BH:   o <- order(p, decreasing = TRUE); pmin(1, cummin(n / (n:1) * p[o]))[order(o)]
    """
    if method not in P_ADJUST_METHODS:
        raise ValueError(f"p adjustment {method!r}: choose from {', '.join(P_ADJUST_METHODS)}")
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    known = np.isfinite(p)
    values = p[known]
    n = len(values)
    if n:
        if method == "holm":
            order = np.argsort(values, kind="stable")
            adjusted = np.maximum.accumulate((n - np.arange(n)) * values[order])
        else:
            order = np.argsort(-values, kind="stable")
            adjusted = np.minimum.accumulate(n / np.arange(n, 0, -1) * values[order])
        result = np.empty(n)
        result[order] = np.minimum(1.0, adjusted)
        out[known] = result
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
