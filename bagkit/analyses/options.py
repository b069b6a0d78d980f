"""The analysis options: the one source of every default (the CLI reads its defaults from here)."""
from __future__ import annotations

from dataclasses import dataclass

from bagkit.stats.matching import DEFAULT_COVARIATES

__all__ = ["AnalysisOptions"]


@dataclass(frozen=True)
class AnalysisOptions:
    """Everything a user can choose about the analysis (recorded on the provenance page)."""

    match_groups: tuple[str, str] | None = None  # default: the first two patient groups
    match_covariates: tuple[str, ...] = DEFAULT_COVARIATES
    match_ratio: int = 1
    match_caliper: float | None = None
    match_replace: bool = False
    match_exact: tuple[str, ...] = ()
    match_order: str = "data"
    cutoff_rule: str = "spec80"  # or "youden"
    specificity_at_least: float = 0.80
    cutoff_bootstrap: int = 0  # bootstrap replicates for the cutoff's CI (0: none)
    cox_selection: str = "all"  # or "univariable_p05" (the paper's Table 3: univariable p < 0.05, BAG kept)
    seed: int = 20240101
