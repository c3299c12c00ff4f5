"""Performance metrics of an equity curve, computed with empyrical-reloaded.

The common case is one call::

    metrics = performance_metrics(equity["ppo"], turnover["ppo"], risk_free=0.02)
    table = metrics_table(equity, turnover)          # one entry per strategy column
    print(metrics_frame(table))

Conventions
-----------
- ``values`` is the portfolio value per bar, its first row the initial capital; per-bar simple
  returns are :func:`daily_returns` (the name says "daily", any bar frequency works with the
  matching ``periods_per_year``).
- ``risk_free`` is an *annual* rate, turned into the per-period rate ``(1 + rf)**(1/ppy) − 1``
  (:func:`per_period_rate`); Sharpe subtracts it and Sortino uses it as the required return.
- Every metric is a plain Python float. Undefined values are NaN, never ±inf, so a table is
  JSON-safe once NaN is written as null: the Sharpe ratio of a constant return series (zero
  volatility), the Sortino ratio with no bar below the required return (zero downside
  deviation), the Calmar ratio without a drawdown, ratios of fewer than two returns, the hit
  rate when no bar moved, and the turnover when none is given.
- ``turnover`` is the annualised one-way turnover: the mean of the per-step series (traded
  notional / portfolio value) times ``periods_per_year``, i.e. how many times the portfolio
  value is traded per year. :func:`format_metric` prints it as a multiple, ``"12.35x"``.
"""

from __future__ import annotations

import math
from typing import Any

import empyrical
import numpy as np
import pandas as pd

from rltrade.errors import RLTradeError

#: Metric names in table order.
METRIC_NAMES: tuple[str, ...] = (
    "cumulative_return",
    "annual_return",
    "annual_volatility",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "turnover",
    "hit_rate",
    "final_value",
)

_PERCENT_METRICS = frozenset({"cumulative_return", "annual_return", "annual_volatility", "max_drawdown", "hit_rate"})
_RATIO_METRICS = frozenset({"sharpe", "sortino", "calmar"})


class EvaluationError(RLTradeError, ValueError):
    """Evaluation input cannot be used (NaN or non-positive portfolio values, mismatched seeds, bad parameter)."""


def per_period_rate(annual_rate: float, periods_per_year: int) -> float:
    """Return the per-period rate ``(1 + annual_rate)**(1/periods_per_year) − 1`` that compounds to ``annual_rate``.

    Parameters
    ----------
    annual_rate:
        Annual rate, e.g. ``0.02`` for 2 % a year; must be > −1.
    periods_per_year:
        Bars per year (252 for daily bars).
    """
    _check_periods_per_year(periods_per_year)
    if not math.isfinite(annual_rate) or annual_rate <= -1.0:
        raise EvaluationError(f"risk-free rate must be a finite annual rate > -1, got {annual_rate!r}")
    return float((1.0 + annual_rate) ** (1.0 / periods_per_year) - 1.0)


def daily_returns(values: pd.Series) -> pd.Series:
    """Return the per-bar simple returns of a portfolio-value series (the first row is dropped).

    Parameters
    ----------
    values:
        Portfolio value per bar (index = timestamps); at least two finite, positive values.

    Raises
    ------
    EvaluationError
        (a ``ValueError``) naming the series and the first bad timestamp when a value is NaN,
        infinite or ≤ 0, or when the series has fewer than two rows.
    """
    label = _label(values, "(unnamed series)")
    if len(values) < 2:
        raise EvaluationError(f"portfolio values {label}: need at least 2 rows to compute returns, got {len(values)}")
    array = values.to_numpy(dtype=np.float64)
    for bad, what in ((~np.isfinite(array), "NaN/inf"), (array <= 0.0, "a non-positive value")):
        if bad.any():
            row = int(np.argmax(bad))
            raise EvaluationError(
                f"portfolio values {label}: {what} at {values.index[row]} (row {row}); "
                "pass a complete equity curve of positive values"
            )
    returns: pd.Series = empyrical.simple_returns(values.astype(np.float64))
    return returns


