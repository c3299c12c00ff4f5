"""Causal features from canonical bars: a registry of named features, normalisers and state discretisers.

Quick use::

    from rltrade.features import FINRL_INDICATORS, build_features, feature_warmup

    table = build_features(bars, [*FINRL_INDICATORS, "turbulence"])
    start = feature_warmup([*FINRL_INDICATORS, "turbulence"])  # first row without NaN

Every feature's value at bar t depends only on bars with timestamp <= t; the test suite proves
it for each registered feature with :func:`rltrade.testing.assert_causal`. See docs/features.md.
"""

from rltrade.features.base import Feature, FeatureError
from rltrade.features.build import build_features
from rltrade.features.normalize import (
    KMeansDiscretizer,
    MinMaxNormalizer,
    Normalizer,
    ZScoreNormalizer,
    normalizer_from_dict,
)
from rltrade.features.registry import (
    FEATURES,
    FINRL_INDICATORS,
    NEELY_SIGNALS,
    feature_columns,
    feature_warmup,
    resolve_features,
)
from rltrade.features.turbulence import turbulence_index

__all__ = [
    "FEATURES",
    "FINRL_INDICATORS",
    "NEELY_SIGNALS",
    "Feature",
    "FeatureError",
    "KMeansDiscretizer",
    "MinMaxNormalizer",
    "Normalizer",
    "ZScoreNormalizer",
    "build_features",
    "feature_columns",
    "feature_warmup",
    "normalizer_from_dict",
    "resolve_features",
    "turbulence_index",
]
