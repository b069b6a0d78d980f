"""The effect after matching: the BAG difference estimated by regression on the matched set with
pair-clustered standard errors, as MatchIt's guidance ("Estimating Effects After Matching")
recommends, beside the paper's unpaired t-test.

=====================================  ==============================================================
``matched_effect(matching, "bag")``    ``fit <- lm(bag ~ treat, data = match.data(m), weights = weights)``
                                       ``lmtest::coeftest(fit, vcov. = sandwich::vcovCL(fit,
                                       cluster = ~subclass))`` and ``lmtest::coefci(...)``: estimate
                                       (mean A − mean B), cluster-robust SE (vcovCL's defaults: HC1
                                       with the cluster adjustment G/(G − 1)), t with the residual df,
                                       p, 95% CI
``matched_effect(..., adjust=True)``   the same with the matching covariates in the model
                                       (``lm(bag ~ treat + x1 + ... + xk)``; "doubly robust")
=====================================  ==============================================================

R runs through the bridge (``r/effects.R``); column names never reach R (``y``, ``treat``,
``subclass``, ``weights``, ``x1..xk``). Matching with replacement has no pair subclasses, so it is
refused with a clear error.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bagkit.errors import AnalysisError
from bagkit.results import tidy_frame
from bagkit.stats.matching import Matching, _encode

__all__ = ["MatchedEffect", "matched_effect"]


@dataclass(frozen=True)
class MatchedEffect:
    """mean(A) − mean(B) of ``term`` on the matched set, by ``lm`` with pair-clustered SEs."""

    analysis: str  # psm_effect | psm_sd_effect
    term: str
    groups: tuple[str, str]
    covariates: tuple[str, ...]  # () for the unadjusted model
    estimate: float
    se: float
    t: float
    df: float
    p: float
    ci_low: float
    ci_high: float
    n: int
    clusters: int
    versions: tuple[tuple[str, str], ...] = ()

    @property
    def contrast(self) -> str:
        base = f"{self.groups[0]} - {self.groups[1]}"
        return base if not self.covariates else f"{base} | {' + '.join(self.covariates)}"

    @property
    def formula(self) -> str:
        return f"{self.term} ~ group" + "".join(f" + {c}" for c in self.covariates)

    def tidy(self) -> pd.DataFrame:
        a, c, t = self.analysis, self.contrast, self.term
        return tidy_frame([(a, "matched", t, c, name, getattr(self, name))
                           for name in ("estimate", "se", "ci_low", "ci_high", "p", "t", "df", "n", "clusters")])


def matched_effect(matching: Matching, term: str = "bag", adjust: bool = False, level: float = 0.95,
                   analysis: str | None = None) -> MatchedEffect:
    """The matched-set effect of group A vs B on ``term`` (see the module table for the R call)."""
    from bagkit import rbridge

    analysis = analysis or f"{matching.analysis}_effect"
    if matching.options.get("replace"):
        raise AnalysisError("the matched-set effect with pair-clustered SEs needs pairs; matching with "
                            "replacement has none (MatchIt's subclass is NA)")
    data = matching.matched_cohort.data
    if term not in data.columns or not data[term].notna().any():
        raise AnalysisError(f"the matched set has no values of {term!r}")
    subjects = matching.subjects.set_index("subject_id")
    ids = data["subject_id"].astype(str)
    frame = pd.DataFrame({"y": pd.to_numeric(data[term], errors="coerce").to_numpy(float),
                          "treat": (data["group"] == matching.groups[0]).astype(float).to_numpy(),
                          "subclass": subjects.loc[ids, "pair"].to_numpy(float),
                          "weights": subjects.loc[ids, "weight"].to_numpy(float)})
    covariates = tuple(matching.covariates) if adjust else ()
    safe = {c: f"x{i}" for i, c in enumerate(covariates, start=1)}
    for column in covariates:
        encoded = _encode(data[column], column)
        if isinstance(encoded.dtype, pd.CategoricalDtype):
            raise AnalysisError(f"covariate {column!r} is text; the adjusted matched-set effect takes numeric "
                                f"covariates only")
        frame[safe[column]] = encoded.to_numpy(float)
    frame = frame.dropna()
    if frame["subclass"].isna().any() or len(frame) < 4:
        raise AnalysisError(f"the matched set has too few subjects with {term} ({len(frame)})")
    if frame["treat"].nunique() < 2:
        raise AnalysisError(f"{term} is missing in one matched group")
    rbridge.require_r_packages("sandwich", "lmtest")
    out = rbridge.run_r("bagkit_matched_effect", "effects.R", data=frame,
                        covariates=[safe[c] for c in covariates] or None, level=float(level))
    values = {k: float(out[k]) for k in ("estimate", "se", "t", "df", "p", "ci_low", "ci_high")}
    if not np.isfinite(values["se"]):
        raise AnalysisError(f"the cluster-robust SE of {term} is not finite")
    return MatchedEffect(analysis, term, tuple(matching.groups), covariates, n=int(out["n"]),
                         clusters=int(out["clusters"]),
                         versions=(("sandwich", str(out["sandwich"])), ("lmtest", str(out["lmtest"]))), **values)
