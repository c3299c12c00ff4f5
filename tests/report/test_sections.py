"""The report's quantstats-style sections, checked against independent computations on real-data runs.

Each section's numbers are recomputed here from the run's CSV files with plain pandas / numpy /
scipy (month-end resamples, covariances, percentiles), not with the library functions the report
uses, and compared with what the page shows.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from tests.report.builder import add_backtest, build_run_dir, restamp_hourly

from rltrade.errors import RLTradeError
from rltrade.report import RunFiles, analytics, write_report
from rltrade.report.html import (
    CASH_COLOR,
    MAX_OTHER_BUCKETS,
    MAX_SHOWN_SYMBOLS,
    MAX_TRADE_ROWS,
    OTHER_COLORS,
    TOP_MARGIN,
    _weight_groups,
    symbol_colors,
)

RUN_ID = "20240501-140327-3f9c2a"


@pytest.fixture(scope="module")
def equity(full_run: Path) -> pd.DataFrame:
    return pd.read_csv(full_run / "equity.csv", index_col="timestamp", parse_dates=True)


def plot(page: str, div_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The data and layout of the plotly figure drawn into ``div_id``."""
    match = re.search(rf'Plotly\.newPlot\(\s*"{re.escape(div_id)}",\s*', page)
    assert match is not None, div_id
    decoder = json.JSONDecoder()
    text = page[match.end() :]
    data, end = decoder.raw_decode(text)
    text = text[end:].lstrip().removeprefix(",").lstrip()
    layout, _ = decoder.raw_decode(text)
    return data, layout


def section(page: str, heading_id: str) -> str:
    """The page from the heading ``heading_id`` to the next h2."""
    part = page.split(f'<h2 id="{heading_id}">')[1]
    return part.split("<h2 ")[0]


def row_cells(table: str, name: str) -> list[str]:
    row = re.search(rf"</span>{re.escape(name)}</td>(.*?)</tr>", table, re.S)
    assert row is not None, name
    return re.findall(r'<td class="num[^"]*">([^<]*)</td>', row.group(1))


def month_end_returns(values: pd.Series, rule: str) -> pd.Series:
    """Compounded return per calendar period by a month-end (or year-end) resample of the values."""
    ends = values.resample(rule).last().dropna()
    previous = ends.shift(1)
    previous.iloc[0] = values.iloc[0]  # the first period runs from the initial capital
    return ends / previous - 1.0


# --------------------------------------------------------------------------------------------
# Monthly and yearly returns


def test_monthly_returns_agree_with_a_pandas_resample(equity: pd.DataFrame) -> None:
    for column in equity.columns:
        expected = month_end_returns(equity[column], "ME")
        table = analytics.monthly_returns(equity[column])
        got = pd.Series(
            {pd.Timestamp(year=y, month=m, day=1): table.loc[y, m] for y in table.index for m in table.columns}
        ).dropna()
        assert len(got) == len(expected) == 24, column
        np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-10, err_msg=column)


def test_monthly_heatmap_shows_every_strategy(equity: pd.DataFrame, full_html: str) -> None:
    data, layout = plot(full_html, "monthly-plot")
    assert [t["name"] for t in data][:3] == ["ppo", "ppo_seed1", "ppo_seed2"]  # the first agent first
    assert {t["name"] for t in data} == set(equity.columns)
    assert [t.get("visible") for t in data].count(True) == 1
    assert [b["label"] for b in layout["updatemenus"][0]["buttons"]] == [t["name"] for t in data]
    ppo = data[0]
    assert ppo["y"] == ["2020", "2021"] and ppo["x"][0] == "Jan" and ppo["x"][-1] == "Dec"
    expected = month_end_returns(equity["ppo"], "ME").to_numpy().reshape(2, 12)
    np.testing.assert_allclose(np.array(ppo["z"], dtype=float), expected, rtol=1e-3)
    assert ppo["zmid"] == 0.0 and ppo["texttemplate"] == "%{z:.1%}"


def test_yearly_returns_table(equity: pd.DataFrame, full_html: str) -> None:
    table = full_html.split('<table class="yearly">')[1].split("</table>")[0]
    for column in equity.columns:
        expected = month_end_returns(equity[column], "YE")
        assert row_cells(table, column) == [f"{v * 100:.1f}%" for v in expected], column
    assert '<th class="num" title="2020-01-02 → 2020-12-31">2020</th>' in table


