"""Lookahead guard on every env and timing: what is emitted after bar t never depends on bars after t.

For each env the guard builds the env from (truncated / perturbed) bars, runs a fixed action
sequence, and returns observations, rewards and info values indexed by the timestamp of the
bar they were emitted after (:func:`rltrade.testing.assert_causal`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rltrade.envs.costs import BpsCost, SpreadCost
from rltrade.envs.portfolio import PortfolioEnv
from rltrade.envs.stock_trading import StockTradingEnv
from rltrade.envs.timing import (
    NEXT_CLOSE,
    NEXT_OPEN,
    SAME_CLOSE,
    TIMINGS,
    EnvConfigError,
    ExecutionTiming,
    resolve_timing,
)
from rltrade.testing import assert_causal

INFO_KEYS = ("portfolio_value", "cash", "cost", "total_cost", "turnover", "shares")

ENVS: dict[str, Callable[..., Any]] = {
    "portfolio": lambda bars, timing: PortfolioEnv(bars, look_back=3, timing=timing, cost=SpreadCost(1.0, 5)),
    "portfolio_long_short": lambda bars, timing: PortfolioEnv(
        bars, features=["log_return", "rsi_30"], timing=timing, long_short=True, leverage=2.0, reward="sortino_change"
    ),
    "stock_trading": lambda bars, timing: StockTradingEnv(
        bars, features=["log_return", "macd", "boll_ub"], timing=timing, cost=BpsCost(10), hmax=500
    ),
    "stock_trading_turbulence": lambda bars, timing: StockTradingEnv(
        bars,
        features=["log_return"],
        timing=timing,
        turbulence_threshold=4.0,
        turbulence_window=20,
        reward="differential_sharpe",
    ),
}


def emitted(make_env: Callable[..., Any], timing: str) -> Callable[[pd.DataFrame], dict[str, np.ndarray]]:
    """``fn(bars)`` for the guard: every output row stamped with the bar it was emitted after."""

    def fn(bars: pd.DataFrame) -> dict[str, np.ndarray]:
        env = make_env(bars, timing)
        stamps = pd.DatetimeIndex(bars["timestamp"].unique()).tz_convert("UTC").tz_localize(None).sort_values()
        times = stamps.to_numpy()
        n_obs = env.observation_space.shape[0]
        n_assets = env.market.n_symbols
        out: dict[str, np.ndarray] = {
            "obs": np.full((len(times), n_obs), np.nan, dtype=np.float32),
            "reward": np.full(len(times), np.nan),
        }
        for key in INFO_KEYS:
            out[key] = np.full((len(times), n_assets) if key == "shares" else len(times), np.nan)
        rng = np.random.default_rng(0)
        actions = rng.uniform(-1.0, 1.0, (len(times), *env.action_space.shape))

        def record(obs: np.ndarray, reward: float, info: dict[str, Any]) -> None:
            row = int(np.searchsorted(times, info["timestamp"]))
            assert times[row] == info["timestamp"]
            out["obs"][row] = obs
            out["reward"][row] = reward
            for key in INFO_KEYS:
                out[key][row] = info[key]

        obs, info = env.reset(seed=0)
        record(obs, 0.0, info)
        for n in range(len(times)):
            obs, reward, terminated, truncated, info = env.step(actions[n])
            record(obs, reward, info)
            if terminated or truncated:
                break
        return out

    return fn


@pytest.mark.parametrize("timing", ["next_open", "next_close", "same_close"])
@pytest.mark.parametrize("name", sorted(ENVS))
def test_env_outputs_are_causal(ohlcv_bars: pd.DataFrame, name: str, timing: str) -> None:
    assert_causal(emitted(ENVS[name], timing), ohlcv_bars, cutoffs=[50, 100, -3], n_perturbations=2)


@pytest.mark.parametrize("name", ["portfolio", "stock_trading"])
def test_close_only_envs_are_causal(close_bars: pd.DataFrame, name: str) -> None:
    assert_causal(emitted(ENVS[name], "next_close"), close_bars, cutoffs=[60, -2], n_perturbations=1)


def test_the_guard_catches_an_env_that_peeks(ohlcv_bars: pd.DataFrame) -> None:
    """A planted leak (the observation shows the next close) must fail the same guard."""

    class Peeking(PortfolioEnv):
        def step(self, action: np.ndarray) -> Any:
            obs, reward, terminated, truncated, info = super().step(action)
            nxt = min(info["bar"] + 1, self.market.n_times - 1)
            obs = obs.copy()
            obs[0] = np.float32(self.market.close[nxt, 0])
            return obs, reward, terminated, truncated, info

    with pytest.raises(AssertionError, match="lookahead"):
        assert_causal(emitted(lambda bars, timing: Peeking(bars, timing=timing), "next_open"), ohlcv_bars, [80])


def test_same_close_is_causal_but_fills_at_a_price_already_seen(ohlcv_bars: pd.DataFrame) -> None:
    """SAME_CLOSE emits nothing earlier than NEXT_OPEN does; its optimism is the fill price itself.

    The fill of the action chosen after bar t is close[t], a price the agent has already seen and
    that is gone by the time it can act. The guard cannot catch that (no output depends on later
    data); the docs flag it and the timing is opt-in only.
    """
    env = StockTradingEnv(ohlcv_bars, features=["log_return"], cost=None, timing="same_close", hmax=10)
    _, info = env.reset(seed=0)
    t = info["bar"]
    _, _, _, _, info = env.step(np.ones(3))
    assert info["cash"] == pytest.approx(1e6 - 10 * env.market.close[t].sum(), abs=1e-6)
    assert SAME_CLOSE.optimistic and not NEXT_OPEN.optimistic and not NEXT_CLOSE.optimistic


def test_timing_objects() -> None:
    assert (NEXT_OPEN.fill_field, NEXT_OPEN.fill_offset) == ("open", 1)
    assert (NEXT_CLOSE.fill_field, NEXT_CLOSE.fill_offset) == ("close", 1)
    assert (SAME_CLOSE.fill_field, SAME_CLOSE.fill_offset) == ("close", 0)
    assert resolve_timing(None, has_open=True) is NEXT_OPEN
    assert resolve_timing(None, has_open=False) is NEXT_CLOSE
    assert resolve_timing("Next-Close", has_open=True) is NEXT_CLOSE
    assert resolve_timing(SAME_CLOSE, has_open=False) is SAME_CLOSE
    assert set(TIMINGS) == {"next_open", "next_close", "same_close"}
    with pytest.raises(EnvConfigError, match="no opens"):
        resolve_timing("next_open", has_open=False)
    with pytest.raises(EnvConfigError, match="trade in the past"):
        ExecutionTiming("open_now", "open", 0)
    with pytest.raises(EnvConfigError, match="must be a name"):
        resolve_timing(3, has_open=True)
