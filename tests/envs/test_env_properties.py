"""Property tests (hypothesis) of the accounting over random prices, costs, timings and actions.

Invariants at every step: value = cash + Σ shares·price; no negative cash (long-only); costs
>= 0, equal to the cost model applied to the trade, and charged whenever something trades;
weights sum to 1 (PortfolioEnv); integer shares and no shares from nothing (StockTradingEnv).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rltrade.envs.costs import (
    BpsCost,
    CostParams,
    LinearCost,
    NoCost,
    PerShareCost,
    SpreadCost,
    make_cost,
    spread_volatility,
    trade_cost,
)
from rltrade.envs.portfolio import PortfolioEnv
from rltrade.envs.stock_trading import StockTradingEnv
from rltrade.envs.timing import EnvConfigError

COSTS = [
    NoCost(),
    BpsCost(10),
    BpsCost(300),
    PerShareCost(0.01, 1.0),
    SpreadCost(2.0, 3),
    LinearCost(CostParams(rate=0.001, per_share=0.01, minimum=0.5, half_spread=0.5, window=3)),
]
TIMINGS = ["next_open", "next_close", "same_close"]
PROPERTY_SETTINGS = settings(max_examples=40, deadline=None)


@st.composite
def panels(draw: st.DrawFn) -> pd.DataFrame:
    """Canonical OHLCV bars: 1-3 symbols, 12-30 days, log returns up to ±40 %, overnight gaps."""
    n_assets = draw(st.integers(1, 3))
    n_days = draw(st.integers(12, 30))
    moves = draw(arrays(np.float64, (n_days, n_assets), elements=st.floats(-0.4, 0.4)))
    gaps = draw(arrays(np.float64, (n_days, n_assets), elements=st.floats(-0.1, 0.1)))
    start = draw(st.floats(0.5, 500.0))
    close = start * np.exp(np.cumsum(moves, axis=0))
    open_ = np.vstack([close[:1], close[:-1]]) * np.exp(gaps)
    stamps = pd.date_range("2022-01-03", periods=n_days, freq="B", tz="UTC").astype("datetime64[ns, UTC]")
    frames = []
    for j in range(n_assets):
        frames.append(
            pd.DataFrame(
                {
                    "symbol": f"S{j}",
                    "timestamp": stamps,
                    "open": open_[:, j],
                    "high": np.maximum(open_[:, j], close[:, j]),
                    "low": np.minimum(open_[:, j], close[:, j]),
                    "close": close[:, j],
                    "volume": 1000.0,
                }
            )
        )
    return pd.concat(frames).sort_values(["timestamp", "symbol"]).reset_index(drop=True)


def fill_prices(env: Any, t: int) -> np.ndarray:
    """The fill price of an action chosen after bar t, from the market arrays and the timing."""
    market, timing = env.market, env.timing
    source = market.open if timing.fill_field == "open" else market.close
    return np.asarray(source[t + timing.fill_offset])


def volatility(env: Any, t: int) -> np.ndarray | None:
    window = env.cost_model.params.window
    return spread_volatility(env.market.close, window)[t] if window else None


def charges_for(cost: LinearCost, traded: np.ndarray, vol: np.ndarray | None) -> bool:
    """Whether the model charges anything for this (non-empty) trade."""
    p = cost.params
    if p.rate > 0 or p.per_share > 0 or p.minimum > 0:
        return True
    return bool(p.half_spread > 0 and vol is not None and (np.nan_to_num(vol)[traded > 0] > 0).any())


@PROPERTY_SETTINGS
@given(
    bars=panels(),
    cost=st.sampled_from(COSTS),
    timing=st.sampled_from(TIMINGS),
    long_short=st.booleans(),
    leverage=st.floats(0.5, 3.0),
    seed=st.integers(0, 2**16),
)
def test_portfolio_accounting(
    bars: pd.DataFrame, cost: LinearCost, timing: str, long_short: bool, leverage: float, seed: int
) -> None:
    env = PortfolioEnv(
        bars, look_back=2, cost=cost, timing=timing, long_short=long_short, leverage=leverage, initial_value=1e4
    )
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    total = 0.0
    while True:
        t, cash, shares = info["bar"], info["cash"], info["shares"]
        action = rng.uniform(-2.0, 2.0, env.action_space.shape) * rng.integers(0, 2)  # half of them all zero
        obs, _, terminated, truncated, info = env.step(action)
        price = env.market.close[info["bar"]]
        fill, vol = fill_prices(env, t), volatility(env, t)
        value = info["cash"] + info["shares"] @ price
        assert info["portfolio_value"] == pytest.approx(value, rel=1e-9, abs=1e-9)
        if not long_short:
            assert info["cash"] >= 0.0 and (info["shares"] >= 0.0).all()
        if info["portfolio_value"] > 0:
            assert obs[env.state_layout["weights"]].sum() == pytest.approx(1.0, abs=1e-4)
        if long_short:
            gross = np.abs(info["shares"] * fill).sum() / max(cash + shares @ fill - info["cost"], 1e-300)
            assert gross <= leverage * (1 + 1e-9)
        traded = np.abs(info["shares"] - shares)
        expected_cost = cost.cost(traded * fill, traded, vol).sum()
        assert info["cost"] >= 0.0
        assert info["cost"] == pytest.approx(expected_cost, rel=1e-9, abs=1e-12)
        if traded.any() and charges_for(cost, traded, vol):
            assert info["cost"] > 0.0
        value_at_fill = cash + shares @ fill
        assert value_at_fill == pytest.approx(info["cash"] + info["shares"] @ fill + info["cost"], rel=1e-9, abs=1e-9)
        total += info["cost"]
        assert info["total_cost"] == pytest.approx(total, rel=1e-9, abs=1e-12)
        if terminated or truncated:
            break
    assert info["bar"] == env.market.last or info["portfolio_value"] <= 0


@PROPERTY_SETTINGS
@given(
    bars=panels(),
    cost=st.sampled_from(COSTS),
    timing=st.sampled_from(TIMINGS),
    hmax=st.integers(1, 200),
    initial_value=st.sampled_from([0.0, 50.0, 1e4, 1e6]),
    threshold=st.one_of(st.none(), st.floats(0.0, 10.0)),
    seed=st.integers(0, 2**16),
)
def test_stock_trading_accounting(
    bars: pd.DataFrame,
    cost: LinearCost,
    timing: str,
    hmax: int,
    initial_value: float,
    threshold: float | None,
    seed: int,
) -> None:
    env = StockTradingEnv(
        bars,
        features=["log_return"],
        cost=cost,
        timing=timing,
        hmax=hmax,
        initial_value=initial_value,
        turbulence_threshold=threshold,
        turbulence_window=5,
    )
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    while True:
        t, cash, shares = info["bar"], info["cash"], info["shares"]
        action = rng.uniform(-1.5, 1.5, env.action_space.shape)
        obs, _, terminated, truncated, info = env.step(action)
        fill, vol = fill_prices(env, t), volatility(env, t)
        new = info["shares"]
        delta = new - shares
        assert (new == np.round(new)).all() and (new >= 0).all()
        assert info["cash"] >= 0.0
        assert obs[env.state_layout["cash"]][0] == np.float32(info["cash"])
        np.testing.assert_array_equal(obs[env.state_layout["shares"]], new.astype(np.float32))
        assert info["portfolio_value"] == pytest.approx(
            info["cash"] + new @ env.market.close[info["bar"]], rel=1e-12, abs=1e-9
        )
        want = np.trunc(np.clip(action, -1, 1) * hmax)
        if info["turbulent"]:
            assert threshold is not None and env.turbulence[t] >= threshold
            assert (delta <= 0).all() and ((new == 0) | (delta == 0)).all()
        else:
            assert ((delta <= 0) | (delta <= want)).all()  # buys only where asked, at most hmax
            assert ((delta >= 0) | (-delta <= -want)).all()  # sells only where asked, at most the holding
        traded = np.abs(delta)
        expected_cost = cost.cost(traded * fill, traded, vol).sum()
        assert info["cost"] == pytest.approx(expected_cost, rel=1e-9, abs=1e-12)
        if traded.any() and charges_for(cost, traded, vol):
            assert info["cost"] > 0.0
        # no shares from nothing: every share bought is paid for, at the fill price plus the cost
        assert info["cash"] == pytest.approx(cash - delta @ fill - info["cost"], rel=1e-9, abs=1e-6)
        if terminated or truncated:
            break


@settings(max_examples=200, deadline=None)
@given(
    cost=st.sampled_from(COSTS),
    notional=arrays(np.float64, (2, 4), elements=st.floats(-1e7, 1e7)),
    shares=arrays(np.float64, (2, 4), elements=st.floats(0.0, 1e5)),
    vol=arrays(np.float64, (4,), elements=st.one_of(st.just(np.nan), st.floats(0.0, 1.0))),
)
def test_cost_models_are_non_negative_and_the_kernel_gives_the_same_bits(
    cost: LinearCost, notional: np.ndarray, shares: np.ndarray, vol: np.ndarray
) -> None:
    out = cost.cost(notional, shares, vol)
    assert out.shape == notional.shape and (out >= 0).all()
    p = cost.params
    for idx in np.ndindex(out.shape):
        expected = trade_cost(p.rate, p.per_share, p.minimum, p.half_spread, notional[idx], shares[idx], vol[idx[1]])
        assert out[idx] == expected
    assert (cost.cost(np.zeros(3), np.zeros(3), np.zeros(3)) == 0).all()


def test_cost_model_reference_values() -> None:
    assert BpsCost(10).cost(np.array([1000.0, -500.0]), np.array([10.0, 5.0])).tolist() == [1.0, 0.5]
    assert PerShareCost(0.005, 1.0).cost(np.array([0.0, 9e3, 9e3]), np.array([0.0, 100.0, 1000.0])).tolist() == [
        0.0,
        1.0,
        5.0,
    ]
    assert SpreadCost(2.0, 20).cost(np.array([1000.0]), np.array([1.0]), np.array([0.01])).tolist() == [10.0]
    assert SpreadCost().needs_volatility and not BpsCost().needs_volatility
    with pytest.raises(EnvConfigError, match="volatility"):
        SpreadCost().cost(np.array([1.0]), np.array([1.0]))
    assert isinstance(make_cost(None), NoCost) and make_cost(5).params.rate == 0.0005
    with pytest.raises(EnvConfigError):
        BpsCost(-1)
    with pytest.raises(EnvConfigError):
        SpreadCost(window=1)


@settings(max_examples=50, deadline=None)
@given(
    close=arrays(np.float64, (40, 2), elements=st.floats(1.0, 100.0)),
    window=st.integers(2, 10),
    cut=st.integers(12, 39),
)
def test_spread_volatility_is_causal_and_a_rolling_std(close: np.ndarray, window: int, cut: int) -> None:
    full = spread_volatility(close, window)
    np.testing.assert_array_equal(full[:cut], spread_volatility(close[:cut], window))
    returns = np.diff(np.log(close), axis=0)
    reference = np.full_like(close, np.nan)
    for t in range(window, len(close)):
        reference[t] = returns[t - window : t].std(axis=0, ddof=1)  # returns t-window+1 .. t
    np.testing.assert_allclose(full, reference, rtol=1e-9, atol=1e-15)
    assert np.isnan(full[:window]).all()
    gappy = close.copy()
    gappy[5, 0] = np.nan  # two returns go missing: skipped, not propagated
    out = spread_volatility(gappy, window)
    valid_returns = pd.Series(np.log(gappy[:, 0])).diff().notna().rolling(window).sum().to_numpy()
    np.testing.assert_array_equal(np.isfinite(out[:, 0]), (valid_returns >= 2) & (np.arange(40) >= window))
    np.testing.assert_array_equal(out[:, 1], full[:, 1])
