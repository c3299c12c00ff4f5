"""The numbers the report adds to ``metrics.json``, each computed by a library function.

Every figure here comes from an equity curve (portfolio value per bar, its first row the initial
capital) or from the run's other files; the per-bar simple returns are
:func:`empyrical.simple_returns` of the curve, as in :mod:`rltrade.backtest.metrics`.

========================  ==============================================================
figure                    computed with
========================  ==============================================================
monthly / yearly returns  :func:`empyrical.aggregate_returns` (compounded within a period)
rolling Sharpe            :func:`empyrical.roll_sharpe_ratio`
rolling volatility        :func:`empyrical.roll_annual_volatility`
drawdown path             :func:`skfolio.measures.get_drawdowns` (compounded)
alpha, beta               :func:`empyrical.alpha_beta`
information ratio         :func:`empyrical.excess_sharpe` × √periods per year
tracking error            :func:`empyrical.annual_volatility` of the active returns
VaR / CVaR (95 %)         :func:`empyrical.value_at_risk`, :func:`empyrical.conditional_value_at_risk`
skew, kurtosis            :meth:`pandas.Series.skew`, :meth:`pandas.Series.kurt` (as quantstats)
========================  ==============================================================

The worst-drawdowns table only splits :func:`skfolio.measures.get_drawdowns`'s path into episodes
(peak, trough, recovery); costs, exposure and trades are sums and differences of the run's files.
"""

from __future__ import annotations

import math
from typing import cast

import empyrical
import numpy as np
import pandas as pd

from rltrade.data.annualization import DAILY

#: The rolling window is half a year of bars (126 for daily bars), as in quantstats and pyfolio.
ROLLING_YEARS = 0.5
#: VaR and CVaR confidence.
VAR_CONFIDENCE = 0.95


