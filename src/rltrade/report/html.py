"""Render a training run directory into one self-contained, offline HTML page.

``write_report(run_dir)`` reads the files a run leaves behind (``config.yaml``, ``manifest.json``,
``equity.csv``, ``metrics.json`` and, when present, ``weights.csv``, ``summary.json``,
``quarters.csv``) into a :class:`RunFiles` and renders them with plotly; plotly.js is inlined
once, so the page opens without a network connection.
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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rltrade.errors import RLTradeError

logger = logging.getLogger(__name__)

REPORT_NAME = "report.html"

# Strategies the backtest runs next to the agents. Every other equity column is an agent.
BASELINES = ("buy_and_hold", "equal_weight", "min_variance", "random", "index")

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

# Stacked-area colours for the weights plot (tab20 order), then grey for "other" and cash.
SYMBOL_COLORS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#bcbd22", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2",
    "#9edae5", "#dbdb8d",
)  # fmt: skip
OTHER_COLOR = "#c3c8cf"
CASH_COLOR = "#eceef1"
MAX_WEIGHT_GROUPS = 12  # symbols shown one by one; the smallest beyond that become "other"
MAX_WEIGHT_POINTS = 750  # beyond this the weights plot shows means over blocks of steps

FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
PLOT_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}


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
    Metric("annual_return", "Annual return", "pct", "high", "Compound annual growth rate"),
    Metric("annual_volatility", "Volatility", "pct", "low", "Annualised standard deviation of daily returns"),
    Metric("sharpe", "Sharpe", "ratio", "high", "Mean / std of daily returns, times √252"),
    Metric("sortino", "Sortino", "ratio", "high", "Mean / downside deviation of daily returns, times √252"),
    Metric("calmar", "Calmar", "ratio", "high", "Annual return / |max drawdown|"),
    Metric("max_drawdown", "Max drawdown", "pct", "near_zero", "Largest peak-to-trough fall of the portfolio value"),
    Metric(
        "turnover", "Turnover /yr", "times", "low", "Annualised one-way turnover (1.00x = the whole book once a year)"
    ),
    Metric("hit_rate", "Hit rate", "pct", "high", "Share of days with a positive return"),
    Metric("final_value", "Final value", "value", "high", "Portfolio value at the end of the test period"),
)
SEED_METRICS = ("cumulative_return", "annual_return", "annual_volatility", "sharpe", "max_drawdown", "final_value")


# --------------------------------------------------------------------------------------------
# Reading the run directory


@dataclass(frozen=True)
class RunFiles:
    """Everything the report shows, read and checked from one run directory.

    :param run_dir: the run directory.
    :param config_text: ``config.yaml`` verbatim.
    :param manifest: ``manifest.json``.
    :param equity: ``equity.csv``: a DatetimeIndex and one float column of portfolio value per strategy.
    :param metrics: ``metrics.json``: strategy -> metric -> number or None.
    :param weights: ``weights.csv`` (timestamp, strategy, symbols..., cash) or None.
    :param summary: ``summary.json`` (statistics over seeds) or None.
    :param quarters: ``quarters.csv`` (the ensemble's pick per quarter) or None.
    """

    run_dir: Path
    config_text: str
    manifest: dict[str, Any]
    equity: pd.DataFrame
    metrics: dict[str, dict[str, float | None]]
    weights: pd.DataFrame | None = None
    summary: dict[str, Any] | None = None
    quarters: pd.DataFrame | None = None

    @classmethod
    def read(cls, run_dir: str | Path) -> RunFiles:
        """Read ``run_dir``; raise :class:`RLTradeError` naming the file that is missing or malformed."""
        root = Path(run_dir)
        if not root.is_dir():
            raise RLTradeError(f"run directory {root} does not exist (expected the output of a training run)")
        return cls(
            run_dir=root,
            config_text=_read_text(root / "config.yaml"),
            manifest=_read_json_object(root / "manifest.json"),
            equity=_read_equity(root / "equity.csv"),
            metrics=_read_metrics(root / "metrics.json"),
            weights=_read_weights(root / "weights.csv") if (root / "weights.csv").exists() else None,
            summary=_read_summary(root / "summary.json") if (root / "summary.json").exists() else None,
            quarters=_read_quarters(root / "quarters.csv") if (root / "quarters.csv").exists() else None,
        )


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RLTradeError(f"{path.name} is missing from run directory {path.parent}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RLTradeError(f"{path.name} in {path.parent} cannot be read: {exc}") from exc


def _read_json_object(path: Path) -> dict[str, Any]:
    text = _read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RLTradeError(f"{path.name} in {path.parent} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise RLTradeError(f"{path.name} in {path.parent} must hold a JSON object, found {type(data).__name__}")
    return data


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise RLTradeError(f"{path.name} is missing from run directory {path.parent}")
    try:
        frame = pd.read_csv(path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise RLTradeError(f"{path.name} in {path.parent} cannot be read as CSV: {exc}") from exc
    if frame.empty:
        raise RLTradeError(f"{path.name} in {path.parent} has no rows")
    return frame


def _require_columns(frame: pd.DataFrame, path: Path, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise RLTradeError(f"{path.name} in {path.parent} lacks column(s) {', '.join(missing)}")


def _parse_timestamps(values: pd.Series, path: Path, column: str = "timestamp") -> pd.DatetimeIndex:
    try:
        stamps = pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise RLTradeError(
            f"{path.name} in {path.parent}: column {column!r} holds a non-ISO timestamp ({exc})"
        ) from exc
    return pd.DatetimeIndex(stamps).tz_localize(None)


def _numeric(frame: pd.DataFrame, path: Path, columns: Sequence[str]) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    for column in columns:
        try:
            out[column] = pd.to_numeric(frame[column], errors="raise").astype(float)
        except (ValueError, TypeError) as exc:
            raise RLTradeError(f"{path.name} in {path.parent}: column {column!r} is not numeric ({exc})") from exc
    return out


def _read_equity(path: Path) -> pd.DataFrame:
    frame = _read_csv(path)
    if frame.columns[0] != "timestamp":
        raise RLTradeError(
            f"{path.name} in {path.parent} must start with a 'timestamp' column, found {frame.columns[0]!r}"
        )
    strategies = [str(c) for c in frame.columns[1:]]
    if not strategies:
        raise RLTradeError(f"{path.name} in {path.parent} has no strategy columns after 'timestamp'")
    values = _numeric(frame, path, strategies)
    values.index = _parse_timestamps(frame["timestamp"], path)
    values.index.name = "timestamp"
    return values.sort_index()


def _read_weights(path: Path) -> pd.DataFrame:
    frame = _read_csv(path)
    _require_columns(frame, path, ("timestamp", "strategy"))
    assets = [str(c) for c in frame.columns if c not in ("timestamp", "strategy")]
    if not assets:
        raise RLTradeError(f"{path.name} in {path.parent} has no weight columns after 'timestamp, strategy'")
    out = _numeric(frame, path, assets)
    out.insert(0, "strategy", frame["strategy"].astype(str))
    out.insert(0, "timestamp", _parse_timestamps(frame["timestamp"], path))
    return out


def _read_quarters(path: Path) -> pd.DataFrame:
    frame = _read_csv(path)
    _require_columns(frame, path, ("quarter", "picked"))
    if "seed" in frame.columns and frame["seed"].nunique() > 1:
        # several seeds: the picks of the first seed, the one whose curves are drawn boldly
        frame = frame[frame["seed"] == frame["seed"].min()].reset_index(drop=True)
    frame["quarter"] = frame["quarter"].astype(str)
    frame["picked"] = frame["picked"].astype(str)
    for column in frame.columns:
        if column.endswith(("_start", "_end")):
            frame[column] = _parse_timestamps(frame[column], path, column)
    numeric = [c for c in frame.columns if c.startswith("sharpe_") or c == "turbulence_threshold"]
    frame[numeric] = _numeric(frame, path, numeric)
    return frame


def _read_metrics(path: Path) -> dict[str, dict[str, float | None]]:
    data = _read_json_object(path)
    out: dict[str, dict[str, float | None]] = {}
    for strategy, values in data.items():
        if not isinstance(values, dict):
            raise RLTradeError(f"{path.name} in {path.parent}: {strategy!r} must map metric names to numbers")
        row: dict[str, float | None] = {}
        for key, value in values.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise RLTradeError(
                    f"{path.name} in {path.parent}: {strategy}.{key} = {value!r} is not a number or null"
                )
            row[key] = None if value is None or not math.isfinite(value) else float(value)
        out[str(strategy)] = row
    return out


def _read_summary(path: Path) -> dict[str, Any]:
    data = _read_json_object(path)
    strategies = data.get("strategies")
    if not isinstance(strategies, list) or not all(isinstance(s, dict) and "name" in s for s in strategies):
        raise RLTradeError(f"{path.name} in {path.parent}: 'strategies' must be a list of objects with a 'name'")
    return data


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


# --------------------------------------------------------------------------------------------
# Plots


def _layout(height: int, **extra: Any) -> dict[str, Any]:
    axis = {
        "showgrid": True,
        "gridcolor": "#edf0f3",
        "linecolor": "#cfd4da",
        "zeroline": False,
        "ticks": "outside",
        "tickcolor": "#cfd4da",
        "automargin": True,
    }
    layout: dict[str, Any] = {
        "template": "none",
        "height": height,
        "font": {"family": FONT, "size": 12, "color": "#1f2937"},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "margin": {"l": 64, "r": 16, "t": 40, "b": 40},
        "xaxis": dict(axis),
        "yaxis": dict(axis),
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
    """Underwater plot: the fall from the running peak of each strategy."""
    import plotly.graph_objects as go

    drawdown = equity / equity.cummax() - 1.0
    traces = _curve_traces(drawdown, strategies, colors, fill_first_agent=True, hover_format=".1%", digits=4)
    figure = go.Figure(traces)
    figure.update_layout(**_layout(400, margin={"l": 64, "r": 16, "t": 34, "b": 40}))
    figure.update_yaxes(title_text="Drawdown", tickformat=".0%", rangemode="tozero")
    return figure


def _weight_groups(frame: pd.DataFrame, assets: Sequence[str]) -> pd.DataFrame:
    """At most MAX_WEIGHT_GROUPS symbols, the rest summed into ``other``; cash kept last."""
    symbols = [a for a in assets if a != "cash"]
    out = frame[symbols].copy()
    if len(symbols) > MAX_WEIGHT_GROUPS:
        order = frame[symbols].abs().mean().sort_values(ascending=False, kind="stable").index
        keep = set(order[: MAX_WEIGHT_GROUPS - 1])
        kept = [s for s in symbols if s in keep]
        out = frame[kept].copy()
        out["other"] = frame[[s for s in symbols if s not in keep]].sum(axis=1)
    if "cash" in assets:
        out["cash"] = frame["cash"]
    return out


def _block_means(groups: pd.DataFrame, step: int) -> pd.DataFrame:
    """Means over blocks of ``step`` rows, stamped with each block's last timestamp (no aliasing of daily moves)."""
    if step <= 1:
        return groups
    block = np.arange(len(groups)) // step
    means = groups.groupby(block).mean()
    means.index = pd.DatetimeIndex(groups.index.to_series().groupby(block).last())
    return means


def weights_figure(weights: pd.DataFrame, strategies: Sequence[str]) -> tuple[Any, int]:
    """Stacked value weights per step, with a menu to choose the strategy; returns (figure, block size)."""
    import plotly.graph_objects as go

    assets = [c for c in weights.columns if c not in ("timestamp", "strategy")]
    per_strategy = {}
    step = 1
    for strategy in strategies:
        rows = weights[weights["strategy"] == strategy].sort_values("timestamp")
        per_strategy[strategy] = _weight_groups(rows.set_index("timestamp"), assets)
        step = max(step, math.ceil(len(rows) / MAX_WEIGHT_POINTS))
    # one colour per symbol across every strategy's view, in the file's symbol order
    shown = {column for groups in per_strategy.values() for column in groups.columns}
    symbols = [a for a in assets if a in shown and a != "cash"]
    symbol_color = {a: SYMBOL_COLORS[i % len(SYMBOL_COLORS)] for i, a in enumerate(symbols)}
    symbol_color.update(other=OTHER_COLOR, cash=CASH_COLOR)
    traces: list[Any] = []
    owners: list[str] = []
    for n, (strategy, groups) in enumerate(per_strategy.items()):
        sampled = _block_means(groups, step)
        x = _x_values(pd.DatetimeIndex(sampled.index))
        for column in sampled.columns:
            color = symbol_color[column]
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
                    hovertemplate="%{y:.1%}",
                )
            )
            owners.append(strategy)
    figure = go.Figure(traces)
    extra: dict[str, Any] = {}
    if len(strategies) > 1:
        buttons = [
            {"label": s, "method": "update", "args": [{"visible": [o == s for o in owners]}]} for s in strategies
        ]
        extra["updatemenus"] = [
            {
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
        ]
    figure.update_layout(**_layout(440, **extra))
    figure.update_yaxes(title_text="Weight", tickformat=".0%")
    return figure, step


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
        **_layout(70 + 34 * len(agents), hovermode="closest", margin={"l": 64, "r": 16, "t": 10, "b": 30}),
        bargap=0.25,
    )
    figure.update_yaxes(categoryorder="array", categoryarray=agents[::-1], showgrid=False, ticks="")
    if has_windows:
        figure.update_xaxes(type="date")
    return figure


