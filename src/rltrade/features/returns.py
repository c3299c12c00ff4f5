"""Log changes of price and volume and the Deng et al. (2017) state of lagged log returns."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rltrade.features.base import Feature, FeatureError, FloatArray, lagged, nan_array

DEFAULT_N_DIFFS = 10


def log_return(close: FloatArray) -> FloatArray:
    """``log(close_t) - log(close_{t-1})``; NaN at the first row."""
    out = nan_array(len(close))
    if len(close) > 1:
        logs = np.log(close)
        out[1:] = logs[1:] - logs[:-1]
    return out


def _log_return(data: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
    """Log return of the close: ``r_t = ln(close_t) - ln(close_{t-1})``.

    Input: ``close``. Warm-up: 1 row (the first bar has no previous close).
    """
    return {"log_return": log_return(data["close"])}


def _log_volume_change(data: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
    """Log change of volume, zero-safe: ``ln(1 + volume_t) - ln(1 + volume_{t-1})``.

    ``log1p`` keeps the value finite when a bar has zero volume (a plain log difference
    would give -inf/+inf there, a defect of earlier public code). Input: ``volume``. Warm-up: 1 row.
    """
    volume = data["volume"]
    out = nan_array(len(volume))
    if len(volume) > 1:
        logs = np.log1p(volume)
        out[1:] = logs[1:] - logs[:-1]
    return {"log_volume_change": out}


def _deng_columns(n_diffs: int = DEFAULT_N_DIFFS) -> list[str]:
    return [f"deng_log_diffs_{k}" for k in range(n_diffs)]


def _deng_log_diffs(data: Mapping[str, FloatArray], n_diffs: int = DEFAULT_N_DIFFS) -> dict[str, FloatArray]:
    """Deng et al. (2017) state: the last ``n_diffs`` log price differences of the close.

    Column ``deng_log_diffs_k`` (k = 0..n_diffs-1) at bar t is ``r_{t-k}`` with
    ``r_t = ln(close_t) - ln(close_{t-1})``: ``_0`` is the latest return, ``_{n-1}`` the oldest.
    Parameter ``n_diffs`` (default 10). Input: ``close``. Warm-up: ``n_diffs`` rows.
    """
    if n_diffs < 1:
        raise FeatureError(f"deng_log_diffs: n_diffs must be >= 1, got {n_diffs}")
    r = log_return(data["close"])
    return {column: lagged(r, k) for k, column in enumerate(_deng_columns(n_diffs))}


RETURN_FEATURES: tuple[Feature, ...] = (
    Feature(
        name="log_return",
        compute=_log_return,
        inputs=("close",),
        warmup=lambda: 1,
        doc=_log_return.__doc__ or "",
    ),
    Feature(
        name="log_volume_change",
        compute=_log_volume_change,
        inputs=("volume",),
        warmup=lambda: 1,
        doc=_log_volume_change.__doc__ or "",
    ),
    Feature(
        name="deng_log_diffs",
        compute=_deng_log_diffs,
        inputs=("close",),
        warmup=lambda n_diffs: n_diffs,
        doc=_deng_log_diffs.__doc__ or "",
        columns=_deng_columns,
        params={"n_diffs": DEFAULT_N_DIFFS},
    ),
)
