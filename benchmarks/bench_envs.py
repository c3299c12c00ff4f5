"""Steps per second of the rltrade envs, scalar and batched, against a FinRL-style pandas env on the same data.

Data: synthetic geometric-random-walk OHLCV, 30 symbols x 10 years of business days (fixed seed).
Baseline: a faithful minimal re-implementation of FinRL's ``StockTradingEnv.step`` loop (a pandas
``df.loc[day, :]`` per step, state rebuilt from Python lists, per-stock Python sell/buy loops),
measured in the same run. Numba compile time is excluded: every env steps once before timing.

Run: ``python benchmarks/bench_envs.py [--seconds 2] [--symbols 30] [--years 10]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import numba
import numpy as np
import pandas as pd

from rltrade.envs.portfolio import PortfolioEnv
from rltrade.envs.stock_trading import StockTradingEnv
from rltrade.envs.vec import BatchedPortfolioEnv, BatchedStockTradingEnv
from rltrade.features import FINRL_INDICATORS, build_features, feature_warmup
from rltrade.testing import synthetic_bars


def benchmark_bars(n_symbols: int = 30, n_years: int = 10, seed: int = 0) -> pd.DataFrame:
    """``n_symbols`` x ``252 * n_years`` daily OHLCV bars of :func:`rltrade.testing.synthetic_bars` from 2010-01-04."""
    return synthetic_bars(n_symbols, 252 * n_years, seed=seed, start="2010-01-04", vol=0.018)


class FinRLStyleStockTradingEnv:
    """FinRL's ``StockTradingEnv`` step loop (pandas ``.loc`` per step), trimmed to what a step does.

    Parameters
    ----------
    df:
        FinRL's processed frame: one row per (day, tic), index = day number, indicator columns.
    indicators:
        Indicator column names.
    hmax, initial_amount, cost_pct, reward_scaling:
        As in FinRL.
    """

    def __init__(
        self,
        df: pd.DataFrame,
        indicators: list[str],
        hmax: int = 100,
        initial_amount: float = 1e6,
        cost_pct: float = 0.001,
        reward_scaling: float = 1e-4,
    ) -> None:
        self.df = df
        self.indicators = indicators
        self.stock_dim = df["tic"].nunique()
        self.hmax = hmax
        self.initial_amount = initial_amount
        self.cost_pct = cost_pct
        self.reward_scaling = reward_scaling
        self.n_days = len(df.index.unique())

    def _state(self) -> list[float]:
        return (
            [self.initial_amount]
            + self.data.close.values.tolist()
            + [0] * self.stock_dim
            + [value for tech in self.indicators for value in self.data[tech].values.tolist()]
        )

    def _update_state(self) -> list[float]:
        d = self.stock_dim
        return (
            [self.state[0]]
            + self.data.close.values.tolist()
            + list(self.state[(d + 1) : (d * 2 + 1)])
            + [value for tech in self.indicators for value in self.data[tech].values.tolist()]
        )

    def reset(self) -> np.ndarray:
        self.day = 0
        self.data = self.df.loc[self.day, :]
        self.state = self._state()
        self.cost = 0.0
        self.trades = 0
        self.asset_memory = [self.initial_amount]
        self.rewards_memory: list[float] = []
        self.actions_memory: list[np.ndarray] = []
        return np.array(self.state)

    def _sell_stock(self, index: int, action: int) -> int:
        d = self.stock_dim
        if self.state[index + 1] > 0 and self.state[index + d + 1] > 0:
            n = min(abs(action), self.state[index + d + 1])
            self.state[0] += self.state[index + 1] * n * (1 - self.cost_pct)
            self.state[index + d + 1] -= n
            self.cost += self.state[index + 1] * n * self.cost_pct
            self.trades += 1
            return int(n)
        return 0

    def _buy_stock(self, index: int, action: int) -> int:
        d = self.stock_dim
        if self.state[index + 1] > 0:
            available = self.state[0] // (self.state[index + 1] * (1 + self.cost_pct))
            n = min(available, action)
            self.state[0] -= self.state[index + 1] * n * (1 + self.cost_pct)
            self.state[index + d + 1] += n
            self.cost += self.state[index + 1] * n * self.cost_pct
            self.trades += 1
            return int(n)
        return 0

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        d = self.stock_dim
        terminal = self.day >= self.n_days - 1
        if terminal:
            return np.array(self.state), 0.0, True, False, {}
        actions = (actions * self.hmax).astype(int)
        begin = self.state[0] + sum(np.array(self.state[1 : d + 1]) * np.array(self.state[d + 1 : 2 * d + 1]))
        order = np.argsort(actions)
        sell_index = order[: np.where(actions < 0)[0].shape[0]]
        buy_index = order[::-1][: np.where(actions > 0)[0].shape[0]]
        for index in sell_index:
            actions[index] = self._sell_stock(index, actions[index]) * (-1)
        for index in buy_index:
            actions[index] = self._buy_stock(index, actions[index])
        self.actions_memory.append(actions)
        self.day += 1
        self.data = self.df.loc[self.day, :]
        self.state = self._update_state()
        end = self.state[0] + sum(np.array(self.state[1 : d + 1]) * np.array(self.state[d + 1 : 2 * d + 1]))
        self.asset_memory.append(end)
        reward = end - begin
        self.rewards_memory.append(reward)
        return np.array(self.state), reward * self.reward_scaling, self.day >= self.n_days - 1, False, {}


def finrl_frame(bars: pd.DataFrame, indicators: list[str]) -> pd.DataFrame:
    """FinRL's processed layout: ``date, tic, close, indicators...``, index = day number, warm-up dropped."""
    table = build_features(bars, indicators).reset_index()
    close = bars.set_index(["timestamp", "symbol"])["close"]
    table["close"] = close.loc[list(zip(table["timestamp"], table["symbol"], strict=True))].to_numpy()
    table = table.rename(columns={"timestamp": "date", "symbol": "tic"})
    days = pd.factorize(table["date"], sort=True)[0]
    table = table.loc[days >= feature_warmup(indicators)].copy()
    table.index = pd.factorize(table["date"], sort=True)[0]
    return table


