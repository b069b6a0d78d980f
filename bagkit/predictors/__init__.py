"""The predictor side of the core: the protocol every predictor follows (``protocol``), the
entry-point registry (``registry``), cohort-wide prediction with its content-addressed cache
(``batch``) and the conformance check every predictor passes (``checks``). Plug-ins live in
their own distributions (``predictors/`` at the top level); listing them never imports them,
and nothing here imports torch."""
from bagkit.io.hashing import file_hash
from bagkit.predictors.batch import predict_cohort, require_predictions
from bagkit.predictors.checks import check_predictor
from bagkit.predictors.examples import with_example_inputs
from bagkit.predictors.protocol import (
    ENTRY_POINT_GROUP,
    PREDICTION_COLUMNS,
    AgeDistribution,
    BrainAgePredictor,
    scan_index,
)
from bagkit.predictors.registry import available_predictors, get_predictor, load_predictor, resolve_predictor

__all__ = [
    "AgeDistribution", "BrainAgePredictor", "ENTRY_POINT_GROUP", "PREDICTION_COLUMNS", "available_predictors",
    "check_predictor", "get_predictor", "load_predictor", "predict_cohort", "require_predictions", "resolve_predictor",
    "file_hash", "scan_index", "with_example_inputs",
]
