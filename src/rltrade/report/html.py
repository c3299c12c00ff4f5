"""Render a training run directory into one self-contained, offline HTML page.

``write_report(run_dir)`` reads the files a run leaves behind (``config.yaml``, ``manifest.json``,
``equity.csv``, ``metrics.json`` and, when present, ``weights.csv``, ``costs.csv``, ``trades.csv``,
``summary.json``, ``quarters.csv``) into a :class:`~rltrade.runs.Run` and renders them with plotly; plotly.js
is inlined once, so the page opens without a network connection. A re-backtest folder
(``RUN_DIR/backtests/NAME/`` with a ``backtest.json``) renders the same way, its config and
manifest read from the run it belongs to. The added statistics are computed in
:mod:`rltrade.report.analytics`; ``docs/report.md`` describes every section.
"""

from __future__ import annotations

import html
import json
import logging
import math
import os
import re
import string
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rltrade.config import BASELINES
from rltrade.data.annualization import Annualization
from rltrade.report import analytics, combined
from rltrade.runs import Run

logger = logging.getLogger(__name__)

REPORT_NAME = "report.html"

# Strategies the backtest runs next to the agents (rltrade.config.BASELINES). Every other equity column is an agent.

_SEED_SUFFIX = re.compile(r"^(?P<base>.+)_seed(?P<seed>\d+)$")

AGENT_COLORS = ("#2563eb", "#db2777", "#ea580c", "#16a34a", "#7c3aed", "#0891b2", "#b45309", "#be123c")
BASELINE_COLORS = {
    "buy_and_hold": "#b08150",
    "equal_weight": "#4f9a86",
    "min_variance": "#8f7cc0",
    "random": "#c5a443",
    "index": "#8a8f98",
}
BASELINE_DASH = {"buy_and_hold": "dash", "equal_weight": "dash", "min_variance": "dash", "random": "dot"}

# Stacked-area colours for the weights plot: the nine hues of tab10 (its grey left for "other"),
# cycled hue first through five shades, so 45 symbols get distinct colours and neighbours differ in hue.
SYMBOL_HUES = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")
SYMBOL_SHADES = (0.0, -0.38, 0.5, -0.62, 0.25)  # < 0 mixes with black, > 0 with white
OTHER_COLORS = ("#b4bac3", "#9199a4", "#cdd2d8", "#7c8591", "#a3aab4", "#dde0e5")
OTHER_COLOR = OTHER_COLORS[0]
CASH_COLOR = "#eceef1"
MAX_WEIGHT_GROUPS = 12  # symbols shown one by one at least (when there are more, up to MAX_SHOWN_SYMBOLS)
MAX_SHOWN_SYMBOLS = len(SYMBOL_HUES) * len(SYMBOL_SHADES)
MAX_OTHER_BUCKETS = 8
MAX_WEIGHT_POINTS = 750  # beyond this the weights plot shows means over blocks of steps
MAX_CURVE_POINTS = 2500  # beyond this the exposure and cost plots show means over blocks of steps
MAX_TRADE_ROWS = 200  # the trade list shows the last this many trades of each agent
TOP_DRAWDOWNS = 5
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
PLOT_CONFIG = {
    "displaylogo": False,
    "responsive": True,
    "displayModeBar": "hover",
    "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"],
}
# Every figure keeps this much room above its plot area: the modebar (toolbar) shows there, above
# the legend (anchored to the top of the plot area) and the menus, never over bars or lines.
TOP_MARGIN = 48


@dataclass(frozen=True)
class Metric:
    """One column of the metrics table.

    :param key: the key in ``metrics.json``.
    :param label: the column header.
    :param kind: ``"pct"`` (a fraction shown as a percentage), ``"ratio"``, ``"times"`` (a multiple)
        or ``"value"`` (money).
    :param better: ``"high"``, ``"low"``, ``"near_zero"`` (drawdowns, whatever their sign) or None.
    :param help: the header's tooltip.
    """

    key: str
    label: str
    kind: str
    better: str | None
    help: str


METRICS = (
    Metric("cumulative_return", "Cum. return", "pct", "high", "Total return over the test period"),
    Metric("annual_return", "Annual return", "pct", "high", "Compound annual growth rate ({basis})"),
    Metric("annual_volatility", "Volatility", "pct", "low", "Standard deviation of per-bar returns × {sqrt} ({basis})"),
    Metric("sharpe", "Sharpe", "ratio", "high", "Mean / std of per-bar returns × {sqrt} ({basis})"),
    Metric("sortino", "Sortino", "ratio", "high", "Mean / downside deviation of per-bar returns × {sqrt} ({basis})"),
    Metric("calmar", "Calmar", "ratio", "high", "Annual return / |max drawdown|"),
    Metric("max_drawdown", "Max drawdown", "pct", "near_zero", "Largest peak-to-trough fall of the portfolio value"),
    Metric(
        "turnover",
        "Turnover /yr",
        "times",
        "low",
        "Annualised one-way turnover: mean per-bar turnover × {ppy} (1.00x = the whole book once a year)",
    ),
    Metric("hit_rate", "Hit rate", "pct", "high", "Share of bars with a positive return, among bars that moved"),
    Metric("final_value", "Final value", "value", "high", "Portfolio value at the end of the test period"),
)
SEED_METRICS = ("cumulative_return", "annual_return", "annual_volatility", "sharpe", "max_drawdown", "final_value")
EXTENDED_METRICS = (
    Metric("alpha", "Alpha", "pct", "high", "Annualised alpha against the index (CAPM regression of per-bar returns)"),
    Metric("beta", "Beta", "ratio", None, "Beta against the index (CAPM regression of per-bar returns)"),
    Metric(
        "information_ratio",
        "Info ratio",
        "ratio",
        "high",
        "Mean / std of per-bar returns in excess of the index × {sqrt}",
    ),
    Metric("tracking_error", "Tracking error", "pct", None, "Std of per-bar returns in excess of the index × {sqrt}"),
    Metric("var", "VaR 95%", "pct", "near_zero", "Historical value at risk: the 5% quantile of per-bar returns"),
    Metric(
        "cvar",
        "CVaR 95%",
        "pct",
        "near_zero",
        "Conditional value at risk (expected shortfall): the mean of the per-bar returns at or below the VaR",
    ),
    Metric("skew", "Skew", "ratio", None, "Sample skewness of per-bar returns (bias-corrected, 0 if symmetric)"),
    Metric("kurtosis", "Kurtosis", "ratio", None, "Excess kurtosis of per-bar returns (bias-corrected, 0 if normal)"),
)
BENCHMARK_METRICS = ("alpha", "beta", "information_ratio", "tracking_error")


def _help(metric: Metric, annualization: Annualization) -> str:
    """The metric's tooltip, its annualisation spelt out from the run's bars per year."""
    return (
        metric.help.replace("{sqrt}", annualization.sqrt_text)
        .replace("{ppy}", f"{annualization.periods_per_year:,}")
        .replace("{basis}", annualization.basis)
    )


# --------------------------------------------------------------------------------------------
# Reading the run directory


RunFiles = Run  # the report's name of the run reader (rltrade.runs.Run)


@dataclass(frozen=True)
class WeightView:
    """What the weights plot shows for one strategy.

    :param symbols: the symbols drawn one by one.
    :param buckets: "other" bucket name -> the symbols summed into it.
    :param within_rule: every bucket weighs no more on average than the largest symbol shown
        (False only for a book too wide and flat to be drawn that way).
    """

    symbols: list[str]
    buckets: dict[str, list[str]]
    within_rule: bool = True


# --------------------------------------------------------------------------------------------
# Strategies: which columns are agents, their order and their colours


@dataclass(frozen=True)
class Strategy:
    """One equity column, split into its strategy and seed.

    :param column: the column name, e.g. ``ppo_seed2``.
    :param base: the strategy without the seed suffix, e.g. ``ppo``.
    :param seed: 0 for the first seed (no suffix), else the suffix number.
    :param is_agent: False for the baselines and the index.
    """

    column: str
    base: str
    seed: int
    is_agent: bool


def classify(columns: Iterable[str], algorithm: str | None = None) -> list[Strategy]:
    """Agents first (the run's algorithm leading), then the baselines in a fixed order, then the index."""
    strategies = []
    for column in columns:
        match = _SEED_SUFFIX.match(column)
        base, seed = (match["base"], int(match["seed"])) if match else (column, 0)
        strategies.append(Strategy(column, base, seed, base not in BASELINES))
    agent_bases = list(dict.fromkeys(s.base for s in strategies if s.is_agent))
    if algorithm and algorithm.lower() in agent_bases:
        agent_bases.remove(algorithm.lower())
        agent_bases.insert(0, algorithm.lower())
    order = {base: i for i, base in enumerate([*agent_bases, *BASELINES])}
    return sorted(strategies, key=lambda s: (order[s.base], s.seed))


