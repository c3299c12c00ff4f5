"""The exported signals backtested in an independent engine, next to rltrade's own backtest of the run.

Engine: **bt** (1.4.1, the ``crosscheck`` extra). Its core is what an export of target weights
needs: a strategy that rebalances to given weights on given dates (``WeighTarget`` +
``Rebalance``) with a commission function per trade, in code that shares nothing with
rltrade's envs. Its pins fit the project's (pandas 3, numpy 2.4). zipline-reloaded 3.2.1, the
engine Quantopian ran, needs pandas < 3 and an ingested data bundle; vectorbt 1.2.0 fits the
pins since numpy 2.4.6, but is a far larger install for a job bt's target-weight rebalancing
does directly.

Matching the terms (rltrade's side: :mod:`rltrade.envs.timing`, :mod:`rltrade.envs.costs`):

- **Fill timing.** A signal dated T was decided after T's close. With ``next_open`` rltrade
  trades to it at the open of T+1 and marks the book to T+1's close, so bt gets two price rows a
  day, the open (09:30) and the close (16:00), and the weights of T on T+1's open row: bt
  rebalances at the open and values the book at both rows, and the close rows are compared.
  With ``next_close`` bt gets the closes and the weights of T on T+1. ``same_close`` (the
  optimistic, opt-in timing) books the cost of a close's trade in the next row, not in the row
  bt books it in, and is not cross-checked.
- **Costs.** bt's commission function per trade is the run's cost formula per traded asset:
  ``rate·|q|·p`` for basis points, plus ``max(per_share·|q|, minimum)`` for a per-share fee.
  The volatility spread cost has no per-trade equivalent without rltrade's volatility and is
  refused.
- **Fractional shares** (``integer_positions=False``), the run's starting capital, the same
  adjusted prices.

What remains different, and why it is small: rltrade solves for the post-cost value so that
every weight, cash included, is exactly its target after the costs; bt spends each asset's
target amount including that asset's commission, so the assets' holdings are short by their own
commissions and cash is exactly on target. The two books differ by about the costs of a day
(≈ turnover × 10 bps of the value) and their returns by that times the day's return:
hundredths of a basis point.

Every strategy with signals is cross-checked. A single-agent run's backtest is traded again by
its policy over the range; the other strategies' is the one the run wrote (``equity.csv``,
``costs.csv``: the rules' and the ensemble's own loops). ``direct_rl`` trades its weights (shorts
included) through the same env as a single agent. ``combined`` and ``ensemble`` decide share
counts at T's close; their signals are those targets' weights at that close, which bt
rebalances to at the fill price: the books differ besides by each day's trades times the move
from the close to the fill, a second-order term on the days they trade, and the table says so.
Measured on the test runs (tests/signals/test_crosscheck.py): combined 0.24 bp a day at most and
0.0014 % at the end; the ensemble 0.49 bp and 0.014 % (bt also trades each day's drift back to the
weights, which the ensemble's share counts leave alone: its costs are a little higher).

The figures (:class:`CrossCheck`): the largest absolute difference of daily returns (tolerance
1 bp) and the relative difference of the final values (tolerance 0.1 %), with the costs each
paid.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rltrade.signals.compute import SignalError, last_stored_day, load_until, open_run, parse_day
from rltrade.signals.export import export_table, read_export

#: Tolerances of the agreement: daily returns within 1 bp, final values within 0.1 %.
RETURN_TOLERANCE = 1e-4
FINAL_TOLERANCE = 1e-3
#: The strategies whose decisions are share counts (their signals: the targets' weights at T's close).
SHARE_STRATEGIES = ("combined", "ensemble")
SHARE_NOTE = (
    "this strategy trades share counts decided at T's close; bt rebalances to their weights at the fill price, "
    "so the books also differ by each day's trades times the move from T's close to the fill"
)
OPEN_TIME = pd.Timedelta(hours=9, minutes=30)
CLOSE_TIME = pd.Timedelta(hours=16)


@dataclass(frozen=True)
class CrossCheck:
    """rltrade's backtest of a run and bt's backtest of its exported signals, compared.

    Attributes
    ----------
    run_id, engine, timing, cost:
        The run, the engine and its version, the fill timing and the cost model both used.
    start, end, days:
        The first and last bar compared and how many (the first is the starting capital).
    max_return_diff:
        ``max |r_rltrade − r_bt|`` over the daily returns (a fraction: 1e-4 is 1 bp).
    final_rltrade, final_engine, final_rel_diff:
        The final values and ``|final_engine / final_rltrade − 1|``.
    costs_rltrade, costs_engine:
        The costs each paid over the range.
    equity:
        The two equity curves, one row per bar (``rltrade``, ``bt``).
    """

    run_id: str
    engine: str
    timing: str
    cost: str
    start: dt.date
    end: dt.date
    days: int
    max_return_diff: float
    final_rltrade: float
    final_engine: float
    final_rel_diff: float
    costs_rltrade: float
    costs_engine: float
    equity: pd.DataFrame = field(repr=False)
    return_tolerance: float = RETURN_TOLERANCE
    final_tolerance: float = FINAL_TOLERANCE
    note: str = ""

    @property
    def passed(self) -> bool:
        """Both figures within their tolerances."""
        return self.max_return_diff <= self.return_tolerance and self.final_rel_diff <= self.final_tolerance

    def to_dict(self) -> dict[str, Any]:
        """The figures as plain numbers and strings (no equity curves)."""
        return {
            "run_id": self.run_id,
            "engine": self.engine,
            "timing": self.timing,
            "cost": self.cost,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "days": self.days,
            "max_return_diff_bp": self.max_return_diff * 1e4,
            "final_rltrade": self.final_rltrade,
            "final_engine": self.final_engine,
            "final_rel_diff_pct": self.final_rel_diff * 100,
            "costs_rltrade": self.costs_rltrade,
            "costs_engine": self.costs_engine,
            "passed": self.passed,
        }

    def table(self) -> str:
        """The comparison as a small text table (what ``rltrade signals crosscheck`` prints)."""
        name = self.engine.split()[0]
        head = (
            f"cross-check of {self.run_id}: rltrade vs {self.engine}, {self.timing} fills, {self.cost}, "
            f"{self.start}..{self.end} ({self.days} bars)"
        )
        rows = [
            ("", "rltrade", name, "difference", "tolerance"),
            (
                "final value",
                f"{self.final_rltrade:,.2f}",
                f"{self.final_engine:,.2f}",
                f"{self.final_rel_diff * 100:.5f} %",
                f"{self.final_tolerance * 100:g} %",
            ),
            (
                "daily returns, max |diff|",
                "",
                "",
                f"{self.max_return_diff * 1e4:.5f} bp",
                f"{self.return_tolerance * 1e4:g} bp",
            ),
            ("costs paid", f"{self.costs_rltrade:,.2f}", f"{self.costs_engine:,.2f}", "", ""),
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = [head]
        for row in rows:
            cells = [row[0].ljust(widths[0])] + [row[i].rjust(widths[i]) for i in range(1, 5)]
            lines.append("  ".join(cells).rstrip())
        lines.append("agreement: " + ("within tolerance" if self.passed else "OUTSIDE the tolerance"))
        if self.note:
            lines.append(f"note: {self.note}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _commission(cost_model: Any) -> Callable[[float, float], float]:
    """bt's commission function (quantity, price) → fee for rltrade's cost model, per traded asset."""
    from rltrade.envs.costs import kernel_params

    params = kernel_params(cost_model)
    if params.half_spread > 0:
        raise SignalError(
            f"cost model {cost_model!r}: a volatility spread cost has no per-trade equivalent in bt; "
            "the cross-check covers bps, per-share and no costs"
        )
    rate, per_share, minimum = params.rate, params.per_share, params.minimum

    def commission(q: float, p: float) -> float:
        traded = abs(q)
        fee = rate * traded * p
        if (per_share > 0 or minimum > 0) and traded > 0:
            fee += max(per_share * traded, minimum)
        return fee

    return commission


def _prices(bars: pd.DataFrame, field_name: str, symbols: tuple[str, ...], dates: pd.DatetimeIndex) -> pd.DataFrame:
    frame = bars.assign(date=pd.DatetimeIndex(bars["timestamp"]).tz_convert("UTC").tz_localize(None).normalize())
    table = frame.pivot(index="date", columns="symbol", values=field_name)
    return table.reindex(index=dates, columns=list(symbols))


def _weights_by_fill(signals: pd.DataFrame, dates: pd.DatetimeIndex, symbols: tuple[str, ...]) -> pd.DataFrame:
    """The signals' weights indexed by the bar whose fill trades them: the bar after each as-of date."""
    table = signals.assign(date=pd.to_datetime(signals["date"].astype(str))).pivot(
        index="date", columns="symbol", values="weight"
    )
    decided = dates[:-1]  # the last bar's decision would fill after the range
    lacking = decided.difference(pd.DatetimeIndex(table.index))
    if len(lacking):
        raise SignalError(f"the signals lack {len(lacking)} day(s) of the range, first {lacking[0].date()}")
    unknown = sorted(set(table.columns) - set(symbols))
    absent = sorted(set(symbols) - set(table.columns))
    if unknown or absent:
        raise SignalError(f"the signals' symbols differ from the run's: extra {unknown}, missing {absent}")
    weights = table.reindex(index=decided, columns=list(symbols))
    if weights.isna().to_numpy().any():
        day = weights.index[weights.isna().any(axis=1)][0]
        raise SignalError(f"the signals lack a symbol's weight on {day.date()}")
    weights.index = dates[1:]
    return weights


