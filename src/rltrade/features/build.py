"""``build_features``: canonical bars in, a (timestamp, symbol)-indexed feature table out.

Pandas is used only to read the bars and to wrap the result; every feature runs on numpy
arrays, per symbol in timestamp order (or on the timestamps x symbols matrix for
cross-sectional features).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from rltrade.errors import DataValidationError
from rltrade.features.base import Feature, FeatureError, FloatArray
from rltrade.features.registry import resolve_features, split_params

log = logging.getLogger(__name__)

INDEX_NAMES: tuple[str, str] = ("timestamp", "symbol")


@dataclass(frozen=True)
class _Panel:
    """Bars as arrays, rows in canonical (timestamp, symbol) order."""

    frame: pd.DataFrame  # the bars, sorted by (timestamp, symbol), fresh RangeIndex
    symbol_codes: NDArray[np.intp]  # row -> index into `symbols`
    symbols: NDArray[Any]
    time_codes: NDArray[np.intp]  # row -> index into the sorted unique timestamps
    n_times: int
    by_symbol: NDArray[np.intp]  # row positions grouped by symbol, each group in time order
    group_bounds: NDArray[np.intp]  # by_symbol[group_bounds[i]:group_bounds[i + 1]] = rows of symbols[i]

    @classmethod
    def from_bars(cls, bars: pd.DataFrame) -> _Panel:
        missing = [c for c in INDEX_NAMES if c not in bars.columns]
        if missing:
            raise DataValidationError(
                f"bars lack the column(s) {missing}; expected canonical bars (rltrade.data.schema)"
            )
        if bars["timestamp"].isna().any() or bars["symbol"].isna().any():
            raise DataValidationError("bars have missing timestamps (NaT) or symbols")
        frame = bars.sort_values(list(INDEX_NAMES), kind="stable").reset_index(drop=True)
        symbol_codes, symbols = pd.factorize(frame["symbol"], sort=True)
        time_codes, times = pd.factorize(frame["timestamp"], sort=True)
        duplicated = frame.duplicated(list(INDEX_NAMES)).to_numpy()
        if duplicated.any():
            row = frame.loc[np.flatnonzero(duplicated)[0]]
            raise DataValidationError(
                f"bars have duplicate (timestamp, symbol) rows, e.g. {row['symbol']} {row['timestamp']}; "
                "validate them with rltrade.data before building features"
            )
        by_symbol = np.lexsort((time_codes, symbol_codes)).astype(np.intp)
        counts = np.bincount(symbol_codes, minlength=len(symbols))
        bounds = np.concatenate([[0], np.cumsum(counts)]).astype(np.intp)
        return cls(
            frame=frame,
            symbol_codes=symbol_codes.astype(np.intp),
            symbols=np.asarray(symbols),
            time_codes=time_codes.astype(np.intp),
            n_times=len(times),
            by_symbol=by_symbol,
            group_bounds=bounds,
        )

    def column(self, name: str) -> FloatArray:
        return self.frame[name].to_numpy(dtype=np.float64, na_value=np.nan)

    def symbol_rows(self) -> Iterable[tuple[Any, NDArray[np.intp]]]:
        for i, symbol in enumerate(self.symbols):
            yield symbol, self.by_symbol[self.group_bounds[i] : self.group_bounds[i + 1]]

    def wide(self, values: FloatArray) -> FloatArray:
        matrix = np.full((self.n_times, len(self.symbols)), np.nan)
        matrix[self.time_codes, self.symbol_codes] = values
        return matrix


def _check_inputs(features: list[Feature], panel: _Panel) -> None:
    """Refuse features whose input columns are absent or entirely NaN for a symbol (close-only data)."""
    for feature in features:
        for column in feature.inputs:
            if column not in panel.frame.columns:
                raise FeatureError(f"feature {feature.name!r} needs column {column!r}, which the bars do not have")
            present = panel.frame[column].notna().to_numpy()
            has_any = np.bincount(panel.symbol_codes, weights=present, minlength=len(panel.symbols)) > 0
            if len(panel.frame) and not has_any.all():
                lacking = [str(s) for s in panel.symbols[~has_any]]
                shown = ", ".join(lacking[:5]) + (f" and {len(lacking) - 5} more" if len(lacking) > 5 else "")
                raise FeatureError(
                    f"feature {feature.name!r} needs column {column!r}, which is all NaN for {shown} "
                    "(a close-only source?); drop the feature or use bars that have it"
                )


def _compute(feature: Feature, panel: _Panel, params: Mapping[str, Any]) -> dict[str, FloatArray]:
    """Run one feature and return its columns as arrays aligned with ``panel.frame`` rows."""
    n_rows = len(panel.frame)
    inputs = {column: panel.column(column) for column in feature.inputs}
    expected = feature.output_columns(**params)
    if feature.cross_sectional:
        per_time = feature.compute({c: panel.wide(v) for c, v in inputs.items()}, **params)
        _check_output(feature, per_time, expected, panel.n_times)
        return {c: np.asarray(v, dtype=np.float64)[panel.time_codes] for c, v in per_time.items()}
    out = {c: np.full(n_rows, np.nan) for c in expected}
    for _symbol, rows in panel.symbol_rows():
        values = feature.compute({c: v[rows] for c, v in inputs.items()}, **params)
        _check_output(feature, values, expected, len(rows))
        for c, v in values.items():
            out[c][rows] = v
    return out


def _check_output(feature: Feature, values: Mapping[str, Any], expected: list[str], length: int) -> None:
    if list(values) != expected:
        raise FeatureError(f"feature {feature.name!r} returned columns {list(values)}, declared {expected}")
    for column, array in values.items():
        if np.shape(array) != (length,):
            raise FeatureError(
                f"feature {feature.name!r} returned {np.shape(array)} values for {column!r}, expected {length}"
            )


def build_features(
    bars: pd.DataFrame,
    names: str | Iterable[str],
    *,
    registry: Mapping[str, Feature] | None = None,
    **params: Any,
) -> pd.DataFrame:
    """Compute named features from canonical bars.

    Each feature uses only bars with timestamp <= t for its row at t (checked for every
    registered feature by :func:`rltrade.testing.assert_causal`). Warm-up rows are NaN, never
    back-filled: start consumers at :func:`rltrade.features.feature_warmup`.

    Parameters
    ----------
    bars:
        Canonical bars (``symbol, timestamp, open, high, low, close, volume``), any row order,
        one row per (timestamp, symbol). Only the columns the requested features read are needed.
    names:
        Feature names (see :data:`rltrade.features.FEATURES`), computed in this order.
    registry:
        Where to look the names up; :data:`rltrade.features.FEATURES` by default.
    **params:
        Feature parameters, e.g. ``n_diffs=20`` for ``deng_log_diffs`` or
        ``turbulence_window=126``; a key no requested feature accepts is an error.

    Returns
    -------
    pandas.DataFrame
        float64 columns (one per feature, several for ``deng_log_diffs``), indexed by
        (timestamp, symbol) in increasing order.

    Raises
    ------
    FeatureError
        Unknown feature or parameter, or an input column missing / all NaN for a symbol.
    DataValidationError
        Bars without ``symbol``/``timestamp`` or with duplicate (timestamp, symbol) rows.
    """
    features = resolve_features(names, registry)
    per_feature = split_params(features, params)
    panel = _Panel.from_bars(bars)
    _check_inputs(features, panel)
    columns: dict[str, FloatArray] = {}
    for feature in features:
        for column, values in _compute(feature, panel, per_feature[feature.name]).items():
            if column in columns:
                raise FeatureError(f"two features produce the column {column!r}")
            columns[column] = values
    log.debug("built %d feature columns for %d rows", len(columns), len(panel.frame))
    index = pd.MultiIndex.from_arrays([panel.frame["timestamp"], panel.frame["symbol"]], names=list(INDEX_NAMES))
    return pd.DataFrame(columns, index=index)
