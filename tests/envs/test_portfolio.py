"""PortfolioEnv: accounting by hand, action mapping, costs, timing, splits, seeding, errors and check_env."""

from __future__ import annotations

import itertools
import subprocess
import sys
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest

import rltrade.envs  # noqa: F401 - registers the ids
from rltrade.envs.costs import BpsCost, CostParams, LinearCost, NoCost, PerShareCost, SpreadCost
from rltrade.envs.market import Market
from rltrade.envs.portfolio import PortfolioEnv
from rltrade.envs.rewards import REWARDS, LogReturnReward, ProfitReward
from rltrade.envs.timing import NEXT_CLOSE, NEXT_OPEN, SAME_CLOSE, EnvConfigError
from rltrade.errors import DataValidationError


def tiny_bars() -> pd.DataFrame:
    """2 symbols x 5 days with round numbers (closes and opens chosen by hand)."""
    stamps = pd.date_range("2021-01-04", periods=5, freq="B", tz="UTC").astype("datetime64[ns, UTC]")
    rows = {
        "A": {"open": [10.0, 10.0, 11.0, 12.0, 12.0], "close": [10.0, 10.5, 11.5, 12.0, 11.0]},
        "B": {"open": [20.0, 20.0, 19.0, 18.0, 20.0], "close": [20.0, 19.5, 18.5, 19.0, 21.0]},
    }
    frames = []
    for symbol, values in rows.items():
        frame = pd.DataFrame({"symbol": symbol, "timestamp": stamps, **values})
        frame["high"] = frame[["open", "close"]].max(axis=1)
        frame["low"] = frame[["open", "close"]].min(axis=1)
        frame["volume"] = 1000.0
        frames.append(frame)
    return pd.concat(frames).sort_values(["timestamp", "symbol"]).reset_index(drop=True)


def test_hand_computed_step_next_open_no_cost() -> None:
    bars = tiny_bars()
    env = PortfolioEnv(bars, look_back=1, cost=None, timing="next_open")
    obs, info = env.reset(seed=0)
    # first usable bar: log_return needs one previous close
    assert info["bar"] == 1 and info["portfolio_value"] == 1.0 and info["cash"] == 1.0
    np.testing.assert_allclose(obs[:2], np.log([10.5 / 10.0, 19.5 / 20.0]), rtol=1e-6)
    np.testing.assert_array_equal(obs[2:], [0.0, 0.0, 1.0])
    # zero logits -> 1/3 in A, B and cash, filled at the opens of bar 2 (11, 19), marked at its closes
    obs, reward, terminated, truncated, info = env.step(np.zeros(3))
    expected = 1 / 3 + (1 / 3) * 11.5 / 11.0 + (1 / 3) * 18.5 / 19.0
    assert info["portfolio_value"] == pytest.approx(expected, rel=1e-10)
    assert reward == pytest.approx(np.log(expected), rel=1e-9)
    np.testing.assert_allclose(info["shares"], [1 / 3 / 11.0, 1 / 3 / 19.0], rtol=1e-10)
    assert info["cost"] == 0.0 and not terminated and not truncated
    assert info["turnover"] == pytest.approx(2 / 3, rel=1e-10)
    np.testing.assert_allclose(obs[2:].sum(), 1.0, rtol=1e-6)
    assert info["timestamp"] == np.datetime64("2021-01-06T00:00:00")


