"""The report of an order-book run (``strategy: orderbook``): P&L paths, positions, fills, the per-state policy.

It reads the run directory the order-book strategy writes (``metrics.json``, ``pnl.csv``,
``positions.csv``, ``fills.csv``, ``policy.csv``) and renders one self-contained page with the
same template, fonts and plot settings as the bar report (:mod:`rltrade.report.html`).
"""

from __future__ import annotations

import json
import string
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from rltrade.report.html import REPORT_NAME, _details, _esc, _figure_html, _layout, _version
from rltrade.runs.files import read_csv, read_json_object, read_text
from rltrade.shared.files import write_text

#: The agents' colours (learning, random, buy-and-hold), as in the bar report's palette order.
COLORS = {"qlearning": "#1f77b4", "random": "#7f7f7f", "buy_and_hold": "#2ca02c"}


def _group(column: str) -> str:
    return column.split("_seed")[0]


def _paths_figure(frame: pd.DataFrame, title: str, y_title: str, hidden: tuple[str, ...] = ()) -> Any:
    """Per agent: its first run (solid) and the mean over its runs (dotted), so the page stays small.

    The first runs of ``hidden`` agents start switched off (a click on the legend shows them).
    """
    import plotly.graph_objects as go

    figure = go.Figure()
    groups: dict[str, list[str]] = {}
    for column in frame.columns:
        groups.setdefault(_group(column), []).append(column)
    for group, columns in groups.items():
        color = COLORS.get(group, "#9467bd")
        figure.add_trace(
            go.Scatter(
                x=frame.index,
                y=frame[columns[0]],
                name=f"{group} (run 1)",
                line={"color": color, "width": 1.6},
                visible="legendonly" if group in hidden else True,
            )
        )
        if len(columns) > 1:
            figure.add_trace(
                go.Scatter(
                    x=frame.index,
                    y=frame[columns].mean(axis=1),
                    name=f"{group} (mean of {len(columns)})",
                    line={"color": color, "width": 1.6, "dash": "dot"},
                )
            )
    figure.update_layout(**_layout(420, title={"text": title}))
    figure.update_yaxes(title_text=y_title)
    return figure


def _fills_figure(fills: pd.DataFrame) -> Any:
    import plotly.graph_objects as go

    figure = go.Figure()
    for agent, part in fills.groupby("agent"):
        for side, symbol in ((1, "triangle-up"), (-1, "triangle-down")):
            rows = part[part["side"] == side]
            figure.add_trace(
                go.Scatter(
                    x=rows["timestamp"],
                    y=rows["price"],
                    mode="markers",
                    name=f"{agent} {'buys' if side == 1 else 'sells'}",
                    marker={"symbol": symbol, "color": COLORS.get(str(agent), "#9467bd"), "size": 7},
                )
            )
    figure.update_layout(**_layout(380, title={"text": "Fills of the first run (price, by side)"}))
    return figure


def _table(frame: pd.DataFrame, floats: str = "{:,.2f}") -> str:
    head = "".join(f"<th>{_esc(str(c))}</th>" for c in frame.columns)
    rows = []
    for _, row in frame.iterrows():
        cells = "".join(
            f"<td>{floats.format(v) if isinstance(v, float) else _esc(str(v))}</td>" for v in row.to_numpy().tolist()
        )
        rows.append(f"<tr>{cells}</tr>")
    return f'<table class="metrics"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _timed(frame: pd.DataFrame, tz: str, column: str = "timestamp") -> pd.DataFrame:
    """``frame`` indexed by its UTC ``column`` shown in the exchange's time zone (the windows' clock)."""
    stamps = pd.to_datetime(frame.pop(column), utc=True).dt.tz_convert(tz).dt.tz_localize(None)
    frame.index = pd.DatetimeIndex(stamps, name=f"{column} ({tz})")
    return frame


