"""ROC of a marker (BAG) for an event (EDSS worsening), its AUC with DeLong CI, and cutoffs.

Everything follows R's pROC (1.18), which the tests compare against:

=====================================  ==================================================================
``roc_curve(marker, event, d)``        ``roc(event, marker, direction = d)``: controls are the subjects
                                       without the event; ``"<"``: a higher marker marks the event
                                       (positive when marker > threshold), ``">"``: a lower one;
                                       ``"auto"`` picks ``"<"`` when ``median(controls) <= median(cases)``,
                                       else ``">"``. :func:`roc_analysis` defaults to ``"<"`` (the
                                       study's hypothesis, higher BAG → worsening): pROC's documentation
                                       warns that ``"auto"`` biases the AUC upwards, and its maintainer
                                       advises setting the direction whenever it is known (pROC #128)
thresholds                             ``-Inf``, the midpoints between consecutive sorted distinct marker
                                       values, ``Inf`` (pROC's convention); for ``"<"`` a subject is
                                       called positive when marker > threshold
``RocCurve.auc``, ``ci_low/ci_high``   ``auc(r)``, ``ci.auc(r, method = "delong")`` (DeLong et al. 1988:
                                       placement values, normal CI clipped to [0, 1])
``find_cutoff(curve, "youden")``       ``coords(r, "best", best.method = "youden")`` (max sens + spec; on
                                       ties pROC returns every tied row, we keep the lowest threshold and
                                       list the others in ``tied_thresholds``)
``find_cutoff(curve, "spec80")``       the rows of ``coords(r, x = "all")`` with specificity ≥
                                       ``specificity_at_least`` (0.80), the one with the highest
                                       sensitivity (ties: the highest specificity) — the paper's rule
``bootstrap_cutoff``                   percentile CI of the chosen threshold from a stratified bootstrap
                                       (cases and controls resampled separately, as pROC's
                                       ``ci.coords(stratified = TRUE)``), seeded
=====================================  ==================================================================
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bagkit.errors import AnalysisError
from bagkit.results import tidy_frame
from bagkit.stats.distributions import norm_ppf

__all__ = ["RULES", "DIRECTIONS", "direction_words", "RocCurve", "Cutoff", "RocAnalysis", "roc_curve", "delong_ci", "find_cutoff",
           "bootstrap_cutoff", "roc_analysis"]

RULES = ("spec80", "youden")
# The user's words for the ROC direction -> pROC's ``direction`` argument.
DIRECTIONS = {"higher": "<", "lower": ">", "auto": "auto"}


def direction_words(direction: str, marker: str = "BAG", event: str = "the event") -> str:
    """pROC's ``"<"`` / ``">"`` said in words: "higher BAG marks the event"."""
    if direction not in ("<", ">"):
        raise AnalysisError(f"ROC direction must be '<' or '>' once fitted; got {direction!r}")
    return f"{'higher' if direction == '<' else 'lower'} {marker} marks {event}"


@dataclass(frozen=True, eq=False)
class RocCurve:
    """An empirical ROC curve as pROC builds it.

    ``thresholds`` run from -inf to inf; ``sensitivities``/``specificities`` are at each threshold.
    ``direction`` is ``"<"`` (cases have higher values: positive when marker > threshold) or ``">"``.
    """

    thresholds: np.ndarray
    sensitivities: np.ndarray
    specificities: np.ndarray
    direction: str
    auc: float
    auc_se: float
    ci_low: float
    ci_high: float
    n_cases: int
    n_controls: int

    def coords(self) -> pd.DataFrame:
        """Every threshold with its specificity and sensitivity, as ``coords(r, x = "all")``."""
        return pd.DataFrame({"threshold": self.thresholds, "specificity": self.specificities,
                             "sensitivity": self.sensitivities})


@dataclass(frozen=True)
class Cutoff:
    """A cutoff chosen by ``rule``; for direction ``"<"`` a subject is positive when marker > threshold."""

    rule: str
    threshold: float
    sensitivity: float
    specificity: float
    direction: str = "<"
    specificity_at_least: float | None = None
    tied_thresholds: tuple[float, ...] = ()
    ci_low: float | None = None  # bootstrap percentile CI of the threshold (when asked for)
    ci_high: float | None = None
    n_bootstrap: int = 0

    @property
    def comparison(self) -> str:
        """The comparison that makes a subject positive: ``">"`` for direction ``"<"``, else ``"<"``."""
        return ">" if self.direction == "<" else "<"

    def rule_text(self, marker: str = "BAG", decimals: int = 1) -> str:
        """The cutoff as a reader applies it: ``"BAG > 6.1"`` (or ``"BAG < -2.0"``)."""
        return f"{marker} {self.comparison} {self.threshold:.{decimals}f}"

    def positive(self, marker) -> np.ndarray:
        """True where the marker is on the event side of the cutoff (above it for ``"<"``)."""
        marker = np.asarray(marker, dtype=float)
        return marker > self.threshold if self.direction == "<" else marker < self.threshold