def base_colors(strategies: Iterable[Strategy]) -> dict[str, str]:
    """One colour per strategy (seeds share it): strong for agents, muted for baselines, grey for the index."""
    colors: dict[str, str] = {}
    for strategy in strategies:
        if strategy.base in colors:
            continue
        if strategy.is_agent:
            n_agents = sum(1 for base in colors if base not in BASELINES)
            colors[strategy.base] = AGENT_COLORS[n_agents % len(AGENT_COLORS)]
        else:
            colors[strategy.base] = BASELINE_COLORS[strategy.base]
    return colors


def _rgba(color: str, alpha: float) -> str:
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


# --------------------------------------------------------------------------------------------
# Formatting


def _fmt(value: float | None, kind: str) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    if kind == "pct":
        return f"{value * 100:,.1f}%"
    if kind == "value":
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.2f}"
    if kind == "times":
        return f"{value:,.2f}x"
    if kind == "count":
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _short_hash(value: object, n: int = 10) -> str:
    return str(value)[:n] if value else "—"


def _date(value: object) -> str:
    if value is None or value == "":
        return "?"
    try:
        return pd.Timestamp(str(value)).strftime("%Y-%m-%d")
    except ValueError:
        return str(value)


def _stamp(value: object, intraday: bool) -> str:
    """A bar's timestamp: the date, with hours and minutes for intraday runs."""
    if value is None or value is pd.NaT:
        return "—"
    stamp = pd.Timestamp(str(value)) if not isinstance(value, pd.Timestamp) else value
    if pd.isna(stamp):
        return "—"
    return stamp.strftime("%Y-%m-%d %H:%M" if intraday else "%Y-%m-%d")


def _traded_range(run: Run) -> str:
    """First → last bar of ``equity.csv``: the bars the strategies actually traded."""
    index = run.equity.index
    return f"{_stamp(index[0], run.intraday)} → {_stamp(index[-1], run.intraday)}"


def _period(period: object) -> str | None:
    if not isinstance(period, dict):
        return None
    return f"{_date(period.get('start'))} → {_date(period.get('end'))}"


def _seeds(seeds: object) -> str | None:
    if not isinstance(seeds, list) or not seeds:
        return None
    if (
        all(isinstance(s, int) for s in seeds)
        and seeds == list(range(seeds[0], seeds[0] + len(seeds)))
        and len(seeds) > 2
    ):
        return f"{len(seeds)} ({seeds[0]}–{seeds[-1]})"
    return f"{len(seeds)} ({', '.join(str(s) for s in seeds)})"


def _duration(seconds: object) -> str | None:
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not math.isfinite(seconds):
        return None
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def _created(value: object) -> str | None:
    if not value:
        return None
    try:
        stamp = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    suffix = f" {stamp.tzname()}" if stamp.tzinfo else ""
    return stamp.strftime("%Y-%m-%d %H:%M") + suffix


def _rounded(values: np.ndarray | pd.Series, digits: int = 6) -> list[float | None]:
    """Values to ``digits`` significant digits (keeps the embedded JSON small); NaN becomes a gap."""
    return [float(f"{v:.{digits}g}") if math.isfinite(v) else None for v in np.asarray(values, dtype=float).tolist()]


def _x_values(index: pd.DatetimeIndex) -> list[str]:
    midnight = bool((index == index.normalize()).all())
    return list(index.strftime("%Y-%m-%d" if midnight else "%Y-%m-%d %H:%M"))


def _rangebreaks(index: pd.DatetimeIndex) -> list[dict[str, Any]]:
    """Intraday bars: hide the nights and weekends without bars, so curves do not step across them."""
    index = pd.DatetimeIndex(index)
    if len(index) < 3 or bool((index == index.normalize()).all()):
        return []
    breaks: list[dict[str, Any]] = []
    if not bool((index.day_of_week >= 5).any()):
        breaks.append({"bounds": ["sat", "mon"]})
    hours = index.hour + index.minute / 60.0
    first, last = float(hours.min()), float(hours.max())
    gaps = pd.Series(index).diff().dropna()
    bar = float(gaps[gaps > pd.Timedelta(0)].min() / pd.Timedelta(hours=1)) if len(gaps) else 1.0
    if last - first + bar < 23.0:  # a session shorter than the day
        breaks.append({"bounds": [min(last + bar, 24.0), first], "pattern": "hour"})
    return breaks


# --------------------------------------------------------------------------------------------
# Plots


AXIS = {
    "showgrid": True,
    "gridcolor": "#edf0f3",
    "linecolor": "#cfd4da",
    "zeroline": False,
    "ticks": "outside",
    "tickcolor": "#cfd4da",
    "automargin": True,
}


def _layout(height: int, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "template": "none",
        "height": height,
        "font": {"family": FONT, "size": 12, "color": "#1f2937"},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "margin": {"l": 64, "r": 16, "t": TOP_MARGIN, "b": 40},
        "xaxis": dict(AXIS),
        "yaxis": dict(AXIS),
        "hovermode": "x unified",
        "hoverlabel": {"font": {"family": FONT, "size": 12}},
        "legend": {"orientation": "v", "x": 1.01, "xanchor": "left", "y": 1, "yanchor": "top", "font": {"size": 12}},
    }
    layout.update(extra)
    return layout


def _figure_html(figure: Any, div_id: str) -> str:
    height = int(figure.layout.height)
    body = figure.to_html(
        full_html=False,
        include_plotlyjs=False,
        include_mathjax=False,
        div_id=div_id,
        config=PLOT_CONFIG,
        default_height=f"{height}px",
    )
    return f'<div class="plot">{body}</div>'


def _curve_traces(
    frame: pd.DataFrame,
    strategies: Sequence[Strategy],
    colors: dict[str, str],
    *,
    fill_first_agent: bool = False,
    hover_format: str = ",.0f",
    digits: int = 6,
) -> list[Any]:
    """One line per strategy: baselines below, other seeds thin and faint, each agent's first seed on top."""
    import plotly.graph_objects as go

    x = _x_values(pd.DatetimeIndex(frame.index))
    legend_rank = {s.column: 100 + i for i, s in enumerate(strategies)}
    first_agent = next((s.column for s in strategies if s.is_agent), None)
    seed_legend_shown: set[str] = set()
    back_to_front = [s for s in strategies if not s.is_agent] + [s for s in strategies if s.is_agent and s.seed > 0]
    back_to_front += [s for s in reversed(strategies) if s.is_agent and s.seed == 0]
    traces = []
    for s in back_to_front:
        color = colors[s.base]
        line: dict[str, Any] = {"color": color, "width": 2.2 if s.is_agent else 1.6}
        trace: dict[str, Any] = {
            "x": x,
            "y": _rounded(frame[s.column], digits),
            "name": s.column,
            "mode": "lines",
            "legendrank": legend_rank[s.column],
            "hovertemplate": f"%{{y:{hover_format}}}",
        }
        if s.seed > 0:
            # further seeds: one legend entry per strategy that toggles them all, and no hover rows
            group = f"{s.base}-seeds"
            line.update(width=1.0)
            trace.update(
                opacity=0.4 if s.is_agent else 0.3,
                legendgroup=group,
                name=f"{s.base} (other seeds)",
                showlegend=group not in seed_legend_shown,
                hoverinfo="skip",
            )
            trace.pop("hovertemplate")
            seed_legend_shown.add(group)
        elif not s.is_agent:
            line.update(dash=BASELINE_DASH.get(s.base, "solid"))
        if fill_first_agent and s.column == first_agent:
            trace.update(fill="tozeroy", fillcolor=_rgba(color, 0.12))
        trace["line"] = line
        traces.append(go.Scatter(**trace))
    return traces


def equity_figure(equity: pd.DataFrame, strategies: Sequence[Strategy], colors: dict[str, str]) -> Any:
    """Portfolio value over the test period, with a linear/log switch."""
    import plotly.graph_objects as go

    figure = go.Figure(_curve_traces(equity, strategies, colors))
    figure.update_xaxes(rangebreaks=_rangebreaks(pd.DatetimeIndex(equity.index)))
    scale_buttons = [
        {"label": "Linear", "method": "relayout", "args": [{"yaxis.type": "linear"}]},
        {"label": "Log", "method": "relayout", "args": [{"yaxis.type": "log"}]},
    ]
    figure.update_layout(
        **_layout(480),
        updatemenus=[
            {
                "type": "buttons",
                "direction": "right",
                "buttons": scale_buttons,
                "x": 0,
                "xanchor": "left",
                "y": 1.02,
                "yanchor": "bottom",
                "pad": {"l": 0, "b": 4},
                "showactive": True,
                "bgcolor": "#f3f4f6",
                "bordercolor": "#d1d5db",
                "font": {"size": 11},
            }
        ],
    )
    figure.update_yaxes(title_text="Portfolio value", tickformat=",.3~s")
    return figure


