"""The public envs: :class:`SingleAssetEnv` and its batched ``VecEnv`` form (built on first use)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, cast

import gymnasium as gym
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from rltrade.envs.batched import BatchedCore, CoreEnv
from rltrade.envs.costs import CostModel, kernel_params, make_cost
from rltrade.envs.market import Market
from rltrade.envs.rewards import Reward, make_reward
from rltrade.envs.single_asset.arrays import as_utc, build_arrays, feature_names, select_symbol
from rltrade.envs.single_asset.config import (
    DEFAULT_INITIAL_VALUE,
    RETURN_BOUND,
    STATE_COLUMNS,
    CoreConfig,
    FuturesContract,
    StateName,
)
from rltrade.envs.single_asset.core import SingleAssetCore
from rltrade.envs.timing import EnvConfigError, ExecutionTiming, resolve_timing

log = logging.getLogger("rltrade.envs.single_asset")


def _column_bounds(columns: Sequence[str]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Observation bounds per column: signals in [0, 1], position in [-1, 1], returns in ±RETURN_BOUND."""
    low = np.full(len(columns), -RETURN_BOUND, dtype=np.float32)
    high = np.full(len(columns), RETURN_BOUND, dtype=np.float32)
    for i, name in enumerate(columns):
        if name.startswith("neely_"):
            low[i], high[i] = 0.0, 1.0
        elif name == "position":
            low[i], high[i] = -1.0, 1.0
    return low, high


