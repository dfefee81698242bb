"""Evaluation metrics: FID Inception features and the scores computed from them."""

from .inception import FIDInceptionV3, InceptionFeatures
from .preprocess import RESIZE_MODES
from .weights import fetch_weights

__all__ = ["FIDInceptionV3", "InceptionFeatures", "RESIZE_MODES", "fetch_weights"]
