"""Step an env with a policy and record what happened: values, costs, turnover, weights, holdings.

The common case::

    trajectory = run_policy(env, lambda obs: model.predict(obs, deterministic=True)[0], seed=0)
    equity = trajectory.equity("ppo")            # portfolio value per bar, first row = initial value

:func:`run_policy` works with every rltrade env (:class:`~rltrade.envs.portfolio.PortfolioEnv`,
:class:`~rltrade.envs.stock_trading.StockTradingEnv`,
:class:`~rltrade.envs.single_asset.SingleAssetEnv`), wrapped or not: it reads what it records
from the info dicts of ``reset`` and ``step`` and the closes from ``env.unwrapped.market``. The
first row of a :class:`Trajectory` is the state at ``reset`` (the bar of the first observation,
valued at the initial value), then one row per step, stamped with the bar whose close the step
marks to (see docs/envs.md, "Execution timing and the accounting convention").
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from tqdm.auto import tqdm

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value
class Trajectory:
    """What one episode of an env did, one row per timestamp.

    Attributes
    ----------
    timestamps:
        tz-naive UTC timestamps: the bar of the first observation (value = initial value), then
        one per step (the bar the step marked the portfolio to).
    values:
        Portfolio value per timestamp (float64).
    turnover:
        One-way turnover (traded notional / value at the fill) of the step ending at each
        timestamp; 0 at the first.
    costs:
        Cost paid in the step ending at each timestamp; 0 at the first.
    weights:
        ``[len, N + 1]`` value weights of the N symbols, then cash, at each timestamp (at that
        bar's close). They sum to 1 (all 0 for a bankrupt account).
    holdings:
        ``[len, N]`` shares / units / contracts held at each timestamp.
    symbols:
        The N symbols, in the column order of ``weights`` and ``holdings``.
    closes:
        ``[len, N]`` close of each symbol at each timestamp (the prices of :meth:`trades_frame`).
    multiplier:
        Currency units per unit of price and holding (a futures contract's multiplier; 1 for shares).
    final_info:
        The env's info dict after the last step (e.g. ``cash`` and ``shares``, to carry an account
        over to the next window).
    """

    timestamps: pd.DatetimeIndex
    values: FloatArray
    turnover: FloatArray
    costs: FloatArray
    weights: FloatArray
    holdings: FloatArray
    symbols: tuple[str, ...]
    closes: FloatArray
    multiplier: float = 1.0
    final_info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.timestamps)

    def _index(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.timestamps, name="timestamp")

    def equity(self, name: str) -> pd.Series:
        """The portfolio values as a Series indexed by ``timestamp``, named ``name``."""
        return pd.Series(self.values, index=self._index(), name=name)

    def turnover_series(self, name: str) -> pd.Series:
        """The per-step turnover as a Series indexed by ``timestamp``, named ``name``."""
        return pd.Series(self.turnover, index=self._index(), name=name)

    def weights_frame(self, name: str) -> pd.DataFrame:
        """One row per timestamp: ``timestamp``, ``strategy`` (= ``name``), one column per symbol, ``cash``."""
        frame = pd.DataFrame(self.weights, columns=[*self.symbols, "cash"])
        frame.insert(0, "strategy", name)
        frame.insert(0, "timestamp", self.timestamps)
        return frame

    def trades_frame(self, name: str) -> pd.DataFrame:
        """One row per (timestamp, symbol) whose holding changed in the step ending at that timestamp.

        Columns: ``timestamp``, ``strategy`` (= ``name``), ``symbol``, ``quantity`` (signed change
        of the holding), ``holding`` (after the trade), ``price`` and ``notional``. ``price`` is the
        **close of that bar**, not the fill price (which depends on the env's timing: the next
        open, or the close itself with ``next_close``); ``notional = quantity · price ·
        multiplier`` (signed: positive for buys). The holdings before the first step are those
        at reset (none).
        """
        change = np.diff(self.holdings, axis=0)
        rows, cols = np.nonzero(change)
        quantity = change[rows, cols]
        price = self.closes[rows + 1, cols]
        return pd.DataFrame(
            {
                "timestamp": self.timestamps[rows + 1],
                "strategy": name,
                "symbol": np.asarray(self.symbols, dtype=object)[cols],
                "quantity": quantity,
                "holding": self.holdings[rows + 1, cols],
                "price": price,
                "notional": quantity * price * self.multiplier,
            }
        )


class _Recorder:
    """Collects the rows of a :class:`Trajectory` from info dicts (plain lists; numpy at the end)."""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        base = env.unwrapped
        market = getattr(base, "market", None)
        if market is None:
            raise TypeError(f"run_policy needs an rltrade env (with .market); got {type(base).__name__}")
        self.market = market
        contract = getattr(base, "contract", None)
        self.multiplier = 1.0 if contract is None else float(contract.multiplier)
        self.stamps: list[np.datetime64] = []
        self.values: list[float] = []
        self.turnover: list[float] = []
        self.costs: list[float] = []
        self.weights: list[FloatArray] = []
        self.holdings: list[FloatArray] = []
        self.closes: list[FloatArray] = []

    def add(self, info: Mapping[str, Any], first: bool = False) -> None:
        value = float(info["portfolio_value"])
        bar = int(info["bar"])
        if "position" in info:  # SingleAssetEnv: one asset, a position in units / contracts
            holdings = np.array([float(info["position"])])
            close = np.array([float(info["price"])])
        else:  # PortfolioEnv, StockTradingEnv: shares of every symbol
            holdings = np.array(info["shares"], dtype=np.float64)
            close = self.market.close[bar]
        if "weights" in info:
            weights = np.array(info["weights"], dtype=np.float64)
        else:
            weights = np.zeros(len(holdings) + 1)
            if value > 0.0:
                weights[:-1] = holdings * close * self.multiplier / value
                weights[-1] = 1.0 - weights[:-1].sum()  # cash (for futures: value minus the notional held)
        self.stamps.append(np.datetime64(info["timestamp"], "ns"))
        self.values.append(value)
        self.turnover.append(0.0 if first else float(info["turnover"]))
        self.costs.append(0.0 if first else float(info["cost"]))
        self.weights.append(weights)
        self.holdings.append(holdings)
        self.closes.append(np.array(close, dtype=np.float64))

    def trajectory(self) -> Trajectory:
        return Trajectory(
            timestamps=pd.DatetimeIndex(np.array(self.stamps, dtype="datetime64[ns]"), name="timestamp"),
            values=np.array(self.values, dtype=np.float64),
            turnover=np.array(self.turnover, dtype=np.float64),
            costs=np.array(self.costs, dtype=np.float64),
            weights=np.vstack(self.weights),
            holdings=np.vstack(self.holdings),
            symbols=tuple(str(s) for s in self.market.symbols),
            closes=np.vstack(self.closes),
            multiplier=self.multiplier,
        )


def run_policy(
    env: gym.Env[Any, Any],
    policy: Callable[[Any], Any],
    *,
    seed: int | None = None,
    options: dict[str, Any] | None = None,
    progress: bool | str = False,
) -> Trajectory:
    """Run one episode of ``env`` with ``policy`` and record it.

    ``env.reset(seed=seed, options=options)``, then ``env.step(policy(obs))`` until the episode
    terminates or is truncated. The info of the reset and of every step become the rows of the
    returned :class:`Trajectory`.

    Parameters
    ----------
    env:
        An rltrade env, possibly wrapped (the market is read from ``env.unwrapped``).
    policy:
        Maps an observation to an action (an array, or an int for discrete actions).
    seed, options:
        Passed to ``env.reset``.
    progress:
        True, or a label, shows a tqdm bar over the steps of the episode.
    """
    recorder = _Recorder(env)
    obs, info = env.reset(seed=seed, options=options)
    recorder.add(info, first=True)
    bar = None
    if progress:
        total = max(int(recorder.market.last) - int(info["bar"]), 0)
        bar = tqdm(
            total=total, desc=progress if isinstance(progress, str) else None, unit="step", disable=None, leave=False
        )
    try:
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(policy(obs))
            recorder.add(info)
            done = bool(terminated or truncated)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return dataclasses.replace(recorder.trajectory(), final_info=dict(info))


def random_policy(action_space: gym.Space[Any], seed: int) -> Callable[[Any], Any]:
    """A policy that ignores the observation and samples a copy of ``action_space`` seeded with ``seed``.

    The copy keeps the env's own space (and its random state) untouched, so the same seed gives
    the same actions every time.
    """
    space = copy.deepcopy(action_space)
    space.seed(seed)

    def policy(obs: Any) -> Any:
        return space.sample()

    return policy