# --------------------------------------------------------------------------------------------
# Drawdowns


def test_worst_drawdown_equals_max_drawdown_of_metrics_json(full_run: Path, equity: pd.DataFrame) -> None:
    metrics = json.loads((full_run / "metrics.json").read_text())
    for column in equity.columns:
        episodes = analytics.worst_drawdowns(equity[column])
        assert math.isclose(episodes["depth"].iloc[0], metrics[column]["max_drawdown"], rel_tol=1e-9), column
        assert episodes["depth"].is_monotonic_increasing  # deepest first


def test_drawdown_episodes_are_peak_trough_recovery(equity: pd.DataFrame) -> None:
    values = equity["ppo"]
    episodes = analytics.worst_drawdowns(values, top=50)
    high = values.cummax()
    for _, e in episodes.iterrows():
        peak = values[e["peak"]]
        assert peak == high[e["peak"]]  # the peak is a running high
        start = values.index.get_loc(e["peak"])
        end = values.index.get_loc(e["recovery"]) if pd.notna(e["recovery"]) else len(values)
        inside = values.iloc[start + 1 : end]
        assert (inside < peak).all()
        assert math.isclose(values[e["trough"]] / peak - 1.0, e["depth"], rel_tol=1e-9)
        assert values[e["trough"]] == inside.min()
        if pd.notna(e["recovery"]):
            assert values[e["recovery"]] >= peak
            assert e["bars"] == values.index.get_loc(e["recovery"]) - values.index.get_loc(e["peak"])
            assert e["days"] == (e["recovery"] - e["peak"]).days
    # the episodes do not overlap and cover every bar below the running high
    below = int((values < high).sum())
    spans = episodes.apply(
        lambda e: (
            (values.index.get_loc(e["recovery"]) if pd.notna(e["recovery"]) else len(values))
            - values.index.get_loc(e["peak"])
            - 1
        ),
        axis=1,
    )
    assert int(spans.sum()) == below


def test_worst_drawdowns_table(full_run: Path, equity: pd.DataFrame, full_html: str) -> None:
    metrics = json.loads((full_run / "metrics.json").read_text())
    table = full_html.split('<table class="drawdowns">')[1].split("</table>")[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table.split("<tbody>")[1], re.S)
    agents = ["ppo", "a2c", "ddpg", "ensemble"]  # the first seed of each agent
    assert len(rows) == 5 * len(agents)
    for n, agent in enumerate(agents):
        first = rows[5 * n]
        assert f"</span>{agent}</td>" in first
        worst = analytics.worst_drawdowns(equity[agent]).iloc[0]
        assert f'<td class="num">{metrics[agent]["max_drawdown"] * 100:.1f}%</td>' in first
        assert f"<td>{worst['peak']:%Y-%m-%d}</td><td>{worst['trough']:%Y-%m-%d}</td>" in first


def test_drawdown_plot_is_small_multiples(equity: pd.DataFrame, full_html: str) -> None:
    data, layout = plot(full_html, "drawdown-plot")
    bases = ["ppo", "a2c", "ddpg", "ensemble", "buy_and_hold", "equal_weight", "min_variance", "random", "index"]
    assert [a["text"] for a in layout["annotations"]] == bases  # one titled panel per strategy
    axes = {t.get("xaxis", "x") for t in data}
    assert len(axes) == len(bases)
    ppo = next(t for t in data if t["name"] == "ppo")
    expected = equity["ppo"] / equity["ppo"].cummax() - 1.0
    np.testing.assert_allclose(np.array(ppo["y"], dtype=float), expected.to_numpy(), atol=5e-5)
    seeds = [t for t in data if t["name"].startswith("ppo_seed")]
    assert len(seeds) == 2 and all(t.get("xaxis", "x") == ppo.get("xaxis", "x") for t in seeds)


# --------------------------------------------------------------------------------------------
# Extended metrics, rolling statistics


