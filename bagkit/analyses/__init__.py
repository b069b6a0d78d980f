"""Cohort → typed results, one per report section, with their notes and skip reasons; the
registry of sections and :func:`analyze`."""
from bagkit.analyses.run import ANALYSES, AnalysisOptions, Results, analyze
from bagkit.analyses.table1 import Table1Options

__all__ = ["ANALYSES", "AnalysisOptions", "Results", "Table1Options", "analyze"]
