"""Score strategy trajectories against the baselines and write a run's result files.

:func:`evaluate` is shared by every strategy: it takes each strategy's trajectories (one per
seed, all on the same timestamps), runs the baselines on the same dates, costs and timing,
computes the metrics and the statistics over seeds with the bars per year of the data, and
writes ``equity.csv``, ``weights.csv``, ``trades.csv``, ``costs.csv``, ``metrics.json`` and
``summary.json``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rltrade.config import WEIGHT_BASELINES, RunConfig
from rltrade.data.annualization import Annualization
from rltrade.errors import RLTradeError
from rltrade.runs.manifest import annualization_of
from rltrade.shared.files import is_intraday, write_csv, write_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunResult:
    """What :func:`run` and :func:`backtest` leave behind.

    ``run_dir`` is the folder holding the results: the run directory, or for a backtest over
    another range its ``backtests/<start>_<end>`` subfolder.
    """

    run_dir: Path
    metrics: dict[str, dict[str, float]]
    summary: dict[str, Any] | None
    agent_columns: tuple[str, ...]
    annualization: Annualization

    @property
    def table(self) -> Any:
        """The metrics as a :class:`~rltrade.backtest.metrics.MetricsTable` (one row per strategy; prints formatted)."""
        from rltrade.backtest.metrics import metrics_table_frame

        return metrics_table_frame(self.metrics)

    def __str__(self) -> str:
        return f"{self.run_dir}; annualised with {self.annualization.basis}\n{self.table}"


def column_name(group: str, seed: int, first_seed: int) -> str:
    """Column of a strategy's seed in equity.csv: ``group`` for the first seed, ``group_seed<s>`` after."""
    return group if seed == first_seed else f"{group}_seed{seed}"


