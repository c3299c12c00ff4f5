"""The registry of named features and helpers to resolve names, parameters, columns and warm-ups."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from rltrade.features.base import Feature, FeatureError
from rltrade.features.neely import NEELY_FEATURES
from rltrade.features.returns import RETURN_FEATURES
from rltrade.features.technical import TECHNICAL_FEATURES
from rltrade.features.turbulence import TURBULENCE_FEATURES


def _index(features: Iterable[Feature]) -> Mapping[str, Feature]:
    table: dict[str, Feature] = {}
    for feature in features:
        if feature.name in table:
            raise FeatureError(f"duplicate feature name {feature.name!r}")
        table[feature.name] = feature
    return MappingProxyType(table)


FEATURES: Mapping[str, Feature] = _index(RETURN_FEATURES + NEELY_FEATURES + TECHNICAL_FEATURES + TURBULENCE_FEATURES)
"""Every built-in feature by name (read-only). Pass ``registry=`` to the functions below to use others."""

NEELY_SIGNALS: tuple[str, ...] = tuple(f.name for f in NEELY_FEATURES)
"""The 14 Neely et al. (2014) signals."""

FINRL_INDICATORS: tuple[str, ...] = (
    "macd",
    "boll_ub",
    "boll_lb",
    "rsi_30",
    "cci_30",
    "dx_30",
    "sma_30",
    "sma_60",
)
"""FinRL's default ``INDICATORS`` list (use with ``"turbulence"`` for the ensemble strategy)."""


def resolve_features(names: str | Iterable[str], registry: Mapping[str, Feature] | None = None) -> list[Feature]:
    """Look up feature names, keeping their order and dropping repeats.

    Parameters
    ----------
    names:
        One name or several.
    registry:
        Where to look them up; :data:`FEATURES` by default.

    Raises
    ------
    FeatureError
        For an unknown name; the message lists the closest registered names.
    """
    table = FEATURES if registry is None else registry
    wanted = [names] if isinstance(names, str) else list(names)
    resolved: list[Feature] = []
    for name in wanted:
        if name not in table:
            close = difflib.get_close_matches(str(name), list(table), n=5, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise FeatureError(
                f"unknown feature {name!r}{hint} (rltrade.features.FEATURES lists the {len(table)} known ones)"
            )
        if table[name] not in resolved:
            resolved.append(table[name])
    return resolved


def split_params(features: Iterable[Feature], params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Give each feature its parameters (defaults overridden by ``params``).

    Raises
    ------
    FeatureError
        When a key of ``params`` is a parameter of none of ``features``.
    """
    features = list(features)
    known = {key for feature in features for key in feature.params}
    unknown = sorted(set(params) - known)
    if unknown:
        accepted = ", ".join(sorted(known)) or "none"
        raise FeatureError(f"unknown feature parameter(s) {unknown}; these features accept: {accepted}")
    return {feature.name: feature.resolve_params(**params) for feature in features}


def feature_warmup(names: str | Iterable[str], *, registry: Mapping[str, Feature] | None = None, **params: Any) -> int:
    """The longest warm-up of a feature set: rows before it contain NaN, rows from it on do not.

    For a cross-sectional feature (``turbulence``) the count is in timestamps of the panel.
    Consumers start (training windows, env episodes) at this row of each symbol.

    Parameters
    ----------
    names:
        Feature names.
    registry:
        Where to look them up; :data:`FEATURES` by default.
    **params:
        Feature parameters, as for :func:`rltrade.features.build_features`.
    """
    features = resolve_features(names, registry)
    per_feature = split_params(features, params)
    return max((feature.warmup(**per_feature[feature.name]) for feature in features), default=0)


def feature_columns(
    names: str | Iterable[str], *, registry: Mapping[str, Feature] | None = None, **params: Any
) -> list[str]:
    """The output columns of a feature set, in the order :func:`build_features` returns them."""
    features = resolve_features(names, registry)
    per_feature = split_params(features, params)
    columns: list[str] = []
    for feature in features:
        columns.extend(feature.output_columns(**per_feature[feature.name]))
    return columns