def render_orderbook_report(run_dir: str | Path) -> str:
    """The page of the order-book run in ``run_dir`` as one HTML string (opens offline)."""
    from plotly.offline import get_plotlyjs

    root = Path(run_dir)
    manifest, metrics = read_json_object(root / "manifest.json"), read_json_object(root / "metrics.json")
    session = manifest.get("session", {})
    tz = str(session.get("tz", "UTC"))
    pnl, positions = (_timed(read_csv(root / name), tz) for name in ("pnl.csv", "positions.csv"))
    welch = metrics["welch"]
    table = pd.DataFrame(
        [{"agent": name, **values} for name, values in metrics["agents"].items()],
        columns=["agent", "runs", "mean", "std", "min", "max"],
    )
    verdict = (
        "The learning agent's mean final P&L is larger than the random agent's at the "
        f"{welch['significance']:.0%} level."
        if welch["p"] is not None and welch["p"] < welch["significance"]
        else "The learning agent does <strong>not</strong> beat the random agent at the "
        f"{welch['significance']:.0%} level."
    )
    sections = [
        f"<h1>{_esc(manifest.get('name', root.name))}: order book, {_esc(session.get('symbol', '?'))} "
        f"{_esc(session.get('date', '?'))}</h1>",
        f'<p class="note">{session.get("events", "?"):,} events; {manifest["decisions"]["train"]:,} training and '
        f"{manifest['decisions']['test']:,} test decisions; {len(manifest['seeds'])} runs. Out of sample: the test "
        "window comes after the training window; the agent's orders do not move the replayed market.</p>",
        '<h2 id="metrics">Final P&amp;L of the test window (USD, mark-to-mid, net of fees)</h2>',
        _table(table),
        f"<p>One-sided Welch t-test, qlearning &gt; random: t = {welch['t']:.2f}, p = {welch['p']:.3g}. {verdict}</p>",
        '<h2 id="pnl">P&amp;L paths</h2>',
        _figure_html(_paths_figure(pnl, f"Mark-to-mid P&L per decision (exchange time, {tz})", "USD"), "pnl-plot"),
        '<h2 id="positions">Positions</h2>',
        _figure_html(
            _paths_figure(positions, "Position per decision (shares)", "shares", hidden=("random",)), "position-plot"
        ),
    ]
    if (root / "fills.csv").exists():
        fills = pd.read_csv(root / "fills.csv")
        if len(fills):
            fills["timestamp"] = pd.to_datetime(fills["timestamp"], utc=True).dt.tz_convert(tz).dt.tz_localize(None)
            sections += ['<h2 id="fills">Fills</h2>', _figure_html(_fills_figure(fills), "fills-plot")]
    if (root / "policy.csv").exists():
        policy = read_csv(root / "policy.csv")
        visited = policy[policy["visits"] > 0]
        sections += [
            '<h2 id="policy">Policy per state (first run)</h2>',
            '<p class="note">States are a k-means cluster of (OFI, log book ratio), the position and the open '
            "orders; the greedy action and how often training visited the state.</p>",
            _table(visited),
        ]
    sections.append(_details("Config (config.yaml)", read_text(root / "config.yaml")))
    sections.append(_details("Manifest (manifest.json)", json.dumps(manifest, indent=1)))
    sections.append(f"<footer>Generated by rltrade {_esc(_version())}. Self-contained: opens offline.</footer>")
    template = string.Template(resources.files("rltrade.report").joinpath("template.html").read_text(encoding="utf-8"))
    return template.substitute(
        title=_esc(f"{manifest.get('name', root.name)} — rltrade order-book report"),
        version=_esc(_version()),
        plotly_js=get_plotlyjs(),
        body="\n".join(sections),
    )


def write_orderbook_report(run_dir: str | Path) -> Path:
    """Render ``RUN_DIR/report.html`` for an order-book run; return its path."""
    target = Path(run_dir) / REPORT_NAME
    write_text(target, render_orderbook_report(run_dir))
    return target
