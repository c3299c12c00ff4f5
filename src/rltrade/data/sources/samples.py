"""Embedded real data shipped inside PyPI packages: usable offline, nothing downloaded at run time."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rltrade.data.schema import RawBars


def _ohlcv(frame: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """Canonical columns from a frame with ``Open, High, Low, Close, Volume[, Adj Close]``."""
    out = pd.DataFrame(
        {
            "symbol": symbol,
            "timestamp": pd.to_datetime(frame.index).tz_localize("UTC"),
            "open": frame["Open"].to_numpy(dtype="float64"),
            "high": frame["High"].to_numpy(dtype="float64"),
            "low": frame["Low"].to_numpy(dtype="float64"),
            "close": frame["Close"].to_numpy(dtype="float64"),
            "volume": frame["Volume"].to_numpy(dtype="float64"),
        }
    )
    if "Adj Close" in frame.columns:
        out["adj_close"] = frame["Adj Close"].to_numpy(dtype="float64")
    return out


def load_sp500() -> list[RawBars]:
    """skfolio's 20 US large caps: adjusted close only, 1990-01-02 .. 2022-12-28 (close-only)."""
    from skfolio.datasets import load_sp500_dataset

    prices = load_sp500_dataset()
    prices.index = pd.to_datetime(prices.index).tz_localize("UTC")
    long = prices.rename_axis(index="timestamp", columns="symbol").stack().rename("close").reset_index()
    long["symbol"] = long["symbol"].astype(str)
    for col in ("open", "high", "low", "volume"):
        long[col] = np.nan
    return [RawBars(long, "sample:sp500 (skfolio)", "1d", close_only=True, adjusted=True)]


def load_sp500_index() -> list[RawBars]:
    """skfolio's S&P 500 index level (symbol ``SP500``), close only, 1990-01-02 .. 2022-12-28.

    The benchmark of ``sample:sp500`` on the same dates; its symbol differs from arch's ``^GSPC``
    (``sample:indices``) so that both can live in one store.
    """
    from skfolio.datasets import load_sp500_index

    level = load_sp500_index()["SP500"]
    frame = pd.DataFrame(
        {
            "symbol": "SP500",
            "timestamp": pd.to_datetime(level.index).tz_localize("UTC"),
            "open": np.nan,
            "high": np.nan,
            "low": np.nan,
            "close": level.to_numpy(dtype="float64"),
            "volume": np.nan,
        }
    )
    return [RawBars(frame, "sample:sp500_index (skfolio)", "1d", close_only=True, adjusted=True)]


def load_stocks() -> list[RawBars]:
    """bokeh-sampledata ``stocks``: AAPL, IBM, MSFT (2000-2013) and GOOG (2004-2013), OHLCV + Adj Close."""
    from bokeh_sampledata import stocks

    out = []
    for symbol in ("AAPL", "GOOG", "IBM", "MSFT"):
        data = pd.DataFrame(getattr(stocks, symbol))
        frame = data.rename(
            columns={
                "open": "Open",
                "high": "High",
                "low": "Low",
                "close": "Close",
                "volume": "Volume",
                "adj_close": "Adj Close",
            }
        ).set_index(pd.to_datetime(data["date"]))
        out.append(RawBars(_ohlcv(frame, symbol), f"sample:stocks (bokeh-sampledata {symbol})", "1d"))
    return out


def load_indices() -> list[RawBars]:
    """arch's S&P 500 (``^GSPC``) and NASDAQ Composite (``^IXIC``) daily OHLCV, 1999-2018."""
    import arch.data.nasdaq
    import arch.data.sp500

    return [
        RawBars(_ohlcv(arch.data.sp500.load(), "^GSPC"), "sample:indices (arch sp500)", "1d"),
        RawBars(_ohlcv(arch.data.nasdaq.load(), "^IXIC"), "sample:indices (arch nasdaq)", "1d"),
    ]


def load_eurusd() -> list[RawBars]:
    """backtesting.py's EURUSD hourly bars (2017-04-19 .. 2018-02-07; tick volume).

    The file's timestamps carry no time zone; they are taken as UTC.
    """
    from backtesting.test import EURUSD

    return [RawBars(_ohlcv(EURUSD, "EURUSD"), "sample:eurusd (backtesting.py)", "1h")]


SAMPLES = {
    "sp500": (load_sp500, "skfolio: 20 US large caps, adjusted close only, daily 1990-01-02..2022-12-28"),
    "sp500_index": (load_sp500_index, "skfolio: S&P 500 index level (SP500), close only, daily 1990-01-02..2022-12-28"),
    "stocks": (load_stocks, "bokeh-sampledata: AAPL, IBM, MSFT, GOOG daily OHLCV + adj close, 2000-2013"),
    "indices": (load_indices, "arch: S&P 500 (^GSPC) and NASDAQ (^IXIC) daily OHLCV, 1999-2018"),
    "eurusd": (load_eurusd, "backtesting.py: EURUSD hourly OHLCV, 2017-04..2018-02"),
}
