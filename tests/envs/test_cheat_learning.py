"""The learning stack can learn, and the cheat is why: PPO on SingleAssetEnv(state="cheat") vs honest states.

``state="cheat"`` shows the agent the *next* 10 log price differences (deliberate lookahead). With
the same PPO budget, the agent that sees the future must make far more, out of sample, than one
that sees only the past (state "0": the last 10 log differences; state "3": the seed's full
state) and than buying and holding. If this test fails, the env/reward/agent plumbing is broken
(or the cheat no longer reaches the observation), not the market.

Setup: AAPL daily bars (bokeh-sampledata, split-adjusted), training 2000-2009, evaluation
2010-2013 (one continuous episode, deterministic policy). The fill is the next close and the
reward the forward log return, so the P&L of the action chosen after bar t is
``a_t·(close[t+2]/close[t+1])``, which the cheat observation contains (its second row).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from rltrade.data.sources import fetch
from rltrade.data.validate import validate_bars
from rltrade.envs.single_asset import SingleAssetEnv

TRAIN_END = "2009-12-31"
TEST_START = "2010-01-01"
TIMESTEPS = 12_000
ENV_KWARGS: dict[str, Any] = {"reward": "log_return", "forward_reward": True, "timing": "next_close", "cost": 1.0}


@pytest.fixture(scope="module")
def aapl() -> pd.DataFrame:
    """AAPL daily OHLCV, 2000-2013, with prices adjusted for splits and dividends (adj_close / close)."""
    bars = validate_bars(fetch("sample:stocks", symbols=["AAPL"])[0], accept_jumps=True)
    factor = bars["adj_close"] / bars["close"]
    for column in ("open", "high", "low", "close"):
        bars[column] = bars[column] * factor
    return bars.drop(columns=["adj_close"])


def out_of_sample_profit(bars: pd.DataFrame, state: str, policy: Any) -> float:
    """Return (final value / initial capital − 1) of ``policy(obs) -> action`` over the test range."""
    env = SingleAssetEnv(bars, state=state, start=TEST_START, **ENV_KWARGS)
    obs, info = env.reset(seed=0)
    done = False
    while not done:
        obs, _, terminated, truncated, info = env.step(policy(obs))
        done = terminated or truncated
    return float(info["portfolio_value"]) / 1_000_000.0 - 1.0


def train_and_evaluate(bars: pd.DataFrame, state: str) -> float:
    from stable_baselines3 import PPO

    from rltrade.envs.single_asset import BatchedSingleAssetEnv

    venv = BatchedSingleAssetEnv(
        bars, n_envs=8, state=state, end=TRAIN_END, episode_length=128, random_start=True, **ENV_KWARGS
    )
    model = PPO(
        "MlpPolicy",
        venv,
        n_steps=128,
        batch_size=256,
        n_epochs=5,
        gamma=0.5,  # the forward reward credits each action with its own outcome: a short horizon suffices
        learning_rate=1e-3,
        policy_kwargs={"net_arch": [64, 64]},
        seed=0,
        device="cpu",
    )
    model.learn(TIMESTEPS)
    return out_of_sample_profit(bars, state, lambda obs: int(model.predict(obs, deterministic=True)[0]))


def test_cheat_state_learns_and_honest_states_do_not(aapl: pd.DataFrame) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cheat = train_and_evaluate(aapl, "cheat")
        honest = {state: train_and_evaluate(aapl, state) for state in ("0", "3")}
    finally:
        torch.set_num_threads(threads)
    buy_and_hold = out_of_sample_profit(aapl, "0", lambda obs: 2)
    print(f"out-of-sample profit: cheat {cheat:+.1%}, honest {honest}, buy and hold {buy_and_hold:+.1%}")
    assert cheat > 1.0  # more than doubles the account in 2010-2013
    assert cheat > buy_and_hold + 1.0  # not just riding AAPL's rise
    for state, profit in honest.items():
        assert np.isfinite(profit)
        assert cheat > profit + 1.0, state  # the lookahead, not the stack, makes the money
        assert profit < buy_and_hold + 0.5, state  # no honest state finds a similar edge
