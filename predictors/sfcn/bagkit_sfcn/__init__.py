"""bagkit-sfcn: the SFCN brain-age predictor (Peng et al. 2021) as a bagkit plug-in.

Registered in the ``bagkit.predictors`` entry-point group as ``sfcn``::

    import bagkit
    predictor = bagkit.get_predictor("sfcn", weights="run_20190719_00_epoch_best_mae.p")
    predictor.predict(["sub-01_T1w.nii.gz"])
"""
from bagkit_sfcn.model import SFCN, bin_centers, kl_loss, read_state_dict, soft_labels
from bagkit_sfcn.predictor import PAPER_AGE_RANGE, UK_BIOBANK_AGE_RANGE, SFCNBrainAge

__all__ = [
    "SFCN", "SFCNBrainAge", "PAPER_AGE_RANGE", "UK_BIOBANK_AGE_RANGE", "bin_centers", "kl_loss",
    "read_state_dict", "soft_labels",
]
