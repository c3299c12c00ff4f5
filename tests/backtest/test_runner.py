"""run_policy records exactly what the env reported, for every env, wrapped or not; random_policy is seeded."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest

import rltrade.envs  # noqa: F401 - registers the ids
from rltrade.backtest.runner import Trajectory, random_policy, run_policy
from rltrade.envs.costs import BpsCost, PerShareCost
from rltrade.envs.portfolio import PortfolioEnv
from rltrade.envs.single_asset import FuturesContract, SingleAssetEnv
from rltrade.envs.stock_trading import StockTradingEnv

SYMBOLS = ["AAPL", "JNJ", "KO", "MSFT", "XOM"]


@pytest.fixture(scope="module")
def sp500_small(sp500_bars: pd.DataFrame) -> pd.DataFrame:
    """5 stocks of the embedded S&P 500 sample (close-only), 2016-2018."""
    bars = sp500_bars
    keep = bars["symbol"].isin(SYMBOLS) & (bars["timestamp"] >= "2016-01-01") & (bars["timestamp"] < "2019-01-01")
    return bars.loc[keep].reset_index(drop=True)


def manual_episode(env: gym.Env[Any, Any], policy: Any, seed: int) -> list[dict[str, Any]]:
    """The infos of reset and of every step, stepping by hand."""
    obs, info = env.reset(seed=seed)
    infos = [info]
    while True:
        obs, _, terminated, truncated, info = env.step(policy(obs))
        infos.append(info)
        if terminated or truncated:
            return infos


def assert_common(trajectory: Trajectory, infos: list[dict[str, Any]], initial_value: float) -> None:
    """Values, costs, turnover and stamps equal the infos bit for bit; the first row is the reset."""
    assert len(trajectory) == len(infos)
    np.testing.assert_array_equal(trajectory.values, [i["portfolio_value"] for i in infos])
    np.testing.assert_array_equal(trajectory.costs[1:], [i["cost"] for i in infos[1:]])
    np.testing.assert_array_equal(trajectory.turnover[1:], [i["turnover"] for i in infos[1:]])
    assert trajectory.costs[0] == 0.0 and trajectory.turnover[0] == 0.0
    assert trajectory.values[0] == initial_value
    assert trajectory.values.dtype == np.float64
    stamps = np.array([i["timestamp"] for i in infos], dtype="datetime64[ns]")
    np.testing.assert_array_equal(trajectory.timestamps.to_numpy(), stamps)
    assert trajectory.timestamps.tz is None and trajectory.timestamps.is_monotonic_increasing
    np.testing.assert_allclose(trajectory.weights.sum(axis=1), 1.0, rtol=1e-12)


def test_portfolio_trajectory_is_what_the_env_reported(sp500_small: pd.DataFrame) -> None:
    env = PortfolioEnv(sp500_small, look_back=5, cost=BpsCost(10), initial_value=1e6)
    trajectory = run_policy(env, random_policy(env.action_space, 3), seed=0)
    infos = manual_episode(env, random_policy(env.action_space, 3), seed=0)
    assert_common(trajectory, infos, 1e6)
    market = env.market
    assert trajectory.symbols == market.symbols == tuple(SYMBOLS)
    assert trajectory.timestamps[0] == pd.Timestamp(market.times[market.first])
    assert trajectory.timestamps[-1] == pd.Timestamp(market.times[market.last])
    np.testing.assert_array_equal(trajectory.weights, [i["weights"] for i in infos])
    np.testing.assert_array_equal(trajectory.holdings, [i["shares"] for i in infos])
    np.testing.assert_array_equal(trajectory.closes, market.close[market.first : market.last + 1])
    assert trajectory.costs[1:].min() > 0.0  # random logits trade every bar


def test_frames_and_series(sp500_small: pd.DataFrame) -> None:
    env = PortfolioEnv(sp500_small, look_back=1, cost=None, end="2016-03-31")
    trajectory = run_policy(env, random_policy(env.action_space, 0), seed=0)
    equity = trajectory.equity("ppo")
    assert equity.name == "ppo" and equity.index.name == "timestamp"
    assert equity.index.equals(trajectory.timestamps) and equity.iloc[0] == 1.0
    turnover = trajectory.turnover_series("ppo")
    assert turnover.name == "ppo" and turnover.iloc[0] == 0.0 and (turnover.iloc[1:] > 0).all()
    weights = trajectory.weights_frame("ppo")
    assert list(weights.columns) == ["timestamp", "strategy", *SYMBOLS, "cash"]
    assert (weights["strategy"] == "ppo").all() and len(weights) == len(trajectory)
    np.testing.assert_array_equal(weights[[*SYMBOLS, "cash"]].to_numpy(), trajectory.weights)
    trades = trajectory.trades_frame("ppo")
    assert list(trades.columns) == ["timestamp", "strategy", "symbol", "quantity", "holding", "price", "notional"]
    assert len(trades) == (len(trajectory) - 1) * len(SYMBOLS)  # every symbol changes at every rebalance
    # the signed changes add up to the final holdings (the episode starts in cash)
    final = trades.groupby("symbol")["quantity"].sum().reindex(list(SYMBOLS)).to_numpy()
    np.testing.assert_allclose(final, trajectory.holdings[-1], rtol=1e-9)
    last = trades[trades["timestamp"] == trajectory.timestamps[-1]].set_index("symbol").loc[list(SYMBOLS)]
    np.testing.assert_array_equal(last["holding"].to_numpy(), trajectory.holdings[-1])
    np.testing.assert_array_equal(last["price"].to_numpy(), trajectory.closes[-1])
    np.testing.assert_allclose(last["notional"], last["quantity"] * last["price"], rtol=1e-15)


def test_stock_trading_trajectory(aapl_ibm: pd.DataFrame) -> None:
    env = StockTradingEnv(aapl_ibm, hmax=50, initial_value=1e5, cost=BpsCost(10))
    trajectory = run_policy(env, random_policy(env.action_space, 1), seed=0)
    infos = manual_episode(env, random_policy(env.action_space, 1), seed=0)
    assert_common(trajectory, infos, 1e5)
    market = env.market
    shares = np.array([i["shares"] for i in infos])
    close = market.close[[i["bar"] for i in infos]]
    values = trajectory.values[:, None]
    np.testing.assert_array_equal(trajectory.holdings, shares)
    np.testing.assert_allclose(trajectory.weights[:, :2], shares * close / values, rtol=1e-12)
    np.testing.assert_allclose(trajectory.weights[:, 2], [i["cash"] / i["portfolio_value"] for i in infos], atol=1e-12)
    trades = trajectory.trades_frame("finrl")
    assert len(trades) > 0 and (trades["quantity"] == np.round(trades["quantity"])).all()
    assert set(trades["symbol"]) <= {"AAPL", "IBM"}


@pytest.mark.parametrize("contract", [None, FuturesContract(multiplier=10, margin_rate=0.2)])
def test_single_asset_trajectory(aapl_ibm: pd.DataFrame, contract: FuturesContract | None) -> None:
    cost = PerShareCost(0.01, 1.0)
    env = SingleAssetEnv(
        aapl_ibm, symbol="AAPL", state="0", cost=cost, contract=contract, reward="profit", initial_value=2e4
    )
    trajectory = run_policy(env, random_policy(env.action_space, 2), seed=0)
    infos = manual_episode(env, random_policy(env.action_space, 2), seed=0)
    assert_common(trajectory, infos, 2e4)
    multiplier = 1.0 if contract is None else 10.0
    assert trajectory.symbols == ("AAPL",) and trajectory.multiplier == multiplier
    position = np.array([i["position"] for i in infos])
    price = np.array([i["price"] for i in infos])
    np.testing.assert_array_equal(trajectory.holdings[:, 0], position)
    np.testing.assert_array_equal(trajectory.closes[:, 0], price)
    np.testing.assert_allclose(trajectory.weights[:, 0], position * price * multiplier / trajectory.values, rtol=1e-12)
    cash_weight = np.array([i["cash"] / i["portfolio_value"] for i in infos])
    np.testing.assert_allclose(trajectory.weights[:, 1], cash_weight, rtol=1e-9, atol=1e-12)
    assert np.abs(trajectory.weights[:, 0]).max() > 0.1  # it did take positions


def test_wrapped_env_and_truncation(sp500_small: pd.DataFrame) -> None:
    env = gym.make("rltrade/Portfolio-v0", bars=sp500_small, look_back=2, max_episode_steps=7)
    trajectory = run_policy(env, random_policy(env.action_space, 0), seed=0, progress="wrapped")
    assert len(trajectory) == 8  # the reset and 7 steps (TimeLimit truncates)
    assert trajectory.symbols == tuple(SYMBOLS)
    start = pd.Timestamp("2017-06-01")
    trajectory = run_policy(env, lambda obs: np.zeros(6), options={"start": start}, progress=True)
    assert trajectory.timestamps[0] == start


def test_random_policy_is_seeded_and_leaves_the_space_alone() -> None:
    space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    space.seed(9)
    reference = space.sample()
    space.seed(9)
    a, b, c = random_policy(space, 1), random_policy(space, 1), random_policy(space, 2)
    draws_a = [a(None) for _ in range(5)]
    np.testing.assert_array_equal(draws_a, [b(None) for _ in range(5)])
    assert not np.array_equal(draws_a, [c(None) for _ in range(5)])
    np.testing.assert_array_equal(space.sample(), reference)  # the original space's generator was not used
    discrete = random_policy(gym.spaces.Discrete(3), 0)
    assert {int(discrete(None)) for _ in range(50)} == {0, 1, 2}


def test_run_policy_refuses_foreign_envs() -> None:
    with pytest.raises(TypeError, match="rltrade env"):
        run_policy(gym.make("CartPole-v1"), lambda obs: 0)