class SingleAssetEnv(CoreEnv):
    """Trade one asset short / flat / long on bars (the corrected ``FinancialEnv``); see the module docstring.

    Parameters
    ----------
    bars:
        Canonical bars (``timestamp``, ``close``; ``open`` for next_open fills; ``volume`` for the
        Neely OBV signals) of one symbol, or of several with ``symbol`` given.
    state:
        ``"0"`` last n log price differences (n, 1); ``"1"`` the 14 Neely signals (n, 14);
        ``"2"`` signals + position + open-position return (n, 16); ``"3"`` log difference +
        signals + position + open-position return (n, 17); ``"cheat"`` the *next* n log
        differences (n, 1): LOOKAHEAD, only for testing that an agent can learn. Columns:
        :data:`STATE_COLUMNS`.
    reward:
        ``"profit"``, ``"log_return"``, ``"differential_sharpe"``, ``"downside_deviation"``,
        ``"sortino_change"`` or a :class:`~rltrade.envs.rewards.Reward` object.
    look_back:
        Rows n of the observation window (default 10).
    forward_reward:
        False: reward the previous position's P&L up to this fill minus this trade's cost
        (causal). True: reward the new position's P&L up to the next fill minus this trade's cost
        (uses the price after the observation: a training signal, not an observation).
    by_day:
        One episode per session (calendar date in ``session_tz``), flattened at the session close
        with its cost charged; False: continuous trading.
    contract:
        A :class:`FuturesContract` (multiplier, margin); None trades shares / units.
    cost:
        A :class:`~rltrade.envs.costs.LinearCost` (``BpsCost``, ``PerShareCost``, ``SpreadCost``,
        ``NoCost`` or a combination; the step kernel inlines its formula), a number of basis points
        per side, or None (free). Default 10: ``BpsCost(10)``. Costs apply to the traded notional
        ``|Δposition|·price·multiplier`` and the traded units ``|Δposition|``.
    timing:
        An :class:`~rltrade.envs.timing.ExecutionTiming` or its name; None: ``next_open`` when the
        bars have opens, else ``next_close``. ``same_close`` is optimistic (the seed's and FinRL's).
    continuous:
        Box action: a target position in [-1, 1] instead of {short, flat, long}.
    initial_value:
        Starting cash of every episode.
    units:
        Shares / contracts held at position ±1. None: 1 contract with a ``contract``; otherwise
        ``0.5·initial_value / close`` at the episode's first bar. Contracts are whole numbers.
    start, end:
        Trading range (inclusive; a date alone as ``end`` means that whole day). Bars before
        ``start`` serve as indicator history; bars after ``end`` are dropped before anything is computed.
    symbol:
        Symbol to trade when the bars have several.
    episode_length:
        Continuous mode: episodes of this many steps, walking through the range window by window
        (default: one episode to the end of the range).
    random_start:
        Start each episode at a random bar (continuous) or session (by_day), drawn from the env's
        seeded generator; otherwise episodes start at the first bar, or walk through the sessions /
        windows in order (a seeded reset starts the walk over).
    session_tz:
        Time zone whose calendar dates define the sessions of ``by_day`` (default UTC).
    eta:
        Adaptation rate of ``differential_sharpe`` / ``downside_deviation`` given by name.
    """

    def __init__(
        self,
        bars: pd.DataFrame,
        state: StateName | str = "3",
        reward: str | Reward = "differential_sharpe",
        look_back: int = 10,
        forward_reward: bool = False,
        by_day: bool = False,
        contract: FuturesContract | None = None,
        cost: CostModel | float | None = 10.0,
        timing: ExecutionTiming | str | None = None,
        continuous: bool = False,
        initial_value: float = DEFAULT_INITIAL_VALUE,
        units: float | None = None,
        start: Any = None,
        end: Any = None,
        symbol: str | None = None,
        episode_length: int | None = None,
        random_start: bool = False,
        session_tz: str = "UTC",
        eta: float | None = None,
    ) -> None:
        state = str(state)
        if state not in STATE_COLUMNS:
            raise EnvConfigError(f"unknown state {state!r}; use one of {', '.join(STATE_COLUMNS)}")
        if int(look_back) < 1:
            raise EnvConfigError(f"look_back must be >= 1, got {look_back}")
        if by_day and episode_length is not None:
            raise EnvConfigError("episode_length applies to continuous episodes; with by_day=True an episode is a day")
        if not np.isfinite(initial_value) or initial_value <= 0:
            raise EnvConfigError(f"initial_value must be > 0, got {initial_value}")
        if units is not None and (not np.isfinite(units) or units <= 0):
            raise EnvConfigError(f"units must be > 0, got {units}")
        if contract is not None and units is not None and float(units) != round(float(units)):
            raise EnvConfigError(f"units must be a whole number of contracts, got {units}")
        self.state_name = state
        self.look_back = int(look_back)
        self.forward_reward = bool(forward_reward)
        self.by_day = bool(by_day)
        self.contract = contract
        self.continuous = bool(continuous)
        self.lookahead = state == "cheat"
        """True for ``state="cheat"``: the observations contain future prices."""

        frame, self.symbol = select_symbol(bars, symbol)
        if end is not None:
            end_ts = as_utc(end)
            if isinstance(end, str) and len(end.strip()) <= 10:  # a date: the whole day
                end_ts = end_ts + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")
            frame = frame.loc[(frame["timestamp"] <= end_ts).to_numpy()].reset_index(drop=True)
        names = feature_names(state)
        params = {"n_diffs": self.look_back} if "deng_log_diffs" in names else {}
        self._market = Market(frame, names, feature_params=params)
        self.timing = resolve_timing(timing, self._market.has_open)
        self.cost_model = make_cost(cost)
        reward_params: dict[str, float] = {} if eta is None else {"eta": float(eta)}
        self.reward_fn = make_reward(reward, "log_return", **reward_params)
        self._arrays = build_arrays(
            self._market,
            state=state,
            look_back=self.look_back,
            timing=self.timing,
            cost=self.cost_model,
            forward_reward=self.forward_reward,
            by_day=self.by_day,
            session_tz=session_tz,
            start=start,
            episode_length=episode_length,
        )
        self._config = CoreConfig(
            state=state,
            look_back=self.look_back,
            forward_reward=self.forward_reward,
            by_day=self.by_day,
            continuous=self.continuous,
            multiplier=1.0 if contract is None else float(contract.multiplier),
            margin_rate=1.0 if contract is None else contract.margin_rate,
            maintenance_rate=1.0 if contract is None else contract.maintenance,
            integer_units=contract is not None,
            units=(1.0 if contract is not None else None) if units is None else float(units),
            initial_value=float(initial_value),
            random_start=bool(random_start),
            merge_final_fill=self.by_day and self.timing.fill_field == "close" and self.timing.fill_offset == 1,
            has_contract=contract is not None,
            cheat=self.lookahead,
            cost=kernel_params(self.cost_model),
        )
        if self.lookahead:
            log.warning("SingleAssetEnv(state='cheat') observes FUTURE prices: use it only to test that agents learn")
        low, high = _column_bounds(STATE_COLUMNS[state])
        self._observation_space = gym.spaces.Box(
            low=np.tile(low, (self.look_back, 1)), high=np.tile(high, (self.look_back, 1)), dtype=np.float32
        )
        self._action_space: gym.spaces.Space[Any] = (
            gym.spaces.Box(low=-1.0, high=1.0, shape=(1,), dtype=np.float32)
            if self.continuous
            else gym.spaces.Discrete(3)
        )
        self._install(self.make_core(1))

    def make_core(self, n_copies: int) -> BatchedCore:
        """A core with ``n_copies`` copies of this env (shares the market arrays)."""
        return SingleAssetCore(
            self._market,
            self._arrays,
            self._config,
            self.cost_model,
            self.reward_fn,
            n_copies,
            self._observation_space,
            self._action_space,
        )

    @property
    def columns(self) -> tuple[str, ...]:
        """Names of the observation columns (see :data:`STATE_COLUMNS`)."""
        return STATE_COLUMNS[self.state_name]

    @property
    def episode_starts(self) -> NDArray[np.datetime64]:
        """Timestamps of the first decision bar of each episode start (sessions with ``by_day``; bars otherwise)."""
        return self._market.times[self._arrays.starts]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.float32], dict[str, Any]]:
        """Start an episode.

        Parameters
        ----------
        seed:
            Seeds the generator of ``random_start`` and restarts the walk through the sessions / windows.
        options:
            ``{"start": timestamp or bar index}``: the first episode start at or after it (then walk on).
        """
        if seed is not None:
            cast(SingleAssetCore, self._core).episode[:] = 0
        return super().reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        """Trade to the action's target position (0 short, 1 flat, 2 long; or a position in [-1, 1]), advance a bar."""
        return super().step(np.asarray(action))

    def __repr__(self) -> str:
        cheat = " [LOOKAHEAD: observes future prices]" if self.lookahead else ""
        contract = "" if self.contract is None else f", contract={self.contract}"
        return (
            f"SingleAssetEnv({self.symbol}, state={self.state_name!r}{cheat}, reward={self.reward_fn!r}, "
            f"look_back={self.look_back}, forward_reward={self.forward_reward}, by_day={self.by_day}, "
            f"timing={self.timing.name}, cost={self.cost_model!r}{contract}, continuous={self.continuous})"
        )

    __str__ = __repr__


