"""The features section of a run config, checked against the feature registry (before any training)."""

from __future__ import annotations

import difflib

from rltrade.config import FeaturesConfig
from rltrade.features.base import FeatureError
from rltrade.features.registry import FEATURES, feature_warmup


def feature_config_problems(features: FeaturesConfig) -> list[tuple[str, str]]:
    """Unknown feature names (with close matches) and parameters no feature takes: ``(field, message)`` pairs."""
    problems = []
    for i, name in enumerate(features.names):
        if name not in FEATURES:
            close = difflib.get_close_matches(name, list(FEATURES), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            problems.append(
                (f"features.names[{i}]", f"unknown feature {name!r}{hint} (`rltrade.features.FEATURES` lists them)")
            )
    if not problems:
        try:
            feature_warmup(features.names, **features.params)
        except FeatureError as exc:
            problems.append(("features.params", str(exc)))
    return problems
