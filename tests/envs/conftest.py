"""Shared bars and helpers for the env tests: small synthetic OHLCV panels and the embedded real samples."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from gymnasium.utils.env_checker import check_env

# check_env warnings that say nothing about correctness: unbounded feature observations, and no
# EnvSpec when an env is built directly rather than through gymnasium.make.
BENIGN_CHECK_WARNINGS = re.compile(
    r"Box observation space (minimum|maximum) value is -?infinity|Not able to test alternative render modes"
)


def gbm_bars(
    n_days: int = 160,
    symbols: tuple[str, ...] = ("AAA", "BBB", "CCC"),
    seed: int = 3,
    close_only: bool = False,
    start: str = "2020-01-01",
    vol: float = 0.02,
) -> pd.DataFrame:
    """Canonical daily bars from a geometric random walk (open = previous close times an overnight gap)."""
    rng = np.random.default_rng(seed)
    stamps = pd.date_range(start, periods=n_days, freq="B", tz="UTC").astype("datetime64[ns, UTC]")
    frames = []
    for symbol in symbols:
        close = 20.0 * np.exp(np.cumsum(rng.normal(0.0002, vol, n_days)))
        open_ = np.concatenate([[close[0]], close[:-1]]) * np.exp(rng.normal(0.0, vol / 3, n_days))
        high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, vol / 3, n_days)))
        low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, vol / 3, n_days)))
        volume = rng.integers(100, 10_000, n_days).astype(float)
        frame = pd.DataFrame(
            {"symbol": symbol, "timestamp": stamps, "open": open_, "high": high, "low": low, "close": close}
        )
        frame["volume"] = volume
        if close_only:
            frame[["open", "high", "low", "volume"]] = np.nan
        frames.append(frame)
    bars = pd.concat(frames, ignore_index=True)
    return bars.sort_values(["timestamp", "symbol"], kind="stable").reset_index(drop=True)


def sample_bars(spec: str) -> pd.DataFrame:
    """Canonical bars of an embedded sample (``sample:sp500`` or ``sample:stocks``), no network."""
    from rltrade.data.sources import fetch
    from rltrade.data.validate import validate_bars

    frame = pd.concat([validate_bars(raw) for raw in fetch(spec)], ignore_index=True)
    return frame.sort_values(["timestamp", "symbol"], kind="stable").reset_index(drop=True)


def checked(env: gym.Env) -> None:
    """``check_env(env.unwrapped)``, failing on any warning other than the benign ones."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    unexpected = [str(w.message) for w in caught if not BENIGN_CHECK_WARNINGS.search(str(w.message))]
    assert not unexpected, unexpected


def run_episode(
    env: gym.Env, actions: Callable[[int], np.ndarray], seed: int = 0, max_steps: int = 10_000
) -> list[tuple[np.ndarray, float, bool, bool, dict]]:
    """Reset with ``seed`` and step with ``actions(step)`` until the episode ends; the transitions."""
    obs, info = env.reset(seed=seed)
    out = [(obs, 0.0, False, False, info)]
    for n in range(max_steps):
        obs, reward, terminated, truncated, info = env.step(actions(n))
        out.append((obs, float(reward), terminated, truncated, info))
        if terminated or truncated:
            break
    return out


@pytest.fixture(scope="session")
def ohlcv_bars() -> pd.DataFrame:
    """3 symbols x 160 business days of synthetic OHLCV."""
    return gbm_bars()


@pytest.fixture(scope="session")
def close_bars() -> pd.DataFrame:
    """The same walk as close-only bars (open/high/low/volume NaN)."""
    return gbm_bars(close_only=True)


@pytest.fixture(scope="session")
def sp500_bars() -> pd.DataFrame:
    """The embedded S&P 500 sample (20 stocks, close-only, 1990-2022)."""
    return sample_bars("sample:sp500")


@pytest.fixture(scope="session")
def stocks_bars() -> pd.DataFrame:
    """The embedded bokeh sample (AAPL, GOOG, IBM, MSFT OHLCV; GOOG starts in 2004)."""
    return sample_bars("sample:stocks")


@pytest.fixture(scope="session")
def make_bars() -> Callable[..., pd.DataFrame]:
    """The :func:`gbm_bars` factory."""
    return gbm_bars


@pytest.fixture(scope="session")
def env_check() -> Callable[[gym.Env], None]:
    """The :func:`checked` helper: ``check_env`` that fails on unexpected warnings."""
    return checked


@pytest.fixture(scope="session")
def run() -> Callable[..., list[tuple[np.ndarray, float, bool, bool, dict]]]:
    """The :func:`run_episode` helper."""
    return run_episode
