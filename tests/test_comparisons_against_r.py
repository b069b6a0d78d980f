"""bagkit.stats.comparisons and multiple_regression (numpy + bagkit.stats.distributions) against R.

The data are made here, written to a CSV, and R computes on that file in the test run:
``t.test`` (Student and Welch, statistic, df, p, CI), ``wilcox.test`` (exact when n < 50 without
ties, on both sides of W = mn/2; asymptotic with ties), ``kruskal.test``, ``aov``, ``chisq.test``
(2 × 2 with Yates, including cells where |O − E| < 0.5, and larger tables), ``cor.test``,
``p.adjust`` (holm, BH, with ties and NA) and ``summary(lm)``/``confint``.

Tolerance: relative 1e-10 for statistics, df, CIs, coefficients and p values (absolute 1e-300 for
p values at or below that). Both sides use double precision and the same formulas; the largest
gap seen is below 1e-12.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rtools import rscript

from bagkit.stats.comparisons import anova_tukey, chi_square, kruskal, p_adjust, pearson, rank_sum, student_t, welch_t
from bagkit.stats.regression import multiple_regression

RELATIVE = 1e-10

# (size of a, size of b, shift, rounding digits or None): exact and asymptotic Wilcoxon branches
PAIRS = [(5, 7, 0.4, None), (7, 5, -1.5, None), (20, 30, 0.8, None), (49, 49, -0.2, None), (12, 3, 2.0, None),
         (60, 45, 0.3, None), (30, 25, 0.5, 0), (8, 9, 0.0, 1), (200, 150, 0.1, 1)]
TABLES = [[[12, 5], [7, 9]], [[3, 0], [1, 2]], [[20, 21], [19, 20]], [[10, 0], [0, 10]], [[5, 8, 2], [9, 3, 7]],
          [[30, 12, 4], [8, 15, 11], [2, 9, 20]]]
P_VALUES = [0.01, 0.04, 0.04, 0.2, np.nan, 0.003, 0.5, 0.04, 1e-8, 0.9, 0.049]


def _samples():
    rng = np.random.default_rng(20261127)
    out = []
    for na, nb, shift, digits in PAIRS:
        a, b = rng.normal(10, 2, na), rng.normal(10 + shift, 3.5, nb)
        if digits is not None:
            a, b = a.round(digits), b.round(digits)
        out.append((a, b))
    return out


def _close(ours, theirs, what):
    ours, theirs = np.asarray(ours, float), np.asarray(theirs, float)
    tiny = np.abs(theirs) <= 1e-300
    np.testing.assert_allclose(ours[~tiny], theirs[~tiny], rtol=RELATIVE, atol=0, err_msg=what)
    np.testing.assert_allclose(ours[tiny], theirs[tiny], rtol=0, atol=1e-300, err_msg=what)


def _r_values(script: str, tmp_path) -> dict[str, np.ndarray]:
    path = tmp_path / "check.R"
    path.write_text("out <- function(name, x) cat(name, sprintf('%.17g', x), '\\n')\n" + script)
    values = {}
    for line in rscript(str(path), cwd=tmp_path).stdout.splitlines():
        name, *numbers = line.split()
        values[name] = np.array([np.nan if v == "NA" else float(v) for v in numbers])
    return values


@pytest.fixture(scope="module")
def r_two_samples(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("two")
    rows = [(i, side, v) for i, (a, b) in enumerate(_samples()) for side, x in (("a", a), ("b", b)) for v in x]
    pd.DataFrame(rows, columns=["pair", "side", "value"]).to_csv(tmp / "pairs.csv", index=False)
    return _r_values("""
