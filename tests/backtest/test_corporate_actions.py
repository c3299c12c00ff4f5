"""A real 2:1 split (AAPL, 2005-02-28, bokeh's Yahoo sample) is not a loss: rltrade trades adjusted prices.

The independent computation is a plain pandas buy-and-hold on the vendor's ``adj_close``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rltrade.backtest.baselines import weight_baselines
from rltrade.data.adjust import adjust_prices, corporate_actions
from rltrade.data.sources import fetch
from rltrade.data.validate import validate_bars

FIXTURE = Path(__file__).parents[1] / "fixtures" / "real" / "aapl_ibm_msft_2005_split.csv"
SPLIT_DAY = pd.Timestamp("2005-02-28")


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    """The excerpt, through the real CSV source and validation (as `rltrade data ingest csv:` reads it)."""
    return pd.concat([validate_bars(raw) for raw in fetch(f"csv:{FIXTURE}")], ignore_index=True)


def _independent_buy_and_hold(bars: pd.DataFrame, initial: float) -> pd.Series:
    """Equal weights bought at the close of the second bar (next_close), held; valued at adj_close."""
    adj = bars.pivot(index="timestamp", columns="symbol", values="adj_close")
    adj.index = adj.index.tz_convert(None)
    shares = initial / adj.shape[1] / adj.iloc[1]
    values = (adj * shares).sum(axis=1)
    values.iloc[0] = initial
    return values


def _buy_and_hold(bars: pd.DataFrame) -> pd.Series:
    """rltrade's buy-and-hold over the whole excerpt: no costs, filled at the next close."""
    start = bars["timestamp"].min()
    baselines = weight_baselines(
        bars, start=start, end=None, cost=None, timing="next_close", initial_value=1e6, names=["buy_and_hold"]
    )
    return baselines["buy_and_hold"].equity("buy_and_hold")


def test_the_fixture_has_the_split(bars: pd.DataFrame) -> None:
    raw = bars[bars["symbol"] == "AAPL"].set_index("timestamp")["close"]
    assert raw.pct_change().min() < -0.49  # the raw close halves: what a naive backtest trades
    actions = corporate_actions(bars)
    split = actions[(actions["symbol"] == "AAPL") & (actions["ratio"] > 1.5)]
    assert [pd.Timestamp(t).tz_convert(None) for t in split["timestamp"]] == [SPLIT_DAY]
    assert split["ratio"].iloc[0] == pytest.approx(2.0, rel=2e-3)


def test_buy_and_hold_through_a_split_matches_adjusted_prices(bars: pd.DataFrame) -> None:
    equity = _buy_and_hold(bars)
    expected = _independent_buy_and_hold(bars, 1e6)
    np.testing.assert_allclose(equity.to_numpy(), expected.loc[equity.index].to_numpy(), rtol=1e-9)
    day = equity.pct_change().loc[SPLIT_DAY]
    assert abs(day) < 0.02, f"the split day shows a {day:.1%} move"


def test_raw_basis_trades_the_split_as_a_crash(bars: pd.DataFrame) -> None:
    """The opt-out really trades the stored close (so the test above can fail)."""
    raw = adjust_prices(bars, "raw")
    assert "adj_close" not in raw.columns and raw.attrs["prices"] == "raw"
    assert _buy_and_hold(raw).pct_change().loc[SPLIT_DAY] < -0.10


@pytest.mark.parametrize("env_name", ["portfolio", "stock_trading", "single_asset"])
def test_every_env_trades_adjusted_ohlc(bars: pd.DataFrame, env_name: str) -> None:
    from rltrade.envs.portfolio import PortfolioEnv
    from rltrade.envs.single_asset import SingleAssetEnv
    from rltrade.envs.stock_trading import StockTradingEnv

    if env_name == "portfolio":
        env = PortfolioEnv(bars, features=["log_return"], look_back=1)
    elif env_name == "stock_trading":
        env = StockTradingEnv(bars, features=["log_return"], turbulence_threshold=None)
    else:
        env = SingleAssetEnv(bars, symbol="AAPL")
    market = env.market
    aapl = bars[bars["symbol"] == "AAPL"].reset_index(drop=True)
    col = market.symbols.index("AAPL")
    factor = (aapl["adj_close"] / aapl["close"]).to_numpy()
    np.testing.assert_allclose(market.close[:, col], aapl["adj_close"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(market.open[:, col], aapl["open"].to_numpy() * factor, rtol=1e-12)
    np.testing.assert_allclose(market.high[:, col], aapl["high"].to_numpy() * factor, rtol=1e-12)
    np.testing.assert_allclose(market.volume[:, col], aapl["volume"].to_numpy() / factor, rtol=1e-12)
    assert np.abs(np.diff(np.log(market.close[:, col]))).max() < 0.1  # no split-sized jump left
