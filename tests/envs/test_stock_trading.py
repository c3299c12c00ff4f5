"""StockTradingEnv: FinRL semantics (state layout, integer shares, sells before buys, cash limits, turbulence)."""

from __future__ import annotations

import itertools
import sys
from types import FrameType
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest

import rltrade.envs  # noqa: F401 - registers the ids
from rltrade.envs.costs import BpsCost, NoCost, PerShareCost, SpreadCost
from rltrade.envs.portfolio import PortfolioEnv
from rltrade.envs.rewards import REWARDS
from rltrade.envs.stock_trading import CLOSE_ONLY_INDICATORS, StockTradingEnv
from rltrade.envs.timing import NEXT_CLOSE, NEXT_OPEN, EnvConfigError
from rltrade.features import FINRL_INDICATORS


def tiny_bars(n_days: int = 8) -> pd.DataFrame:
    """2 symbols with constant prices: A opens 11, closes 10; B opens 19, closes 20."""
    stamps = pd.date_range("2021-01-04", periods=n_days, freq="B", tz="UTC").astype("datetime64[ns, UTC]")
    frames = []
    for symbol, open_, close in (("A", 11.0, 10.0), ("B", 19.0, 20.0)):
        frames.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "timestamp": stamps,
                    "open": open_,
                    "high": max(open_, close),
                    "low": min(open_, close),
                    "close": close,
                    "volume": 100.0,
                }
            )
        )
    return pd.concat(frames).sort_values(["timestamp", "symbol"]).reset_index(drop=True)


def tiny_env(**kwargs: Any) -> StockTradingEnv:
    params: dict[str, Any] = {"features": ["log_return"], "hmax": 10, "initial_value": 100.0, "cost": None}
    params.update(kwargs)
    return StockTradingEnv(tiny_bars(), **params)


def test_defaults_run_on_the_close_only_sp500_sample(sp500_bars: pd.DataFrame) -> None:
    env = StockTradingEnv(sp500_bars)
    assert env.market.feature_names == CLOSE_ONLY_INDICATORS and env.timing is NEXT_CLOSE
    assert env.market.n_symbols == 20
    obs, info = env.reset(seed=0)
    assert obs.shape == (1 + 2 * 20 + 6 * 20,) and obs.dtype == np.float32
    assert info["portfolio_value"] == 1e6
    rng = np.random.default_rng(0)
    for _ in range(50):
        obs, _, terminated, truncated, info = env.step(rng.uniform(-1, 1, 20))
        assert env.observation_space.contains(obs) and not (terminated or truncated)
    assert info["cash"] >= 0 and (info["shares"] >= 0).all()


def test_defaults_on_ohlcv_use_finrl_indicators_and_the_next_open(stocks_bars: pd.DataFrame) -> None:
    env = StockTradingEnv(stocks_bars)
    assert env.market.feature_names == FINRL_INDICATORS and env.timing is NEXT_OPEN


def test_state_layout_is_computed(ohlcv_bars: pd.DataFrame) -> None:
    env = StockTradingEnv(ohlcv_bars, initial_value=5e5)
    obs, info = env.reset(seed=0)
    layout, market, t = env.state_layout, env.market, info["bar"]
    assert list(layout) == ["cash", "price", "shares", *FINRL_INDICATORS]
    assert layout["sma_60"].stop == env.observation_space.shape[0]
    assert obs[layout["cash"]][0] == np.float32(5e5)
    np.testing.assert_array_equal(obs[layout["price"]], market.close[t].astype(np.float32))
    np.testing.assert_array_equal(obs[layout["shares"]], [0, 0, 0])
    for f, name in enumerate(FINRL_INDICATORS):
        np.testing.assert_array_equal(obs[layout[name]], market.features[t, f].astype(np.float32))
    assert t == market.first == 59  # sma_60's warm-up: no back-filled indicator rows


