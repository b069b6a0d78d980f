"""The analysis options: the one source of every default (the CLI reads its defaults from here)."""
from __future__ import annotations

from dataclasses import dataclass

from bagkit.analyses.table1 import Table1Options
from bagkit.stats.matching import DEFAULT_COVARIATES

__all__ = ["AnalysisOptions"]


@dataclass(frozen=True)
class AnalysisOptions:
    """Everything a user can choose about the analysis (recorded on the provenance page).

    ``None`` for ``match_groups`` and ``match_covariates`` means bagkit's choice (the first two
    patient groups; :data:`~bagkit.stats.matching.DEFAULT_COVARIATES`, see :attr:`covariates_to_match`):
    a matching bagkit chose that the cohort cannot support is skipped with a note. A value the user
    gave (groups, covariates, exact variables) is a request: when it cannot be honoured the run
    stops with a :class:`~bagkit.errors.RequestError`.
    """

    match_groups: tuple[str, str] | None = None  # None: the first two patient groups
    match_covariates: tuple[str, ...] | None = None  # None: DEFAULT_COVARIATES (bagkit's choice)
    match_ratio: int = 1
    match_caliper: float | None = None
    match_replace: bool = False
    match_exact: tuple[str, ...] = ()
    match_order: str = "data"
    welch: bool = False  # Welch's t-test instead of Student's for two-group continuous comparisons
    cutoff_rule: str = "spec80"  # or "youden"
    specificity_at_least: float = 0.80
    cutoff_bootstrap: int = 0  # bootstrap replicates for the cutoff's CI (0: none)
    roc_direction: str = "higher"  # higher BAG marks worsening (pROC direction "<"); "lower" (">") or "auto"
    cox_selection: str = "all"  # or "univariable_p05" (the paper's Table 3: univariable p < 0.05, BAG kept)
    bias_correction: str = "none"  # or "linear" / "bag" (bagkit.stats.bias), fitted on the controls
    bias_folds: int = 10  # k of the k-fold cross-fitting that gives the controls their own corrected BAG
    bias_calibration: str | None = None  # a table of healthy subjects (age, brain_age) to fit on instead
    seed: int = 20240101
    table1: Table1Options = Table1Options()  # SMD, missing, overall columns; p adjustment (all off)

    @property
    def covariates_to_match(self) -> tuple[str, ...]:
        """The matching covariates: the user's, or :data:`DEFAULT_COVARIATES` when they gave none."""
        return tuple(self.match_covariates) if self.match_covariates is not None else DEFAULT_COVARIATES
