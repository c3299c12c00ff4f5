"""K independent copies of an env stepped in one call, and the Gymnasium env built on one copy.

Every bar-based rltrade env is a :class:`BatchedCore`: the state of K copies lives in numpy
arrays of leading size K, and one call (a numba kernel) steps them all. The Gymnasium env
(:class:`CoreEnv`) is the core with K = 1; the Stable-Baselines3 ``VecEnv``
(:class:`rltrade.envs.vec.BatchedVecEnv`) is the core with K copies. Both run the same
kernel, so a scalar env and copy k of a batched env give the same bits for the same seed and
actions.

To plug a new env into this machinery, subclass :class:`BatchedCore` (implement
:meth:`~BatchedCore._reset_state`, :meth:`~BatchedCore._step_state`, :meth:`~BatchedCore.info`
and the two spaces) and :class:`CoreEnv` (implement :meth:`~CoreEnv.make_core`).
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from rltrade.envs.market import Market
from rltrade.envs.timing import EnvConfigError

RUNNING, TERMINATED, TRUNCATED = 0, 1, 2
"""Values of :attr:`BatchedCore.flags` after a step."""

ERROR_MESSAGES: dict[int, str] = {
    1: "step() called on a finished episode; call reset() first",
    2: "the action contains NaN or inf",
}


class BatchedCore(ABC):
    """State and step of K independent copies of an env over one :class:`Market`.

    After :meth:`step`, :attr:`obs` (``[K, *obs_shape]``), :attr:`rewards` (``[K]`` float64),
    :attr:`flags` (``[K]`` int8: :data:`RUNNING`, :data:`TERMINATED`, :data:`TRUNCATED`) and the
    accounting arrays hold the new values.

    Episodes. A copy starts at bar ``first`` of the market (or a random bar with
    ``random_start``, or ``options["start"]`` of :meth:`reset`) and ends when it reaches the last
    bar (terminated: the data is over) or after ``episode_length`` steps (truncated).

    Parameters
    ----------
    market:
        The aligned arrays.
    n_copies:
        K.
    reward:
        A reward object (see :mod:`rltrade.envs.rewards`); copied, so envs never share one.
    reward_scaling:
        Factor applied to every reward.
    random_start:
        Start each episode at a random bar (drawn with the copy's random generator).
    episode_length:
        Maximum number of steps per episode (None: until the last bar).
    initial_value:
        The value of the account at the start of an episode.
    """

    observation_space: gym.spaces.Box
    action_space: gym.spaces.Box

    def __init__(
        self,
        market: Market,
        n_copies: int,
        reward: Any,
        reward_scaling: float = 1.0,
        random_start: bool = False,
        episode_length: int | None = None,
        initial_value: float = 1.0,
    ) -> None:
        if n_copies < 1:
            raise EnvConfigError(f"the number of copies must be >= 1, got {n_copies}")
        span = market.last - market.first
        if episode_length is not None and not 1 <= episode_length <= span:
            raise EnvConfigError(
                f"episode_length must be between 1 and {span} (the usable bars after warm-up), got {episode_length}"
            )
        self.market = market
        self.n_copies = n_copies
        self.parallel = False  # True: kernels spread the copies over numba's threads (see BatchedVecEnv)
        self.reward = copy.deepcopy(reward)
        self.reward_scaling = float(reward_scaling)
        self.random_start = bool(random_start)
        self.episode_length = episode_length
        self.initial_value = float(initial_value)
        k = n_copies
        self.t = np.full(k, market.first, dtype=np.int64)
        self.t_end = np.full(k, market.first, dtype=np.int64)  # == t: every copy must be reset first
        self.value = np.full(k, self.initial_value)
        self.value_prev = np.full(k, self.initial_value)
        self.step_cost = np.zeros(k)
        self.total_cost = np.zeros(k)
        self.turnover = np.zeros(k)
        self.rewards = np.zeros(k)
        self.flags = np.zeros(k, dtype=np.int8)
        self.obs = np.zeros((k, *self.observation_space.shape), dtype=np.float32)

    # ------------------------------------------------------------------ to implement
    @abstractmethod
    def _reset_state(self, copies: NDArray[np.intp]) -> None:
        """Put ``copies`` in their initial state at bar ``self.t[copies]`` and write their observations."""

    @abstractmethod
    def _step_state(self, actions: NDArray[np.float64]) -> int:
        """Advance every copy one bar (a kernel call); return 0 or an :data:`ERROR_MESSAGES` code."""

    @abstractmethod
    def info(self, k: int) -> dict[str, Any]:
        """The info dict of copy ``k`` (plain Python floats and fresh arrays)."""

    # ------------------------------------------------------------------ shared
    def episode_bounds(self, rng: np.random.Generator, options: Mapping[str, Any] | None) -> tuple[int, int]:
        """The (start, end) bars of a new episode.

        ``options["start"]`` (a timestamp or bar index) overrides the start; otherwise it is the
        market's first usable bar, or a random bar with ``random_start``.
        """
        market = self.market
        span = self.episode_length or 1
        if options and options.get("start") is not None:
            start = market.index_of(options["start"])
            if not market.first <= start <= market.last - span:
                raise EnvConfigError(
                    f"reset option start={options['start']!r} is bar {start}; it must lie between bar "
                    f"{market.first} ({market.timestamp(market.first)}) and bar {market.last - span} "
                    f"({market.timestamp(market.last - span)}) to leave {span} step(s)"
                )
        elif self.random_start:
            start = int(rng.integers(market.first, market.last - span + 1))
        else:
            start = market.first
        end = market.last if self.episode_length is None else min(start + self.episode_length, market.last)
        return start, end

    def reset(
        self,
        copies: Sequence[int] | NDArray[np.intp],
        rngs: Sequence[np.random.Generator],
        options: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Start new episodes for ``copies`` (each with its own random generator and options)."""
        index = np.asarray(copies, dtype=np.intp)
        for n, k in enumerate(index):
            start, end = self.episode_bounds(rngs[n], options[n] if options else None)
            self.t[k] = start
            self.t_end[k] = end
        self.value[index] = self.initial_value
        self.value_prev[index] = self.initial_value
        self.step_cost[index] = 0.0
        self.total_cost[index] = 0.0
        self.turnover[index] = 0.0
        self.rewards[index] = 0.0
        self.flags[index] = RUNNING
        self._reset_state(index)
        if len(index) == self.n_copies:
            self.reward.reset((self.n_copies,))
        else:
            mask = np.zeros(self.n_copies, dtype=bool)
            mask[index] = True
            self.reward.reset((self.n_copies,), where=mask)

    def step(self, actions: NDArray[Any]) -> None:
        """Step every copy with ``actions`` (``[K, *action_shape]``); results land in the arrays."""
        code = self._step_state(np.ascontiguousarray(actions, dtype=np.float64))
        if code:
            raise EnvConfigError(ERROR_MESSAGES.get(code, f"env kernel error {code}"))
        rewards = self.reward(self.value_prev, self.value)
        if self.reward_scaling != 1.0:
            rewards = rewards * self.reward_scaling
        self.rewards = rewards

    def common_info(self, k: int) -> dict[str, Any]:
        """Keys every env's info has: bar index and timestamp, value, costs, turnover."""
        i = int(self.t[k])
        return {
            "bar": i,
            "timestamp": self.market.times[i],
            "portfolio_value": float(self.value[k]),
            "cost": float(self.step_cost[k]),
            "total_cost": float(self.total_cost[k]),
            "turnover": float(self.turnover[k]),
        }


class CoreEnv(gym.Env[NDArray[Any], Any]):
    """A Gymnasium env run by a :class:`BatchedCore` with one copy.

    Subclasses build the core in ``__init__`` with :meth:`make_core` and store it as ``_core``.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - gymnasium's convention
    _core: BatchedCore

    @abstractmethod
    def make_core(self, n_copies: int) -> BatchedCore:
        """A new core with ``n_copies`` copies of this env (same market arrays and settings)."""

    def _install(self, core: BatchedCore) -> None:
        self._core = core
        self.observation_space = core.observation_space
        self.action_space = core.action_space

    @property
    def market(self) -> Market:
        """The market arrays the env trades."""
        return self._core.market

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.float32], dict[str, Any]]:
        """Start an episode.

        Parameters
        ----------
        seed:
            Seeds the env's random generator (used by ``random_start``).
        options:
            ``{"start": timestamp or bar index}`` starts the episode at that bar.
        """
        super().reset(seed=seed)
        self._core.reset([0], [self.np_random], [options])
        return self._core.obs[0].copy(), self._core.info(0)

    def step(self, action: NDArray[Any]) -> tuple[NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        """Apply ``action`` (chosen after the last observed bar); see the env's docstring for the timing."""
        core = self._core
        core.step(np.array(action, dtype=np.float64, ndmin=2))  # [1, n]: one copy, already what the kernel takes
        flag = int(core.flags[0])
        return core.obs[0].copy(), float(core.rewards[0]), flag == TERMINATED, flag == TRUNCATED, core.info(0)