def test_actions_become_integer_shares_truncated_toward_zero() -> None:
    env = tiny_env(initial_value=1_000.0)
    env.reset(seed=0)
    obs, _, _, _, info = env.step(np.array([0.999, 0.35]))  # 9.99 -> 9, 3.5 -> 3
    np.testing.assert_array_equal(info["shares"], [9.0, 3.0])
    assert info["cash"] == 1_000.0 - 9 * 11.0 - 3 * 19.0  # filled at the next opens
    np.testing.assert_array_equal(obs[env.state_layout["shares"]], [9.0, 3.0])
    _, _, _, _, info = env.step(np.array([-0.05, -0.99]))  # -0.5 -> 0 (no sale), -9.9 -> -9: sells the 3 held
    np.testing.assert_array_equal(info["shares"], [9.0, 0.0])
    _, _, _, _, info = env.step(np.array([3.0, -7.0]))  # clipped to [1, -1]
    np.testing.assert_array_equal(info["shares"], [19.0, 0.0])


def test_sells_come_before_buys() -> None:
    env = tiny_env(initial_shares=[5, 0])
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([-1.0, 1.0]))
    # selling 5 A at 11 first brings the cash to 155, which buys 8 B at 19
    np.testing.assert_array_equal(info["shares"], [0.0, 8.0])
    assert info["cash"] == 100.0 + 55.0 - 8 * 19.0


def test_buys_are_limited_by_cash_including_costs_largest_action_first() -> None:
    env = tiny_env(cost=BpsCost(10))
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([1.0, 0.5]))  # A first: 9 shares x 11 x 1.001 = 99.099 <= 100
    np.testing.assert_array_equal(info["shares"], [9.0, 0.0])
    assert info["cost"] == pytest.approx(0.001 * 99.0, rel=1e-12)
    assert info["cash"] == pytest.approx(100.0 - 99.0 - 0.099, abs=1e-12)
    env = tiny_env(cost=PerShareCost(per_share=0.0, minimum=5.0))
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([0.5, 1.0]))  # B first: 5 x 19 + 5 = 100; nothing left for A
    np.testing.assert_array_equal(info["shares"], [0.0, 5.0])
    assert info["cash"] == 0.0 and info["cost"] == 5.0
    env = tiny_env(initial_value=90.0, cost=PerShareCost(per_share=0.0, minimum=5.0))
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([0.5, 1.0]))  # B: 4 x 19 + 5 = 81 (5 would need 100); A: 9 left < 16
    np.testing.assert_array_equal(info["shares"], [0.0, 4.0])
    assert info["cash"] == 9.0 and info["cost"] == 5.0


def test_a_sale_whose_minimum_fee_exceeds_cash_and_proceeds_is_skipped() -> None:
    env = tiny_env(initial_value=0.0, initial_shares=[1, 0], cost=PerShareCost(per_share=0.01, minimum=50.0))
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([-1.0, 0.0]))
    assert info["cash"] == 0.0 and info["shares"][0] == 1.0 and info["cost"] == 0.0


def test_same_close_fills_at_the_observed_close() -> None:
    env = tiny_env(timing="same_close")
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([0.5, 0.0]))
    assert info["cash"] == 100.0 - 5 * 10.0  # A's close, not its next open (11)


def test_reward_is_scaled_change_of_total_assets(ohlcv_bars: pd.DataFrame) -> None:
    env = StockTradingEnv(ohlcv_bars)
    _, info = env.reset(seed=0)
    before = info["portfolio_value"]
    _, reward, _, _, info = env.step(np.ones(3))
    assert reward == pytest.approx((info["portfolio_value"] - before) * 1e-4, rel=1e-12)
    assert info["portfolio_value"] == pytest.approx(info["cash"] + info["shares"] @ env.market.close[info["bar"]])
    env = StockTradingEnv(ohlcv_bars, reward="log_return")
    _, info = env.reset(seed=0)
    _, reward, _, _, info2 = env.step(np.ones(3))
    assert reward == pytest.approx(np.log(info2["portfolio_value"] / info["portfolio_value"]), rel=1e-12)


