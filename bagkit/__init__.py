"""bagkit: brain-age-gap studies, from a cohort table to the paper's Tables 1–3.

    import bagkit
    cohort = bagkit.read_cohort("cohort.csv", control="HC", visits="visits.csv")
    results = bagkit.analyze(cohort)
    results.table1.tidy()          # a tidy DataFrame
    results.write("out/")          # report.pdf, table1.csv, results.csv, figures/
"""
from bagkit.analyses import AnalysisOptions, Results, analyze
from bagkit.analyses.table1 import table1
from bagkit.cohort import COLUMNS, Cohort, read_cohort, read_visits
from bagkit.errors import BagkitError, CohortError, OutputExistsError, RBridgeError

__version__ = "0.1.0"

__all__ = ["read_cohort", "read_visits", "analyze", "table1", "Cohort", "Results", "AnalysisOptions",
           "COLUMNS", "BagkitError", "CohortError", "OutputExistsError", "RBridgeError", "__version__"]


def __getattr__(name):
    # Predictor helpers live in bagkit.predictors (imported on first use; never imports torch itself).
    if name in ("get_predictor", "available_predictors"):
        from bagkit import predictor
        return getattr(predictor, name)
    raise AttributeError(f"module 'bagkit' has no attribute {name!r}")