def test_extended_metrics_match_their_definitions(equity: pd.DataFrame) -> None:
    values = analytics.extended_metrics(equity, periods_per_year=252)
    returns = equity.pct_change().dropna()
    bench = returns["index"]
    for column in ("ppo", "equal_weight", "random"):
        r = returns[column]
        got = values[column]
        active = r - bench
        assert math.isclose(got["beta"], np.cov(r, bench)[0, 1] / np.var(bench, ddof=1), rel_tol=1e-9)
        assert math.isclose(got["tracking_error"], active.std() * math.sqrt(252), rel_tol=1e-9)
        assert math.isclose(got["information_ratio"], active.mean() / active.std() * math.sqrt(252), rel_tol=1e-9)
        assert math.isclose(got["var"], np.percentile(r, 5), rel_tol=1e-9)
        assert math.isclose(got["cvar"], r[r <= np.percentile(r, 5)].mean(), rel_tol=1e-9)
        assert math.isclose(got["skew"], stats.skew(r, bias=False), rel_tol=1e-9)
        assert math.isclose(got["kurtosis"], stats.kurtosis(r, bias=False), rel_tol=1e-9)
        # alpha: the mean per-bar intercept of the CAPM fit, compounded over a year
        intercept = r.mean() - got["beta"] * bench.mean()
        assert math.isclose(got["alpha"], (1 + intercept) ** 252 - 1, rel_tol=1e-6)
    assert all(math.isnan(values["index"][k]) for k in ("alpha", "beta", "information_ratio", "tracking_error"))


def test_extended_metrics_table(equity: pd.DataFrame, full_html: str) -> None:
    values = analytics.extended_metrics(equity, periods_per_year=252)
    table = full_html.split('<table class="extended">')[1].split("</table>")[0]
    ppo = values["ppo"]
    assert row_cells(table, "ppo") == [
        f"{ppo['alpha'] * 100:.1f}%",
        f"{ppo['beta']:.2f}",
        f"{ppo['information_ratio']:.2f}",
        f"{ppo['tracking_error'] * 100:.1f}%",
        f"{ppo['var'] * 100:.1f}%",
        f"{ppo['cvar'] * 100:.1f}%",
        f"{ppo['skew']:.2f}",
        f"{ppo['kurtosis']:.2f}",
    ]
    assert row_cells(table, "index")[:4] == ["—"] * 4
    for label in ("Alpha", "Beta", "Info ratio", "Tracking error", "VaR 95%", "CVaR 95%", "Skew", "Kurtosis"):
        assert f">{label}</th>" in table


def test_extended_metrics_without_an_index_column(tmp_path: Path) -> None:
    run = build_run_dir(tmp_path, n_seeds=1, weights=False, summary=False)
    frame = pd.read_csv(run / "equity.csv").drop(columns="index")
    frame.to_csv(run / "equity.csv", index=False)
    page = write_report(run).read_text(encoding="utf-8")
    table = page.split('<table class="extended">')[1].split("</table>")[0]
    assert ">Alpha</th>" not in table and ">VaR 95%</th>" in table
    assert "No index column in equity.csv" in page


def test_rolling_sharpe_and_volatility(equity: pd.DataFrame, full_html: str) -> None:
    data, _ = plot(full_html, "rolling-plot")
    returns = equity["ppo"].pct_change().dropna()
    sharpe, volatility = [t for t in data if t["name"] == "ppo"]
    window = 126  # half a year of daily bars
    assert sharpe["x"][0] == f"{returns.index[window - 1]:%Y-%m-%d}"
    assert len(sharpe["y"]) == len(returns) - window + 1
    tail = returns.iloc[-window:]
    assert math.isclose(sharpe["y"][-1], tail.mean() / tail.std() * math.sqrt(252), rel_tol=1e-3)
    assert math.isclose(volatility["y"][-1], tail.std() * math.sqrt(252), rel_tol=1e-3)
    # the agents and the index are shown, the other baselines a legend click away
    shown = {t["name"] for t in data if t.get("visible", True) is True}
    assert shown == {"ppo", "a2c", "ddpg", "ensemble", "index"}
    assert "126 bars ≈ 6 months" in full_html


def test_rolling_window_scales_with_bars() -> None:
    assert analytics.rolling_window(252, 1000) == 126
    assert analytics.rolling_window(1764, 100_000) == 882  # 1h bars, 7 a session: half a year
    assert analytics.rolling_window(252, 120) == 40  # a short test: a third of it