def test_bps_cost_is_paid_out_of_the_portfolio() -> None:
    env = PortfolioEnv(tiny_bars(), look_back=1, cost=BpsCost(25), timing="next_open")
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([1.0, -1.0, 0.0]))
    fill = np.array([11.0, 19.0])
    traded = np.abs(info["shares"]) * fill  # from all cash
    assert info["cost"] == pytest.approx(0.0025 * traded.sum(), rel=1e-12)
    # value at the fill = new cash + new holdings + cost
    assert info["cash"] + (info["shares"] * fill).sum() + info["cost"] == pytest.approx(1.0, abs=1e-12)
    # second step: costs on the change of holdings only; cumulative cost adds up
    shares_before, cash_before, total_before = info["shares"], info["cash"], info["total_cost"]
    _, _, _, _, info = env.step(np.array([-1.0, 1.0, 0.0]))
    fill = np.array([12.0, 18.0])
    traded = np.abs(info["shares"] - shares_before) * fill
    assert info["cost"] == pytest.approx(0.0025 * traded.sum(), rel=1e-12)
    value_at_fill = cash_before + (shares_before * fill).sum()
    assert value_at_fill == pytest.approx(info["cash"] + (info["shares"] * fill).sum() + info["cost"], rel=1e-12)
    assert info["total_cost"] == pytest.approx(total_before + info["cost"], rel=1e-12)


def test_per_share_minimum_is_charged_per_traded_asset() -> None:
    env = PortfolioEnv(tiny_bars(), look_back=1, cost=PerShareCost(0.01, 5.0), initial_value=10_000.0)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.zeros(3))
    shares = info["shares"]
    expected = np.maximum(0.01 * shares, 5.0).sum()
    assert info["cost"] == pytest.approx(expected, rel=1e-12)


def test_zero_logits_give_equal_weights_and_cash_never_negative() -> None:
    env = PortfolioEnv(tiny_bars(), look_back=1, cost=None, timing="next_close")
    env.reset(seed=0)
    obs, _, _, _, info = env.step(np.zeros(3))
    # filled at the close it is marked at: the weights are the targets
    np.testing.assert_allclose(obs[env.state_layout["weights"]], [1 / 3, 1 / 3, 1 / 3], rtol=1e-6)
    obs, _, _, _, info = env.step(np.array([-1.0, -1.0, -1.0]))  # equal logits again (all -1)
    np.testing.assert_allclose(obs[env.state_layout["weights"]], [1 / 3, 1 / 3, 1 / 3], rtol=1e-6)
    obs, _, _, _, info = env.step(np.array([5.0, -5.0, -5.0]))  # clipped to [1, -1, -1]
    e = np.exp(10.0)
    np.testing.assert_allclose(obs[env.state_layout["weights"]], [e / (e + 2), 1 / (e + 2), 1 / (e + 2)], rtol=1e-5)
    assert info["cash"] >= 0.0


def test_long_short_weights_respect_the_leverage_cap() -> None:
    env = PortfolioEnv(tiny_bars(), look_back=1, cost=None, timing="next_close", long_short=True, leverage=2.0)
    assert env.action_space.shape == (2,)
    env.reset(seed=0)
    obs, _, _, _, info = env.step(np.array([1.0, -1.0]))
    np.testing.assert_allclose(obs[env.state_layout["weights"]], [1.0, -1.0, 1.0], rtol=1e-6)
    assert info["shares"][1] < 0
    obs, _, _, _, info = env.step(np.array([0.25, 0.0]))  # gross 0.25 < 1: scaled by the leverage only
    np.testing.assert_allclose(obs[env.state_layout["weights"]], [0.5, 0.0, 0.5], rtol=1e-6)
    obs, _, _, _, info = env.step(np.zeros(2))  # nothing invested: all cash
    np.testing.assert_allclose(obs[env.state_layout["weights"]], [0.0, 0.0, 1.0], atol=1e-7)
    assert info["shares"] == pytest.approx([0.0, 0.0], abs=1e-15)


def test_observation_layout_matches_the_market_arrays(ohlcv_bars: pd.DataFrame) -> None:
    env = PortfolioEnv(ohlcv_bars, features=["log_return", "sma_20"], look_back=4)
    obs, info = env.reset(seed=0)
    market = env.market
    t = info["bar"]
    assert t == market.first == 19 + 3  # sma_20 warm-up 19, plus look_back - 1
    block = obs[env.state_layout["features"]].reshape(env.feature_shape)
    np.testing.assert_array_equal(block, market.features[t - 3 : t + 1].astype(np.float32))
    assert env.feature_shape == (4, 2, 3)
    assert env.observation_space.shape == (4 * 2 * 3 + 4,)
    assert env.action_space.shape == (4,)


