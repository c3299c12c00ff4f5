"""OrderBookEnv: hand-worked episodes (fees and the final flattening, the position limit, a kept
queue place, ticks away, latency, the trailing stop), accounting against an independent
recomputation from the fills, the observation layout, gymnasium's checker and the errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from tests.envs.orderbook.conftest import CENT, Row, clock, make_events, synthetic_session

import rltrade.envs.orderbook as ob
from rltrade.data.ticks.schema import DELETE, EXECUTE, SUBMIT, Events
from rltrade.envs.orderbook import (
    ACTION_BEST_ASK,
    ACTION_BEST_BID,
    ACTION_BEST_BOTH,
    ACTION_BUY,
    ACTION_NONE,
    ACTION_SELL,
    OBS_ASK_OPEN,
    OBS_BID_OPEN,
    OBS_LOG_RATIO,
    OBS_OFI,
    OBS_POSITION,
    OBS_SPREAD,
    OrderBookEnv,
)
from rltrade.envs.timing import EnvConfigError
from rltrade.features.orderbook import orderbook_features

WINDOW = {"start": "10:30:00", "end": "10:30:10"}  # 5 steps of 2 s
STEADY: list[Row] = [  # a book that never moves: bid 10.00 x 500, ask 10.02 x 500
    (0.0, SUBMIT, 1, 500, 1000, 1, 1002, 0, 1000, 500),
    (0.5, SUBMIT, 2, 500, 1002, -1, 1002, 500, 1000, 500),
]


def episode(env: OrderBookEnv, actions: list[int]) -> list[tuple[np.ndarray, float, bool, dict[str, Any]]]:
    obs, info = env.reset(seed=0)
    out = [(obs, 0.0, False, info)]
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(a)
        assert not truncated
        out.append((obs, reward, terminated, info))
    return out


def test_fees_and_the_flattening_at_the_end_of_the_window() -> None:
    env = OrderBookEnv(make_events(STEADY, start="10:29:59"), fee_per_share=0.01, fee_per_order=1.0, **WINDOW)
    assert env.n_steps == 5
    steps = episode(env, [ACTION_BUY, ACTION_NONE, ACTION_NONE, ACTION_NONE, ACTION_NONE])
    # buy 100 at 10.02 (fee 100 x 0.01 + 1), marked at the 10.01 mid: -1 - 2
    assert steps[1][1] == pytest.approx(-3.0)
    assert steps[1][3]["position"] == 100 and steps[1][3]["fees"] == pytest.approx(2.0)
    assert [s[1] for s in steps[2:5]] == [0.0, 0.0, 0.0]
    # the end: sold at the 10.00 bid (-1 from the mid) with the same fee
    _, reward, terminated, info = steps[5]
    assert terminated and reward == pytest.approx(-3.0)
    assert info["fills"] == (ob.Fill(ts=clock("10:30:10"), side=-1, price=10.0, size=100, reason="flatten", fee=2.0),)
    assert info["position"] == 0 and info["pnl"] == pytest.approx(-6.0)
    assert sum(s[1] for s in steps) == pytest.approx(info["pnl"])
    with pytest.raises(EnvConfigError, match="episode is over"):
        env.step(ACTION_NONE)


def test_the_position_limit_blocks_orders_that_could_breach_it() -> None:
    env = OrderBookEnv(make_events(STEADY, start="10:29:59"), **WINDOW)
    env.reset()
    assert env.action_masks().tolist() == [True] * 6
    obs, *_ = env.step(ACTION_BUY)
    assert obs[OBS_POSITION] == 1.0
    assert env.action_masks().tolist() == [True, False, True, False, True, False]
    obs, _, _, _, info = env.step(ACTION_BEST_BID)  # would take the position to 200: not placed
    assert obs[OBS_BID_OPEN] == 0.0 and info["position"] == 100
    obs, _, _, _, info = env.step(ACTION_BUY)  # blocked
    assert info["position"] == 100 and info["fills"] == ()
    obs, *_ = env.step(ACTION_BEST_BOTH)  # only the ask goes out
    assert (obs[OBS_BID_OPEN], obs[OBS_ASK_OPEN]) == (0.0, 1.0)


KEEP_PLACE: list[Row] = [
    (0.0, SUBMIT, 1, 200, 1000, 1, 1002, 100, 1000, 200),
    # t0 (1.0): best_bid joins behind 200
    (1.5, SUBMIT, 2, 100, 1000, 1, 1002, 100, 1000, 300),  # behind the agent
    # t1 (3.0): best_bid again: same price, the order keeps its place
    (3.5, SUBMIT, 3, 100, 1000, 1, 1002, 100, 1000, 400),
    (4.0, EXECUTE, 1, 200, 1000, 1, 1002, 100, 1000, 200),
    (4.5, EXECUTE, 2, 10, 1000, 1, 1002, 100, 1000, 190),  # an order behind trades: the agent is filled
]


@pytest.mark.parametrize(("latency", "filled"), [(0.0, 100), (1.0, 0)])
def test_an_order_at_the_same_price_keeps_its_queue_place(latency: float, filled: int) -> None:
    # with 1 s latency the first bid reaches the book after order 2: then 2 is ahead and no fill
    env = OrderBookEnv(make_events(KEEP_PLACE, start="10:29:59"), latency=latency, **WINDOW)
    steps = episode(env, [ACTION_BEST_BID, ACTION_BEST_BID])
    info = steps[2][3]
    assert info["position"] == filled
    if filled:
        assert [(f.reason, f.price, f.size) for f in info["fills"]] == [("priority", 10.0, 100)]
        assert env.history().fills["order"].tolist() == [1]  # the first order, never replaced


def test_ticks_away_quotes_behind_the_best_price() -> None:
    rows: list[Row] = [
        (0.0, SUBMIT, 1, 100, 1000, 1, 1002, 100, 1000, 100),
        # t0 (1.0): best_bid one tick away: 9.99, invisible at level I
        (2.0, DELETE, 1, 100, 1000, 1, 1002, 100, 999, 50),  # 9.99 shows 50 (ahead of the agent)
        (2.5, EXECUTE, 7, 80, 999, 1, 1002, 100, 999, 20),  # 50 ahead, then 30 for the agent
    ]
    env = OrderBookEnv(make_events(rows, start="10:29:59"), ticks_away=1, **WINDOW)
    obs, _, _, info = episode(env, [ACTION_BEST_BID])[1]
    assert [(f.price, f.size, f.reason) for f in info["fills"]] == [(9.99, 30, "queue")]
    assert obs[OBS_BID_OPEN] == 1.0 and info["position"] == 30


def test_the_trailing_stop_gates_market_orders() -> None:
    rows: list[Row] = [
        (0.0, SUBMIT, 1, 100, 1000, 1, 1002, 100, 1000, 100),
        # t0 (1.0): best_bid behind 100
        (1.5, EXECUTE, 1, 100, 1000, 1, 1002, 100, 999, 100),
        (1.6, EXECUTE, 5, 100, 999, 1, 1002, 100, 998, 300),  # through 10.00: the agent buys 100
        # t1 (3.0): mid 10.00, the highest since the position opened
        (3.5, DELETE, 20, 300, 998, 1, 1002, 100, 996, 200),  # mid 9.99 at t2
        (5.5, DELETE, 21, 200, 996, 1, 1002, 100, 992, 200),  # mid 9.97 at t3: 3 cents down
        (7.5, SUBMIT, 23, 100, 994, -1, 994, 100, 992, 200),  # mid 9.93 at t4: 7 cents down
    ]
    events = make_events(rows, start="10:29:59")
    env = OrderBookEnv(events, trailing_stop=True, **WINDOW)
    env.reset()
    assert not env.action_masks()[ACTION_BUY]  # flat: nothing to stop out
    positions, masks = [], []
    for action in [ACTION_BEST_BID, ACTION_SELL, ACTION_SELL, ACTION_SELL, ACTION_SELL]:
        masks.append(bool(env.action_masks()[ACTION_SELL]))
        positions.append(env.step(action)[4]["position"])
    assert masks == [False, False, False, False, True]
    assert positions == [100, 100, 100, 100, 0]
    assert env.history().fills["price"].tolist() == [10.0, 9.92]
    # without the stop the first sell goes through
    free = OrderBookEnv(events, **WINDOW)
    assert [x[3]["position"] for x in episode(free, [ACTION_BEST_BID, ACTION_SELL])[1:]] == [100, 0]


# --- a synthetic session --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def busy() -> Events:
    """6,000 full-depth events from 10:29:50 (about two minutes)."""
    return synthetic_session(6000, seed=21, start="10:29:50", mean_dt=0.02)


def _mid_at(events: Events, t: int) -> float:
    """Last two-sided mid at or before t, dollars (computed here from the raw arrays)."""
    i = int(np.searchsorted(events.ts, t, side="right")) - 1
    while events.bid_size[i] == 0 or events.ask_size[i] == 0:
        i -= 1
    return (events.bid_price[i] + events.ask_price[i]) / 2 / 10_000


@pytest.mark.parametrize("model", ["ids", "proportional"])
def test_accounting_matches_a_recomputation_from_the_fills(busy: Events, model: str) -> None:
    env = OrderBookEnv(
        busy, start="10:30:00", end="10:31:30", fee_per_share=0.003, fee_per_order=0.5, queue_model=model
    )
    rng = np.random.default_rng(5)
    obs, info = env.reset()
    total, observations = 0.0, [obs]
    terminated = False
    while not terminated:
        obs, reward, terminated, _, info = env.step(int(rng.integers(6)))
        total += reward
        observations.append(obs)
        assert env.observation_space.contains(obs)
    history = env.history()
    steps, fills = history.steps, history.fills
    assert len(steps) == env.n_steps == 45 and len(fills) > 10
    assert total == pytest.approx(info["pnl"]) and info["position"] == 0
    assert np.allclose(steps["reward"].cumsum(), steps["pnl"])
    assert fills["timestamp"].is_monotonic_increasing and fills["step"].is_monotonic_increasing
    for k, row in steps.iterrows():
        done = fills[fills["step"] <= k]
        assert (done["timestamp"] <= row["timestamp"]).all()
        position = int((done["side"] * done["size"]).sum())
        cash = float(-(done["side"] * done["size"] * done["price"]).sum())
        mid = _mid_at(busy, row["timestamp"].value)
        assert row["position"] == position and abs(position) <= 100
        assert row["mid"] == pytest.approx(mid)
        assert row["pnl"] == pytest.approx(cash + position * mid - done["fee"].sum(), abs=1e-9)
    n_orders = fills["order"].nunique()
    assert fills["fee"].sum() == pytest.approx(0.003 * fills["size"].sum() + 0.5 * n_orders)
    # the observation layout, against the features computed here
    features = orderbook_features(busy, env.decision_times)
    obs_matrix = np.array(observations)
    for index, column in ((OBS_OFI, "ofi"), (OBS_LOG_RATIO, "log_book_ratio"), (OBS_SPREAD, "spread_ticks")):
        expected = np.nan_to_num(features[column], nan=0.0).astype(np.float32)
        np.testing.assert_array_equal(obs_matrix[:, index], expected)
    np.testing.assert_array_equal(obs_matrix[1:, OBS_POSITION], (steps["position"] / 100).astype(np.float32))


def test_own_orders_in_the_observation_follow_the_features_rule(busy: Events) -> None:
    env = OrderBookEnv(busy, start="10:30:00", end="10:31:30", include_own_orders=True)
    plain = OrderBookEnv(busy, start="10:30:00", end="10:31:30")
    actions = [int(a) for a in np.random.default_rng(3).choice([3, 4, 5, 5, 0], size=env.n_steps)]
    seen = np.array([o for o, *_ in episode(env, actions)])
    market = np.array([o for o, *_ in episode(plain, actions)])
    expected = orderbook_features(busy, env.decision_times, own=env.own_orders())
    np.testing.assert_array_equal(seen[:, OBS_OFI], expected["ofi"].astype(np.float32))
    np.testing.assert_allclose(seen[:, OBS_LOG_RATIO], np.nan_to_num(expected["log_book_ratio"]), rtol=1e-6)
    np.testing.assert_array_equal(seen[:, OBS_SPREAD], market[:, OBS_SPREAD])
    assert np.count_nonzero(seen[:, OBS_OFI] != market[:, OBS_OFI]) > 5  # the agent's orders count
    assert np.count_nonzero(seen[:, OBS_LOG_RATIO] != market[:, OBS_LOG_RATIO]) > 5
    np.testing.assert_array_equal(seen[:, :OBS_OFI], market[:, :OBS_OFI])  # same trading either way
    with pytest.raises(EnvConfigError, match="include_own_orders=True"):
        plain.own_orders()


def test_the_episode_is_deterministic_and_reset_starts_over(busy: Events) -> None:
    env = OrderBookEnv(busy, start="10:30:00", end="10:31:00")
    actions = [ACTION_BEST_BOTH, ACTION_BEST_ASK, ACTION_BUY, ACTION_BEST_BID, ACTION_SELL] * 6
    first = [(o.tolist(), r) for o, r, _, _ in episode(env, actions)]
    second = [(o.tolist(), r) for o, r, _, _ in episode(env, actions)]
    assert first == second


def test_the_episode_is_causal(busy: Events) -> None:
    """Steps ending at or before t are bit-identical whether the events after t are (a) there,
    (b) dropped or (c) randomly changed (sizes and prices)."""
    names = ("ts", "kind", "order_id", "size", "price", "side", "ask_price", "ask_size", "bid_price", "bid_size")
    actions = [int(a) for a in np.random.default_rng(8).integers(0, 6, size=45)]

    def run(events: Events) -> list[tuple[bytes, float, float, int]]:
        env = OrderBookEnv(events, start="10:30:00", end="10:31:30", queue_model="ids", fee_per_share=0.002)
        env.reset()
        out = []
        for a in actions:
            obs, reward, _, _, info = env.step(a)
            out.append((obs.tobytes(), reward, info["pnl"], info["position"]))
        return out

    full = run(busy)
    rng = np.random.default_rng(9)
    for cutoff in ("10:30:31", "10:31:05"):
        t = clock(cutoff)
        n_before = int(np.searchsorted(OrderBookEnv(busy, start="10:30:00").decision_times[1:], t, side="right"))
        keep = busy.ts <= t
        dropped = Events(symbol="SYN", date=busy.date, tz=busy.tz, **{n: getattr(busy, n)[keep] for n in names})
        changed = {n: getattr(busy, n).copy() for n in names}
        later = int((~keep).sum())
        changed["size"][~keep] = rng.integers(1, 500, later)
        changed["bid_size"][~keep] = rng.integers(1, 900, later)
        changed["ask_price"][~keep] += CENT * rng.integers(0, 3, later)
        perturbed = Events(symbol="SYN", date=busy.date, tz=busy.tz, **changed)
        for variant in (dropped, perturbed):
            got = run(variant)
            assert got[:n_before] == full[:n_before], cutoff
        assert got[n_before:] != full[n_before:]  # the change after t is felt after t


def test_check_env_and_gym_make(busy: Events, env_check: Callable[[gym.Env], None]) -> None:
    env_check(OrderBookEnv(busy, start="10:30:00", end="10:31:00", trailing_stop=0.02, latency=0.001))
    made = gym.make(ob.ENV_ID, events=busy, start="10:30:00", end="10:30:20")
    obs, _ = made.reset(seed=1)
    assert obs.shape == (6,) and obs.dtype == np.float32
    assert "OrderBookEnv(SYN 2012-06-21, 10 steps" in repr(made.unwrapped)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"start": "09:00"}, "no book at the window start"),
        ({"start": "10:30", "end": "10:30:01"}, "holds no decision interval"),
        ({"latency": 2.0}, "below the decision interval"),
        ({"start": "half past ten"}, "a time of day"),
        ({"order_size": 200}, "order_size <= position_limit"),
        ({"trailing_stop": -0.01}, "trailing_stop must be > 0"),
        ({"queue_model": "lifo"}, "unknown queue_model"),
        ({"tick": 0.000015}, "tick of whole"),
    ],
)
def test_bad_configurations_are_refused(busy: Events, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(EnvConfigError, match=match):
        OrderBookEnv(busy, **{"start": "10:30:00", "end": "10:31:00", **kwargs})


def test_a_bad_action_is_refused(busy: Events) -> None:
    env = OrderBookEnv(busy, start="10:30:00", end="10:31:00")
    env.reset()
    with pytest.raises(EnvConfigError, match=r"action must be in 0\.\.5"):
        env.step(6)
