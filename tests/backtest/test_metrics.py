"""Equity-curve metrics against independent numpy computations written from the definitions."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from rltrade.backtest.metrics import (
    METRIC_NAMES,
    EvaluationError,
    daily_returns,
    format_metric,
    metrics_frame,
    metrics_table,
    per_period_rate,
    performance_metrics,
)

PPY = 252


def _equity(seed: int = 0, n: int = 500, drift: float = 0.0004, vol: float = 0.012, name: str = "ppo") -> pd.Series:
    rng = np.random.default_rng(seed)
    returns = rng.normal(drift, vol, n)
    returns[50:60] = 0.0  # flat stretch: no position
    values = 10_000.0 * np.cumprod(np.concatenate([[1.0], 1.0 + returns]))
    index = pd.date_range("2021-01-04", periods=n + 1, freq="B", tz="UTC")
    return pd.Series(values, index=index, name=name)


def _drawdown_loop(values: list[float]) -> float:
    peak, worst = values[0], 0.0
    for value in values:
        peak = max(peak, value)
        worst = min(worst, value / peak - 1.0)
    return worst


def test_daily_returns_are_simple_returns_without_the_first_row() -> None:
    values = _equity(n=20)
    returns = daily_returns(values)
    raw = values.to_numpy()
    np.testing.assert_allclose(returns.to_numpy(), raw[1:] / raw[:-1] - 1.0, rtol=1e-12)
    assert returns.index.equals(values.index[1:])


def test_metrics_match_numpy_definitions() -> None:
    values = _equity()
    raw = values.to_numpy()
    r = raw[1:] / raw[:-1] - 1.0
    m = performance_metrics(values)

    assert list(m) == list(METRIC_NAMES)
    assert all(type(v) is float for v in m.values())
    assert m["cumulative_return"] == pytest.approx(raw[-1] / raw[0] - 1.0, rel=1e-10)
    assert m["final_value"] == raw[-1]
    assert m["annual_return"] == pytest.approx((raw[-1] / raw[0]) ** (PPY / r.size) - 1.0, rel=1e-10)
    assert m["annual_volatility"] == pytest.approx(r.std(ddof=1) * math.sqrt(PPY), rel=1e-10)
    assert m["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(PPY), rel=1e-10)
    downside = math.sqrt(np.mean(np.minimum(r, 0.0) ** 2)) * math.sqrt(PPY)
    assert m["sortino"] == pytest.approx(r.mean() * PPY / downside, rel=1e-10)
    assert m["max_drawdown"] == pytest.approx(_drawdown_loop(list(raw)), rel=1e-10)
    assert m["max_drawdown"] < 0.0
    assert m["calmar"] == pytest.approx(m["annual_return"] / abs(m["max_drawdown"]), rel=1e-10)
    moved = r[r != 0.0]
    assert m["hit_rate"] == pytest.approx(np.mean(moved > 0.0))
    assert math.isnan(m["turnover"])


def test_max_drawdown_of_a_hand_made_curve_counts_the_initial_value_as_a_peak() -> None:
    index = pd.date_range("2020-01-01", periods=6, freq="D")
    assert performance_metrics(pd.Series([100.0, 80.0, 120.0, 60.0, 90.0, 130.0], index=index))[
        "max_drawdown"
    ] == pytest.approx(-0.5)
    assert performance_metrics(pd.Series([100.0, 90.0, 95.0], index=index[:3]))["max_drawdown"] == pytest.approx(-0.1)


def test_hit_rate_ignores_flat_bars() -> None:
    index = pd.date_range("2020-01-01", periods=7, freq="D")
    values = pd.Series([100.0, 101.0, 101.0, 100.0, 100.0, 102.0, 103.0], index=index)
    assert performance_metrics(values)["hit_rate"] == pytest.approx(3 / 4)


def test_risk_free_is_an_annual_rate_converted_per_period() -> None:
    rf = per_period_rate(0.05, PPY)
    assert (1.0 + rf) ** PPY == pytest.approx(1.05, rel=1e-12)
    values = _equity(seed=1)
    raw = values.to_numpy()
    excess = raw[1:] / raw[:-1] - 1.0 - rf
    m = performance_metrics(values, risk_free=0.05)
    assert m["sharpe"] == pytest.approx(excess.mean() / excess.std(ddof=1) * math.sqrt(PPY), rel=1e-10)
    assert m["sharpe"] < performance_metrics(values)["sharpe"]
    downside = math.sqrt(np.mean(np.minimum(excess, 0.0) ** 2)) * math.sqrt(PPY)
    assert m["sortino"] == pytest.approx(excess.mean() * PPY / downside, rel=1e-10)
    # metrics that do not depend on the risk-free rate are unchanged
    assert m["annual_return"] == performance_metrics(values)["annual_return"]


def test_periods_per_year_scales_annualisation() -> None:
    values = _equity(seed=2)
    daily = performance_metrics(values)
    hourly = performance_metrics(values, periods_per_year=252 * 7)
    assert hourly["sharpe"] == pytest.approx(daily["sharpe"] * math.sqrt(7), rel=1e-10)
    assert hourly["annual_volatility"] == pytest.approx(daily["annual_volatility"] * math.sqrt(7), rel=1e-10)


def test_turnover_is_annualised_mean_of_the_per_step_series() -> None:
    values = _equity(n=100)
    rng = np.random.default_rng(4)
    turnover = pd.Series(rng.uniform(0.0, 0.05, 100), index=values.index[1:])
    m = performance_metrics(values, turnover)
    assert m["turnover"] == pytest.approx(turnover.to_numpy().mean() * PPY, rel=1e-12)
    assert performance_metrics(values, turnover, periods_per_year=12)["turnover"] == pytest.approx(
        turnover.to_numpy().mean() * 12
    )
    bad = turnover.copy()
    bad.iloc[3] = -0.1
    with pytest.raises(EvaluationError, match="turnover"):
        performance_metrics(values, bad)


def test_constant_curve_gives_nan_for_undefined_ratios_and_is_json_safe() -> None:
    index = pd.date_range("2020-01-01", periods=30, freq="B")
    m = performance_metrics(pd.Series(1000.0, index=index, name="cash"))
    assert m["cumulative_return"] == 0.0
    assert m["annual_volatility"] == 0.0
    assert m["max_drawdown"] == 0.0
    for name in ("sharpe", "sortino", "calmar", "hit_rate", "turnover"):
        assert math.isnan(m[name]), name
    # a curve that only goes up: Sortino and Calmar have a zero denominator -> NaN, not inf
    rising = performance_metrics(pd.Series(1000.0 * 1.001 ** np.arange(30), index=index))
    assert math.isnan(rising["sortino"])
    assert math.isnan(rising["calmar"])
    assert rising["hit_rate"] == 1.0
    json.dumps({k: None if math.isnan(v) else v for k, v in m.items()}, allow_nan=False)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([100.0, np.nan, 101.0], r"'ppo'.*NaN.*2020-01-02"),
        ([100.0, 101.0, np.inf], r"'ppo'.*NaN/inf.*2020-01-03"),
        ([100.0, 0.0, 101.0], r"'ppo'.*non-positive.*2020-01-02"),
        ([100.0], r"'ppo'.*at least 2 rows"),
    ],
)
def test_bad_values_raise_a_value_error_naming_the_series(raw: list[float], message: str) -> None:
    values = pd.Series(raw, index=pd.date_range("2020-01-01", periods=len(raw), freq="D"), name="ppo")
    with pytest.raises(ValueError, match=message):
        performance_metrics(values)


def test_bad_parameters_raise() -> None:
    values = _equity(n=10)
    with pytest.raises(EvaluationError, match="risk-free"):
        performance_metrics(values, risk_free=-1.5)
    with pytest.raises(EvaluationError, match="periods_per_year"):
        performance_metrics(values, periods_per_year=0)


def test_metrics_table_follows_column_order_and_matches_turnover_by_name() -> None:
    equity = pd.concat([_equity(seed=5, name="ppo"), _equity(seed=6, name="buy_and_hold")], axis=1)
    turnover = pd.DataFrame({"ppo": 0.02}, index=equity.index[1:])
    table = metrics_table(equity, turnover, risk_free=0.01)
    assert list(table) == ["ppo", "buy_and_hold"]
    assert table["ppo"] == performance_metrics(equity["ppo"], turnover["ppo"], risk_free=0.01)
    assert table["ppo"]["turnover"] == pytest.approx(0.02 * PPY)
    assert math.isnan(table["buy_and_hold"]["turnover"])
    assert table["buy_and_hold"]["sharpe"] == performance_metrics(equity["buy_and_hold"], risk_free=0.01)["sharpe"]

    frame = metrics_frame(table)
    assert list(frame.index) == ["ppo", "buy_and_hold"]
    assert list(frame.columns) == list(METRIC_NAMES)
    assert frame.loc["ppo", "sharpe"] == table["ppo"]["sharpe"]

    with pytest.raises(EvaluationError, match="duplicated"):
        metrics_table(pd.concat([equity["ppo"], equity["ppo"]], axis=1))
    nan_equity = equity.copy()
    nan_equity.iloc[7, 1] = np.nan
    with pytest.raises(ValueError, match="'buy_and_hold'"):
        metrics_table(nan_equity)


def test_metrics_on_real_prices_agree_with_price_arithmetic() -> None:
    from skfolio.datasets import load_sp500_dataset

    prices = load_sp500_dataset()[["AAPL", "JNJ"]].iloc[-756:]
    table = metrics_table(prices)
    for symbol in ("AAPL", "JNJ"):
        raw = prices[symbol].to_numpy()
        assert table[symbol]["cumulative_return"] == pytest.approx(raw[-1] / raw[0] - 1.0, rel=1e-9)
        assert table[symbol]["max_drawdown"] == pytest.approx(_drawdown_loop(list(raw)), rel=1e-9)
        assert -1.0 < table[symbol]["max_drawdown"] < 0.0
        assert 0.0 < table[symbol]["hit_rate"] < 1.0


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        ("cumulative_return", 0.1234, "12.3%"),
        ("max_drawdown", -0.3456, "-34.6%"),
        ("hit_rate", 0.5, "50.0%"),
        ("sharpe", 1.23456, "1.23"),
        ("calmar", -0.5, "-0.50"),
        ("turnover", 12.345, "12.35x"),
        ("final_value", 1234567.891, "1,234,567.89"),
        ("sortino", math.nan, "n/a"),
    ],
)
def test_format_metric(name: str, value: float, text: str) -> None:
    assert format_metric(name, value) == text


def test_format_metric_rejects_unknown_names() -> None:
    with pytest.raises(EvaluationError, match="unknown metric"):
        format_metric("alpha", 1.0)