def annual_turnover(turnover: pd.Series | None, periods_per_year: int = 252) -> float:
    """Return the annualised one-way turnover: ``mean(turnover) × periods_per_year`` (NaN when None or empty).

    Parameters
    ----------
    turnover:
        Per-step one-way turnover (traded notional / portfolio value), finite and ≥ 0.
    periods_per_year:
        Bars per year.
    """
    _check_periods_per_year(periods_per_year)
    if turnover is None or len(turnover) == 0:
        return math.nan
    array = turnover.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(array) | (array < 0.0)
    if bad.any():
        row = int(np.argmax(bad))
        raise EvaluationError(
            f"turnover {_label(turnover, '(unnamed series)')}: {array[row]!r} at {turnover.index[row]} (row {row}); "
            "turnover must be finite and >= 0"
        )
    return float(array.mean() * periods_per_year)


def performance_metrics(
    values: pd.Series,
    turnover: pd.Series | None = None,
    *,
    risk_free: float = 0.0,
    periods_per_year: int = 252,
) -> dict[str, float]:
    """Return the metrics of one equity curve, keyed by :data:`METRIC_NAMES` (in that order).

    ``cumulative_return`` is final/initial − 1; ``annual_return`` the geometric (CAGR) rate
    over ``len(returns) / periods_per_year`` years; ``annual_volatility`` the sample std
    (ddof=1) of per-bar returns × √periods_per_year; ``sharpe`` the mean per-bar excess return
    over its sample std × √periods_per_year; ``sortino`` the annualised mean excess return over
    the annualised downside deviation; ``calmar`` annual return / |max drawdown|;
    ``max_drawdown`` the worst peak-to-trough loss (≤ 0, e.g. −0.34, the initial capital counts
    as a peak); ``hit_rate`` the fraction of bars with a positive return among bars with a
    nonzero return; ``turnover`` see :func:`annual_turnover`; ``final_value`` the last value.
    Undefined values are NaN (see the module docstring).

    Parameters
    ----------
    values:
        Portfolio value per bar (index = timestamps); the first value is the initial capital.
    turnover:
        Per-step one-way turnover (traded notional / portfolio value), or None (turnover NaN).
    risk_free:
        Annual risk-free rate (converted with :func:`per_period_rate`).
    periods_per_year:
        Bars per year (252 for daily bars).
    """
    returns = daily_returns(values).to_numpy()
    rf = per_period_rate(risk_free, periods_per_year)
    ppy = periods_per_year
    moved = returns[returns != 0.0]
    metrics: dict[str, Any] = {
        "cumulative_return": empyrical.cum_returns_final(returns),
        "annual_return": empyrical.annual_return(returns, annualization=ppy),
        "annual_volatility": empyrical.annual_volatility(returns, annualization=ppy),
        "sharpe": empyrical.sharpe_ratio(returns, risk_free=rf, annualization=ppy),
        "sortino": empyrical.sortino_ratio(returns, required_return=rf, annualization=ppy),
        "calmar": empyrical.calmar_ratio(returns, annualization=ppy),
        "max_drawdown": empyrical.max_drawdown(returns),
        "turnover": annual_turnover(turnover, ppy),
        "hit_rate": np.mean(moved > 0.0) if moved.size else math.nan,
        "final_value": values.iloc[-1],
    }
    return {name: _finite_or_nan(metrics[name]) for name in METRIC_NAMES}


