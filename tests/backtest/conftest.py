"""Real bars shared by the backtest tests."""

from __future__ import annotations

import pandas as pd
import pytest


@pytest.fixture(scope="session")
def sp500_bars() -> pd.DataFrame:
    """The embedded S&P 500 sample (20 stocks, close-only, 1990-2022), validated."""
    from rltrade.data.sources import fetch
    from rltrade.data.validate import validate_bars

    return pd.concat([validate_bars(raw) for raw in fetch("sample:sp500")], ignore_index=True)


@pytest.fixture(scope="module")
def aapl_ibm(aapl_ibm_bars: pd.DataFrame) -> pd.DataFrame:
    """Real AAPL and IBM OHLCV (2010) with UTC timestamps, as the envs take them."""
    return aapl_ibm_bars.assign(timestamp=pd.to_datetime(aapl_ibm_bars["timestamp"], utc=True))