@pytest.mark.parametrize(
    ("cost", "timing", "long_short"),
    [
        (c, t, ls)
        for (c, t), ls in zip(
            itertools.product(
                [None, BpsCost(10), PerShareCost(), SpreadCost(1.0, 5), LinearCost(CostParams(0.0005, 0.001, 0.5))],
                ["next_open", "next_close", "same_close"],
            ),
            itertools.cycle([False, True]),
            strict=False,
        )
    ],
)
def test_check_env_for_each_cost_and_timing(
    ohlcv_bars: pd.DataFrame, env_check: object, cost: object, timing: str, long_short: bool
) -> None:
    env = PortfolioEnv(ohlcv_bars, cost=cost, timing=timing, long_short=long_short, initial_value=1e5, look_back=3)
    env_check(env)  # type: ignore[operator]


@pytest.mark.parametrize("reward", sorted(REWARDS))
@pytest.mark.parametrize("long_short", [False, True])
def test_check_env_for_each_reward(ohlcv_bars: pd.DataFrame, env_check: object, reward: str, long_short: bool) -> None:
    env = PortfolioEnv(ohlcv_bars, reward=reward, long_short=long_short, leverage=1.5, random_start=True)
    env_check(env)  # type: ignore[operator]


def test_default_reward_is_log_return_and_rewards_are_not_shared(ohlcv_bars: pd.DataFrame) -> None:
    env = PortfolioEnv(ohlcv_bars)
    assert isinstance(env.reward_fn, LogReturnReward)
    reward = ProfitReward()
    a, b = PortfolioEnv(ohlcv_bars, reward=reward), PortfolioEnv(ohlcv_bars, reward=reward)
    assert a.make_core(1).reward is not b.make_core(1).reward


def test_default_timing_follows_the_data(ohlcv_bars: pd.DataFrame, close_bars: pd.DataFrame) -> None:
    assert PortfolioEnv(ohlcv_bars).timing is NEXT_OPEN
    assert PortfolioEnv(close_bars).timing is NEXT_CLOSE
    assert PortfolioEnv(close_bars, timing="same_close").timing is SAME_CLOSE
    with pytest.raises(EnvConfigError, match="no opens"):
        PortfolioEnv(close_bars, timing="next_open")
    with pytest.raises(EnvConfigError, match="unknown execution timing"):
        PortfolioEnv(ohlcv_bars, timing="tomorrow")


def test_gym_make_and_registration_without_torch(ohlcv_bars: pd.DataFrame) -> None:
    env = gym.make("rltrade/Portfolio-v0", bars=ohlcv_bars, look_back=2)
    obs, _ = env.reset(seed=1)
    assert env.observation_space.contains(obs)
    env.step(env.action_space.sample())
    code = (
        "import sys, gymnasium, rltrade.envs; "
        "ids = [i for i in gymnasium.registry if i.startswith('rltrade/')]; "
        "assert sorted(ids) == ['rltrade/OrderBook-v0', 'rltrade/Portfolio-v0', "
        "'rltrade/SingleAsset-v0', 'rltrade/StockTrading-v0'], ids; "
        "heavy = [m for m in ('torch', 'stable_baselines3', 'numba') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_start_end_split_keeps_warm_features(ohlcv_bars: pd.DataFrame) -> None:
    full = PortfolioEnv(ohlcv_bars, features=["log_return", "sma_20"], look_back=2)
    test = PortfolioEnv(
        ohlcv_bars, features=["log_return", "sma_20"], look_back=2, start="2020-04-01", end="2020-05-29"
    )
    obs_test, info_test = test.reset(seed=0)
    assert info_test["timestamp"] == np.datetime64("2020-04-01")
    obs_full, _ = full.reset(seed=0, options={"start": "2020-04-01"})
    np.testing.assert_array_equal(obs_test, obs_full)  # the test period does not restart the warm-up
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (200, 4))
    n = 0
    while True:
        o1, r1, term, trunc, i1 = test.step(actions[n])
        o2, r2, _, _, _ = full.step(actions[n])
        np.testing.assert_array_equal(o1, o2)
        assert r1 == r2
        n += 1
        if term or trunc:
            break
    assert term and not trunc and i1["timestamp"] == np.datetime64("2020-05-29")


