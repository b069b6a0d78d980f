"""BAG and clinical variables: linear regressions, subgroup t-tests, BAG across centers.

R equivalents (compared in the tests):

=======================================  ============================================================
``simple_regression(y, x)``              ``lm(y ~ x)`` (β, its SE, t, p, 95% CI, R²) and
                                         ``cor.test(x, y)`` (Pearson r; its p equals the slope's)
``multiple_regression(y, [x1, ...])``    ``summary(lm(y ~ x1 + x2 + ...))``
``subgroup_t_test``                      ``t.test(a, b, var.equal = TRUE)`` (Student's, as the paper);
                                         ``welch=True``: ``t.test(a, b)`` (Welch)
``center_anova`` per group               ``aov(bag ~ center)`` within each group (one-way F test)
``center_anova`` overall                 ``anova(lm(bag ~ group + center))``: the sequential (type I)
                                         F test of center after group, i.e. do centers differ once
                                         the group mix of each center is allowed for; df are ranks, so
                                         centers nested in groups (rank-deficient design) agree with R
=======================================  ============================================================

The paper's models: BAG ~ EDSS and BAG ~ nbv per patient group (Figure 2A/B; β per unit of
the predictor, so β for nbv is per unit of normalized brain volume, e.g. −48.5), EDSS ~ BAG +
nbv + disease duration per patient group (Supplementary Table 3), predicted SD ~ BAG per
group (Supplementary Figure 5A), BAG in AQP4-positive vs negative and in patients with vs
without brain lesions (Supplementary Table 5), BAG across centers (Figure 1C).

Least squares is numpy's (a QR decomposition, as ``lm``), p values and quantiles come from
:mod:`bagkit.stats.distributions`: neither statsmodels nor ``scipy.stats`` is imported (~1.5 s).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from bagkit.errors import AnalysisError
from bagkit.results import tidy_frame
from bagkit.stats.comparisons import Comparison, pearson, student_t, welch_t
from bagkit.stats.distributions import f_sf, t_ppf, two_sided_t_p

__all__ = ["Coefficient", "LinearModel", "SubgroupComparison", "CenterAnova", "simple_regression",
           "multiple_regression", "subgroup_t_test", "center_anova"]


@dataclass(frozen=True)
class Coefficient:
    term: str
    beta: float
    se: float
    t: float
    p: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class LinearModel:
    """An ordinary least-squares fit ``response ~ predictors`` in one subset.

    ``r`` is Pearson's r for a single predictor (NaN otherwise). ``formula`` (e.g. ``"bag ~ edss"``)
    is the ``contrast`` of its tidy rows.
    """

    subset: str
    response: str
    predictors: tuple[str, ...]
    coefficients: tuple[Coefficient, ...]  # intercept first
    n: int
    r2: float
    adj_r2: float
    f: float
    f_p: float
    r: float = float("nan")
    r_p: float = float("nan")

    @property
    def formula(self) -> str:
        return f"{self.response} ~ {' + '.join(self.predictors)}"

    def coefficient(self, term: str) -> Coefficient:
        return next(c for c in self.coefficients if c.term == term)

    def rows(self, analysis: str = "regression") -> list[tuple]:
        s, c = self.subset, self.formula
        out = []
        for k in self.coefficients:
            if k.term == "(Intercept)":
                out.append((analysis, s, "(Intercept)", c, "beta", k.beta))
                continue
            out += [(analysis, s, k.term, c, "beta", k.beta), (analysis, s, k.term, c, "se", k.se),
                    (analysis, s, k.term, c, "t", k.t), (analysis, s, k.term, c, "p", k.p),
                    (analysis, s, k.term, c, "ci_low", k.ci_low), (analysis, s, k.term, c, "ci_high", k.ci_high)]
        if len(self.predictors) == 1:
            out.append((analysis, s, self.predictors[0], c, "r", self.r))
        out += [(analysis, s, "model", c, "n", self.n), (analysis, s, "model", c, "r2", self.r2),
                (analysis, s, "model", c, "adj_r2", self.adj_r2), (analysis, s, "model", c, "f", self.f),
                (analysis, s, "model", c, "f_p", self.f_p)]
        return out

    def tidy(self) -> pd.DataFrame:
        return tidy_frame(self.rows())


def multiple_regression(data: pd.DataFrame, response: str, predictors: Sequence[str],
                        subset: str = "all") -> LinearModel:
    """``lm(response ~ predictors)`` on complete cases of ``data``: ``summary(lm)``'s coefficients
    (estimate, SE, t, p), ``confint``, R², adjusted R², F and its p."""
    predictors = tuple(predictors)
    missing = [c for c in (response, *predictors) if c not in data]
    if missing:
        raise AnalysisError(f"{subset}: column(s) {', '.join(missing)} needed for {response} ~ "
                            f"{' + '.join(predictors)} are absent")
    frame = data[[response, *predictors]].apply(pd.to_numeric, errors="coerce").dropna()
    n = len(frame)
    if n < len(predictors) + 2:
        raise AnalysisError(f"{subset}: {response} ~ {' + '.join(predictors)} needs at least "
                            f"{len(predictors) + 2} complete rows; found {n}")
    constant = [c for c in (response, *predictors) if frame[c].nunique() < 2]
    if constant:
        raise AnalysisError(f"{subset}: {', '.join(constant)} is constant ({frame[constant[0]].iloc[0]:g}); "
                            f"{response} ~ {' + '.join(predictors)} cannot be fitted")
    X = np.column_stack([np.ones(n), frame[list(predictors)].to_numpy(float)])
    y = frame[response].to_numpy(float)
    columns = X.shape[1]
    if np.linalg.matrix_rank(X) < columns:
        raise AnalysisError(f"{subset}: the predictors of {response} ~ {' + '.join(predictors)} are collinear "
                            f"(one is a linear combination of the others; R's lm gives it no coefficient)")
    q, r = np.linalg.qr(X)
    beta = np.linalg.solve(r, q.T @ y)
    residual = y - X @ beta
    rss = float(residual @ residual)
    df_residual = n - columns
    r_inverse = np.linalg.inv(r)
    se = np.sqrt(rss / df_residual * np.sum(r_inverse**2, axis=1))  # sqrt(diag(σ² (X'X)⁻¹))
    with np.errstate(divide="ignore", invalid="ignore"):  # a perfect fit: t is inf, as R (with a warning)
        t = beta / se
    p = two_sided_t_p(t, df_residual)
    half = t_ppf(0.975, df_residual) * se
    names = ("(Intercept)", *predictors)
    coefficients = tuple(Coefficient(name, float(beta[i]), float(se[i]), float(t[i]), float(p[i]),
                                     float(beta[i] - half[i]), float(beta[i] + half[i]))
                         for i, name in enumerate(names))
    centred = y - y.mean()
    tss = float(centred @ centred)
    r2 = 1 - rss / tss
    adj_r2 = 1 - (1 - r2) * (n - 1) / df_residual
    with np.errstate(divide="ignore", invalid="ignore"):
        f = float((tss - rss) / (columns - 1) / (rss / df_residual))
    r_value = r_p = float("nan")
    if len(predictors) == 1:
        r_value, r_p = pearson(frame[predictors[0]], y)
    return LinearModel(subset, response, predictors, coefficients, n, float(r2), float(adj_r2),
                       f, f_sf(f, columns - 1, df_residual), r_value, r_p)


def simple_regression(data: pd.DataFrame, response: str, predictor: str, subset: str = "all") -> LinearModel:
    """``lm(response ~ predictor)`` with Pearson's r (``cor.test``)."""
    return multiple_regression(data, response, (predictor,), subset)