def metrics_table(
    equity: pd.DataFrame,
    turnover: pd.DataFrame | None = None,
    *,
    risk_free: float = 0.0,
    periods_per_year: int = 252,
) -> dict[str, dict[str, float]]:
    """Return :func:`performance_metrics` of every column of ``equity``, keyed by column name (in column order).

    Parameters
    ----------
    equity:
        Portfolio value per bar, one column per strategy (names must be unique).
    turnover:
        Per-step one-way turnover, columns matched to ``equity`` by name; a strategy without a
        turnover column (or ``turnover=None``) gets a NaN turnover.
    risk_free:
        Annual risk-free rate.
    periods_per_year:
        Bars per year.
    """
    names = [str(column) for column in equity.columns]
    if len(set(names)) != len(names):
        duplicates = sorted({name for name in names if names.count(name) > 1})
        raise EvaluationError(f"equity columns must be unique strategy names, duplicated: {duplicates}")
    table: dict[str, dict[str, float]] = {}
    for column, name in zip(equity.columns, names, strict=True):
        strategy_turnover = turnover[column] if turnover is not None and column in turnover.columns else None
        table[name] = performance_metrics(
            equity[column].rename(name),
            strategy_turnover,
            risk_free=risk_free,
            periods_per_year=periods_per_year,
        )
    return table


def metrics_frame(table: dict[str, dict[str, float]]) -> pd.DataFrame:
    """Return ``table`` as a frame: one row per strategy (index ``strategy``), columns :data:`METRIC_NAMES`.

    Parameters
    ----------
    table:
        Output of :func:`metrics_table` (missing metrics become NaN).
    """
    rows = [[float(metrics.get(name, math.nan)) for name in METRIC_NAMES] for metrics in table.values()]
    index = pd.Index(list(table), name="strategy")
    return pd.DataFrame(rows, index=index, columns=list(METRIC_NAMES), dtype=np.float64)


def format_metric(name: str, value: float) -> str:
    """Return ``value`` formatted for a human: ``"n/a"`` for NaN, else by metric kind.

    Returns, volatility, drawdown and hit rate as percentages with one decimal (``"12.3%"``);
    Sharpe, Sortino and Calmar with two decimals (``"1.23"``); turnover as a multiple of the
    portfolio value per year with two decimals (``"12.35x"``); final value with thousands
    separators and two decimals (``"1,234,567.89"``).

    Parameters
    ----------
    name:
        One of :data:`METRIC_NAMES`.
    value:
        The metric value.
    """
    if name not in METRIC_NAMES:
        raise EvaluationError(f"unknown metric {name!r}; expected one of {list(METRIC_NAMES)}")
    if math.isnan(value):
        return "n/a"
    if name in _PERCENT_METRICS:
        return f"{value:.1%}"
    if name in _RATIO_METRICS:
        return f"{value:.2f}"
    if name == "turnover":
        return f"{value:.2f}x"
    return f"{value:,.2f}"


def _finite_or_nan(value: Any) -> float:
    number = float(value)
    return number if math.isfinite(number) else math.nan


def _label(series: pd.Series, default: str) -> str:
    return repr(series.name) if series.name is not None else default


def _check_periods_per_year(periods_per_year: int) -> None:
    if isinstance(periods_per_year, bool) or not isinstance(periods_per_year, int | np.integer) or periods_per_year < 1:
        raise EvaluationError(f"periods_per_year must be a positive integer, got {periods_per_year!r}")


class MetricsTable(pd.DataFrame):
    """:func:`metrics_frame`'s frame that prints like the CLI's table (formatted cells, strategies as rows)."""

    @property
    def _constructor(self) -> type[MetricsTable]:
        return MetricsTable

    def formatted(self) -> pd.DataFrame:
        """Every cell as text, by metric kind (:func:`format_metric`)."""
        return pd.DataFrame(
            {c: [format_metric(str(c), float(v)) for v in self[c]] for c in self.columns}, index=self.index
        )

    def __str__(self) -> str:
        return self.formatted().to_string()

    def __repr__(self) -> str:
        return self.__str__()


def metrics_table_frame(table: dict[str, dict[str, float]]) -> MetricsTable:
    """:func:`metrics_frame` as a :class:`MetricsTable` (prints formatted; stays a numeric frame)."""
    return MetricsTable(metrics_frame(table))
