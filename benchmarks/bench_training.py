"""PPO training throughput (timesteps/s) with Stable-Baselines3: FinRL's setup against rltrade's envs.

Task: FinRL-like multi-stock trading on synthetic daily OHLCV (30 symbols x 10 years, the data of
``bench_envs.py``), FinRL's eight indicators, so an observation has 1 + 2N + 8N floats and an action
N floats in [-1, 1]. Every row trains the same network, SB3's ``MlpPolicy`` (64x64, tanh), on the CPU.

Rows:

- **FinRL setup** (the baseline): ``bench_envs.FinRLStyleStockTradingEnv`` (FinRL's pandas step
  loop) as a gymnasium env in ``DummyVecEnv`` with one env, and FinRL's default PPO parameters
  (``n_steps=2048, batch_size=128, ent_coef=0.01, learning_rate=0.00025``, SB3's ``n_epochs=10``),
  first with torch's default thread count (as FinRL ships), then with 1 torch thread. Ratios are
  given against both: the first row, and the faster of the two (the conservative reference, used
  for the goal check).
- **StockTradingEnv**: rltrade's scalar env in ``DummyVecEnv(1)``, the same PPO parameters.
- **BatchedStockTradingEnv**: K copies stepped in one call (random starts, one-year episodes),
  ``n_steps * K`` timesteps per rollout, bigger minibatches, still ``n_epochs=10``; with torch
  limited to 1 thread and with 2 threads.

Method: each row builds a fresh model and runs a short warm-up ``learn`` (one rollout and one
update: numba compile, torch init, allocator warm-up), then times a second ``learn`` call that runs
whole rollout + update iterations until about ``--seconds`` have passed (:class:`StopAfter`), or
for ``--timesteps``. Timesteps/s = timesteps collected by that call / its wall time. The VecEnv is
wrapped in :class:`TimedVecEnv`, which adds up the time spent in ``reset``, ``step_async`` and
``step_wait``; *env share* is that time over the wall time of the timed ``learn``. The wall time is
also split into the rollout phase (``collect_rollouts``: env, policy forward passes, rollout buffer)
and the update phase (``train``: ``n_epochs`` passes of minibatch gradient steps). The machine is
shared, so the load average at the start of each row is printed next to it.

Run: ``python benchmarks/bench_training.py [--seconds 10] [--timesteps N] [--symbols 30] [--years 10] [--quick]``.
``--quick`` is a 30-45 s smoke run and the default run takes 3-4 minutes on 2 quiet cores (longer when
torch threads collapse under load, see below).

What dominates (measured on a shared 2-core AMD EPYC): with K >= 64 the PPO update takes 85-90 % of
the time (10 epochs of forward + backward passes of the 64x64 actor and critic over each sample, about
7 us per sample per epoch on one thread; most FLOPs are in the two 301x64 input layers), the
rollout's policy forward passes and buffer writes about 10 % and the env 3 %. Small minibatches (FinRL's
128) pay about 3 ms of fixed overhead each (autograd, Adam, SB3 bookkeeping). With 2 torch threads the
update is 0-40 % faster on a quiet machine, but torch's OpenMP threads spin while they wait, and
when another process competes for the cores a run became 3-15x slower: 1 thread is the robust choice.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
import stable_baselines3
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from bench_envs import FinRLStyleStockTradingEnv, benchmark_bars, finrl_frame
from rltrade.envs.stock_trading import StockTradingEnv
from rltrade.envs.vec import BatchedStockTradingEnv
from rltrade.features import FINRL_INDICATORS

# FinRL's PPO_PARAMS are n_steps 2048, batch_size 128, ent_coef 0.01, learning_rate 0.00025 (n_epochs: SB3's 10).
# Every row keeps FinRL's ent_coef and learning_rate and SB3's other defaults (64x64 MlpPolicy, gamma, clip, ...).
FINRL_PPO = {"n_steps": 2048, "batch_size": 128, "n_epochs": 10}
ENT_COEF = 0.01
LEARNING_RATE = 0.00025
FINRL_NAME = "FinRL setup (pandas env, DummyVecEnv)"
GOAL_RATIO, GOAL_ENV_SHARE = 10.0, 0.10  # batched training >= 10x the FinRL setup, env < 10 % of the time


class FinRLGymEnv(gym.Env[np.ndarray, np.ndarray]):
    """:class:`bench_envs.FinRLStyleStockTradingEnv` behind the gymnasium API, with FinRL's spaces.

    Parameters
    ----------
    env:
        The FinRL-style env; its state is ``[cash, prices (N), shares (N), indicators (F*N)]``.
    """

    def __init__(self, env: FinRLStyleStockTradingEnv) -> None:
        self.env = env
        n = env.stock_dim
        state = 1 + 2 * n + len(env.indicators) * n
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(state,))  # float32, as in FinRL
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(n,))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return self.env.reset(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        return self.env.step(action)


class TimedVecEnv(VecEnvWrapper):
    """Adds up the wall time spent inside the wrapped VecEnv (``reset``, ``step_async``, ``step_wait``)."""

    def __init__(self, venv: VecEnv) -> None:
        super().__init__(venv)
        self.seconds = 0.0

    def reset(self) -> VecEnvObs:
        start = time.perf_counter()
        obs = self.venv.reset()
        self.seconds += time.perf_counter() - start
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        start = time.perf_counter()
        self.venv.step_async(actions)
        self.seconds += time.perf_counter() - start

    def step_wait(self) -> VecEnvStepReturn:
        start = time.perf_counter()
        result = self.venv.step_wait()
        self.seconds += time.perf_counter() - start
        return result


class TimedPPO(PPO):
    """SB3's PPO, timing its two phases: ``collect_rollouts`` (env + policy forward) and ``train`` (updates)."""

    rollout_seconds = 0.0
    train_seconds = 0.0

    def collect_rollouts(self, *args: Any, **kwargs: Any) -> bool:
        start = time.perf_counter()
        try:
            return super().collect_rollouts(*args, **kwargs)
        finally:
            self.rollout_seconds += time.perf_counter() - start

    def train(self) -> None:
        start = time.perf_counter()
        super().train()
        self.train_seconds += time.perf_counter() - start