d <- read.csv("pairs.csv")
for (i in sort(unique(d$pair))) {
  a <- d$value[d$pair == i & d$side == "a"]; b <- d$value[d$pair == i & d$side == "b"]
  for (eq in c(TRUE, FALSE)) {
    t <- t.test(a, b, var.equal = eq)
    out(paste0("t", i, eq), c(t$statistic, t$parameter, t$p.value, t$conf.int))
  }
  w <- suppressWarnings(wilcox.test(a, b))
  out(paste0("w", i), c(w$statistic, w$p.value))
  k <- kruskal.test(list(a, b, c(a[1:2], b[1])))
  out(paste0("k", i), c(k$statistic, k$parameter, k$p.value))
  f <- summary(aov(v ~ g, data.frame(v = c(a, b), g = factor(rep(1:2, c(length(a), length(b)))))))[[1]]
  out(paste0("f", i), c(f[1, "F value"], f[1, "Pr(>F)"]))
  r <- cor.test(a[seq_len(min(length(a), length(b)))], b[seq_len(min(length(a), length(b)))])
  out(paste0("r", i), c(r$estimate, r$p.value))
}
""", tmp)


@pytest.mark.parametrize("i", range(len(PAIRS)))
def test_two_sample_tests_match_r(r_two_samples, i):
    a, b = _samples()[i]
    r = r_two_samples
    for equal, test in ((True, student_t), (False, welch_t)):
        ours = test(a, b, "a vs b")
        _close([ours.statistic, ours.df, ours.p, ours.ci_low, ours.ci_high], r[f"t{i}{str(equal).upper()}"],
               f"t.test var.equal={equal}, pair {i}")
    w = rank_sum(a, b, "a vs b")
    _close([w.statistic, w.p], r[f"w{i}"], f"wilcox.test, pair {i}")
    k = kruskal([a, b, np.r_[a[:2], b[:1]]])
    _close([k.statistic, k.df, k.p], r[f"k{i}"], f"kruskal.test, pair {i}")
    f = anova_tukey([a, b], ["a", "b"], [])[0]
    _close([f.statistic, f.p], r[f"f{i}"], f"aov, pair {i}")
    m = min(len(a), len(b))
    _close(pearson(a[:m], b[:m]), r[f"r{i}"], f"cor.test, pair {i}")


def test_chi_square_matches_chisq_test(tmp_path):
    script = "".join(f"x <- suppressWarnings(chisq.test(matrix(c({', '.join(str(v) for v in np.ravel(t, 'F'))}), "
                     f"nrow = {len(t)}))); out('c{j}', c(x$statistic, x$parameter, x$p.value))\n"
                     for j, t in enumerate(TABLES))
    r = _r_values(script, tmp_path)
    for j, table in enumerate(TABLES):
        ours = chi_square(np.array(table))
        _close([ours.statistic, ours.df, ours.p], r[f"c{j}"], f"chisq.test {table}")


def test_p_adjust_matches_r(tmp_path):
    values = ", ".join("NA" if np.isnan(p) else repr(p) for p in P_VALUES)
    r = _r_values(f"p <- c({values}); out('holm', p.adjust(p, 'holm')); out('BH', p.adjust(p, 'BH'))\n", tmp_path)
    for method in ("holm", "BH"):
        ours = p_adjust(P_VALUES, method)
        assert np.array_equal(np.isnan(ours), np.isnan(r[method]))
        _close(ours[~np.isnan(ours)], r[method][~np.isnan(ours)], method)


def test_multiple_regression_matches_lm(tmp_path):
    rng = np.random.default_rng(7)
    n = 83
    frame = pd.DataFrame({"bag": rng.normal(3, 6, n), "nbv": rng.normal(0.72, 0.04, n),
                          "disease_duration": rng.gamma(2, 4, n)})
    frame["edss"] = 2 + 0.05 * frame.bag - 9 * frame.nbv + 0.08 * frame.disease_duration + rng.normal(0, 1.2, n)
    frame.to_csv(tmp_path / "lm.csv", index=False)
    r = _r_values("""
d <- read.csv("lm.csv")
for (f in c("edss ~ bag + nbv + disease_duration", "edss ~ bag")) {
  fit <- lm(as.formula(f), d); s <- summary(fit); tag <- gsub("[^a-z]", "", f)
  out(paste0("coef", tag), t(cbind(coef(s), confint(fit))))
  out(paste0("model", tag), c(s$r.squared, s$adj.r.squared, s$fstatistic[1],
      pf(s$fstatistic[1], s$fstatistic[2], s$fstatistic[3], lower.tail = FALSE)))
}
""", tmp_path)
    for predictors in (("bag", "nbv", "disease_duration"), ("bag",)):
        model = multiple_regression(frame, "edss", predictors)
        tag = "edss" + "".join(p.replace("_", "") for p in predictors)
        ours = [[c.beta, c.se, c.t, c.p, c.ci_low, c.ci_high] for c in model.coefficients]
        _close(np.ravel(ours), r[f"coef{tag}"], f"lm {model.formula} coefficients")
        _close([model.r2, model.adj_r2, model.f, model.f_p], r[f"model{tag}"], f"lm {model.formula} fit")
