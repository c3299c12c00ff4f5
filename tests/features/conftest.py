"""Shared bars for the feature tests: deterministic synthetic OHLCV and the embedded S&P 500 sample."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

OHLCV_SYMBOLS = ("AAA", "BBB", "CCC", "DDD")


def synthetic_bars(
    n_days: int = 300, symbols: tuple[str, ...] = OHLCV_SYMBOLS, seed: int = 7, start: str = "2020-01-01"
) -> pd.DataFrame:
    """Canonical OHLCV bars from a geometric random walk; volumes include zeros."""
    rng = np.random.default_rng(seed)
    stamps = pd.date_range(start, periods=n_days, freq="B", tz="UTC").astype("datetime64[ns, UTC]")
    frames = []
    for symbol in symbols:
        close = 50.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, n_days)))
        open_ = close * np.exp(rng.normal(0.0, 0.004, n_days))
        high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.006, n_days)))
        low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.006, n_days)))
        volume = rng.integers(0, 5_000, n_days).astype(float)
        volume[rng.random(n_days) < 0.05] = 0.0
        frames.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "timestamp": stamps,
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": volume,
                }
            )
        )
    bars = pd.concat(frames, ignore_index=True)
    return bars.sort_values(["timestamp", "symbol"], kind="stable").reset_index(drop=True)


def close_only_bars(prices: pd.DataFrame) -> pd.DataFrame:
    """Canonical close-only bars from a wide (date x symbol) price table; open/high/low/volume NaN."""
    long = (
        prices.rename_axis(index="timestamp", columns=None)
        .melt(ignore_index=False, var_name="symbol", value_name="close")
        .reset_index()
    )
    long["timestamp"] = pd.to_datetime(long["timestamp"]).dt.tz_localize("UTC").astype("datetime64[ns, UTC]")
    long["symbol"] = long["symbol"].astype(str)
    for column in ("open", "high", "low", "volume"):
        long[column] = np.nan
    long = long[["symbol", "timestamp", "open", "high", "low", "close", "volume"]]
    return long.sort_values(["timestamp", "symbol"], kind="stable").reset_index(drop=True)


@pytest.fixture(scope="session")
def ohlcv_bars() -> pd.DataFrame:
    return synthetic_bars()


@pytest.fixture(scope="session")
def sp500_prices() -> pd.DataFrame:
    from skfolio.datasets import load_sp500_dataset

    return load_sp500_dataset()


@pytest.fixture(scope="session")
def sp500_bars(sp500_prices: pd.DataFrame) -> pd.DataFrame:
    """20 US large caps, adjusted close, 1990-2022, as close-only canonical bars."""
    return close_only_bars(sp500_prices)


@pytest.fixture(scope="session")
def make_bars() -> object:
    """The :func:`synthetic_bars` factory, for tests that need other shapes."""
    return synthetic_bars
