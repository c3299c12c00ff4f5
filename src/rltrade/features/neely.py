"""The 14 technical signals of Neely, Rapach, Tu & Zhou (2014), on the bar frequency of the input.

- ``neely_ma_{s}_{l}`` (s in {1, 2, 3}, l in {9, 12}): 1 if ``MA_s(close) >= MA_l(close)`` else 0,
  with ``MA_j(x)_t = (1/j) * sum_{i=0}^{j-1} x_{t-i}`` (so ``MA_1`` is the price itself).
- ``neely_mom_{m}`` (m in {9, 12}): 1 if ``close_t >= close_{t-m}`` else 0.
- ``neely_vol_{s}_{l}`` (s in {1, 2, 3}, l in {9, 12}): 1 if ``MA_s(OBV) >= MA_l(OBV)`` else 0, with
  On-Balance Volume ``OBV_t = sum_{k=1}^{t} volume_k * D_k``, ``D_k = +1`` if
  ``close_k >= close_{k-1}`` else -1 (close to close; ``OBV_0 = 0``, the empty sum).

Signals are float64: 1.0 / 0.0, NaN during the warm-up.

Ties. ``>=`` makes a tie a 1, and ties are common: a flat price or a run of zero volume gives
MA_s == MA_l, and decimal prices (0.171, 0.17, ...) often average exactly to the current price,
while their binary values land 1e-17 on either side. So the averages are compared through
their deviations from the current value, ``mean_{i<j}(x_{t-i} - x_t)`` (exactly 0 for a flat
window), and a gap smaller than ``TIE_RTOL`` times the level counts as a tie.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rltrade.features.base import Feature, FloatArray, nan_array

SHORT_WINDOWS: tuple[int, ...] = (1, 2, 3)
LONG_WINDOWS: tuple[int, ...] = (9, 12)
MOMENTUM_LAGS: tuple[int, ...] = (9, 12)
TIE_RTOL = 1e-12


def ma_signal(x: FloatArray, short: int, long: int) -> FloatArray:
    """1.0 where ``MA_short(x)_t >= MA_long(x)_t``, 0.0 otherwise, NaN for the first ``long - 1`` rows.

    A gap below ``TIE_RTOL * max(|x_t|, |MA_long(x)_t|)`` counts as a tie (1.0).

    Parameters
    ----------
    x:
        Values in time order.
    short, long:
        Window lengths, ``1 <= short <= long``.
    """
    n = len(x)
    out = nan_array(n)
    if n < long:
        return out
    current = x[long - 1 :]
    sum_short = np.zeros(n - long + 1)
    sum_long = np.zeros(n - long + 1)
    for lag in range(1, long):  # lag 0 contributes x_t - x_t = 0 to both sums
        deviation = x[long - 1 - lag : n - lag] - current
        sum_long += deviation
        if lag < short:
            sum_short += deviation
    gap = sum_short / short - sum_long / long  # MA_short - MA_long
    level = np.maximum(np.abs(current), np.abs(current + sum_long / long))
    signal = (gap >= -TIE_RTOL * level).astype(np.float64)
    signal[np.isnan(sum_long)] = np.nan
    out[long - 1 :] = signal
    return out


def momentum_signal(x: FloatArray, lag: int) -> FloatArray:
    """1.0 where ``x_t >= x_{t-lag}``, 0.0 otherwise; NaN for the first ``lag`` rows and where either is NaN."""
    out = nan_array(len(x))
    if len(x) > lag:
        now, before = x[lag:], x[:-lag]
        signal = (now >= before).astype(np.float64)
        signal[np.isnan(now) | np.isnan(before)] = np.nan
        out[lag:] = signal
    return out


def on_balance_volume(close: FloatArray, volume: FloatArray) -> FloatArray:
    """Neely's On-Balance Volume.

    ``OBV_0 = 0`` and ``OBV_t = OBV_{t-1} + volume_t * D_t`` with ``D_t = +1`` if
    ``close_t >= close_{t-1}`` else -1.
    """
    obv = np.zeros(len(close))
    if len(close) > 1:
        direction = np.where(close[1:] >= close[:-1], 1.0, -1.0)
        obv[1:] = np.cumsum(volume[1:] * direction)
    return obv


def _ma_feature(short: int, long: int) -> Feature:
    def compute(data: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
        return {f"neely_ma_{short}_{long}": ma_signal(data["close"], short, long)}

    doc = (
        f"Neely MA({short},{long}) signal: 1 if MA_{short}(close) >= MA_{long}(close) else 0.\n\n"
        f"MA_j(close)_t is the mean of the last j closes including t (MA_1 is the close itself). "
        f"Input: close. Warm-up: {long - 1} rows."
    )
    return Feature(
        name=f"neely_ma_{short}_{long}",
        compute=compute,
        inputs=("close",),
        warmup=lambda: long - 1,
        doc=doc,
    )


def _mom_feature(lag: int) -> Feature:
    def compute(data: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
        return {f"neely_mom_{lag}": momentum_signal(data["close"], lag)}

    doc = f"Neely MOM({lag}) signal: 1 if close_t >= close_(t-{lag}) else 0.\n\nInput: close. Warm-up: {lag} rows."
    return Feature(
        name=f"neely_mom_{lag}",
        compute=compute,
        inputs=("close",),
        warmup=lambda: lag,
        doc=doc,
    )


def _vol_feature(short: int, long: int) -> Feature:
    def compute(data: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
        obv = on_balance_volume(data["close"], data["volume"])
        return {f"neely_vol_{short}_{long}": ma_signal(obv, short, long)}

    doc = (
        f"Neely VOL({short},{long}) signal: 1 if MA_{short}(OBV) >= MA_{long}(OBV) else 0.\n\n"
        "OBV_t = sum_{k=1..t} volume_k * D_k with D_k = +1 if close_k >= close_{k-1} else -1 "
        f"(OBV_0 = 0). Inputs: close, volume. Warm-up: {long - 1} rows."
    )
    return Feature(
        name=f"neely_vol_{short}_{long}",
        compute=compute,
        inputs=("close", "volume"),
        warmup=lambda: long - 1,
        doc=doc,
    )


NEELY_FEATURES: tuple[Feature, ...] = (
    tuple(_ma_feature(s, lw) for s in SHORT_WINDOWS for lw in LONG_WINDOWS)
    + tuple(_mom_feature(m) for m in MOMENTUM_LAGS)
    + tuple(_vol_feature(s, lw) for s in SHORT_WINDOWS for lw in LONG_WINDOWS)
)