def drawdown_figure(equity: pd.DataFrame, strategies: Sequence[Strategy], colors: dict[str, str]) -> Any:
    """Underwater plots as small multiples: one panel per strategy (its seeds together), shared axes."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    drawdown = analytics.drawdown_frame(equity)
    bases = list(dict.fromkeys(s.base for s in strategies))
    n_cols = min(3, len(bases))
    n_rows = math.ceil(len(bases) / n_cols)
    figure = make_subplots(
        rows=n_rows,
        cols=n_cols,
        shared_xaxes="all",
        shared_yaxes="all",
        horizontal_spacing=0.04,
        vertical_spacing=0.3 / n_rows if n_rows > 1 else 0.0,
        subplot_titles=bases,
    )
    x = _x_values(pd.DatetimeIndex(drawdown.index))
    for i, base in enumerate(bases):
        row, col = divmod(i, n_cols)
        color = colors[base]
        members = [s for s in strategies if s.base == base]
        for s in sorted(members, key=lambda m: -m.seed):  # the first seed drawn last, on top
            trace: dict[str, Any] = {
                "x": x,
                "y": _rounded(drawdown[s.column], 4),
                "name": s.column,
                "mode": "lines",
                "showlegend": False,
                "line": {"color": color, "width": 1.6 if s.seed == 0 else 0.9},
                "hovertemplate": "%{y:.1%}",
            }
            if s.seed == 0:
                trace.update(fill="tozeroy", fillcolor=_rgba(color, 0.14))
            else:
                trace.update(opacity=0.45)
            figure.add_trace(go.Scatter(**trace), row=row + 1, col=col + 1)
    _left_titles(figure, n_cols, [colors[b] for b in bases])
    figure.update_layout(**_layout(70 + 180 * n_rows, margin={"l": 64, "r": 16, "t": TOP_MARGIN, "b": 34}))
    figure.update_layout(showlegend=False)
    figure.update_xaxes(**AXIS, rangebreaks=_rangebreaks(pd.DatetimeIndex(equity.index)))
    figure.update_yaxes(**AXIS, tickformat=".0%", rangemode="tozero")
    figure.update_yaxes(title_text="Drawdown", col=1)
    return figure


def _left_titles(figure: Any, n_cols: int, colors: Sequence[str] = ()) -> None:
    """Put make_subplots' panel titles at the top left of their panels (the modebar sits top right)."""
    for i, annotation in enumerate(figure.layout.annotations):
        row, col = divmod(i, n_cols)
        domain = figure.get_subplot(row + 1, col + 1).xaxis.domain
        font = {"size": 13, "family": FONT, "color": colors[i] if i < len(colors) else "#1f2937"}
        annotation.update(x=domain[0], xanchor="left", yshift=4, font=font)


def _weight_groups(frame: pd.DataFrame, assets: Sequence[str]) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """The symbols' weights, the smallest summed into "other" buckets, cash last; and each bucket's members.

    Up to MAX_WEIGHT_GROUPS symbols are all shown. Beyond that the largest (by mean absolute
    weight) are shown one by one, as many as it takes (up to MAX_SHOWN_SYMBOLS) for the rest to
    weigh no more on average than the largest symbol shown; when more remain, they are split into
    several buckets ("other 1", "other 2", ...), each again no larger than the largest symbol
    shown (at most MAX_OTHER_BUCKETS: a very wide, flat book is split into that many).
    """
    symbols = [a for a in assets if a != "cash"]
    buckets: dict[str, list[str]] = {}
    if len(symbols) <= MAX_WEIGHT_GROUPS:
        out = frame[symbols].copy()
    else:
        size = frame[symbols].abs().mean().sort_values(ascending=False, kind="stable")
        largest = float(size.iloc[0])
        n_shown = MAX_WEIGHT_GROUPS - 1
        while n_shown < min(len(size), MAX_SHOWN_SYMBOLS) and float(size.iloc[n_shown:].sum()) > largest:
            n_shown += 1
        if n_shown == len(size) - 1:  # a bucket of one symbol is that symbol
            n_shown += 1
        rest = [str(s) for s in size.index[n_shown:]]
        keep = set(size.index[:n_shown])
        out = frame[[s for s in symbols if s in keep]].copy()
        groups: list[list[str]] = []
        total = math.inf
        for symbol in rest:
            if total + float(size[symbol]) > largest:
                groups.append([])
                total = 0.0
            groups[-1].append(symbol)
            total += float(size[symbol])
        if len(groups) > MAX_OTHER_BUCKETS:
            groups = [[str(s) for s in chunk] for chunk in np.array_split(np.array(rest), MAX_OTHER_BUCKETS)]
        for n, members in enumerate(groups, start=1):
            name = "other" if len(groups) == 1 else f"other {n}"
            buckets[name] = members
            out[name] = frame[members].sum(axis=1)
    if "cash" in assets:
        out["cash"] = frame["cash"]
    return out, buckets