def test_turbulence_switch_sells_everything_and_blocks_buys(make_bars: Any) -> None:
    bars = make_bars(n_days=200, seed=11, vol=0.03)
    probe = StockTradingEnv(bars, features=["log_return"], turbulence_threshold=1e9, turbulence_window=20)
    market = probe.market
    usable = probe.turbulence[market.first : market.last + 1]
    assert np.isfinite(usable).all() and market.first == 21
    threshold = float(np.quantile(usable, 0.8))
    env = StockTradingEnv(bars, features=["log_return"], turbulence_threshold=threshold, turbulence_window=20)
    _, info = env.reset(seed=0)
    storms = calm = 0
    while True:
        t = info["bar"]  # the decision bar: the turbulence known when the action is chosen
        shares_before = info["shares"]
        _, _, terminated, truncated, info = env.step(np.ones(3))
        if env.turbulence[t] >= threshold:
            storms += 1
            assert info["turbulent"] and (info["shares"] == 0).all()
        else:
            calm += 1
            assert not info["turbulent"] and (info["shares"] >= shares_before).all()
        if terminated or truncated:
            break
    assert storms > 5 and calm > 5


@pytest.mark.parametrize(
    ("cost", "timing"),
    list(
        itertools.product(
            [None, BpsCost(10), PerShareCost(), SpreadCost(2.0, 10)], ["next_open", "next_close", "same_close"]
        )
    ),
)
def test_check_env_for_each_cost_and_timing(ohlcv_bars: pd.DataFrame, env_check: Any, cost: Any, timing: str) -> None:
    env_check(StockTradingEnv(ohlcv_bars, features=["log_return", "rsi_30"], cost=cost, timing=timing))


@pytest.mark.parametrize("reward", sorted(REWARDS))
def test_check_env_for_each_reward_with_turbulence(ohlcv_bars: pd.DataFrame, env_check: Any, reward: str) -> None:
    env = StockTradingEnv(
        ohlcv_bars, reward=reward, turbulence_threshold=10.0, turbulence_window=30, random_start=True, episode_length=20
    )
    env_check(env)


def test_gym_make(close_bars: pd.DataFrame) -> None:
    env = gym.make("rltrade/StockTrading-v0", bars=close_bars)
    obs, _ = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape


def test_bad_settings_fail_clearly(ohlcv_bars: pd.DataFrame) -> None:
    with pytest.raises(EnvConfigError, match="hmax"):
        StockTradingEnv(ohlcv_bars, hmax=0)
    with pytest.raises(EnvConfigError, match="initial_shares"):
        StockTradingEnv(ohlcv_bars, initial_shares=[1, 2])
    with pytest.raises(EnvConfigError, match="initial_shares"):
        StockTradingEnv(ohlcv_bars, initial_shares=[1, 2, 0.5])


@pytest.mark.parametrize("make_env", [StockTradingEnv, PortfolioEnv])
def test_step_calls_no_pandas(ohlcv_bars: pd.DataFrame, make_env: Any) -> None:
    env = make_env(ohlcv_bars, cost=SpreadCost())
    env.reset(seed=0)
    env.step(env.action_space.sample())  # compile outside the trace
    modules: set[str] = set()

    def tracer(frame: FrameType, event: str, arg: object) -> None:
        if event in ("call", "c_call"):
            owner = getattr(arg, "__module__", None) if event == "c_call" else frame.f_globals.get("__name__")
            modules.add(str(owner))

    sys.setprofile(tracer)
    try:
        for _ in range(5):
            env.step(env.action_space.sample())
    finally:
        sys.setprofile(None)
    assert not [m for m in modules if m.startswith("pandas")], sorted(modules)
    assert any(m.startswith("rltrade.envs") for m in modules)


def test_costs_are_charged_and_shares_never_appear_from_nothing(ohlcv_bars: pd.DataFrame) -> None:
    env = StockTradingEnv(ohlcv_bars, cost=NoCost(), hmax=50)
    _, info = env.reset(seed=0)
    rng = np.random.default_rng(2)
    fill = env.market.open
    for _ in range(60):
        t, cash, shares = info["bar"], info["cash"], info["shares"]
        _, _, _, _, info = env.step(rng.uniform(-1, 1, 3))
        delta = info["shares"] - shares
        assert info["cash"] == pytest.approx(cash - delta @ fill[t + 1], abs=1e-6)