def bar_returns(equity: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
    """Per-bar simple returns of portfolio values (the first row, the initial capital, is dropped)."""
    returns = empyrical.simple_returns(equity.astype(float))
    return returns.iloc[1:] if len(returns) == len(equity) else returns


# --------------------------------------------------------------------------------------------
# Calendar returns


def monthly_returns(values: pd.Series) -> pd.DataFrame:
    """Compounded return per calendar month: one row per year, columns 1..12 (NaN outside the test).

    The first month's return runs from the initial capital (the first bar), so the months chain
    to the cumulative return.
    """
    aggregated = empyrical.aggregate_returns(bar_returns(values), "monthly")
    table = aggregated.unstack()
    table = table.reindex(columns=range(1, 13))
    table.index = pd.Index([int(y) for y in table.index], name="year")
    table.columns = pd.Index(range(1, 13), name="month")
    return table.astype(float)


def yearly_returns(equity: pd.DataFrame) -> pd.DataFrame:
    """Compounded return per calendar year: one row per strategy (equity column), one column per year."""
    returns = bar_returns(equity)
    rows = {column: empyrical.aggregate_returns(returns[column], "yearly") for column in equity.columns}
    table = pd.DataFrame(rows).T
    table.columns = pd.Index([int(y) for y in table.columns], name="year")
    return table.astype(float)


def year_spans(index: pd.DatetimeIndex) -> dict[int, tuple[pd.Timestamp, pd.Timestamp]]:
    """First and last bar of each calendar year of ``index`` (a year's return covers these)."""
    stamps = index.to_series()
    groups = stamps.groupby(index.year)
    return {int(year): (group.iloc[0], group.iloc[-1]) for year, group in groups}


# --------------------------------------------------------------------------------------------
# Rolling statistics


def rolling_window(periods_per_year: int, n_returns: int) -> int:
    """Half a year of bars (126 for daily bars); a third of the returns when the test is shorter than 1.5× that."""
    window = max(2, round(periods_per_year * ROLLING_YEARS))
    if n_returns < 3 * window:
        window = max(2, min(window, n_returns // 3))
    return window


def rolling_sharpe(values: pd.Series, window: int, periods_per_year: int, risk_free: float = 0.0) -> pd.Series:
    """Annualised Sharpe ratio over the trailing ``window`` bars, stamped at each window's last bar."""
    out: pd.Series = empyrical.roll_sharpe_ratio(
        bar_returns(values), window, risk_free=risk_free, annualization=periods_per_year
    )
    return out


def rolling_volatility(values: pd.Series, window: int, periods_per_year: int) -> pd.Series:
    """Annualised volatility over the trailing ``window`` bars, stamped at each window's last bar."""
    out: pd.Series = empyrical.roll_annual_volatility(bar_returns(values), window, annualization=periods_per_year)
    return out


# --------------------------------------------------------------------------------------------
# Drawdowns


def drawdown_path(values: pd.Series) -> pd.Series:
    """The fall from the running peak at every bar (≤ 0; 0 at the first bar, the initial capital)."""
    from skfolio.measures import get_drawdowns

    returns = bar_returns(values)
    path = get_drawdowns(returns.to_numpy(dtype=float), compounded=True)
    return pd.Series(np.concatenate([[0.0], path]), index=values.index, name=values.name)


def drawdown_frame(equity: pd.DataFrame) -> pd.DataFrame:
    """:func:`drawdown_path` of every column."""
    return pd.DataFrame({column: drawdown_path(equity[column]) for column in equity.columns}, index=equity.index)


DRAWDOWN_COLUMNS = ("peak", "trough", "recovery", "depth", "bars", "days", "bars_to_trough")


def worst_drawdowns(values: pd.Series, top: int = 5) -> pd.DataFrame:
    """The ``top`` deepest drawdown episodes of one equity curve, deepest first.

    An episode runs from a peak (the last bar at a running high) through its trough (the lowest
    point) to its recovery (the first bar back at the old high; NaT when the test ends below it).
    ``depth`` is the trough's drawdown (≤ 0; the deepest equals the curve's max drawdown),
    ``bars`` counts bars from peak to recovery (to the last bar when not recovered), ``days`` the
    calendar days of the same span and ``bars_to_trough`` the bars from peak to trough.
    """
    path = drawdown_path(values).to_numpy()
    stamps = pd.DatetimeIndex(values.index)
    under = path < 0.0
    rows = []
    start = None
    for i in range(len(path) + 1):
        below = i < len(path) and under[i]
        if below and start is None:
            start = i
        elif not below and start is not None:
            peak = start - 1
            trough = start + int(np.argmin(path[start:i]))
            recovery = i if i < len(path) else None
            end = recovery if recovery is not None else len(path) - 1
            rows.append(
                {
                    "peak": stamps[peak],
                    "trough": stamps[trough],
                    "recovery": stamps[recovery] if recovery is not None else pd.NaT,
                    "depth": float(path[trough]),
                    "bars": end - peak,
                    "days": (stamps[end] - stamps[peak]).days,
                    "bars_to_trough": trough - peak,
                }
            )
            start = None
    frame = pd.DataFrame(rows, columns=list(DRAWDOWN_COLUMNS))
    return frame.sort_values("depth", kind="stable").head(top).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Extended metrics


EXTENDED_NAMES = ("alpha", "beta", "information_ratio", "tracking_error", "var", "cvar", "skew", "kurtosis")


def extended_metrics(
    equity: pd.DataFrame,
    *,
    benchmark: str | None = "index",
    periods_per_year: int = DAILY.periods_per_year,
    risk_free: float = 0.0,
) -> dict[str, dict[str, float]]:
    """Risk and benchmark statistics of every equity column, keyed by column then :data:`EXTENDED_NAMES`.

    ``alpha`` (annualised) and ``beta`` come from :func:`empyrical.alpha_beta` against the
    ``benchmark`` column's returns, ``information_ratio`` is :func:`empyrical.excess_sharpe` (mean
    active return over its standard deviation) × √periods_per_year and ``tracking_error`` the
    annualised volatility of the active returns; all four are NaN without a benchmark column and
    for the benchmark itself. ``var`` and ``cvar`` are the historical 95 % value at risk and
    expected shortfall of one bar's return (a return, ≤ 0 for a loss); ``skew`` and ``kurtosis``
    the bias-corrected sample skewness and excess kurtosis (0 for a normal distribution).

    Parameters
    ----------
    equity:
        Portfolio values, one column per strategy.
    benchmark:
        The benchmark column (``index``); ignored when absent.
    periods_per_year:
        Bars per year.
    risk_free:
        Risk-free rate *per bar* (alpha's excess returns).
    """
    returns = bar_returns(equity)
    assert isinstance(returns, pd.DataFrame)
    bench = returns[benchmark] if benchmark is not None and benchmark in returns.columns else None
    out: dict[str, dict[str, float]] = {}
    cutoff = 1.0 - VAR_CONFIDENCE
    for column in returns.columns:
        r = returns[column]
        row = dict.fromkeys(EXTENDED_NAMES, math.nan)
        if bench is not None and column != benchmark:
            fit = np.asarray(empyrical.alpha_beta(r, bench, risk_free=risk_free, annualization=periods_per_year))
            row["alpha"], row["beta"] = float(fit[0]), float(fit[1])
            row["information_ratio"] = float(empyrical.excess_sharpe(r, bench)) * math.sqrt(periods_per_year)
            row["tracking_error"] = float(empyrical.annual_volatility(r - bench, annualization=periods_per_year))
        row["var"] = float(empyrical.value_at_risk(r, cutoff=cutoff))
        row["cvar"] = float(empyrical.conditional_value_at_risk(r, cutoff=cutoff))
        row["skew"] = float(cast(float, r.skew()))
        row["kurtosis"] = float(cast(float, r.kurt()))
        out[str(column)] = {k: (v if math.isfinite(v) else math.nan) for k, v in row.items()}
    return out


# --------------------------------------------------------------------------------------------
# Costs, exposure, trades


def cost_summary(costs: pd.DataFrame, equity: pd.DataFrame, periods_per_year: int) -> pd.DataFrame:
    """Costs paid per strategy (a row per ``costs`` column that ``equity`` also has).

    Columns: ``total`` (currency), ``of_initial`` (total / initial capital), ``per_year`` (total over
    the mean portfolio value, per year of bars: the yearly drag on the return) and ``bars`` (bars
    with a cost).
    """
    columns = [c for c in costs.columns if c in equity.columns]
    values = equity[columns]
    total = costs[columns].sum()
    years = max(len(values) - 1, 1) / periods_per_year
    return pd.DataFrame(
        {
            "total": total,
            "of_initial": total / values.iloc[0],
            "per_year": total / values.mean() / years,
            "bars": (costs[columns] > 0).sum(),
        }
    )


def exposure(weights: pd.DataFrame) -> pd.DataFrame:
    """1 − cash weight per timestamp (rows) and strategy (columns), from ``weights.csv``'s rows."""
    table = weights.pivot_table(index="timestamp", columns="strategy", values="cash", aggfunc="last", sort=True)
    out = 1.0 - table
    out.columns = pd.Index([str(c) for c in out.columns])
    out.index.name = "timestamp"
    return out


def trade_summary(trades: pd.DataFrame) -> pd.DataFrame:
    """Per strategy: ``trades`` (rows), ``bars`` (bars with a trade), ``bought`` and ``sold`` notional (≥ 0)."""
    groups = trades.groupby("strategy", sort=False)
    notional = trades["notional"] if "notional" in trades.columns else pd.Series(np.nan, index=trades.index)
    return pd.DataFrame(
        {
            "trades": groups.size(),
            "bars": groups["timestamp"].nunique(),
            "bought": notional.clip(lower=0.0).groupby(trades["strategy"], sort=False).sum(min_count=1),
            "sold": (-notional).clip(lower=0.0).groupby(trades["strategy"], sort=False).sum(min_count=1),
        }
    )