# --------------------------------------------------------------------------------------------
# Costs, exposure, trades


def test_costs_table_sums_costs_csv(full_run: Path, equity: pd.DataFrame, full_html: str) -> None:
    costs = pd.read_csv(full_run / "costs.csv", index_col="timestamp", parse_dates=True)
    table = full_html.split('<table class="costs">')[1].split("</table>")[0]
    for column in ("ppo", "buy_and_hold", "random"):
        total = costs[column].sum()
        years = (len(equity) - 1) / 252
        cells = row_cells(table, column)
        assert cells[0] == (f"{total:,.0f}" if total >= 1000 else f"{total:,.2f}")
        assert cells[1] == f"{total / equity[column].iloc[0] * 100:.1f}%"
        assert cells[2] == f"{total / equity[column].mean() / years * 100:.1f}%"
        assert cells[3] == f"{int((costs[column] > 0).sum()):,}"
    data, _ = plot(full_html, "costs-plot")
    ppo = next(t for t in data if t["name"] == "ppo")
    assert math.isclose(ppo["y"][-1], costs["ppo"].sum(), rel_tol=1e-4)


def test_exposure_is_one_minus_cash(full_run: Path, full_html: str) -> None:
    weights = pd.read_csv(full_run / "weights.csv")
    data, _ = plot(full_html, "exposure-plot")
    for name in ("ppo", "min_variance"):
        trace = next(t for t in data if t["name"] == name)
        cash = weights.loc[weights["strategy"] == name, "cash"].to_numpy()
        np.testing.assert_allclose(np.array(trace["y"], dtype=float), 1.0 - cash, rtol=1e-4, atol=1e-6)
        assert trace["x"][0] == weights["timestamp"].iloc[0]


def test_trade_list_shows_the_last_rows_and_the_total(full_run: Path, full_html: str) -> None:
    trades = pd.read_csv(full_run / "trades.csv")
    part = section(full_html, "trades")
    ppo = trades[trades["strategy"] == "ppo"]
    assert len(ppo) > MAX_TRADE_ROWS
    assert f"ppo: the last {MAX_TRADE_ROWS} of {len(ppo):,} trades, newest first" in part
    table = part.split('<table class="trades">')[1].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.S)
    assert len(rows) == MAX_TRADE_ROWS
    last = ppo.iloc[-1]
    assert rows[0].startswith(f"<td>{last['timestamp']}</td><td>{last['symbol']}</td>")
    assert f"{last['notional']:,.0f}</td>" in rows[0]
    oldest_shown = ppo.iloc[-MAX_TRADE_ROWS]
    assert rows[-1].startswith(f"<td>{oldest_shown['timestamp']}</td><td>{oldest_shown['symbol']}</td>")
    summary = part.split('<table class="trade-summary">')[1].split("</table>")[0]
    for name, group in trades.groupby("strategy"):
        cells = row_cells(summary, str(name))
        assert cells[:2] == [f"{len(group):,}", f"{group['timestamp'].nunique():,}"]


def test_old_runs_without_costs_or_trades(tmp_path: Path) -> None:
    run = build_run_dir(tmp_path, n_seeds=1, summary=False, costs=False)
    page = write_report(run).read_text(encoding="utf-8")
    assert 'id="costs"' not in page and 'id="trades"' not in page
    assert 'id="exposure-plot"' in page and 'id="monthly-plot"' in page


# --------------------------------------------------------------------------------------------
# Weights: colours and the "other" bucket


def test_other_buckets_are_no_larger_than_the_largest_weight_shown(full_html: str) -> None:
    data, _ = plot(full_html, "weights-plot")
    views: dict[str, list[dict[str, Any]]] = {}
    for trace in data:
        views.setdefault(trace["stackgroup"], []).append(trace)
    assert set(views) == {"ppo", "ppo_seed1", "buy_and_hold", "equal_weight", "min_variance"}
    bucketed = 0
    for name, traces in views.items():
        means = {t["name"]: float(np.mean(t["y"])) for t in traces if t["name"] != "cash"}
        buckets = {k: v for k, v in means.items() if k.startswith("other")}
        symbols = {k: v for k, v in means.items() if k not in buckets}
        bucketed += bool(buckets)
        assert len(symbols) >= 11, name
        for bucket, mean in buckets.items():
            assert mean <= max(symbols.values()) + 1e-4, (name, bucket)
        colors = [t["fillcolor"] for t in traces]
        assert len(set(colors)) == len(colors), name  # every series its own colour
    assert bucketed >= 1