@dataclass(frozen=True)
class SubgroupComparison:
    """A variable compared between two subgroups of one group (Student's t)."""

    subset: str
    term: str
    levels: tuple[str, str]
    comparison: Comparison
    n: tuple[int, int]
    mean: tuple[float, float]
    sd: tuple[float, float]

    def rows(self) -> list[tuple]:
        out = self.comparison.rows("subgroup", self.subset, self.term)
        for level, n, mean, sd in zip(self.levels, self.n, self.mean, self.sd):
            out += [("subgroup", self.subset, self.term, level, "n", n),
                    ("subgroup", self.subset, self.term, level, "mean", mean),
                    ("subgroup", self.subset, self.term, level, "sd", sd)]
        return out

    def tidy(self) -> pd.DataFrame:
        return tidy_frame(self.rows())


def subgroup_t_test(a, b, levels: tuple[str, str], subset: str, term: str = "bag",
                    welch: bool = False) -> SubgroupComparison:
    """Student's t-test of ``a`` vs ``b`` (``t.test(a, b, var.equal = TRUE)``)."""
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if len(a) < 2 or len(b) < 2:
        raise AnalysisError(f"{subset}: {levels[0]} vs {levels[1]} needs at least 2 subjects in each subgroup; "
                            f"found {len(a)} and {len(b)}")
    comparison = (welch_t if welch else student_t)(a, b, f"{levels[0]} vs {levels[1]}")
    return SubgroupComparison(subset, term, levels, comparison, (len(a), len(b)),
                              (float(a.mean()), float(b.mean())),
                              (float(a.std(ddof=1)), float(b.std(ddof=1))))