# --------------------------------------------------------------------------------------------
# HTML sections


def _header(run: RunFiles, strategies: Sequence[Strategy]) -> str:
    manifest = run.manifest
    algorithm = str(manifest.get("algorithm") or next((s.base for s in strategies if s.is_agent), "agent"))
    env = manifest.get("env")
    symbols = manifest.get("symbols") if isinstance(manifest.get("symbols"), list) else None
    name = str(manifest.get("name") or run.run_dir.name)
    test = _period(manifest.get("test")) or f"{_date(run.equity.index[0])} → {_date(run.equity.index[-1])}"
    what = f"{algorithm} agent" + (f" on the {env} environment" if env else "")
    if symbols:
        what += f" · {len(symbols)} symbols"
    facts: list[tuple[str, str | None, str | None]] = [
        ("Train", _period(manifest.get("train")), None),
        ("Test (out of sample)", test, None),
        ("Symbols", str(len(symbols)) if symbols else None, ", ".join(map(str, symbols)) if symbols else None),
        ("Seeds", _seeds(manifest.get("seeds")), None),
        ("Costs", manifest.get("cost"), None),
        ("Timing", manifest.get("timing"), None),
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
        f'<p class="subtitle">{_esc(what)}</p>\n'
        f'<dl class="facts">{"".join(items)}</dl></header>'
    )