def test_weight_groups_grow_then_split() -> None:
    stamps = pd.date_range("2021-01-04", periods=50, freq="B")
    rng = np.random.default_rng(0)

    def book(n: int, skew: float) -> pd.DataFrame:
        size = np.exp(-skew * np.arange(n))
        weights = size / size.sum() * (1 + 0.01 * rng.standard_normal((len(stamps), n)))
        frame = pd.DataFrame(weights * 0.95, index=stamps, columns=[f"S{i:03d}" for i in range(n)])
        return frame.assign(cash=0.05)

    # a concentrated book: 12+ symbols shown, the tail in one "other" no larger than the largest
    frame = book(40, 0.25)
    groups, buckets = _weight_groups(frame, list(frame.columns))
    assert list(buckets) == ["other"] and groups.columns[-1] == "cash"
    assert groups["other"].mean() <= groups.drop(columns=["other", "cash"]).mean().max()
    np.testing.assert_allclose(groups.sum(axis=1), frame.sum(axis=1))
    # a flat book of 60: 45 shown, the rest split into several buckets, each below the largest
    frame = book(60, 0.002)
    groups, buckets = _weight_groups(frame, list(frame.columns))
    assert len(groups.columns) - 1 - len(buckets) == MAX_SHOWN_SYMBOLS
    assert 1 < len(buckets) <= MAX_OTHER_BUCKETS
    assert sorted(s for members in buckets.values() for s in members) == sorted(
        set(frame.columns[:-1]) - set(groups.columns)
    )
    np.testing.assert_allclose(groups.sum(axis=1), frame.sum(axis=1))
    # a small book is shown whole
    frame = book(8, 0.1)
    groups, buckets = _weight_groups(frame, list(frame.columns))
    assert not buckets and list(groups.columns) == list(frame.columns)


def test_symbol_colours_are_distinct() -> None:
    colors = symbol_colors(MAX_SHOWN_SYMBOLS)
    assert len(set(colors)) == MAX_SHOWN_SYMBOLS
    assert not set(colors) & {*OTHER_COLORS, CASH_COLOR}
    # neighbours in the stack differ in hue: no two consecutive colours share a base colour
    assert all(colors[i][:3] != colors[i + 1][:3] or colors[i] != colors[i + 1] for i in range(len(colors) - 1))


# --------------------------------------------------------------------------------------------
# Header: traded bars, annualisation, prices; intraday runs; re-backtests


def test_header_shows_the_traded_bars_not_the_config_range(tmp_path: Path) -> None:
    run = build_run_dir(tmp_path, n_seeds=1, weights=False, summary=False)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["test"] = {"start": "2019-12-28", "end": "2022-01-09"}  # the configured range, wider
    (run / "manifest.json").write_text(json.dumps(manifest))
    page = write_report(run).read_text(encoding="utf-8")
    header = page.split("</header>")[0]
    assert "2020-01-02 → 2021-12-31" in header and "2019-12-28 →" not in header.split("title=")[0]
    assert "requested test range 2019-12-28 → 2022-01-09" in header  # kept in the tooltip
    assert "first and last traded bar: 2020-01-02 → 2021-12-31" in page


@pytest.mark.parametrize(
    ("prices", "text"),
    [
        ("adjusted", "trades split- and dividend-adjusted prices"),
        ("raw", "trades raw prices (no corporate-action adjustment)"),
        (None, None),
    ],
)
def test_prices_are_named(tmp_path: Path, prices: str | None, text: str | None) -> None:
    run = build_run_dir(tmp_path, n_seeds=1, weights=False, summary=False)
    manifest = json.loads((run / "manifest.json").read_text())
    if prices is not None:
        manifest["prices"] = prices
    (run / "manifest.json").write_text(json.dumps(manifest))
    page = write_report(run).read_text(encoding="utf-8")
    howto = page.split('<p class="howto">')[1].split("</p>")[0]
    if text is None:
        assert "adjust" not in howto and "raw prices" not in howto
    else:
        assert text in howto