def run_bt(
    bars: pd.DataFrame,
    signals: pd.DataFrame,
    dates: pd.DatetimeIndex,
    symbols: tuple[str, ...],
    *,
    timing: str,
    cost_model: Any,
    initial_value: float,
) -> tuple[pd.Series, float]:
    """bt's equity at each close of ``dates`` trading ``signals`` (an export table), and the fees it paid."""
    from rltrade._optional import require

    bt = require("bt", "crosscheck", "rltrade signals crosscheck")
    weights = _weights_by_fill(signals, dates, symbols)
    closes = _prices(bars, "close", symbols, dates)
    if timing == "next_close":
        data = closes
        marks = dates
    elif timing == "next_open":
        opens = _prices(bars, "open", symbols, dates)
        data = pd.concat([opens.set_axis(dates + OPEN_TIME), closes.set_axis(dates + CLOSE_TIME)]).sort_index()
        weights.index = weights.index + OPEN_TIME
        marks = dates + CLOSE_TIME
    else:
        raise SignalError(
            f"timing {timing!r}: the cross-check covers next_open and next_close (same_close books the cost of a "
            "close's trade a bar later than bt does)"
        )
    if data.isna().to_numpy().any():
        raise SignalError("the prices of the range have gaps: bt needs a price of every symbol at every bar")
    strategy = bt.Strategy("signals", [bt.algos.WeighTarget(weights), bt.algos.Rebalance()])
    test = bt.Backtest(
        strategy,
        data,
        initial_capital=float(initial_value),
        commissions=_commission(cost_model),
        integer_positions=False,
        progress_bar=False,
    )
    bt.run(test)
    values = test.strategy.values.reindex(marks)
    fees = float(test.strategy.fees.sum())
    return pd.Series(values.to_numpy(dtype=np.float64), index=dates, name="bt"), fees


