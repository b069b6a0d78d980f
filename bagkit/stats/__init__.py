"""Pure statistics, each reproducing a named R function: group tests (``comparisons``), ROC and
cutoffs (``cutoffs``), survival (``survival``), linear models (``regression``), agreement
(``agreement``), age-bias correction (``bias``) and propensity-score matching through MatchIt
(``matching``, R via ``bagkit.rbridge``). Arrays/DataFrames in, frozen results out: no matplotlib,
no files, no report formatting.
"""
