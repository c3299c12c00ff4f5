"""Real bars shared by the backtest tests."""

from __future__ import annotations

import pandas as pd
import pytest


@pytest.fixture(scope="module")
def aapl_ibm(aapl_ibm_bars: pd.DataFrame) -> pd.DataFrame:
    """Real AAPL and IBM OHLCV (2010) with UTC timestamps, as the envs take them."""
    return aapl_ibm_bars.assign(timestamp=pd.to_datetime(aapl_ibm_bars["timestamp"], utc=True))
