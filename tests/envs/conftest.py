"""Shared bars and helpers for the env tests: small synthetic OHLCV panels.

The embedded samples (``sp500_bars``, ``stocks_bars``) come from ``tests/conftest.py``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from gymnasium.utils.env_checker import check_env

from rltrade.testing import synthetic_bars

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
    """Canonical daily bars of the env tests: :func:`rltrade.testing.synthetic_bars` with an overnight gap."""
    return synthetic_bars(
        n_bars=n_days,
        symbols=symbols,
        seed=seed,
        start=start,
        ohlcv=not close_only,
        price=20.0,
        drift=0.0002,
        vol=vol,
        open_from="previous_close",
        open_vol=vol / 3,
        wick_vol=vol / 3,
        volume=(100, 10_000),
    )


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
