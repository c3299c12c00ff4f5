"""Batched envs: copy k equals the scalar env seeded ``seed + k``, bit for bit; SB3 VecEnv semantics; PPO runs."""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
import pandas as pd
import pytest

from rltrade.envs.costs import BpsCost, SpreadCost
from rltrade.envs.portfolio import PortfolioEnv
from rltrade.envs.stock_trading import StockTradingEnv
from rltrade.envs.timing import EnvConfigError
from rltrade.envs.vec import BatchedPortfolioEnv, BatchedStockTradingEnv, BatchedVecEnv

CASES: list[tuple[Any, Any, dict[str, Any]]] = [
    (PortfolioEnv, BatchedPortfolioEnv, {"look_back": 3, "cost": BpsCost(10)}),
    (PortfolioEnv, BatchedPortfolioEnv, {"long_short": True, "leverage": 2.0, "reward": "differential_sharpe"}),
    (StockTradingEnv, BatchedStockTradingEnv, {"features": ["log_return", "rsi_30"], "cost": SpreadCost(1.0, 5)}),
    (StockTradingEnv, BatchedStockTradingEnv, {"turbulence_threshold": 8.0, "turbulence_window": 30}),
]


def assert_bits_equal(a: Any, b: Any, where: str) -> None:
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, f"{where}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
    assert a.tobytes() == b.tobytes(), f"{where}: {a} vs {b}"


def assert_info_equal(scalar: dict[str, Any], batched: dict[str, Any], where: str) -> None:
    assert list(scalar) == [k for k in batched if k not in ("terminal_observation", "TimeLimit.truncated")], where
    for key, value in scalar.items():
        assert type(value) is type(batched[key]), f"{where} {key}"
        assert_bits_equal(value, batched[key], f"{where} {key}")


def scalar_trajectory(env: Any, seed: int, actions: np.ndarray) -> list[dict[str, Any]]:
    """What an SB3 DummyVecEnv would see from one scalar env (auto-reset on done)."""
    obs, info = env.reset(seed=seed)
    steps = [{"obs": obs, "info": info}]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        step = {"reward": reward, "done": terminated or truncated, "info": info, "truncated": truncated}
        if terminated or truncated:
            step["terminal_observation"] = obs
            obs, _ = env.reset()
        step["obs"] = obs
        steps.append(step)
    return steps


@pytest.mark.parametrize(("scalar_cls", "batched_cls", "kwargs"), CASES)
@pytest.mark.parametrize(("n_envs", "threads"), [(1, False), (3, False), (33, True)])
def test_copy_k_equals_the_scalar_env_seeded_seed_plus_k(
    ohlcv_bars: pd.DataFrame, scalar_cls: Any, batched_cls: Any, kwargs: dict[str, Any], n_envs: int, threads: bool
) -> None:
    kwargs = {**kwargs, "random_start": True, "episode_length": 9}
    venv = batched_cls(ohlcv_bars, n_envs=n_envs, full_info=True, threads=threads, **kwargs)
    assert venv.core.parallel == (threads and numba.get_num_threads() > 1)
    n_steps = 25  # crosses two auto-resets
    rng = np.random.default_rng(5)
    actions = rng.uniform(-1.2, 1.2, (n_steps, n_envs, *venv.action_space.shape))
    venv.seed(100)
    first = venv.reset()
    first_infos = list(venv.reset_infos)
    batched = [venv.step(actions[n]) for n in range(n_steps)]
    for k in [0, 1, n_envs - 1] if n_envs > 3 else range(n_envs):
        steps = scalar_trajectory(scalar_cls(ohlcv_bars, **kwargs), 100 + k, actions[:, k])
        assert_bits_equal(first[k], steps[0]["obs"], f"copy {k} reset obs")
        assert_info_equal(steps[0]["info"], first_infos[k], f"copy {k} reset info")
        for n, (obs, rewards, dones, infos) in enumerate(batched):
            expected = steps[n + 1]
            where = f"copy {k} step {n}"
            assert_bits_equal(obs[k], expected["obs"], f"{where} obs")
            assert_bits_equal(rewards[k], np.float64(expected["reward"]), f"{where} reward")
            assert bool(dones[k]) == expected["done"], where
            assert_info_equal(expected["info"], infos[k], where)
            if expected["done"]:
                assert_bits_equal(infos[k]["terminal_observation"], expected["terminal_observation"], where)
                assert infos[k]["TimeLimit.truncated"] == expected["truncated"]
    assert sum(bool(d[0]) for _, _, d, _ in batched) == 2


def test_vec_env_api(ohlcv_bars: pd.DataFrame) -> None:
    venv = BatchedStockTradingEnv(ohlcv_bars, n_envs=4, features=["log_return"], episode_length=3)
    with pytest.raises(EnvConfigError, match="reset"):
        venv.step(np.zeros((4, 3)))
    venv.set_options({"start": "2020-06-01"})
    obs = venv.reset()
    assert obs.shape == (4, 10) and obs.dtype == np.float32
    assert (venv.state()["bar"] == venv.core.market.index_of("2020-06-01")).all()
    assert venv.get_attr("state_layout")[0]["cash"] == slice(0, 1)
    assert venv.env_method("make_core", 2)[0].n_copies == 2
    assert venv.env_is_wrapped(object) == [False] * 4
    obs, rewards, dones, infos = venv.step(np.ones((4, 3)))
    assert rewards.shape == (4,) and rewards.dtype == np.float64 and not dones.any()
    assert infos == [{}, {}, {}, {}]  # per-step infos only with full_info=True
    venv.step(np.ones((4, 3)))
    obs, rewards, dones, infos = venv.step(np.ones((4, 3)))
    assert dones.all()
    for info in infos:
        assert info["TimeLimit.truncated"] is True
        assert info["final_info"]["bar"] == venv.core.market.index_of("2020-06-01") + 3
        assert info["terminal_observation"].shape == (10,)
    state = venv.state()
    assert (state["cash"] == 1e6).all() and (state["shares"] == 0).all()  # reset after the episode ended
    with pytest.raises(EnvConfigError, match="cannot set"):
        venv.set_attr("hmax", 5)


def test_sb3_ppo_learns_a_few_hundred_steps_on_the_vec_env(ohlcv_bars: pd.DataFrame) -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor

    for venv in (
        BatchedStockTradingEnv(ohlcv_bars, n_envs=8, features=["log_return"], random_start=True, episode_length=20),
        BatchedPortfolioEnv(ohlcv_bars, n_envs=8, random_start=True, episode_length=20),
    ):
        assert isinstance(venv, BatchedVecEnv)
        monitored = VecMonitor(venv)
        model = PPO("MlpPolicy", monitored, n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu")
        model.learn(total_timesteps=512)
        assert model.num_timesteps >= 512
        lengths = [episode["l"] for episode in model.ep_info_buffer or []]  # episodes seen through the auto-resets
        assert len(lengths) >= 3 * 8 and set(lengths) == {20}
        obs = monitored.reset()
        assert isinstance(obs, np.ndarray)
        action, _ = model.predict(obs, deterministic=True)
        assert action.shape == (8, *venv.action_space.shape)