def test_intraday_timestamps_are_kept(tmp_path: Path) -> None:
    run = build_run_dir(tmp_path, n_seeds=2, summary=False, trades=True)
    stamps = restamp_hourly(run)
    files = RunFiles.read(run)
    assert files.intraday and files.equity.index[1] == pd.Timestamp(stamps[1])
    assert files.annualization.periods_per_year == 1764
    page = write_report(run).read_text(encoding="utf-8")
    first, last = stamps[0][:16], stamps[-1][:16]
    assert "<dd title=" in page and f"{first} → {last}" in page.split("</header>")[0]
    assert "annualised with √1,764 from per-bar returns (1h bars, exchange market" in page
    assert "× √1,764 (1h bars" in page  # the Sharpe tooltip
    data, layout = plot(page, "equity-plot")
    assert data[-1]["x"][:2] == [stamps[0][:16], stamps[1][:16]]  # hours on the axis
    # nights and weekends without bars are cut out of the time axis
    assert layout["xaxis"]["rangebreaks"] == [{"bounds": ["sat", "mon"]}, {"bounds": [21.5, 14.5], "pattern": "hour"}]
    table = page.split('<table class="drawdowns">')[1].split("</table>")[0]
    assert re.search(r"<td>2024-\d\d-\d\d \d\d:30</td>", table)
    trades = page.split('<table class="trades">')[1].split("</table>")[0]
    assert re.search(r"<td>2024-\d\d-\d\d \d\d:30</td>", trades)
    # half a year of 1h bars is longer than the test: a third of it
    window = analytics.rolling_window(1764, len(stamps) - 1)
    assert window == (len(stamps) - 1) // 3 and f"{window} bars ≈" in page
    # monthly returns by the calendar months of the hourly stamps
    equity = pd.read_csv(run / "equity.csv", index_col="timestamp", parse_dates=True)
    expected = month_end_returns(equity["ppo"], "ME")
    heat, _ = plot(page, "monthly-plot")
    z = np.array(heat[0]["z"], dtype=float).ravel()
    np.testing.assert_allclose(z[np.isfinite(z)], expected.to_numpy(), rtol=1e-3)


