"""The few distribution functions the analyses need, as R's ``pt``/``qt``/``pf``/``pchisq``/
``pnorm``/``qnorm`` compute them, without ``scipy.stats``.

Each is a thin wrapper of the Cephes function in :mod:`scipy.special` that ``scipy.stats`` itself
calls for the same distribution (``t.cdf`` is ``stdtr``, ``f.sf`` is ``fdtrc``, …), so the numbers
are those ``scipy.stats`` gave before, bit for bit. Importing ``scipy.stats`` costs 0.8–1.5 s
(most of it parsing the docstrings of ~130 distributions), ``scipy.special`` ~0.25 s; on the
report path that difference was paid in the parent and again in the forked R child.

=================================  ===========================  ============================
here                               R                            scipy.special
=================================  ===========================  ============================
``t_cdf(x, df)`` / ``t_sf``        ``pt(x, df)`` / ``lower = F``  ``stdtr(df, x)`` / ``(df, -x)``
``t_ppf(p, df)``                   ``qt(p, df)``                ``stdtrit(df, p)``
``f_sf(x, df1, df2)``              ``pf(x, df1, df2, lower = F)``  ``fdtrc(df1, df2, x)``
``chi2_sf(x, df)``                 ``pchisq(x, df, lower = F)``   ``chdtrc(df, x)``
``norm_cdf(x)`` / ``norm_sf``      ``pnorm(x)`` / ``lower = F``   ``ndtr(x)`` / ``ndtr(-x)``
``norm_ppf(p)``                    ``qnorm(p)``                 ``ndtri(p)``
=================================  ===========================  ============================

``tests/test_distributions.py`` compares every function with R over a grid that includes the far
tails and large degrees of freedom. ``scipy.special`` is imported on first call, not at
``import bagkit``.
"""
from __future__ import annotations

import numpy as np
import scipy  # scipy.special loads on first attribute use (lazy submodules), not at `import bagkit`

__all__ = ["t_cdf", "t_sf", "t_ppf", "f_sf", "chi2_sf", "norm_cdf", "norm_sf", "norm_ppf", "two_sided_t_p"]


def _out(value):
    """A float for scalar input, an array otherwise."""
    return float(value) if np.ndim(value) == 0 else value


def t_cdf(x, df):
    """``pt(x, df)``: P(T ≤ x) for Student's t with ``df`` degrees of freedom."""
    return _out(scipy.special.stdtr(df, x))


def t_sf(x, df):
    """``pt(x, df, lower.tail = FALSE)``: P(T > x)."""
    return _out(scipy.special.stdtr(df, -np.asarray(x, dtype=float)))


def t_ppf(p, df):
    """``qt(p, df)``: the t quantile."""
    return _out(scipy.special.stdtrit(df, p))


def two_sided_t_p(t, df):
    """``2 * pt(-abs(t), df)``: the two-sided p of a t statistic (NaN stays NaN)."""
    return _out(2 * scipy.special.stdtr(df, -np.abs(np.asarray(t, dtype=float))))


def f_sf(x, df1, df2):
    """``pf(x, df1, df2, lower.tail = FALSE)``: P(F > x)."""
    return _out(scipy.special.fdtrc(df1, df2, x))


def chi2_sf(x, df):
    """``pchisq(x, df, lower.tail = FALSE)``: P(χ² > x)."""
    return _out(scipy.special.chdtrc(df, x))


def norm_cdf(x):
    """``pnorm(x)``."""
    return _out(scipy.special.ndtr(x))


def norm_sf(x):
    """``pnorm(x, lower.tail = FALSE)``."""
    return _out(scipy.special.ndtr(-np.asarray(x, dtype=float)))


def norm_ppf(p):
    """``qnorm(p)``."""
    return _out(scipy.special.ndtri(p))
