"""Market.window and envs built on a prebuilt market: the same numbers as envs that build their own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rltrade.envs.market import Market
from rltrade.envs.portfolio import PortfolioEnv
from rltrade.envs.stock_trading import StockTradingEnv
from rltrade.envs.timing import EnvConfigError
from rltrade.errors import DataValidationError

FEATURES = ["log_return", "macd"]


def _same_market(a: Market, b: Market) -> None:
    assert (a.first, a.last, a.history, a.has_open) == (b.first, b.last, b.history, b.has_open)
    np.testing.assert_array_equal(a.times, b.times)
    np.testing.assert_array_equal(a.close, b.close)
    np.testing.assert_array_equal(a.features, b.features)


@pytest.mark.parametrize(
    ("start", "end", "history", "min_first"),
    [(None, None, 1, 0), ("2020-03-02", "2020-05-29", 5, 0), (None, "2020-04-30", 1, 40), ("2020-02-03", None, 3, 0)],
)
def test_a_window_equals_a_market_built_with_those_bounds(
    ohlcv_bars: pd.DataFrame, start: str | None, end: str | None, history: int, min_first: int
) -> None:
    whole = Market(ohlcv_bars, FEATURES)
    view = whole.window(start, end, history=history, min_first=min_first)
    _same_market(view, Market(ohlcv_bars, FEATURES, start=start, end=end, history=history, min_first=min_first))
    assert view.close is whole.close and view.features is whole.features  # shared, not copied
    assert (whole.first, whole.last, whole.history) == (Market(ohlcv_bars, FEATURES).first, whole.n_times - 1, 1)


def test_a_window_with_too_few_bars_is_refused(ohlcv_bars: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError, match="usable bar"):
        Market(ohlcv_bars, FEATURES).window("2020-05-01", "2020-05-01")


def test_the_turbulence_index_is_computed_once_per_market(
    ohlcv_bars: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rltrade.envs.market as market_module

    calls: list[int] = []
    real = market_module.turbulence_index

    def counted(close: np.ndarray, window: int) -> np.ndarray:
        calls.append(window)
        return real(close, window)

    monkeypatch.setattr(market_module, "turbulence_index", counted)
    whole = Market(ohlcv_bars, ["log_return"])
    first = whole.turbulence(20)
    first[:] = 0.0  # a fresh copy: the memo is untouched
    again = whole.window("2020-04-01").turbulence(20)
    assert calls == [20]
    np.testing.assert_array_equal(again, real(whole.close, 20))


def _trajectory(env: Any, actions: Callable[[int], np.ndarray]) -> list[tuple[Any, ...]]:
    obs, info = env.reset(seed=3)
    out: list[tuple[Any, ...]] = [(obs.tobytes(), info["portfolio_value"])]
    for n in range(10_000):
        obs, reward, terminated, truncated, info = env.step(actions(n))
        out.append((obs.tobytes(), reward, terminated, truncated, info["portfolio_value"], info["total_cost"]))
        if terminated or truncated:
            break
    return out


@pytest.mark.parametrize(
    ("start", "end"), [(None, None), ("2020-03-02", "2020-05-29"), ("2020-04-01", None), (None, "2020-04-15")]
)
def test_stock_trading_env_on_a_prebuilt_market_gives_the_same_bits(
    ohlcv_bars: pd.DataFrame, start: str | None, end: str | None
) -> None:
    kwargs: dict[str, Any] = {
        "features": ["log_return", "macd"],
        "turbulence_threshold": 3.0,
        "turbulence_window": 20,
        "start": start,
        "end": end,
    }
    template = StockTradingEnv(ohlcv_bars, **{**kwargs, "start": None, "end": None, "turbulence_threshold": np.inf})
    own = StockTradingEnv(ohlcv_bars, **kwargs)
    shared = StockTradingEnv(None, market=template.market, **kwargs)
    _same_market(shared.market, own.market)
    np.testing.assert_array_equal(shared.turbulence, own.turbulence)
    rng = np.random.default_rng(0)
    moves = rng.uniform(-1, 1, (10_000, own.market.n_symbols))
    assert _trajectory(shared, lambda n: moves[n]) == _trajectory(own, lambda n: moves[n])


def test_portfolio_env_on_a_prebuilt_market_gives_the_same_bits(ohlcv_bars: pd.DataFrame) -> None:
    kwargs: dict[str, Any] = {"features": ["log_return"], "look_back": 5, "start": "2020-03-02", "end": "2020-05-29"}
    own = PortfolioEnv(ohlcv_bars, **kwargs)
    shared = PortfolioEnv(None, market=Market(ohlcv_bars, ["log_return"]), **kwargs)
    _same_market(shared.market, own.market)
    rng = np.random.default_rng(1)
    moves = rng.normal(size=(10_000, own.market.n_symbols + 1))
    assert _trajectory(shared, lambda n: moves[n]) == _trajectory(own, lambda n: moves[n])


def test_a_market_of_other_features_is_refused(ohlcv_bars: pd.DataFrame) -> None:
    market = Market(ohlcv_bars, ["log_return"])
    with pytest.raises(EnvConfigError, match="built with features"):
        StockTradingEnv(None, features=["macd"], market=market)
    with pytest.raises(EnvConfigError, match="built with features"):
        PortfolioEnv(None, features=["log_return"], feature_params={"n_diffs": 3}, market=market)
    with pytest.raises(EnvConfigError, match="bars or a"):
        PortfolioEnv(None)


def test_without_features_the_env_uses_the_markets(ohlcv_bars: pd.DataFrame) -> None:
    template = StockTradingEnv(ohlcv_bars)
    env = StockTradingEnv(None, market=template.market, start="2020-03-02")
    assert env.market.feature_names == template.market.feature_names
