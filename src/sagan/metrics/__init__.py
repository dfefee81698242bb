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

__all__ = [
           "METRICS",
           "RESIZE_MODES",
           "Evaluator",
           "FIDInceptionV3",
           "InceptionFeatures",
           "density_coverage",
           "fetch_weights",
           "fid",
           "frechet_distance",
           "inception_score",
           "kid",
           "precision_recall",
           "swd",
]
