"""Stable-Baselines3 ``VecEnv`` over a :class:`~rltrade.envs.batched.BatchedCore`: K copies, one kernel call per step.

::

    from rltrade.envs.vec import BatchedStockTradingEnv

    venv = BatchedStockTradingEnv(bars, n_envs=64, random_start=True, episode_length=252)
    venv.seed(0)
    obs = venv.reset()                      # [64, state size]
    obs, rewards, dones, infos = venv.step(actions)

Copies auto-reset like SB3's ``DummyVecEnv``: when copy k's episode ends, ``infos[k]`` gets
``terminal_observation`` (and ``TimeLimit.truncated``) and ``obs[k]`` is the first observation
of its next episode. Copy k is seeded with ``seed + k``, so it reproduces a scalar env reset
with that seed, bit for bit. Per-step infos are empty dicts unless ``full_info=True`` (building
K dicts per step would cost more than the step itself); the accounting arrays are always
available as :meth:`BatchedVecEnv.state`.

This module imports Stable-Baselines3 (and so torch); :mod:`rltrade.envs` does not import it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numba
import numpy as np
from gymnasium.utils import seeding
from numpy.typing import NDArray
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

from rltrade.envs.batched import TRUNCATED, BatchedCore, CoreEnv
from rltrade.envs.portfolio import PortfolioEnv
from rltrade.envs.stock_trading import StockTradingEnv
from rltrade.envs.timing import EnvConfigError


class BatchedVecEnv(VecEnv):
    """K copies of a :class:`~rltrade.envs.batched.CoreEnv`, stepped together (SB3 ``VecEnv``).

    Parameters
    ----------
    env:
        A scalar env; its market arrays and settings are shared by the copies.
    n_envs:
        K, the number of copies.
    full_info:
        Put the scalar env's info (value, cash, shares, costs, ...) in every ``infos[k]`` on every
        step; off by default for speed.
    threads:
        Spread the copies over numba's threads (OpenMP). About 1.5x faster on 2 idle CPUs, but
        OpenMP threads spin while they wait: when another process or torch's own thread pool
        competes for the CPUs, a step can become 10-50x slower. Off by default; turn it on for a
        machine dedicated to stepping envs. Same bits either way.
    """

    def __init__(self, env: CoreEnv, n_envs: int, full_info: bool = False, threads: bool = False) -> None:
        self.template = env
        self.core: BatchedCore = env.make_core(n_envs)
        self.core.parallel = bool(threads) and numba.get_num_threads() > 1
        self.full_info = bool(full_info)
        self.render_mode = None
        super().__init__(n_envs, self.core.observation_space, self.core.action_space)
        self._rngs: list[np.random.Generator] = [seeding.np_random(None)[0] for _ in range(n_envs)]
        self._actions: NDArray[np.float64] | None = None
        self._needs_reset = True

    # ------------------------------------------------------------------ VecEnv API
    def reset(self) -> VecEnvObs:
        """Reset every copy (with the seeds of :meth:`seed` and options of :meth:`set_options`, if set)."""
        for k, seed in enumerate(self._seeds):
            if seed is not None:
                self._rngs[k] = seeding.np_random(seed)[0]
        options = [opts or None for opts in self._options]
        self.core.reset(np.arange(self.num_envs), self._rngs, options)
        self.reset_infos = [self.core.info(k) for k in range(self.num_envs)]
        self._reset_seeds()
        self._reset_options()
        self._needs_reset = False
        return self.core.obs.copy()

    def step_async(self, actions: np.ndarray) -> None:
        """Store the actions (``[K, *action_shape]``) for :meth:`step_wait`."""
        self._actions = np.asarray(actions, dtype=np.float64).reshape(self.num_envs, -1)

    def step_wait(self) -> VecEnvStepReturn:
        """Step every copy; copies whose episode ended are reset (``terminal_observation`` in their info)."""
        if self._needs_reset:
            raise EnvConfigError("call reset() before step()")
        if self._actions is None:
            raise EnvConfigError("call step_async(actions) before step_wait()")
        core = self.core
        core.step(self._actions)
        self._actions = None
        flags = core.flags
        dones = flags != 0
        rewards = np.array(core.rewards, dtype=np.float64)
        if self.full_info:
            infos: list[dict[str, Any]] = [core.info(k) for k in range(self.num_envs)]
        else:
            infos = [{} for _ in range(self.num_envs)]
        if dones.any():
            ended = np.flatnonzero(dones)
            for k in map(int, ended):
                infos[k]["terminal_observation"] = core.obs[k].copy()
                infos[k]["TimeLimit.truncated"] = bool(flags[k] == TRUNCATED)
                if not self.full_info:
                    infos[k]["final_info"] = core.info(k)
            core.reset(ended, [self._rngs[k] for k in ended])
            for k in map(int, ended):
                self.reset_infos[k] = core.info(k)
        return core.obs.copy(), rewards, dones, infos

    def state(self) -> dict[str, NDArray[Any]]:
        """The accounting arrays of every copy (fresh copies): bar, value, cash, shares, costs, turnover."""
        core = self.core
        out: dict[str, NDArray[Any]] = {
            "bar": core.t.copy(),
            "portfolio_value": core.value.copy(),
            "cost": core.step_cost.copy(),
            "total_cost": core.total_cost.copy(),
            "turnover": core.turnover.copy(),
        }
        for name in ("cash", "shares"):
            if hasattr(core, name):
                out[name] = np.array(getattr(core, name))
        return out

    def close(self) -> None:
        """Nothing to release."""

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The template env's attribute, once per selected copy."""
        return [getattr(self.template, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Not supported: the copies share one configuration."""
        raise EnvConfigError(f"cannot set {attr_name!r} on copies of a batched env; build a new one instead")

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        """Call a method of the template env, once per selected copy."""
        method = getattr(self.template, method_name)
        return [method(*method_args, **method_kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        """The copies are never wrapped."""
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        """No rendering."""
        return [None for _ in range(self.num_envs)]


class BatchedPortfolioEnv(BatchedVecEnv):
    """K copies of :class:`~rltrade.envs.portfolio.PortfolioEnv` as an SB3 ``VecEnv``.

    Parameters
    ----------
    bars:
        Canonical bars.
    n_envs:
        K, the number of copies.
    full_info, threads:
        See :class:`BatchedVecEnv`.
    **kwargs:
        The parameters of :class:`~rltrade.envs.portfolio.PortfolioEnv` (``random_start=True``
        gives the copies different start dates).
    """

    def __init__(
        self, bars: Any, n_envs: int = 8, full_info: bool = False, threads: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(PortfolioEnv(bars, **kwargs), n_envs, full_info, threads)


class BatchedStockTradingEnv(BatchedVecEnv):
    """K copies of :class:`~rltrade.envs.stock_trading.StockTradingEnv` as an SB3 ``VecEnv``.

    Parameters
    ----------
    bars:
        Canonical bars.
    n_envs:
        K, the number of copies.
    full_info, threads:
        See :class:`BatchedVecEnv`.
    **kwargs:
        The parameters of :class:`~rltrade.envs.stock_trading.StockTradingEnv`.
    """

    def __init__(
        self, bars: Any, n_envs: int = 8, full_info: bool = False, threads: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(StockTradingEnv(bars, **kwargs), n_envs, full_info, threads)