def crosscheck(
    run_dir: str | Path,
    end: Any = None,
    *,
    signals: pd.DataFrame | str | Path | None = None,
    engine: Any = None,
    store: str | Path | None = None,
) -> CrossCheck:
    """Backtest the run's exported signals in bt and compare with rltrade's backtest of the same run.

    Both trade from the run's test start (in cash, where rltrade's backtest starts) to ``end``
    (default: the test end, or the store's last day if earlier), at the same prices, costs and fill
    timing.

    Parameters
    ----------
    run_dir:
        A run with signals (:mod:`rltrade.signals.deciders`): a single-agent run is traded again by its policy;
        the other strategies' backtest is the one the run wrote (``equity.csv``, ``costs.csv``).
    end:
        The last day compared (``YYYY-MM-DD``).
    signals:
        An export (a table as :func:`rltrade.signals.export.export_table` returns, or the path of
        an exported CSV/Parquet file); default: the export of the range, computed where the cache
        lacks days.
    engine, store:
        The signal cache's engine and another bar store, as for
        :func:`~rltrade.signals.compute.compute_signals`.
    """
    run = open_run(run_dir, store)
    last = last_stored_day(run)
    hi = parse_day(end, "end") if end is not None else min(run.config.test.end or last, last)
    if hi > last:
        raise SignalError(f"end {hi} is after the last bar in the store ({last})")
    if hi <= run.test_start:
        raise SignalError(f"end {hi} is not after the test start of {run.run_dir.name} ({run.test_start})")
    bars = load_until(run, hi)
    ours = _policy_backtest(run, bars, hi) if run.config.strategy == "single" else _written_backtest(run, hi)
    dates = pd.DatetimeIndex(ours.values.index)
    if len(dates) < 2:
        raise SignalError(f"the range {run.test_start}..{hi} has fewer than two bars: nothing to compare")
    if signals is None:
        table = export_table(run.run_dir, dates[0].date(), dates[-1].date(), engine=engine, store=store)
    elif isinstance(signals, pd.DataFrame):
        missing = [c for c in ("date", "symbol", "weight") if c not in signals.columns]
        if missing:
            raise SignalError(f"the signals lack column(s) {', '.join(missing)}")
        table = signals
    else:
        table = read_export(signals)
    values, fees = run_bt(
        bars,
        table,
        dates,
        ours.symbols,
        timing=ours.timing,
        cost_model=ours.cost_model,
        initial_value=float(ours.values.iloc[0]),
    )
    mine = ours.values.rename("rltrade")
    equity = pd.concat([mine, values], axis=1)
    diff = (mine.pct_change() - values.pct_change()).iloc[1:].abs()
    return CrossCheck(
        run_id=run.run_id,
        engine=f"bt {importlib.metadata.version('bt')}",
        timing=ours.timing,
        cost=repr(ours.cost_model),
        start=dates[0].date(),
        end=dates[-1].date(),
        days=len(dates),
        max_return_diff=float(diff.max()),
        final_rltrade=float(mine.iloc[-1]),
        final_engine=float(values.iloc[-1]),
        final_rel_diff=float(abs(values.iloc[-1] / mine.iloc[-1] - 1.0)),
        costs_rltrade=ours.costs,
        costs_engine=fees,
        equity=equity,
        note=SHARE_NOTE if run.config.strategy in SHARE_STRATEGIES else "",
    )