class StopAfter(BaseCallback):
    """Ends ``learn`` at the first rollout boundary after ``seconds``.

    The rollout that ends after the deadline is still used for an update; the next one is cut after
    its first VecEnv step (whose K timesteps are counted), so the timed run is whole iterations.
    """

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.deadline = float("inf")
        self.expired = False

    def _on_training_start(self) -> None:
        self.deadline = time.perf_counter() + self.seconds

    def _on_rollout_end(self) -> None:
        self.expired = time.perf_counter() >= self.deadline

    def _on_step(self) -> bool:
        return not self.expired


@dataclass(frozen=True)
class Setup:
    """One table row: how to build the VecEnv and which PPO parameters and torch threads to use."""

    name: str
    make_venv: Callable[[], VecEnv]
    n_envs: int
    n_steps: int
    batch_size: int
    n_epochs: int = 10
    torch_threads: int | None = None  # None: torch's default


@dataclass(frozen=True)
class Result:
    """What one row measured."""

    timesteps_per_s: float
    env_share: float
    policy_us_per_call: float
    rollout_share: float
    train_share: float
    timesteps: int
    seconds: float
    load: float


def load_average() -> float:
    """The 1-minute load average (NaN where the OS has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def measure(setup: Setup, seconds: float, timesteps: int | None, seed: int = 0) -> Result:
    """Warm up, then time one ``learn`` of whole rollouts for about ``seconds`` (or of ``timesteps``)."""
    default_threads = torch.get_num_threads()
    torch.set_num_threads(setup.torch_threads or default_threads)
    try:
        load = load_average()
        venv = TimedVecEnv(setup.make_venv())
        venv.seed(seed)
        model = TimedPPO(
            "MlpPolicy",
            venv,
            n_steps=setup.n_steps,
            batch_size=setup.batch_size,
            n_epochs=setup.n_epochs,
            device="cpu",
            seed=seed,
            verbose=0,
            ent_coef=ENT_COEF,
            learning_rate=LEARNING_RATE,
        )
        rollout = setup.n_steps * setup.n_envs
        model.learn(total_timesteps=rollout)  # warm-up: numba compile, torch init
        venv.seconds = model.rollout_seconds = model.train_seconds = 0.0
        before = model.num_timesteps
        start = time.perf_counter()
        if timesteps is None:
            model.learn(total_timesteps=10**12, reset_num_timesteps=False, callback=StopAfter(seconds))
        else:
            model.learn(total_timesteps=timesteps, reset_num_timesteps=False)
        wall = time.perf_counter() - start
        done = model.num_timesteps - before
        return Result(
            timesteps_per_s=done / wall,
            env_share=venv.seconds / wall,
            policy_us_per_call=1e6 * (model.rollout_seconds - venv.seconds) / (done / setup.n_envs),
            rollout_share=model.rollout_seconds / wall,
            train_share=model.train_seconds / wall,
            timesteps=done,
            seconds=wall,
            load=load,
        )
    finally:
        torch.set_num_threads(default_threads)


def setups(bars: pd.DataFrame, quick: bool, episode_length: int) -> list[Setup]:
    """The rows of the table, baseline first."""
    indicators = list(FINRL_INDICATORS)
    frame = finrl_frame(bars, indicators)

    def finrl() -> VecEnv:
        return DummyVecEnv([lambda: FinRLGymEnv(FinRLStyleStockTradingEnv(frame, indicators))])

    def scalar() -> VecEnv:
        return DummyVecEnv([lambda: StockTradingEnv(bars)])

    rows = [Setup(FINRL_NAME, finrl, 1, **FINRL_PPO), Setup(FINRL_NAME, finrl, 1, **FINRL_PPO, torch_threads=1)]
    thread_counts = (1,) if quick else (1, 2)
    for threads in thread_counts:
        rows.append(Setup("StockTradingEnv (DummyVecEnv)", scalar, 1, **FINRL_PPO, torch_threads=threads))

    def batched(k: int) -> Callable[[], VecEnv]:
        return lambda: BatchedStockTradingEnv(bars, n_envs=k, random_start=True, episode_length=episode_length)

    grid = [(64, 64, 1024)] if quick else [(16, 256, 1024), (64, 64, 1024), (64, 64, 2048), (256, 16, 2048)]
    for k, n_steps, batch in grid:
        for threads in thread_counts:
            rows.append(Setup("BatchedStockTradingEnv", batched(k), k, n_steps, batch, 10, threads))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="about how long each timed learn runs")
    parser.add_argument("--timesteps", type=int, default=None, help="timesteps per timed learn (overrides --seconds)")
    parser.add_argument("--symbols", type=int, default=30)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--episode-length", type=int, default=252, help="episode length of the batched copies")
    parser.add_argument("--quick", action="store_true", help="smoke run: short timings, 1 torch thread, fewer rows")
    args = parser.parse_args()
    seconds = 3.0 if args.quick else args.seconds

    bars = benchmark_bars(args.symbols, args.years)
    machine = platform.processor() or platform.machine()
    print(
        f"data: {args.symbols} symbols x {args.years * 252} daily bars (synthetic GBM OHLCV), "
        f"obs {1 + (2 + len(FINRL_INDICATORS)) * args.symbols} floats; machine: {machine}, {os.cpu_count()} CPUs, "
        f"load average {load_average():.2f} at start"
    )
    print(
        f"torch {torch.__version__} (default threads {torch.get_num_threads()}), "
        f"stable-baselines3 {stable_baselines3.__version__}, python {platform.python_version()}; "
        f"MlpPolicy 64x64, ent_coef {ENT_COEF}, lr {LEARNING_RATE}, device cpu"
    )
    default_threads = torch.get_num_threads()
    rows: list[tuple[Setup, Result]] = []
    for setup in setups(bars, args.quick, args.episode_length):
        rows.append((setup, measure(setup, seconds, args.timesteps)))
    baseline = rows[0][1].timesteps_per_s  # FinRL as shipped: torch's default threads
    # The conservative reference: the FinRL setup with its faster torch thread count in this run.
    best_finrl = max(result.timesteps_per_s for setup, result in rows if setup.name == FINRL_NAME)

    header = (
        *("setup", "K", "n_steps/batch/epochs", "threads", "timesteps/s", "x FinRL", "x best FinRL"),
        *("env", "rollout", "update", "SB3 us/call", "load"),
    )
    lines = [
        (
            setup.name,
            str(setup.n_envs),
            f"{setup.n_steps}/{setup.batch_size}/{setup.n_epochs}",
            str(setup.torch_threads or default_threads),
            f"{result.timesteps_per_s:,.0f}",
            f"{result.timesteps_per_s / baseline:.1f}",
            f"{result.timesteps_per_s / best_finrl:.1f}",
            f"{result.env_share:.0%}",
            f"{result.rollout_share:.0%}",
            f"{result.train_share:.0%}",
            f"{result.policy_us_per_call:,.0f}",
            f"{result.load:.2f}",
        )
        for setup, result in rows
    ]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    for row in [header, *lines]:
        cells = [row[0].ljust(widths[0]), *(cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True))]
        print("  ".join(cells))
    batched = [(setup, result) for setup, result in rows if setup.n_envs > 1]
    setup, best = max(batched, key=lambda row: row[1].timesteps_per_s)
    met = best.timesteps_per_s >= GOAL_RATIO * best_finrl and best.env_share < GOAL_ENV_SHARE
    print(
        f"best batched: K {setup.n_envs}, {setup.n_steps}/{setup.batch_size}/{setup.n_epochs}, "
        f"{setup.torch_threads} torch thread(s): {best.timesteps_per_s / best_finrl:.1f}x the best FinRL row, "
        f"env share {best.env_share:.0%} -> goal (>= {GOAL_RATIO:.0f}x, env < {GOAL_ENV_SHARE:.0%}) "
        f"{'met' if met else 'not met'}; load average {load_average():.2f} at the end"
    )
    print(
        "x FinRL: against the first row (FinRL as shipped); x best FinRL: against the faster FinRL row. "
        "env / rollout / update: shares of the timed learn's wall time (env is part of rollout). "
        "SB3 us/call: rollout time outside the env per VecEnv step "
        "(policy forward pass, obs/action conversion, rollout buffer)."
    )


if __name__ == "__main__":
    main()
