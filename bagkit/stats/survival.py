"""Time to EDSS worsening: Kaplan–Meier strata, the log-rank test and Cox models, as R's survival computes them.

Everything is computed here, in numpy, the way R's survival does it (the product-limit table,
Efron's partial likelihood maximised by Newton–Raphson with step halving from 0 on centred
covariates, its default confidence band, its median rule, its Schoenfeld test; lifelines was
used before and took ~60 ms per Cox fit, mostly pandas). The R equivalents, which the tests
compare against (survival 3.x):

=================================  =====================================================================
``kaplan_meier``                   ``survfit(Surv(time, event) ~ 1)``: product-limit estimate, Greenwood
                                   standard error of −log S, R's **default** ``conf.type = "log"`` band
                                   (``S·exp(±1.96·se)``, upper limit capped at 1)
``KaplanMeierCurve.median`` & CI   ``quantile(fit, 0.5)`` / ``print(fit)``: the first time the curve (the
                                   lower / upper band for the CI limits) reaches 0.5, the midpoint of a flat
                                   stretch lying exactly at 0.5 (R's ``findq``); NaN when never reached.
                                   A band that turns back (crosses 0.5, falls below, rises again) still
                                   gives a limit: ``findq``'s ``approx`` orders the points by value first
``compare_strata`` log-rank        ``survdiff(Surv(time, event) ~ stratum)`` (ρ = 0), chi-square and p;
                                   a stratum with no expected events is left out of the df, as R
``equalize_times``                 ``aeqSurv``: times equal up to floating-point error are merged before
                                   KM, log-rank and Cox (R's ``timefix = TRUE``)
``cox_model``                      ``coxph(Surv(time, event) ~ x1 + ..., ties = "efron")``: HR =
                                   exp(coef), Wald CI ``exp(coef ± 1.96 se)`` and p, as ``summary()``;
                                   a coefficient coxph calls possibly infinite ("Loglik converged
                                   before variable j") is flagged by coxph's own rule
``schoenfeld_test``                ``cox.zph(fit)`` (survival ≥ 3.0: a score test of the added
                                   covariates x·g(t), g = the KM transform, per term and global)
=================================  =====================================================================

Covariates for the paper's Table 3 (:data:`COX_COVARIATES`): sex is coded male = 1 and
normalized brain volume is scaled ×100, so its hazard ratio is per 1 % of intracranial volume
(the paper's "Normalized brain volume (%)").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from bagkit.errors import AnalysisError
from bagkit.results import tidy_frame
from bagkit.stats.distributions import chi2_sf, norm_sf

__all__ = ["COX_COVARIATES", "COX_LABELS", "KaplanMeierCurve", "StrataComparison", "CoxTerm", "CoxModel",
           "kaplan_meier", "compare_strata", "logrank", "equalize_times", "cox_design", "cox_model", "schoenfeld_test",
           "MIN_EVENTS", "EVENTS_PER_VARIABLE"]

# The paper's Table 3 covariates, in its order, and how the table names them.
COX_COVARIATES = ("age_at_diagnosis", "sex", "disease_duration", "edss", "nbv", "bag")
COX_LABELS = {"age_at_diagnosis": "Age at diagnosis, yr", "sex": "Sex=Male",
              "disease_duration": "First onset to diagnosis, yr", "edss": "EDSS at baseline",
              "nbv": "Normalized brain volume (%)", "bag": "Brain age gap, yr"}
MIN_EVENTS = 2  # fewer events than this and no Cox model / KM comparison is fitted
EVENTS_PER_VARIABLE = 10  # below this a warning note is attached to the model
Z95 = 1.959963984540054  # qnorm(0.975), as R prints it with digits = 16
TIME_TOLERANCE = float(np.sqrt(np.finfo(float).eps))  # aeqSurv's default


# ------------------------------------------------------------------------------------------------
# Kaplan–Meier
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class KaplanMeierCurve:
    """One Kaplan–Meier curve, at every distinct time (events and censorings), as ``survfit``."""

    label: str
    time: np.ndarray
    n_risk: np.ndarray
    n_event: np.ndarray
    n_censor: np.ndarray
    surv: np.ndarray
    std_err: np.ndarray  # Greenwood standard error of -log S (survfit's std.err)
    lower: np.ndarray  # conf.type = "log" band; NaN where S = 0
    upper: np.ndarray
    median: float
    median_ci_low: float
    median_ci_high: float

    @property
    def n(self) -> int:
        return int(self.n_risk[0]) if len(self.n_risk) else 0

    @property
    def events(self) -> int:
        return int(self.n_event.sum())

    def at_risk(self, times: Sequence[float]) -> np.ndarray:
        """Numbers at risk (time ≥ t) at each of ``times``, for the table under a KM plot."""
        times = np.asarray(times, dtype=float)
        index = np.searchsorted(self.time, times, side="left")
        padded = np.append(self.n_risk, 0)
        return padded[index].astype(int)

    def step(self) -> tuple[np.ndarray, np.ndarray]:
        """The step function from time 0 (S = 1), for drawing."""
        return np.r_[0.0, self.time], np.r_[1.0, self.surv]


def _findq(x: np.ndarray, y: np.ndarray, p: float, tol: float = np.sqrt(np.finfo(float).eps)) -> float:
    """R survival's ``findq``: the time at which the cumulative ``y = 1 - S`` reaches ``p``."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if np.all(np.isnan(y)) or np.nanmax(y) < p:
        return float("nan")
    xmax = x[-1]
    # duplicated(y), NaN equal to NaN
    keep = np.ones(len(y), dtype=bool)
    seen_nan = False
    seen: set[float] = set()
    for i, v in enumerate(y):
        if np.isnan(v):
            keep[i] = not seen_nan
            seen_nan = True
        else:
            keep[i] = v not in seen
            seen.add(v)
    x, y = x[keep], y[keep]
    n = len(y)
    index = np.arange(1, n + 1)
    valid = ~np.isnan(y)

    def first_at_least(shift: float) -> float:
        # approx(y + shift, 1:n, p, method = "constant", f = 1): approx orders the points by their
        # value first, so on a curve that turns back (a confidence band crossing p, falling below it
        # and rising again) the answer is the point with the smallest value >= p, not the last one.
        ys, ids = y[valid] + shift, index[valid]
        if len(ys) == 0 or p < ys.min() or p > ys.max():
            return float("nan")
        order = np.argsort(ys, kind="stable")
        ys, ids = ys[order], ids[order]
        return float(ids[np.searchsorted(ys, p, side="left")])

    i1, i2 = first_at_least(tol), first_at_least(-tol)
    if np.isnan(i1) or np.isnan(i2):
        return float("nan")
    quant = (x[int(i1) - 1] + x[int(i2) - 1]) / 2
    if not np.isnan(y[-1]) and abs(p - y[-1]) < tol:
        quant = (x[int(i1) - 1] + xmax) / 2
    return float(quant)