def test_backtests_subfolder_renders_with_its_range(full_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(full_run, run)
    before = (run / "report.html").read_bytes()
    folder = add_backtest(run, "h1-2021", "2021-01-01", "2021-06-30", basis="daily bars: 252 a year (re-backtest)")
    document = json.loads((folder / "backtest.json").read_text())
    document.update(prices="raw", warning="the stored data changed since training")
    (folder / "backtest.json").write_text(json.dumps(document))
    files = RunFiles.read(folder)
    assert files.backtest is not None and files.config_text == (run / "config.yaml").read_text()
    assert files.manifest["prices"] == "raw"
    assert files.manifest["test"] == {"start": "2021-01-01", "end": "2021-06-30"}
    assert files.manifest["run_id"] == RUN_ID
    assert files.annualization.basis == "daily bars: 252 a year (re-backtest)"
    path = write_report(folder)
    assert path == folder / "report.html"
    page = path.read_text(encoding="utf-8")
    header = page.split("</header>")[0]
    assert f"Re-backtest of run <strong>{RUN_ID}</strong> over <strong>2021-01-04 → 2021-06-30</strong>" in header
    assert "<dt>Re-backtest</dt>" in header and "requested test range 2021-01-01 → 2021-06-30" in header
    assert "a re-backtest of run" in page and "(daily bars: 252 a year (re-backtest))" in page
    assert "<strong>Warning:</strong> the stored data changed since training" in header
    assert "trades raw prices (no corporate-action adjustment)" in page
    assert "Re-backtest (backtest.json)" in page and "Config (the run&#x27;s config.yaml)" in page
    heat, _ = plot(page, "monthly-plot")
    assert heat[0]["y"] == ["2021"]
    z = np.array(heat[0]["z"], dtype=float).ravel()
    assert np.isfinite(z[:6]).all() and np.isnan(z[6:]).all()  # January to June
    assert (run / "report.html").read_bytes() == before  # the run's own report is untouched


def test_backtest_pointing_nowhere_is_named(tmp_path: Path) -> None:
    run = build_run_dir(tmp_path, n_seeds=1, weights=False, summary=False)
    folder = add_backtest(run, "q1", "2021-01-01", "2021-03-31")
    (run / "manifest.json").unlink()
    with pytest.raises(RLTradeError, match=r"manifest\.json"):
        write_report(folder)
    document = json.loads((folder / "backtest.json").read_text())
    document["run"] = "../../../elsewhere"
    (folder / "backtest.json").write_text(json.dumps(document))
    with pytest.raises(RLTradeError, match="points to run"):
        write_report(folder)


# --------------------------------------------------------------------------------------------
# Layout: the modebar above every plot, tables that fit


def test_every_plot_leaves_room_for_the_modebar(full_html: str) -> None:
    ids = re.findall(r'<div id="([a-z-]+-plot)" class="plotly-graph-div"', full_html)
    assert set(ids) == {
        f"{name}-plot"
        for name in ("equity", "drawdown", "monthly", "rolling", "weights", "exposure", "costs", "quarters")
    }
    for div in ids:
        _, layout = plot(full_html, div)
        assert layout["margin"]["t"] >= TOP_MARGIN, div
        legend = layout.get("legend", {})
        assert legend.get("y", 1) <= 1 and legend.get("yanchor", "top") == "top", div
        for menu in layout.get("updatemenus", []):
            assert menu["x"] == 0 and menu["xanchor"] == "left" and menu["y"] >= 1, div  # top left, above the plot
        for annotation in layout.get("annotations", []):
            assert annotation["xanchor"] == "left", div  # panel titles on the left, clear of the modebar


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


MEASURE = """
<script>
window.addEventListener("load", () => setTimeout(() => {
  const box = (e) => e.getBoundingClientRect();
  const hit = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  const out = {page: document.documentElement.scrollWidth, window: window.innerWidth, tables: [], clashes: [],
               modebars: document.querySelectorAll(".modebar").length};
  const main = box(document.querySelector("main"));
  for (const wrap of document.querySelectorAll(".table-wrap")) {
    const r = box(wrap);
    out.tables.push({cls: wrap.firstElementChild.className, right: r.right, main: main.right,
                     scroll: wrap.scrollWidth > wrap.clientWidth});
  }
  for (const plot of document.querySelectorAll(".plotly-graph-div")) {
    const bar = plot.querySelector(".modebar");
    if (!bar) continue;
    const b = box(bar);
    for (const sel of [".legend", ".updatemenu-container", ".nsewdrag", ".annotation"]) {
      for (const e of plot.querySelectorAll(sel)) {
        if (hit(b, box(e))) out.clashes.push(plot.id + " " + sel);
      }
    }
  }
  document.body.setAttribute("data-measure", JSON.stringify(out));
}, 1500));
</script>
"""


@pytest.mark.skipif(_chromium() is None, reason="no chromium binary on PATH (apt install chromium)")
def test_fits_a_1024_px_window_in_a_real_browser(full_run: Path, full_html: str, tmp_path: Path) -> None:
    chromium = _chromium()
    assert chromium is not None
    page = tmp_path / "measured.html"
    page.write_text(full_html.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    result = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1024,900",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--virtual-time-budget=8000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )
    match = re.search(r'data-measure="([^"]*)"', result.stdout)
    assert match is not None, "the measuring script did not run"
    measured = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert measured["modebars"] >= 8  # the toolbars are in the DOM (shown on hover)
    assert measured["page"] <= measured["window"]  # the page itself never scrolls sideways
    for table in measured["tables"]:
        assert table["right"] <= table["main"] + 0.5, table  # each table box stays inside the page
    fitting = {t["cls"] for t in measured["tables"] if not t["scroll"]}
    assert {"metrics", "extended", "yearly", "drawdowns", "costs", "seeds"} <= fitting  # no sideways scroll at 1024
    assert measured["clashes"] == []  # no toolbar over a legend, menu, panel title or plot area
    for div in ("monthly-plot", "rolling-plot", "exposure-plot", "costs-plot", "drawdown-plot"):
        assert "main-svg" in result.stdout.split(f'id="{div}"')[1][:20000], div