def batched_class() -> type:
    """Define :class:`BatchedSingleAssetEnv` on first use: its base imports Stable-Baselines3 (and torch)."""
    from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs

    from rltrade.envs.vec import BatchedVecEnv

    class BatchedSingleAssetEnv(BatchedVecEnv):
        """K independent :class:`SingleAssetEnv` copies stepped in one numpy call, as a Stable-Baselines3 ``VecEnv``.

        Copy k starts at episode start ``start_offsets[k]`` (a bar offset in continuous mode, a
        session with ``by_day``, a window with ``episode_length``) and walks on from there, or draws
        random starts from its own generator (seeded ``seed + k`` by :meth:`seed`) with
        ``random_start=True``. Finished copies reset automatically (SB3 semantics).

        Parameters
        ----------
        bars:
            As for :class:`SingleAssetEnv`.
        n_envs:
            K, the number of copies.
        full_info:
            Put the full info dict of each copy in ``infos`` on every step (off by default for speed).
        start_offsets:
            Index into :attr:`SingleAssetEnv.episode_starts` of each copy's first episode; default:
            spread evenly.
        **kwargs:
            The parameters of :class:`SingleAssetEnv`.
        """

        def __init__(
            self,
            bars: pd.DataFrame,
            n_envs: int = 8,
            full_info: bool = False,
            start_offsets: Sequence[int] | None = None,
            **kwargs: Any,
        ) -> None:
            super().__init__(SingleAssetEnv(bars, **kwargs), n_envs, full_info)
            core = cast(SingleAssetCore, self.core)
            n_starts = len(core.arrays.starts)
            if start_offsets is None:
                start_offsets = [k * (n_starts // n_envs) for k in range(n_envs)]
            if len(start_offsets) != n_envs:
                raise EnvConfigError(f"start_offsets has {len(start_offsets)} entries for {n_envs} copies")
            core.offset[:] = np.asarray(start_offsets, dtype=np.int64) % n_starts

        def reset(self) -> VecEnvObs:
            """Reset every copy; a copy given a seed by :meth:`seed` restarts its walk through the episode starts."""
            core = cast(SingleAssetCore, self.core)
            for k, seed in enumerate(self._seeds):
                if seed is not None:
                    core.episode[k] = 0
            return super().reset()

    return BatchedSingleAssetEnv