def _how_to_read(run: RunFiles) -> str:
    manifest = run.manifest
    test = _period(manifest.get("test")) or f"{_date(run.equity.index[0])} → {_date(run.equity.index[-1])}"
    costs = []
    if manifest.get("cost"):
        costs.append(f"trades pay <code>{_esc(manifest['cost'])}</code>")
    if manifest.get("timing"):
        costs.append(f"orders fill at <code>{_esc(manifest['timing'])}</code>")
    cost_text = (" Every strategy " + " and ".join(costs) + ".") if costs else ""
    return (
        '<p class="howto"><strong>How to read this.</strong> Every number and curve below covers the '
        f"<strong>out-of-sample test period only</strong> ({_esc(test)}).{cost_text} "
        "Sharpe and Sortino ratios are annualised with √252 from daily returns; "
        "returns, volatility and drawdowns are in percent. Best value per column in <strong>bold</strong>.</p>"
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


def _metrics_table(run: RunFiles, colors: dict[str, str]) -> str:
    rows = classify(run.metrics, run.manifest.get("algorithm"))
    known = {m.key for m in METRICS}
    extra_keys = list(dict.fromkeys(k for r in run.metrics.values() for k in r if k not in known))
    metrics = [m for m in METRICS if any(m.key in r for r in run.metrics.values())]
    metrics += [Metric(k, k.replace("_", " "), "ratio", None, k) for k in extra_keys]
    best = {m.key: _best_rows({s.column: run.metrics[s.column].get(m.key) for s in rows}, m.better) for m in metrics}
    head = "".join(f'<th class="num" title="{_esc(m.help)}">{_esc(m.label)}</th>' for m in metrics)
    body = []
    first_baseline = next((s.column for s in rows if not s.is_agent), None)
    for s in rows:
        classes = ["agent" if s.is_agent else "baseline"]
        if s.seed > 0:
            classes.append("seed")
        if s.column == first_baseline and any(r.is_agent for r in rows):
            classes.append("first-baseline")
        cells = [_name_cell(s.column, colors.get(s.base))]
        for m in metrics:
            value = run.metrics[s.column].get(m.key)
            css = "num best" if s.column in best[m.key] else "num"
            cells.append(f'<td class="{css}">{_fmt(value, m.kind)}</td>')
        body.append(f'<tr class="{" ".join(classes)}">{"".join(cells)}</tr>')
    return (
        '<h2 id="metrics">Metrics</h2>\n<div class="table-wrap"><table class="metrics">'
        f"<thead><tr><th>Strategy</th>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody></table></div>"
    )


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


def _seeds_table(summary: dict[str, Any], colors: dict[str, str], algorithm: str | None) -> str:
    entries = summary["strategies"]
    names = [str(e["name"]) for e in entries]
    order = {s.column: i for i, s in enumerate(classify(names, algorithm))}
    entries = sorted(entries, key=lambda e: order[str(e["name"])])
    confidence = float(summary.get("confidence", 0.95))
    n_seeds = max((int(e.get("n_seeds", 0)) for e in entries), default=0)
    by_key = {m.key: m for m in METRICS}
    shown = [by_key[k] for k in SEED_METRICS if any(k in (e.get("mean") or {}) for e in entries)]
    head = "".join(f'<th class="num" title="{_esc(m.help)}">{_esc(m.label)}</th>' for m in shown)
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


def render_report(run: RunFiles) -> str:
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
    colors = base_colors(classify(dict.fromkeys(names), algorithm))

    sections = [_header(run, strategies), _nav(run), _how_to_read(run), _metrics_table(run, colors)]
    if run.summary:
        sections.append(_seeds_table(run.summary, colors, algorithm))
    sections.append('<h2 id="equity">Equity</h2>')
    sections.append(_figure_html(equity_figure(run.equity, strategies, colors), "equity-plot"))
    sections.append('<h2 id="drawdown">Drawdown</h2>')
    sections.append(_figure_html(drawdown_figure(run.equity, strategies, colors), "drawdown-plot"))
    if run.weights is not None:
        sections.append(_weights_section(run.weights, algorithm))
    if run.quarters is not None:
        sections.append('<h2 id="quarters">Picks per quarter</h2>')
        sections.append(_figure_html(quarters_figure(run.quarters, colors), "quarters-plot"))
        sections.append(_quarters_table(run.quarters, colors))
    sections.append('<h2 id="details">Run details</h2>')
    sections.append(_details("Config (config.yaml)", run.config_text))
    sections.append(_details("Manifest (manifest.json)", _compact_json(run.manifest)))
    sections.append(
        f'<footer>Generated by rltrade {_esc(_version())} from <span class="mono">{_esc(run.run_dir.name)}</span>. '
        "Self-contained: opens offline.</footer>"
    )
    template = string.Template(resources.files(__package__).joinpath("template.html").read_text(encoding="utf-8"))
    title = f"{run.manifest.get('name') or run.run_dir.name} — rltrade report"
    return template.substitute(
        title=_esc(title), version=_esc(_version()), plotly_js=get_plotlyjs(), body="\n".join(sections)
    )


def _weights_section(weights: pd.DataFrame, algorithm: str | None) -> str:
    strategies = [s.column for s in classify(dict.fromkeys(weights["strategy"]), algorithm)]
    figure, step = weights_figure(weights, strategies)
    notes = [f"Value weights after each step, starting with <strong>{_esc(strategies[0])}</strong>."]
    if len(strategies) > 1:
        notes.append("Pick another strategy in the menu.")
    n_symbols = len([c for c in weights.columns if c not in ("timestamp", "strategy", "cash")])
    if n_symbols > MAX_WEIGHT_GROUPS:
        notes.append(f"The {n_symbols - MAX_WEIGHT_GROUPS + 1} smallest positions are summed into “other”.")
    if step > 1:
        notes.append(f"Each point is the mean over {step} steps.")
    return f'<h2 id="weights">Weights</h2>\n<p class="note">{" ".join(notes)}</p>\n' + _figure_html(
        figure, "weights-plot"
    )


def _nav(run: RunFiles) -> str:
    links = [("metrics", "Metrics")]
    if run.summary:
        links.append(("seeds", "Seeds"))
    links += [("equity", "Equity"), ("drawdown", "Drawdown")]
    if run.weights is not None:
        links.append(("weights", "Weights"))
    if run.quarters is not None:
        links.append(("quarters", "Quarters"))
    links.append(("details", "Config &amp; manifest"))
    return '<nav class="toc">' + "".join(f'<a href="#{a}">{t}</a>' for a, t in links) + "</nav>"


def write_report(run_dir: str | Path, output: str | Path | None = None) -> Path:
    """Render ``run_dir`` into ``output`` (default ``RUN_DIR/report.html``), atomically; return the path."""
    run = RunFiles.read(run_dir)
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