def test_random_start_is_seeded_and_episode_length_truncates(ohlcv_bars: pd.DataFrame) -> None:
    env = PortfolioEnv(ohlcv_bars, random_start=True, episode_length=5)
    starts = [env.reset(seed=s)[1]["bar"] for s in range(8)]
    assert starts == [env.reset(seed=s)[1]["bar"] for s in range(8)]
    assert len(set(starts)) > 1
    assert all(env.market.first <= s <= env.market.last - 5 for s in starts)
    _, info = env.reset(seed=3)
    for n in range(5):
        _, _, terminated, truncated, last = env.step(np.zeros(4))
        assert terminated is False and truncated is (n == 4)
    assert last["bar"] == info["bar"] + 5
    with pytest.raises(EnvConfigError, match="finished episode"):
        env.step(np.zeros(4))
    with pytest.raises(EnvConfigError, match="episode_length"):
        PortfolioEnv(ohlcv_bars, episode_length=10_000)


def test_bad_inputs_fail_clearly(ohlcv_bars: pd.DataFrame) -> None:
    env = PortfolioEnv(ohlcv_bars)
    env.reset(seed=0)
    with pytest.raises(EnvConfigError, match="NaN or inf"):
        env.step(np.array([0.0, np.nan, 0.0, 0.0]))
    env.step(np.zeros(4))  # the env is still usable: nothing was changed by the refused step
    gap = ohlcv_bars.drop(index=ohlcv_bars.index[(ohlcv_bars["symbol"] == "BBB")][50])
    with pytest.raises(DataValidationError, match="BBB has no bar at 1 timestamp"):
        PortfolioEnv(gap)
    with pytest.raises(DataValidationError, match="usable bar"):
        PortfolioEnv(ohlcv_bars, start="2020-07-01", end="2020-07-01", look_back=30)
    with pytest.raises(EnvConfigError, match="look_back"):
        PortfolioEnv(ohlcv_bars, look_back=0)
    with pytest.raises(EnvConfigError, match="cost must be"):
        PortfolioEnv(ohlcv_bars, cost="cheap")

    class HomeMadeCost:
        needs_volatility = False

        def cost(self, notional: np.ndarray, shares: np.ndarray, volatility: np.ndarray | None = None) -> np.ndarray:
            return np.abs(notional) * 0.001

    with pytest.raises(EnvConfigError, match="cannot run inside the env kernels"):
        PortfolioEnv(ohlcv_bars, cost=HomeMadeCost())
    with pytest.raises(EnvConfigError, match="start="):
        env.reset(options={"start": "1999-01-01"})


def test_market_trims_to_the_common_range_and_never_fills(stocks_bars: pd.DataFrame) -> None:
    market = Market(stocks_bars, ["log_return"])
    assert market.symbols == ("AAPL", "GOOG", "IBM", "MSFT")
    goog_first = stocks_bars.loc[stocks_bars["symbol"] == "GOOG", "timestamp"].min()
    assert pd.Timestamp(market.times[0]).tz_localize("UTC") == goog_first
    assert np.isnan(market.features[0]).all() and np.isfinite(market.features[1:]).all()
    assert market.has_open


def test_no_cost_is_exactly_free(ohlcv_bars: pd.DataFrame) -> None:
    env = PortfolioEnv(ohlcv_bars, cost=NoCost())
    env.reset(seed=0)
    rng = np.random.default_rng(1)
    for _ in range(20):
        *_, info = env.step(rng.uniform(-1, 1, 4))
        assert info["cost"] == 0.0 and info["total_cost"] == 0.0


# ---------------------------------------------------------------------------------------------- weights mode