def sampled_actions(space: Any, n: int) -> np.ndarray:
    """``n`` actions drawn from ``space`` with a fixed seed."""
    space.seed(0)
    return np.stack([np.asarray(space.sample()) for _ in range(n)])


def time_scalar(env: Any, seconds: float, actions: np.ndarray, reset: Callable[[], Any] | None = None) -> float:
    """Scalar steps per second over about ``seconds`` (resets at episode ends are included)."""
    do_reset = reset or (lambda: env.reset(seed=0))
    do_reset()
    env.step(actions[0])  # compile / warm up
    do_reset()
    steps, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(1000):
            result = env.step(actions[steps & 4095])
            steps += 1
            if result[2] or result[3]:
                do_reset()
        if time.perf_counter() >= deadline:
            break
    return steps / (time.perf_counter() - start)


def time_batched(venv: Any, seconds: float) -> float:
    """Env-steps per second of a VecEnv (K copies per call; auto-resets included)."""
    actions = sampled_actions(venv.action_space, 16 * venv.num_envs)
    actions = actions.reshape(16, venv.num_envs, *actions.shape[1:])
    venv.seed(0)
    venv.reset()
    venv.step(actions[0])  # compile / warm up
    calls, start = 0, time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(20):
            venv.step(actions[calls & 15])
            calls += 1
    return calls * venv.num_envs / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--symbols", type=int, default=30)
    parser.add_argument("--years", type=int, default=10)
    args = parser.parse_args()

    bars = benchmark_bars(args.symbols, args.years)
    n = args.symbols
    machine = platform.processor() or platform.machine()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"data: {n} symbols x {args.years * 252} daily bars (synthetic GBM OHLCV); machine: {machine}, "
        f"{os.cpu_count()} CPUs, numba threads {numba.get_num_threads()}, load average {load:.2f} at start"
    )
    rows: list[tuple[str, str, int, float]] = []

    indicators = list(FINRL_INDICATORS)
    finrl = FinRLStyleStockTradingEnv(finrl_frame(bars, indicators), indicators)
    uniform = np.random.default_rng(0).uniform(-1, 1, (4096, n)).astype(np.float32)
    baseline = time_scalar(finrl, args.seconds, uniform, reset=finrl.reset)
    rows.append(("FinRL-style StockTradingEnv (pandas .loc)", "scalar", 1, baseline))

    episode = {"random_start": True, "episode_length": 252}
    rows.append(("StockTradingEnv", "scalar", 1, time_scalar(StockTradingEnv(bars), args.seconds, uniform)))
    for k in (64, 256):
        venv = BatchedStockTradingEnv(bars, n_envs=k, **episode)
        rows.append(("BatchedStockTradingEnv", "VecEnv", k, time_batched(venv, args.seconds)))
    for k in (64, 256):
        venv = BatchedStockTradingEnv(bars, n_envs=k, threads=True, **episode)
        rows.append(("BatchedStockTradingEnv threads=True", "VecEnv", k, time_batched(venv, args.seconds)))
    env = PortfolioEnv(bars)
    rows.append(
        (
            "PortfolioEnv (look_back 10)",
            "scalar",
            1,
            time_scalar(env, args.seconds, sampled_actions(env.action_space, 4096)),
        )
    )
    for k in (64, 256):
        venv = BatchedPortfolioEnv(bars, n_envs=k, **episode)
        rows.append(("BatchedPortfolioEnv (look_back 10)", "VecEnv", k, time_batched(venv, args.seconds)))
    for k in (64, 256):
        venv = BatchedPortfolioEnv(bars, n_envs=k, threads=True, **episode)
        rows.append(("BatchedPortfolioEnv threads=True", "VecEnv", k, time_batched(venv, args.seconds)))

    try:
        from rltrade.envs import single_asset
    except Exception as exc:  # the module is optional here: skip it gracefully
        print(f"SingleAssetEnv skipped: {type(exc).__name__}: {exc}")
    else:
        one = bars.loc[bars["symbol"] == "S00"]
        env = single_asset.SingleAssetEnv(one)
        actions = sampled_actions(env.action_space, 4096)
        rows.append(("SingleAssetEnv (state 3)", "scalar", 1, time_scalar(env, args.seconds, actions)))
        for k in (64, 256):
            venv = single_asset.BatchedSingleAssetEnv(one, n_envs=k, **episode)
            rows.append(("BatchedSingleAssetEnv (state 3)", "VecEnv", k, time_batched(venv, args.seconds)))

    width = max(len(r[0]) for r in rows)
    print(f"{'env':<{width}}  {'mode':<6}  {'K':>4}  {'env-steps/s':>12}  {'x FinRL-style':>13}")
    for name, mode, k, rate in rows:
        print(f"{name:<{width}}  {mode:<6}  {k:>4}  {rate:>12,.0f}  {rate / baseline:>13,.0f}")


if __name__ == "__main__":
    main()
