"""The FinRL indicator set (plus SMA-20/50/200), computed by TA-Lib and passed through unchanged.

TA-Lib leaves its lookback rows as NaN; nothing is back-filled (FinRL's ``bfill`` copied later
values into the first rows). Warm-ups are TA-Lib's own lookbacks, so they follow
``talib.set_unstable_period`` if a user changes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import talib
from numpy.typing import NDArray
from talib import abstract

from rltrade.features.base import Feature, FloatArray

SMA_PERIODS: tuple[int, ...] = (20, 30, 50, 60, 200)


def talib_lookback(function: str, **kwargs: Any) -> int:
    """TA-Lib's lookback (leading NaN rows) of ``function`` with parameters ``kwargs``."""
    fn = abstract.Function(function)  # type: ignore[attr-defined]  # not in talib's stubs
    fn.set_parameters(kwargs)
    return int(fn.lookback)


def _f64(x: FloatArray) -> NDArray[np.float64]:
    return np.ascontiguousarray(x, dtype=np.float64)


def _macd(data: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
    """MACD line: ``EMA_12(close) - EMA_26(close)`` (TA-Lib ``MACD(12, 26, 9)``, first output).

    TA-Lib aligns the line with its 9-period signal, so the line starts after the full
    MACD lookback. Input: close. Warm-up: 33 rows.
    """
    line, _signal, _hist = talib.MACD(_f64(data["close"]), fastperiod=12, slowperiod=26, signalperiod=9)
    return {"macd": line}


def _bollinger(data: Mapping[str, FloatArray], band: str) -> dict[str, FloatArray]:
    upper, _middle, lower = talib.BBANDS(
        _f64(data["close"]), timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=talib.MA_Type.SMA
    )
    return {"boll_ub": upper} if band == "upper" else {"boll_lb": lower}


def _boll_ub(data: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
    """Upper Bollinger band: ``SMA_20(close) + 2 * std_20(close)`` (TA-Lib ``BBANDS(20, 2, 2)``, population std).

    Input: close. Warm-up: 19 rows.
    """
    return _bollinger(data, "upper")


def _boll_lb(data: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
    """Lower Bollinger band: ``SMA_20(close) - 2 * std_20(close)`` (TA-Lib ``BBANDS(20, 2, 2)``, population std).

    Input: close. Warm-up: 19 rows.
    """
    return _bollinger(data, "lower")


def _rsi_30(data: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
    """Relative Strength Index over 30 bars (TA-Lib ``RSI(30)``, Wilder smoothing), in [0, 100].

    Input: close. Warm-up: 30 rows.
    """
    return {"rsi_30": talib.RSI(_f64(data["close"]), timeperiod=30)}


def _cci_30(data: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
    """Commodity Channel Index over 30 bars (TA-Lib ``CCI(30)``) of the typical price (high + low + close) / 3.

    Inputs: high, low, close. Warm-up: 29 rows.
    """
    return {"cci_30": talib.CCI(_f64(data["high"]), _f64(data["low"]), _f64(data["close"]), timeperiod=30)}


def _dx_30(data: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
    """Directional Movement Index over 30 bars (TA-Lib ``DX(30)``), ``100 * |+DI - -DI| / (+DI + -DI)``.

    Inputs: high, low, close. Warm-up: 30 rows.
    """
    return {"dx_30": talib.DX(_f64(data["high"]), _f64(data["low"]), _f64(data["close"]), timeperiod=30)}


def _sma_feature(period: int) -> Feature:
    def compute(data: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
        return {f"sma_{period}": talib.SMA(_f64(data["close"]), timeperiod=period)}

    return Feature(
        name=f"sma_{period}",
        compute=compute,
        inputs=("close",),
        warmup=lambda: talib_lookback("SMA", timeperiod=period),
        doc=(
            f"Simple moving average of the close over {period} bars, including bar t "
            f"(TA-Lib ``SMA({period})``).\n\nInput: close. Warm-up: {period - 1} rows."
        ),
    )


def _doc(fn: Any) -> str:
    return str(fn.__doc__ or "")


TECHNICAL_FEATURES: tuple[Feature, ...] = (
    Feature(
        name="macd",
        compute=_macd,
        inputs=("close",),
        warmup=lambda: talib_lookback("MACD", fastperiod=12, slowperiod=26, signalperiod=9),
        doc=_doc(_macd),
    ),
    Feature(
        name="boll_ub",
        compute=_boll_ub,
        inputs=("close",),
        warmup=lambda: talib_lookback("BBANDS", timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=0),
        doc=_doc(_boll_ub),
    ),
    Feature(
        name="boll_lb",
        compute=_boll_lb,
        inputs=("close",),
        warmup=lambda: talib_lookback("BBANDS", timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=0),
        doc=_doc(_boll_lb),
    ),
    Feature(
        name="rsi_30",
        compute=_rsi_30,
        inputs=("close",),
        warmup=lambda: talib_lookback("RSI", timeperiod=30),
        doc=_doc(_rsi_30),
    ),
    Feature(
        name="cci_30",
        compute=_cci_30,
        inputs=("high", "low", "close"),
        warmup=lambda: talib_lookback("CCI", timeperiod=30),
        doc=_doc(_cci_30),
    ),
    Feature(
        name="dx_30",
        compute=_dx_30,
        inputs=("high", "low", "close"),
        warmup=lambda: talib_lookback("DX", timeperiod=30),
        doc=_doc(_dx_30),
    ),
    *(_sma_feature(p) for p in SMA_PERIODS),
)