@dataclass(frozen=True)
class CenterAnova:
    """BAG across centers: F test within one group, or across all groups adjusted for group."""

    subset: str  # a group label, or "all" (adjusted for group)
    term: str
    f: float
    df_between: float
    df_within: float
    p: float
    n: int
    n_centers: int
    means: tuple[tuple[str, float, int], ...] = ()  # (center, mean, n)

    @property
    def contrast(self) -> str:
        return "overall" if self.subset != "all" else "overall adjusted for group"

    def rows(self) -> list[tuple]:
        s, t, c = self.subset, self.term, self.contrast
        out = [("center", s, t, c, "f", self.f), ("center", s, t, c, "df", self.df_between),
               ("center", s, t, c, "df_residual", self.df_within), ("center", s, t, c, "p", self.p),
               ("center", s, t, c, "n", self.n), ("center", s, t, c, "n_centers", self.n_centers)]
        for center, mean, n in self.means:
            out += [("center", s, t, f"center={center}", "mean", mean), ("center", s, t, f"center={center}", "n", n)]
        return out

    def tidy(self) -> pd.DataFrame:
        return tidy_frame(self.rows())


def _rank_and_rss(X: np.ndarray, y: np.ndarray) -> tuple[int, float]:
    """The rank of a design and its residual sum of squares (least squares; aliased columns add nothing)."""
    rank = int(np.linalg.matrix_rank(X))
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    residual = y - X @ beta
    return rank, float(residual @ residual)


def _dummies(values: pd.Series) -> np.ndarray:
    """Treatment-coded indicator columns (first level the reference), as R's default contrasts."""
    levels = sorted(values.unique())
    return np.column_stack([(values == level).to_numpy(float) for level in levels[1:]]) if len(levels) > 1 \
        else np.empty((len(values), 0))


def center_anova(data: pd.DataFrame, subset: str, term: str = "bag", adjust_for_group: bool = False) -> CenterAnova:
    """One-way ANOVA of ``term`` across centers (``aov(term ~ center)``), or, with
    ``adjust_for_group``, the type-I F of center after group (``anova(lm(term ~ group + center))``).

    As R's ``anova.lm``, degrees of freedom are ranks, not column counts: when centers are nested in
    groups (a site that contributes only controls), the center columns aliased with group add no
    degree of freedom; when every center lies within one group, R has no center row at all and this
    raises :class:`AnalysisError` saying so.
    """
    frame = data[["group", "center", term]].dropna()
    frame = frame.assign(center=frame["center"].astype(str), group=frame["group"].astype(str))
    counts = frame["center"].value_counts()
    if len(counts) < 2:
        raise AnalysisError(f"{subset}: BAG across centers needs at least two centers; found "
                            f"{len(counts)} ({', '.join(counts.index) or 'none'})")
    if len(frame) - len(counts) < 1:
        raise AnalysisError(f"{subset}: too few subjects ({len(frame)}) for {len(counts)} centers")
    means = tuple((str(c), float(frame.loc[frame['center'] == c, term].mean()), int(counts[c]))
                  for c in sorted(counts.index))
    y = frame[term].to_numpy(float)
    base = np.ones((len(frame), 1))
    if adjust_for_group and frame["group"].nunique() > 1:
        base = np.column_stack([base, _dummies(frame["group"])])
    rank_base, rss_base = _rank_and_rss(base, y)
    rank_full, rss_full = _rank_and_rss(np.column_stack([base, _dummies(frame["center"])]), y)
    df_center, df_residual = rank_full - rank_base, len(y) - rank_full
    if df_center < 1:
        raise AnalysisError(f"{subset}: every center lies within one group, so center cannot be told apart "
                            f"from group (R's anova(lm(bag ~ group + center)) has no center row)")
    if df_residual < 1:
        raise AnalysisError(f"{subset}: no residual degrees of freedom for {len(counts)} centers "
                            f"({len(frame)} subjects)")
    f = ((rss_base - rss_full) / df_center) / (rss_full / df_residual)
    return CenterAnova(subset, term, float(f), float(df_center), float(df_residual),
                       f_sf(f, df_center, df_residual), len(frame), len(counts), means)
