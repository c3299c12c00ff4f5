"""Backtest any policy in three lines: ``Backtest(bars, policy, cost=..., timing=...).run()``.

>>> import rltrade as rt
>>> bars = rt.data.sample("sp500")                                   # doctest: +SKIP
>>> rt.Backtest(bars, "equal_weight", cost=10, start="2017-01-01").run()   # doctest: +SKIP

``policy`` is a baseline name (``buy_and_hold``, ``equal_weight``, ``min_variance``), a trained
policy (:func:`rltrade.load_policy`, which trades in its own env with the run's costs and
timing), or a callable mapping an observation of the weights env to target weights (the
symbols, then cash). Every case is stepped through the envs' accounting, so the fills, costs
and annualisation are the ones ``rltrade run`` uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from rltrade.backtest.baselines import WEIGHT_BASELINES, weight_baselines
from rltrade.backtest.metrics import MetricsTable, metrics_table, metrics_table_frame
from rltrade.backtest.runner import Trajectory, run_policy
from rltrade.data.adjust import adjust_prices
from rltrade.data.annualization import Market, annualization
from rltrade.errors import RLTradeError


class Backtest:
    """One policy, and baselines, over the same bars, costs, fill timing and capital.

    Parameters
    ----------
    bars:
        Canonical bars (``rltrade.data.sample``, ``rltrade.load_bars``); prices with
        ``adj_close`` are traded adjusted.
    policy:
        A baseline name, a trained policy (with ``trade(bars, start, end)``) or a callable.
    cost:
        A cost model, or basis points per side (10 = 0.1 %); None for no costs.
    timing:
        ``next_close``, ``next_open`` or ``same_close`` (optimistic; opt-in only).
    start, end:
        The first and last bar traded (the history before ``start`` feeds warm-ups).
    initial_value:
        Starting capital.
    baselines:
        Weight baselines traded beside the policy on the same terms.
    freq, market:
        For the annualisation (bars per year): the bar frequency and the market's hours.
    """

    def __init__(
        self,
        bars: pd.DataFrame,
        policy: str | Callable[[Any], Any] | Any,
        *,
        cost: Any = 10.0,
        timing: str | None = "next_close",
        start: Any = None,
        end: Any = None,
        initial_value: float = 1_000_000.0,
        baselines: Sequence[str] = ("buy_and_hold", "equal_weight"),
        freq: str | None = None,
        market: Market = "auto",
    ) -> None:
        config = getattr(policy, "config", None)
        if config is not None:  # a trained policy: the run's own costs, timing and capital for the baselines too
            from rltrade.envs.factory import make_cost

            cost, timing, initial_value = make_cost(config.env.cost), config.env.timing, config.env.initial_value
        self.bars = adjust_prices(bars)
        self.policy = policy
        self.cost = cost
        self.timing = timing
        self.start = start if start is not None else self.bars["timestamp"].min()
        self.end = end
        self.initial_value = initial_value
        self.baselines = [b for b in baselines if b != policy]
        self.freq = freq or bars.attrs.get("freq") or "1d"
        self.market = market
        self.trajectories: dict[str, Trajectory] = {}

    def _policy_trajectory(self) -> tuple[str, Trajectory]:
        policy = self.policy
        if isinstance(policy, str):
            if policy not in WEIGHT_BASELINES:
                raise RLTradeError(f"unknown baseline {policy!r}; use one of {', '.join(WEIGHT_BASELINES)}")
            return policy, self._baselines([policy])[policy]
        if hasattr(policy, "trade"):  # a trained policy of a run: its own env, costs and timing
            return "policy", policy.trade(self.bars, self.start, self.end)
        if callable(policy):
            from rltrade.envs.portfolio import PortfolioEnv

            env = PortfolioEnv(
                self.bars,
                features=(),
                look_back=1,
                action_mode="weights",
                cost=self.cost,
                timing=self.timing,
                start=self.start,
                end=self.end,
                initial_value=self.initial_value,
            )
            return getattr(policy, "__name__", "policy"), run_policy(env, policy)
        raise RLTradeError(f"policy must be a baseline name, a trained policy or a callable, got {type(policy)}")

    def _baselines(self, names: Sequence[str], start: Any = None, end: Any = None) -> dict[str, Trajectory]:
        return weight_baselines(
            self.bars,
            start=start if start is not None else self.start,
            end=end if end is not None else self.end,
            cost=self.cost,
            timing=self.timing,
            initial_value=self.initial_value,
            names=names,
        )

    def run(self) -> MetricsTable:
        """Trade the policy and the baselines; the metrics table (one row per strategy, prints formatted)."""
        name, traj = self._policy_trajectory()
        self.trajectories = {name: traj}
        if self.baselines:
            self.trajectories.update(self._baselines(self.baselines, traj.timestamps[0], traj.timestamps[-1]))
        equity = pd.DataFrame({n: t.values for n, t in self.trajectories.items()}, index=traj.timestamps)
        turnover = pd.DataFrame({n: t.turnover for n, t in self.trajectories.items()}, index=traj.timestamps)
        stamps = pd.DatetimeIndex(pd.unique(self.bars["timestamp"]))
        ppy = annualization(stamps, self.freq, self.market).periods_per_year
        return metrics_table_frame(metrics_table(equity, turnover, periods_per_year=ppy))
