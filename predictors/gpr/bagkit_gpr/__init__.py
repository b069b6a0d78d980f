"""bagkit-gpr: a Gaussian-process-regression brain-age baseline (as brainageR) for bagkit."""
from bagkit_gpr.predictor import GaussianProcessBrainAge

__all__ = ["GaussianProcessBrainAge"]