def symbol_colors(n: int) -> list[str]:
    """``n`` stacked-area colours: tab10's nine hues in five shades, the hue changing fastest (repeats after 45)."""
    colors = []
    for i in range(n):
        hue = SYMBOL_HUES[i % len(SYMBOL_HUES)]
        shade = SYMBOL_SHADES[(i // len(SYMBOL_HUES)) % len(SYMBOL_SHADES)]
        colors.append(_shade(hue, shade))
    return colors


def _shade(color: str, amount: float) -> str:
    """Mix ``color`` with white (amount > 0) or black (amount < 0)."""
    rgb = [int(color[i : i + 2], 16) for i in (1, 3, 5)]
    target = 255 if amount > 0 else 0
    mixed = [round(c + (target - c) * abs(amount)) for c in rgb]
    return "#" + "".join(f"{c:02x}" for c in mixed)


def _block_means(groups: pd.DataFrame, step: int) -> pd.DataFrame:
    """Means over blocks of ``step`` rows, stamped with each block's last timestamp (no aliasing of daily moves)."""
    if step <= 1:
        return groups
    block = np.arange(len(groups)) // step
    means = groups.groupby(block).mean()
    means.index = pd.DatetimeIndex(groups.index.to_series().groupby(block).last())
    return means


def weights_figure(weights: pd.DataFrame, strategies: Sequence[str]) -> tuple[Any, int, dict[str, WeightView]]:
    """Stacked value weights per step, with a menu to choose the strategy.

    Returns the figure, the block size (steps per point) and per strategy what its view shows.
    """
    import plotly.graph_objects as go

    assets = [c for c in weights.columns if c not in ("timestamp", "strategy")]
    per_strategy: dict[str, tuple[pd.DataFrame, dict[str, list[str]]]] = {}
    step = 1
    for strategy in strategies:
        rows = weights[weights["strategy"] == strategy].sort_values("timestamp")
        per_strategy[strategy] = _weight_groups(rows.set_index("timestamp"), assets)
        step = max(step, math.ceil(len(rows) / MAX_WEIGHT_POINTS))
    # one colour per symbol across every strategy's view, in the file's symbol order
    shown = {column for groups, _ in per_strategy.values() for column in groups.columns}
    symbols = [a for a in assets if a in shown and a != "cash"]
    symbol_color = dict(zip(symbols, symbol_colors(len(symbols)), strict=True))
    symbol_color.update({f"other {n}": OTHER_COLORS[(n - 1) % len(OTHER_COLORS)] for n in range(1, 100)})
    symbol_color.update(other=OTHER_COLOR, cash=CASH_COLOR)
    traces: list[Any] = []
    owners: list[str] = []
    views: dict[str, WeightView] = {}
    for n, (strategy, (groups, buckets)) in enumerate(per_strategy.items()):
        shown_symbols = [c for c in groups.columns if c != "cash" and c not in buckets]
        largest = float(groups[shown_symbols].abs().mean().max()) if shown_symbols else 0.0
        within = all(float(groups[b].abs().mean()) <= largest * (1 + 1e-9) for b in buckets)
        views[strategy] = WeightView(symbols=shown_symbols, buckets=buckets, within_rule=within)
        sampled = _block_means(groups, step)
        x = _x_values(pd.DatetimeIndex(sampled.index))
        for column in sampled.columns:
            color = symbol_color[column]
            members = buckets.get(column)
            hover = "%{y:.1%}"
            if members:
                listed = ", ".join(members[:8]) + (f" and {len(members) - 8} more" if len(members) > 8 else "")
                hover += f" ({len(members)}: {_esc(listed)})"
            traces.append(
                go.Scatter(
                    x=x,
                    y=_rounded(sampled[column], 4),
                    name=column,
                    mode="lines",
                    stackgroup=strategy,
                    line={"width": 0.4, "color": color},
                    fillcolor=color,
                    visible=n == 0,
                    hovertemplate=hover,
                )
            )
            owners.append(strategy)
    figure = go.Figure(traces)
    extra: dict[str, Any] = {}
    if len(strategies) > 1:
        buttons = [
            {"label": s, "method": "update", "args": [{"visible": [o == s for o in owners]}]} for s in strategies
        ]
        extra["updatemenus"] = [_dropdown(buttons)]
    # tall enough for the legend of the strategy with the most series, without a scrollbar
    n_entries = max(len(groups.columns) for groups, _ in per_strategy.values())
    figure.update_layout(**_layout(max(440, TOP_MARGIN + 50 + 24 * n_entries), **extra))
    figure.update_xaxes(rangebreaks=_rangebreaks(pd.DatetimeIndex(weights["timestamp"].unique())))
    figure.update_yaxes(title_text="Weight", tickformat=".0%")
    return figure, step, views


def _dropdown(buttons: list[dict[str, Any]]) -> dict[str, Any]:
    """A strategy menu at the top left, above the plot area (the modebar sits at the top right)."""
    return {
        "type": "dropdown",
        "buttons": buttons,
        "x": 0,
        "xanchor": "left",
        "y": 1.02,
        "yanchor": "bottom",
        "pad": {"l": 0, "b": 4},
        "bgcolor": "#f9fafb",
        "bordercolor": "#d1d5db",
        "font": {"size": 12},
    }


def quarters_figure(quarters: pd.DataFrame, colors: dict[str, str]) -> Any:
    """A timeline: one row per agent, a bar over each quarter's trading window it was picked for."""
    import plotly.graph_objects as go

    has_windows = {"trade_start", "trade_end"} <= set(quarters.columns)
    scored = [c.removeprefix("sharpe_") for c in quarters.columns if c.startswith("sharpe_")]
    agents = list(dict.fromkeys([*scored, *quarters["picked"]]))
    traces: list[Any] = []
    for agent in agents:
        rows = quarters[quarters["picked"] == agent]
        color = colors.get(agent, AGENT_COLORS[len(traces) % len(AGENT_COLORS)])
        sharpe = rows[f"sharpe_{agent}"] if f"sharpe_{agent}" in rows else pd.Series(np.nan, index=rows.index)
        custom = [[q, _fmt(v, "ratio")] for q, v in zip(rows["quarter"], sharpe, strict=True)]
        template = "%{customdata[0]}: picked " + _esc(agent) + " (validation Sharpe %{customdata[1]})<extra></extra>"
        if has_windows:
            start = pd.DatetimeIndex(rows["trade_start"])
            # +1 day so the bar covers the last trading day; widths in milliseconds for a date axis
            width = (pd.DatetimeIndex(rows["trade_end"]) + pd.Timedelta(days=1) - start) / pd.Timedelta(milliseconds=1)
            traces.append(
                go.Bar(
                    base=_x_values(start),
                    x=list(width),
                    y=[agent] * len(rows),
                    orientation="h",
                    name=agent,
                    marker={"color": color, "line": {"color": "white", "width": 1}},
                    customdata=custom,
                    hovertemplate=template,
                    showlegend=False,
                )
            )
        else:  # no dates: one square per quarter on a categorical axis
            traces.append(
                go.Scatter(
                    x=list(rows["quarter"]),
                    y=[agent] * len(rows),
                    mode="markers",
                    name=agent,
                    marker={"color": color, "symbol": "square", "size": 14},
                    customdata=custom,
                    hovertemplate=template,
                    showlegend=False,
                )
            )
    figure = go.Figure(traces)
    figure.update_layout(
        **_layout(
            TOP_MARGIN + 40 + 34 * len(agents), hovermode="closest", margin={"l": 64, "r": 16, "t": TOP_MARGIN, "b": 30}
        ),
        bargap=0.25,
    )
    figure.update_yaxes(categoryorder="array", categoryarray=agents[::-1], showgrid=False, ticks="")
    if has_windows:
        figure.update_xaxes(type="date")
    return figure


def _sampled(frame: pd.DataFrame, max_points: int) -> tuple[pd.DataFrame, int]:
    """``frame`` as block means of at most ``max_points`` rows, and the block size."""
    step = max(1, math.ceil(len(frame) / max_points))
    return _block_means(frame, step), step


def _thin(series: pd.Series, max_points: int = MAX_CURVE_POINTS) -> pd.Series:
    """Every step-th value (and the last) so that at most about ``max_points`` remain."""
    step = max(1, math.ceil(len(series) / max_points))
    if step == 1:
        return series
    keep = np.zeros(len(series), dtype=bool)
    keep[::step] = True
    keep[-1] = True
    return series[keep]


def returns_heatmap(equity: pd.DataFrame, strategies: Sequence[Strategy]) -> Any:
    """Monthly returns, years by months, one heatmap per strategy behind a menu (the first agent first)."""
    import plotly.graph_objects as go

    tables = {s.column: analytics.monthly_returns(equity[s.column]) for s in strategies}
    values = np.concatenate([t.to_numpy().ravel() for t in tables.values()])
    finite = values[np.isfinite(values)]
    bound = float(np.abs(finite).max()) if finite.size else 0.1
    colorscale = [[0.0, "#b91c1c"], [0.25, "#f87171"], [0.5, "#f8fafc"], [0.75, "#4ade80"], [1.0, "#15803d"]]
    traces = []
    for n, (column, table) in enumerate(tables.items()):
        traces.append(
            go.Heatmap(
                z=[_rounded(row, 4) for row in table.to_numpy()],
                x=list(MONTHS),
                y=[str(year) for year in table.index],
                name=column,
                zmin=-bound,
                zmax=bound,
                zmid=0.0,
                colorscale=colorscale,
                showscale=False,
                xgap=2,
                ygap=2,
                texttemplate="%{z:.1%}",
                textfont={"size": 12},
                hovertemplate=f"{_esc(column)} %{{y}} %{{x}}: %{{z:.2%}}<extra></extra>",
                hoverongaps=False,
                visible=n == 0,
            )
        )
    figure = go.Figure(traces)
    n_years = max(len(t) for t in tables.values())
    extra: dict[str, Any] = {}
    if len(tables) > 1:
        buttons = [{"label": c, "method": "update", "args": [{"visible": [c == o for o in tables]}]} for c in tables]
        extra["updatemenus"] = [_dropdown(buttons)]
    figure.update_layout(**_layout(TOP_MARGIN + 40 + 34 * n_years, hovermode="closest", **extra))
    figure.update_layout(margin={"l": 64, "r": 16, "t": TOP_MARGIN, "b": 30})
    figure.update_xaxes(showgrid=False, ticks="", side="bottom")
    figure.update_yaxes(showgrid=False, ticks="", autorange="reversed", type="category")
    return figure


def rolling_figure(
    equity: pd.DataFrame,
    strategies: Sequence[Strategy],
    colors: dict[str, str],
    annualization: Annualization,
    risk_free: float = 0.0,
) -> tuple[Any, int]:
    """Rolling Sharpe ratio (top) and volatility (bottom) of each strategy's first seed; returns (figure, window).

    The agents and the index are shown, the other baselines are a click away in the legend.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    ppy = annualization.periods_per_year
    window = analytics.rolling_window(ppy, len(equity) - 1)
    figure = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.12,
        subplot_titles=(f"Rolling Sharpe ratio ({_window_text(window, ppy)})", "Rolling volatility"),
    )
    shown = [s for s in strategies if s.seed == 0]
    for s in shown:
        # rolling statistics are smooth: every step-th bar draws the same curve with fewer points
        sharpe = _thin(analytics.rolling_sharpe(equity[s.column], window, ppy, risk_free))
        volatility = _thin(analytics.rolling_volatility(equity[s.column], window, ppy))
        line = {"color": colors[s.base], "width": 2.0 if s.is_agent else 1.4}
        if not s.is_agent:
            line["dash"] = BASELINE_DASH.get(s.base, "solid")
        visible: bool | str = True if s.is_agent or s.base == "index" else "legendonly"
        for row, (series, fmt) in enumerate(((sharpe, ".2f"), (volatility, ".1%")), start=1):
            figure.add_trace(
                go.Scatter(
                    x=_x_values(pd.DatetimeIndex(series.index)),
                    y=_rounded(series, 4),
                    name=s.column,
                    mode="lines",
                    line=line,
                    legendgroup=s.column,
                    showlegend=row == 1,
                    visible=visible,
                    hovertemplate=f"%{{y:{fmt}}}",
                ),
                row=row,
                col=1,
            )
    _left_titles(figure, 1)
    figure.update_layout(**_layout(560))
    figure.update_xaxes(**AXIS, rangebreaks=_rangebreaks(pd.DatetimeIndex(equity.index)))
    figure.update_yaxes(**AXIS)
    figure.update_yaxes(title_text="Sharpe", tickformat=".1f", row=1, col=1)
    figure.update_yaxes(title_text="Volatility", tickformat=".0%", rangemode="tozero", row=2, col=1)
    return figure, window


def _window_text(window: int, periods_per_year: int) -> str:
    months = window / periods_per_year * 12
    span = f"{months:.1f} months" if months >= 1 else f"{window / periods_per_year * 365:.1f} days"
    return f"{window:,} bars ≈ {span.replace('.0 ', ' ')}"


def lines_figure(
    frame: pd.DataFrame,
    strategies: Sequence[Strategy],
    colors: dict[str, str],
    *,
    height: int,
    y_title: str,
    tickformat: str,
    hover_format: str,
) -> tuple[Any, int]:
    """One line per strategy (as the equity plot), block means beyond MAX_CURVE_POINTS; returns (figure, block size)."""
    import plotly.graph_objects as go

    sampled, step = _sampled(frame, MAX_CURVE_POINTS)
    traces = _curve_traces(sampled, strategies, colors, hover_format=hover_format, digits=5)
    figure = go.Figure(traces)
    n_entries = sum(1 for t in traces if t.showlegend is not False)
    figure.update_layout(**_layout(max(height, TOP_MARGIN + 50 + 30 * n_entries)))  # the legend without a scrollbar
    figure.update_xaxes(rangebreaks=_rangebreaks(pd.DatetimeIndex(frame.index)))
    figure.update_yaxes(title_text=y_title, tickformat=tickformat)
    return figure, step


# --------------------------------------------------------------------------------------------
# HTML sections


PRICES = {
    "adjusted": "split- and dividend-adjusted prices",
    "source-adjusted": "prices adjusted by the data source (no adj_close column)",
    "as stored": "prices as stored (no adj_close column to adjust with)",
    "raw": "raw prices (no corporate-action adjustment)",
}
PRICES_SHORT = {"adjusted": "adjusted", "source-adjusted": "adjusted (source)", "as stored": "as stored", "raw": "raw"}


def _run_id(run: Run) -> str:
    backtest = run.backtest or {}
    return str(backtest.get("run_id") or run.manifest.get("run_id") or run.manifest.get("name") or run.run_dir.name)


def _header(run: Run, strategies: Sequence[Strategy]) -> str:
    manifest = run.manifest
    algorithm = str(manifest.get("algorithm") or next((s.base for s in strategies if s.is_agent), "agent"))
    env = manifest.get("env")
    symbols = manifest.get("symbols") if isinstance(manifest.get("symbols"), list) else None
    name = str(manifest.get("name") or run.run_dir.name)
    what = f"{algorithm} agent" + (f" on the {env} environment" if env else "")
    if symbols:
        what += f" · {len(symbols)} symbols"
    traded = _traded_range(run)
    configured = _period(manifest.get("test"))
    traded_tip = f"first and last bar of equity.csv ({len(run.equity):,} bars)"
    if configured:
        traded_tip += f"; requested test range {configured}"
    backtest = ""
    if run.backtest is not None:
        backtest = (
            f'<p class="backtest">Re-backtest of run <strong>{_esc(_run_id(run))}</strong> over '
            f'<strong>{_esc(traded)}</strong> (folder <span class="mono">{_esc(run.run_dir.name)}</span>).'
            + (f" <strong>Warning:</strong> {_esc(run.backtest['warning'])}" if run.backtest.get("warning") else "")
            + "</p>\n"
        )
    ann = run.annualization
    facts: list[tuple[str, str | None, str | None]] = [
        ("Train", _period(manifest.get("train")), None),
        ("Re-backtest" if run.backtest is not None else "Test (out of sample)", traded, traded_tip),
        ("Symbols", str(len(symbols)) if symbols else None, ", ".join(map(str, symbols)) if symbols else None),
        ("Seeds", _seeds(manifest.get("seeds")), None),
        ("Costs", manifest.get("cost"), None),
        ("Timing", manifest.get("timing"), None),
        (
            "Prices",
            PRICES_SHORT.get(str(manifest.get("prices"))),
            PRICES.get(str(manifest.get("prices"))),
        ),
        ("Bars a year", f"{ann.periods_per_year:,}", ann.basis),
        ("Dataset", _short_hash(manifest.get("dataset_hash")), manifest.get("dataset_hash")),
        # a null commit (not run from a git checkout) is worth showing; an absent key is not
        (
            "Git commit",
            _short_hash(manifest["git_commit"], 8) if "git_commit" in manifest else None,
            manifest.get("git_commit"),
        ),
        ("Created", _created(manifest.get("created")), None),
        ("Wall time", _duration(manifest.get("wall_time_s")), None),
        ("Run id", manifest.get("run_id"), None),
    ]
    items = []
    for label, value, title in facts:
        if value is None:
            continue
        tip = f' title="{_esc(title)}"' if title else ""
        items.append(f"<div><dt>{_esc(label)}</dt><dd{tip}>{_esc(value)}</dd></div>")
    return (
        f"<header><h1>{_esc(name)}</h1>\n"
        f'<p class="subtitle">{_esc(what)}</p>\n{backtest}'
        f'<dl class="facts">{"".join(items)}</dl></header>'
    )


def _how_to_read(run: Run) -> str:
    manifest = run.manifest
    ann = run.annualization
    what = f"{len(run.equity):,} bars, first and last traded bar: {_traded_range(run)}"
    if run.backtest is not None:
        period = f"a re-backtest of run {_esc(_run_id(run))} ({_esc(what)})"
    else:
        period = f"the <strong>out-of-sample test period only</strong> ({_esc(what)})"
    costs = []
    prices = PRICES.get(str(manifest.get("prices")))
    if prices:
        costs.append(f"trades {_esc(prices)}")
    if manifest.get("cost"):
        costs.append(f"pays <code>{_esc(manifest['cost'])}</code>")
    if manifest.get("timing"):
        costs.append(f"fills orders at <code>{_esc(manifest['timing'])}</code>")
    cost_text = (
        (" Every strategy " + ", ".join(costs[:-1]) + (" and " if len(costs) > 1 else "") + costs[-1] + ".")
        if costs
        else ""
    )
    return (
        '<p class="howto"><strong>How to read this.</strong> Every number and curve below covers '
        f"{period}.{cost_text} "
        f"Sharpe and Sortino ratios and volatilities are annualised with {_esc(ann.sqrt_text)} from per-bar returns "
        f"({_esc(ann.basis)}); returns, volatility and drawdowns are in percent. "
        "Best value per column in <strong>bold</strong>.</p>"
    )


def _best_rows(values: dict[str, float | None], better: str | None) -> set[str]:
    finite = {k: v for k, v in values.items() if v is not None and math.isfinite(v)}
    if better is None or len(finite) < 2:
        return set()
    score = {k: (v if better == "high" else -abs(v) if better == "near_zero" else -v) for k, v in finite.items()}
    top = max(score.values())
    return {k for k, v in score.items() if math.isclose(v, top, rel_tol=1e-12, abs_tol=1e-12)}


def _name_cell(name: str, color: str | None) -> str:
    swatch = f'<span class="swatch" style="background:{color}"></span>' if color else ""
    return f"<td>{swatch}{_esc(name)}</td>"


def _metrics_table(run: Run, colors: dict[str, str]) -> str:
    rows = classify(run.metrics, run.manifest.get("algorithm"))
    known = {m.key for m in METRICS}
    extra_keys = list(dict.fromkeys(k for r in run.metrics.values() for k in r if k not in known))
    metrics = [m for m in METRICS if any(m.key in r for r in run.metrics.values())]
    metrics += [Metric(k, k.replace("_", " "), "ratio", None, k) for k in extra_keys]
    return _strategy_table("metrics", rows, metrics, run.metrics, colors, run.annualization)


def _welch_sentence(summary: dict[str, Any], agent: str | None) -> str:
    welch = summary.get("welch")
    if not isinstance(welch, dict) or welch.get("p") is None:
        return ""
    vs = str(welch.get("vs", "the baseline"))
    agent = str(welch.get("strategy") or agent or "the agent")
    statistic = str(welch.get("statistic", "final_value")).replace("_", " ")
    sign = {"greater": ">", "less": "<"}.get(str(welch.get("alternative")), "≠")
    sided = "one-sided" if sign != "≠" else "two-sided"
    p = float(welch["p"])
    alpha = 1.0 - float(summary.get("confidence", 0.95))
    verdict = f"significant at the {alpha:.0%} level" if p < alpha else f"not significant at the {alpha:.0%} level"
    t = f"t = {float(welch['t']):.2f}, " if welch.get("t") is not None else ""
    return (
        f'<p class="note">Welch\'s t-test on the {_esc(statistic)} over seeds, {sided} '
        f"(H₁: mean {_esc(agent)} {_esc(sign)} mean {_esc(vs)}): {t}p = {p:.3g} — <strong>{verdict}</strong>.</p>"
    )


def _seeds_table(
    summary: dict[str, Any], colors: dict[str, str], algorithm: str | None, annualization: Annualization
) -> str:
    entries = summary["strategies"]
    names = [str(e["name"]) for e in entries]
    order = {s.column: i for i, s in enumerate(classify(names, algorithm))}
    entries = sorted(entries, key=lambda e: order[str(e["name"])])
    confidence = float(summary.get("confidence", 0.95))
    n_seeds = max((int(e.get("n_seeds", 0)) for e in entries), default=0)
    by_key = {m.key: m for m in METRICS}
    shown = [by_key[k] for k in SEED_METRICS if any(k in (e.get("mean") or {}) for e in entries)]
    head = "".join(f'<th class="num" title="{_esc(_help(m, annualization))}">{_esc(m.label)}</th>' for m in shown)
    head += f'<th class="num" title="{confidence:.0%} confidence interval of the mean Sharpe over seeds">'
    head += f"Sharpe {confidence:.0%} CI</th>"
    head += '<th class="num" title="Probabilistic Sharpe ratio: probability that the true Sharpe is above 0">PSR</th>'
    body = []
    for e in entries:
        name = str(e["name"])
        mean, std = e.get("mean") or {}, e.get("std") or {}
        is_agent = name not in BASELINES
        cells = [_name_cell(name, colors.get(name)), f'<td class="num">{_esc(e.get("n_seeds", "—"))}</td>']
        for m in shown:
            text = _fmt(mean.get(m.key), m.kind)
            if std.get(m.key) is not None:
                text += f' <span class="muted">± {_fmt(std[m.key], m.kind)}</span>'
            cells.append(f'<td class="num">{text}</td>')
        ci = e.get("sharpe_ci")
        ci_text = f"[{_fmt(ci[0], 'ratio')}, {_fmt(ci[1], 'ratio')}]" if isinstance(ci, list) and len(ci) == 2 else "—"
        cells.append(f'<td class="num">{ci_text}</td>')
        cells.append(f'<td class="num">{_fmt(e.get("psr"), "ratio")}</td>')
        body.append(f'<tr class="{"agent" if is_agent else "baseline"}">{"".join(cells)}</tr>')
    agent = next((str(e["name"]) for e in entries if str(e["name"]) not in BASELINES), None)
    return (
        f'<h2 id="seeds">Results over {n_seeds} seed{"s" if n_seeds != 1 else ""}</h2>\n'
        '<div class="table-wrap"><table class="seeds">'
        f'<thead><tr><th>Strategy</th><th class="num">Seeds</th>{head}</tr></thead>\n<tbody>\n'
        + "\n".join(body)
        + "\n</tbody></table></div>\n"
        + '<p class="note">Mean ± standard deviation over seeds.</p>'
        + _welch_sentence(summary, agent)
    )


def _quarters_table(quarters: pd.DataFrame, colors: dict[str, str]) -> str:
    sharpe_columns = [c for c in quarters.columns if c.startswith("sharpe_")]
    windows = [(label, f"{label.lower()}_start", f"{label.lower()}_end") for label in ("Train", "Val", "Trade")]
    windows = [w for w in windows if w[1] in quarters.columns and w[2] in quarters.columns]
    has_turbulence = "turbulence_threshold" in quarters.columns
    # two header rows: the windows and the validation Sharpes each under one group label
    top = '<th rowspan="2">Quarter</th>'
    top += f'<th colspan="{len(windows)}" class="group">Windows</th>' if windows else ""
    top += '<th rowspan="2">Picked</th>'
    if sharpe_columns:
        top += f'<th colspan="{len(sharpe_columns)}" class="group num">Validation Sharpe</th>'
    if has_turbulence:
        top += (
            '<th rowspan="2" class="num" title="Turbulence index above which the agent moves to cash">Turbulence</th>'
        )
    sub = "".join(f"<th>{label}</th>" for label, _, _ in windows)
    sub += "".join(f'<th class="num">{_esc(c.removeprefix("sharpe_"))}</th>' for c in sharpe_columns)
    body = []
    for _, row in quarters.iterrows():
        picked = str(row["picked"])
        cells = [f"<td>{_esc(row['quarter'])}</td>"]
        cells += [f"<td>{_date(row[start])} → {_date(row[end])}</td>" for _, start, end in windows]
        color = colors.get(picked, OTHER_COLOR)
        cells.append(f'<td><span class="chip" style="background:{color}">{_esc(picked)}</span></td>')
        for column in sharpe_columns:
            css = "num best" if column == f"sharpe_{picked}" else "num"
            cells.append(f'<td class="{css}">{_fmt(row[column], "ratio")}</td>')
        if has_turbulence:
            cells.append(f'<td class="num">{_fmt(row["turbulence_threshold"], "ratio")}</td>')
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (
        '<div class="table-wrap"><table class="quarters">'
        f"<thead><tr>{top}</tr><tr>{sub}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody></table></div>"
    )


def _strategy_table(
    css: str,
    rows: Sequence[Strategy],
    columns: Sequence[Metric],
    values: Mapping[str, Mapping[str, float | None]],
    colors: dict[str, str],
    annualization: Annualization,
) -> str:
    """A table of one row per strategy (agents first and highlighted, seeds indented), best per column bold."""
    best = {m.key: _best_rows({s.column: values[s.column].get(m.key) for s in rows}, m.better) for m in columns}
    head = "".join(f'<th class="num" title="{_esc(_help(m, annualization))}">{_esc(m.label)}</th>' for m in columns)
    body = []
    first_baseline = next((s.column for s in rows if not s.is_agent), None)
    for s in rows:
        classes = ["agent" if s.is_agent else "baseline"]
        if s.seed > 0:
            classes.append("seed")
        if s.column == first_baseline and any(r.is_agent for r in rows):
            classes.append("first-baseline")
        cells = [_name_cell(s.column, colors.get(s.base))]
        for m in columns:
            value = values[s.column].get(m.key)
            cell_css = "num best" if s.column in best[m.key] else "num"
            cells.append(f'<td class="{cell_css}">{_fmt(value, m.kind)}</td>')
        body.append(f'<tr class="{" ".join(classes)}">{"".join(cells)}</tr>')
    return (
        f'<div class="table-wrap"><table class="{css}">'
        f"<thead><tr><th>Strategy</th>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody></table></div>"
    )


def _extended_section(run: Run, strategies: Sequence[Strategy], colors: dict[str, str]) -> str:
    from rltrade.backtest.metrics import per_period_rate

    ann = run.annualization
    has_index = "index" in run.equity.columns
    rf = per_period_rate(run.risk_free, ann.periods_per_year)
    values = analytics.extended_metrics(run.equity, periods_per_year=ann.periods_per_year, risk_free=rf)
    columns = [m for m in EXTENDED_METRICS if has_index or m.key not in BENCHMARK_METRICS]
    table = _strategy_table("extended", strategies, columns, values, colors, ann)
    notes = []
    if has_index:
        notes.append("Alpha, beta, information ratio and tracking error are measured against the index column.")
    else:
        notes.append("No index column in equity.csv: no alpha, beta, information ratio or tracking error.")
    notes.append(
        "VaR and CVaR are historical, of one bar's return (95%: the worst 5% of bars); "
        "skew and kurtosis are bias-corrected sample moments (excess kurtosis: 0 for a normal distribution)."
    )
    return '<h2 id="extended">Extended metrics</h2>\n' + table + f'\n<p class="note">{" ".join(notes)}</p>'


def _frame_rows(frame: pd.DataFrame) -> dict[str, dict[str, float | None]]:
    """Row label -> column label (as text) -> the number (None when not finite)."""
    return {
        str(label): {str(c): (float(v) if math.isfinite(float(v)) else None) for c, v in row.items()}
        for label, row in frame.iterrows()
    }


def _lead_strategies(strategies: Sequence[Strategy]) -> list[Strategy]:
    """The first seed of each agent (or the first strategy when there is no agent)."""
    lead = [s for s in strategies if s.is_agent and s.seed == 0]
    return lead or list(strategies[:1])


def _drawdowns_table(run: Run, strategies: Sequence[Strategy], colors: dict[str, str]) -> str:
    intraday = run.intraday
    body = []
    for s in _lead_strategies(strategies):
        episodes = analytics.worst_drawdowns(run.equity[s.column], TOP_DRAWDOWNS)
        for rank, row in episodes.iterrows():
            recovery = _stamp(row["recovery"], intraday) if pd.notna(row["recovery"]) else "not recovered"
            cells = [
                _name_cell(s.column, colors.get(s.base)) if rank == 0 else "<td></td>",
                f'<td class="num">{int(str(rank)) + 1}</td>',
                f"<td>{_stamp(row['peak'], intraday)}</td>",
                f"<td>{_stamp(row['trough'], intraday)}</td>",
                f'<td class="{"" if pd.notna(row["recovery"]) else "muted"}">{recovery}</td>',
                f'<td class="num">{_fmt(float(row["depth"]), "pct")}</td>',
                f'<td class="num">{int(row["bars_to_trough"]):,}</td>',
                f'<td class="num">{int(row["bars"]):,}</td>',
                f'<td class="num">{int(row["days"]):,}</td>',
            ]
            body.append(f'<tr class="{"group-start" if rank == 0 else ""}">{"".join(cells)}</tr>')
        if episodes.empty:
            body.append(f'<tr>{_name_cell(s.column, colors.get(s.base))}<td colspan="8">no drawdown</td></tr>')
    head = (
        '<th>Strategy</th><th class="num">#</th>'
        '<th title="Last bar at the running high before the fall">Peak</th>'
        '<th title="Lowest point of the drawdown">Trough</th>'
        '<th title="First bar back at the old high">Recovery</th>'
        '<th class="num" title="Fall from the peak to the trough">Depth</th>'
        '<th class="num" title="Bars from the peak to the trough">Bars to trough</th>'
        '<th class="num" title="Bars from the peak to the recovery (to the last bar if not recovered)">Bars</th>'
        '<th class="num" title="Calendar days from the peak to the recovery (to the last bar)">Days</th>'
    )
    return (
        f'<h3 id="worst-drawdowns">Worst {TOP_DRAWDOWNS} drawdowns</h3>\n'
        '<div class="table-wrap"><table class="drawdowns">'
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody></table></div>"
    )


def _returns_section(run: Run, strategies: Sequence[Strategy], colors: dict[str, str]) -> str:
    figure = returns_heatmap(run.equity, strategies)
    yearly = analytics.yearly_returns(run.equity)
    spans = analytics.year_spans(pd.DatetimeIndex(run.equity.index))
    intraday = run.intraday
    columns = []
    for year in yearly.columns:
        first, last = spans[int(year)]
        partial = first.month > 1 or first.day > 7 or last.month < 12 or last.day < 24
        label = f"{year}*" if partial else str(year)
        help_text = f"{_stamp(first, intraday)} → {_stamp(last, intraday)}"
        columns.append(Metric(str(year), label, "pct", "high", help_text + (" (part of the year)" if partial else "")))
    values = _frame_rows(yearly)
    table = _strategy_table("yearly", strategies, columns, values, colors, run.annualization)
    n = len(strategies)
    note = "Compounded returns per calendar month and year; a year marked * is covered only in part. " + (
        "Pick another strategy in the menu." if n > 1 else ""
    )
    return (
        '<h2 id="returns">Monthly and yearly returns</h2>\n'
        + _figure_html(figure, "monthly-plot")
        + "\n<h3>Yearly returns</h3>\n"
        + table
        + f'\n<p class="note">{note}</p>'
    )


def _rolling_section(run: Run, strategies: Sequence[Strategy], colors: dict[str, str]) -> str:
    figure, window = rolling_figure(run.equity, strategies, colors, run.annualization, _per_period_rf(run))
    ann = run.annualization
    note = (
        f"Over the trailing {_window_text(window, ann.periods_per_year)}, annualised with {_esc(ann.sqrt_text)} "
        f"({_esc(ann.basis)}). The agents and the index are shown; click a baseline in the legend to add it."
    )
    return (
        '<h2 id="rolling">Rolling Sharpe and volatility</h2>\n'
        + f'<p class="note">{note}</p>\n'
        + _figure_html(figure, "rolling-plot")
    )


def _per_period_rf(run: Run) -> float:
    from rltrade.backtest.metrics import per_period_rate

    return per_period_rate(run.risk_free, run.annualization.periods_per_year)


def _exposure_section(weights: pd.DataFrame, colors: dict[str, str], algorithm: str | None) -> str:
    frame = analytics.exposure(weights)
    strategies = classify(frame.columns, algorithm)
    figure, step = lines_figure(
        frame, strategies, colors, height=360, y_title="Exposure", tickformat=".0%", hover_format=".1%"
    )
    note = "1 − cash weight after each step: the share of the portfolio value invested (above 100%: leverage)."
    if step > 1:
        note += f" Each point is the mean over {step} steps."
    return f'<h2 id="exposure">Exposure</h2>\n<p class="note">{note}</p>\n' + _figure_html(figure, "exposure-plot")


def _costs_section(run: Run, colors: dict[str, str], algorithm: str | None) -> str:
    assert run.costs is not None
    ann = run.annualization
    summary = analytics.cost_summary(run.costs, run.equity, ann.periods_per_year)
    strategies = classify(summary.index, algorithm)
    columns = [
        Metric("total", "Costs paid", "value", "low", "Sum of the costs paid, in the portfolio's currency"),
        Metric("of_initial", "Of initial capital", "pct", "low", "Costs paid / initial portfolio value"),
        Metric("per_year", "Drag /yr", "pct", "low", "Costs paid / mean portfolio value, per year of bars ({basis})"),
        Metric("bars", "Bars with costs", "count", None, "Bars in which the strategy paid a cost"),
    ]
    values = _frame_rows(summary)
    table = _strategy_table("costs", strategies, columns, values, colors, ann)
    cumulative = run.costs[[s.column for s in strategies]].cumsum()
    figure, step = lines_figure(
        cumulative,
        strategies,
        colors,
        height=360,
        y_title="Costs paid (cumulative)",
        tickformat=",.3~s",
        hover_format=",.0f",
    )
    note = "From costs.csv: the cost paid in the step ending at each bar."
    if step > 1:
        note += f" Each point of the plot is the mean over {step} steps."
    return (
        '<h2 id="costs">Costs</h2>\n' + table + f'\n<p class="note">{note}</p>\n' + _figure_html(figure, "costs-plot")
    )


def _trades_section(run: Run, colors: dict[str, str], algorithm: str | None) -> str:
    assert run.trades is not None
    trades = run.trades
    intraday = run.intraday
    summary = analytics.trade_summary(trades)
    strategies = classify(summary.index, algorithm)
    columns = [
        Metric("trades", "Trades", "count", None, "Rows of trades.csv: one per bar and symbol whose holding changed"),
        Metric("bars", "Bars with trades", "count", None, "Bars in which the strategy traded"),
        Metric("bought", "Bought", "value", None, "Notional bought (quantity × close × multiplier)"),
        Metric("sold", "Sold", "value", None, "Notional sold (quantity × close × multiplier)"),
    ]
    values = _frame_rows(summary)
    parts = [
        '<h2 id="trades">Trades</h2>',
        _strategy_table("trade-summary", strategies, columns, values, colors, run.annualization),
    ]
    shown = [c for c in ("quantity", "holding", "price", "notional") if c in trades.columns]
    labels = {"quantity": "Quantity", "holding": "Holding", "price": "Price (close)", "notional": "Notional"}
    for n, s in enumerate(_lead_strategies(strategies)):
        rows = trades[trades["strategy"] == s.column].sort_values("timestamp", kind="stable")
        last = rows.tail(MAX_TRADE_ROWS)
        head = "<th>Time</th><th>Symbol</th>" + "".join(f'<th class="num">{labels[c]}</th>' for c in shown)
        body = []
        for _, row in last.iloc[::-1].iterrows():
            cells = [f"<td>{_stamp(row['timestamp'], intraday)}</td>", f"<td>{_esc(row['symbol'])}</td>"]
            for column in shown:
                css = "num buy" if column == "quantity" and row[column] > 0 else "num"
                cells.append(f'<td class="{css}">{_number(float(row[column]), column)}</td>')
            body.append(f"<tr>{''.join(cells)}</tr>")
        count = f"the last {len(last):,} of {len(rows):,}" if len(rows) > len(last) else f"all {len(rows):,}"
        title = f"{s.column}: {count} trades, newest first"
        parts.append(
            f"<details{' open' if n == 0 else ''}><summary>{_esc(title)}</summary>"
            '<div class="table-wrap scroll"><table class="trades">'
            f"<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody></table></div></details>"
        )
    parts.append(
        '<p class="note">Price is the close of the bar, not the fill price (that depends on the timing); '
        "notional = quantity × price × multiplier, positive for buys.</p>"
    )
    return "\n".join(parts)


def _number(value: float, column: str) -> str:
    if not math.isfinite(value):
        return "—"
    if column == "price":
        return f"{value:,.2f}"
    if column == "notional":
        return f"{value:,.0f}"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.4g}"


def _compact_json(value: Any, indent: str = "") -> str:
    """Indented JSON whose lists of plain values (seeds, symbols) stay on one line."""
    if isinstance(value, dict) and value:
        inner = indent + "  "
        items = [f"{inner}{json.dumps(str(k))}: {_compact_json(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        inner = indent + "  "
        return "[\n" + ",\n".join(inner + _compact_json(v, inner) for v in value) + f"\n{indent}]"
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _details(title: str, text: str, open_: bool = False) -> str:
    return f"<details{' open' if open_ else ''}><summary>{_esc(title)}</summary><pre>{_esc(text)}</pre></details>"


def _version() -> str:
    from rltrade import __version__

    return __version__


def render_report(run: Run) -> str:
    """The whole report as one HTML string (plotly.js inlined once; no network access needed to view it)."""
    from plotly.offline import get_plotlyjs

    algorithm = run.manifest.get("algorithm")
    strategies = classify(run.equity.columns, algorithm)
    # every name any table or plot shows, so a strategy keeps its colour everywhere
    names = [*run.equity.columns, *run.metrics]
    if run.summary:
        names += [str(entry["name"]) for entry in run.summary["strategies"]]
    if run.quarters is not None:
        names += [str(picked) for picked in run.quarters["picked"]]
    if run.weights is not None:
        names += [str(s) for s in run.weights["strategy"].unique()]
    if run.trades is not None:
        names += [str(s) for s in run.trades["strategy"].unique()]
    if run.costs is not None:
        names += [str(c) for c in run.costs.columns]
    colors = base_colors(classify(dict.fromkeys(names), algorithm))
    ann = run.annualization

    sections = [_header(run, strategies), _nav(run), _how_to_read(run)]
    sections.append('<h2 id="metrics">Metrics</h2>\n' + _metrics_table(run, colors))
    sections.append(_extended_section(run, strategies, colors))
    if run.summary:
        sections.append(_seeds_table(run.summary, colors, algorithm, ann))
    sections.append('<h2 id="equity">Equity</h2>')
    sections.append(_figure_html(equity_figure(run.equity, strategies, colors), "equity-plot"))
    sections.append('<h2 id="drawdown">Drawdown</h2>')
    sections.append(
        '<p class="note">The fall from the running peak, one panel per strategy (other seeds thin), on shared axes.</p>'
    )
    sections.append(_figure_html(drawdown_figure(run.equity, strategies, colors), "drawdown-plot"))
    sections.append(_drawdowns_table(run, strategies, colors))
    sections.append(_returns_section(run, strategies, colors))
    if len(run.equity) > 4:
        sections.append(_rolling_section(run, strategies, colors))
    if run.weights is not None:
        sections.append(_weights_section(run.weights, algorithm))
        if "cash" in run.weights.columns:
            sections.append(_exposure_section(run.weights, colors, algorithm))
    if run.costs is not None:
        sections.append(_costs_section(run, colors, algorithm))
    if run.trades is not None:
        sections.append(_trades_section(run, colors, algorithm))
    if combined.applies(run):  # direct_rl and combined runs: training, predictors, stops
        sections.append(combined.section(run))
    if run.quarters is not None:
        sections.append('<h2 id="quarters">Picks per quarter</h2>')
        sections.append(_figure_html(quarters_figure(run.quarters, colors), "quarters-plot"))
        sections.append(_quarters_table(run.quarters, colors))
    sections.append('<h2 id="details">Run details</h2>')
    if run.backtest is not None:
        sections.append(_details("Re-backtest (backtest.json)", _compact_json(run.backtest)))
    source = "the run's config.yaml" if run.backtest is not None else "config.yaml"
    sections.append(_details(f"Config ({source})", run.config_text))
    manifest_title = (
        "Manifest (the run's manifest.json; test range, annualisation, prices and dataset hash from backtest.json)"
        if run.backtest is not None
        else "Manifest (manifest.json)"
    )
    sections.append(_details(manifest_title, _compact_json(run.manifest)))
    sections.append(
        f'<footer>Generated by rltrade {_esc(_version())} from <span class="mono">{_esc(run.run_dir.name)}</span>. '
        "Self-contained: opens offline.</footer>"
    )
    template = string.Template(resources.files(__package__).joinpath("template.html").read_text(encoding="utf-8"))
    title = f"{run.manifest.get('name') or run.run_dir.name} — rltrade report"
    if run.backtest is not None:
        title = f"{run.manifest.get('name') or _run_id(run)} — re-backtest {_traded_range(run)} — rltrade report"
    return template.substitute(
        title=_esc(title), version=_esc(_version()), plotly_js=get_plotlyjs(), body="\n".join(sections)
    )


def _weights_section(weights: pd.DataFrame, algorithm: str | None) -> str:
    strategies = [s.column for s in classify(dict.fromkeys(weights["strategy"]), algorithm)]
    figure, step, views = weights_figure(weights, strategies)
    first = views[strategies[0]]
    notes = [f"Value weights after each step, starting with <strong>{_esc(strategies[0])}</strong>."]
    if len(strategies) > 1:
        notes.append("Pick another strategy in the menu.")
    if first.buckets:
        n_summed = sum(len(m) for m in first.buckets.values())
        into = "“other”" if len(first.buckets) == 1 else f"{len(first.buckets)} grey “other” buckets"
        rule = (
            "each no larger on average than the largest position shown"
            if first.within_rule
            else f"too many to keep each below the largest position shown; at most {MAX_OTHER_BUCKETS} buckets"
        )
        notes.append(
            f"For {_esc(strategies[0])}, {len(first.symbols)} symbols are shown one by one and the "
            f"{n_summed} smallest positions are summed into {into} (hover to see which), {rule}."
        )
    if step > 1:
        notes.append(f"Each point is the mean over {step} steps.")
    return f'<h2 id="weights">Weights</h2>\n<p class="note">{" ".join(notes)}</p>\n' + _figure_html(
        figure, "weights-plot"
    )


def _nav(run: Run) -> str:
    links = [("metrics", "Metrics"), ("extended", "Extended")]
    if run.summary:
        links.append(("seeds", "Seeds"))
    links += [("equity", "Equity"), ("drawdown", "Drawdown"), ("returns", "Returns")]
    if len(run.equity) > 4:
        links.append(("rolling", "Rolling"))
    if run.weights is not None:
        links.append(("weights", "Weights"))
        if "cash" in run.weights.columns:
            links.append(("exposure", "Exposure"))
    if run.costs is not None:
        links.append(("costs", "Costs"))
    if run.trades is not None:
        links.append(("trades", "Trades"))
    if run.quarters is not None:
        links.append(("quarters", "Quarters"))
    links.append(("details", "Config &amp; manifest"))
    return '<nav class="toc">' + "".join(f'<a href="#{a}">{t}</a>' for a, t in links) + "</nav>"


def write_report(run_dir: str | Path, output: str | Path | None = None) -> Path:
    """Render ``run_dir`` into ``output`` (default ``RUN_DIR/report.html``), atomically; return the path."""
    run = Run.open(run_dir)
    target = Path(output) if output is not None else run.run_dir / REPORT_NAME
    text = render_report(run)
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    temporary = Path(name)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        temporary.chmod(0o644)  # mkstemp makes it owner-only; a report is meant to be shared
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    logger.info("wrote report %s (%.1f MB)", target, len(text) / 1e6)
    return target
