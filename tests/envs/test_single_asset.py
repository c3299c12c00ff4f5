"""SingleAssetEnv: gymnasium contract, the seed's reward formulas, futures, by_day, accounting, lookahead, batching."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st
from stable_baselines3.common.vec_env import DummyVecEnv

from rltrade.data.sources import fetch
from rltrade.data.validate import validate_bars
from rltrade.envs.costs import BpsCost, CostParams, LinearCost, PerShareCost
from rltrade.envs.single_asset import STATE_COLUMNS, FuturesContract, SingleAssetEnv
from rltrade.envs.timing import EnvConfigError
from rltrade.testing import assert_causal, perturb_after, synthetic_bars


@pytest.fixture(scope="module")
def eurusd() -> pd.DataFrame:
    """25 days of hourly EURUSD bars (real data embedded in backtesting.py)."""
    return validate_bars(fetch("sample:eurusd")[0]).iloc[:600].reset_index(drop=True)


def intraday_bars(seed: int, n_days: int = 4, per_day: int = 8) -> pd.DataFrame:
    """Intraday OHLCV of :func:`synthetic_bars`: ``per_day`` hourly bars from 09:00 on ``n_days`` consecutive days."""
    n = n_days * per_day
    day = np.repeat(np.arange(n_days), per_day)
    hour = np.tile(np.arange(per_day), n_days)
    stamps = pd.Timestamp("2021-03-01", tz="UTC") + pd.to_timedelta(day, "D") + pd.to_timedelta(9 + hour, "h")
    bars = synthetic_bars(
        n_bars=n,
        symbols=["SYN"],
        seed=seed,
        freq="1h",
        price=100.0,
        drift=0.0,
        vol=0.03,
        open_vol=0.01,
        volume=(100, 1000),
    )
    return bars.assign(timestamp=stamps.astype("datetime64[ns, UTC]"))


def run_episode(env: SingleAssetEnv, actions: list[Any], seed: int | None = 0) -> list[tuple[dict[str, Any], float]]:
    """(info before the step, reward) per step until the episode ends or the actions run out; plus the last info."""
    _, info = env.reset(seed=seed)
    out: list[tuple[dict[str, Any], float]] = []
    for action in actions:
        _, reward, terminated, truncated, new_info = env.step(action)
        out.append((info, float(reward)))
        info = new_info
        if terminated or truncated:
            break
    out.append((info, float("nan")))
    return out


# -- gymnasium contract -----------------------------------------------------------------------------


def _check(env: SingleAssetEnv) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any env-checker warning fails the test
        check_env(env, skip_render_check=True)


@pytest.mark.parametrize("state", list(STATE_COLUMNS))
@pytest.mark.parametrize("by_day", [False, True])
@pytest.mark.parametrize("forward_reward", [False, True])
def test_check_env_states_by_day_forward(eurusd: pd.DataFrame, state: str, by_day: bool, forward_reward: bool) -> None:
    env = SingleAssetEnv(eurusd, state=state, by_day=by_day, forward_reward=forward_reward)
    _check(env)
    assert env.observation_space.shape == (10, len(STATE_COLUMNS[state]))


@pytest.mark.parametrize(
    "reward", ["profit", "log_return", "differential_sharpe", "downside_deviation", "sortino_change"]
)
def test_check_env_rewards(eurusd: pd.DataFrame, reward: str) -> None:
    _check(
        SingleAssetEnv(
            eurusd, reward=reward, eta=0.05 if reward in ("differential_sharpe", "downside_deviation") else None
        )
    )


@pytest.mark.parametrize("continuous", [False, True])
@pytest.mark.parametrize("contract", [None, FuturesContract(multiplier=300, margin_rate=0.12)])
@pytest.mark.parametrize("timing", ["next_open", "next_close", "same_close"])
def test_check_env_continuous_contract_timing(
    eurusd: pd.DataFrame, continuous: bool, contract: FuturesContract | None, timing: str
) -> None:
    _check(SingleAssetEnv(eurusd, continuous=continuous, contract=contract, timing=timing, by_day=True))


def test_state_3_columns_and_shape(eurusd: pd.DataFrame) -> None:
    env = SingleAssetEnv(eurusd, state="3", look_back=7)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (7, 17)
    assert env.columns[0] == "log_diff" and env.columns[-2:] == ("position", "open_return")
    assert env.columns[1:15] == tuple(c for c in STATE_COLUMNS["1"])
    # last row, first column = the latest log difference of the close
    obs, info = env.reset(seed=0)
    bar = info["bar"]
    close = eurusd["close"].to_numpy()
    assert obs[-1, 0] == np.float32(np.log(close[bar]) - np.log(close[bar - 1]))
    assert obs[0, 0] == np.float32(np.log(close[bar - 6]) - np.log(close[bar - 7]))
    # position column follows the agent: long after a long action
    obs, *_ = env.step(2)
    assert obs[-1, 15] == 1.0 and obs[-2, 15] == 0.0


def test_cheat_is_flagged(eurusd: pd.DataFrame, caplog: pytest.LogCaptureFixture) -> None:
    env = SingleAssetEnv(eurusd, state="cheat")
    assert env.lookahead and "LOOKAHEAD" in repr(env)
    assert "FUTURE prices" in caplog.text
    obs, info = env.reset(seed=0)
    assert info["cheat"] is True
    close = eurusd["close"].to_numpy()
    bar = info["bar"]
    assert obs[0, 0] == np.float32(np.log(close[bar + 1]) - np.log(close[bar]))  # the NEXT log difference
    assert SingleAssetEnv(eurusd, state="0").reset(seed=0)[1]["cheat"] is False


# -- the seed's reward formulas ---------------------------------------------------------------------


@pytest.mark.parametrize("forward_reward", [False, True])
@pytest.mark.parametrize("timing", ["same_close", "next_open", "next_close"])
@pytest.mark.parametrize("multiplier", [None, 300.0])
def test_reward_formulas_with_fixed_unit_cost(
    eurusd: pd.DataFrame, forward_reward: bool, timing: str, multiplier: float | None
) -> None:
    """R_t = a_{t-1}(p_t - p_{t-1}) - c|a_t - a_{t-1}| (False) or a_t(p_{t+1} - p_t) - c|a_t - a_{t-1}| (True),
    times the multiplier, with p the fill price and the cost charged in both modes."""
    c = 0.0007
    contract = None if multiplier is None else FuturesContract(multiplier=multiplier, margin_rate=0.1)
    env = SingleAssetEnv(
        eurusd,
        state="0",
        reward="profit",
        forward_reward=forward_reward,
        timing=timing,
        units=1,
        contract=contract,
        cost=PerShareCost(per_share=c, minimum=0.0),
    )
    m = 1.0 if multiplier is None else multiplier
    rng = np.random.default_rng(1)
    actions = [int(a) for a in rng.integers(0, 3, 200)]
    steps = run_episode(env, actions)
    opens, closes = eurusd["open"].to_numpy(), eurusd["close"].to_numpy()

    def p(t: int) -> float:  # fill price of the action chosen after bar t
        return {"same_close": closes[t], "next_open": opens[t + 1], "next_close": closes[t + 1]}[timing]

    a_prev = 0
    for (info, reward), action in zip(steps[:-1], actions, strict=False):
        t, a = info["bar"], action - 1
        cost = c * abs(a - a_prev)
        if forward_reward:
            expected = a * (p(t + 1) - p(t)) * m - cost
        else:
            expected = (a_prev * (p(t) - p(t - 1)) * m if a_prev else 0.0) - cost
        assert reward == pytest.approx(expected, rel=1e-9, abs=1e-9), (t, action)
        a_prev = a


def test_log_return_reward_includes_cost(eurusd: pd.DataFrame) -> None:
    """forward_reward=True with log returns: the cost reaches the reward (the seed dropped it)."""
    kwargs: dict[str, Any] = {"state": "0", "reward": "log_return", "forward_reward": True, "timing": "same_close"}
    free = run_episode(SingleAssetEnv(eurusd, cost=None, **kwargs), [2, 2, 0])
    costly = run_episode(SingleAssetEnv(eurusd, cost=BpsCost(25.0), **kwargs), [2, 2, 0])
    assert costly[0][1] < free[0][1]  # opening: cost charged
    assert costly[1][1] == pytest.approx(free[1][1], abs=1e-4)  # holding: no trade, same P&L (units differ slightly)
    assert costly[2][1] < free[2][1]  # flipping: cost charged


# -- futures, margin, sizing ------------------------------------------------------------------------


def test_futures_multiplier_margin_and_integer_contracts(eurusd: pd.DataFrame) -> None:
    contract = FuturesContract(multiplier=300, margin_rate=0.12)
    env = SingleAssetEnv(
        eurusd, state="0", reward="profit", contract=contract, units=50, initial_value=1000.0, cost=BpsCost(1.0)
    )
    _, info = env.reset(seed=0)
    _, _, _, _, info = env.step(2)
    fill, price = info["fill_price"], info["price"]
    expected = np.floor(1000.0 / (fill * 300 * 0.12))  # the margin caps 50 contracts to what 1000 supports
    assert info["position"] == pytest.approx(expected - 1, abs=1) and info["position"] == int(info["position"])
    assert info["position"] < 50
    assert info["margin_required"] == pytest.approx(info["position"] * price * 300 * 0.12)
    assert info["portfolio_value"] == pytest.approx(info["cash"] + info["position"] * price * 300)
    assert info["cost"] == pytest.approx(1e-4 * info["position"] * fill * 300)  # bps of the contract notional
    assert info["cash"] < 0  # the notional is booked against cash; the margin is what limits the position


@pytest.mark.parametrize("cost", [None, 10.0, PerShareCost(per_share=2.0, minimum=5.0)])
@pytest.mark.parametrize("continuous", [False, True])
def test_margin_cut_keeps_whole_contracts(eurusd: pd.DataFrame, cost: Any, continuous: bool) -> None:
    contract = FuturesContract(multiplier=300, margin_rate=0.12)
    env = SingleAssetEnv(
        eurusd, state="0", contract=contract, units=40, initial_value=1500.0, cost=cost, continuous=continuous
    )
    env.reset(seed=0)
    for action in ([0.7], [-1.0], [0.2]) if continuous else (2, 0, 2):
        _, _, _, _, info = env.step(action)
        assert info["position"] == int(info["position"]) and info["position"] != 0
        margin = abs(info["position"]) * info["fill_price"] * 300 * 0.12
        assert margin <= info["cash"] + info["position"] * info["fill_price"] * 300 + 1e-9  # affordable after cost


def test_shares_cannot_be_bought_on_credit(eurusd: pd.DataFrame) -> None:
    env = SingleAssetEnv(eurusd, state="0", units=10_000_000, initial_value=1000.0, cost=BpsCost(10.0))
    env.reset(seed=0)
    _, _, _, _, info = env.step(2)
    assert info["cash"] >= 0 and info["cash"] < 1.0  # all in, not beyond
    assert 0 < info["position_fraction"] < 1


def test_default_units_are_half_the_capital(eurusd: pd.DataFrame) -> None:
    env = SingleAssetEnv(eurusd, state="0", cost=None, timing="next_close")
    _, info = env.reset(seed=0)
    _, _, _, _, after = env.step(2)
    assert after["position"] * info["price"] == pytest.approx(0.5 * 1_000_000)


# -- by_day -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("timing", ["next_open", "next_close", "same_close"])
@pytest.mark.parametrize("forward_reward", [False, True])
def test_by_day_flattens_at_the_session_close_with_cost(
    eurusd: pd.DataFrame, timing: str, forward_reward: bool
) -> None:
    env = SingleAssetEnv(
        eurusd, state="0", reward="profit", by_day=True, timing=timing, forward_reward=forward_reward, cost=5.0
    )
    dates = eurusd["timestamp"].dt.date.to_numpy()
    for episode in range(3):
        steps = run_episode(env, [2] * 100, seed=0 if episode == 0 else None)
        last_info = steps[-1][0]
        bar = last_info["bar"]
        assert last_info["flattened"] and last_info["position"] == 0.0
        assert bar == len(dates) - 1 or dates[bar + 1] != dates[bar]  # the session's last bar
        assert dates[steps[0][0]["bar"]] == dates[bar]  # one session per episode
        held = steps[-2][0]["position"]
        assert held > 0
        close = eurusd["close"].to_numpy()[bar]
        if timing != "next_close":
            assert last_info["cost"] == pytest.approx(5e-4 * held * close)  # flattening paid
        assert last_info["portfolio_value"] == last_info["cash"]
        total_reward = sum(r for _, r in steps[:-1])
        assert total_reward == pytest.approx(last_info["portfolio_value"] - 1_000_000, rel=1e-9)
        assert last_info["total_cost"] > 0


def test_by_day_walks_sessions_and_seeded_reset_restarts(eurusd: pd.DataFrame) -> None:
    env = SingleAssetEnv(eurusd, state="0", by_day=True)
    first = [env.reset(seed=3)[1]["bar"]] + [env.reset()[1]["bar"] for _ in range(3)]
    assert first == sorted(first) and len(set(first)) == 4
    assert env.reset(seed=3)[1]["bar"] == first[0]
    assert env.reset(options={"start": first[2]})[1]["bar"] == first[2]
    rnd = SingleAssetEnv(eurusd, state="0", by_day=True, random_start=True)
    draws = [rnd.reset(seed=5)[1]["bar"]] + [rnd.reset()[1]["bar"] for _ in range(5)]
    assert draws[0] == rnd.reset(seed=5)[1]["bar"] and len(set(draws)) > 1


# -- accounting properties --------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    actions=st.lists(st.integers(0, 2), min_size=3, max_size=60),
    by_day=st.booleans(),
    use_contract=st.booleans(),
    forward_reward=st.booleans(),
    timing=st.sampled_from(["next_open", "next_close", "same_close"]),
    cost_kind=st.sampled_from(["bps", "per_share", "spread"]),
)
def test_accounting_invariants(
    seed: int,
    actions: list[int],
    by_day: bool,
    use_contract: bool,
    forward_reward: bool,
    timing: str,
    cost_kind: str,
) -> None:
    bars = intraday_bars(seed)
    cost = {
        "bps": BpsCost(20.0),
        "per_share": PerShareCost(per_share=0.01, minimum=1.0),
        "spread": LinearCost(CostParams(rate=1e-4, half_spread=0.5, window=3)),
    }[cost_kind]
    contract = FuturesContract(multiplier=10, margin_rate=0.2) if use_contract else None
    m = 10.0 if use_contract else 1.0
    env = SingleAssetEnv(
        bars,
        state="2" if seed % 2 else "0",
        look_back=2,
        reward="profit",
        by_day=by_day,
        contract=contract,
        units=3 if use_contract else None,
        initial_value=5_000.0 if use_contract else 100_000.0,
        forward_reward=forward_reward,
        timing=timing,
        cost=cost,
    )
    _, info = env.reset(seed=seed)
    capital = 5_000.0 if use_contract else 100_000.0
    rewards: list[float] = []
    for action in actions:
        prev = info
        _, reward, terminated, truncated, info = env.step(action)
        rewards.append(float(reward))
        value, cash, pos, price = info["portfolio_value"], info["cash"], info["position"], info["price"]
        assert value == pytest.approx(cash + pos * price * m, rel=1e-12, abs=1e-6)
        assert info["cost"] >= 0.0
        assert info["total_cost"] == pytest.approx(prev["total_cost"] + info["cost"])
        if info["traded"] > 0:
            assert info["cost"] > 0.0  # every trade pays
        if pos != prev["position"] and not info["flattened"]:
            assert info["traded"] == pytest.approx(abs(pos - prev["position"]) * info["fill_price"] * m)
        if info["flattened"]:
            assert pos == 0.0 and cash == value
            if prev["position"] != 0:
                assert info["traded"] > 0 and info["cost"] > 0.0  # flattening at the session close is charged
        if use_contract:
            assert pos == int(pos)
        elif not info["bankrupt"]:
            assert cash >= -1e-9  # no negative cash without margin
        if terminated or truncated:
            if info["flattened"]:
                assert sum(rewards) == pytest.approx(value - capital, rel=1e-9, abs=1e-6)
            rewards = []
            _, info = env.reset()


# -- lookahead guard --------------------------------------------------------------------------------

_POLICY = np.random.default_rng(7).integers(0, 3, 10_000)
_GUARDED = ("portfolio_value", "cash", "position", "cost", "total_cost", "traded", "open_return", "fill_price")


def trajectory(bars: pd.DataFrame, **kwargs: Any) -> dict[str, np.ndarray]:
    """Run a fixed bar-indexed policy through every episode; outputs stamped at the bar they are emitted at."""
    env = SingleAssetEnv(bars, **kwargs)
    n = len(bars)
    out = {"obs": np.full((n, *env.observation_space.shape), np.nan, dtype=np.float32), "reward": np.full(n, np.nan)}
    out.update({key: np.full(n, np.nan) for key in _GUARDED})
    n_episodes = len(env.episode_starts) if env.by_day else 1
    for episode in range(n_episodes):
        obs, info = env.reset(seed=0) if episode == 0 else env.reset()
        out["obs"][info["bar"]] = obs
        while True:
            obs, reward, terminated, truncated, info = env.step(int(_POLICY[info["bar"]]))
            bar = info["bar"]
            out["obs"][bar], out["reward"][bar] = obs, reward
            for key in _GUARDED:
                out[key][bar] = info[key]
            if terminated or truncated:
                break
    return out


def _session_ends(bars: pd.DataFrame, picks: tuple[int, ...]) -> list[pd.Timestamp]:
    stamps = bars["timestamp"]
    last = stamps.groupby(stamps.dt.date).max().sort_values()
    return [last.iloc[i] for i in picks]


@pytest.mark.parametrize("state", ["0", "1", "2", "3"])
@pytest.mark.parametrize("timing", ["next_open", "next_close"])
def test_lookahead_guard_continuous(eurusd: pd.DataFrame, state: str, timing: str) -> None:
    bars = eurusd.iloc[:260]
    assert_causal(
        lambda b: trajectory(b, state=state, timing=timing, reward="differential_sharpe", cost=SpreadCostLike()),
        bars,
        cutoffs=[60, 150, 240],
    )


@pytest.mark.parametrize("state", ["0", "3"])
@pytest.mark.parametrize("timing", ["next_open", "next_close"])
def test_lookahead_guard_by_day(eurusd: pd.DataFrame, state: str, timing: str) -> None:
    bars = eurusd.iloc[:260]
    contract = FuturesContract(multiplier=300, margin_rate=0.12)
    assert_causal(
        lambda b: trajectory(b, state=state, timing=timing, by_day=True, contract=contract, reward="log_return"),
        bars,
        cutoffs=_session_ends(bars, (2, 5, 8)),
    )


def test_lookahead_guard_sees_the_cheat(eurusd: pd.DataFrame) -> None:
    bars = eurusd.iloc[:260]
    with pytest.raises(AssertionError, match="lookahead"):
        assert_causal(lambda b: trajectory(b, state="cheat"), bars, cutoffs=[150])


def test_forward_reward_uses_the_next_price_but_observations_stay_causal(eurusd: pd.DataFrame) -> None:
    """forward_reward=True: observations and infos up to bar t ignore later prices; the reward at t does not."""
    bars = eurusd.iloc[:260]
    cutoff = bars["timestamp"].iloc[150]
    full = trajectory(bars, state="3", forward_reward=True, reward="profit")
    changed = trajectory(perturb_after(bars, cutoff, np.random.default_rng(0)), state="3", forward_reward=True)
    for key in ("obs", *_GUARDED):
        np.testing.assert_array_equal(full[key][:151], changed[key][:151], err_msg=key)
    assert full["reward"][150] != changed["reward"][150]  # R_t = a_t(p_{t+1} - p_t) - cost: the next fill


def SpreadCostLike() -> LinearCost:
    """bps plus a volatility spread: the volatility must be causal too."""
    return LinearCost(CostParams(rate=5e-4, half_spread=0.5, window=5))


# -- batched form -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"state": "3", "by_day": True, "reward": "differential_sharpe"},
        {"state": "2", "episode_length": 40, "random_start": True, "reward": "downside_deviation"},
        {
            "state": "0",
            "continuous": True,
            "forward_reward": True,
            "contract": FuturesContract(300, 0.12),
            "episode_length": 90,
        },
    ],
)
def test_batched_k1_equals_scalar_bit_for_bit(eurusd: pd.DataFrame, kwargs: dict[str, Any]) -> None:
    from rltrade.envs.single_asset import BatchedSingleAssetEnv

    scalar = SingleAssetEnv(eurusd, **kwargs)
    batched = BatchedSingleAssetEnv(eurusd, n_envs=1, full_info=True, **kwargs)
    dummy = DummyVecEnv([lambda: SingleAssetEnv(eurusd, **kwargs)])
    rng = np.random.default_rng(0)
    batched.seed(11)
    dummy.seed(11)
    obs_b, obs_d = batched.reset(), dummy.reset()
    obs_s, info_s = scalar.reset(seed=11)
    np.testing.assert_array_equal(obs_b[0], obs_s)
    np.testing.assert_array_equal(obs_d[0], obs_s)
    n_done = 0
    for _ in range(300):
        action: np.ndarray = rng.uniform(-1, 1, (1, 1)) if kwargs.get("continuous") else rng.integers(0, 3, 1)
        obs_b, rew_b, done_b, infos_b = batched.step(action)
        obs_d, rew_d, done_d, infos_d = dummy.step(action)
        obs_s, rew_s, term, trunc, info_s = scalar.step(action[0])
        assert rew_b[0] == rew_s == rew_d[0]
        assert done_b[0] == (term or trunc) == done_d[0]
        for key, value in info_s.items():
            assert infos_b[0][key] == value or (value != value and infos_b[0][key] != infos_b[0][key]), key
        if term or trunc:
            n_done += 1
            np.testing.assert_array_equal(infos_b[0]["terminal_observation"], obs_s)
            np.testing.assert_array_equal(infos_d[0]["terminal_observation"], obs_s)
            obs_s, info_s = scalar.reset()
        np.testing.assert_array_equal(obs_b[0], obs_s)
        np.testing.assert_array_equal(obs_d[0], obs_s)
    assert n_done >= 1


def test_batched_copies_start_apart_and_train_with_sb3(eurusd: pd.DataFrame) -> None:
    from stable_baselines3 import PPO

    from rltrade.envs.single_asset import BatchedSingleAssetEnv

    venv = BatchedSingleAssetEnv(eurusd, n_envs=4, state="3", by_day=True)
    venv.seed(0)
    obs = venv.reset()
    assert obs.shape == (4, 10, 17)
    assert len({info["bar"] for info in venv.reset_infos}) == 4
    model = PPO("MlpPolicy", venv, n_steps=16, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(64)
    _, rewards, _, _ = venv.step(np.array([0, 1, 2, 2]))
    assert rewards.shape == (4,) and np.isfinite(rewards).all()


# -- configuration errors and defaults --------------------------------------------------------------


def test_configuration_errors(eurusd: pd.DataFrame) -> None:
    with pytest.raises(EnvConfigError, match="unknown state '4'"):
        SingleAssetEnv(eurusd, state="4")
    with pytest.raises(EnvConfigError, match="valid names"):
        SingleAssetEnv(eurusd, reward="running_SR")
    with pytest.raises(EnvConfigError, match="episode_length applies"):
        SingleAssetEnv(eurusd, by_day=True, episode_length=10)
    with pytest.raises(EnvConfigError, match="whole number of contracts"):
        SingleAssetEnv(eurusd, contract=FuturesContract(300, 0.12), units=1.5)
    with pytest.raises(EnvConfigError, match="margin_rate"):
        FuturesContract(300, 0.0)
    two = pd.concat([eurusd, eurusd.assign(symbol="GBPUSD")])
    with pytest.raises(EnvConfigError, match="pass symbol="):
        SingleAssetEnv(two)
    assert SingleAssetEnv(two, symbol="GBPUSD", state="0").symbol == "GBPUSD"
    env = SingleAssetEnv(eurusd, state="0")
    env.reset(seed=0)
    with pytest.raises(EnvConfigError, match="discrete actions"):
        env.step(3)
    daily = validate_bars(fetch("sample:stocks", symbols=["AAPL"])[0]).iloc[:200]
    with pytest.raises(EnvConfigError, match="intraday"):
        SingleAssetEnv(daily.iloc[:15], by_day=True, look_back=10)


def test_default_timing_and_start_end(eurusd: pd.DataFrame) -> None:
    assert SingleAssetEnv(eurusd, state="0").timing.name == "next_open"
    close_only = eurusd.assign(open=np.nan, high=np.nan, low=np.nan)
    assert SingleAssetEnv(close_only, state="0").timing.name == "next_close"
    with pytest.raises(EnvConfigError, match="no opens"):
        SingleAssetEnv(close_only, state="0", timing="next_open")
    env = SingleAssetEnv(eurusd, state="3", start="2017-04-25", end="2017-04-27")
    _, info = env.reset(seed=0)
    assert pd.Timestamp(info["timestamp"]) >= pd.Timestamp("2017-04-25")
    steps = run_episode(env, [1] * 1000)
    last = pd.Timestamp(steps[-1][0]["timestamp"])
    assert last.date() == pd.Timestamp("2017-04-27").date()  # a date as end keeps that whole day


def test_registered_with_gymnasium(eurusd: pd.DataFrame) -> None:
    import gymnasium as gym

    import rltrade.envs  # noqa: F401 - registers the ids

    env = gym.make("rltrade/SingleAsset-v0", bars=eurusd, state="1", by_day=True)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (10, 14)
    assert isinstance(env.unwrapped, SingleAssetEnv)