@dataclass(frozen=True)
class _Ours:
    """rltrade's side of a cross-check: the equity at each bar's close (by date), the costs paid, the terms."""

    values: pd.Series
    costs: float
    symbols: tuple[str, ...]
    timing: str
    cost_model: Any


def _policy_backtest(run: Any, bars: pd.DataFrame, hi: dt.date) -> _Ours:
    """A single-agent run's backtest from its test start to ``hi``, traded again by its policy."""
    from rltrade.backtest.runner import run_policy
    from rltrade.runs.policy import load_policy

    policy = load_policy(run.run_dir, run.seed, run.config, run.manifest)
    env = policy.env(bars, None, pd.Timestamp(hi))
    trajectory = run_policy(env, policy, seed=policy.seed)
    base = env.unwrapped
    dates = pd.DatetimeIndex(trajectory.timestamps).normalize()
    values = pd.Series(trajectory.values, index=dates)
    return _Ours(values, float(np.sum(trajectory.costs)), tuple(trajectory.symbols), base.timing.name, base.cost_model)


def _written_backtest(run: Any, hi: dt.date) -> _Ours:
    """The backtest the run wrote (``equity.csv``, ``costs.csv``; its first seed's column) up to ``hi``.

    The seed-002 strategies and the ensemble are backtested by their own loops (the rules, the
    quarterly picks), which ``rltrade run`` recorded; the cross-check compares the export with that
    record.
    """
    from rltrade.envs.factory import make_cost
    from rltrade.runs import Run

    written = Run.open(run.run_dir)
    column = run.column
    if column not in written.equity.columns:
        raise SignalError(f"equity.csv of {run.run_dir.name} has no {column!r} column: is the run finished?")
    stamps = pd.DatetimeIndex(written.equity.index)
    dates = (stamps.tz_convert("UTC").tz_localize(None) if stamps.tz is not None else stamps).normalize()
    keep = np.asarray(dates <= pd.Timestamp(hi))
    values = pd.Series(written.equity[column].to_numpy(dtype=np.float64)[keep], index=dates[keep])
    costs = 0.0
    if written.costs is not None and column in written.costs.columns:
        paid = written.costs[column].to_numpy(dtype=np.float64)
        costs = float(np.nansum(paid[: int(keep.sum())]))
    timing = run.timing or "next_open"
    return _Ours(values, costs, tuple(run.symbols), timing, make_cost(run.config.env.cost))