def weights_env(bars: pd.DataFrame, **kwargs: Any) -> PortfolioEnv:
    """A weights-mode env with no features (the observation is the weights alone)."""
    return PortfolioEnv(bars, features=(), look_back=1, action_mode="weights", **kwargs)


def equal_assets(n: int) -> np.ndarray:
    """The weights action 1/n in every asset, no cash."""
    return np.append(np.ones(n), 0.0)


@pytest.mark.parametrize(
    ("cost", "timing"), [(None, "next_close"), (BpsCost(10), "next_open"), (SpreadCost(1.0, 5), "same_close")]
)
def test_weights_mode_passes_check_env(ohlcv_bars: pd.DataFrame, env_check: Any, cost: Any, timing: str) -> None:
    env = PortfolioEnv(ohlcv_bars, look_back=2, cost=cost, timing=timing, action_mode="weights", initial_value=1e5)
    assert env.action_space == gym.spaces.Box(0.0, 1.0, (4,), np.float32)
    env_check(env)
    env_check(weights_env(ohlcv_bars, cost=cost, timing=timing))


def test_weights_mode_refuses_long_short_and_unknown_modes(ohlcv_bars: pd.DataFrame) -> None:
    with pytest.raises(EnvConfigError, match=r"action_mode='weights'.*long_short=True"):
        PortfolioEnv(ohlcv_bars, action_mode="weights", long_short=True)
    with pytest.raises(EnvConfigError, match="unknown action_mode 'softmax'"):
        PortfolioEnv(ohlcv_bars, action_mode="softmax")


def test_weights_action_is_clipped_and_normalised() -> None:
    env = weights_env(tiny_bars(), cost=None, timing="next_close")
    env.reset(seed=0)
    # clipped to [1, 0, 0.5] then divided by 1.5; filled at the close the step marks to: weights = targets
    _, _, _, _, info = env.step(np.array([2.0, -1.0, 0.5]))
    np.testing.assert_allclose(info["weights"], [2 / 3, 0.0, 1 / 3], rtol=1e-11)
    _, _, _, _, info = env.step(np.array([0.2, 0.2, 0.0]))  # scale does not matter
    np.testing.assert_allclose(info["weights"], [0.5, 0.5, 0.0], atol=1e-11)
    with pytest.raises(EnvConfigError, match="NaN or inf"):
        env.step(np.array([0.5, np.inf, 0.0]))


def test_constant_equal_weights_are_an_equal_weight_rebalanced_portfolio(close_bars: pd.DataFrame) -> None:
    env = weights_env(close_bars, cost=NoCost(), timing="next_close", initial_value=100.0)
    close = env.market.close
    n = close.shape[1]
    _, info = env.reset(seed=0)
    first = info["bar"]
    values = [info["portfolio_value"]]
    while True:
        _, _, terminated, truncated, info = env.step(equal_assets(n))
        values.append(info["portfolio_value"])
        np.testing.assert_allclose(info["weights"], np.append(np.full(n, 1 / n), 0.0), atol=1e-11)
        if terminated or truncated:
            break
    # independently: the first step buys at close[first + 1]; after that each bar earns the mean return
    growth = (close[first + 2 :] / close[first + 1 : -1]).mean(axis=1)
    expected = 100.0 * np.concatenate([[1.0, 1.0], np.cumprod(growth)])
    np.testing.assert_allclose(values, expected, rtol=1e-10)


