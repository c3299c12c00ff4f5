"""Baselines on the agent's dates, costs and timing.

The weight baselines run through :class:`~rltrade.envs.portfolio.PortfolioEnv` in
``action_mode="weights"``: the same fills, costs and accounting as an agent trained on that env,
so a comparison measures the policy and nothing else. Pass the agent's first and last timestamps
as ``start`` and ``end`` (and the same bars, cost, timing and initial value)::

    baselines = weight_baselines(bars, start=agent.timestamps[0], end=agent.timestamps[-1],
                                 cost=BpsCost(10), timing="next_close", initial_value=1e6)
    equity = pd.concat([t.equity(name) for name, t in baselines.items()], axis=1)

- ``buy_and_hold``: equal weights (no cash) at the first step, then hold: the holdings drift.
- ``equal_weight``: equal weights (no cash) at every step, rebalanced every bar.
- ``min_variance``: skfolio's ``MeanRisk()`` (minimum variance, long-only, fully invested) fitted
  at the decision bar t on the simple returns of the ``min_variance_window`` bars ending at t,
  refitted every ``refit_every`` steps and held (drifting) in between.
- ``random``: :func:`random_agent`, uniform random actions on the agent's own env.
- ``index``: :func:`index_baseline`, a market index normalised to the initial value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from rltrade.backtest.runner import Trajectory, random_policy, run_policy
from rltrade.config import BASELINES, WEIGHT_BASELINES
from rltrade.envs.costs import CostModel
from rltrade.envs.market import Market
from rltrade.envs.portfolio import PortfolioEnv
from rltrade.envs.timing import ExecutionTiming
from rltrade.errors import DataValidationError

log = logging.getLogger(__name__)

BASELINE_NAMES: tuple[str, ...] = BASELINES
"""Every baseline; :func:`weight_baselines` runs the weight baselines (:data:`WEIGHT_BASELINES`)."""

MAX_INDEX_GAP = 5
"""Most consecutive timestamps :func:`index_baseline` fills with the last earlier index level."""

Policy = Callable[[Any], NDArray[np.float64]]


def _equal_weights(n: int) -> NDArray[np.float64]:
    """The weights-mode action for 1/N in every asset and no cash."""
    action = np.ones(n + 1)
    action[n] = 0.0
    return action


def _buy_and_hold(n: int) -> Policy:
    buy, hold = _equal_weights(n), np.zeros(n + 1)
    calls = 0

    def policy(obs: Any) -> NDArray[np.float64]:
        nonlocal calls
        calls += 1
        return buy if calls == 1 else hold

    return policy


def _equal_weight(n: int) -> Policy:
    action = _equal_weights(n)
    return lambda obs: action


def min_variance_weights(returns: NDArray[np.float64]) -> NDArray[np.float64]:
    """Long-only, fully invested minimum-variance weights: skfolio's ``MeanRisk()`` fitted on ``returns``.

    Parameters
    ----------
    returns:
        ``[bars, assets]`` simple returns.
    """
    from skfolio.optimization import MeanRisk  # imported here: cvxpy is slow to import

    weights: NDArray[np.float64] = np.asarray(MeanRisk().fit(returns).weights_, dtype=np.float64)
    return weights


def _min_variance(market: Market, window: int, refit_every: int) -> Policy:
    """Refit at steps 0, refit_every, 2·refit_every, ... on the closes ``t - window .. t`` of decision bar t."""
    from skfolio.exceptions import SkfolioError

    n = market.n_symbols
    hold = np.zeros(n + 1)
    previous: NDArray[np.float64] | None = None
    calls = 0

    def policy(obs: Any) -> NDArray[np.float64]:
        nonlocal calls, previous
        step = calls
        calls += 1
        if step % refit_every:
            return hold
        t = market.first + step  # the env starts at market.first and moves one bar per step
        closes = market.close[t - window : t + 1]
        returns = closes[1:] / closes[:-1] - 1.0
        try:
            if not np.isfinite(returns).all():
                raise ValueError("non-finite returns in the window")
            weights = min_variance_weights(returns)
            if not (np.isfinite(weights).all() and weights.sum() > 0):
                raise ValueError(f"unusable weights {weights}")
        except (SkfolioError, ValueError) as error:
            fallback = "equal weights" if previous is None else "the previous weights"
            log.warning(
                "min_variance: the fit at %s failed (%s); using %s", market.timestamp(t).date(), error, fallback
            )
            weights = np.full(n, 1.0 / n) if previous is None else previous
        previous = weights
        return np.append(weights, 0.0)

    return policy


def weight_baselines(
    bars: pd.DataFrame,
    *,
    start: pd.Timestamp | str,
    end: pd.Timestamp | str | None,
    cost: CostModel | float | None,
    timing: str | ExecutionTiming | None,
    initial_value: float,
    names: Sequence[str] = WEIGHT_BASELINES,
    min_variance_window: int = 252,
    refit_every: int = 21,
    progress: bool = False,
) -> dict[str, Trajectory]:
    """Run the weight baselines on the bars ``start .. end`` through the agent's accounting.

    Each baseline steps ``PortfolioEnv(bars, features=(), look_back=1, action_mode="weights",
    cost=cost, timing=timing, start=start, end=end, initial_value=initial_value)`` with
    :func:`~rltrade.backtest.runner.run_policy`: with the agent's first and last timestamps as
    ``start`` and ``end``, the baselines have exactly the agent's timestamps, fills and costs.

    Parameters
    ----------
    bars:
        Canonical bars of the agent's symbols (the history before ``start`` feeds min_variance).
    start, end:
        First bar (the first observation) and last bar (None: the end of the data).
    cost, timing, initial_value:
        As for :class:`~rltrade.envs.portfolio.PortfolioEnv`.
    names:
        Which of ``buy_and_hold``, ``equal_weight``, ``min_variance`` to run.
    min_variance_window:
        Bars of returns each min_variance fit uses.
    refit_every:
        Steps between min_variance fits (held, drifting, in between).
    progress:
        Show a tqdm bar per baseline.

    Returns
    -------
    dict
        Baseline name -> :class:`~rltrade.backtest.runner.Trajectory`, in the order of ``names``.

    Raises
    ------
    ValueError
        An unknown name (``random`` and ``index`` have their own functions), or a window or
        refit period < 1.
    DataValidationError
        Fewer than ``min_variance_window`` bars of history before ``start`` for min_variance.
    """
    unknown = [name for name in names if name not in WEIGHT_BASELINES]
    if unknown:
        raise ValueError(
            f"unknown weight baseline(s) {unknown}; choose from {', '.join(WEIGHT_BASELINES)} "
            "(random: random_agent(env, seed); index: index_baseline(...))"
        )
    if min_variance_window < 1 or refit_every < 1:
        raise ValueError(
            f"min_variance_window and refit_every must be >= 1, got {min_variance_window} and {refit_every}"
        )
    env = PortfolioEnv(
        bars,
        features=(),
        look_back=1,
        action_mode="weights",
        cost=cost,
        timing=timing,
        start=start,
        end=end,
        initial_value=initial_value,
    )
    market = env.market
    n = market.n_symbols
    out: dict[str, Trajectory] = {}
    for name in names:
        if name == "buy_and_hold":
            policy = _buy_and_hold(n)
        elif name == "equal_weight":
            policy = _equal_weight(n)
        else:
            if market.first < min_variance_window:
                raise DataValidationError(
                    f"min_variance needs {min_variance_window} bars of history before its first decision at "
                    f"{market.timestamp(market.first).date()} but the bars have {market.first}: load earlier "
                    "bars, start later or pass a smaller min_variance_window"
                )
            policy = _min_variance(market, min_variance_window, refit_every)
        out[name] = run_policy(env, policy, progress=name if progress else False)
    return out


def random_agent(env: gym.Env[Any, Any], seed: int, progress: bool = False) -> Trajectory:
    """One episode of uniform random actions on ``env`` (the agent's own env), seeded by ``seed``.

    The actions come from a copy of ``env.action_space`` seeded with ``seed`` and the env is
    reset with ``seed``: the same seed gives the same trajectory.
    """
    return run_policy(env, random_policy(env.action_space, seed), seed=seed, progress=progress)


def _naive_utc(index: pd.Index) -> pd.DatetimeIndex:
    stamps = pd.DatetimeIndex(index)
    return stamps.tz_convert("UTC").tz_localize(None) if stamps.tz is not None else stamps


def index_baseline(
    index_close: pd.Series, timestamps: pd.DatetimeIndex, initial_value: float, name: str = "index"
) -> pd.Series:
    """A market index as an equity curve: its level normalised to ``initial_value`` at ``timestamps[0]``.

    The index is not traded, so there are no costs: compare it with an agent as the market's
    return, not as an attainable strategy. The result is on exactly ``timestamps``. A timestamp
    the index lacks (or where it is NaN) gets the last earlier index level, which is causal and
    logged, when at most :data:`MAX_INDEX_GAP` consecutive timestamps are missing.

    Parameters
    ----------
    index_close:
        Index levels indexed by timestamp (tz-aware or tz-naive UTC).
    timestamps:
        The strategy's timestamps (e.g. ``Trajectory.timestamps``; tz-aware or tz-naive UTC).
    initial_value:
        The value at ``timestamps[0]``.
    name:
        Name of the returned Series.

    Returns
    -------
    pandas.Series
        Indexed like ``timestamps`` (index name ``timestamp``), named ``name``.

    Raises
    ------
    DataValidationError
        The index starts after ``timestamps[0]``, or more than :data:`MAX_INDEX_GAP` consecutive
        timestamps are missing (the first missing date is named).
    """
    if len(timestamps) == 0:
        raise DataValidationError("index_baseline: no timestamps")
    stamps = _naive_utc(timestamps)
    levels = pd.Series(index_close.to_numpy(dtype=np.float64), index=_naive_utc(index_close.index)).dropna()
    levels = levels[~levels.index.duplicated(keep="last")].sort_index()
    if len(levels) == 0 or levels.index[0] > stamps[0]:
        begins = "has no values" if len(levels) == 0 else f"starts {levels.index[0]}"
        raise DataValidationError(
            f"index {name!r} {begins}, after the first timestamp {stamps[0]}; use an index that covers the period"
        )
    missing = ~stamps.isin(levels.index)
    if missing.any():
        # length of the run of consecutive missing timestamps ending at each position
        runs = np.zeros(len(stamps), dtype=np.int64)
        for i in np.flatnonzero(missing):
            runs[i] = runs[i - 1] + 1 if i > 0 else 1
        if runs.max() > MAX_INDEX_GAP:
            end = int(np.argmax(runs > MAX_INDEX_GAP))
            first = stamps[end - MAX_INDEX_GAP]
            raise DataValidationError(
                f"index {name!r} has no value at {first} and the {MAX_INDEX_GAP} timestamps after it (more "
                f"than {MAX_INDEX_GAP} in a row); fill the index data or choose another index"
            )
        log.info(
            "index %r: %d timestamp(s) missing (first %s) filled with the last earlier level",
            name,
            int(missing.sum()),
            stamps[int(np.argmax(missing))],
        )
    aligned = levels.reindex(stamps, method="ffill").to_numpy()
    values = initial_value * aligned / aligned[0]
    return pd.Series(values, index=pd.DatetimeIndex(timestamps, name="timestamp"), name=name)