def kaplan_meier(time, event, label: str = "all") -> KaplanMeierCurve:
    """The Kaplan–Meier curve of ``time`` / 0-1 ``event`` with R's default (log) band and median."""
    time, event = _survival_data(time, event)
    if len(time) == 0:
        raise AnalysisError(f"no subjects with follow-up in '{label}'")
    t, inverse = np.unique(time, return_inverse=True)  # survfit's rows: every distinct time
    n_event = np.bincount(inverse, weights=event, minlength=len(t)).astype(float)
    n_censor = np.bincount(inverse, minlength=len(t)) - n_event
    n_risk = len(time) - np.r_[0, np.cumsum(n_event + n_censor)[:-1]]
    surv = np.cumprod(1 - n_event / n_risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        increments = np.where(n_event > 0, n_event / (n_risk * (n_risk - n_event)), 0.0)
        std_err = np.sqrt(np.cumsum(increments))
        positive = surv > 0
        lower = np.where(positive, surv * np.exp(-Z95 * std_err), np.nan)
        upper = np.where(positive, np.minimum(1.0, surv * np.exp(Z95 * std_err)), np.nan)
    x = np.r_[0.0, t]
    median = _findq(x, np.r_[0.0, 1 - surv], 0.5)
    ci_low = _findq(x, np.r_[0.0, 1 - lower], 0.5)  # the lower band reaches 0.5 first
    ci_high = _findq(x, np.r_[0.0, 1 - upper], 0.5)
    return KaplanMeierCurve(label, t, n_risk, n_event, n_censor, surv, std_err, lower, upper, median, ci_low,
                            ci_high)


def _survival_data(time, event) -> tuple[np.ndarray, np.ndarray]:
    time, event = np.asarray(time, dtype=float), np.asarray(event, dtype=float)
    keep = ~(np.isnan(time) | np.isnan(event))
    time, event = time[keep], event[keep]
    if not np.isin(event, (0.0, 1.0)).all():
        raise AnalysisError("the event indicator must be 0/1 (1 = EDSS worsening)")
    if (time < 0).any():
        raise AnalysisError("follow-up times must not be negative")
    return equalize_times(time), event


def equalize_times(time, tolerance: float = TIME_TOLERANCE) -> np.ndarray:
    """R survival's ``aeqSurv``: times equal up to floating-point error become one time.

    The distinct times are sorted; a gap ``≤ tolerance`` (absolute, or relative to the mean
    absolute time) ties a time to the one before it, and every time of such a run is replaced by
    the run's smallest. ``survfit``, ``survdiff`` and ``coxph`` (hence ``cox.zph``) do this by
    default (``timefix = TRUE``), so follow-up computed from dates (``sqrt(2)^2`` against ``2``)
    gives tied, not distinct, event times.
    """
    time = np.asarray(time, dtype=float)
    finite = np.isfinite(time)
    distinct = np.unique(time[finite])
    if len(distinct) < 2:
        return time
    gaps = np.diff(distinct)
    tied = (gaps <= tolerance) | (gaps / np.mean(np.abs(distinct)) <= tolerance)
    if not tied.any():
        return time
    cuts = distinct[np.r_[True, ~tied]]
    out = time.copy()
    out[finite] = cuts[np.searchsorted(cuts, time[finite], side="right") - 1]  # findInterval
    return out


def _require_positive_times(time: np.ndarray, name: str) -> None:
    """Refuse follow-up times ≤ 0 in a comparison. R's survdiff and coxph accept them; with every time
    0 survdiff compares the event proportions as if they were survival and reports a "significant" p
    (chi-square 23.4, p = 1e-6 for 20/20 vs 5/20 events, all at time 0): a time of 0 is no follow-up."""
    not_positive = int((np.asarray(time, float) <= 0).sum())
    if not_positive:
        raise AnalysisError(f"{name}: {not_positive} of {len(time)} follow-up time(s) are ≤ 0; the time to "
                            f"worsening or censoring must be > 0 (leave subjects without follow-up out)")


def logrank(time, event, strata) -> tuple[float, int, float]:
    """Log-rank chi-square, its degrees of freedom and p, as ``survdiff`` (ρ = 0).

    As ``survdiff``: times equal up to floating-point error are merged first (``aeqSurv``), and a
    stratum with no expected events (all its subjects censored before the first event) is left out
    of the quadratic form and of the degrees of freedom (``df = #{E > 0} − 1``; chi-square 0 when
    fewer than two strata expect events).
    """
    time, event, strata = np.asarray(time, float), np.asarray(event, float), np.asarray(strata, dtype=object)
    keep = ~(np.isnan(time) | np.isnan(event) | pd.isna(strata))
    time, event, strata = equalize_times(time[keep]), event[keep], strata[keep]
    levels = list(pd.unique(strata))
    if len(levels) < 2:
        raise AnalysisError("the log-rank test needs at least two strata; all subjects fall in one")
    member = np.stack([strata == level for level in levels]).astype(float)  # levels x subjects
    k = len(levels)
    observed, expected, variance = np.zeros(k), np.zeros(k), np.zeros((k, k))
    for t in np.unique(time[event == 1]):
        at_risk = time >= t
        died = at_risk & (time == t) & (event == 1)
        n_t, d_t = at_risk.sum(), died.sum()
        n_g = member[:, at_risk].sum(axis=1)
        observed += member[:, died].sum(axis=1)
        share = n_g / n_t
        expected += d_t * share
        if n_t > 1:
            variance += d_t * (n_t - d_t) / (n_t - 1) * (np.diag(share) - np.outer(share, share))
    used = expected > 0
    df = int(used.sum()) - 1
    if df < 1:
        return 0.0, 0, 1.0  # survdiff: "Chisq = 0 on 0 degrees of freedom, p = 1"
    difference = (observed - expected)[used][1:]
    v = variance[np.ix_(used, used)][1:, 1:]
    chisq = float(difference @ np.linalg.solve(v, difference))
    return chisq, df, chi2_sf(chisq, df)


@dataclass(frozen=True, eq=False)
class StrataComparison:
    """Kaplan–Meier curves per stratum and the log-rank test between them (Figure 2C/D).

    ``contrast`` names the comparison (``"above vs below"`` for a cutoff); ``at_risk_times`` are
    the times of the numbers-at-risk table.
    """

    subset: str
    term: str
    contrast: str
    curves: tuple[KaplanMeierCurve, ...]
    logrank_chisq: float
    logrank_df: int
    logrank_p: float
    at_risk_times: tuple[float, ...] = ()
    threshold: float | None = None
    notes: tuple[str, ...] = ()
    # the numbers at risk under the plot, per curve (in ``curves`` order) at each ``at_risk_times``;
    # computed once here, read by results.csv and by the figure alike
    numbers_at_risk: tuple[tuple[int, ...], ...] = ()

    def __post_init__(self):
        if not self.numbers_at_risk and self.at_risk_times:
            counts = tuple(tuple(int(n) for n in c.at_risk(self.at_risk_times)) for c in self.curves)
            object.__setattr__(self, "numbers_at_risk", counts)

    def curve(self, label: str) -> KaplanMeierCurve:
        return next(c for c in self.curves if c.label == label)

    def tidy(self) -> pd.DataFrame:
        a, s, t, c = "km", self.subset, self.term, self.contrast
        at_risk = dict(zip((curve.label for curve in self.curves), self.numbers_at_risk))
        rows = [(a, s, t, c, "logrank_p", self.logrank_p), (a, s, t, c, "logrank_chisq", self.logrank_chisq),
                (a, s, t, c, "logrank_df", self.logrank_df)]
        if self.threshold is not None:
            rows.append((a, s, t, c, "threshold", self.threshold))
        for curve in self.curves:
            k = curve.label
            rows += [(a, s, t, c, f"median_{k}", curve.median),
                     (a, s, t, c, f"median_{k}_ci_low", curve.median_ci_low),
                     (a, s, t, c, f"median_{k}_ci_high", curve.median_ci_high),
                     (a, s, t, c, f"n_{k}", curve.n), (a, s, t, c, f"events_{k}", curve.events)]
            for when, n in zip(self.at_risk_times, at_risk.get(k, ())):
                rows.append((a, s, t, c, f"at_risk_{k}_{when:g}y", n))
        return tidy_frame(rows)


def compare_strata(time, event, strata, subset: str = "all", term: str = "bag", contrast: str | None = None,
                   order: Sequence[str] | None = None, at_risk_times: Sequence[float] | None = None,
                   threshold: float | None = None) -> StrataComparison:
    """Kaplan–Meier per stratum and the log-rank test (any grouping; for a cutoff pass
    ``strata = np.where(positive, "above", "below")``)."""
    time, event_all = np.asarray(time, float), np.asarray(event, float)
    strata = np.asarray(strata, dtype=object)
    keep = ~(np.isnan(time) | np.isnan(event_all) | pd.isna(strata))
    time, event_all, strata = equalize_times(time[keep]), event_all[keep], strata[keep]
    _require_positive_times(time, f"{subset}: Kaplan–Meier/log-rank")
    levels = list(order) if order is not None else [str(v) for v in pd.unique(strata)]
    present = [lv for lv in levels if (strata == lv).any()]
    if len(present) < 2:
        raise AnalysisError(f"{subset}: every subject with follow-up falls in one stratum "
                            f"({', '.join(present) or 'none'}); Kaplan–Meier strata cannot be compared")
    if event_all.sum() < 1:
        raise AnalysisError(f"{subset}: no events (all {len(time)} subjects censored); time to worsening "
                            f"cannot be compared")
    curves = tuple(kaplan_meier(time[strata == lv], event_all[strata == lv], lv) for lv in present)
    chisq, df, p = logrank(time, event_all, strata)
    if at_risk_times is None:
        step = 2.0 if time.max() > 6 else 1.0
        at_risk_times = tuple(np.arange(0, time.max() + 1e-9, step))
    return StrataComparison(subset, term, contrast or " vs ".join(present), curves, chisq, df, p,
                            tuple(float(v) for v in at_risk_times), threshold)


# ------------------------------------------------------------------------------------------------
# Cox
# ------------------------------------------------------------------------------------------------
def cox_design(data: pd.DataFrame, covariates: Sequence[str]) -> pd.DataFrame:
    """Model columns for Table 3: sex (F/M) as male = 1, nbv ×100 (HR per 1 %); others as they are."""
    design = pd.DataFrame(index=data.index)
    for name in covariates:
        if name not in data:
            raise AnalysisError(f"covariate '{name}' is not a column of the cohort")
        column = data[name]
        if name == "sex" and column.dtype == object:
            design[name] = np.where(column.isna(), np.nan, (column == "M").astype(float))
        elif name == "nbv":
            design[name] = column.astype(float) * 100
        else:
            design[name] = pd.to_numeric(column, errors="coerce").astype(float)
    return design


@dataclass(frozen=True)
class CoxTerm:
    """One covariate of a Cox model: exp(coef) with its Wald CI and p, and its Schoenfeld test."""

    term: str
    label: str
    coef: float
    se: float
    hr: float
    ci_low: float
    ci_high: float
    z: float
    p: float
    zph_chisq: float = float("nan")
    zph_p: float = float("nan")


@dataclass(frozen=True)
class CoxModel:
    """A fitted Cox model (Efron ties) with its proportional-hazards check.

    ``notes`` say what a reader must know: too few events per variable, non-convergence, a
    covariate left out because it is constant, PH violations (cox.zph p < 0.05).
    """

    subset: str
    kind: str  # "univariable" | "multivariable"
    terms: tuple[CoxTerm, ...]
    n: int
    events: int
    loglik: float
    converged: bool
    zph_global_chisq: float = float("nan")
    zph_global_df: int = 0
    zph_global_p: float = float("nan")
    notes: tuple[str, ...] = ()

    @property
    def events_per_variable(self) -> float:
        return self.events / max(len(self.terms), 1)

    def term(self, name: str) -> CoxTerm | None:
        return next((t for t in self.terms if t.term == name), None)

    def summary(self) -> pd.DataFrame:
        """One row per term (like lifelines' ``summary``)."""
        return pd.DataFrame([t.__dict__ for t in self.terms]).set_index("term")

    def rows(self) -> list[tuple]:
        a, s = f"cox_{self.kind}", self.subset
        out = []
        for t in self.terms:
            out += [(a, s, t.term, "", "hr", t.hr), (a, s, t.term, "", "ci_low", t.ci_low),
                    (a, s, t.term, "", "ci_high", t.ci_high), (a, s, t.term, "", "p", t.p),
                    (a, s, t.term, "", "coef", t.coef), (a, s, t.term, "", "se", t.se),
                    (a, s, t.term, "", "zph_chisq", t.zph_chisq), (a, s, t.term, "", "zph_p", t.zph_p)]
        model_term = self.terms[0].term if self.kind == "univariable" and len(self.terms) == 1 else ""
        out += [(a, s, model_term, "", "n", self.n), (a, s, model_term, "", "events", self.events),
                (a, s, model_term, "", "events_per_variable", self.events_per_variable),
                (a, s, model_term, "", "converged", float(self.converged))]
        if self.kind == "multivariable":
            out += [(a, s, "global", "", "zph_chisq", self.zph_global_chisq),
                    (a, s, "global", "", "zph_df", self.zph_global_df),
                    (a, s, "global", "", "zph_p", self.zph_global_p)]
        return out

    def tidy(self) -> pd.DataFrame:
        return tidy_frame(self.rows())


def schoenfeld_test(time, event, X: np.ndarray, beta: np.ndarray, transform: str = "km"):
    """R's ``cox.zph`` (survival ≥ 3.0) for an Efron-ties fit: per-term and global chi-square and p.

    Score test, at (β̂, γ = 0), of the added time-varying covariates x·g(t), where g is the
    KM transform (1 − S(t−), centred on its mean over events) or ``"identity"``. Returns
    ``(chisq per term, p per term, global chisq, global df, global p)``.
    """
    time, event = np.asarray(time, float), np.asarray(event, float)
    X = np.asarray(X, float).reshape(len(time), -1)
    nvar = X.shape[1]
    if transform == "km":
        curve = kaplan_meier(time, event)
        index = np.searchsorted(curve.time, time, side="left")  # KM times strictly before t
        ttimes = 1 - np.r_[1.0, curve.surv][index]
    elif transform == "identity":
        ttimes = time.copy()
    else:
        raise AnalysisError(f"unknown cox.zph transform {transform!r}")
    gtime = ttimes - ttimes[event == 1].mean()
    xe, mean, covariance, _, event_times, _ = _efron_rows(time, event, X, beta)
    g = gtime[event == 1][np.argsort(time[event == 1], kind="stable")]  # each failure's g(t), in time order
    u = (g[:, None] * (xe - mean)).sum(axis=0)
    information = np.zeros((2 * nvar, 2 * nvar))
    information[:nvar, :nvar] = covariance.sum(axis=0)
    information[:nvar, nvar:] = information[nvar:, :nvar] = (g[:, None, None] * covariance).sum(axis=0)
    information[nvar:, nvar:] = (g[:, None, None] ** 2 * covariance).sum(axis=0)
    per_chisq, per_p = [], []
    for j in range(nvar):
        kk = list(range(nvar)) + [nvar + j]
        vector = np.r_[np.zeros(nvar), u[j]]
        chisq = float(vector @ np.linalg.solve(information[np.ix_(kk, kk)], vector))
        per_chisq.append(chisq)
        per_p.append(chi2_sf(chisq, 1))
    vector = np.r_[np.zeros(nvar), u]
    global_chisq = float(vector @ np.linalg.solve(information, vector))
    return (np.array(per_chisq), np.array(per_p), global_chisq, nvar, chi2_sf(global_chisq, nvar))


def cox_model(time, event, design: pd.DataFrame, subset: str = "all", kind: str = "multivariable",
              labels: Mapping[str, str] | None = None, min_events: int = MIN_EVENTS) -> CoxModel:
    """Fit ``coxph(Surv(time, event) ~ <design columns>, ties = "efron")`` on complete cases.

    A constant covariate is left out with a note (a model whose covariates are all constant, or
    with fewer than ``min_events`` events, raises :class:`AnalysisError`). Non-convergence is
    reported in ``converged`` and ``notes``, never hidden.
    """
    labels = {**COX_LABELS, **(labels or {})}
    frame = design.copy()
    frame["__time"] = np.asarray(time, float)
    frame["__event"] = np.asarray(event, float)
    frame = frame.dropna()
    frame["__time"] = equalize_times(frame["__time"].to_numpy())  # coxph's timefix (aeqSurv)
    notes: list[str] = []
    n, events = len(frame), int(frame["__event"].sum())
    name = f"{subset}: Cox model" + (f" of {', '.join(design.columns)}" if kind == "univariable" else "")
    if n == 0:
        raise AnalysisError(f"{name}: no subjects with follow-up and complete covariates")
    _require_positive_times(frame["__time"].to_numpy(), name)
    if events < min_events:
        raise AnalysisError(f"{name}: {events} event(s) among {n} subjects; at least {min_events} are needed "
                            f"to fit a Cox model" + (" (all censored)" if events == 0 else ""))
    covariates = []
    for column in design.columns:
        if frame[column].nunique() < 2:
            notes.append(f"{labels.get(column, column)} is constant in {subset} "
                         f"({frame[column].iloc[0]:g} for all {n}); left out of the model")
        else:
            covariates.append(column)
    if not covariates:
        raise AnalysisError(f"{name}: every covariate is constant ({'; '.join(notes)})")
    epv = events / len(covariates)
    if epv < EVENTS_PER_VARIABLE:
        notes.append(f"only {epv:.1f} events per variable ({events} events, {len(covariates)} covariate(s)); "
                     f"below {EVENTS_PER_VARIABLE}, estimates may be biased and unstable")
    X = frame[covariates].to_numpy(float)
    fit = efron_fit(frame["__time"].to_numpy(), frame["__event"].to_numpy(), X)
    beta, se = fit.beta, fit.se
    # Convergence is read from the fit itself: at the maximum of the partial likelihood the score
    # (the sum of the Schoenfeld residuals) is zero, so the Newton decrement U' I^-1 U / 2 left at
    # the estimate must be negligible (R's coxph stops at a relative change in log-likelihood of
    # 1e-9; a decrement below 1e-6 is well inside that).
    converged = fit.decrement < 1e-6
    if not converged:
        notes.append("the Cox fit did not reach the maximum of the partial likelihood (score not zero at the "
                     "estimate); its estimates are not reliable")
    if fit.infinite.any() or (np.abs(beta) > 15).any() or not np.isfinite(se).all():
        converged = False
        notes.append("a coefficient is very large or its standard error infinite (monotone likelihood: "
                     "the covariate separates events from non-events); the hazard ratio is not estimable")
    try:
        zph_chisq, zph_p, g_chisq, g_df, g_p = schoenfeld_test(frame["__time"], frame["__event"], X, beta)
    except np.linalg.LinAlgError:
        zph_chisq = zph_p = np.full(len(covariates), np.nan)
        g_chisq, g_df, g_p = float("nan"), len(covariates), float("nan")
        notes.append("the proportional-hazards test could not be computed (singular information)")
    terms = []
    for j, column in enumerate(covariates):
        b, s = float(beta[j]), float(se[j])
        with np.errstate(over="ignore"):  # a possibly-infinite coefficient: its HR limits are inf
            terms.append(CoxTerm(column, labels.get(column, column), b, s, float(np.exp(b)), float(np.exp(b - Z95 * s)),
                                 float(np.exp(b + Z95 * s)), b / s, 2 * norm_sf(abs(b / s)),
                                 float(zph_chisq[j]), float(zph_p[j])))
        if zph_p[j] < 0.05:
            notes.append(f"proportional hazards may not hold for {labels.get(column, column)} "
                         f"(cox.zph p = {zph_p[j]:.3f})")
    return CoxModel(subset, kind, tuple(terms), n, events, fit.loglik, converged, g_chisq,
                    g_df, g_p, tuple(notes))


@dataclass(frozen=True)
class EfronFit:
    """The maximum partial-likelihood fit (Efron ties) of :func:`efron_fit`."""

    beta: np.ndarray
    se: np.ndarray
    loglik: float
    decrement: float  # U' I^-1 U / 2 left at beta: 0 at the maximum
    iterations: int
    infinite: np.ndarray  # coxph's "Loglik converged before variable j; coefficient may be infinite"


def _efron_rows(time, event, X: np.ndarray, beta: np.ndarray):
    """Efron's terms per event (one row per failure, in time order): its covariates, the weighted
    mean of the risk set left after the l/d share of the tied failures, the weighted covariance
    of that set, log of its weight sum, and the event's time; plus sum of eta over events."""
    order = np.argsort(time, kind="stable")
    t, d, x = np.asarray(time, float)[order], np.asarray(event, float)[order] == 1, np.asarray(X, float)[order]
    eta = x @ beta
    w = np.exp(eta - eta.max())
    p = x.shape[1]
    # risk-set sums: everyone with time >= t (reverse cumulative sums, read at each time's first row)
    r0 = np.cumsum(w[::-1])[::-1]
    r1 = np.cumsum((w[:, None] * x)[::-1], axis=0)[::-1]
    times = np.unique(t[d])
    first = np.searchsorted(t, times, side="left")
    group = np.searchsorted(times, t[d])  # each event's event time
    n_tied = np.bincount(group, minlength=len(times))
    we, xe = w[d], x[d]
    e0 = np.bincount(group, weights=we, minlength=len(times))
    e1 = np.stack([np.bincount(group, weights=we * xe[:, j], minlength=len(times)) for j in range(p)], axis=1)
    r2 = np.empty((len(times), p, p))
    e2 = np.empty((len(times), p, p))
    for j in range(p):  # second moments column by column: no n x p x p array for big cohorts
        for k in range(j, p):
            r2[:, j, k] = r2[:, k, j] = np.cumsum((w * x[:, j] * x[:, k])[::-1])[::-1][first]
            e2[:, j, k] = e2[:, k, j] = np.bincount(group, weights=we * xe[:, j] * xe[:, k], minlength=len(times))
    # one row per event: Efron's l/d share of the tied events leaves the risk set
    rank = np.arange(len(group)) - np.repeat(np.cumsum(n_tied) - n_tied, n_tied)
    f = rank / n_tied[group]
    s0 = r0[first][group] - f * e0[group]
    s1 = r1[first][group] - f[:, None] * e1[group]
    s2 = r2[group] - f[:, None, None] * e2[group]
    mean = s1 / s0[:, None]
    covariance = s2 / s0[:, None, None] - mean[:, :, None] * mean[:, None, :]
    log_s0 = np.log(s0) + eta.max()
    return xe, mean, covariance, log_s0, t[d], float(eta[d].sum())


def efron_partial_likelihood(time, event, X: np.ndarray, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Log partial likelihood with Efron's ties, its score U and information I at ``beta``
    (``coxph(ties = "efron")``'s objective), vectorised over the event times."""
    xe, mean, covariance, log_s0, _, eta_events = _efron_rows(time, event, X, beta)
    return eta_events - float(log_s0.sum()), (xe - mean).sum(axis=0), covariance.sum(axis=0)


def efron_fit(time, event, X: np.ndarray, max_steps: int = 100) -> EfronFit:
    """Newton–Raphson with step halving from beta = 0 (as ``coxph``), on covariates centred as
    ``coxph`` centres them; iterates until the Newton decrement is below 1e-20 or the
    log-likelihood stops changing (relative 1e-14). A singular information leaves the standard
    errors infinite."""
    X = np.asarray(X, float)
    centred = X - X.mean(axis=0)
    beta = np.zeros(X.shape[1])
    loglik, score, information = efron_partial_likelihood(time, event, centred, beta)
    decrement = np.inf
    steps = 0
    for steps in range(1, max_steps + 1):
        try:
            step = np.linalg.solve(information, score)
        except np.linalg.LinAlgError:
            break
        decrement = float(score @ step) / 2
        if not np.isfinite(decrement) or decrement < 1e-20:
            break
        for _ in range(30):  # step halving while the likelihood would fall
            candidate = beta + step
            new = efron_partial_likelihood(time, event, centred, candidate)
            if np.isfinite(new[0]) and new[0] >= loglik - 1e-12 * abs(loglik):
                break
            step = step / 2
        else:
            break
        change = new[0] - loglik
        beta, (loglik, score, information) = candidate, new
        if abs(change) <= 1e-14 * max(1.0, abs(loglik)):
            break
    try:
        variance = np.linalg.inv(information)
        decrement = float(score @ variance @ score) / 2
        se = np.sqrt(np.diag(variance))
        # coxph's test: the Newton step still left is not negligible beside the coefficient (on a
        # monotone likelihood each step moves beta by about the same amount while the score vanishes)
        left = np.abs(variance @ score)
        infinite = (left > 1e-9) & (left > np.sqrt(1e-9) * np.abs(beta))
    except np.linalg.LinAlgError:
        se = np.full(len(beta), np.inf)
        decrement = float("inf")
        infinite = np.ones(len(beta), bool)
    se = np.where(np.isfinite(se) & (np.diag(information) > 0), se, np.inf)
    return EfronFit(beta, se, loglik, decrement if np.isfinite(decrement) else float("inf"), steps, infinite)