def test_buy_and_hold_drifts_after_the_first_trade(sp500_bars: pd.DataFrame) -> None:
    bars = sp500_bars[sp500_bars["symbol"].isin(["JNJ", "KO", "XOM"]) & (sp500_bars["timestamp"].dt.year == 2015)]
    env = weights_env(bars, cost=BpsCost(10), timing="next_close", initial_value=1e6)
    close = env.market.close
    n = close.shape[1]
    _, info = env.reset(seed=0)
    first = info["bar"]
    _, _, _, _, bought = env.step(equal_assets(n))
    infos = [bought]
    while True:
        _, _, terminated, truncated, info = env.step(np.zeros(n + 1))  # all zero: hold
        infos.append(info)
        if terminated or truncated:
            break
    # independently: 1e6 = invested + 10 bps of invested; 1/n of it in each stock at close[first + 1]
    invested = 1e6 / 1.001
    shares = invested / n / close[first + 1]
    assert bought["cost"] == pytest.approx(1e6 - invested, rel=1e-9)
    expected = (shares * close[first + 1 : first + 1 + len(infos)]).sum(axis=1)
    np.testing.assert_allclose([i["portfolio_value"] for i in infos], expected, rtol=1e-10)
    for info in infos[1:]:  # holding: no trade at all
        assert info["cost"] == 0.0 and info["turnover"] == 0.0
        assert info["shares"].tobytes() == bought["shares"].tobytes() and info["cash"] == bought["cash"]
    assert infos[-1]["total_cost"] == bought["cost"]


def test_holding_from_cash_is_free_and_keeps_the_value(close_bars: pd.DataFrame) -> None:
    env = weights_env(close_bars, cost=PerShareCost(0.01, 1.0), initial_value=500.0)
    env.reset(seed=0)
    for _ in range(10):
        *_, info = env.step(np.zeros(4))
        assert info["portfolio_value"] == 500.0 and info["cost"] == 0.0 and info["turnover"] == 0.0
        assert not info["shares"].any()


def test_weights_mode_costs_what_logits_cost_for_the_same_targets(ohlcv_bars: pd.DataFrame) -> None:
    kwargs: dict[str, Any] = {"features": (), "look_back": 1, "cost": BpsCost(10), "timing": "next_open"}
    kwargs["initial_value"] = 1e4
    logits = PortfolioEnv(ohlcv_bars, **kwargs)
    weights = PortfolioEnv(ohlcv_bars, action_mode="weights", **kwargs)
    near = PortfolioEnv(ohlcv_bars, action_mode="weights", **kwargs)
    for env in (logits, weights, near):
        env.reset(seed=0)
    for _ in range(30):
        # zero logits = 1/4 everywhere (cash included) = the weights action of ones, or of 1/4 each
        _, r1, _, _, a = logits.step(np.zeros(4))
        _, r2, _, _, b = weights.step(np.ones(4))
        _, _, _, _, c = near.step(np.full(4, 0.25, dtype=np.float32))
        assert a["cost"] > 0.0
        assert r1 == r2
        for key in ("portfolio_value", "cost", "total_cost", "turnover", "cash"):
            assert a[key] == b[key], key  # the same targets: the same bits
            assert c[key] == pytest.approx(a[key], rel=1e-9, abs=1e-12), key
        assert a["shares"].tobytes() == b["shares"].tobytes()


def test_batched_portfolio_env_has_the_weights_mode(ohlcv_bars: pd.DataFrame) -> None:
    from rltrade.envs.vec import BatchedPortfolioEnv

    venv = BatchedPortfolioEnv(ohlcv_bars, n_envs=2, full_info=True, action_mode="weights", cost=BpsCost(10))
    assert venv.action_space == gym.spaces.Box(0.0, 1.0, (4,), np.float32)
    venv.seed(0)
    venv.reset()
    scalar = PortfolioEnv(ohlcv_bars, action_mode="weights", cost=BpsCost(10))
    scalar.reset(seed=1)
    rng = np.random.default_rng(2)
    for n in range(8):
        actions = rng.uniform(0.0, 1.0, (2, 4)) if n % 3 == 0 else np.zeros((2, 4))  # trade, hold, hold, ...
        obs, rewards, _, step_infos = venv.step(actions)
        infos: list[dict[str, Any]] = list(step_infos)
        s_obs, s_reward, _, _, s_info = scalar.step(actions[1])
        assert np.asarray(obs)[1].tobytes() == s_obs.tobytes() and rewards[1] == s_reward
        assert infos[1]["portfolio_value"] == s_info["portfolio_value"]
        assert (infos[0]["cost"] == 0.0) == (n % 3 != 0)
