"""Evaluation metrics: FID Inception features and the scores computed from them."""

from .evaluate import METRICS, Evaluator
from .fid import fid, frechet_distance
from .inception import FIDInceptionV3, InceptionFeatures
from .inception_score import inception_score
from .kid import kid
from .precision_recall import density_coverage, precision_recall
from .preprocess import RESIZE_MODES
from .swd import swd
from .weights import fetch_weights

__all__ = ["FIDInceptionV3", "InceptionFeatures", "RESIZE_MODES", "fetch_weights", "fid", "frechet_distance", "kid",
           "inception_score", "precision_recall", "density_coverage", "swd", "Evaluator", "METRICS"]
