"""Shared bars for the feature tests: deterministic synthetic OHLCV and the S&P 500 sample's price table.

The S&P 500 sample as canonical bars (``sp500_bars``) comes from ``tests/conftest.py``.
"""

from __future__ import annotations

import pandas as pd
import pytest

from rltrade.testing import synthetic_bars

OHLCV_SYMBOLS = ("AAA", "BBB", "CCC", "DDD")


def feature_bars(
    n_days: int = 300, symbols: tuple[str, ...] = OHLCV_SYMBOLS, seed: int = 7, start: str = "2020-01-01"
) -> pd.DataFrame:
    """Canonical OHLCV bars of the feature tests (:func:`rltrade.testing.synthetic_bars`); volumes include zeros."""
    return synthetic_bars(
        n_bars=n_days,
        symbols=symbols,
        seed=seed,
        start=start,
        price=50.0,
        drift=0.0003,
        vol=0.015,
        open_from="close",
        open_vol=0.004,
        wick_vol=0.006,
        volume=(0, 5_000),
        zero_volume=0.05,
    )


@pytest.fixture(scope="session")
def ohlcv_bars() -> pd.DataFrame:
    return feature_bars()


@pytest.fixture(scope="session")
def sp500_prices() -> pd.DataFrame:
    from skfolio.datasets import load_sp500_dataset

    return load_sp500_dataset()


@pytest.fixture(scope="session")
def make_bars() -> object:
    """The :func:`feature_bars` factory, for tests that need other shapes."""
    return feature_bars
