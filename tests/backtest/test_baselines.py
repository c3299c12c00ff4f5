"""Baselines: the agent's timestamps, values checked against independent numpy, skfolio fits, causality, index."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq
from skfolio.exceptions import OptimizationError
from skfolio.optimization import MeanRisk

import rltrade.backtest.baselines as baselines
from rltrade.backtest.baselines import BASELINE_NAMES, index_baseline, random_agent, weight_baselines
from rltrade.envs.costs import BpsCost, NoCost
from rltrade.envs.portfolio import PortfolioEnv
from rltrade.envs.stock_trading import StockTradingEnv
from rltrade.errors import DataValidationError
from rltrade.testing import assert_causal

SYMBOLS = ["AAPL", "JNJ", "KO", "MSFT", "XOM"]
RATE = 0.001  # BpsCost(10)


@pytest.fixture(scope="module")
def sp500_small(sp500_bars: pd.DataFrame) -> pd.DataFrame:
    """5 stocks of the embedded S&P 500 sample (close-only), 2015-2018."""
    bars = sp500_bars
    keep = bars["symbol"].isin(SYMBOLS) & (bars["timestamp"] >= "2015-01-01") & (bars["timestamp"] < "2019-01-01")
    return bars.loc[keep].reset_index(drop=True)


def matrix(bars: pd.DataFrame, field: str, stamps: pd.DatetimeIndex) -> np.ndarray:
    """``[len(stamps), symbols]`` of ``field`` from the bars (symbols sorted), by pivoting, not through the env."""
    table = bars.pivot(index="timestamp", columns="symbol", values=field).sort_index(axis=1)
    table.index = pd.DatetimeIndex(table.index).tz_convert(None)
    return table.loc[stamps].to_numpy()


def equal_weight_reference(
    fills: np.ndarray, closes: np.ndarray, initial: float, rate: float
) -> tuple[np.ndarray, np.ndarray]:
    """Values and costs of a portfolio rebalanced to 1/N at every fill, paying ``rate`` of the traded notional.

    ``fills[k]`` and ``closes[k]`` are the fill and mark prices of step k; the post-cost invested value
    ``x`` solves ``x + rate·Σ|x/N − held| = value at the fill``.
    """
    n = fills.shape[1]
    shares, cash = np.zeros(n), initial

    def excess(invested: float, held: np.ndarray, at_fill: float) -> float:
        return float(invested + rate * np.abs(invested / n - held).sum() - at_fill)

    values, costs = [initial], [0.0]
    for fill, close in zip(fills, closes, strict=True):
        at_fill = cash + shares @ fill
        held = shares * fill
        invested = brentq(excess, 0.0, at_fill, args=(held, at_fill), xtol=1e-13)
        costs.append(rate * np.abs(invested / n - held).sum())
        cash = at_fill - invested - costs[-1]
        shares = invested / n / fill
        values.append(cash + shares @ close)
    return np.array(values), np.array(costs)


def test_baselines_share_the_agents_timestamps(sp500_small: pd.DataFrame) -> None:
    env = PortfolioEnv(sp500_small, features=["log_return"], look_back=10, cost=BpsCost(10), start="2017-01-01")
    agent = random_agent(env, seed=0)
    out = weight_baselines(
        sp500_small,
        start=agent.timestamps[0],
        end=agent.timestamps[-1],
        cost=BpsCost(10),
        timing=env.timing,
        initial_value=1.0,
    )
    assert list(out) == ["buy_and_hold", "equal_weight", "min_variance"]
    for name, trajectory in out.items():
        assert trajectory.timestamps.equals(agent.timestamps), name
        assert trajectory.symbols == agent.symbols and trajectory.values[0] == 1.0
        np.testing.assert_allclose(trajectory.weights.sum(axis=1), 1.0, rtol=1e-12)


def test_equal_weight_and_buy_and_hold_match_numpy(sp500_small: pd.DataFrame) -> None:
    out = weight_baselines(
        sp500_small,
        start="2017-01-03",
        end="2018-06-29",
        cost=BpsCost(10),
        timing="next_close",
        initial_value=1e6,
        names=("buy_and_hold", "equal_weight"),
    )
    stamps = out["equal_weight"].timestamps
    close = matrix(sp500_small, "close", stamps)
    n = close.shape[1]
    # next_close: the action chosen after bar k fills at close[k + 1], where the step also marks
    values, costs = equal_weight_reference(close[1:], close[1:], 1e6, RATE)
    np.testing.assert_allclose(out["equal_weight"].values, values, rtol=1e-10)
    np.testing.assert_allclose(out["equal_weight"].costs, costs, rtol=1e-7, atol=1e-6)
    turnover = out["equal_weight"].turnover
    assert turnover[1] == pytest.approx(1 / (1 + RATE), rel=1e-9) and 0.0 < turnover[2:].max() < 0.1
    # buy and hold: 1/N of what is left after 10 bps, bought at the first fill, then drifting
    shares = 1e6 / (1 + RATE) / n / close[1]
    bh = out["buy_and_hold"]
    np.testing.assert_allclose(bh.values[1:], close[1:] @ shares, rtol=1e-10)
    assert bh.costs[1] == pytest.approx(1e6 * RATE / (1 + RATE), rel=1e-9)
    assert not bh.costs[2:].any() and not bh.turnover[2:].any()
    assert len(bh.trades_frame("bh")) == n  # one purchase per symbol, nothing after


def test_baselines_with_next_open_fills(aapl_ibm: pd.DataFrame) -> None:
    out = weight_baselines(
        aapl_ibm,
        start="2010-02-01",
        end=None,
        cost=BpsCost(10),
        timing="next_open",
        initial_value=1e5,
        names=("equal_weight", "buy_and_hold"),
    )
    stamps = out["equal_weight"].timestamps
    assert stamps[0] == pd.Timestamp("2010-02-01") and stamps[-1] == pd.Timestamp("2010-12-31")
    close, open_ = matrix(aapl_ibm, "close", stamps), matrix(aapl_ibm, "open", stamps)
    values, costs = equal_weight_reference(open_[1:], close[1:], 1e5, RATE)
    np.testing.assert_allclose(out["equal_weight"].values, values, rtol=1e-10)
    np.testing.assert_allclose(out["equal_weight"].costs, costs, rtol=1e-7, atol=1e-7)
    shares = 1e5 / (1 + RATE) / 2 / open_[1]
    np.testing.assert_allclose(out["buy_and_hold"].values[1:], close[1:] @ shares, rtol=1e-10)


def test_min_variance_is_skfolios_fit_on_the_trailing_window(sp500_small: pd.DataFrame) -> None:
    window, every = 60, 21
    trajectory = weight_baselines(
        sp500_small,
        start="2016-01-04",
        end="2016-12-30",
        cost=NoCost(),
        timing="next_close",
        initial_value=1.0,
        names=("min_variance",),
        min_variance_window=window,
        refit_every=every,
    )["min_variance"]
    closes = sp500_small.pivot(index="timestamp", columns="symbol", values="close").sort_index(axis=1)
    closes.index = pd.DatetimeIndex(closes.index).tz_convert(None)
    for step in (0, every, 5 * every):
        t = int(closes.index.searchsorted(trajectory.timestamps[step]))  # the decision bar
        assert closes.index[t] == trajectory.timestamps[step]
        returns = closes.iloc[t - window : t + 1].pct_change().iloc[1:].to_numpy()
        expected = MeanRisk().fit(returns).weights_
        # filled at the next close, where the step marks: the weights after the step are the targets
        np.testing.assert_allclose(trajectory.weights[step + 1, :-1], expected, atol=1e-10)
    refits = np.zeros(len(trajectory), dtype=bool)
    refits[1::every] = True
    assert (trajectory.turnover[refits] > 0).all()
    assert not trajectory.turnover[~refits].any()  # held (drifting) between the fits


def test_min_variance_needs_history_and_falls_back(
    sp500_small: pd.DataFrame, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    common: dict[str, Any] = {"end": "2015-06-30", "cost": None, "timing": "next_close", "initial_value": 1.0}
    with pytest.raises(DataValidationError, match="min_variance needs 252 bars of history before its first decision"):
        weight_baselines(sp500_small, start="2015-03-02", names=("min_variance",), **common)
    fit = baselines.min_variance_weights
    calls = []

    def flaky(returns: np.ndarray) -> np.ndarray:
        calls.append(1)
        if len(calls) > 1:
            raise OptimizationError("solver failed")
        return fit(returns)

    monkeypatch.setattr(baselines, "min_variance_weights", flaky)
    with caplog.at_level(logging.WARNING, logger="rltrade.backtest.baselines"):
        trajectory = weight_baselines(
            sp500_small, start="2015-03-02", names=("min_variance",), min_variance_window=20, refit_every=10, **common
        )["min_variance"]
    assert "using the previous weights" in caplog.text
    first = trajectory.weights[1, :-1]
    np.testing.assert_allclose(trajectory.weights[11, :-1], first, atol=1e-10)  # back to the last fitted targets
    monkeypatch.setattr(baselines, "min_variance_weights", lambda returns: np.full(5, np.nan))
    with caplog.at_level(logging.WARNING, logger="rltrade.backtest.baselines"):
        trajectory = weight_baselines(
            sp500_small, start="2015-03-02", names=("min_variance",), min_variance_window=20, **common
        )["min_variance"]
    assert "using equal weights" in caplog.text
    np.testing.assert_allclose(trajectory.weights[1, :-1], 0.2, atol=1e-10)


def test_unknown_names_are_refused(sp500_small: pd.DataFrame) -> None:
    assert set(BASELINE_NAMES) == {"buy_and_hold", "equal_weight", "min_variance", "random", "index"}
    with pytest.raises(ValueError, match="random_agent"):
        weight_baselines(sp500_small, start="2016-01-04", end=None, cost=None, timing=None, initial_value=1.0,
                         names=("random",))  # fmt: skip


def test_baselines_are_causal(sp500_small: pd.DataFrame) -> None:
    bars = sp500_small[sp500_small["timestamp"] < "2016-06-15"]

    def run(variant: pd.DataFrame) -> dict[str, pd.Series]:
        out = weight_baselines(
            variant,
            start="2016-05-02",
            end=None,
            cost=BpsCost(10),
            timing="next_close",
            initial_value=1.0,
            min_variance_window=40,
            refit_every=1,  # every decision is a fit: a fit that peeks past the cutoff changes that bar's cost
        )
        series = {}
        for name, trajectory in out.items():  # UTC stamps, as the bars' (what assert_causal compares with)
            series[f"{name} value"] = trajectory.equity(name).tz_localize("UTC")
            series[f"{name} cost"] = pd.Series(trajectory.costs, index=trajectory.timestamps.tz_localize("UTC"))
        return series

    assert_causal(run, bars, cutoffs=["2016-05-20", "2016-06-06"], n_perturbations=1)


def test_random_agent_is_deterministic_per_seed(aapl_ibm: pd.DataFrame) -> None:
    env = StockTradingEnv(aapl_ibm, hmax=20, initial_value=1e5)
    a, b, c = random_agent(env, seed=4), random_agent(env, seed=4), random_agent(env, seed=5)
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.holdings, b.holdings)
    assert not np.array_equal(a.values, c.values)
    assert a.timestamps.equals(c.timestamps)


def test_index_baseline(sp500_small: pd.DataFrame, caplog: pytest.LogCaptureFixture) -> None:
    msft = sp500_small[sp500_small["symbol"] == "MSFT"].set_index("timestamp")["close"]  # a stand-in index
    stamps = pd.DatetimeIndex(msft.index[300:400]).tz_convert(None)
    out = index_baseline(msft, stamps, 1e6, name="msft")
    assert out.name == "msft" and out.index.equals(stamps) and out.index.name == "timestamp"
    np.testing.assert_allclose(out.to_numpy(), 1e6 * msft.iloc[300:400].to_numpy() / msft.iloc[300], rtol=1e-14)
    assert out.iloc[0] == 1e6
    # a gap of 5 timestamps: filled with the last earlier level
    gappy = msft.drop(msft.index[310:315])
    with caplog.at_level(logging.INFO, logger="rltrade.backtest.baselines"):
        filled = index_baseline(gappy, stamps, 1e6)
    assert "5 timestamp(s) missing" in caplog.text
    np.testing.assert_array_equal(filled.iloc[10:15].to_numpy(), np.full(5, out.iloc[9]))
    np.testing.assert_array_equal(filled.iloc[15:].to_numpy(), out.iloc[15:].to_numpy())
    # tz-aware timestamps and a NaN level work the same way
    nan_level = msft.copy()
    nan_level.iloc[320] = np.nan
    aware = index_baseline(nan_level, stamps.tz_localize("UTC"), 1e6)
    assert aware.iloc[20] == out.iloc[19] and pd.DatetimeIndex(aware.index).tz is not None
    # 6 in a row: an error naming the first missing date
    with pytest.raises(DataValidationError, match=str(stamps[10])):
        index_baseline(msft.drop(msft.index[310:316]), stamps, 1e6)
    with pytest.raises(DataValidationError, match="starts"):
        index_baseline(msft.iloc[301:], stamps, 1e6)