def evaluate(
    run_dir: Path,
    config: RunConfig,
    bars: pd.DataFrame,
    index_close: pd.Series | None,
    groups: dict[str, dict[int, Any]],
    random_env: Callable[[], Any],
    *,
    progress: bool = True,
    on_stage: Callable[[str], None] | None = None,
) -> RunResult:
    """Score agent trajectories against the baselines and write equity, weights, trades, costs, metrics, summary.

    Annualised figures use :func:`annualization_of` the bars (the bar frequency and the market).

    Parameters
    ----------
    run_dir:
        The folder the files are written to.
    groups:
        Strategy name (``ppo``, ``ensemble``, ...) → seed → :class:`~rltrade.backtest.runner.Trajectory`;
        every trajectory covers the same timestamps. The first seed's column is the name itself.
    random_env:
        Builds the env the random agent (one per seed) trades: the agents' env over the same bars.
    """
    from rltrade.backtest.baselines import index_baseline, random_agent, weight_baselines
    from rltrade.backtest.metrics import metrics_table

    stage = on_stage or (lambda message: log.info("%s", message))
    first_group = next(iter(groups.values()))
    seeds = sorted(first_group)
    timestamps: pd.DatetimeIndex = first_group[seeds[0]].timestamps
    equity: dict[str, pd.Series] = {}
    turnover: dict[str, pd.Series] = {}
    costs: dict[str, np.ndarray] = {}
    weights: list[pd.DataFrame] = []
    trades: list[pd.DataFrame] = []
    columns: dict[str, list[str]] = {}

    def record(name: str, traj: Any) -> None:
        if not traj.timestamps.equals(timestamps):
            raise RLTradeError(f"{name}: its dates differ from the other strategies' ({timestamps[0]}..)")
        equity[name] = traj.equity(name)
        turnover[name] = traj.turnover_series(name)
        costs[name] = np.asarray(traj.costs, dtype=np.float64)
        weights.append(traj.weights_frame(name))
        if config.env.type != "portfolio":
            trades.append(traj.trades_frame(name))

    for group, by_seed in groups.items():
        columns[group] = []
        for seed in seeds:
            name = column_name(group, seed, seeds[0])
            columns[group].append(name)
            record(name, by_seed[seed])
    if "random" in config.baselines.names:
        stage("running the random agent")
        columns["random"] = []
        for seed in seeds:
            name = column_name("random", seed, seeds[0])
            columns["random"].append(name)
            env = random_env()
            record(name, random_agent(env, seed))
    names = [n for n in config.baselines.names if n in WEIGHT_BASELINES]
    if names:
        stage("running the baselines")
        template = random_env()
        base = weight_baselines(
            bars if config.env.type != "single_asset" else bars[bars["symbol"] == template.market.symbols[0]],
            start=timestamps[0],
            end=timestamps[-1],
            cost=template.cost_model,
            timing=template.timing,
            initial_value=config.env.initial_value,
            names=names,
            min_variance_window=config.baselines.min_variance_window,
            refit_every=config.baselines.refit_every,
            progress=progress,
        )
        for name in names:
            record(name, base[name])
    if index_close is not None:
        equity["index"] = index_baseline(index_close, timestamps, config.env.initial_value)
    order = [c for group in groups for c in columns[group]]
    order += [n for n in WEIGHT_BASELINES if n in equity]
    order += columns.get("random", []) + (["index"] if "index" in equity else [])
    frame = pd.DataFrame({name: equity[name].to_numpy() for name in order}, index=timestamps)
    frame.index.name = "timestamp"
    turn = pd.DataFrame({name: turnover[name].to_numpy() for name in turnover}, index=timestamps)
    paid = pd.DataFrame({name: costs[name] for name in order if name in costs}, index=frame.index)
    ev = config.evaluation
    ann = annualization_of(config, bars)
    stage(f"annualising with {ann.periods_per_year:,} bars a year ({ann.basis})")
    metrics = metrics_table(frame, turn, risk_free=ev.risk_free, periods_per_year=ann.periods_per_year)
    summary = _seed_summary(
        config, frame, turn, columns, first=next(iter(groups)), periods_per_year=ann.periods_per_year
    )
    summary["annualization"] = ann.to_dict()
    intraday = is_intraday(timestamps)
    write_csv(run_dir / "equity.csv", frame, intraday=intraday)
    write_csv(run_dir / "weights.csv", pd.concat(weights, ignore_index=True), index=False, intraday=intraday)
    if trades:
        write_csv(run_dir / "trades.csv", pd.concat(trades, ignore_index=True), index=False, intraday=intraday)
    write_csv(run_dir / "costs.csv", paid, intraday=intraday)
    write_json(run_dir / "metrics.json", metrics)
    write_json(run_dir / "summary.json", summary)
    return RunResult(run_dir, metrics, summary, tuple(c for group in groups for c in columns[group]), ann)


def _seed_summary(
    config: RunConfig,
    equity: pd.DataFrame,
    turnover: pd.DataFrame,
    columns: dict[str, list[str]],
    first: str,
    periods_per_year: int,
) -> dict[str, Any]:
    from rltrade.backtest.stats import summarize_seeds, welch_t_test

    ev = config.evaluation
    out: dict[str, Any] = {"confidence": ev.confidence, "n_seeds": len(columns[first]), "strategies": []}
    for name, cols in columns.items():
        summary = summarize_seeds(
            name,
            [equity[c] for c in cols],
            [turnover[c] for c in cols],
            risk_free=ev.risk_free,
            periods_per_year=periods_per_year,
            confidence=ev.confidence,
            n_boot=ev.n_boot,
            seed=config.seed,
        )
        out["strategies"].append(summary.to_dict())
    if "random" in columns:
        t, p = welch_t_test(
            [float(equity[c].iloc[-1]) for c in columns[first]], [float(equity[c].iloc[-1]) for c in columns["random"]]
        )
        out["welch"] = {
            "strategy": first,
            "statistic": "final_value",
            "vs": "random",
            "alternative": "greater",
            "t": t,
            "p": p,
            "note": None if len(columns[first]) >= 2 else "needs --seeds >= 2",
        }
    return out