def _check(marker, event) -> tuple[np.ndarray, np.ndarray]:
    marker = np.asarray(marker, dtype=float)
    event = np.asarray(event, dtype=float)
    if marker.shape != event.shape:
        raise AnalysisError(f"marker and event differ in length ({len(marker)} vs {len(event)})")
    keep = ~(np.isnan(marker) | np.isnan(event))
    marker, event = marker[keep], event[keep]
    if not np.isin(event, (0.0, 1.0)).all():
        raise AnalysisError("the event must be coded 0/1 (1 = event, e.g. EDSS worsening)")
    n_cases, n_controls = int((event == 1).sum()), int((event == 0).sum())
    if n_cases == 0 or n_controls == 0:
        why = (f"no events: all {n_controls} subjects censored" if n_cases == 0
               else f"every one of the {n_cases} subjects had the event: none without it")
        raise AnalysisError(f"ROC needs subjects with and without the event; found {n_cases} with and "
                            f"{n_controls} without ({why})")
    return marker, event


def delong_ci(cases: np.ndarray, controls: np.ndarray, level: float = 0.95) -> tuple[float, float, float, float]:
    """AUC, its DeLong standard error and CI for direction ``"<"`` (cases higher), as
    ``ci.auc(method = "delong")``: ``var = var(V10)/n_cases + var(V01)/n_controls``."""
    cases, controls = np.asarray(cases, float), np.asarray(controls, float)
    m, n = len(cases), len(controls)
    sorted_cases, sorted_controls = np.sort(cases), np.sort(controls)
    below = np.searchsorted(sorted_controls, cases, "left")
    ties = np.searchsorted(sorted_controls, cases, "right") - below
    v10 = (below + 0.5 * ties) / n  # per case: share of controls below it (ties count half)
    above = m - np.searchsorted(sorted_cases, controls, "right")
    ties = np.searchsorted(sorted_cases, controls, "right") - np.searchsorted(sorted_cases, controls, "left")
    v01 = (above + 0.5 * ties) / m  # per control: share of cases above it
    auc = float(v10.mean())
    var = (v10.var(ddof=1) / m if m > 1 else 0.0) + (v01.var(ddof=1) / n if n > 1 else 0.0)
    se = float(np.sqrt(var))
    z = norm_ppf(0.5 + level / 2)
    return auc, se, max(0.0, auc - z * se), min(1.0, auc + z * se)


def roc_curve(marker, event, direction: str = "auto") -> RocCurve:
    """The ROC curve of ``marker`` for a 0/1 ``event``; see the module table for the R equivalent."""
    marker, event = _check(marker, event)
    cases, controls = marker[event == 1], marker[event == 0]
    if direction == "auto":
        direction = "<" if np.median(controls) <= np.median(cases) else ">"
    if direction not in ("<", ">"):
        raise AnalysisError(f"ROC direction must be 'auto', '<' or '>'; got {direction!r}")
    values = np.unique(marker)
    thresholds = np.concatenate([[-np.inf], (values[1:] + values[:-1]) / 2, [np.inf]])
    sorted_cases, sorted_controls = np.sort(cases), np.sort(controls)
    cases_below = np.searchsorted(sorted_cases, thresholds, "left") / len(cases)  # share < threshold
    controls_below = np.searchsorted(sorted_controls, thresholds, "left") / len(controls)
    # thresholds never equal a marker value (midpoints, ±inf), so < and <= agree
    if direction == "<":
        sens, spec = 1 - cases_below, controls_below
        auc, se, low, high = delong_ci(cases, controls)
    else:
        sens, spec = cases_below, 1 - controls_below
        auc, se, low, high = delong_ci(-cases, -controls)
    return RocCurve(thresholds, sens, spec, direction, auc, se, low, high, len(cases), len(controls))


def find_cutoff(curve: RocCurve, rule: str = "spec80", specificity_at_least: float = 0.80) -> Cutoff:
    """The cutoff by ``rule`` (``"spec80"``: highest sensitivity at specificity ≥ ``specificity_at_least``;
    ``"youden"``: highest sensitivity + specificity)."""
    sens, spec, thr = curve.sensitivities, curve.specificities, curve.thresholds
    if rule == "youden":
        score = sens + spec
        best = np.flatnonzero(score >= score.max() - 1e-12)
        pick = best[0]
        return Cutoff("youden", float(thr[pick]), float(sens[pick]), float(spec[pick]), curve.direction,
                      tied_thresholds=tuple(float(t) for t in thr[best[1:]]))
    if rule == "spec80":
        allowed = np.flatnonzero(spec >= specificity_at_least - 1e-12)
        top = allowed[sens[allowed] >= sens[allowed].max() - 1e-12]
        pick = top[np.argmax(spec[top])]
        ties = [t for t in top[spec[top] >= spec[pick] - 1e-12] if t != pick]
        return Cutoff("spec80", float(thr[pick]), float(sens[pick]), float(spec[pick]), curve.direction,
                      specificity_at_least=specificity_at_least,
                      tied_thresholds=tuple(float(thr[t]) for t in ties))
    raise AnalysisError(f"unknown cutoff rule {rule!r}; choose one of: {', '.join(RULES)}")


def bootstrap_cutoff(marker, event, rule: str, specificity_at_least: float = 0.80, n_bootstrap: int = 2000,
                     seed: int = 0, direction: str | None = None, level: float = 0.95) -> tuple[float, float]:
    """Percentile CI of the cutoff's threshold over a stratified bootstrap (seeded).

    ``direction`` is held fixed at the full-data curve's direction (as pROC's resampling keeps it).
    Replicates whose threshold is infinite are left out of the percentiles.
    """
    marker, event = _check(marker, event)
    if direction is None:
        direction = roc_curve(marker, event).direction
    rng = np.random.default_rng(seed)
    cases, controls = marker[event == 1], marker[event == 0]
    values = []
    for _ in range(n_bootstrap):
        c = rng.choice(cases, len(cases), replace=True)
        k = rng.choice(controls, len(controls), replace=True)
        curve = roc_curve(np.concatenate([c, k]), np.r_[np.ones(len(c)), np.zeros(len(k))], direction)
        values.append(find_cutoff(curve, rule, specificity_at_least).threshold)
    values = np.asarray(values)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


@dataclass(frozen=True, eq=False)
class RocAnalysis:
    """The ROC of a marker in one subset and its cutoffs (one per rule; ``rule`` is the one used)."""

    subset: str
    marker: str
    curve: RocCurve
    cutoffs: tuple[Cutoff, ...]
    rule: str
    requested_direction: str = "<"  # what was asked: "<", ">" or "auto" (curve.direction is what was used)

    @property
    def cutoff(self) -> Cutoff:
        """The cutoff of the chosen rule."""
        return next(c for c in self.cutoffs if c.rule == self.rule)

    def tidy(self) -> pd.DataFrame:
        c = self.curve
        rows = [("roc", self.subset, self.marker, "", "auc", c.auc),
                ("roc", self.subset, self.marker, "", "ci_low", c.ci_low),
                ("roc", self.subset, self.marker, "", "ci_high", c.ci_high),
                ("roc", self.subset, self.marker, "", "se", c.auc_se),
                ("roc", self.subset, self.marker, "", "n_cases", c.n_cases),
                ("roc", self.subset, self.marker, "", "n_controls", c.n_controls),
                ("roc", self.subset, self.marker, "", "direction_higher_is_event",
                 1.0 if c.direction == "<" else 0.0),
                ("roc", self.subset, self.marker, "", "direction_auto",
                 1.0 if self.requested_direction == "auto" else 0.0)]
        for cut in self.cutoffs:
            rows += [("cutoff", self.subset, self.marker, cut.rule, "threshold", cut.threshold),
                     ("cutoff", self.subset, self.marker, cut.rule, "sensitivity", cut.sensitivity),
                     ("cutoff", self.subset, self.marker, cut.rule, "specificity", cut.specificity)]
            if cut.ci_low is not None:
                rows += [("cutoff", self.subset, self.marker, cut.rule, "threshold_ci_low", cut.ci_low),
                         ("cutoff", self.subset, self.marker, cut.rule, "threshold_ci_high", cut.ci_high)]
        return tidy_frame(rows)


def roc_analysis(marker, event, subset: str = "all", marker_name: str = "bag", rule: str = "spec80",
                 specificity_at_least: float = 0.80, n_bootstrap: int = 0, seed: int = 0,
                 direction: str = "<") -> RocAnalysis:
    """ROC, AUC (DeLong CI) and both cutoffs (``spec80`` and ``youden``) of ``marker`` for ``event``.

    ``direction`` is pROC's: ``"<"`` (default: a higher marker marks the event), ``">"`` or
    ``"auto"`` (chosen from the medians, which biases the AUC upwards; see the module table).

    ``n_bootstrap > 0`` adds a seeded stratified-bootstrap percentile CI to each cutoff's threshold.
    """
    if rule not in RULES:
        raise AnalysisError(f"unknown cutoff rule {rule!r}; choose one of: {', '.join(RULES)}")
    curve = roc_curve(marker, event, direction)
    cutoffs = []
    for name in RULES:
        cut = find_cutoff(curve, name, specificity_at_least)
        if n_bootstrap > 0:
            low, high = bootstrap_cutoff(marker, event, name, specificity_at_least, n_bootstrap, seed,
                                         curve.direction)
            cut = Cutoff(**{**cut.__dict__, "ci_low": low, "ci_high": high, "n_bootstrap": n_bootstrap})
        cutoffs.append(cut)
    return RocAnalysis(subset, marker_name, curve, tuple(cutoffs), rule, direction)
